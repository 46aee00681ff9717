"""A resolved spec: one merged document with its params computed, constraints checked and input shape known.

`load_spec` is the front half of every command: locate, read, schema-check and merge the files, apply
`--set` overrides, compute params (in dependency order, any order in the file), check constraints, and read the
input shape and the training recipe. It collects every problem before giving up.
"""

from __future__ import annotations

import json
import re
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Union

from archspec.lang import expr
from archspec.lang.codes import (CONSTRAINT_NOT_MET, INVALID_INPUT_SHAPE, INVALID_VALUE, MISSING_KEY, NO_NETWORK,
                                 PARAM_CYCLE, TOO_MUCH_EXPR_WORK, UNKNOWN_PARAM)
from archspec.lang.diagnostics import Diagnostic, Loc, Sources, SpecError, did_you_mean
from archspec.lang.params import TOP, TOP_LIBRARY, ParamTable, type_diagnostic
from archspec.lang.resolve import Resolver, locate, shipped
from archspec.lang.expr import metered
from archspec.lang.nearmiss import searching
from archspec.lang.values import Failed, Scope, evaluate_expression, evaluate_value, needs_evaluation
from archspec.lang.yamlsrc import LocDict, LocList, display_path, parse_value, plain

_OVERRIDE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)


@dataclass
class Spec:
    name: str
    path: Path
    display: str
    doc: LocDict
    params: dict[str, Any]
    param_locs: dict[str, Loc]
    blocks: LocDict
    input_shape: tuple[int, ...]
    input_loc: Loc
    recipe: dict[str, Any] | None
    description: str
    sources: Sources
    files: list[str] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)
    param_table: ParamTable = field(default_factory=ParamTable)  # declarations and where each value came from
    param_deps: dict[str, set[str]] = field(default_factory=dict)  # param -> the params its value read
    reads: "ParamReads" = field(default_factory=lambda: ParamReads())  # what building the network read
    block_origins: dict[str, list] = field(default_factory=dict)
    merge_order: list[tuple[str, str]] = field(default_factory=list)  # (file, role) in the order merged
    _scope: Scope | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def network(self) -> LocList:
        return self.doc["network"]

    def scope(self) -> Scope:
        """The params, as the network and the blocks read them (each read is remembered: `unread_params`). Made
        once: expansion asks for it at every block instance and every template default."""
        if self._scope is None:
            self._scope = Scope([self.reads.lookup(self.params)], names=list(self.params))
        return self._scope

    def checked_params(self) -> dict[str, tuple[Loc | None, str]]:
        """The params the user set (in the spec's own file, a library it imports, or with `--set`) or that the
        spec's own file or a library of the user's declares: each must change what is built. name -> (where, "set",
        "declared" or "inferred" (a plain value in a library of the user's, its type from the value))."""
        out: dict[str, tuple[Loc | None, str]] = {}
        for name, entry in self.param_table.entries.items():
            if entry.role == "--set" or (entry.assigned and entry.role in (TOP, TOP_LIBRARY)):
                out[name] = (entry.loc, "set")
            elif not entry.assigned and entry.decl.role in (TOP, TOP_LIBRARY):
                # a plain value in a library of the user's reads as a setting; in the spec's own file (a run's
                # resolved spec.yaml among them) it is the spec's vocabulary, as a typed declaration is
                inferred = entry.decl.role == TOP_LIBRARY and not entry.decl.explicit
                out[name] = (entry.decl.loc, "inferred" if inferred else "declared")
        return out

    def used_params(self, reads: set[str]) -> set[str]:
        """`reads` and every param their values were computed from."""
        used, todo = set(), list(reads)
        while todo:
            name = todo.pop()
            if name not in used:
                used.add(name)
                todo.extend(self.param_deps.get(name, ()))
        return used


class ParamReads:
    """Which params something read: the network's expansion, the input shape and the recipe (`network`), the
    name and description (`named`). Constraints are not reads: a check does not change what is built."""

    def __init__(self) -> None:
        self.network: set[str] = set()
        self.named: set[str] = set()
        self.paused = 0

    def lookup(self, params: dict[str, Any], into: set[str] | None = None) -> "_Reader":
        return _Reader(self, params, self.network if into is None else into)


