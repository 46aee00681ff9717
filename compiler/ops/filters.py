"""Lowering of the fixed and standardised filters: `blur_pool` to `BlurPool2d` and `std_conv` to `StdConv2d` (an
`nn.Conv2d` subclass, initialised as `conv`: kaiming-normal, fan_out). Both modules are in
`archspec.compiler.ops.filter_modules`, imported when a model is built.
"""

from __future__ import annotations

from typing import Any

from archspec.compiler.ops.base import Lowering, Shape, torch_pair
from archspec.compiler.ops.layers import _conv_init


def _blur_module(a: dict, in_shape: Shape) -> Any:
    from archspec.compiler.ops.filter_modules import BlurPool2d

    return BlurPool2d(in_shape[0], a["kernel"], a["stride"], a["pad_mode"])


def _std_conv_module(a: dict, in_shape: Shape) -> Any:
    from archspec.compiler.ops.filter_modules import StdConv2d

    return StdConv2d(in_shape[0], a["out"], torch_pair(a["kernel"]), torch_pair(a["stride"]), torch_pair(a["pad"]),
                     torch_pair(a["dilation"]), a["groups"], a["bias"], eps=a["eps"])


def _pad(graph: Any, a: dict, args: list, in_place: bool) -> Any:
    import torch.nn.functional as F

    p = a["pad"]
    return graph.call_function(F.pad, (args[0], (p, p, p, p)), {"value": float(a["value"])})


LOWERINGS = [
    Lowering(op="pad", torch_name="pad", function=_pad),
    Lowering(op="blur_pool", torch_name="BlurPool2d", module=_blur_module, overwritable=True),
    Lowering(op="std_conv", torch_name="StdConv2d", module=_std_conv_module, init=_conv_init, overwritable=True),
]
