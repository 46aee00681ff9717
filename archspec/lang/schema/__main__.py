"""`python -m archspec.lang.schema`: regenerate the shipped schema and the manifest of files that pass it."""

from __future__ import annotations

from archspec.lang.resolve import packaged_specs_dir
from archspec.lang.schema.build import schema_json
from archspec.lang.schema.check import VERIFIED_NAME, shipped_manifest


def main() -> None:
    specs = packaged_specs_dir()
    (specs / "archspec.schema.json").write_text(schema_json(), encoding="utf-8")
    (specs / VERIFIED_NAME).write_text(shipped_manifest(), encoding="utf-8")
    print(f"wrote {specs / 'archspec.schema.json'} and {specs / VERIFIED_NAME}")


if __name__ == "__main__":
    main()
