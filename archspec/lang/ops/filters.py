"""Fixed and standardised filters: `blur_pool` (anti-aliased downsampling, timm's `BlurPool2d` as its resnetblur*
models use it) and `std_conv` (a weight-standardised convolution, BiT's, timm's `StdConv2d`).

`blur_pool` is a depthwise convolution with a fixed binomial low-pass filter (Zhang 2019, "Making convolutional
networks shift-invariant again"): the k x k outer product of the binomial coefficients C(k-1, i) / 2^(k-1),
applied to each channel alone with a stride, after padding every side by ((stride - 1) + (kernel - 1)) // 2 (timm's
`get_padding`; 1 for the default 3x3 /2) in `pad_mode`. Counted as the depthwise conv it is: kernel*kernel
multiply-adds per output element in `macs` (what a trace of timm's model counts), no parameters, and its filter
(channels x 1 x k x k) as buffers: timm registers it as a non-persistent buffer, so it is in `model.buffers()`,
which is what archspec's `buffers` counts, but in no state_dict. It is not weighted (no trained weights, no depth).

`std_conv` has conv's attributes, shape rule and counts (it is a conv whose weight is standardised on the fly:
per output channel, zero mean and unit variance over its fan-in, variance biased, eps added to the variance) plus
`eps`; it is weighted and counts towards depth like `conv`.

`pad` pads each side of a feature map with a constant (BiT's stem: zeros before a max pool that pads nothing, so
that a border window sees 0, not -inf): no parameters, nothing counted, not weighted.

All three are structural. Their lowering is in `archspec.compiler.ops.filters`.
"""

from __future__ import annotations

from archspec.lang.codes import EMPTY_OUTPUT, WRONG_TENSOR_SHAPE
from archspec.lang.ops.base import Attr, Counts, OpDef, Shape, ShapeError, feature_map, numel
from archspec.lang.ops.layers import CONV_ATTRS, _conv_counts, _conv_label, _conv_shape, conv_text

PAD_MODES = ("reflect", "replicate", "circular", "constant", "zeros")  # `zeros` is `constant`: nn.Conv2d's name


def blur_padding(kernel: int, stride: int) -> int:
    """The padding on each side, timm's `get_padding(kernel, stride)` (dilation 1)."""
    return (stride - 1 + kernel - 1) // 2


def _blur_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = feature_map("blur_pool", ins[0])
    k, s, mode = a["kernel"], a["stride"], a["pad_mode"]
    p = blur_padding(k, s)
    # torch's F.pad: reflection needs a padding smaller than the input, circular one no larger
    limit = {"reflect": p + 1, "circular": max(p, 1)}.get(mode, 1)
    if min(h, w) < limit:
        raise ShapeError(WRONG_TENSOR_SHAPE, f"blur_pool: {mode} padding of {p} on each side needs an input of at "
                         f"least {limit}x{limit}, got {h}x{w}",
                         "use `pad_mode: replicate` or `pad_mode: constant`, or a larger input (--input)")
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    if ho < 1 or wo < 1:
        raise ShapeError(EMPTY_OUTPUT, f"blur_pool with kernel {k}, stride {s} and padding {p} leaves nothing of a "
                         f"{h}x{w} input (output {ho}x{wo})", "use a larger input (--input) or a smaller kernel")
    return (c, ho, wo)


def _blur_counts(a: dict, ins: list[Shape], out: Shape) -> Counts:
    """A depthwise conv with a fixed k x k filter: k*k multiply-adds per output element (`macs`); the filter, one
    k x k copy per channel as timm keeps it, is a buffer (non-persistent: in no state_dict)."""
    k2 = a["kernel"] ** 2
    return Counts(buffers=ins[0][0] * k2, macs=numel(out) * k2)


def _blur_label(a: dict) -> str:
    k, s, mode = a["kernel"], a["stride"], a["pad_mode"]
    return f"blur {k}x{k}" + (f" /{s}" if s != 1 else "") + ("" if mode == "reflect" else f" ({mode})")


def _blur_table(a: dict) -> str:
    k, s = a["kernel"], a["stride"]
    return f"{k}x{k} blur pool" + (f", stride {s}" if s != 1 else "")


BLUR_ATTRS = {
    "kernel": Attr(type="int", default=3, min=2, max=7,
                   doc="binomial filter size (timm's filt_size): 3 is [1, 2, 1] / 4 in each direction"),
    "stride": Attr(type="int", default=2, min=1),
    "pad_mode": Attr(type="str", default="reflect", choices=PAD_MODES,
                     doc="how the border is padded (torch's F.pad modes; constant and zeros pad with 0)"),
}

STD_CONV_ATTRS = {
    **CONV_ATTRS,
    "eps": Attr(type="float", default=1e-8, min=0,
                doc="added to each output channel's weight variance (BiT's 1e-8; timm's class default is 1e-6)"),
}

def _pad_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = feature_map("pad", ins[0])
    p = a["pad"]
    return (c, h + 2 * p, w + 2 * p)


PAD_ATTRS = {
    "pad": Attr(type="int", min=1, doc="rows and columns added on each side"),
    "value": Attr(type="float", default=0.0, doc="what they hold"),
}

OPS = [
    OpDef(name="pad", doc="constant padding of each side of a feature map (timm's ConstantPad2d in BiT's stem)",
          kind="other", attrs=PAD_ATTRS, inputs=(1, 1), shape=_pad_shape, structural=True,
          label=lambda a: f"pad {a['pad']}" + (f" ({a['value']:g})" if a["value"] else "")),
    OpDef(name="blur_pool", doc="anti-aliased downsampling: a fixed binomial low-pass filter applied to each "
          "channel with a stride (timm's BlurPool2d; a depthwise conv, counted in MACs)", kind="pool",
          attrs=BLUR_ATTRS, inputs=(1, 1), shape=_blur_shape, counts=_blur_counts, structural=True,
          label=_blur_label, table=_blur_table),
    OpDef(name="std_conv", doc="2-D convolution with weight standardisation (BiT; timm's StdConv2d): each output "
          "channel's weight has zero mean and unit variance over its fan-in", kind="conv", attrs=STD_CONV_ATTRS,
          inputs=(1, 1), shape=_conv_shape, counts=_conv_counts, weighted=True, expects="in_channels",
          structural=True, label=lambda a: "WS " + _conv_label(a), table=conv_text),
]
