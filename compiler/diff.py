"""`diff_compiled`: what changed between two compiled specs, after expansion, and how to print it.

Nodes are matched by their hierarchical name (`layer1.0.conv1`). A block instance whose ops were swapped for
others (an identity shortcut that becomes a projection, a 7x7 stem that becomes three 3x3 convs) is one
*replacement*, not a removed node and two added ones; a block present on one side only is one addition or
removal. Every other node present on both sides is compared by op, attributes, output shape, inputs and counts;
an input is named by the outermost block it is the output of, so that renaming inside a block is not reported
again as rewiring outside it. Changes are grouped by residual block (`layer2.0`, the blocks Table 1 counts) and
by stage, with params and MACs before and after at every level; runs of blocks that changed alike collapse.

Pure: it reads two `Compiled` objects and imports neither torch nor anything that does.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from archspec.compiler.analysis import Compiled, stage_blocks
from archspec.compiler.ir import describe_attrs, order
from archspec.compiler.report import eng, table, title
from archspec.lang.ops import fmt_shape

LEVELS = ("stage", "block", "layer")
Pair = tuple[Any, Any]


@dataclass(frozen=True)
class Op:
    """One node of one side, as the diff shows it."""
    name: str
    op: str
    attrs: dict[str, Any]
    shape: tuple[int, ...]
    params: int
    macs: int  # in the compiled spec's convention (MACs or FLOPs, conv-only or all)

    @property
    def text(self) -> str:
        attrs = describe_attrs(self.op, self.attrs)
        return self.op + (f"[{attrs}]" if attrs else "")

    def to_dict(self, prefix: str = "") -> dict[str, Any]:
        attrs = {k: v for k, v in self.attrs.items() if v is not None}  # unset optional attributes say nothing
        return {"name": relative(self.name, prefix), "op": self.op, "attrs": attrs, "shape": list(self.shape),
                "params": self.params, "macs": self.macs}


@dataclass
class Change:
    """One reviewable change: `changed` (a node on both sides), or `replaced`, `added`, `removed` (a block
    instance or a node, with all its ops in `before` and `after`)."""
    kind: str
    name: str
    before: list[Op]
    after: list[Op]
    op: Pair | None = None
    attrs: dict[str, Pair] = field(default_factory=dict)
    shape: Pair | None = None
    inputs: Pair | None = None
    template: str | None = None  # the block template of a whole block added or removed

    @property
    def params(self) -> Pair:
        return sum(o.params for o in self.before), sum(o.params for o in self.after)

    @property
    def macs(self) -> Pair:
        return sum(o.macs for o in self.before), sum(o.macs for o in self.after)

    def to_dict(self, prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": relative(self.name, prefix)}
        if self.template:
            out["template"] = self.template
        if self.op:
            out["op"] = pair(*self.op)
        if self.attrs:
            out["attrs"] = {k: pair(*v) for k, v in self.attrs.items()}
        if self.shape:
            out["shape"] = pair(*self.shape)
        if self.inputs:
            out["inputs"] = pair(*([relative(n, prefix) for n in side] for side in self.inputs))
        out["params"], out["macs"] = delta(*self.params), delta(*self.macs)
        out["before"] = [o.to_dict(prefix) for o in self.before]
        out["after"] = [o.to_dict(prefix) for o in self.after]
        return out


@dataclass
class Group:
    """The changes inside one residual block (or one op outside blocks), with the block's counts on each side."""
    name: str
    stage: str
    status: str  # added, removed, changed
    residual: bool
    size: int  # its ops (on B's side, or A's where B has none)
    changes: list[Change]
    params: Pair
    macs: Pair
    same_as: str | None = None

    def signature(self) -> str:
        return json.dumps([self.status] + [c.to_dict(self.name) for c in self.changes], sort_keys=True)


@dataclass
class StageRow:
    name: str
    output: Pair
    blocks: Pair
    params: Pair
    macs: Pair
    summary: str


