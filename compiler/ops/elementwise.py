"""Lowering of the element-wise ops: function calls in the generated `forward`, except `dropout` and `drop_path`
(modules: they behave differently in training). Like a hand-written ResNet, ReLU and the residual add run in place
when autograd allows it (see `Lowering.overwritable`).
"""

from __future__ import annotations

import operator
from typing import Any

from archspec.compiler.ops.base import Lowering, Shape


def _relu(graph: Any, a: dict, args: list, in_place: bool) -> Any:
    import torch

    return graph.call_function(torch.relu_ if in_place else torch.relu, (args[0],))


def _sigmoid(graph: Any, a: dict, args: list, in_place: bool) -> Any:
    import torch

    return graph.call_function(torch.sigmoid, (args[0],))


def _softmax(graph: Any, a: dict, args: list, in_place: bool) -> Any:
    import torch

    return graph.call_function(torch.softmax, (args[0], 1))


def _silu(graph: Any, a: dict, args: list, in_place: bool) -> Any:
    import torch.nn.functional as F

    return graph.call_function(F.silu, (args[0],))


def _hardsigmoid(graph: Any, a: dict, args: list, in_place: bool) -> Any:
    import torch.nn.functional as F

    return graph.call_function(F.hardsigmoid, (args[0],))


def _drop_path_module(a: dict, in_shape: Shape) -> Any:
    from archspec.compiler.ops.modules import DropPath

    return DropPath(a["p"])


def _dropout_module(a: dict, in_shape: Shape) -> Any:
    from torch import nn

    return nn.Dropout(a["p"])


def _mul(graph: Any, a: dict, args: list, in_place: bool) -> Any:
    return graph.call_function(operator.mul, (args[0], args[1]))  # never in place: autograd keeps both inputs


def _add(graph: Any, a: dict, args: list, in_place: bool) -> Any:
    if in_place:
        node = graph.call_method("add_", (args[0], args[1]))
    else:
        node = graph.call_function(operator.add, (args[0], args[1]))
    for extra in args[2:]:
        node = graph.call_function(operator.add, (node, extra))
    return node


LOWERINGS = [
    Lowering(op="relu", torch_name="relu", function=_relu),
    Lowering(op="sigmoid", torch_name="sigmoid", function=_sigmoid),
    Lowering(op="silu", torch_name="silu", function=_silu, overwritable=True),
    Lowering(op="hardsigmoid", torch_name="hardsigmoid", function=_hardsigmoid, overwritable=True),
    Lowering(op="softmax", torch_name="softmax", function=_softmax),
    Lowering(op="dropout", torch_name="Dropout", module=_dropout_module),
    Lowering(op="drop_path", torch_name="DropPath", module=_drop_path_module),
    Lowering(op="add", torch_name="add", function=_add, overwritable=True),
    Lowering(op="mul", torch_name="mul", function=_mul, overwritable=True),
]
