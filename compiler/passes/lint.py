"""`check_structure`: the graph invariants every later pass relies on.

One input node, every op known, inputs and edges agreeing, no cycle, and every node read by another (or the
output). Cycles and unused nodes are found by the same functions expansion uses (`compiler.graph_checks`), so a
graph built by other means than expansion gets the same diagnostics.
"""

from __future__ import annotations

from types import SimpleNamespace

import networkx as nx

from archspec.compiler.graph_checks import check_graph
from archspec.compiler.passes.context import PassContext
from archspec.lang.ops import OPS, unknown_op_hint


def check_structure(g: nx.DiGraph, ctx: PassContext) -> None:
    for name, data in g.nodes(data=True):
        if data["op"] not in OPS:
            ctx.error(g, name, "E300", f"unknown op `{data['op']}`", hint=unknown_op_hint(data["op"]))
        ports = sorted(p for _, _, e in g.in_edges(name, data=True) for p in e["ports"])
        if ports != list(range(len(data["inputs"]))):
            ctx.error(g, name, "E305", "its inputs and the graph's edges disagree (internal invariant)")
        if not data["inputs"] and name != "input":
            ctx.error(g, name, "E309", "this node has no input", hint="name one with `in:`")
    nodes = {n: SimpleNamespace(inputs=list(d["inputs"]), loc=d["loc"], in_locs=[]) for n, d in g.nodes(data=True)}
    ctx.diagnostics.extend(check_graph(nodes, g.graph["output"]))
