"""The weighted layers and their normalisation: `conv`, `bn`, `linear`.

Conv and linear count multiply-adds (`macs`, the paper's convention; biases are not counted) and make the
network's depth. All three are structural: their attributes are what trained weights were made for. Their
lowering and initialisation are in `archspec.compiler.ops.layers`.
"""

from __future__ import annotations

from typing import Any

from archspec.lang.codes import WRONG_TENSOR_SHAPE
from archspec.lang.ops.base import Attr, Counts, OpDef, Shape, ShapeError, feature_map, fmt_shape, numel, pair, \
    spatial


def _size_text(v: Any) -> str:
    return str(v) if isinstance(v, int) else "x".join(map(str, v))


def conv_text(a: dict, stride: bool = True) -> str:
    """A conv as Table 1 writes it: `3x3, 64` (`, stride 2` when strided and asked)."""
    k = _size_text(a["kernel"])
    text = f"{k}x{k}, {a['out']}" if isinstance(a["kernel"], int) else f"{k}, {a['out']}"
    if stride and a["stride"] not in (1, [1, 1]):
        text += f", stride {a['stride']}"
    return text


def _conv_label(a: dict) -> str:
    k = a["kernel"]
    k = f"{k}x{k}" if isinstance(k, int) else _size_text(k)
    s = a["stride"]
    return f"conv {k}{'' if s in (1, [1, 1]) else ' /' + _size_text(s)}, {a['out']}"


def _conv_shape(a: dict, ins: list[Shape]) -> Shape:
    c = feature_map("conv", ins[0])[0]
    g = a["groups"]
    if c % g or a["out"] % g:
        raise ShapeError(WRONG_TENSOR_SHAPE, f"conv with groups={g} needs input and output channels divisible by {g}; "
                         f"got {c} in, {a['out']} out", "change `groups` or the widths")
    ho, wo = spatial("conv", a, ins[0])
    return (a["out"], ho, wo)


def _conv_counts(a: dict, ins: list[Shape], out: Shape) -> Counts:
    kh, kw = pair(a["kernel"])
    per_out = ins[0][0] // a["groups"] * kh * kw
    params = a["out"] * per_out + (a["out"] if a["bias"] else 0)
    return Counts(params=params, macs=numel(out) * per_out)


def _bn_shape(a: dict, ins: list[Shape]) -> Shape:
    if len(ins[0]) not in (1, 3):
        raise ShapeError(WRONG_TENSOR_SHAPE, f"bn expects C x H x W or a vector, got {fmt_shape(ins[0])}")
    return ins[0]


def _bn_counts(a: dict, ins: list[Shape], out: Shape) -> Counts:
    c = ins[0][0]
    return Counts(params=2 * c if a["affine"] else 0, buffers=2 * c + 1, extra=numel(out), extra_flops=2 * numel(out))


def _gn_shape(a: dict, ins: list[Shape]) -> Shape:
    c, _, _ = feature_map("group_norm", ins[0])
    if c % a["groups"]:
        divisors = [g for g in (32, 16, 8, 4, 2, 1) if c % g == 0]
        raise ShapeError(WRONG_TENSOR_SHAPE, f"group_norm: {c} channels do not split into {a['groups']} groups",
                         f"use a number of groups that divides {c} (e.g. `groups: {divisors[0]}`)")
    return ins[0]


def _gn_counts(a: dict, ins: list[Shape], out: Shape) -> Counts:
    """As BN: a scale and a shift per channel (2 FLOPs an element, 1 op); no running statistics."""
    c = ins[0][0]
    return Counts(params=2 * c if a["affine"] else 0, extra=numel(out), extra_flops=2 * numel(out))


def _linear_shape(a: dict, ins: list[Shape]) -> Shape:
    if len(ins[0]) != 1:
        hint = ("add `flatten` before it" if numel(ins[0][1:]) == 1
                else "add global average pooling and `flatten` before it")
        raise ShapeError(WRONG_TENSOR_SHAPE, f"linear expects a vector, got a {fmt_shape(ins[0])} feature map", hint)
    return (a["out"],)


def _linear_counts(a: dict, ins: list[Shape], out: Shape) -> Counts:
    return Counts(params=a["out"] * ins[0][0] + (a["out"] if a["bias"] else 0), macs=a["out"] * ins[0][0])


CONV_ATTRS = {
    "out": Attr(type="int", min=1, doc="output channels"),
    "in_channels": Attr(type="int", default=None, min=1,
                        doc="optional: the input channels this conv expects (checked)"),
    "kernel": Attr(type="size", min=1, doc="kernel size, k or [kh, kw]"),
    "stride": Attr(type="size", default=1, min=1),
    "pad": Attr(type="size", default=0, min=0, doc="zero padding on each side"),
    "dilation": Attr(type="size", default=1, min=1),
    "groups": Attr(type="int", default=1, min=1),
    "bias": Attr(type="bool", default=False),
}

BN_ATTRS = {
    "eps": Attr(type="float", default=1e-5, min=0),
    "momentum": Attr(type="float", default=0.1, min=0, max=1),
    "affine": Attr(type="bool", default=True),
    "zero_init": Attr(type="bool", default=False, doc="initialise the scale to 0 (last BN of a residual branch)"),
    "channels": Attr(type="int", default=None, min=1, doc="optional: the channels this BN expects (checked)"),
}

GN_ATTRS = {
    "groups": Attr(type="int", default=32, min=1,
                   doc="groups of channels normalised together (they must divide the channels)"),
    "eps": Attr(type="float", default=1e-5, min=0),
    "affine": Attr(type="bool", default=True),
    "zero_init": Attr(type="bool", default=False, doc="initialise the scale to 0 (last norm of a residual branch)"),
    "channels": Attr(type="int", default=None, min=1, doc="optional: the channels this norm expects (checked)"),
}

LINEAR_ATTRS = {
    "out": Attr(type="int", min=1, doc="output features"),
    "bias": Attr(type="bool", default=True),
    "in_features": Attr(type="int", default=None, min=1,
                        doc="optional: the input features this layer expects (checked)"),
}

OPS = [
    OpDef(name="conv", doc="2-D convolution", kind="conv", attrs=CONV_ATTRS, inputs=(1, 1), shape=_conv_shape,
          counts=_conv_counts, weighted=True, expects="in_channels", structural=True, label=_conv_label,
          table=conv_text),
    OpDef(name="bn", doc="batch normalisation over channels", kind="norm", attrs=BN_ATTRS, inputs=(1, 1),
          shape=_bn_shape, counts=_bn_counts, expects="channels", structural=True, label=lambda a: "BN", fold=True),
    OpDef(name="group_norm", doc="group normalisation (Wu and He 2018): statistics over groups of channels of each "
          "sample, the same in training and eval (no running statistics)", kind="norm", attrs=GN_ATTRS,
          inputs=(1, 1), shape=_gn_shape, counts=_gn_counts, expects="channels", structural=True,
          label=lambda a: f"GN/{a['groups']}", fold=True),
    OpDef(name="linear", doc="fully connected layer", kind="linear", attrs=LINEAR_ATTRS, inputs=(1, 1),
          shape=_linear_shape, counts=_linear_counts, weighted=True, expects="in_features", structural=True,
          label=lambda a: f"fc {a['out']}", table=lambda a: f"{a['out']}-d fc"),
]
