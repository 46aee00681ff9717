"""The shipped schema file and the manifest of verified shipped specs are what the code builds today."""

from archspec.lang.resolve import packaged_specs_dir
from archspec.lang.schema import VERIFIED_NAME, schema_json, shipped_manifest


def test_shipped_schema_file_is_current():
    assert (packaged_specs_dir() / "archspec.schema.json").read_text(encoding="utf-8") == schema_json(), \
        "run `python -m archspec.lang.schema`"


def test_shipped_manifest_is_current_and_complete():
    text = (packaged_specs_dir() / VERIFIED_NAME).read_text(encoding="utf-8")
    assert text == shipped_manifest(), "run `python -m archspec.lang.schema`"
    names = {line.split()[1] for line in text.splitlines() if not line.startswith("#")}
    assert {p.relative_to(packaged_specs_dir()).as_posix() for p in packaged_specs_dir().rglob("*.yaml")
            if p.parent.name != "experiments"} == names  # (experiment files are not specs: test_experiment_file.py)


def test_every_spec_file_carries_the_editor_schema_header():
    for path in packaged_specs_dir().rglob("*.yaml"):
        if path.parent.name == "experiments":  # (not specs)
            continue
        first = path.read_text(encoding="utf-8").splitlines()[0]
        depth = len(path.relative_to(packaged_specs_dir()).parts) - 1
        assert first == f"# yaml-language-server: $schema={'../' * depth}archspec.schema.json", path
