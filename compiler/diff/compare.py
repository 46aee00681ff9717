"""Matching two compiled specs node by node and block by block (see `archspec.compiler.diff`): the changes, grouped
by residual block and by stage."""

from __future__ import annotations

from typing import Any

from archspec.compiler.analysis import Compiled, Convention, stage_blocks
from archspec.compiler.diff.model import Change, Found, Group, Op, StageRow, stage_summary
from archspec.compiler.expand import Block
from archspec.lang.yamlsrc import plain


class Side:
    """One compiled spec, indexed for the diff: ops by name, the members of each block instance (by the nodes'
    scope), canonical inputs."""

    def __init__(self, c: Compiled) -> None:
        self.c, self.g = c, c.graph
        self.order = self.g.order()
        self.blocks = self.g.blocks
        outer: dict[str, str] = {}
        for b in sorted(self.blocks.values(), key=lambda b: len(self.enclosing(b.name))):
            if b.output in self.g and (b.output == b.name or b.name in self.g.node(b.output).scope):
                outer.setdefault(b.output, b.name)
        self.inputs = {n: tuple(outer.get(p, p) for p in self.g.node(n).inputs) for n in self.order}
        self.residual = {b.name for s in c.stages() for b in stage_blocks(self.g, s.name)}

    def members(self, name: str) -> list[str]:
        """The nodes of the block instance `name`, or the node `name` itself ([] if this side has neither)."""
        if name in self.blocks:
            return self.g.members(name) or ([name] if name in self.g else [])
        return [name] if name in self.g else []

    def enclosing(self, name: str) -> tuple[str, ...]:
        """The block instances around a node or a block instance, outermost first."""
        if name in self.blocks:
            return self.g.around(name)
        return self.g.node(name).scope if name in self.g else ()

    def op(self, name: str) -> Op:
        node, facts = self.g.node(name), self.g.facts(name)
        assert facts.shape is not None
        return Op(name, node.op, {k: plain(v) for k, v in node.attrs.items()}, tuple(facts.shape), facts.params,
                  self.c.total([name]))

    def ops(self, name: str) -> list[Op]:
        return [self.op(n) for n in self.members(name)]


def _side(x: Side, y: Side, name: str) -> Side:
    return x if name in x.g or name in x.blocks else y


def compare(a: Compiled, b: Compiled, convention: Convention | None = None) -> Found:
    """Compare two compiled specs under one counting convention (`convention`, or `b`'s)."""
    convention = convention or b.convention
    sa, sb = Side(a.under(convention)), Side(b.under(convention))
    units, singles = _units(sa, sb)
    changes = [_unit_change(sa, sb, u) for u in units]
    changes += [_unit_change(sa, sb, n) for n in singles]
    inside = {n for u in units for side in (sa, sb) for n in side.members(u)}
    for name in sa.order:
        if name in sb.g and name not in inside:
            change = _node_change(sa, sb, name)
            if change:
                changes.append(change)
    rank = _merged_rank(sa, sb)
    changes.sort(key=lambda ch: rank[(ch.after or ch.before)[0].name])
    groups = _collapse(_groups(sa, sb, changes), {**sa.blocks, **sb.blocks})
    return Found(sa.c, sb.c, groups, _stage_rows(sa, sb, groups), _node_list(sa, sb, rank))


def _units(sa: Side, sb: Side) -> tuple[list[str], list[str]]:
    """The block instances whose ops were swapped, added or removed (outermost only), and the lone nodes
    added or removed elsewhere."""
    blocks = set(sa.blocks) | set(sb.blocks)
    units, singles = set(), set()
    for name in (set(sa.g) ^ set(sb.g)):
        scope = _side(sa, sb, name).enclosing(name)
        block = name if name in blocks else (scope[-1] if scope else None)
        if block is not None and _swapped(sa, sb, block):
            units.add(block)
        else:
            singles.add(name)
    units = {u for u in units if not any(b in units for b in _side(sa, sb, u).enclosing(u))}
    singles = {n for n in singles if n not in units and not any(b in units for b in _side(sa, sb, n).enclosing(n))}
    return sorted(units), sorted(singles)


def _swapped(sa: Side, sb: Side, block: str) -> bool:
    """No op kept: no name in common, or a name in common now holds another op (positional names 0, 1, ...)."""
    common = set(sa.members(block)) & set(sb.members(block))
    return not common or any(sa.g.node(n).op != sb.g.node(n).op for n in common)


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
    return change if found or (x.params, x.total) != (y.params, y.total) else None


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
        around = (*_side(sa, sb, ch.name).enclosing(ch.name), ch.name)
        name = next((p for p in reversed(around) if p in residual), around[0])
        if name not in groups:
            ma, mb = sa.members(name), sb.members(name)
            status = "added" if not ma else "removed" if not mb else "changed"
            side, nodes = (sb, mb) if mb else (sa, ma)
            block = side.blocks.get(name)
            stage = block.stage if block is not None else side.g.node(nodes[0]).stage
            groups[name] = Group(name, stage, status, name in residual, len(nodes), [], (sa.c.summed("params", ma),
                                 sb.c.summed("params", mb)), (sa.c.total(ma), sb.c.total(mb)))
        groups[name].changes.append(ch)
    return list(groups.values())


def _collapse(groups: list[Group], blocks: dict[str, Block]) -> list[Group]:
    """Mark each block that changed exactly as the block before it in the same repeat (`layer2.1`, `layer2.2`
    after `layer2.0`) as `same_as` the first of the run."""
    head: Group | None = None
    head_signature = ""
    prev: Block | None = None
    for g in groups:
        block = blocks.get(g.name)
        signature = g.signature()
        if head is not None and _next_copy(prev, block) and signature == head_signature:
            g.same_as = head.name
        else:
            head, head_signature = g, signature
        prev = block
    return groups


def _next_copy(a: Block | None, b: Block | None) -> bool:
    """Is `b` the copy right after `a` in the same `repeat`?"""
    return (a is not None and b is not None and a.copy is not None and b.copy is not None
            and a.group == b.group and b.copy[0] == a.copy[0] + 1)


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
