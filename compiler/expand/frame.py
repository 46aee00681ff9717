"""Where expansion is (`Frame`: the block instance being expanded, its names and inputs) and how an item's `in:`
is resolved: names defined above, names defined further down (resolved when the body ends), the block's inputs,
lists (`in: spo` reads the items `spo.0`, `spo.1`, ...), and the diagnostics for a name that is not there or that
`when:` excluded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archspec.compiler.expand.model import Block, Build, IRNode
from archspec.lang.codes import UNDEFINED_NODE, WRONG_TYPE
from archspec.lang.diagnostics import Diagnostic, Loc
from archspec.lang.nearmiss import did_you_mean
from archspec.lang.values import Failed, Scope, evaluate_value
from archspec.lang.yamlsrc import LocDict, LocList

BROKEN = "\0broken"  # the output name of an item that failed


class Excluded:
    def __init__(self, loc: Loc | None, condition: Any):
        self.loc, self.condition = loc, condition


class Broken:
    """An item that already has a diagnostic: readers of it stay quiet."""


@dataclass
class Frame:
    prefix: str
    template: str | None
    scope: Scope
    inputs: dict[str, str]  # local input names -> full node names
    stack: tuple[str, ...]
    stage: str
    block: str | None
    local: dict[str, Any] = field(default_factory=dict)  # item name -> output node name or Excluded
    item_locs: dict[str, Loc | None] = field(default_factory=dict)
    containers: dict[str, str] = field(default_factory=dict)  # `convs` -> `convs.0`: a prefix of a dotted node's name
    lists: dict[str, dict[int, str]] = field(default_factory=dict)  # `convs` -> {0: `convs.0`, 1: `convs.1`, ...}
    list_reads: list[tuple[str, int, Loc | None]] = field(default_factory=list)  # (list, its items then, where)
    pending: list[tuple[IRNode | Block, int, str, Loc | None]] = field(default_factory=list)

    def full(self, name: str | None) -> str:
        if name is None:
            return self.prefix
        return f"{self.prefix}.{name}" if self.prefix else name

    def where(self) -> str:
        return f"block `{self.template}`" if self.template else "the network"

    def name_item(self, name: str, loc: Loc | None) -> None:
        """Record an item of this body; `NAME.N` is also member N of the list NAME (which `in: NAME` reads)."""
        self.item_locs[name] = loc
        head, _, last = name.rpartition(".")
        if head and last.isdigit():
            self.lists.setdefault(head, {})[int(last)] = name


def item_inputs(b: Build, body: LocDict, frame: Frame, previous: str | None, scope: Scope
            ) -> tuple[list[Any], list[Loc | None]] | tuple[None, None]:
    """The item's inputs: full node names where known now, `(_ref, name)` markers for later items; a list (`spo`,
    with items `spo.0`, `spo.1`, ... and no item `spo`) gives each of its items."""
    if "in" not in body:
        if previous is None:
            b.diags.append(Diagnostic(UNDEFINED_NODE, f"the first item of {frame.where()} has no input",
                                         body.loc, hint="name one with `in:`"))
            return None, None
        return [previous], [None]
    raw = body["in"]
    loc = body.val_loc("in")
    refs = list(raw) if isinstance(raw, list) else [raw]
    locs = [raw.val_loc(i) for i in range(len(refs))] if isinstance(raw, LocList) else [loc] * len(refs)
    out: list[Any] = []
    out_locs: list[Loc | None] = []
    for ref, rloc in zip(refs, locs):
        try:
            ref = evaluate_value(ref, rloc, scope)
        except Failed as e:
            b.fail(e)
            return None, None
        if not isinstance(ref, str):
            b.diags.append(Diagnostic(WRONG_TYPE, f"`in` names nodes, found {ref!r}", rloc))
            return None, None
        target = lookup_ref(b, ref, frame)
        if target is None and ref in frame.lists:  # the list `ref`: its items ref.0, ref.1, ... above this one
            target = list_members(frame, ref, rloc)
            if isinstance(target, list):
                out.extend(target)
                out_locs.extend([rloc] * len(target))
                continue
        if target == BROKEN:
            return None, None
        out.append(target or ("ref", ref))
        out_locs.append(rloc)
    return out, out_locs


def list_members(frame: Frame, ref: str, loc: Loc | None) -> list[str] | str | None:
    """The outputs of the items `ref.0`, `ref.1`, ... (by number), leaving out those `when:` excludes; BROKEN if
    one failed, None if none is made yet (a reference further down). The list must be complete: the body's end
    checks that no item joins it below (`frame.list_reads`)."""
    members = sorted(frame.lists[ref].items())
    if not any(m in frame.local for _, m in members):
        return None
    out = []
    for _, member in members:
        target = frame.local.get(member)
        if isinstance(target, Broken):
            return BROKEN
        if isinstance(target, str):
            out.append(target)
    frame.list_reads.append((ref, len(members), loc))
    return out


def lookup_ref(b: Build, ref: str, frame: Frame) -> str | None:
    if isinstance(frame.local.get(ref), Broken):
        return BROKEN
    if ref in frame.inputs:
        return frame.inputs[ref]
    target = frame.local.get(ref)
    if isinstance(target, str):
        return target
    if target is None and "." in ref and frame.full(ref) in b.nodes:
        return frame.full(ref)
    return None


MAX_SUGGESTIONS = 100  # dangling references given a did-you-mean in one expansion (the rest are reported without)


def resolve_pending(b: Build, frame: Frame) -> None:
    for ref, seen, loc in frame.list_reads:
        if len(frame.lists[ref]) != seen:
            _read_above(b, frame, ref, loc)
    for holder, index, ref, loc in frame.pending:
        target = lookup_ref(b, ref, frame)
        if target == BROKEN:
            continue
        if target is None and ref in frame.lists:
            _read_above(b, frame, ref, loc)
            b.shape_failed.add(holder.name)
            continue
        if target is None:
            unknown_ref(b, ref, loc, frame, holder.name)
            b.shape_failed.add(holder.name)  # reported: whatever reads its shape stays quiet
            continue
        holder.inputs[index] = target


def _read_above(b: Build, frame: Frame, ref: str, loc: Loc | None) -> None:
    members = frame.lists[ref]
    first, last = members[min(members)], members[max(members)]
    b.diags.append(Diagnostic(UNDEFINED_NODE, f"`in: {ref}` reads the list {first} ... {last} above its last item: a "
                              "list is read whole, by an item below all of its items", loc,
                              hint=f"move this item below `{last}`"))


def unknown_ref(b: Build, ref: str, loc: Loc | None, frame: Frame, user: str) -> None:
    target = frame.local.get(ref)
    if isinstance(target, Excluded):
        b.diags.append(Diagnostic(
            UNDEFINED_NODE, f"`{user}` reads `{ref}`, which `when: {target.condition}` excludes here", loc,
            hint="give the item reading it the same condition, or use `cases:` to choose a replacement"))
        return
    b.suggested += 1
    hint, notes = None, []
    if b.suggested <= MAX_SUGGESTIONS:  # a near miss costs a pass over the names: a budget keeps it linear
        hint = did_you_mean(ref, lambda: [n for n in frame.local if "." not in n and frame.full(n) != user] +
                            list(frame.inputs) + list(frame.lists), what="defined here")
    elif b.suggested == MAX_SUGGESTIONS + 1:
        notes.append((None, f"no did-you-mean for the undefined names from here on: archspec looks for near misses "
                            f"of the first {MAX_SUGGESTIONS} only"))
    b.diags.append(Diagnostic(UNDEFINED_NODE, f"`{ref}` is not defined in {frame.where()}", loc, hint=hint,
                              notes=notes))


def attach(b: Build, holder: IRNode | Block, inputs: list[Any], locs: list[Loc | None], frame: Frame) -> None:
    for i, item in enumerate(inputs):
        if isinstance(item, tuple):
            frame.pending.append((holder, i, item[1], locs[i]))
            holder.inputs.append("")
        else:
            holder.inputs.append(item)
