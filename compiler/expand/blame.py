"""Diagnostics at the user's own line. A problem that surfaces inside a shipped library (a shape mismatch at the
`add` of `basic`) was most often caused by a line of the user's: an edit that changed an attribute, a `use:`
that chose the block, a `--set`. Such a diagnostic is moved to that line, and the library line becomes a note.

The user's files are the files of the spec that archspec does not ship (all of them for a spec of one's own);
for a shipped spec, its own file. A diagnostic already in one of them stays where it is.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

from archspec.lang.diagnostics import Diagnostic, Loc
from archspec.lang.resolve import packaged_specs_dir

MAX_WALK = 200  # producers looked at, nearest first, for an attribute the user wrote
# attributes that decide a node's output shape: the ones a shape problem (E4xx) can be blamed on
SHAPE_ATTRS = {"out", "kernel", "stride", "pad", "dilation", "ceil_mode", "channels", "shape", "in_channels",
               "in_features", "where", "groups"}


def user_files(spec: Any) -> set[str]:
    shipped = packaged_specs_dir().resolve()
    own = set()
    for name in spec.files:
        try:
            if shipped not in Path(name).resolve().parents:
                own.add(name)
        except (OSError, ValueError):
            own.add(name)
    return own or {spec.display}


def at_user_lines(diags: list[Diagnostic], spec: Any, nodes: dict[str, Any], blocks: dict[str, Any]
                  ) -> list[Diagnostic]:
    own = user_files(spec)
    return [_moved(d, own, nodes, blocks) for d in diags]


def is_mine(loc: Loc | None, own: set[str]) -> bool:
    return loc is not None and (loc.file in own or loc.file.startswith("--set "))


def _moved(d: Diagnostic, own: set[str], nodes: dict[str, Any], blocks: dict[str, Any]) -> Diagnostic:
    if d.loc is None or is_mine(d.loc, own) or d.node not in nodes:
        return d
    attrs = SHAPE_ATTRS if d.code.startswith("E4") else None
    cause = (_attribute_cause(d.node, own, nodes, nodes[d.node].scope, attrs)
             or _use_cause(d.node, own, nodes, blocks) or _attribute_cause(d.node, own, nodes, (), attrs))
    if cause is None:
        return d
    loc, why = cause
    notes = [(None, why), (d.loc, "where the problem shows")] + list(d.notes)
    return Diagnostic(d.code, d.message, loc, hint=d.hint, severity=d.severity, notes=notes, node=d.node)


def _attribute_cause(start: str, own: set[str], nodes: dict[str, Any], scope: tuple[str, ...],
                     attrs: set[str] | None) -> tuple[Loc, str] | None:
    """The nearest producer of `start` (itself first), inside the block instance `scope` (() for anywhere), with
    an attribute written in the user's files (an edit of the block's items, or of the network's)."""
    seen, queue = {start}, deque([start])
    while queue and len(seen) <= MAX_WALK:
        name = queue.popleft()
        node = nodes.get(name)
        if node is None or tuple(node.scope[:len(scope)]) != tuple(scope):
            continue
        for attr, loc in getattr(node, "attr_locs", {}).items():
            if is_mine(loc, own) and (attrs is None or attr in attrs):
                via = "" if name == start else f", which feeds `{start}`"
                return loc, f"this line sets `{attr}` of `{name}`{via}"
        for p in node.inputs:
            if p and p not in seen:
                seen.add(p)
                queue.append(p)
    return None


def _use_cause(name: str, own: set[str], nodes: dict[str, Any], blocks: dict[str, Any]) -> tuple[Loc, str] | None:
    """The innermost block instance around the node whose `use:` item is the user's."""
    for path in reversed(nodes[name].scope):
        block = blocks.get(path)
        if block is not None and is_mine(block.loc, own):
            return block.loc, f"`{name}` is made by this item (`{path}`, block `{block.template}`)"
    return None
