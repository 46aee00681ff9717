"""The diff's records: one op of one side (`Op`), one reviewable change (`Change`), the changes of one block
(`Group`), one stage's row (`StageRow`) and what a comparison found (`Found`), with their JSON forms."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from archspec.compiler.analysis import Compiled
from archspec.compiler.ir import describe_attrs

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
    total: int  # arithmetic in the diff's convention (MACs or FLOPs, conv-only or all); "macs" in JSON

    @property
    def text(self) -> str:
        attrs = describe_attrs(self.op, self.attrs)
        return self.op + (f"[{attrs}]" if attrs else "")

    def to_dict(self, prefix: str = "") -> dict[str, Any]:
        attrs = {k: v for k, v in self.attrs.items() if v is not None}  # unset optional attributes say nothing
        return {"name": relative(self.name, prefix), "op": self.op, "attrs": attrs, "shape": list(self.shape),
                "params": self.params, "macs": self.total}


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
    def total(self) -> Pair:
        return sum(o.total for o in self.before), sum(o.total for o in self.after)

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
        out["params"], out["macs"] = delta(*self.params), delta(*self.total)
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
    total: Pair  # in the diff's convention ("macs" in JSON)
    same_as: str | None = None

    def signature(self) -> str:
        return json.dumps([self.status] + [c.to_dict(self.name) for c in self.changes], sort_keys=True)


@dataclass
class StageRow:
    name: str
    output: Pair
    blocks: Pair
    params: Pair
    total: Pair  # in the diff's convention ("macs" in JSON)
    summary: str


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




@dataclass
class Found:
    """Two compiled specs and what differs between them (`archspec.compiler.diff.Diff` adds the views)."""
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


def stage_summary(groups: list[Group]) -> str:
    """`3 blocks changed, 1 op added`: blocks are those Table 1 counts, ops those outside them."""
    counts = Counter((g.status, g.residual) for g in groups)
    parts = []
    for status in ("changed", "added", "removed"):
        for residual, noun in ((True, "block"), (False, "op")):
            k = counts[(status, residual)]
            if k:
                parts.append(f"{k} {noun}{'s' if k > 1 else ''} {status}")
    return ", ".join(parts)
