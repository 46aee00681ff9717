"""The op registry: for each primitive op, in one place, its attributes, shape rule, parameter and MAC rules.

Shapes exclude the batch dimension: `(C, H, W)` for feature maps, `(F,)` for vectors. Rules raise `ShapeError`
with a message that names what was expected and what arrived, and a hint; the shape pass turns it into a
diagnostic at the node's YAML line. PyTorch lowering lives in `compiler.lower` (the only module importing torch)
and is keyed by the same op names.

Counting convention (see docs/conventions.md):
- `macs`: multiply-accumulates of conv and linear layers (bias additions are not counted); this is what the
  ResNet paper and torchvision report as "FLOPs".
- `extra`: the other arithmetic, counted when asked (`--count all`): batch norm as one multiply-add per element
  (its inference form y = a*x + b), ReLU one op per element, add one op per element per extra operand, max
  pool k*k-1 comparisons and average pool k*k ops per output element, global average pool one op per input
  element. In MACs each of these counts 1; in FLOPs (`extra_flops`) BN's multiply-add counts 2 and the others 1,
  so FLOPs = 2 x MACs + extra_flops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

Shape = tuple[int, ...]

REQUIRED = object()


class ShapeError(Exception):
    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


@dataclass(frozen=True)
class Attr:
    type: str  # int | size (int or [h, w]) | bool | float | str
    default: Any = REQUIRED
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Counts:
    params: int = 0  # trainable parameters
    buffers: int = 0  # non-trainable state (BN running statistics and batch counter)
    macs: int = 0
    extra: int = 0  # other ops in MAC-equivalents (1 each)
    extra_flops: int = 0  # the same in FLOPs (a multiply-add is 2)


@dataclass(frozen=True)
class OpDef:
    name: str
    doc: str
    kind: str  # for colours and folding: input | conv | norm | act | pool | merge | linear | reshape | other
    attrs: dict[str, Attr]
    inputs: tuple[int, int | None]  # min, max (None: any number)
    shape: Callable[[dict, list[Shape]], Shape]
    counts: Callable[[dict, list[Shape], Shape], Counts] = lambda a, i, o: Counts()
    weighted: bool = False  # counts towards depth (conv and linear layers)
    aliases: tuple[str, ...] = field(default=())


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def numel(shape: Shape) -> int:
    return math.prod(shape)


def fmt_shape(shape: Shape) -> str:
    return "x".join(str(s) for s in shape)


def _feature_map(op: str, s: Shape) -> tuple[int, int, int]:
    if len(s) != 3:
        raise ShapeError("E401", f"{op} expects a C x H x W feature map, got a vector of {fmt_shape(s)}",
                         "it must come before `flatten`")
    return s  # type: ignore[return-value]


def _window(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:  # PyTorch: the last window must start inside the input
        out -= 1
    return out


def _spatial(op: str, a: dict, shape: Shape, stride_default: Any = 1) -> tuple[int, int]:
    c, h, w = _feature_map(op, shape)
    kh, kw = _pair(a["kernel"])
    stride = a.get("stride")
    sh, sw = _pair(stride if stride is not None else (a["kernel"] if stride_default == "kernel" else 1))
    ph, pw = _pair(a.get("pad", 0))
    dh, dw = _pair(a.get("dilation", 1))
    if op != "conv" and (2 * ph > kh or 2 * pw > kw):
        raise ShapeError("E314", f"{op} padding {fmt_shape((ph, pw))} is more than half its kernel "
                         f"{fmt_shape((kh, kw))}", "use pad <= kernel // 2")
    ho = _window(h, kh, sh, ph, dh, a.get("ceil_mode", False))
    wo = _window(w, kw, sw, pw, dw, a.get("ceil_mode", False))
    if ho < 1 or wo < 1:
        raise ShapeError("E402", f"{op} with kernel {fmt_shape((kh, kw))}, stride {fmt_shape((sh, sw))} and pad "
                         f"{fmt_shape((ph, pw))} leaves nothing of a {h}x{w} input (output {ho}x{wo})",
                         "use a larger input (--input) or remove a downsampling layer")
    return ho, wo


# ---------------------------------------------------------------------------------------------- shape rules

def _conv_shape(a: dict, ins: list[Shape]) -> Shape:
    c = _feature_map("conv", ins[0])[0]
    g = a["groups"]
    if c % g or a["out"] % g:
        raise ShapeError("E401", f"conv with groups={g} needs input and output channels divisible by {g}; "
                         f"got {c} in, {a['out']} out", "change `groups` or the widths")
    ho, wo = _spatial("conv", a, ins[0])
    return (a["out"], ho, wo)


def _conv_counts(a: dict, ins: list[Shape], out: Shape) -> Counts:
    kh, kw = _pair(a["kernel"])
    per_out = ins[0][0] // a["groups"] * kh * kw
    params = a["out"] * per_out + (a["out"] if a["bias"] else 0)
    return Counts(params=params, macs=numel(out) * per_out)


def _same(op: str) -> Callable[[dict, list[Shape]], Shape]:
    return lambda a, ins: ins[0]


def _bn_shape(a: dict, ins: list[Shape]) -> Shape:
    if len(ins[0]) not in (1, 3):
        raise ShapeError("E401", f"bn expects C x H x W or a vector, got {fmt_shape(ins[0])}")
    return ins[0]


def _bn_counts(a: dict, ins: list[Shape], out: Shape) -> Counts:
    c = ins[0][0]
    return Counts(params=2 * c if a["affine"] else 0, buffers=2 * c + 1, extra=numel(out), extra_flops=2 * numel(out))


def _pool_shape(op: str) -> Callable[[dict, list[Shape]], Shape]:
    def rule(a: dict, ins: list[Shape]) -> Shape:
        ho, wo = _spatial(op, a, ins[0], stride_default="kernel")
        return (ins[0][0], ho, wo)

    return rule


def _pool_counts(per_window: Callable[[int], int]) -> Callable[[dict, list[Shape], Shape], Counts]:
    def rule(a: dict, ins: list[Shape], out: Shape) -> Counts:
        kh, kw = _pair(a["kernel"])
        n = numel(out) * per_window(kh * kw)
        return Counts(extra=n, extra_flops=n)

    return rule


def _gap_shape(a: dict, ins: list[Shape]) -> Shape:
    return (_feature_map("global_avgpool", ins[0])[0], 1, 1)


def _flatten_shape(a: dict, ins: list[Shape]) -> Shape:
    return (numel(ins[0]),)


def _linear_shape(a: dict, ins: list[Shape]) -> Shape:
    if len(ins[0]) != 1:
        hint = ("add `flatten` before it" if numel(ins[0][1:]) == 1
                else "add global average pooling and `flatten` before it")
        raise ShapeError("E401", f"linear expects a vector, got a {fmt_shape(ins[0])} feature map", hint)
    return (a["out"],)


def _linear_counts(a: dict, ins: list[Shape], out: Shape) -> Counts:
    return Counts(params=a["out"] * ins[0][0] + (a["out"] if a["bias"] else 0), macs=a["out"] * ins[0][0])


def _add_shape(a: dict, ins: list[Shape]) -> Shape:
    first = ins[0]
    for i, s in enumerate(ins[1:], 1):
        if s != first:
            hint = None
            if len(s) == 3 and len(first) == 3:
                if s[0] != first[0] and s[1:] != first[1:]:
                    hint = (f"the skip path must match the body: project it with a strided 1x1 conv "
                            f"(option B) or subsample and zero-pad it (option A) to {fmt_shape(first)}")
                elif s[0] != first[0]:
                    hint = (f"the skip path carries {s[0]} channels and the body {first[0]}: use a projection "
                            f"shortcut (option B) or zero-padding (option A)")
                else:
                    hint = (f"the skip path is {s[1]}x{s[2]} and the body {first[1]}x{first[2]}: give the "
                            f"shortcut the block's stride")
            raise ShapeError("E400", f"the inputs of add disagree: input 1 is {fmt_shape(first)} but input {i + 1} "
                             f"is {fmt_shape(s)}", hint)
    return first


def _add_counts(a: dict, ins: list[Shape], out: Shape) -> Counts:
    n = numel(out) * (len(ins) - 1)
    return Counts(extra=n, extra_flops=n)


def _concat_shape(a: dict, ins: list[Shape]) -> Shape:
    for s in ins:
        _feature_map("concat", s)
    spatial = {s[1:] for s in ins}
    if len(spatial) > 1:
        raise ShapeError("E400", "concat inputs differ in spatial size: " + ", ".join(fmt_shape(s) for s in ins),
                         "downsample the larger inputs first")
    return (sum(s[0] for s in ins),) + ins[0][1:]


def _subsample_pad_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = _feature_map("subsample_pad", ins[0])
    if a["out"] < c:
        raise ShapeError("E401", f"subsample_pad can only add channels: input has {c}, out is {a['out']}",
                         "use a projection (1x1 conv) to reduce channels")
    s = a["stride"]
    return (a["out"], -(-h // s), -(-w // s))


def _act_counts(a: dict, ins: list[Shape], out: Shape) -> Counts:
    return Counts(extra=numel(out), extra_flops=numel(out))


def _input_shape(a: dict, ins: list[Shape]) -> Shape:
    return tuple(a["shape"])


_CONV_ATTRS = {
    "out": Attr("int", min=1, doc="output channels"),
    "in_channels": Attr("int", None, min=1, doc="optional: the input channels this conv expects (checked)"),
    "kernel": Attr("size", min=1, doc="kernel size, k or [kh, kw]"),
    "stride": Attr("size", 1, min=1),
    "pad": Attr("size", 0, min=0, doc="zero padding on each side"),
    "dilation": Attr("size", 1, min=1),
    "groups": Attr("int", 1, min=1),
    "bias": Attr("bool", False),
}

_POOL_ATTRS = {
    "kernel": Attr("size", min=1),
    "stride": Attr("size", None, min=1, doc="defaults to the kernel size"),
    "pad": Attr("size", 0, min=0),
    "ceil_mode": Attr("bool", False),
}

OPS: dict[str, OpDef] = {op.name: op for op in [
    OpDef("input", "the network input", "input", {"shape": Attr("list")}, (0, 0), _input_shape),
    OpDef("conv", "2-D convolution", "conv", _CONV_ATTRS, (1, 1), _conv_shape, _conv_counts, weighted=True),
    OpDef("bn", "batch normalisation over channels", "norm", {
        "eps": Attr("float", 1e-5, min=0), "momentum": Attr("float", 0.1, min=0, max=1),
        "affine": Attr("bool", True),
        "zero_init": Attr("bool", False, doc="initialise the scale to 0 (last BN of a residual branch)"),
        "channels": Attr("int", None, min=1, doc="optional: the channels this BN expects (checked)"),
    }, (1, 1), _bn_shape, _bn_counts),
    OpDef("relu", "rectified linear unit", "act", {}, (1, 1), _same("relu"), _act_counts),
    OpDef("maxpool", "max pooling", "pool", {**_POOL_ATTRS, "dilation": Attr("size", 1, min=1)}, (1, 1),
          _pool_shape("maxpool"), _pool_counts(lambda k: k - 1)),
    OpDef("avgpool", "average pooling", "pool", {**_POOL_ATTRS, "count_include_pad": Attr("bool", True)},
          (1, 1), _pool_shape("avgpool"), _pool_counts(lambda k: k)),
    OpDef("global_avgpool", "average over all positions: C x H x W to C x 1 x 1", "pool", {}, (1, 1),
          _gap_shape, lambda a, i, o: Counts(extra=numel(i[0]), extra_flops=numel(i[0]))),
    OpDef("flatten", "C x H x W to a vector of C*H*W", "reshape", {}, (1, 1), _flatten_shape),
    OpDef("linear", "fully connected layer", "linear", {
        "out": Attr("int", min=1, doc="output features"), "bias": Attr("bool", True),
        "in_features": Attr("int", None, min=1, doc="optional: the input features this layer expects (checked)")},
          (1, 1), _linear_shape, _linear_counts, weighted=True),
    OpDef("add", "element-wise sum of equally shaped inputs", "merge", {}, (2, None), _add_shape, _add_counts),
    OpDef("concat", "concatenation along channels", "merge", {}, (2, None), _concat_shape),
    OpDef("identity", "passes its input through unchanged", "other", {}, (1, 1), _same("identity")),
    OpDef("subsample_pad", "keep every stride-th position and zero-pad channels up to `out` (no parameters)",
          "other", {"out": Attr("int", min=1), "stride": Attr("int", 1, min=1),
                    "where": Attr("str", "end", choices=("end", "both"),
                                  doc="put the zero channels after the input's, or half on each side")},
          (1, 1), _subsample_pad_shape),
    OpDef("dropout", "zeroes elements with probability p during training", "other",
          {"p": Attr("float", 0.5, min=0, max=1)}, (1, 1), _same("dropout")),
    OpDef("softmax", "softmax over channels", "act", {}, (1, 1), _same("softmax"), _act_counts),
]}

USER_OPS = sorted(name for name in OPS if name != "input")


def check_attr(op: str, name: str, spec: Attr, value: Any) -> str | None:
    """None if `value` suits the attribute; otherwise what was expected."""
    t = spec.type
    if t == "list":
        return None if isinstance(value, list) else "a list"
    if t == "bool":
        return None if isinstance(value, bool) else "true or false"
    if t == "str":
        if not isinstance(value, str):
            return "a string"
        if spec.choices and value not in spec.choices:
            return "one of " + ", ".join(spec.choices)
        return None
    if t == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            return "a number"
        if not math.isfinite(value):
            return "a finite number"
    elif t in ("int", "size"):
        parts = value if t == "size" and isinstance(value, list) and len(value) == 2 else [value]
        for v in parts:
            if isinstance(v, bool) or not isinstance(v, int):
                if isinstance(v, float) and v.is_integer():
                    return f"a whole number (write {int(v)}, not {v})"
                return "a whole number" + (" or [h, w]" if t == "size" else "")
        if spec.min is not None and any(v < spec.min for v in parts):
            return f"at least {spec.min:g}" if spec.min else "zero or more"
        return None
    if spec.min is not None and value < spec.min:
        return f"at least {spec.min:g}"
    if spec.max is not None and value > spec.max:
        return f"at most {spec.max:g}"
    return None


_EXPECTED = {"conv": "in_channels", "linear": "in_features", "bn": "channels"}


def propagate_shapes(names: Iterable[str], node: Callable[[str], Any],
                     on_error: Callable[[str, ShapeError], None]) -> dict[str, Shape]:
    """Shapes of every node, visiting `names` in topological order; `node(name)` gives a mapping with `op`,
    `attrs` and `inputs`. A node whose input failed gets no shape and no second error."""
    shapes: dict[str, Shape] = {}
    for name in names:
        data = node(name)
        ins = [shapes.get(p) for p in data["inputs"]]
        if any(s is None for s in ins):
            continue
        op, attrs = data["op"], data["attrs"]
        key = _EXPECTED.get(op)
        try:
            if key and attrs.get(key) is not None and attrs[key] != ins[0][0]:
                what = "features" if op == "linear" else "channels"
                producer = data["inputs"][0]
                raise ShapeError("E401", f"{op} expects {attrs[key]} input {what}, got {ins[0][0]} from `{producer}`",
                                 f"set `{key}: {ins[0][0]}` or change the width of `{producer}`")
            shapes[name] = tuple(OPS[op].shape(attrs, ins))
        except ShapeError as e:
            on_error(name, e)
    return shapes
