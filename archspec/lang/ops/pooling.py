"""Pooling: `maxpool`, `avgpool` (windows with PyTorch's exact output arithmetic) and `global_avgpool`.

Counted with `--count all`: max pool k*k-1 comparisons and average pool k*k ops per output element, global
average pool one op per input element. All three are structural (their windows are what trained weights saw).
Their lowering is in `archspec.compiler.ops.pooling`.
"""

from __future__ import annotations

from typing import Callable

from archspec.lang.ops.base import Attr, Counts, CountRule, OpDef, Shape, ShapeRule, feature_map, numel, pair, \
    spatial


def _pool_shape(op: str) -> ShapeRule:
    def rule(a: dict, ins: list[Shape]) -> Shape:
        ho, wo = spatial(op, a, ins[0], stride_default="kernel")
        return (ins[0][0], ho, wo)

    return rule


def _pool_counts(per_window: Callable[[int], int]) -> CountRule:
    def rule(a: dict, ins: list[Shape], out: Shape) -> Counts:
        kh, kw = pair(a["kernel"])
        n = numel(out) * per_window(kh * kw)
        return Counts(extra=n, extra_flops=n)

    return rule


def _pool_label(short: str) -> Callable[[dict], str]:
    def label(a: dict) -> str:
        k, s = a["kernel"], a["stride"] if a["stride"] is not None else a["kernel"]
        return f"{short} pool {k}x{k}" + (f" /{s}" if s != 1 else "")

    return label


def _pool_table(word: str) -> Callable[[dict], str]:
    def table(a: dict) -> str:
        k = a["kernel"]
        stride = a["stride"] if a["stride"] is not None else k
        return f"{k}x{k} {word} pool" + (f", stride {stride}" if stride not in (1, [1, 1]) else "")

    return table


def _gap_shape(a: dict, ins: list[Shape]) -> Shape:
    return (feature_map("global_avgpool", ins[0])[0], 1, 1)


POOL_ATTRS = {
    "kernel": Attr(type="size", min=1),
    "stride": Attr(type="size", default=None, min=1, doc="defaults to the kernel size"),
    "pad": Attr(type="size", default=0, min=0),
    "ceil_mode": Attr(type="bool", default=False),
}

OPS = [
    OpDef(name="maxpool", doc="max pooling", kind="pool",
          attrs={**POOL_ATTRS, "dilation": Attr(type="size", default=1, min=1)}, inputs=(1, 1),
          shape=_pool_shape("maxpool"), counts=_pool_counts(lambda k: k - 1), structural=True,
          label=_pool_label("max"), table=_pool_table("max")),
    OpDef(name="avgpool", doc="average pooling", kind="pool",
          attrs={**POOL_ATTRS, "count_include_pad": Attr(type="bool", default=True)}, inputs=(1, 1),
          shape=_pool_shape("avgpool"), counts=_pool_counts(lambda k: k), structural=True,
          label=_pool_label("avg"), table=_pool_table("average")),
    OpDef(name="global_avgpool", doc="average over all positions: C x H x W to C x 1 x 1", kind="pool", attrs={},
          inputs=(1, 1), shape=_gap_shape,
          counts=lambda a, i, o: Counts(extra=numel(i[0]), extra_flops=numel(i[0])), structural=True,
          label=lambda a: "global avg pool", table=lambda a: "average pool"),
]
