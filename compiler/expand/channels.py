"""`in_channels` and `in_shape` inside a block: the shape of its input, known while the network is still being
expanded, computed on demand from the nodes made so far by the registry's shape rules.
"""

from __future__ import annotations

from typing import Any

from archspec.compiler.expand.model import Build
from archspec.lang.diagnostics import Diagnostic
from archspec.lang.ops import ShapeError, node_shape
from archspec.lang.values import Failed


def in_lookup(b: Build, inputs: list[Any], frame: Any = None):
    def lookup(name: str) -> Any:
        if name not in ("in_channels", "in_shape"):
            raise KeyError(name)
        first = inputs[0] if inputs else None
        if not isinstance(first, str) or not first:
            raise Failed(Diagnostic(
                "E312", f"`{name}` is read before this block's input is defined",
                None, hint="define the input item above the block that reads it"))
        shape = shape_of(b, first)
        return shape[0] if name == "in_channels" else list(shape)

    return lookup


def shape_of(b: Build, name: str) -> tuple[int, ...]:
    """The shape of a node made so far, computed (iteratively) from its producers."""
    todo = [name]
    while todo:
        current = todo[-1]
        if current in b.shapes:
            todo.pop()
            continue
        node = b.nodes[current]
        missing = [p for p in node.inputs if p and p not in b.shapes]
        if missing:
            if any(p in todo for p in missing):
                raise Failed(Diagnostic("E307", f"`{current}` (indirectly) reads its own output", node.loc,
                                        hint="a node cannot depend on itself; check `in:`"))
            todo.extend(missing)
            continue
        if not all(node.inputs) and node.op != "input":
            raise Failed(Diagnostic("E312", f"`in_channels` needs the shape of `{current}`, whose input is "
                                    "defined later", node.loc,
                                    hint="define items before the blocks that read their channels"))
        try:
            b.shapes[current] = node_shape(node.op, node.attrs, [b.shapes[p] for p in node.inputs], node.inputs)
        except ShapeError as e:
            raise Failed(Diagnostic(e.code, f"{current}: {e.message}", node.loc, hint=e.hint)) from None
        todo.pop()
    return b.shapes[name]