class _Reader:
    """A scope layer reading `params` and noting each name read in `into` (unless reads are paused). A class, not a
    closure: the spec, and so its scope, is pickled with a built model."""

    def __init__(self, reads: ParamReads, params: dict[str, Any], into: set[str]):
        self.reads, self.params, self.into = reads, params, into

    def __call__(self, name: str) -> Any:
        value = self.params[name]  # KeyError: not a param
        if not self.reads.paused:
            self.into.add(name)
        return value


# params to override: `--set name=value` text (read as each param's type), or Python values by name
Overrides = Union[Iterable[str], Mapping[str, Any]]


def parse_overrides(items: Overrides) -> tuple[dict[str, tuple[Any, Loc]], list[Diagnostic]]:
    """`--set name=value` pairs as text (`typed_override` reads each value as its param's type), or a mapping of
    Python values, taken as they are (never read as YAML: `"on"` stays the text "on", `"0x10"` is not 16)."""
    out: dict[str, tuple[Any, Loc]] = {}
    diags = []
    if isinstance(items, Mapping):
        for name, value in items.items():
            out[str(name)] = (Given(value), Loc(f"{name}={reprlib.repr(value)}", 0, 0))  # as the caller wrote it
        return out, diags
    for item in items:
        where = Loc(f"--set {item}", 0, 0)
        m = _OVERRIDE.match(item)
        if not m:
            diags.append(Diagnostic(UNKNOWN_PARAM, f"`--set {item}` is not of the form name=value", where,
                                    hint="e.g. `--set n=200` or `--set shortcut=C`"))
            continue
        name, text = m.group(1), m.group(2)
        out[name] = (text, Loc(f"--set {name}", 0, 0))
    return out, diags


@dataclass(frozen=True)
class Given:
    """A Python value given for a param (not `--set` text)."""
    value: Any


def _first_expression(value: Any) -> str:
    """The first text in `value` that a spec would read as an expression or an interpolation."""
    if isinstance(value, str):
        return value
    items = value.values() if isinstance(value, Mapping) else value
    return next(_first_expression(v) for v in items if needs_evaluation(v))


