"""The op registry: for each primitive op, in one entry (`OpDef`), its attributes, shape rule, parameter and MAC
rules, how reports and diagrams show it, and what it means to the rest of the code (`weighted`, `structural`,
`residual`, `fold`, `view`, `kind`): nobody else names an op to decide something. Adding an op is one entry in a
family module (`layers`, `norms`, `filters`, `pooling`, `elementwise`, `channels`, `structure`), its lowering in
the compiler's table (`archspec.compiler.ops`, the one place that knows torch) and its tests; validation,
expansion, the passes, the reports and the diagrams read the entry from here. Installed packages add ops the same
way through entry points (`archspec.lang.ops.plugins`, docs/plugins.md).

Counting convention (see docs/conventions.md):
- `macs`: multiply-accumulates of conv and linear layers (bias additions are not counted), and of the conv-like
  `channel_conv`, `std_conv` and `blur_pool` (a depthwise filter); this is what the ResNet paper and torchvision
  report as "FLOPs", and what a trace of timm's models counts.
- `extra`: the other arithmetic, counted when asked (`--count all`): batch norm as one multiply-add per element
  (its inference form y = a*x + b), activations one op per element, add one op per element per extra operand,
  max pool k*k-1 comparisons and average pool k*k ops per output element, global average pool one op per input
  element; `mul` and `drop_path` one op per output element (drop_path also in eval, where it is the identity).
  In MACs each of these counts 1; in FLOPs (`extra_flops`) BN's multiply-add counts 2 and the others 1, so
  FLOPs = 2 x MACs + extra_flops.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

from archspec.lang.codes import WRONG_TENSOR_SHAPE
from archspec.lang.ops import channels, elementwise, filters, layers, norms, plugins, pooling, structure
from archspec.lang.ops.base import (REQUIRED, Attr, Counts, OpDef, Shape, ShapeError, fmt_shape, numel,
                                    pair)
from archspec.lang.diagnostics import suggest
from archspec.lang.types import value_problem

BUILTIN_OPS: dict[str, OpDef] = {op.name: op for family in (structure, layers, norms, filters, pooling, elementwise,
                                                              channels) for op in family.OPS}
PLUGINS = plugins.discover()  # installed packages that add ops (`archspec.lang.ops.plugins`)
OPS: dict[str, OpDef] = {**BUILTIN_OPS, **plugins.plugin_ops(PLUGINS, BUILTIN_OPS)}

USER_OPS = sorted(name for name in OPS if name != "input")


def unknown_op_hint(name: object) -> str:
    """Help for an op name the registry does not have: the near miss if one is genuinely close, or else every op
    there is; either way, where each op's attributes are described."""
    close = suggest(str(name), USER_OPS)
    if close:
        return f"did you mean `{close[0]}`? (`archspec ops` shows each op's attributes)"
    return "the ops are " + ", ".join(f"`{n}`" for n in USER_OPS) + "; `archspec ops` shows each op's attributes"


def check_attr(op: str, name: str, spec: Attr, value: Any) -> str | None:
    """None if `value` suits the attribute; otherwise what was expected."""
    return value_problem(spec.type, value, minimum=spec.min, maximum=spec.max, choices=spec.choices,
                         below_maximum=spec.max_open)


def node_shape(op: str, attrs: Mapping[str, Any], ins: list[Shape], producers: Sequence[str], node: str = "",
               outside: Sequence[bool] = ()) -> Shape:
    """The output shape of node `node` from its input shapes: the op's rule, and the input width the spec states
    (`in_channels` on a conv, `in_features` on a linear, `channels` on a bn), if it states one. A problem's help
    is the entry's `advise` when it has one (it knows the node, its producers and which of them lie `outside`
    the node's own block instance)."""
    definition = OPS[op]
    key = definition.expects
    if key and attrs.get(key) is not None and attrs[key] != ins[0][0]:
        what = "features" if key.endswith("features") else "channels"  # in_features, in_channels, channels
        producer = producers[0]
        raise ShapeError(WRONG_TENSOR_SHAPE,
                         f"{op} expects {attrs[key]} input {what}, got {ins[0][0]} from `{producer}`",
                         f"set `{key}: {ins[0][0]}` or change the width of `{producer}`")
    try:
        return tuple(definition.shape(attrs, ins))
    except ShapeError as e:
        if definition.advise is not None:
            e.hint = definition.advise(ins, node, list(producers), list(outside)) or e.hint
        raise


def outside_block(n: Any, producers: Iterable[Any]) -> list[bool]:
    """For each producer (a node with `scope`), whether it lies outside the innermost block instance of `n`
    (all False for a node at the network's top level)."""
    block = n.scope[-1] if n.scope else None
    return [block is not None and block not in p.scope for p in producers]


def propagate_shapes(names: Iterable[str], node: Callable[[str], Any],
                     on_error: Callable[[str, ShapeError], None]) -> dict[str, Shape]:
    """Shapes of every node, visiting `names` in topological order; `node(name)` gives an object with `op`,
    `attrs` and `inputs` (the IR's `Node`, or expansion's node). A node whose input failed gets no shape and no
    second error."""
    shapes: dict[str, Shape] = {}
    for name in names:
        n = node(name)
        ins = [shapes.get(p) for p in n.inputs]
        if any(s is None for s in ins):
            continue
        try:
            shapes[name] = node_shape(n.op, n.attrs, ins, n.inputs, name, outside_block(n, map(node, n.inputs)))
        except ShapeError as e:
            on_error(name, e)
    return shapes


__all__ = ["BUILTIN_OPS", "OPS", "PLUGINS", "USER_OPS", "REQUIRED", "Attr", "Counts", "OpDef", "Shape", "ShapeError", "check_attr",
           "fmt_shape", "node_shape", "numel", "outside_block", "pair", "propagate_shapes", "unknown_op_hint"]
