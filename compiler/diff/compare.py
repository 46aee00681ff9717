"""Matching two compiled specs node by node and block by block (see `archspec.compiler.diff`): the changes, grouped
by residual block and by stage."""

from __future__ import annotations

from typing import Any

from archspec.compiler.analysis import Compiled, stage_blocks
from archspec.compiler.diff.model import Change, Found, Group, Op, StageRow, stage_summary
from archspec.compiler.ir import order
from archspec.lang.yamlsrc import plain

class Side:
    """One compiled spec, indexed for the diff: ops by name, members by name prefix, canonical inputs."""

    def __init__(self, c: Compiled) -> None:
        self.c, self.g = c, c.graph
        self.order = order(self.g)
        self.blocks = self.g.graph["blocks"]
        self.members: dict[str, list[str]] = {}
        for name in self.order:
            parts = name.split(".")
            for k in range(1, len(parts) + 1):
                self.members.setdefault(".".join(parts[:k]), []).append(name)
        outer: dict[str, str] = {}
        for b in sorted(self.blocks.values(), key=lambda b: len(b.name)):
            if b.output == b.name or b.output.startswith(b.name + "."):
                outer.setdefault(b.output, b.name)
        self.inputs = {n: tuple(outer.get(p, p) for p in self.g.nodes[n]["inputs"]) for n in self.order}
        self.residual = {b.name for s in c.stages() for b in stage_blocks(self.blocks, s.name)}

    def op(self, name: str) -> Op:
        data = self.g.nodes[name]
        m = data["meta"]
        return Op(name, data["op"], {k: plain(v) for k, v in data["attrs"].items()}, tuple(m["shape"]),
                  m.get("params", 0), self.c.total([name]))

    def ops(self, prefix: str) -> list[Op]:
        return [self.op(n) for n in self.members.get(prefix, [])]


def compare(a: Compiled, b: Compiled) -> Found:
    """Compare two compiled specs (compiled under the same counting convention)."""
    sa, sb = Side(a), Side(b)
    units, singles = _units(sa, sb)
    changes = [_unit_change(sa, sb, u) for u in units]
    changes += [_unit_change(sa, sb, n) for n in singles]
    inside = {n for u in units for side in (sa, sb) for n in side.members.get(u, [])}
    for name in sa.order:
        if name in sb.g and name not in inside:
            change = _node_change(sa, sb, name)
            if change:
                changes.append(change)
    rank = _merged_rank(sa, sb)
    changes.sort(key=lambda ch: rank[(ch.after or ch.before)[0].name])
    groups = _collapse(_groups(sa, sb, changes))
    return Found(a, b, groups, _stage_rows(sa, sb, groups), _node_list(sa, sb, rank))


def _units(sa: Side, sb: Side) -> tuple[list[str], list[str]]:
    """The block instances whose ops were swapped, added or removed (outermost only), and the lone nodes
    added or removed elsewhere."""
    blocks = set(sa.blocks) | set(sb.blocks)
    units, singles = set(), set()
    for name in (set(sa.g) ^ set(sb.g)):
        parts = name.split(".")
        prefixes = (".".join(parts[:k]) for k in range(len(parts), 0, -1))
        scope = next((p for p in prefixes if p in blocks), None)
        if scope is not None and _swapped(sa, sb, scope):
            units.add(scope)
        else:
            singles.add(name)
    units = {u for u in units if not _within(u, units, proper=True)}
    singles = {n for n in singles if not _within(n, units)}
    return sorted(units), sorted(singles)


def _within(name: str, scopes: set[str], proper: bool = False) -> bool:
    """Is `name` one of `scopes` (unless `proper`) or inside one (`a.b.c` is inside `a.b` and `a`)?"""
    parts = name.split(".")
    return any(".".join(parts[:k]) in scopes for k in range(1, len(parts) + (0 if proper else 1)))


def _swapped(sa: Side, sb: Side, scope: str) -> bool:
    """No op kept: no name in common, or a name in common now holds another op (positional names 0, 1, ...)."""
    common = set(sa.members.get(scope, [])) & set(sb.members.get(scope, []))
    return not common or any(sa.g.nodes[n]["op"] != sb.g.nodes[n]["op"] for n in common)


def _unit_change(sa: Side, sb: Side, name: str) -> Change:
    before, after = sa.ops(name), sb.ops(name)
    kind = "added" if not before else "removed" if not after else "replaced"
    block = (sb.blocks.get(name) or sa.blocks.get(name)) if kind != "replaced" else None
    return Change(kind, name, before, after, template=block.template if block else None)