@dataclass
class Diff:
    """Two compiled specs and what differs: `equal`, `groups` (changes by block), `stages`, `format`, `to_dict`."""
    a: Compiled
    b: Compiled
    groups: list[Group]
    stages: list[StageRow]
    nodes: list[dict[str, Any]]  # every node that differs, one by one (the layer level's JSON)

    @property
    def equal(self) -> bool:
        return not self.groups  # a different output shape is a change of the output op

    @property
    def changes(self) -> list[Change]:
        return [c for g in self.groups for c in g.changes]

    def format(self, level: str = "block") -> str:
        return format_diff(self, level)

    def to_dict(self, level: str = "block") -> dict[str, Any]:
        return diff_dict(self, level)


def relative(name: str, prefix: str) -> str:
    """`layer2.0.conv1` inside `layer2.0` is `conv1`; the block's own node is `.`; other names stay whole."""
    if not prefix:
        return name
    return "." if name == prefix else name[len(prefix) + 1:] if name.startswith(prefix + ".") else name


def pair(a: Any, b: Any) -> dict[str, Any]:
    return {"a": a, "b": b}


def delta(a: int, b: int) -> dict[str, Any]:
    """Both values, the difference, and the difference relative to A (null where A is 0: strict JSON)."""
    return {"a": a, "b": b, "delta": b - a, "relative": (b - a) / a if a else None}


# -- matching -------------------------------------------------------------------------------------------------

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


def plain(v: Any) -> Any:
    return [plain(x) for x in v] if isinstance(v, (list, tuple)) else v


def diff_compiled(a: Compiled, b: Compiled) -> Diff:
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
    return Diff(a, b, groups, _stage_rows(sa, sb, groups), _node_list(sa, sb, rank))


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
            _stage_summary([g for g in groups if g.stage == n])))
    return rows


def _stage_summary(groups: list[Group]) -> str:
    """`3 blocks changed, 1 op added`: blocks are those Table 1 counts, ops those outside them."""
    counts = Counter((g.status, g.residual) for g in groups)
    parts = []
    for status in ("changed", "added", "removed"):
        for residual, noun in ((True, "block"), (False, "op")):
            k = counts[(status, residual)]
            if k:
                parts.append(f"{k} {noun}{'s' if k > 1 else ''} {status}")
    return ", ".join(parts)


# -- text ---------------------------------------------------------------------------------------------------------

MARK = {"changed": "~", "replaced": "~", "added": "+", "removed": "-"}


