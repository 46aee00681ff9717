"""The language half of the example plugin: the `layer_scale` op's registry entry (imports no torch)."""

from __future__ import annotations

from archspec.lang.codes import WRONG_TENSOR_SHAPE
from archspec.lang.ops.base import Attr, Counts, OpDef, ShapeError, feature_map, numel


def _shape(a: dict, ins: list) -> tuple:
    c, _, _ = feature_map("layer_scale", ins[0])
    if a["channels"] is not None and a["channels"] != c:
        raise ShapeError(WRONG_TENSOR_SHAPE, f"layer_scale expects {a['channels']} channels, got {c}",
                         f"set `channels: {c}` or remove it")
    return ins[0]


def _counts(a: dict, ins: list, out: tuple) -> Counts:
    return Counts(params=ins[0][0], extra=numel(out), extra_flops=numel(out))  # one multiply per element


OPS = [
    OpDef(name="layer_scale", doc="a learnable scale per channel (LayerScale), initialised to `init`",
          kind="other", inputs=(1, 1), shape=_shape, counts=_counts, structural=True,
          attrs={"init": Attr(type="float", default=1e-5, min=0, doc="the scales' initial value"),
                 "channels": Attr(type="int", default=None, min=1, doc="optional: the channels expected")},
          label=lambda a: f"scale x{a['init']:g}"),
]
