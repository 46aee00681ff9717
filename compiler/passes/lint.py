"""`check_structure`: the graph invariants every later pass relies on, checked with networkx.

One input node, every op known, inputs and edges agreeing, no cycle, and every node on a path to the output
(a node that cannot reach the output is dead code in the spec).
"""

from __future__ import annotations

import networkx as nx

from archspec.lang.ops import OPS
from archspec.compiler.passes.context import PassContext


def check_structure(g: nx.DiGraph, ctx: PassContext) -> None:
    output = g.graph["output"]
    for name, data in g.nodes(data=True):
        if data["op"] not in OPS:
            ctx.error(g, name, "E300", f"unknown op `{data['op']}`")
        ports = sorted(p for _, _, e in g.in_edges(name, data=True) for p in e["ports"])
        if ports != list(range(len(data["inputs"]))):
            ctx.error(g, name, "E305", "its inputs and the graph's edges disagree (internal invariant)")
    if not nx.is_directed_acyclic_graph(g):
        cycle = [u for u, _ in nx.find_cycle(g)]
        ctx.error(g, cycle[0], "E307", "the graph has a cycle: " + " -> ".join(cycle + [cycle[0]]),
                  hint="a node cannot (indirectly) read its own output; check `in:`")
        return
    sources = [n for n in g.nodes if g.in_degree(n) == 0]
    for name in sources:
        if name != "input":
            ctx.error(g, name, "E309", "this node has no input", hint="name one with `in:`")
    live = nx.ancestors(g, output) | {output}
    for name in g.nodes:
        if name not in live:
            ctx.error(g, name, "E308", "its output never reaches the network output (dead code)",
                      hint="connect it or delete it")
