"""Pooling: `maxpool`, `avgpool` (windows with PyTorch's exact output arithmetic) and `global_avgpool`.

Counted with `--count all`: max pool k*k-1 comparisons and average pool k*k ops per output element, global
average pool one op per input element. Lowered as `nn.MaxPool2d`, `nn.AvgPool2d`, `nn.AdaptiveAvgPool2d`.
"""

from __future__ import annotations

from typing import Any, Callable

from archspec.lang.ops.base import Attr, Counts, CountRule, OpDef, Shape, ShapeRule, feature_map, numel, pair, \
    spatial, torch_pair


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


def _stride(a: dict) -> Any:
    return torch_pair(a["stride"]) if a["stride"] is not None else None


def _maxpool_module(a: dict, in_shape: Shape) -> Any:
    from torch import nn

    return nn.MaxPool2d(torch_pair(a["kernel"]), _stride(a), torch_pair(a["pad"]), torch_pair(a["dilation"]),
                        ceil_mode=a["ceil_mode"])


def _avgpool_module(a: dict, in_shape: Shape) -> Any:
    from torch import nn

    return nn.AvgPool2d(torch_pair(a["kernel"]), _stride(a), torch_pair(a["pad"]), ceil_mode=a["ceil_mode"],
                        count_include_pad=a["count_include_pad"])


def _gap_module(a: dict, in_shape: Shape) -> Any:
    from torch import nn

    return nn.AdaptiveAvgPool2d((1, 1))


def _gap_shape(a: dict, ins: list[Shape]) -> Shape:
    return (feature_map("global_avgpool", ins[0])[0], 1, 1)


POOL_ATTRS = {
    "kernel": Attr("size", min=1),
    "stride": Attr("size", None, min=1, doc="defaults to the kernel size"),
    "pad": Attr("size", 0, min=0),
    "ceil_mode": Attr("bool", False),
}

OPS = [
    OpDef("maxpool", "max pooling", "pool", {**POOL_ATTRS, "dilation": Attr("size", 1, min=1)}, (1, 1),
          _pool_shape("maxpool"), _pool_counts(lambda k: k - 1), label=_pool_label("max"),
          table=_pool_table("max"), torch_name="MaxPool2d", module=_maxpool_module),
    OpDef("avgpool", "average pooling", "pool", {**POOL_ATTRS, "count_include_pad": Attr("bool", True)},
          (1, 1), _pool_shape("avgpool"), _pool_counts(lambda k: k), label=_pool_label("avg"),
          table=_pool_table("average"), torch_name="AvgPool2d", module=_avgpool_module),
    OpDef("global_avgpool", "average over all positions: C x H x W to C x 1 x 1", "pool", {}, (1, 1),
          _gap_shape, lambda a, i, o: Counts(extra=numel(i[0]), extra_flops=numel(i[0])),
          label=lambda a: "global avg pool", table=lambda a: "average pool", torch_name="AdaptiveAvgPool2d",
          module=_gap_module),
]
