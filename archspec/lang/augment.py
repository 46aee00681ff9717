"""The augment ops a recipe may name: the one table of each op's parameters, and what is derived from it.

`AUGMENT` lists, per op (in the order messages name them), each parameter with its type, bounds and default.
From it come the spec's JSON-schema fragment per op (`augment_json_schema`, for `archspec.lang.schema`) and the
checks the data layer runs on a recipe's entries (`defaults`, `param_problem`). Standard library only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AugmentParam:
    """One parameter of an augment op: a JSON-schema type ("integer" or "number"), inclusive bounds and a
    default. A default of None means "required" unless `nullable`, where None is a value of its own (a crop's
    size: the current image size)."""

    name: str
    type: str
    minimum: float | None = None
    maximum: float | None = None
    default: Any = None
    nullable: bool = False


# op -> its parameters, in the order they are listed to the user
AUGMENT: dict[str, tuple[AugmentParam, ...]] = {
    "pad_crop": (AugmentParam("pad", "integer", minimum=0, default=4),
                 AugmentParam("size", "integer", minimum=1, nullable=True),
                 AugmentParam("fill", "number", default=0.0)),
    "hflip": (AugmentParam("p", "number", minimum=0, maximum=1, default=0.5),),
    "scale_jitter": (AugmentParam("min", "integer", minimum=1),
                     AugmentParam("max", "integer", minimum=1)),
    "random_crop": (AugmentParam("size", "integer", minimum=1, nullable=True),),
    "lighting": (AugmentParam("alphastd", "number", minimum=0, default=0.1),),
}


def defaults(op: str) -> dict[str, Any]:
    """{parameter: default} of `op`, in table order."""
    return {p.name: p.default for p in AUGMENT[op]}


def augment_json_schema() -> dict[str, dict]:
    """op -> {parameter: JSON-schema fragment} (type and bounds; what the spec's schema checks per op)."""
    out: dict[str, dict] = {}
    for op, params in AUGMENT.items():
        out[op] = {}
        for p in params:
            fragment: dict[str, Any] = {"type": p.type}
            if p.minimum is not None:
                fragment["minimum"] = p.minimum
            if p.maximum is not None:
                fragment["maximum"] = p.maximum
            out[op][p.name] = fragment
    return out


def param_problem(op: str, values: dict[str, Any]) -> str | None:
    """The one-line problem with `values` (every parameter of `op`, defaults filled in), or None if they fit."""
    for p in AUGMENT[op]:
        v = values[p.name]
        if v is None and p.nullable:
            continue
        if p.type == "integer":
            low = p.minimum if p.minimum is not None else -math.inf
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                return f"augment op {op}: {p.name} must be an integer >= {low}, not {v!r}"
        else:
            low = p.minimum if p.minimum is not None else -math.inf
            high = p.maximum if p.maximum is not None else math.inf
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not low <= v <= high:
                return f"augment op {op}: {p.name} must be a number in [{low}, {high}], not {v!r}"
    if op == "scale_jitter" and values["min"] > values["max"]:
        return f"augment op scale_jitter: min {values['min']} is above max {values['max']}"
    return None
