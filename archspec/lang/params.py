"""Spec params: each declared once (type, default, range, doc), then assigned by later files or `--set`, every
value checked where it is written, and the history of each kept for `archspec explain --origin`.

A file's `params:` entry is either a *declaration* or an *assignment*:

```yaml
params:
  n: {type: int, default: 3, min: 1, doc: blocks per stage}   # declares n (a mapping with `type:`)
  shortcut: B                                                 # assigns a param declared before
```

- A declaration names a new param. A plain value in a file that starts a spec (one that extends nothing) or in a
  library also declares, with the type of its value (`3` an int, `0.1` a number, `B` a string); in a file that
  extends another it must assign a param declared before, or it is E207 with a near miss (a typo such as
  `shortcutt: B` is never a new param there).
- A param declared twice (by two files) is E215: a later file assigns it.
- Literal values are checked against the declaration where they are written (E213); `=expressions` once they are
  computed (`archspec.lang.spec`), `--set` values where they are given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archspec.lang.codes import DUPLICATE_PARAM, INVALID_PARAM_VALUE, PARAM_WITHOUT_VALUE, UNKNOWN_PARAM
from archspec.lang.diagnostics import Diagnostic, Loc, did_you_mean
from archspec.lang.types import EXPECTED, declared_problem
from archspec.lang.values import needs_evaluation
from archspec.lang.yamlsrc import LocDict

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()

# how a file takes part in a spec: its own file, a file it extends, or a library that one of them imports
# (a library imported by the spec's own file, directly or not, is the user's own doing: TOP_LIBRARY)
TOP, PARENT, LIBRARY, TOP_LIBRARY = "top", "parent", "library", "top library"


def _ops() -> list[str]:
    from archspec.lang.ops import USER_OPS  # the registry (its entries use the type checker, not params)

    return USER_OPS


@dataclass
class ParamDecl:
    name: str
    type: str
    default: Any
    minimum: float | None
    maximum: float | None
    choices: list[Any] | None
    doc: str | None
    loc: Loc | None  # where the name was declared
    file: str
    role: str
    explicit: bool  # written as {type: ...}, not inferred from a plain value
    below: float | None = None  # a number must be less than this (`below: 1`: a probability)
    items: dict[str, Any] | None = None  # a list's items: {type: int, min: 1, ...}

    def bounds(self) -> dict[str, Any]:
        """The declaration's checks as a spec writes them (`min`, `max`, `below`, `enum`, `items`)."""
        out = {"min": self.minimum, "max": self.maximum, "below": self.below, "enum": self.choices,
               "items": self.items}
        return {k: v for k, v in out.items() if v is not None}

    def describe(self) -> str:
        """`int, at least 1 (blocks per stage)`: the declaration in words."""
        parts = [self.type]
        if self.items is not None:
            parts = [_describe_bounds(f"list of {self.items.get('type', 'any')}", self.items)]
        return _describe_bounds(", ".join(parts), self.bounds()) + (f" ({self.doc})" if self.doc else "")

    def problem(self, value: Any, templates: Any = None) -> str | None:
        """What is wrong with `value` for this param, in words ("a whole number"), or None."""
        kind = self.type if self.type in EXPECTED else "any"
        return declared_problem(kind, value, self.bounds(), templates=templates,
                                ops=_ops() if "op" in (self.type, (self.items or {}).get("type")) else None)


def _describe_bounds(head: str, decl: dict[str, Any]) -> str:
    parts = [head]
    if decl.get("enum"):
        parts = ["one of " + ", ".join(str(c) for c in decl["enum"])]
    for key, words in (("min", "at least"), ("below", "below"), ("max", "at most")):
        if decl.get(key) is not None:
            parts.append(f"{words} {decl[key]:g}")
    return ", ".join(parts)


@dataclass
class Event:
    """One step of a param's history: declared, assigned in a file, or given with `--set`."""

    kind: str  # "declared", "set", "--set"
    loc: Loc | None
    file: str
    role: str
    value: Any


