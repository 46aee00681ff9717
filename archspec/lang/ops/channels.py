"""Channel-level ops: `channel_conv` (ECA's 1-D convolution across channels), `slice` (a contiguous range of
channels), `branch_softmax` (ResNeSt's radix softmax, SK's softmax across paths) and `branch_sum` (the sum of
equal contiguous chunks of channels: ResNeSt's radix sum, SK's sum over paths).

Design decision: the IR keeps C x H x W feature maps. There are no rank-N tensors and no reshape or transpose
ops. What timm's ResNet-family attention modules do with reshapes is expressed here as ops that take and give
C x H x W maps, with the reshape inside the op:

- ECA (timm `EcaModule`) views the pooled C-vector as a 1-channel sequence of length C and convolves it:
  `channel_conv` is that convolution, sliding along the channels independently at every spatial position (on a
  C x 1 x 1 input, exactly timm's).
- Res2Net's `torch.split(x, width, 1)` is `slice`s: contiguous ranges of channels.
- ResNeSt's sum over its radix chunks (`x.reshape(B, radix, C, H, W).sum(1)`) and SK's sum over its stacked
  paths (`torch.stack(paths, 1).sum(1)`) are `branch_sum`: R x C channels in, C out, output channel c the sum of
  input channels r C + c. A weighted sum is a `mul` by the branch-major weights (a C x 1 x 1 input broadcasts)
  then a `branch_sum`, so that split attention is one fixed list of items whatever the radix and cardinality.
- ResNeSt's `RadixSoftmax` and SK's `softmax(x.view(B, paths, C, H, W), dim=1)` are `branch_softmax`, which
  puts its output in branch-major order (block r of the output holds branch r's weights for every group), so
  that `slice`s of it line up with the slices of the branches. With C channels, R branches and G groups
  (C' = C / (R G)), input channel g R C' + r C' + c (timm's `fc2` output: groups-major, then branch, then channel)
  becomes output channel r G C' + g C' + c, and the softmax runs over r for each (g, c) and position.

`slice` takes `start` and `size` rather than `parts` and `index`: a spec then states the channels it reads (what
a reader checks against the weights), the ranges need not be equal, and equal chunks are one expression away
(`start: =index * width, size: =width`, Res2Net's split by `width` and ResNeSt's radix chunks alike).

`channel_conv` has no `pad`: it is fixed at (kernel - 1) // 2 with an odd kernel, so that the conv keeps the C
channels (any other padding would change the channel count, which none of the modules it stands for does).

Counted as follows. `channel_conv` is a weighted layer: `kernel` weights (+1 bias), kernel x C x H x W
multiply-adds in `macs` (zero-padded taps included, as for `conv`), and it counts towards depth like the 1x1
convs of squeeze-and-excitation; its kind is `linear` (a banded fully connected layer across channels), not
`conv`, which Table 1 reads as a 2-D conv with `out` and `stride`. `slice` is a view (no parameters, no
arithmetic, no activation memory). `branch_softmax` is an activation: 1 op per element with `--count all`, as
`softmax` and `sigmoid`, whatever primitive operations (exp, sum, divide) it takes. `branch_sum` counts as `add`
does: branches - 1 ops per output element (none for 1 branch, where it is its input).

All four are structural: a 1-D kernel is what trained weights were made for, and where a network splits its
channels, how it groups its branches and how many it sums decide which trained weights fit. Their lowering is in
`archspec.compiler.ops.channels`.
"""

from __future__ import annotations

from archspec.lang.codes import INVALID_OP_ATTR, WRONG_TENSOR_SHAPE
from archspec.lang.ops.base import Attr, Counts, OpDef, Shape, ShapeError, feature_map, numel, per_element


def _channel_conv_shape(a: dict, ins: list[Shape]) -> Shape:
    feature_map("channel_conv", ins[0])
    k = a["kernel"]
    if k % 2 == 0:
        raise ShapeError(INVALID_OP_ATTR, f"channel_conv needs an odd kernel to keep the channels, got {k}",
                         f"use `kernel: {k - 1}` or `kernel: {k + 1}` (padded by (kernel - 1) // 2 on each side)")
    return ins[0]


def _channel_conv_counts(a: dict, ins: list[Shape], out: Shape) -> Counts:
    k = a["kernel"]
    return Counts(params=k + (1 if a["bias"] else 0), macs=k * numel(out))


