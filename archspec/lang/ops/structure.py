"""Ops that route or reshape data: the network `input`, `identity`, `flatten`, `concat`, and `subsample_pad`
(the parameter-free option-A shortcut: keep every stride-th position, zero-pad the channels).
"""

from __future__ import annotations

from typing import Any

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
        raise ShapeError("E400", "concat inputs differ in spatial size: " + ", ".join(fmt_shape(s) for s in ins),
                         "downsample the larger inputs first")
    return (sum(s[0] for s in ins),) + ins[0][1:]


def _subsample_pad_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = feature_map("subsample_pad", ins[0])
    if a["out"] < c:
        raise ShapeError("E401", f"subsample_pad can only add channels: input has {c}, out is {a['out']}",
                         "use a projection (1x1 conv) to reduce channels")
    s = a["stride"]
    return (a["out"], -(-h // s), -(-w // s))


def _subsample_pad_label(a: dict) -> str:
    return f"zero-pad /{a['stride']}, {a['out']}" if a["stride"] != 1 else f"zero-pad to {a['out']}"


def _subsample_pad_module(a: dict, in_shape: Shape) -> Any:
    from archspec.lang.ops.modules import SubsamplePad

    return SubsamplePad(a["out"], a["stride"], a["where"])


def _identity(graph: Any, a: dict, args: list, in_place: bool) -> Any:
    return args[0]  # the op is its input: nothing new to name


def _flatten(graph: Any, a: dict, args: list, in_place: bool) -> Any:
    import torch

    return graph.call_function(torch.flatten, (args[0], 1))


def _concat(graph: Any, a: dict, args: list, in_place: bool) -> Any:
    import torch

    return graph.call_function(torch.cat, (tuple(args), 1))


OPS = [
    OpDef("input", "the network input", "input", {"shape": Attr("list")}, (0, 0), _input_shape,
          label=lambda a: f"input {fmt_shape(tuple(a['shape']))}", view=True),
    OpDef("flatten", "C x H x W to a vector of C*H*W", "reshape", {}, (1, 1), _flatten_shape, view=True,
          torch_name="flatten", function=_flatten),
    OpDef("concat", "concatenation along channels", "merge", {}, (2, None), _concat_shape, torch_name="cat",
          function=_concat),
    OpDef("identity", "passes its input through unchanged", "other", {}, (1, 1), same_shape, view=True,
          torch_name="identity", function=_identity),
    OpDef("subsample_pad", "keep every stride-th position and zero-pad channels up to `out` (no parameters)",
          "other", {"out": Attr("int", min=1), "stride": Attr("int", 1, min=1),
                    "where": Attr("str", "end", choices=("end", "both"),
                                  doc="put the zero channels after the input's, or half on each side")},
          (1, 1), _subsample_pad_shape, label=_subsample_pad_label, torch_name="SubsamplePad",
          module=_subsample_pad_module),
]