@searching()  # the did-you-mean hints of one spec's loading share one budget of work
def load_spec(ref: str | Path, overrides: Overrides = (), input_shape: str | None = None,
              sources: Sources | None = None, checker: Any = None) -> Spec:
    """Locate, read, check and resolve a spec; raise SpecError with every problem found."""
    from archspec.lang.schema import SchemaChecker

    sources = sources if sources is not None else Sources()
    path = locate(ref)
    resolver = Resolver(sources, checker or SchemaChecker(), root=path.resolve().parent)
    resolved = resolver.resolve(path)
    doc = resolved.doc
    display = display_path(path)
    diags: list[Diagnostic] = []
    if "network" not in doc:
        diags.append(Diagnostic(NO_NETWORK, "this file has no `network:`; it is a library or a base, not a spec",
                                doc.loc or Loc(display, 1, 1),
                                hint="validate a spec that imports or extends it, or add a `network:` list"))
        raise SpecError(diags)

    for bname, template in doc.get("blocks", {}).items():
        if "body" not in template:
            diags.append(Diagnostic(MISSING_KEY, f"block `{bname}` has no `body`", doc["blocks"].key_loc(bname),
                                    hint="a block needs `body:`, its list of items (a child file may leave it "
                                    "out only when the parent defines it)"))
    table = resolved.params
    given, bad = parse_overrides(overrides)
    diags += bad
    for name, (text, loc) in given.items():
        if name not in table:
            diags.append(Diagnostic(UNKNOWN_PARAM, f"this spec has no param `{name}`", loc,
                                    hint=did_you_mean(name, table.names(), what="params")))
            continue
        if isinstance(text, Given):
            value = plain(text.value)  # as the language holds it: tuples as lists
            if needs_evaluation(value):  # the language has no way to write such text literally
                diags.append(Diagnostic(UNKNOWN_PARAM, f"the value given for `{name}` holds text that a spec reads as "
                                        f"an expression ({_first_expression(value)!r})", loc,
                                        hint=f"pass the value itself ({name}=...), not an expression; a computed "
                                        "value is the spec's own business (a param with `=...`), or `--set` text"))
                continue
        else:
            try:
                value = typed_override(table.entries[name].decl, text)
            except SpecError as e:
                d = e.diagnostics[0]
                diags.append(Diagnostic(d.code, f"`--set {name}`: {d.message}", loc, hint=d.hint))
                continue
        if not needs_evaluation(value):
            d = type_diagnostic(table.entries[name].decl, value, loc, templates=doc.get("blocks", LocDict()))
            if d is not None:
                diags.append(d)
                continue
        table.set_override(name, value, loc)
    failed_types = {n for n, (_, loc) in given.items() if n in table and table.entries[n].role != "--set"}
    params_doc = table.doc()
    with metered(SPEC_WORK, SPEC_WORK_HINT):  # params and constraints: one budget of expression work (E501)
        params, param_locs, deps = _resolve_params(params_doc, table, doc.get("blocks", LocDict()), diags,
                                                   failed=failed_types)
        reads = ParamReads()
        scope = Scope([_quiet_failures(params, table)], names=list(params))
        if not diags:
            _check_constraints(doc.get("constraints", LocList()), scope, diags, param_locs)
    over = [d for d in diags if d.code == TOO_MUCH_EXPR_WORK]
    if over:  # once the budget is spent every later expression fails too: the first one says it all
        diags[:] = [d for d in diags if d.code != TOO_MUCH_EXPR_WORK] + over[:1]
    used = Scope([reads.lookup(params), _quiet_failures(params, table)], names=list(params))
    shape, shape_loc = _input_shape(doc, input_shape, used, display, diags)
    named = Scope([reads.lookup(params, reads.named), _quiet_failures(params, table)], names=list(params))
    name = path.stem
    if "name" in doc:
        try:
            name = str(evaluate_value(doc["name"], doc.val_loc("name"), named))
        except Failed as e:
            _record(diags, e)
    description = ""
    if "description" in doc:
        try:
            description = str(evaluate_value(doc["description"], doc.val_loc("description"), named)).strip()
        except Failed as e:
            _record(diags, e)
    for key, text in (("name", name), ("description", description)):
        problem = control_characters(text, newlines=key == "description")
        if problem and key in doc:
            diags.append(Diagnostic(INVALID_VALUE, f"`{key}` holds {problem}", doc.val_loc(key),
                                    hint="names and descriptions are printed to terminals, logs and diagrams: "
                                    "write plain text"))
    recipe = None
    if "recipe" in doc:
        try:
            recipe = evaluate_value(doc["recipe"], doc.val_loc("recipe"), used)
        except Failed as e:
            _record(diags, e)
    if diags:
        raise SpecError(diags)
    return Spec(name=name, path=path, display=display, doc=doc, params=params, param_locs=param_locs,
                blocks=doc.get("blocks", LocDict()), input_shape=shape, input_loc=shape_loc, recipe=recipe,
                description=description, sources=sources, files=resolved.files,
                overrides={k: params[k] for k in given if k in params}, param_table=table, param_deps=deps,
                reads=reads, block_origins=resolved.blocks, merge_order=resolved.order)


SPEC_WORK = 2_000_000  # steps of expression work for a spec's params and constraints (an expansion has its own)
SPEC_WORK_HINT = ("a spec's params and constraints share this budget: compute a costly value once, in one param, "
                  "and read that param where it is needed")


def control_characters(text: str, newlines: bool = False) -> str | None:
    """What is wrong with text a user will see printed (a terminal escape sequence, a bell, a line break in a
    one-line name), or None. `newlines`: line breaks and tabs are allowed (a description)."""
    allowed = "\n\t" if newlines else ""
    bad = sorted({ch for ch in text if not ch.isprintable() and ch not in allowed})
    if not bad:
        return None
    shown = ", ".join(repr(ch)[1:-1] for ch in bad[:3])
    return f"control characters ({shown}): a terminal would act on them (escape sequences change titles, erase " \
           "lines or write the clipboard)" if any(ord(ch) == 0x1b for ch in bad) else f"control characters ({shown})"


def _record(diags: list[Diagnostic], e: Failed) -> None:
    if e.diagnostic is not None:  # None: a follow-on of a problem already reported
        diags.append(e.diagnostic)


def _quiet_failures(params: dict[str, Any], table: ParamTable):
    """A scope layer for params that failed (already reported): reading one fails quietly, not `not defined`."""
    def lookup(name: str) -> Any:
        if name in params:
            return params[name]
        if name in table:
            raise Failed()
        raise KeyError(name)

    return lookup