@dataclass
class ParamEntry:
    decl: ParamDecl
    value: Any
    loc: Loc | None  # where the value in force was written
    file: str
    role: str
    history: list[Event] = field(default_factory=list)

    @property
    def assigned(self) -> bool:
        """Whether the value in force was assigned (by a file or --set) rather than being the default."""
        return bool(self.history) and self.history[-1].kind != "declared"


def infer_type(value: Any) -> str:
    if isinstance(value, str) and needs_evaluation(value):
        return "any"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return "any"


class ParamTable:
    """Every param of one spec: its declaration, the value in force, and how it got there."""

    def __init__(self) -> None:
        self.entries: dict[str, ParamEntry] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def names(self) -> list[str]:
        return list(self.entries)

    def merge_file(self, params: Any, file: str, role: str, may_declare: bool, diags: list[Diagnostic]) -> None:
        """Apply one file's `params:`; `may_declare` is False for a file that extends another (there a plain
        value must assign a param declared before)."""
        if not isinstance(params, LocDict):
            return
        for name, raw in params.items():
            existing = self.entries.get(name)
            if isinstance(raw, LocDict) and "type" in raw and not (
                    existing is not None and existing.decl.type in ("map", "any") and not existing.decl.explicit):
                self._declare(name, raw, params.key_loc(name), file, role, diags, explicit=True)
            elif existing is not None:
                self._assign(existing, raw, params.val_loc(name), file, role, diags)
            elif may_declare:
                decl = LocDict({"type": infer_type(raw), "default": raw}, loc=params.key_loc(name))
                decl.val_locs["default"] = params.val_loc(name)
                self._declare(name, decl, params.key_loc(name), file, role, diags, explicit=False)
            else:
                near = did_you_mean(name, self.entries, what="params")
                shown = raw if isinstance(raw, (int, float, str)) and not isinstance(raw, bool) else "..."
                diags.append(Diagnostic(
                    UNKNOWN_PARAM,
                    f"`{name}` is not a param of the spec this file extends, so setting it changes nothing",
                    params.key_loc(name),
                    hint=near or f"to declare a new param for this spec's own use, write `{name}: {{type: "
                    f"{infer_type(raw) if infer_type(raw) != 'any' else 'int'}, default: {shown}}}`; "
                    f"`archspec explain --origin SPEC` lists the params there are"))

    def _declare(self, name: str, raw: LocDict, loc: Loc | None, file: str, role: str,
                 diags: list[Diagnostic], explicit: bool) -> None:
        existing = self.entries.get(name)
        if existing is not None:
            diags.append(Diagnostic(
                DUPLICATE_PARAM, f"param `{name}` is declared twice (first in {existing.decl.file})", loc,
                hint=f"assign it here instead: `{name}: VALUE` (its declaration: {existing.decl.describe()})",
                notes=[(existing.decl.loc, "first declared here")]))
            return
        kind = raw.get("type", "any")
        choices = list(raw["enum"]) if isinstance(raw.get("enum"), list) else None
        items = raw.get("items")
        decl = ParamDecl(name, kind, raw.get("default", MISSING), raw.get("min"), raw.get("max"), choices,
                         raw.get("doc"), loc, file, role, explicit, below=raw.get("below"),
                         items={"type": items} if isinstance(items, str) else dict(items) if items else None)
        entry = ParamEntry(decl, decl.default, raw.val_loc("default") if "default" in raw else loc, file, role)
        entry.history.append(Event("declared", loc, file, role, decl.default))
        self.entries[name] = entry
        if decl.default is not MISSING and explicit:  # (an inferred type fits the value it came from)
            self._check_literal(entry, decl.default, entry.loc, diags)

    def _assign(self, entry: ParamEntry, raw: Any, loc: Loc | None, file: str, role: str,
                diags: list[Diagnostic]) -> None:
        if isinstance(raw, LocDict) and isinstance(entry.value, LocDict):
            from archspec.lang.merging import merge

            raw = merge(entry.value, raw)  # a mapping param changes key by key, as every mapping merges
        entry.value, entry.loc, entry.file, entry.role = raw, loc, file, role
        entry.history.append(Event("set", loc, file, role, raw))
        self._check_literal(entry, raw, loc, diags)

    def set_override(self, name: str, value: Any, loc: Loc) -> None:
        entry = self.entries[name]
        entry.value, entry.loc, entry.file, entry.role = value, loc, loc.file, "--set"
        entry.history.append(Event("--set", loc, loc.file, "--set", value))

    def _check_literal(self, entry: ParamEntry, value: Any, loc: Loc | None, diags: list[Diagnostic]) -> None:
        if needs_evaluation(value) or entry.decl.type == "template":
            return  # computed values are checked once computed; block names once every block is known
        d = type_diagnostic(entry.decl, value, loc)
        if d is not None:
            diags.append(d)

    def doc(self) -> LocDict:
        """The params as the merged document holds them: each name's value in force, at the place it was written
        (a param without a value is left out: `missing` reports it)."""
        out = LocDict(loc=None)
        for name, entry in self.entries.items():
            if entry.value is MISSING:
                continue
            out[name] = entry.value
            out.key_locs[name] = entry.decl.loc
            if entry.loc is not None:
                out.val_locs[name] = entry.loc
        return out

    def missing(self) -> list[Diagnostic]:
        return [Diagnostic(PARAM_WITHOUT_VALUE, f"param `{name}` is declared without a default and nothing sets it",
                           e.decl.loc, hint=f"set it in the spec (`{name}: VALUE`) or with `--set {name}=VALUE` "
                           f"({e.decl.describe()})")
                for name, e in self.entries.items() if e.value is MISSING]


