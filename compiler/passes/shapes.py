"""`infer_shapes`: C x H x W (or a vector length) on every node and edge, by each op's shape rule.

Conv and pool arithmetic is exact (padding, stride, dilation, ceil mode, as PyTorch computes it). A node whose
input failed gets no shape and no second error. Optional expectations written in the spec (`in_channels` on a
conv, `in_features` on a linear, `channels` on a bn) are checked. The rules live in the op registry
(`ops.propagate_shapes`), which `archspec validate` also runs, without networkx.
"""

from __future__ import annotations

from archspec.compiler.ir import Graph
from archspec.compiler.passes.context import PassContext
from archspec.lang.ops import propagate_shapes


def infer_shapes(g: Graph, ctx: PassContext) -> None:
    shapes = propagate_shapes(g.order(), g.node, lambda name, e: ctx.error(g, name, e.code, e.message, e.hint))
    for name, shape in shapes.items():
        g.facts(name).shape = shape
        for p in g.node(name).inputs:
            g.edges[p, name]["shape"] = shapes[p]
