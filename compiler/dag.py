"""Graph algorithms on a node table (`name -> its inputs, in order`), the one copy of each that expansion,
validation, the passes, lowering and rendering share: users, topological order, cycles, unused nodes.

They take plain mappings, so `archspec validate` runs them without networkx; the IR's graph (`ir.Graph`) gives
its table with `g.table()` and answers order and users with networkx itself.
"""

from __future__ import annotations

import heapq
from typing import Mapping, Sequence

Table = Mapping[str, Sequence[str]]


def users_of(table: Table) -> dict[str, list[str]]:
    """Each node's readers, in the table's order (a node reading another twice is listed twice)."""
    users: dict[str, list[str]] = {n: [] for n in table}
    for name, inputs in table.items():
        for p in inputs:
            users.setdefault(p, []).append(name)
    return users


def topological_order(table: Table) -> list[str]:
    """A topological order that keeps the table's own order wherever it can: among the nodes whose inputs are
    all placed, the earliest in the table comes first. Nodes on a cycle (and after it) are left out."""
    position = {n: i for i, n in enumerate(table)}
    if all(position.get(p, -1) < position[n] for n in table for p in table[n]):
        return list(table)  # already topological: no forward references
    pending = {n: sum(1 for p in table[n] if p in position) for n in table}
    users = users_of(table)
    ready = [position[n] for n, k in pending.items() if k == 0]
    heapq.heapify(ready)
    names = list(table)
    out = []
    while ready:
        n = names[heapq.heappop(ready)]
        out.append(n)
        for u in users[n]:
            pending[u] -= 1
            if pending[u] == 0:
                heapq.heappush(ready, position[u])
    return out


def find_cycle(table: Table) -> list[str] | None:
    """A cycle among the input edges, if there is one (iterative colouring DFS), as the nodes along it."""
    colour: dict[str, int] = {}
    for start in table:
        if colour.get(start):
            continue
        stack = [(start, iter(table[start]))]
        path = [start]
        colour[start] = 1
        while stack:
            name, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[name] = 2
                stack.pop()
                path.pop()
                continue
            if nxt not in table:
                continue
            if colour.get(nxt) == 1:
                return list(reversed(path[path.index(nxt):]))
            if not colour.get(nxt):
                colour[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(table[nxt])))
    return None


def unused(table: Table, output: str) -> list[str]:
    """Nodes nobody reads, other than the output, in the table's order."""
    users = users_of(table)
    return [n for n in table if not users[n] and n != output]
