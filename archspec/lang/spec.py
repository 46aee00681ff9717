"""A resolved spec: one merged document with its params computed, constraints checked and input shape known.

`load_spec` is the front half of every command: locate, read, schema-check and merge the files, apply
`--set` overrides, compute params (in dependency order, any order in the file), check constraints, and read the
input shape and the training recipe. It collects every problem before giving up.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from archspec.lang import expr
from archspec.lang.diagnostics import Diagnostic, Loc, Sources, SpecError, did_you_mean
from archspec.lang.resolve import Resolver, locate
from archspec.lang.values import Failed, Scope, evaluate_expression, evaluate_value
from archspec.lang.yamlsrc import LocDict, LocList, display_path

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

    @property
    def network(self) -> LocList:
        return self.doc["network"]

    def scope(self) -> Scope:
        return Scope([self.params])


def parse_overrides(items: Iterable[str]) -> tuple[dict[str, tuple[Any, Loc]], list[Diagnostic]]:
    """`--set name=value` pairs; values are read as YAML scalars (`200`, `C`, `true`) or `=expressions`."""
    import yaml

    out: dict[str, tuple[Any, Loc]] = {}
    diags = []
    for item in items:
        where = Loc(f"--set {item}", 0, 0)
        m = _OVERRIDE.match(item)
        if not m:
            diags.append(Diagnostic("E207", f"`--set {item}` is not of the form name=value", where,
                                    hint="e.g. `--set n=200` or `--set shortcut=C`"))
            continue
        name, text = m.group(1), m.group(2)
        if text.startswith("="):
            value: Any = text
        else:
            try:
                value = yaml.safe_load(text) if text.strip() else ""
            except yaml.YAMLError:
                value = text
            if isinstance(value, (dict, list)) or value is None:
                value = text if value is None and text.strip() else value
        out[name] = (value, Loc(f"--set {name}", 0, 0))
    return out, diags


def load_spec(ref: str | Path, overrides: Iterable[str] = (), input_shape: str | None = None,
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
        diags.append(Diagnostic("E125", "this file has no `network:`; it is a library or a base, not a spec",
                                doc.loc or Loc(display, 1, 1),
                                hint="validate a spec that imports or extends it, or add a `network:` list"))
        raise SpecError(diags)

    for bname, template in doc.get("blocks", {}).items():
        if "body" not in template:
            diags.append(Diagnostic("E102", f"block `{bname}` has no `body`", doc["blocks"].key_loc(bname),
                                    hint="a block needs `body:`, its list of items (a child file may leave it "
                                    "out only when the parent defines it)"))
    given, bad = parse_overrides(overrides)
    diags += bad
    params_doc: LocDict = doc.get("params", LocDict())
    for name, (_, loc) in given.items():
        if name not in params_doc:
            diags.append(Diagnostic("E207", f"this spec has no param `{name}`", loc,
                                    hint=did_you_mean(name, params_doc, what="params")))
    params, param_locs = _resolve_params(params_doc, {k: v for k, v in given.items() if k in params_doc}, diags)
    scope = Scope([params])
    if not diags:
        _check_constraints(doc.get("constraints", LocList()), scope, diags, param_locs)
    shape, shape_loc = _input_shape(doc, input_shape, scope, display, diags)
    name = path.stem
    if "name" in doc:
        try:
            name = str(evaluate_value(doc["name"], doc.val_loc("name"), scope))
        except Failed as e:
            diags.append(e.diagnostic)
    description = ""
    if "description" in doc:
        try:
            description = str(evaluate_value(doc["description"], doc.val_loc("description"), scope)).strip()
        except Failed as e:
            diags.append(e.diagnostic)
    recipe = None
    if "recipe" in doc:
        try:
            recipe = evaluate_value(doc["recipe"], doc.val_loc("recipe"), scope)
        except Failed as e:
            diags.append(e.diagnostic)
    if diags:
        raise SpecError(diags)
    return Spec(name=name, path=path, display=display, doc=doc, params=params, param_locs=param_locs,
                blocks=doc.get("blocks", LocDict()), input_shape=shape, input_loc=shape_loc, recipe=recipe,
                description=description, sources=sources, files=resolved.files,
                overrides={k: params[k] for k in given if k in params})


def _resolve_params(decls: LocDict, given: dict[str, tuple[Any, Loc]],
                    diags: list[Diagnostic]) -> tuple[dict[str, Any], dict[str, Loc]]:
    """Compute every param, each after the ones it reads; report cycles and errors once each."""
    raw = {k: given[k][0] if k in given else v for k, v in decls.items()}
    locs = {k: given[k][1] if k in given else decls.val_loc(k) for k in decls}
    done: dict[str, Any] = {}
    failed: set[str] = set()
    visiting: list[str] = []

    def lookup(name: str) -> Any:
        if name in done:
            return done[name]
        if name in failed:
            raise Failed()
        if name not in raw:
            raise KeyError(name)
        if name in visiting:
            cycle = visiting[visiting.index(name):] + [name]
            raise Failed(Diagnostic("E205", "params depend on each other in a cycle: " + " -> ".join(cycle),
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
        done[name] = value
        return value

    scope = Scope([lookup], names=raw)
    for name in raw:
        try:
            lookup(name)
        except Failed:
            pass
    return done, locs


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
            d = Diagnostic("E206", str(message), loc, hint=f"the constraint is `{c['check']}`")
            text = c["check"][1:] if isinstance(c["check"], str) and c["check"].startswith("=") else c["check"]
            try:
                names = sorted(expr.names_in(expr.parse(text))) if isinstance(text, str) else []
            except expr.ExprError:
                names = []
            for name in names:
                try:
                    value, where = scope.lookup(name), param_locs.get(name)
                except (KeyError, Failed):
                    continue
                d.notes.append((where, f"{name} = {json.dumps(value, default=str)}"))
            diags.append(d)


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
        diags.append(Diagnostic("E102", "the spec has no `input:` shape", doc.loc or Loc(display, 1, 1),
                                hint="add e.g. `input: [3, 224, 224]` (channels, height, width)"))
        return (), Loc(display, 1, 1)
    shape = parse_shape(value)
    if shape is None:
        shown = f"`{value}`" if isinstance(value, str) else json.dumps(value, default=str)
        diags.append(Diagnostic("E403", f"input shape {shown} is not C, CxHxW or [C, H, W] with positive sizes",
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
