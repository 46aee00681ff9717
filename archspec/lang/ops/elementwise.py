"""Element-wise ops: the activations `relu`, `sigmoid`, `silu`, `hardsigmoid` and `softmax`, `dropout` and
`drop_path` (stochastic depth), the residual `add` and the gating `mul` (squeeze-and-excitation).

Counted with `--count all` as one op per element (add: one per element per extra operand; mul and drop_path: one
per output element). Lowered as function calls in the generated `forward`, except `dropout` and `drop_path`
(modules: they behave differently in training). Like a hand-written ResNet, ReLU and the residual add run in
place when autograd allows it (see `overwritable`).
"""

from __future__ import annotations

import operator
from typing import Any

from archspec.lang.ops.base import Attr, Counts, OpDef, Shape, ShapeError, fmt_shape, numel, per_element, same_shape


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
    from archspec.lang.ops.modules import DropPath

    return DropPath(a["p"])


def _dropout_module(a: dict, in_shape: Shape) -> Any:
    from torch import nn

    return nn.Dropout(a["p"])


def _add_shape(a: dict, ins: list[Shape]) -> Shape:
    first = ins[0]
    for i, s in enumerate(ins[1:], 1):
        if s != first:
            raise ShapeError("E400", f"the inputs of add disagree: input 1 is {fmt_shape(first)} but input {i + 1} "
                             f"is {fmt_shape(s)}", "the inputs of an add must have equal shapes")
    return first


def _add_advice(ins: list[Shape], node: str, producers: list[str]) -> str | None:
    """Help for unequal inputs. A residual add reads the block's own input (the identity shortcut, from outside
    the block): say how to shape the shortcut. Any other add: name the inputs that disagree."""
    block = node.rpartition(".")[0]
    outside = [i for i, p in enumerate(producers) if block and not p.startswith(block + ".")]
    if len(ins) == 2 and len(outside) == 1 and all(len(s) == 3 for s in ins):
        skip, body = ins[outside[0]], ins[1 - outside[0]]
        return _shortcut_hint(skip, body)
    first = ins[0]
    i = next(k for k, s in enumerate(ins) if s != first)
    return (f"`{producers[0]}` gives {fmt_shape(first)} and `{producers[i]}` {fmt_shape(ins[i])}: change the width "
            f"(`out`) or the stride of one of them so that they agree")


def _shortcut_hint(skip: Shape, body: Shape) -> str:
    if skip[0] != body[0] and skip[1:] != body[1:]:
        return (f"the skip path must match the body: project it with a strided 1x1 conv (option B) or subsample "
                f"and zero-pad it (option A) to {fmt_shape(body)}")
    if skip[0] != body[0]:
        return (f"the skip path carries {skip[0]} channels and the body {body[0]}: use a projection shortcut "
                f"(option B) or zero-padding (option A)")
    return (f"the skip path is {skip[1]}x{skip[2]} and the body {body[1]}x{body[2]}: give the shortcut the block's "
            "stride")


def _add_counts(a: dict, ins: list[Shape], out: Shape) -> Counts:
    n = numel(out) * (len(ins) - 1)
    return Counts(extra=n, extra_flops=n)


def _mul_shape(a: dict, ins: list[Shape]) -> Shape:
    """Equal shapes, or the smaller input broadcast over the larger as PyTorch does it, each of its sizes equal
    or 1: a C x 1 x 1 gate per channel, 1 x 1 x 1, 1 x H x W. Either input may be the smaller."""
    x, y = ins
    big, small = (x, y) if numel(x) >= numel(y) else (y, x)
    if len(x) == len(y) and all(s in (b, 1) for b, s in zip(big, small)):
        return big
    raise ShapeError("E400", f"the inputs of mul do not broadcast: input 1 is {fmt_shape(x)} and input 2 is "
                     f"{fmt_shape(y)}", "multiply by an equal shape or by a C x 1 x 1 or 1 x 1 x 1 gate")


def _mul_advice(ins: list[Shape], node: str, producers: list[str]) -> str | None:
    """Help naming the producers: which one to change, and how (a gate from a vector, a gate of the wrong width)."""
    x, y = ins
    if len(x) != len(y):
        vec, fmap = (0, 1) if len(x) == 1 else (1, 0)
        return (f"`{producers[vec]}` gives a vector of {fmt_shape(ins[vec])} and `{producers[fmap]}` a "
                f"{fmt_shape(ins[fmap])} feature map: keep the gate C x 1 x 1 (global_avgpool without `flatten`, "
                f"then 1x1 convs instead of `linear`)")
    g, m = (1, 0) if numel(y) <= numel(x) else (0, 1)
    gate, fmap = ins[g], ins[m]
    if len(gate) == 3 and gate[1:] == (1, 1) and gate[0] != fmap[0]:
        return (f"`{producers[g]}` gives a gate of {gate[0]} channels but `{producers[m]}` has {fmap[0]}: the last "
                f"conv of the gate needs `out: {fmap[0]}`")
    return (f"`{producers[0]}` gives {fmt_shape(x)} and `{producers[1]}` {fmt_shape(y)}: mul takes equal shapes or "
            f"a C x 1 x 1 (or 1 x 1 x 1) gate over a C x H x W map")


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


OPS = [
    OpDef("relu", "rectified linear unit", "act", {}, (1, 1), same_shape, per_element, label=lambda a: "ReLU",
          fold=True, torch_name="relu", function=_relu),
    OpDef("sigmoid", "logistic sigmoid 1 / (1 + exp(-x)), one op per element when counted", "act", {}, (1, 1),
          same_shape, per_element, torch_name="sigmoid", function=_sigmoid),
    OpDef("silu", "sigmoid-weighted linear unit x * sigmoid(x) (swish), one op per element when counted", "act",
          {}, (1, 1), same_shape, per_element, label=lambda a: "SiLU", fold=True, torch_name="silu",
          function=_silu, overwritable=True),
    OpDef("hardsigmoid", "piecewise-linear sigmoid relu6(x + 3) / 6 (PyTorch's), one op per element when counted",
          "act", {}, (1, 1), same_shape, per_element, torch_name="hardsigmoid", function=_hardsigmoid,
          overwritable=True),
    OpDef("softmax", "softmax over channels", "act", {}, (1, 1), same_shape, per_element,
          table=lambda a: "softmax", torch_name="softmax", function=_softmax),
    OpDef("dropout", "zeroes elements with probability p during training", "other",
          {"p": Attr("float", 0.5, min=0, max=1)}, (1, 1), same_shape, torch_name="Dropout",
          module=_dropout_module),
    OpDef("drop_path", "stochastic depth: in training zeroes whole samples with probability p and scales the "
          "rest by 1/(1-p); identity in eval; one op per element when counted", "other",
          {"p": Attr("float", min=0, max=1, max_open=True, doc="the probability of dropping a sample")}, (1, 1),
          same_shape, per_element, label=lambda a: f"drop path {a['p']:g}", torch_name="DropPath",
          module=_drop_path_module),
    OpDef("add", "element-wise sum of equally shaped inputs", "merge", {}, (2, None), _add_shape, _add_counts,
          torch_name="add", function=_add, overwritable=True, advise=_add_advice),
    OpDef("mul", "element-wise product of 2 inputs; a C x 1 x 1 or 1 x 1 x 1 input broadcasts over C x H x W "
          "(a squeeze-and-excitation gate)", "merge", {}, (2, 2), _mul_shape, per_element, torch_name="mul",
          function=_mul, overwritable=True, advise=_mul_advice),
]
