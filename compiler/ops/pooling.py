"""Lowering of pooling: `nn.MaxPool2d`, `nn.AvgPool2d`, `nn.AdaptiveAvgPool2d`."""

from __future__ import annotations

from typing import Any

from archspec.compiler.ops.base import Lowering, Shape, torch_pair


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


LOWERINGS = [
    Lowering(op="maxpool", torch_name="MaxPool2d", module=_maxpool_module),
    Lowering(op="avgpool", torch_name="AvgPool2d", module=_avgpool_module),
    Lowering(op="global_avgpool", torch_name="AdaptiveAvgPool2d", module=_gap_module),
]
