"""Ops that route or reshape data: the network `input`, `identity`, `flatten`, `concat`, and `subsample_pad`
(the parameter-free option-A shortcut: keep every stride-th position, zero-pad the channels, structural). Their
lowering is in `archspec.compiler.ops.structure`.
"""

from __future__ import annotations

from archspec.lang.codes import MERGE_SHAPE_MISMATCH, WRONG_TENSOR_SHAPE
from archspec.lang.ops.base import Attr, OpDef, Shape, ShapeError, feature_map, fmt_shape, numel, same_shape


def _input_shape(a: dict, ins: list[Shape]) -> Shape:
    return tuple(a["shape"])


def _flatten_shape(a: dict, ins: list[Shape]) -> Shape:
    return (numel(ins[0]),)


def _concat_shape(a: dict, ins: list[Shape]) -> Shape:
    for s in ins:
        feature_map("concat", s)
    spatial = {s[1:] for s in ins}
    if len(spatial) > 1:
        raise ShapeError(MERGE_SHAPE_MISMATCH,
                         "concat inputs differ in spatial size: " + ", ".join(fmt_shape(s) for s in ins),
                         "downsample the larger inputs first")
    return (sum(s[0] for s in ins),) + ins[0][1:]


def _subsample_pad_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = feature_map("subsample_pad", ins[0])
    if a["out"] < c:
        raise ShapeError(WRONG_TENSOR_SHAPE, f"subsample_pad can only add channels: input has {c}, out is {a['out']}",
                         "use a projection (1x1 conv) to reduce channels")
    s = a["stride"]
    return (a["out"], -(-h // s), -(-w // s))


def _subsample_pad_label(a: dict) -> str:
    return f"zero-pad /{a['stride']}, {a['out']}" if a["stride"] != 1 else f"zero-pad to {a['out']}"


OPS = [
    OpDef(name="input", doc="the network input", kind="input", attrs={"shape": Attr(type="list")}, inputs=(0, 0),
          shape=_input_shape, label=lambda a: f"input {fmt_shape(tuple(a['shape']))}", view=True),
    OpDef(name="flatten", doc="C x H x W to a vector of C*H*W", kind="reshape", attrs={}, inputs=(1, 1),
          shape=_flatten_shape, view=True),
    OpDef(name="concat", doc="concatenation along channels", kind="merge", attrs={}, inputs=(2, None),
          shape=_concat_shape),
    OpDef(name="identity", doc="passes its input through unchanged", kind="other", attrs={}, inputs=(1, 1),
          shape=same_shape, view=True, hidden=True),
    OpDef(name="subsample_pad",
          doc="keep every stride-th position and zero-pad channels up to `out` (no parameters)", kind="other",
          attrs={"out": Attr(type="int", min=1), "stride": Attr(type="int", default=1, min=1),
                 "where": Attr(type="str", default="end", choices=("end", "both"),
                               doc="put the zero channels after the input's, or half on each side")},
          inputs=(1, 1), shape=_subsample_pad_shape, structural=True, label=_subsample_pad_label),
]
