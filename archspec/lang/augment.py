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
    """One parameter of an augment op: a JSON-schema type ("integer", "number", "boolean" or "choice": one of
    `choices`, strings), bounds (inclusive; `low_open` makes the lower one exclusive) and a default. A default of
    None means "required" unless `nullable`, where None is a value of its own (a crop's size: the current image
    size)."""

    name: str
    type: str
    minimum: float | None = None
    maximum: float | None = None
    default: Any = None
    nullable: bool = False
    choices: tuple[str, ...] = ()
    low_open: bool = False


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
    # timm's RandAugment ("rand-m9-mstd0.5-inc1"): num_ops ops per image, each picked uniformly (with replacement)
    # and applied with probability prob at a magnitude ~ N(magnitude, magnitude_std) clipped to [0, 10]
    "rand_augment": (AugmentParam("num_ops", "integer", minimum=0, default=2),
                     AugmentParam("magnitude", "number", minimum=0, maximum=10, default=9),
                     AugmentParam("magnitude_std", "number", minimum=0, default=0.5),
                     AugmentParam("prob", "number", minimum=0, maximum=1, default=0.5),
                     AugmentParam("increasing", "boolean", default=True)),
    # torchvision's TrivialAugmentWide: one op per image at a uniformly drawn magnitude bin of `bins`
    "trivial_augment": (AugmentParam("bins", "integer", minimum=2, default=31),),
    # timm's RandomErasing on normalised values: with probability p, 1..count boxes of noise
    "random_erasing": (AugmentParam("p", "number", minimum=0, maximum=1, default=0.25),
                       AugmentParam("min_area", "number", minimum=0, maximum=1, default=0.02),
                       AugmentParam("max_area", "number", minimum=0, maximum=1, default=1 / 3),
                       AugmentParam("min_aspect", "number", minimum=0, maximum=1, default=0.3, low_open=True),
                       AugmentParam("mode", "choice", choices=("pixel", "rand", "const"), default="pixel"),
                       AugmentParam("count", "integer", minimum=1, default=1)),
    # torchvision's RandomResizedCrop: a box of scale x the area and aspect ratio in [min_ratio, max_ratio],
    # resized (bilinear) to size x size
    "random_resized_crop": (AugmentParam("size", "integer", minimum=1, nullable=True),
                            AugmentParam("min_scale", "number", minimum=0, maximum=1, default=0.08, low_open=True),
                            AugmentParam("max_scale", "number", minimum=0, maximum=1, default=1.0, low_open=True),
                            AugmentParam("min_ratio", "number", minimum=0, default=0.75, low_open=True),
                            AugmentParam("max_ratio", "number", minimum=0, default=4 / 3, low_open=True)),
}

# the ops that draw a per-image op and magnitude (run on 0..255 pixels, before normalisation)
PIXEL_POLICIES = ("rand_augment", "trivial_augment")


def defaults(op: str) -> dict[str, Any]:
    """{parameter: default} of `op`, in table order."""
    return {p.name: p.default for p in AUGMENT[op]}


def augment_json_schema() -> dict[str, dict]:
    """op -> {parameter: JSON-schema fragment} (type and bounds; what the spec's schema checks per op)."""
    out: dict[str, dict] = {}
    for op, params in AUGMENT.items():
        out[op] = {}
        for p in params:
            if p.type == "choice":
                out[op][p.name] = {"type": "string", "enum": list(p.choices)}
                continue
            fragment: dict[str, Any] = {"type": p.type}
            if p.minimum is not None:
                fragment["exclusiveMinimum" if p.low_open else "minimum"] = p.minimum
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
        if p.type == "boolean":
            if not isinstance(v, bool):
                return f"augment op {op}: {p.name} must be true or false, not {v!r}"
        elif p.type == "choice":
            if not isinstance(v, str) or v not in p.choices:
                return f"augment op {op}: {p.name} must be one of {words(p.choices)}, not {v!r}"
        elif p.type == "integer":
            low = p.minimum if p.minimum is not None else -math.inf
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                return f"augment op {op}: {p.name} must be an integer >= {low}, not {v!r}"
        else:
            low = p.minimum if p.minimum is not None else -math.inf
            high = p.maximum if p.maximum is not None else math.inf
            fits = (low < v if p.low_open else low <= v) and v <= high
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not fits:
                return (f"augment op {op}: {p.name} must be a number in {'(' if p.low_open else '['}{low}, {high}], "
                        f"not {v!r}")
    for low, high in _ORDERED.get(op, ()):
        if values[low] > values[high]:
            return f"augment op {op}: {low} {values[low]} is above {high} {values[high]}"
    return None


# op -> (parameter, parameter) pairs whose first must not exceed the second
_ORDERED = {"scale_jitter": (("min", "max"),), "random_erasing": (("min_area", "max_area"),),
            "random_resized_crop": (("min_scale", "max_scale"), ("min_ratio", "max_ratio"))}


def words(choices: tuple[str, ...] | list[str]) -> str:
    """"pixel, rand or const"."""
    return ", ".join(choices[:-1]) + " or " + choices[-1] if len(choices) > 1 else "".join(choices)