def typed_override(decl: Any, text: str) -> Any:
    """A `--set` value read as its param's type: the text itself for a string (`--set stride_on=3x3`,
    `--set name=on`), YAML's reading for the others (`200`, `true`, `[16, 32, 64]`), `=...` an expression."""
    if text.startswith("="):
        return text
    wants_text = decl.type in ("str", "template", "op") or (decl.choices and all(isinstance(c, str) for c in decl.choices))
    if wants_text or not text.strip():
        return text
    value = parse_value(text, "--set")  # the spec reader's budgets hold for `--set` too (`&a [*a]`)
    return text if value is None else value


def _resolve_params(decls: LocDict, table: ParamTable, blocks: LocDict, diags: list[Diagnostic],
                    failed: set[str] = frozenset()) -> tuple[dict[str, Any], dict[str, Loc], dict[str, set[str]]]:
    """Compute every param, each after the ones it reads, and check each computed value against its declaration
    where it was written. A param that fails (or one in `failed`, already reported) fails its readers quietly.
    Also returns which params each one's value read."""
    raw = dict(decls)
    locs = {k: decls.val_loc(k) for k in decls}
    done: dict[str, Any] = {}
    failed = set(failed)
    visiting: list[str] = []
    deps: dict[str, set[str]] = {k: set() for k in raw}

    def lookup(name: str) -> Any:
        if visiting:
            deps[visiting[-1]].add(name)
        if name in done:
            return done[name]
        if name in failed:
            raise Failed()
        if name not in raw:
            if name in table:  # declared without a value: reported as E217
                raise Failed()
            raise KeyError(name)
        if name in visiting:
            cycle = visiting[visiting.index(name):] + [name]
            raise Failed(Diagnostic(PARAM_CYCLE, "params depend on each other in a cycle: " + " -> ".join(cycle),
                                    locs[name], hint="give one of them a value that does not read the others"))
        visiting.append(name)
        try:
            value = evaluate_value(raw[name], locs[name], scope)
        except Failed as e:
            failed.add(name)
            if e.diagnostic is not None:
                diags.append(e.diagnostic)
            raise Failed() from None
        finally:
            visiting.pop()
        entry = table.entries.get(name)
        if entry is not None and (entry.decl.explicit or entry.assigned):  # (an inferred type fits its own value)
            computed = raw[name] if isinstance(raw[name], str) and raw[name].startswith("=") else None
            d = type_diagnostic(entry.decl, value, locs[name], templates=blocks, computed_from=computed)
            if d is not None:
                failed.add(name)
                diags.append(d)
                raise Failed()
        done[name] = value
        return value

    scope = Scope([lookup], names=raw)
    for name in raw:
        if name in failed:
            continue
        try:
            lookup(name)
        except Failed:
            pass
    return done, locs, deps


def _check_constraints(constraints: LocList, scope: Scope, diags: list[Diagnostic],
                       param_locs: dict[str, Loc] | None = None) -> None:
    param_locs = param_locs or {}
    for i, c in enumerate(constraints):
        loc = c.val_loc("check") if isinstance(c, LocDict) else constraints.val_loc(i)
        try:
            ok = evaluate_expression(c["check"], loc, scope)
        except Failed as e:
            diags.append(e.diagnostic)
            continue
        if not ok:
            try:
                message = evaluate_value(c["message"], c.val_loc("message"), scope)
            except Failed as e:
                diags.append(e.diagnostic)
                continue
            d = Diagnostic(CONSTRAINT_NOT_MET, str(message), loc, hint=f"the constraint is `{c['check']}`")
            text = c["check"][1:] if isinstance(c["check"], str) and c["check"].startswith("=") else c["check"]
            try:
                names = sorted(expr.names_in(expr.parse(text))) if isinstance(text, str) else []
            except expr.ExprError:
                names = []
            users = []
            for name in names:
                try:
                    value, where = scope.lookup(name), param_locs.get(name)
                except (KeyError, Failed):
                    continue
                d.notes.append((where, f"{name} = {json.dumps(value, default=str)}"))
                if where is not None and _users(where):
                    users.append((name, where))
            if users and not _users(loc):  # a shipped file's check, broken by the user's value: at the value
                name, where = users[0]
                d = Diagnostic(CONSTRAINT_NOT_MET, str(message), where, hint=d.hint,
                               notes=[(loc, f"the constraint that `{name}` breaks")] +
                               [n for n in d.notes if n[0] != where])
            diags.append(d)


