"""`python -m archspec.lang.schema`: regenerate the shipped schema, the manifest of files that pass it and, in a
source checkout, the op table of docs/spec-format.md and the recipe tables of docs/training.md."""

from __future__ import annotations

from pathlib import Path

from archspec.lang import recipe_table
from archspec.lang.ops.table import update_doc
from archspec.lang.resolve import packaged_specs_dir
from archspec.lang.schema.build import schema_json
from archspec.lang.schema.check import VERIFIED_NAME, shipped_manifest


def main() -> None:
    specs = packaged_specs_dir()
    (specs / "archspec.schema.json").write_text(schema_json(), encoding="utf-8")
    (specs / VERIFIED_NAME).write_text(shipped_manifest(), encoding="utf-8")
    print(f"wrote {specs / 'archspec.schema.json'} and {specs / VERIFIED_NAME}")
    doc = Path(__file__).resolve().parents[3] / "docs" / "spec-format.md"
    if doc.is_file():  # a source checkout (an installed package has no docs)
        print(f"{'wrote' if update_doc(doc) else 'unchanged:'} the op table of {doc}")
        training = doc.parent / "training.md"
        print(f"{'wrote' if recipe_table.update_doc(training) else 'unchanged:'} the recipe tables of {training}")


if __name__ == "__main__":
    main()
