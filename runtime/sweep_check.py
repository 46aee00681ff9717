"""Checking every point of a sweep before any run starts: its spec loaded with its --set values and compiled
(shapes included), and its recipe resolved with its recipe values and the train flags.

A problem is reported where the experiment file wrote what caused it: a spec that does not exist at the spec's
value, a bad --set value at that value in the grid (`grid.set.n`'s `0`), a recipe value the recipe refuses at that
value; a problem that only the combination of a point's values causes (or one inside a spec file) at the point's
first --set value (else its spec), with the spec's own location as a note. Each keeps the code it has for a spec
(E123 no such spec, E213 a bad param value, ...); recipe values get E704.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archspec.lang.codes import INVALID_RECIPE_OVERRIDE
from archspec.lang.diagnostics import Diagnostic, Loc, SpecError
from archspec.runtime.options import OPTION_FIELDS

if TYPE_CHECKING:
    from archspec.lang.diagnostics import Sources
    from archspec.lang.experiment import Point
    from archspec.runtime.sweep_plan import SweepRequest


def check_points(req: SweepRequest, sources: Sources) -> tuple[dict[str, str], list[Diagnostic]]:
    """The resolved spec name of each point (by key) and every problem found, located in the experiment file. Every
    point of the experiment is checked, not only those `--only` selects: the file is valid or it is not."""
    from archspec.compiler.analysis import analyse
    from archspec.lang.spec import load_spec
    from archspec.runtime.sweep_plan import set_text, spec_ref

    names: dict[str, str] = {}
    problems: list[Diagnostic] = []
    compiled: dict[tuple, Any] = {}   # (spec, --set, --input) -> the spec, or the problems it has
    for point in req.experiment.points:
        flags = req.train.get(point.key, {})
        ref = spec_ref(point, req.experiment)
        overrides = [f"{k}={set_text(v)}" for k, v in point.set]
        key = (ref, tuple(overrides), flags.get("input_shape"))
        if key not in compiled:
            try:
                spec = load_spec(ref, overrides, flags.get("input_shape"), sources)
                analyse(spec)
                compiled[key] = spec
            except SpecError as e:
                compiled[key] = [relocate(d, point, ref) for d in e.diagnostics]
        found = compiled[key]
        if isinstance(found, list):
            problems += found
            continue
        names[point.key] = found.name
        problems += _recipe_problems(point, found.recipe, flags)
    return names, _unique(problems)


def relocate(d: Diagnostic, point: Point, ref: str) -> Diagnostic:
    """The diagnostic `d` of loading or compiling the point's spec, at the experiment file's value that caused it."""
    where = d.loc.file if d.loc is not None else ""
    if where.startswith("--set "):
        name = where[len("--set "):]
        return Diagnostic(d.code, d.message, point.loc(f"set.{name}"), d.hint, d.severity, d.notes)
    if d.loc is None or not d.loc.line:   # about the spec as named (no such spec, a folder, ...)
        message = d.message.replace(f"`{ref}`", f"`{point.spec}`").replace(ref, point.spec)
        return Diagnostic(d.code, message, point.loc("spec"), d.hint, d.severity, d.notes)
    first = f"set.{point.set[0][0]}" if point.set else "spec"
    return Diagnostic(d.code, f"{point.title}: {d.message}", point.loc(first), d.hint, d.severity,
                      [(d.loc, "where the spec says so")] + d.notes)


def _recipe_problems(point: Point, spec_recipe: dict[str, Any] | None, flags: dict[str, Any]) -> list[Diagnostic]:
    """The point's recipe values against the spec's recipe and the train flags (E704)."""
    from archspec.runtime.plan import resolve_recipe
    from archspec.runtime.request import RunError
    from archspec.runtime.sweep_plan import recipe_text

    options = {k: v for k, v in flags.items() if k in OPTION_FIELDS and v not in (None, False)}
    given = list(flags.get("recipe_overrides") or [])
    problems = []
    for name, _ in point.recipe:
        by_flag = [k for k, f in OPTION_FIELDS.items() if k in options and (f == name or f.startswith(name + "."))]
        by_recipe = [g for g in given if g.split("=", 1)[0].strip() == name]
        if by_flag or by_recipe:
            flag = f"--{by_flag[0].replace('_', '-')}" if by_flag else f"--recipe {by_recipe[0]}"
            problems.append(Diagnostic(INVALID_RECIPE_OVERRIDE, f"`{name}` is set here and by the train flag {flag}, "
                                       "which would win", point.loc(f"recipe.{name}"),
                                       hint="give it in one place: drop the flag, or this recipe value"))
    if problems:
        return problems
    ours = [f"{k}={recipe_text(v)}" for k, v in point.recipe]
    try:
        resolve_recipe(spec_recipe, options, given + ours)
        return []
    except RunError as e:
        whole = str(e)
    for (name, _), item in zip(point.recipe, ours):   # the value that fails on its own
        try:
            resolve_recipe(spec_recipe, {}, [item])
        except RunError as e:
            return [Diagnostic(INVALID_RECIPE_OVERRIDE, _without_flag(str(e)), point.loc(f"recipe.{name}"))]
    where = point.loc(f"recipe.{point.recipe[0][0]}") if point.recipe else point.loc("spec")
    return [Diagnostic(INVALID_RECIPE_OVERRIDE, f"{point.title}: with the train flags, the recipe cannot be used: "
                       f"{_without_flag(whole)}", where)]


def _without_flag(message: str) -> str:
    return message.replace("`--recipe ", "`").replace("--recipe overrides", "recipe values")


def _unique(problems: list[Diagnostic]) -> list[Diagnostic]:
    """Each problem once (a bad value of one axis fails every point crossed with it the same way)."""
    seen: set[tuple] = set()
    out = []
    for d in problems:
        mark = (d.code, d.message, str(d.loc) if isinstance(d.loc, Loc) else None)
        if mark not in seen:
            seen.add(mark)
            out.append(d)
    return out
