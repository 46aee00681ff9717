"""The diff as text (`format_diff`: by stage, block or layer, with the stage table) and as JSON (`diff_dict`)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from archspec.compiler.analysis import Compiled
from archspec.compiler.diff.model import LEVELS, Change, Found, Group, Op, Pair, delta, pair, relative, stage_summary
from archspec.compiler.report import aligned, eng, table, title
from archspec.lang.ops import fmt_shape
from archspec.lang.yamlsrc import plain

MARK = {"changed": "~", "replaced": "~", "added": "+", "removed": "-"}


def format_diff(d: Found, level: str = "block") -> str:
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
    return c.convention.unit_name


def _header(d: Found) -> list[str]:
    unit = _unit_name(d.b)
    rows = []
    for tag, c in (("A", d.a), ("B", d.b)):
        rows.append([tag, title(c), f"{c.params:,} params", f"{eng(c.total())} {unit}", f"{c.depth} layers",
                     f"{c.graph.number_of_nodes() - 1:,} ops", f"-> {fmt_shape(c.output_shape)}"])
    lines = aligned(rows, right=(False, False, True, True, True, True, False))
    if d.equal:
        lines.append("equal: the same ops, attributes, shapes and wiring after expansion")
    else:
        lines.append("different: " + stage_summary(d.groups))
    return lines


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
    deltas = _deltas(g.params, g.total, unit)
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
    return aligned([[f"{marks[t]} {_names(names, g.size)}", t] for t, names in rows.items()], indent="    ")


def _names(names: list[str], size: int) -> str:
    return f"all {size} ops" if len(names) == size > 2 else ", ".join(names)


def _layer_rows(g: Group, unit: str) -> list[str]:
    """One row per change with its own deltas; a replaced, added or removed block with its ops below it."""
    lines = []
    rows = [[f"{MARK[ch.kind]} {relative(ch.name, g.name)}", describe(ch, g.name), _deltas(ch.params, ch.total, unit)]
            for ch in g.changes]
    for ch, line in zip(g.changes, aligned(rows, indent="    ")):
        lines.append(line)
        if ch.kind != "changed":
            lines += _members(ch, g.name, unit)
    return lines


def _members(ch: Change, prefix: str, unit: str) -> list[str]:
    rows = [[f"{m} {relative(o.name, prefix)}", o.text, fmt_shape(o.shape), _counts(o, unit)]
            for m, ops in (("-", ch.before), ("+", ch.after)) for o in ops]
    return aligned(rows, right=(False, False, True, False), indent="        ")


def _counts(o: Op, unit: str) -> str:
    parts = ([f"params {o.params:,}"] if o.params else []) + ([f"{unit} {eng(o.total)}"] if o.total else [])
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
        (pa, pb), (ma, mb) = ch.params, ch.total
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


def _stage_table(d: Found) -> str:
    unit = _unit_name(d.b)
    rows = []
    for s in d.stages:
        rows.append([s.name, _either(*(fmt_shape(x) if x else "-" for x in s.output)),
                     _either(*(str(x) if x else "-" for x in s.blocks)), _either(*(f"{x:,}" for x in s.params)),
                     _change(*s.params, exact=True), _either(*(eng(x) for x in s.total)), _change(*s.total),
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

def diff_dict(d: Found, level: str = "block") -> dict[str, Any]:
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
                    "blocks": pair(*s.blocks), "params": delta(*s.params), "macs": delta(*s.total),
                    "summary": s.summary} for s in d.stages],
    }
    if level != "stage":
        out["blocks"] = [{"name": g.name, "stage": g.stage, "status": g.status, "residual": g.residual,
                          "same_as": g.same_as, "params": delta(*g.params), "macs": delta(*g.total),
                          "changes": [c.to_dict() for c in g.changes]} for g in d.groups]
    if level == "layer":
        out["nodes"] = d.nodes
    return out


def _side_dict(c: Compiled) -> dict[str, Any]:
    return {"name": c.name, "spec": c.spec.display, "overrides": {k: plain(v) for k, v in c.spec.overrides.items()},
            "input": list(c.input_shape), "output": list(c.output_shape), "params": c.params, "macs": c.total(),
            "layers": c.depth, "ops": c.graph.number_of_nodes() - 1}
