"""Lowering of the channel-level ops: `channel_conv` (a `ChannelConv`, an `nn.Conv1d` whose state-dict keys are
timm's `EcaModule.conv`'s, left at torch's default initialisation as timm leaves it), `slice` (`torch.narrow` in
the generated `forward`: a view), `branch_softmax` (a parameter-free `BranchSoftmax`, like timm's
`rsoftmax`) and `branch_sum` (`x.unflatten(1, (branches, -1)).sum(1)` in the generated `forward`, timm's
`x.reshape(B, radix, C, H, W).sum(1)`; for 1 branch its input itself, never overwritten in place, since others may
read it). The modules are in `archspec.compiler.ops.channel_modules`, imported when one is built.
"""

from __future__ import annotations

from typing import Any

from archspec.compiler.ops.base import Lowering, Shape


def _channel_conv_module(a: dict, in_shape: Shape) -> Any:
    from archspec.compiler.ops.channel_modules import ChannelConv

    return ChannelConv(a["kernel"], bias=a["bias"])


def _slice(graph: Any, a: dict, args: list, in_place: bool) -> Any:
    import torch

    return graph.call_function(torch.narrow, (args[0], 1, a["start"], a["size"]))


def _branch_softmax_module(a: dict, in_shape: Shape) -> Any:
    from archspec.compiler.ops.channel_modules import BranchSoftmax

    return BranchSoftmax(a["branches"], a["groups"])


def _branch_sum(graph: Any, a: dict, args: list, in_place: bool) -> Any:
    if a["branches"] == 1:
        return args[0]  # the op is its input: nothing new to name
    chunks = graph.call_method("unflatten", (args[0], 1, (a["branches"], -1)))
    return graph.call_method("sum", (chunks, 1))


LOWERINGS = [
    Lowering(op="channel_conv", torch_name="ChannelConv", module=_channel_conv_module, overwritable=True),
    Lowering(op="slice", torch_name="narrow", function=_slice),
    Lowering(op="branch_softmax", torch_name="BranchSoftmax", module=_branch_softmax_module),
    Lowering(op="branch_sum", torch_name="sum", function=_branch_sum),
]