def format_diff(d: Diff, level: str = "block") -> str:
    """The diff as text: the two specs and the verdict, the changes by block (`block`, `layer`: with every op),
    then the stage table with params and MACs deltas."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    lines = _header(d)
    if d.groups and level != "stage":
        lines += ["", "changes by block:" if level == "block" else "changes by block, op by op:"]
        width = max(len(g.name) for g in d.groups)
        for run in _runs(d.groups):
            lines += _group_lines(run[0], level, width, _unit_name(d.b))
            if len(run) > 1:
                names = run[1].name if len(run) == 2 else f"{run[1].name} .. {run[-1].name} ({len(run) - 1} blocks)"
                lines.append(f"{_mark(run[0])} {names}: same as {run[0].name}")
    lines += ["", _stage_table(d)]
    return "\n".join(lines)


def _unit_name(c: Compiled) -> str:
    return "FLOPs" if c.unit == "flops" else "MACs"


def _header(d: Diff) -> list[str]:
    unit = _unit_name(d.b)
    rows = []
    for tag, c in (("A", d.a), ("B", d.b)):
        rows.append([tag, title(c), f"{c.params:,} params", f"{eng(c.total())} {unit}", f"{c.depth} layers",
                     f"{c.graph.number_of_nodes() - 1:,} ops", f"-> {fmt_shape(c.output_shape)}"])
    lines = _aligned(rows, "", right=(False, False, True, True, True, True, False))
    if d.equal:
        lines.append("equal: the same ops, attributes, shapes and wiring after expansion")
    else:
        lines.append("different: " + _stage_summary(d.groups))
    return lines


def _aligned(rows: list[list[str]], indent: str, right: Iterable[bool] = ()) -> list[str]:
    right = list(right)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.rjust(w) if i < len(right) and right[i] else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        out.append((indent + "  ".join(cells)).rstrip())
    return out


def _deltas(params: Pair, macs: Pair, unit: str) -> str:
    parts = []
    if params[0] != params[1]:
        parts.append(f"params {params[1] - params[0]:+,}")
    if macs[0] != macs[1]:
        parts.append(f"{unit} {signed_eng(macs[1] - macs[0])}")
    return "  ".join(parts)


def signed_eng(n: float) -> str:
    return ("+" if n > 0 else "-" if n < 0 else "") + eng(abs(n))


def _runs(groups: list[Group]) -> list[list[Group]]:
    """Each group that is not `same_as` another, with the groups that are the same as it."""
    runs: list[list[Group]] = []
    for g in groups:
        if g.same_as is not None and runs and runs[-1][0].name == g.same_as:
            runs[-1].append(g)
        else:
            runs.append([g])
    return runs


def _mark(g: Group) -> str:
    return "~" if g.status == "changed" else MARK[g.status]


def _group_lines(g: Group, level: str, width: int, unit: str) -> list[str]:
    mark = _mark(g)
    deltas = _deltas(g.params, g.macs, unit)
    whole = len(g.changes) == 1 and g.changes[0].name == g.name
    if whole:
        lines = [f"{mark} {g.name.ljust(width)}  {describe(g.changes[0], g.name)}" + (f"   {deltas}" if deltas else "")]
        return lines + (_members(g.changes[0], g.name, unit) if level == "layer" else [])
    lines = [f"{mark} {g.name.ljust(width)}" + (f"  {deltas}" if deltas else "")]
    return lines + (_layer_rows(g, unit) if level == "layer" else _block_rows(g))


def _block_rows(g: Group) -> list[str]:
    """One row per distinct change; ops that changed alike share a row (`bn1, relu1  shape ... -> ...`)."""
    rows: dict[str, list[str]] = {}
    marks: dict[str, str] = {}
    for ch in g.changes:
        text = describe(ch, g.name)
        rows.setdefault(text, []).append(relative(ch.name, g.name))
        marks[text] = MARK[ch.kind]
    return _aligned([[f"{marks[t]} {_names(names, g.size)}", t] for t, names in rows.items()], "    ")


def _names(names: list[str], size: int) -> str:
    return f"all {size} ops" if len(names) == size > 2 else ", ".join(names)


def _layer_rows(g: Group, unit: str) -> list[str]:
    """One row per change with its own deltas; a replaced, added or removed block with its ops below it."""
    lines = []
    rows = [[f"{MARK[ch.kind]} {relative(ch.name, g.name)}", describe(ch, g.name), _deltas(ch.params, ch.macs, unit)]
            for ch in g.changes]
    for ch, line in zip(g.changes, _aligned(rows, "    ")):
        lines.append(line)
        if ch.kind != "changed":
            lines += _members(ch, g.name, unit)
    return lines


def _members(ch: Change, prefix: str, unit: str) -> list[str]:
    rows = [[f"{m} {relative(o.name, prefix)}", o.text, fmt_shape(o.shape), _counts(o, unit)]
            for m, ops in (("-", ch.before), ("+", ch.after)) for o in ops]
    return _aligned(rows, "        ", right=(False, False, True, False))


def _counts(o: Op, unit: str) -> str:
    parts = ([f"params {o.params:,}"] if o.params else []) + ([f"{unit} {eng(o.macs)}"] if o.macs else [])
    return "  ".join(parts)


def describe(ch: Change, prefix: str = "") -> str:
    """A change in words, without its name: `identity -> conv[out=64, kernel=1] + bn`, `stride 2 -> 1, shape
    128x28x28 -> 128x56x56`, `basic block: 8 ops (2 conv, 2 bn, ...)`."""
    if ch.kind == "replaced":
        return f"{ops_text(ch.before)} -> {ops_text(ch.after)}"
    if ch.kind in ("added", "removed"):
        ops = ops_text(ch.after or ch.before)
        return f"{ch.kind} " + (f"{ch.template} block: {ops}" if ch.template else ops)
    parts = []
    if ch.op:
        parts.append(f"{ch.before[0].text} -> {ch.after[0].text}")
    parts += [f"{k} {_value(a)} -> {_value(b)}" for k, (a, b) in ch.attrs.items() if (a, b) != ch.shape]
    if ch.shape:
        parts.append(f"shape {fmt_shape(ch.shape[0])} -> {fmt_shape(ch.shape[1])}")
    if ch.inputs:
        a, b = (", ".join(relative(n, prefix) for n in side) or "-" for side in ch.inputs)
        parts.append(f"inputs {a} -> {b}")
    if not parts:  # only its counts: an input that now has other channels
        (pa, pb), (ma, mb) = ch.params, ch.macs
        parts.append(f"params {pa:,} -> {pb:,}" if pa != pb else f"counts {eng(ma)} -> {eng(mb)}")
    return ", ".join(parts)


def _value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, list):
        return "x".join(map(str, v))
    return str(v)


def ops_text(ops: list[Op]) -> str:
    """Up to three ops one by one (`conv[out=64, kernel=1] + bn`), more as counts by kind."""
    if len(ops) <= 3:
        return " + ".join(o.text for o in ops)
    kinds = Counter(o.op for o in ops)
    return f"{len(ops)} ops (" + ", ".join(k if n == 1 else f"{n} {k}" for k, n in kinds.items()) + ")"


def _stage_table(d: Diff) -> str:
    unit = _unit_name(d.b)
    rows = []
    for s in d.stages:
        rows.append([s.name, _either(*(fmt_shape(x) if x else "-" for x in s.output)),
                     _either(*(str(x) if x else "-" for x in s.blocks)), _either(*(f"{x:,}" for x in s.params)),
                     _change(*s.params, exact=True), _either(*(eng(x) for x in s.macs)), _change(*s.macs),
                     s.summary])
    a, b = d.a, d.b
    rows.append(["total", _either(fmt_shape(a.output_shape), fmt_shape(b.output_shape)), "",
                 _either(f"{a.params:,}", f"{b.params:,}"), _change(a.params, b.params, exact=True),
                 _either(eng(a.total()), eng(b.total())), _change(a.total(), b.total()), ""])
    return table(["stage", "output", "blocks", "params", "change", unit, "change", "what changed"], rows,
                 [False, True, True, True, True, True, True, False])


def _either(a: str, b: str) -> str:
    return a if a == b else f"{a} -> {b}"


def _change(a: int, b: int, exact: bool = False) -> str:
    if a == b:
        return "="
    text = f"{b - a:+,}" if exact else signed_eng(b - a)
    if not a:
        return text + " (new)"
    percent = 100 * (b - a) / a
    return text + (f" ({percent:+.1f}%)" if abs(percent) >= 0.05 else f" ({percent:+.1g}%)")  # never "-0.0%"


# -- JSON -----------------------------------------------------------------------------------------------------------

def diff_dict(d: Diff, level: str = "block") -> dict[str, Any]:
    """Strict-JSON data: always the two specs, the verdict, totals and stages; `blocks` (with their changes)
    at the block and layer levels; `nodes` (every op that differs, one by one) at the layer level."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    a, b = d.a, d.b
    out: dict[str, Any] = {
        "equal": d.equal,
        "level": level,
        "convention": {"count": b.count, "unit": b.unit},
        "a": _side_dict(a),
        "b": _side_dict(b),
        "totals": {"params": delta(a.params, b.params), "macs": delta(a.total(), b.total()),
                   "layers": delta(a.depth, b.depth),
                   "ops": delta(a.graph.number_of_nodes() - 1, b.graph.number_of_nodes() - 1)},
        "stages": [{"name": s.name, "output": pair(*(list(x) if x else None for x in s.output)),
                    "blocks": pair(*s.blocks), "params": delta(*s.params), "macs": delta(*s.macs),
                    "summary": s.summary} for s in d.stages],
    }
    if level != "stage":
        out["blocks"] = [{"name": g.name, "stage": g.stage, "status": g.status, "residual": g.residual,
                          "same_as": g.same_as, "params": delta(*g.params), "macs": delta(*g.macs),
                          "changes": [c.to_dict() for c in g.changes]} for g in d.groups]
    if level == "layer":
        out["nodes"] = d.nodes
    return out


def _side_dict(c: Compiled) -> dict[str, Any]:
    return {"name": c.name, "spec": c.spec.display, "overrides": {k: plain(v) for k, v in c.spec.overrides.items()},
            "input": list(c.input_shape), "output": list(c.output_shape), "params": c.params, "macs": c.total(),
            "layers": c.depth, "ops": c.graph.number_of_nodes() - 1}
