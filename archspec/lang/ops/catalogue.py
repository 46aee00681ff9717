"""The registry as text for people: `archspec ops` prints every op with its inputs, attributes, defaults and
ranges, straight from the entries, so the list is never out of date.
"""

from __future__ import annotations

from archspec.lang.ops import OPS, USER_OPS
from archspec.lang.ops.base import Attr, OpDef

_TYPES = {"int": "int", "size": "k or [kh, kw]", "bool": "bool", "float": "number", "str": "string", "list": "list"}


def _inputs(op: OpDef) -> str:
    lo, hi = op.inputs
    if hi is None:
        return f"{lo} or more inputs"
    return f"{lo} input{'s' if lo != 1 else ''}" if lo == hi else f"{lo} to {hi} inputs"


def _attr_line(name: str, a: Attr) -> str:
    kind = "one of " + ", ".join(a.choices) if a.choices else _TYPES.get(a.type, a.type)
    bounds = []
    if a.min is not None:
        bounds.append(f">= {a.min:g}")
    if a.max is not None:
        bounds.append(f"{'<' if a.max_open else '<='} {a.max:g}")
    default = "required" if a.required else ("optional" if a.default is None else f"default {_show(a.default)}")
    text = f"    {name:<18} {' '.join([kind] + bounds):<22} {default}"
    return text + (f"  ({a.doc})" if a.doc else "")


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe(name: str) -> str:
    """One op: its name, what it does, its inputs and each attribute."""
    op = OPS[name]
    lines = [f"{name}: {op.doc} ({_inputs(op)}{'; counts towards depth' if op.weighted else ''})"]
    lines += [_attr_line(k, a) for k, a in op.attrs.items()] or ["    (no attributes)"]
    return "\n".join(lines)


def catalogue(names: list[str] | None = None) -> str:
    """Every op a spec may use (or the ones named), one paragraph each."""
    return "\n".join(describe(n) for n in (names or USER_OPS))
