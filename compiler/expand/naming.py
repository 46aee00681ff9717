"""Item names: what a name computes to (`${...}`) and whether it can name a node (`archspec.lang.names`: no
reserved word, Python keyword or torch module attribute in any of its `.`-joined parts), whether the body has it
already, and whether its module can be made: `conv1` and `conv1.0` in one body cannot both be modules, as the
first would have to hold the second.
"""

from __future__ import annotations

from typing import Any

from archspec.compiler.expand.frame import Frame
from archspec.compiler.expand.model import Build
from archspec.lang.codes import DUPLICATE_NODE, INVALID_NODE_NAME
from archspec.lang.diagnostics import Diagnostic, Loc
from archspec.lang.names import item_name_problem
from archspec.lang.schema import RESERVED_NAMES
from archspec.lang.values import Failed, Scope, evaluate_value, needs_evaluation


def item_name(b: Build, written: Any, loc: Loc | None, scope: Scope, what: str = "") -> str | None:
    """An item's name as written, or computed where it holds `${...}`; None (reported) if it cannot name a
    node: a reserved word, a Python keyword or a torch module attribute, in any of its `.`-joined parts."""
    name = str(written)
    if needs_evaluation(name):
        try:
            name = str(evaluate_value(name, loc, scope))
        except Failed as e:
            b.fail(e)
            return None
        what = what or f" (computed from `{written}`)"
    if name in RESERVED_NAMES:
        b.diags.append(Diagnostic(INVALID_NODE_NAME, f"`{name}`{what} is a reserved word and cannot name a node",
                                  loc, hint="choose another name"))
        return None
    problem = item_name_problem(name)
    if problem:
        b.diags.append(Diagnostic(INVALID_NODE_NAME, f"`{name}`{what} cannot name a node: {problem[0]}", loc,
                                  hint=problem[1]))
        return None
    return name


def claim_name(b: Build, name: str, loc: Loc | None, frame: Frame) -> bool:
    """Record `name` as an item of the frame's body; False (reported) if the body has it already."""
    if name in frame.local or name in frame.item_locs:
        first = frame.item_locs.get(name)
        b.diags.append(Diagnostic(DUPLICATE_NODE, f"`{name}` is defined twice in {frame.where()}" +
                                  (f" (first at line {first.line})" if first else ""), loc,
                                  hint="give each item its own name"))
        return False
    frame.name_item(name, loc)
    return True


def claim_module(b: Build, name: str, loc: Loc | None, frame: Frame) -> bool:
    """Whether the node or block `name` of the frame's body can be a module: no other item of the body is a
    node or block at a `.`-prefix of it (`convs` beside `convs.0`), which would have to hold it. Reported if
    not."""
    parts = name.split(".")
    for k in range(1, len(parts)):
        prefix = ".".join(parts[:k])
        full = frame.full(prefix)
        if prefix in frame.local and (full in b.nodes or full in b.blocks):
            return _collides(b, name, prefix, loc, prefix, frame)
    inner = frame.containers.get(name)
    if inner is not None:
        return _collides(b, inner, name, loc, inner, frame)
    for k in range(1, len(parts)):
        frame.containers.setdefault(".".join(parts[:k]), name)
    return True


def _collides(b: Build, inner: str, outer: str, loc: Loc | None, other: str, frame: Frame) -> bool:
    """E316: the module of item `outer` would have to hold item `inner`'s; `other` is the one made first."""
    first = frame.item_locs.get(other)
    b.diags.append(Diagnostic(
        INVALID_NODE_NAME, f"`{inner}` cannot name a node beside `{outer}` in {frame.where()}: the module "
        f"`{outer}` would have to hold it" + (f" (`{other}` is at line {first.line})" if first else ""), loc,
        hint=f"rename one of them (e.g. `{outer}_out`, or `{inner.replace('.', '_')}`)"))
    return False
