"""`check_structure`: the graph invariants every later pass relies on.

One input node, every op known, inputs and edges agreeing, no cycle, and every node read by another (or the
output). Cycles and unused nodes are found by the same functions expansion uses (`compiler.graph_checks`), so a
graph built by other means than expansion gets the same diagnostics.
"""

from __future__ import annotations

from archspec.lang.codes import UNDEFINED_NODE, UNKNOWN_OP, WRONG_INPUT_COUNT
from archspec.compiler.graph_checks import check_graph
from archspec.compiler.ir import Graph
from archspec.compiler.passes.context import PassContext
from archspec.lang.ops import OPS, unknown_op_hint


def check_structure(g: Graph, ctx: PassContext) -> None:
    nodes = {name: g.node(name) for name in g}
    for name, node in nodes.items():
        if node.op not in OPS:
            ctx.error(g, name, UNKNOWN_OP, f"unknown op `{node.op}`", hint=unknown_op_hint(node.op))
        ports = sorted(p for e in g.pred[name].values() for p in e["ports"])
        if ports != list(range(len(node.inputs))):
            ctx.error(g, name, UNDEFINED_NODE, "its inputs and the graph's edges disagree (internal invariant)")
        if not node.inputs and name != "input":
            ctx.error(g, name, WRONG_INPUT_COUNT, "this node has no input", hint="name one with `in:`")
    ctx.diagnostics.extend(check_graph(nodes, g.output))