def _users(loc: Loc) -> bool:
    """Whether `loc` is in a file the user wrote or a `--set` (not in a file archspec ships)."""
    return loc.file.startswith("--set ") or not shipped(Path(loc.file))


def _input_shape(doc: LocDict, override: str | None, scope: Scope, display: str,
                 diags: list[Diagnostic]) -> tuple[tuple[int, ...], Loc]:
    if override is not None:
        loc = Loc(f"--input {override}", 0, 0)
        value: Any = override
    elif "input" in doc:
        loc = doc.val_loc("input")
        try:
            value = evaluate_value(doc["input"], loc, scope)
        except Failed as e:
            diags.append(e.diagnostic)
            return (), loc
    else:
        diags.append(Diagnostic(MISSING_KEY, "the spec has no `input:` shape", doc.loc or Loc(display, 1, 1),
                                hint="add e.g. `input: [3, 224, 224]` (channels, height, width)"))
        return (), Loc(display, 1, 1)
    shape = parse_shape(value)
    if shape is None:
        shown = f"`{value}`" if isinstance(value, str) else json.dumps(value, default=str)
        diags.append(Diagnostic(INVALID_INPUT_SHAPE,
                                f"input shape {shown} is not C, CxHxW or [C, H, W] with positive sizes",
                                loc, hint="e.g. `--input 3x224x224`"))
        return (), loc
    return shape, loc


def parse_shape(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, str):
        parts = value.lower().replace(",", "x").split("x")
        try:
            value = [int(p) for p in parts]
        except ValueError:
            return None
    if not isinstance(value, list) or len(value) not in (1, 3):
        return None
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 or v > expr.MAX_INT for v in value):
        return None
    return tuple(value)


def shipped_recipes() -> dict[str, Path]:
    """The recipes archspec ships, by name (`rsb_a3`: specs/recipes/rsb_a3.yaml)."""
    from archspec.lang.resolve import packaged_specs_dir

    folder = packaged_specs_dir() / "recipes"
    return {p.stem: p for p in sorted(folder.glob("*.yaml")) if p.is_file()}


def load_recipe(ref: str, sources: Sources | None = None) -> tuple[dict[str, Any], str]:
    """The `recipe:` of a shipped recipe named `ref` (`rsb_a3`) or of a file (a recipe file, or any spec file with
    a recipe), with its imports and params resolved, and the file's display name; SpecError if there is none.
    The recipe is checked by the runtime (`archspec.runtime.recipe`), as a spec's is."""
    from archspec.lang.codes import UNKNOWN_SPEC
    from archspec.lang.schema import SchemaChecker

    recipes = shipped_recipes()
    looks_like_path = "/" in ref or ref.endswith((".yaml", ".yml", ".json")) or Path(ref).exists()
    if not looks_like_path and ref not in recipes:
        hint = did_you_mean(ref, recipes) or ""
        raise SpecError([Diagnostic(UNKNOWN_SPEC, f"no recipe named `{ref}` (shipped: {', '.join(recipes)})",
                                    Loc(ref, 0, 0), hint=hint or "`archspec list --recipes` describes them; or give "
                                    "a recipe file's path")])
    path = recipes[ref] if not looks_like_path else locate(ref)
    sources = sources if sources is not None else Sources()
    resolved = Resolver(sources, SchemaChecker(), root=path.resolve().parent).resolve(path)
    doc, display = resolved.doc, display_path(path)
    if "recipe" not in doc:
        raise SpecError([Diagnostic(MISSING_KEY, "this file has no `recipe:`, so it names no recipe",
                                    doc.loc or Loc(display, 1, 1),
                                    hint="a recipe file holds `archspec: 1`, a `description:` and a `recipe:` "
                                    "mapping (see specs/recipes/)")])
    diags: list[Diagnostic] = []
    params, _, _ = _resolve_params(resolved.params.doc(), resolved.params, doc.get("blocks", LocDict()), diags)
    recipe: Any = None
    if not diags:
        try:
            recipe = evaluate_value(doc["recipe"], doc.val_loc("recipe"), Scope([params], names=list(params)))
        except Failed as e:
            _record(diags, e)
    if diags:
        raise SpecError(diags)
    return plain(recipe), display