def _node_change(sa: Side, sb: Side, name: str) -> Change | None:
    x, y = sa.op(name), sb.op(name)
    change = Change("changed", name, [x], [y])
    if x.op != y.op:
        change.op = (x.op, y.op)
    else:
        keys = list(x.attrs) + [k for k in y.attrs if k not in x.attrs]
        change.attrs = {k: (x.attrs.get(k), y.attrs.get(k)) for k in keys if x.attrs.get(k) != y.attrs.get(k)}
    if x.shape != y.shape:
        change.shape = (list(x.shape), list(y.shape))
    if sa.inputs[name] != sb.inputs[name]:
        change.inputs = (list(sa.inputs[name]), list(sb.inputs[name]))
    found = change.op or change.attrs or change.shape or change.inputs
    return change if found or (x.params, x.macs) != (y.params, y.macs) else None


def _merged_rank(sa: Side, sb: Side) -> dict[str, tuple[int, int, int]]:
    """B's order, with A's own nodes placed after the last node they follow in A that B also has."""
    rank = {n: (i, 0, 0) for i, n in enumerate(sb.order)}
    last = -1
    for i, n in enumerate(sa.order):
        if n in rank:
            last = rank[n][0]
        else:
            rank[n] = (last, 1, i)
    return rank


def _node_list(sa: Side, sb: Side, rank: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name in sorted(set(sa.g) | set(sb.g), key=rank.__getitem__):
        if name not in sb.g or name not in sa.g:
            op = (sa if name in sa.g else sb).op(name)
            out.append({"name": name, "status": "removed" if name in sa.g else "added", **op.to_dict()})
            continue
        change = _node_change(sa, sb, name)
        if change:
            d = change.to_dict()
            out.append({"name": name, "status": "changed",
                        **{k: d[k] for k in ("op", "attrs", "shape", "inputs", "params", "macs") if k in d}})
    return out


# -- grouping ---------------------------------------------------------------------------------------------------

def _groups(sa: Side, sb: Side, changes: list[Change]) -> list[Group]:
    residual = sa.residual | sb.residual
    groups: dict[str, Group] = {}
    for ch in changes:
        parts = ch.name.split(".")
        prefixes = (".".join(parts[:k]) for k in range(len(parts), 0, -1))
        name = next((p for p in prefixes if p in residual), parts[0])
        if name not in groups:
            ma, mb = sa.members.get(name, []), sb.members.get(name, [])
            status = "added" if not ma else "removed" if not mb else "changed"
            side, nodes = (sb, mb) if mb else (sa, ma)
            block = side.blocks.get(name)
            stage = block.stage if block is not None else side.g.nodes[nodes[0]]["stage"]
            groups[name] = Group(name, stage, status, name in residual, len(nodes), [], (sa.c.summed("params", ma),
                                 sb.c.summed("params", mb)), (sa.c.total(ma), sb.c.total(mb)))
        groups[name].changes.append(ch)
    return list(groups.values())


def _collapse(groups: list[Group]) -> list[Group]:
    """Mark each block that changed exactly as the block before it in the same repeat (`layer2.1`, `layer2.2`
    after `layer2.0`) as `same_as` the first of the run."""
    head: Group | None = None
    head_signature = ""
    prev = ""
    for g in groups:
        signature = g.signature()
        if head is not None and _next_copy(prev, g.name) and signature == head_signature:
            g.same_as = head.name
        else:
            head, head_signature = g, signature
        prev = g.name
    return groups


def _next_copy(a: str, b: str) -> bool:
    pa, _, ia = a.rpartition(".")
    pb, _, ib = b.rpartition(".")
    return pa == pb and ia.isdigit() and ib.isdigit() and int(ib) == int(ia) + 1


def _stage_rows(sa: Side, sb: Side, groups: list[Group]) -> list[StageRow]:
    stages_a = {s.name: s for s in sa.c.stages()}
    stages_b = {s.name: s for s in sb.c.stages()}
    names = list(stages_b)
    for i, n in enumerate(stages_a):
        if n not in stages_b:
            before = [m for m in list(stages_a)[:i] if m in names]
            names.insert(names.index(before[-1]) + 1 if before else 0, n)
    rows = []
    for n in names:
        x, y = stages_a.get(n), stages_b.get(n)
        rows.append(StageRow(
            n, (x.output if x else None, y.output if y else None), (x.blocks if x else 0, y.blocks if y else 0),
            (x.params if x else 0, y.params if y else 0),
            (sa.c.total(x.nodes) if x else 0, sb.c.total(y.nodes) if y else 0),
            stage_summary([g for g in groups if g.stage == n])))
    return rows
