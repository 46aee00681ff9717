"""Lowering of the ops that route or reshape data: the network `input` (the generated `forward`'s argument `x`),
`identity` (its input itself: nothing new in the graph), `flatten`, `concat` and `subsample_pad` (a
`SubsamplePad` module).
"""

from __future__ import annotations

from typing import Any

from archspec.compiler.ops.base import Lowering, Shape


def _input(graph: Any, a: dict, args: list, in_place: bool) -> Any:
    return graph.placeholder("x")


def _subsample_pad_module(a: dict, in_shape: Shape) -> Any:
    from archspec.compiler.ops.modules import SubsamplePad

    return SubsamplePad(a["out"], a["stride"], a["where"])


def _identity(graph: Any, a: dict, args: list, in_place: bool) -> Any:
    return args[0]  # the op is its input: nothing new to name


def _flatten(graph: Any, a: dict, args: list, in_place: bool) -> Any:
    import torch

    return graph.call_function(torch.flatten, (args[0], 1))


def _concat(graph: Any, a: dict, args: list, in_place: bool) -> Any:
    import torch

    return graph.call_function(torch.cat, (tuple(args), 1))


LOWERINGS = [
    Lowering(op="input", function=_input),
    Lowering(op="flatten", torch_name="flatten", function=_flatten),
    Lowering(op="concat", torch_name="cat", function=_concat),
    Lowering(op="identity", torch_name="identity", function=_identity),
    Lowering(op="subsample_pad", torch_name="SubsamplePad", module=_subsample_pad_module),
]
