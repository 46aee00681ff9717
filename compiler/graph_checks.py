"""The diagnostics of a network as a whole: cycles, unused nodes, every shape, and diagnostics that name a node.

These run on a node table (no networkx, so `archspec validate` stays fast): expansion runs them on its nodes,
and the structure pass (`passes/lint.py`) on the IR graph, through the same functions.
"""

from __future__ import annotations

from typing import Any

from archspec.lang.codes import GRAPH_CYCLE, UNUSED_NODE
from archspec.compiler.dag import find_cycle, topological_order, unused
from archspec.lang.diagnostics import Diagnostic, Loc
from archspec.lang.ops import ShapeError, propagate_shapes


def check_graph(nodes: dict[str, Any], output: str) -> list[Diagnostic]:
    """Cycles and unused nodes of the expanded network."""
    diags: list[Diagnostic] = []
    table = _table(nodes)
    cycle = find_cycle(table)
    if cycle:
        diags.append(cycle_diagnostic(nodes, cycle))
        return diags
    for name in unused(table, output):
        node = nodes[name]
        if name == "input":
            diags.append(Diagnostic(UNUSED_NODE, "the network input is never read", node.loc,
                                    hint="the first item reads `input` unless its `in:` names another"))
            continue
        short = name.rsplit(".", 1)[-1]
        diags.append(Diagnostic(UNUSED_NODE, f"the output of `{name}` is never used", node.loc,
                                hint=f"read it with `in:` (e.g. `in: [bn2, {short}]` on an add) or delete it"))
    return diags


def cycle_diagnostic(nodes: dict[str, Any], cycle: list[str]) -> Diagnostic:
    """Point at the `in:` that reads a node defined further down: the edge that closes the loop."""
    position = {n: i for i, n in enumerate(nodes)}
    members = set(cycle)
    best: tuple[int, Loc | None, str, str] | None = None
    for name in cycle:
        node = nodes[name]
        for i, producer in enumerate(node.inputs):
            if producer in members and i < len(node.in_locs) and node.in_locs[i] is not None:
                jump = position[producer] - position[name]
                if best is None or jump > best[0]:
                    best = (jump, node.in_locs[i], name, producer)
    start = cycle.index(best[3]) if best else 0
    loop = cycle[start:] + cycle[:start]
    loc = best[1] if best else nodes[cycle[0]].loc
    what = f"`{best[2]}` reads `{best[3]}`, which depends on `{best[2]}`: " if best else ""
    return Diagnostic(GRAPH_CYCLE, f"{what}the graph has a cycle: " + " -> ".join(loop + [loop[0]]), loc,
                      hint="a node cannot (indirectly) read its own output; check `in:`")


def check_shapes(nodes: dict[str, Any], blocks: dict[str, Any]) -> list[Diagnostic]:
    """Every shape, by the registry's rules, in a topological order of the node table (no networkx)."""
    diags: list[Diagnostic] = []

    def report(name: str, e: ShapeError) -> None:
        n = nodes[name]
        diags.append(node_diagnostic(e.code, name, e.message, e.hint, n.loc, n.scope, blocks))

    propagate_shapes(topological_order(_table(nodes)), nodes.__getitem__, report)
    return diags


def node_diagnostic(code: str, name: str, message: str, hint: str | None, loc: Loc | None,
                    scope: tuple[str, ...], blocks: dict[str, Any]) -> Diagnostic:
    """A problem of one node, at its YAML line, with notes naming the block instances it sits in."""
    d = Diagnostic(code, f"{name}: {message}", loc, hint=hint, node=name)
    for path in reversed(scope):
        block = blocks.get(path)
        if block is not None:
            d.notes.append((block.loc, f"in `{path}` (block `{block.template}`)"))
    return d


def _table(nodes: dict[str, Any]) -> dict[str, list[str]]:
    return {name: node.inputs for name, node in nodes.items()}


def collapse(diags: list[Diagnostic]) -> list[Diagnostic]:
    """One diagnostic per source place: a mistake in a block used 600 times is reported once."""
    out: list[Diagnostic] = []
    index: dict[tuple, Diagnostic] = {}
    counts: dict[int, int] = {}
    for d in diags:
        key = (d.code, str(d.loc)) if d.loc is not None and d.loc.line else (d.code, d.message)
        if key in index:
            counts[id(index[key])] += 1
            continue
        index[key] = d
        counts[id(d)] = 0
        out.append(d)
    for d in out:
        if counts[id(d)]:
            d.notes.append((None, f"the same problem occurs {counts[id(d)]} more time"
                                  f"{'s' if counts[id(d)] > 1 else ''} (each use of this block)"))
    return out