def type_diagnostic(decl: ParamDecl, value: Any, loc: Loc | None, templates: Any = None,
                    computed_from: str | None = None) -> Diagnostic | None:
    """E213 when `value` does not suit the param's declaration, at the place the value was given."""
    problem = decl.problem(value, templates)
    if problem is None:
        return None
    shown = f"`{value}`" if isinstance(value, str) else _show(value)
    what = f"{shown} (computed from `{computed_from}`)" if computed_from else shown
    hint = None
    if problem == "the name of a block":
        hint = did_you_mean(str(value), templates or [], what="blocks")
    elif decl.type == "op" and isinstance(value, str):
        from archspec.lang.ops import unknown_op_hint  # the registry imports the type checker

        hint = unknown_op_hint(value)
    d = Diagnostic(INVALID_PARAM_VALUE, f"param `{decl.name}` must be {problem}, got {what}", loc,
                   hint=hint or (f"`{decl.name}` is {decl.describe()}" if decl.explicit else None))
    if decl.explicit and decl.loc is not None and decl.loc != loc:
        d.notes.append((decl.loc, f"`{decl.name}` is declared here"))
    return d


def _show(value: Any) -> str:
    import json

    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)


def origin_report(table: ParamTable, blocks: dict[str, list[tuple[str, Any, str, str]]],
                  files: list[tuple[str, str]], name: str | None = None) -> list[str] | None:
    """Where each param (or the one named) and each block came from, in merge order, as lines of text; None
    when `name` names neither a param nor a block."""
    lines: list[str] = []
    if name is None:
        lines += ["files, in the order they are merged (a later one wins):"]
        lines += [f"  {i}. {f}  ({role})" for i, (f, role) in enumerate(files, 1)] + ["", "params:"]
    for pname, entry in table.entries.items():
        if name is not None and pname != name:
            continue
        value = "(no value)" if entry.value is MISSING else _show(entry.value)
        lines.append(f"{pname} = {value}")
        for ev in entry.history:
            shown = "" if ev.value is MISSING else _show(ev.value)
            what = entry.decl.describe() + (f"; default {shown}" if shown else "") if ev.kind == "declared" \
                else shown
            where = str(ev.loc) if ev.loc is not None else ev.file
            lines.append(f"  {ev.kind:<9} {where}  {what}" + ("" if ev.kind != "declared" or entry.decl.explicit
                                                              else "  (type from the value)"))
    if name is None:
        lines += ["", "blocks:"]
    for bname, history in blocks.items():
        if name is not None and bname != name:
            continue
        lines.append(bname)
        for what, loc, file, role in history:
            lines.append(f"  {what:<9} {loc if loc is not None else file}  ({role})")
    if name is not None and not lines:
        return None
    return lines
