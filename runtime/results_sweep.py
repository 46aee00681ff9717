"""A sweep folder's sweep.json, read for `archspec results` and `archspec plot` (`runtime.results`): checked against
`SWEEP_SCHEMA`, the fields those commands read, as `archspec sweep` writes them (`format`, `points`: each with its
`key`, `spec`, `set`, `recipe`, `train` and `runs`, a run being a `seed` and a `folder` relative to the sweep
folder). A damaged one is refused in one line naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archspec.lang.errors import UserError
from archspec.lang.files import load_json, read_regular

SWEEP_FORMAT = "archspec-sweep"
SWEEP_FILE = "sweep.json"


class ResultsError(UserError):
    """A folder that holds no runs, or a damaged sweep.json or run.json: one line naming the file and the fix."""


_SETTING = {"type": "object"}
SWEEP_SCHEMA = {
    "type": "object",
    "required": ["format", "points"],
    "properties": {
        "format": {"const": SWEEP_FORMAT},
        "version": {"const": 1},
        "points": {"type": "array", "items": {
            "type": "object",
            "required": ["key", "spec", "runs"],
            "properties": {
                "key": {"type": "string", "minLength": 1},
                "label": {"type": ["string", "null"]},
                "spec": {"type": "string", "minLength": 1},
                "set": _SETTING, "recipe": _SETTING, "train": _SETTING,
                "seeds": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "runs": {"type": "array", "items": {
                    "type": "object", "required": ["seed", "folder"],
                    "properties": {"seed": {"type": "integer", "minimum": 0},
                                   "folder": {"type": "string", "minLength": 1, "pattern": "^[^\x00]*$"}}}},
            }}},
    },
}


def read_sweep(folder: Path) -> dict[str, Any]:
    """sweep.json of a sweep folder, checked against `SWEEP_SCHEMA`; a ResultsError naming the field otherwise."""
    import jsonschema

    path = folder / SWEEP_FILE
    try:
        data = load_json(read_regular(path))
    except OSError as e:
        raise ResultsError(f"cannot read {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise ResultsError(f"{path} is damaged (not valid JSON: {str(e).splitlines()[0][:80]}): restore it, or "
                           f"re-run the `archspec sweep` that wrote it") from None
    errors = list(jsonschema.Draft202012Validator(SWEEP_SCHEMA).iter_errors(data))
    if errors:
        e = jsonschema.exceptions.best_match(errors)
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path).lstrip(".")
        raise ResultsError(f"{path} is damaged: {('`' + where + '`: ') if where else ''}{e.message[:120]}; "
                           "restore it, or re-run the `archspec sweep` that wrote it")
    return data


