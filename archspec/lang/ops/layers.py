"""The weighted layers and their normalisation: `conv`, `bn`, `linear`.

Conv and linear count multiply-adds (`macs`, the paper's convention; biases are not counted) and make the
network's depth. Lowered, they are `nn.Conv2d`, `nn.BatchNorm2d`/`1d` and `nn.Linear`, initialised as in the
paper (He): kaiming-normal convs (fan_out, ReLU), BN weight 1 and bias 0, or weight 0 where the spec says
`zero_init` (the last BN of each residual branch).
"""

from __future__ import annotations

from typing import Any

from archspec.lang.ops.base import (Attr, Counts, OpDef, Shape, ShapeError, feature_map, fmt_shape, numel, pair,
                                    spatial, torch_pair)


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
        raise ShapeError("E401", f"conv with groups={g} needs input and output channels divisible by {g}; "
                         f"got {c} in, {a['out']} out", "change `groups` or the widths")
    ho, wo = spatial("conv", a, ins[0])
    return (a["out"], ho, wo)


def _conv_counts(a: dict, ins: list[Shape], out: Shape) -> Counts:
    kh, kw = pair(a["kernel"])
    per_out = ins[0][0] // a["groups"] * kh * kw
    params = a["out"] * per_out + (a["out"] if a["bias"] else 0)
    return Counts(params=params, macs=numel(out) * per_out)


def _conv_module(a: dict, in_shape: Shape) -> Any:
    from torch import nn

    return nn.Conv2d(in_shape[0], a["out"], torch_pair(a["kernel"]), torch_pair(a["stride"]), torch_pair(a["pad"]),
                     torch_pair(a["dilation"]), a["groups"], a["bias"])


def _conv_init(module: Any, a: dict) -> None:
    from torch import nn

    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def _bn_shape(a: dict, ins: list[Shape]) -> Shape:
    if len(ins[0]) not in (1, 3):
        raise ShapeError("E401", f"bn expects C x H x W or a vector, got {fmt_shape(ins[0])}")
    return ins[0]


def _bn_counts(a: dict, ins: list[Shape], out: Shape) -> Counts:
    c = ins[0][0]
    return Counts(params=2 * c if a["affine"] else 0, buffers=2 * c + 1, extra=numel(out), extra_flops=2 * numel(out))


def _bn_module(a: dict, in_shape: Shape) -> Any:
    from torch import nn

    cls = nn.BatchNorm2d if len(in_shape) == 3 else nn.BatchNorm1d
    return cls(in_shape[0], eps=a["eps"], momentum=a["momentum"], affine=a["affine"])


def _bn_init(module: Any, a: dict) -> None:
    from torch import nn

    if module.affine:
        nn.init.constant_(module.weight, 0.0 if a.get("zero_init") else 1.0)
        nn.init.zeros_(module.bias)


def _linear_shape(a: dict, ins: list[Shape]) -> Shape:
    if len(ins[0]) != 1:
        hint = ("add `flatten` before it" if numel(ins[0][1:]) == 1
                else "add global average pooling and `flatten` before it")
        raise ShapeError("E401", f"linear expects a vector, got a {fmt_shape(ins[0])} feature map", hint)
    return (a["out"],)


def _linear_counts(a: dict, ins: list[Shape], out: Shape) -> Counts:
    return Counts(params=a["out"] * ins[0][0] + (a["out"] if a["bias"] else 0), macs=a["out"] * ins[0][0])


def _linear_module(a: dict, in_shape: Shape) -> Any:
    from torch import nn

    return nn.Linear(in_shape[0], a["out"], a["bias"])


CONV_ATTRS = {
    "out": Attr("int", min=1, doc="output channels"),
    "in_channels": Attr("int", None, min=1, doc="optional: the input channels this conv expects (checked)"),
    "kernel": Attr("size", min=1, doc="kernel size, k or [kh, kw]"),
    "stride": Attr("size", 1, min=1),
    "pad": Attr("size", 0, min=0, doc="zero padding on each side"),
    "dilation": Attr("size", 1, min=1),
    "groups": Attr("int", 1, min=1),
    "bias": Attr("bool", False),
}

OPS = [
    OpDef("conv", "2-D convolution", "conv", CONV_ATTRS, (1, 1), _conv_shape, _conv_counts, weighted=True,
          expects="in_channels", label=_conv_label, table=conv_text, torch_name="Conv2d",
          module=_conv_module, init=_conv_init, overwritable=True),
    OpDef("bn", "batch normalisation over channels", "norm", {
        "eps": Attr("float", 1e-5, min=0), "momentum": Attr("float", 0.1, min=0, max=1),
        "affine": Attr("bool", True),
        "zero_init": Attr("bool", False, doc="initialise the scale to 0 (last BN of a residual branch)"),
        "channels": Attr("int", None, min=1, doc="optional: the channels this BN expects (checked)"),
    }, (1, 1), _bn_shape, _bn_counts, expects="channels", label=lambda a: "BN", fold=True,
          torch_name="BatchNorm2d", module=_bn_module, init=_bn_init, overwritable=True),
    OpDef("linear", "fully connected layer", "linear", {
        "out": Attr("int", min=1, doc="output features"), "bias": Attr("bool", True),
        "in_features": Attr("int", None, min=1, doc="optional: the input features this layer expects (checked)")},
          (1, 1), _linear_shape, _linear_counts, weighted=True, expects="in_features",
          label=lambda a: f"fc {a['out']}", table=lambda a: f"{a['out']}-d fc", torch_name="Linear",
          module=_linear_module, overwritable=True),
]
