"""`in_channels` and `in_shape` inside a block: the shape of its input, known while the network is still being
expanded, computed on demand from the nodes made so far by the registry's shape rules.
"""

from __future__ import annotations

from typing import Any

from archspec.compiler.expand.model import Build
from archspec.lang.codes import GRAPH_CYCLE, IN_CHANNELS_BEFORE_INPUT
from archspec.lang.diagnostics import Diagnostic
from archspec.lang.ops import ShapeError, node_shape, outside_block
from archspec.lang.values import Failed


def in_lookup(b: Build, inputs: list[Any], frame: Any = None):
    def lookup(name: str) -> Any:
        if name not in ("in_channels", "in_shape"):
            raise KeyError(name)
        first = inputs[0] if inputs else None
        if not isinstance(first, str) or not first:
            raise Failed(Diagnostic(
                IN_CHANNELS_BEFORE_INPUT, f"`{name}` is read before this block's input is defined",
                None, hint="define the input item above the block that reads it"))
        shape = shape_of(b, first)
        return shape[0] if name == "in_channels" else list(shape)

    return lookup


def shape_of(b: Build, name: str) -> tuple[int, ...]:
    """The shape of a node made so far, computed from its producers (each shape once, remembered).

    A node whose shape failed is reported once, where it failed: anything that reads it, directly or not, fails
    silently (a follow-on error would send the user after a problem that is not there).
    """
    if name in b.shapes:
        return b.shapes[name]
    for current in _producers_first(b, name):
        node = b.nodes[current]
        if any(p in b.shape_failed for p in node.inputs):
            b.shape_failed.add(current)
            raise Failed(None)
        if not all(node.inputs) and node.op != "input":
            raise Failed(Diagnostic(IN_CHANNELS_BEFORE_INPUT, f"`in_channels` needs the shape of `{current}`, whose "
                                    "input is defined later", node.loc,
                                    hint="define items before the blocks that read their channels", node=current))
        try:
            b.shapes[current] = node_shape(node.op, node.attrs, [b.shapes[p] for p in node.inputs], node.inputs,
                                           current, outside_block(node, (b.nodes[p] for p in node.inputs)))
        except ShapeError as e:
            b.shape_failed.add(current)
            raise Failed(Diagnostic(e.code, f"{current}: {e.message}", node.loc, hint=e.hint, node=current)) from None
    return b.shapes[name]


def _producers_first(b: Build, name: str) -> list[str]:
    """`name` and the producers it needs whose shapes are not known yet, each after its own producers
    (a depth-first walk that knows which nodes are on its path, so only a real loop is called one)."""
    if name in b.shape_failed:
        raise Failed(None)
    order: list[str] = []
    on_path = {name}
    done: set[str] = set()
    stack = [(name, iter(b.nodes[name].inputs))]
    while stack:
        current, producers = stack[-1]
        p = next(producers, None)
        if p is None:
            stack.pop()
            on_path.discard(current)
            done.add(current)
            order.append(current)
        elif not p or p in b.shapes or p in done:
            continue
        elif p in b.shape_failed:
            raise Failed(None)
        elif p in on_path:
            node = b.nodes[current]
            raise Failed(Diagnostic(GRAPH_CYCLE, f"`{current}` (indirectly) reads its own output", node.loc,
                                    hint="a node cannot depend on itself; check `in:`"))
        else:
            on_path.add(p)
            stack.append((p, iter(b.nodes[p].inputs)))
    return order