def _slice_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = feature_map("slice", ins[0])
    start, size = a["start"], a["size"]
    if start + size > c:
        fit = f"`size: {c - start}`" if start < c else f"`start: {max(c - size, 0)}`"
        raise ShapeError(WRONG_TENSOR_SHAPE,
                         f"slice of channels {start}:{start + size} runs past the {c} channels of its input",
                         f"the input has {c} channels (0:{c}): take a range inside them, e.g. {fit}")
    return (size, h, w)


def _branch_softmax_shape(a: dict, ins: list[Shape]) -> Shape:
    c = feature_map("branch_softmax", ins[0])[0]
    r, g = a["branches"], a["groups"]
    if c % (r * g):
        up = -(-c // (r * g)) * r * g
        raise ShapeError(WRONG_TENSOR_SHAPE,
                         f"branch_softmax: {c} channels do not split into {r} branches x {g} groups",
                         f"the input needs a multiple of {r * g} channels ({r} x {g}), e.g. {up}: change the width "
                         f"(`out`) of the layer before it, or `branches`/`groups`")
    return ins[0]


def _branch_sum_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = feature_map("branch_sum", ins[0])
    r = a["branches"]
    if c % r:
        up = -(-c // r) * r
        raise ShapeError(WRONG_TENSOR_SHAPE, f"branch_sum: {c} channels do not split into {r} equal branches",
                         f"the input needs a multiple of {r} channels, e.g. {up}: change the width (`out`) of the "
                         f"layer before it, or `branches`")
    return (c // r, h, w)


def _branch_sum_counts(a: dict, ins: list[Shape], out: Shape) -> Counts:
    n = numel(out) * (a["branches"] - 1)  # as `add` of that many inputs
    return Counts(extra=n, extra_flops=n)


def _branch_softmax_label(a: dict) -> str:
    if a["branches"] == 1:
        return "sigmoid (1 branch)"
    return f"softmax over {a['branches']} branches" + (f", {a['groups']} groups" if a["groups"] > 1 else "")


CHANNEL_CONV_ATTRS = {
    "kernel": Attr(type="int", min=1, doc="odd: the channels each output reads; padded by (kernel - 1) // 2"),
    "bias": Attr(type="bool", default=False),
}

SLICE_ATTRS = {
    "start": Attr(type="int", default=0, min=0, doc="the first channel taken"),
    "size": Attr(type="int", min=1, doc="the number of channels taken"),
}

BRANCH_SOFTMAX_ATTRS = {
    "branches": Attr(type="int", min=1, doc="ResNeSt's radix, SK's paths; 1: a sigmoid"),
    "groups": Attr(type="int", default=1, min=1, doc="ResNeSt's cardinality; the input is groups-major"),
}

BRANCH_SUM_ATTRS = {
    "branches": Attr(type="int", min=1, doc="the chunks summed (ResNeSt's radix, SK's paths); 1: the input itself"),
}

OPS = [
    OpDef(name="channel_conv", doc="1-D convolution across the channels at every position, the C channels kept "
          "(ECA's conv); C x 1 x 1 after global_avgpool", kind="linear", attrs=CHANNEL_CONV_ATTRS, inputs=(1, 1),
          shape=_channel_conv_shape, counts=_channel_conv_counts, weighted=True, structural=True,
          label=lambda a: f"conv1d k{a['kernel']}"),
    OpDef(name="slice", doc="channels start to start + size of its input, a view: no arithmetic, no memory",
          kind="reshape", attrs=SLICE_ATTRS, inputs=(1, 1), shape=_slice_shape, structural=True, view=True,
          label=lambda a: f"channels {a['start']}:{a['start'] + a['size']}"),
    OpDef(name="branch_softmax", doc="softmax across `branches` (ResNeSt's radix, SK's paths) of a groups-major "
          "input, given branch-major; a sigmoid for 1 branch; one op per element when counted", kind="act",
          attrs=BRANCH_SOFTMAX_ATTRS, inputs=(1, 1), shape=_branch_softmax_shape, counts=per_element,
          structural=True, label=_branch_softmax_label),
    OpDef(name="branch_sum", doc="the sum of `branches` equal contiguous chunks of the channels (ResNeSt's radix, "
          "SK's paths): branches x C channels in, C out; branches - 1 ops per output element when counted",
          kind="merge", attrs=BRANCH_SUM_ATTRS, inputs=(1, 1), shape=_branch_sum_shape, counts=_branch_sum_counts,
          structural=True, label=lambda a: f"sum of {a['branches']} branches" if a["branches"] > 1
          else "identity (1 branch)"),
]
