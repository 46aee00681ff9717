"""Experiment files: a grid of training runs, as `archspec sweep` reads it (docs/experiments.md).

    archspec: 1
    experiment: table6
    description: CIFAR-10, Table 6 of He et al. (2016) ...
    grid:                        # crossed: every spec x every value of every axis
      spec: [cifar_plain20, cifar_resnet20]
      set: {n: [3, 5]}           # --set params
      recipe: {optimizer.lr: [0.1, 0.01]}
    points:                      # single runs, not crossed with the grid
      - {spec: cifar_resnet1202, label: ResNet-1202}
    seeds: 5                     # seeds 0..4 of every point
    train: {iters: 64000}        # `archspec train` flags for every run

This module reads and checks the file's structure (every problem with its `file:line:col`, as for a spec), finds a
shipped experiment by name (specs/experiments/NAME.yaml), expands the grid into `Point`s with their keys (the
folder names of their runs) and selects points with `--only KEY=VALUE`. Whether a point's spec, --set values,
recipe values and train flags work is checked by the layers that know them (`archspec.runtime.sweep_check` and
the command line), at the locations this module records.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archspec.lang.codes import (DUPLICATE_POINT, EXPERIMENT_WITHOUT_RUNS, INVALID_VALUE, MISSING_KEY, TOO_MANY_RUNS,
                                 UNKNOWN_EXPERIMENT, UNKNOWN_KEY, UNSUPPORTED_FORMAT_VERSION, WRONG_TYPE)
from archspec.lang.diagnostics import Diagnostic, Loc, Sources, SpecError, did_you_mean
from archspec.lang.errors import UserError
from archspec.lang.yamlsrc import LocDict, LocList, display_path, parse, plain, read_text

FOLDER = "experiments"  # shipped experiments: specs/experiments/NAME.yaml
TOP_KEYS = ("archspec", "experiment", "description", "grid", "points", "seeds", "train")
GRID_KEYS = ("spec", "set", "recipe")
POINT_KEYS = ("spec", "set", "recipe", "train", "label")
MAX_RUNS = 10_000   # points x seeds
MAX_SEEDS = 1_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class Point:
    """One grid point: a spec with its --set and recipe values (ordered as written) and its own train flags. Its
    runs are DIR/<key>/seed<N>. `locs` says where each value was written: "spec", "set.NAME", "recipe.FIELD",
    "train.NAME", and "point" (the grid or the `points:` entry)."""

    spec: str
    set: tuple[tuple[str, Any], ...] = ()
    recipe: tuple[tuple[str, Any], ...] = ()
    train: tuple[tuple[str, Any], ...] = ()
    label: str | None = None
    locs: dict[str, Loc] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> str:
        """The folder name of the point's runs: `cifar_resnet-n=3-optimizer.lr=0.1`."""
        parts = [self.spec.removesuffix(".yaml").removesuffix(".yml")]
        parts += [f"{k}={value_text(v, key=True)}" for k, v in (*self.set, *self.recipe)]
        return folder_name("-".join(parts))

    @property
    def title(self) -> str:
        """The label, else `cifar_resnet n=3 optimizer.lr=0.1`."""
        if self.label:
            return self.label
        return " ".join([self.spec] + [f"{k}={value_text(v)}" for k, v in (*self.set, *self.recipe)])

    def axes(self) -> dict[str, Any]:
        """The point's value of each axis: spec, each --set param, each recipe field (for `--only`)."""
        return {"spec": self.spec, **dict(self.set), **dict(self.recipe)}

    def loc(self, what: str) -> Loc | None:
        return self.locs.get(what) or self.locs.get("point")


@dataclass
class Experiment:
    name: str
    description: str
    path: Path
    display: str
    sha256: str              # of the file's bytes: a sweep folder belongs to one experiment file
    seeds: int
    train: tuple[tuple[str, Any], ...]   # train flags for every run, as written (names as given)
    points: list[Point]
    locs: dict[str, Loc] = field(default_factory=dict)   # "seeds", "train.NAME", "experiment"

    def axes(self) -> dict[str, list[Any]]:
        """Each axis and its values over all points, in the order first seen."""
        out: dict[str, list[Any]] = {}
        for p in self.points:
            for k, v in p.axes().items():
                values = out.setdefault(k, [])
                if v not in values:
                    values.append(v)
        return out


def value_text(value: Any, key: bool = False) -> str:
    """A value as a person (and a folder name, with `key`) reads it: 3, 0.1, true, A, 16,32,64."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, list) and key and all(isinstance(v, (int, float, str, bool)) for v in value):
        return ",".join(value_text(v) for v in value)
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def folder_name(text: str) -> str:
    """`text` as one safe folder name: characters other than letters, digits and `._,=+-` become `_`; a long
    name keeps its start and a hash of the whole."""
    safe = re.sub(r"[^A-Za-z0-9._,=+-]", "_", text).lstrip(".") or "_"
    if len(safe) > 120:
        safe = safe[:100] + "-" + hashlib.sha256(text.encode()).hexdigest()[:12]
    return safe


# -- finding an experiment ---------------------------------------------------------------------------------------

def shipped_experiments() -> dict[str, Path]:
    """The experiments shipped with archspec (specs/experiments/*.yaml), by name."""
    from archspec.lang.resolve import packaged_specs_dir

    folder = packaged_specs_dir() / FOLDER
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}


def locate_experiment(ref: str) -> Path:
    """The file `ref` names: a path, else a shipped experiment's name; a SpecError (E700) otherwise."""
    path = Path(ref).expanduser()
    if path.exists():
        return path
    shipped = shipped_experiments()
    if ref in shipped:
        return shipped[ref]
    looks_like_path = "/" in ref or path.suffix in (".yaml", ".yml")
    what = f"no such file: {ref}" if looks_like_path else f"no experiment named `{ref}`"
    hint = did_you_mean(ref if not looks_like_path else path.stem, shipped, what="shipped experiments")
    return _raise(UNKNOWN_EXPERIMENT, what, Loc(ref, 0, 0), hint or "`archspec sweep --list` shows the shipped "
                  f"experiments: {', '.join(shipped) or 'none'}")


def _raise(code: str, message: str, loc: Loc, hint: str | None = None) -> Any:
    raise SpecError([Diagnostic(code, message, loc, hint=hint)])


# -- reading -------------------------------------------------------------------------------------------------------

def load_experiment(ref: str, sources: Sources) -> Experiment:
    """Read and check an experiment file (a path or a shipped name); SpecError with every problem found."""
    path = locate_experiment(ref)
    display = display_path(path)
    text = read_text(path, display, sources)
    doc = parse(text, display)
    reader = _Reader(display)
    exp = reader.experiment(doc, path, hashlib.sha256(text.encode()).hexdigest())
    if reader.diags:
        raise SpecError(reader.diags)
    return exp


class _Reader:
    def __init__(self, display: str):
        self.display = display
        self.diags: list[Diagnostic] = []

    def problem(self, code: str, message: str, loc: Loc | None, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(code, message, loc or Loc(self.display, 1, 1), hint=hint))

    def mapping(self, value: Any, where: str, loc: Loc | None) -> LocDict | None:
        if isinstance(value, LocDict):
            return value
        self.problem(WRONG_TYPE, f"{where} must be a mapping, got {_kind(value)}", loc)
        return None

    def keys(self, doc: LocDict, allowed: tuple[str, ...], where: str) -> None:
        for k in doc:
            if k not in allowed:
                self.problem(UNKNOWN_KEY, f"unknown key `{k}` in {where}", doc.key_loc(k),
                             did_you_mean(k, allowed) or f"{where} takes {', '.join(allowed)}")

    def experiment(self, doc: Any, path: Path, sha: str) -> Experiment:
        top = self.mapping(doc, "an experiment file", getattr(doc, "loc", None))
        if top is None:
            return Experiment("", "", path, self.display, sha, 1, (), [])
        self.keys(top, TOP_KEYS, "an experiment file")
        if "archspec" not in top:
            self.problem(MISSING_KEY, "an experiment file starts with `archspec: 1` (the format version)", top.loc)
        elif top["archspec"] != 1 or isinstance(top["archspec"], bool):
            self.problem(UNSUPPORTED_FORMAT_VERSION, f"unsupported format version `{top['archspec']}`; this archspec "
                         "reads version 1", top.val_loc("archspec"), "write `archspec: 1`")
        name = top.get("experiment")
        if "experiment" not in top:
            self.problem(MISSING_KEY, "an experiment needs a name: `experiment: NAME` (a sweep folder records it)",
                         top.loc)
        elif not isinstance(name, str) or not _NAME.match(name):
            self.problem(INVALID_VALUE, f"`experiment` must be a name of letters, digits, `_`, `.` and `-`, got "
                         f"{json.dumps(plain(name))}", top.val_loc("experiment"))
        description = top.get("description", "")
        if not isinstance(description, str):
            self.problem(WRONG_TYPE, f"`description` must be text, got {_kind(description)}",
                         top.val_loc("description"))
        seeds = self.seeds(top)
        train = self.train(top.get("train"), top.val_loc("train"), "train") if "train" in top else ()
        locs = {"seeds": top.val_loc("seeds"), "experiment": top.val_loc("experiment") or top.loc}
        locs.update({f"train.{k}": top.get("train").val_loc(k) for k, _ in train})
        points = self.grid(top.get("grid"), top.val_loc("grid")) if "grid" in top else []
        if "points" in top:
            points += self.points(top["points"], top.val_loc("points"))
        if "grid" not in top and "points" not in top:
            self.problem(EXPERIMENT_WITHOUT_RUNS, "the experiment names no run: give a `grid:` or `points:`", top.loc,
                         "e.g. `grid: {spec: [cifar_resnet20, cifar_resnet56]}`")
        self.duplicates(points)
        if len(points) * seeds > MAX_RUNS:
            self.problem(TOO_MANY_RUNS, f"{len(points):,} points x {seeds} seeds = {len(points) * seeds:,} runs; the "
                         f"budget is {MAX_RUNS:,}", top.loc, "split the experiment, or run part of it with --only")
        return Experiment(name if isinstance(name, str) else "", description if isinstance(description, str) else "",
                          path, self.display, sha, seeds, train, points, locs)

    def seeds(self, top: LocDict) -> int:
        seeds = top.get("seeds", 1)
        if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
            self.problem(INVALID_VALUE, f"`seeds` is the number of runs of each point (seeds 0 to N-1): a whole number "
                         f"from 1 to {MAX_SEEDS}, got {json.dumps(plain(seeds))}", top.val_loc("seeds"))
            return 1
        return seeds

    def train(self, value: Any, loc: Loc | None, where: str) -> tuple[tuple[str, Any], ...]:
        """`train:` as (name, value) pairs; the names and values are checked against `archspec train`'s flags by
        the command line (E703), at the locations recorded."""
        doc = self.mapping(value, f"`{where}`", loc)
        if doc is None:
            return ()
        out = []
        for k, v in doc.items():
            if isinstance(v, LocDict):
                self.problem(WRONG_TYPE, f"train flag `{k}` takes a value as on the command line, not a mapping",
                             doc.val_loc(k))
                continue
            out.append((str(k), plain(v)))
        return tuple(out)

    def axis(self, values: Any, loc: Loc | None, what: str) -> list[tuple[Any, Loc | None]]:
        """An axis's values with their locations: a list, or one value standing for a list of one."""
        if isinstance(values, LocList):
            if not values:
                self.problem(EXPERIMENT_WITHOUT_RUNS, f"{what} lists no value, so the grid has no point", loc,
                             "give at least one value, or remove the axis")
            return [(plain(v), values.val_loc(i)) for i, v in enumerate(values)]
        return [(plain(values), loc)]

    def spec_value(self, value: Any, loc: Loc | None) -> bool:
        if isinstance(value, str) and value.strip() and "\x00" not in value:
            return True
        self.problem(WRONG_TYPE, f"a spec is named by a file or a shipped spec's name (text), got {_kind(value)}", loc,
                     "`archspec list` shows the shipped specs")
        return False

    def named_values(self, doc: Any, loc: Loc | None, kind: str) -> list[tuple[str, Any, Loc | None, LocDict]]:
        """(name, value, value loc, container) of a `set:` or `recipe:` mapping, names checked."""
        doc = self.mapping(doc, f"`{kind}`", loc)
        if doc is None:
            return []
        pattern, what = (_PARAM, "a param name") if kind == "set" else (_FIELD, "a recipe field such as optimizer.lr")
        out = []
        for k, v in doc.items():
            if not pattern.match(str(k)):
                self.problem(INVALID_VALUE, f"`{k}` is not {what}", doc.key_loc(k))
                continue
            out.append((str(k), v, doc.val_loc(k), doc))
        return out

    def grid(self, value: Any, loc: Loc | None) -> list[Point]:
        doc = self.mapping(value, "`grid`", loc)
        if doc is None:
            return []
        self.keys(doc, GRID_KEYS, "`grid`")
        if "spec" not in doc:
            self.problem(MISSING_KEY, "`grid` needs `spec:` (a spec, or a list of specs)", doc.loc)
            return []
        specs = [(s, l) for s, l in self.axis(doc["spec"], doc.val_loc("spec"), "`spec`") if self.spec_value(s, l)]
        axes: list[tuple[str, str, list[tuple[Any, Loc | None]]]] = []
        for kind in ("set", "recipe"):
            for name, values, vloc, _ in self.named_values(doc.get(kind, LocDict()), doc.val_loc(kind), kind):
                axes.append((kind, name, self.axis(values, vloc, f"`{kind}: {name}`")))
        points = []
        for (spec, spec_loc), *combo in itertools.product(specs, *(values for _, _, values in axes)):
            locs = {"spec": spec_loc, "point": spec_loc}
            chosen: dict[str, list] = {"set": [], "recipe": []}
            for (kind, name, _), (v, vloc) in zip(axes, combo):
                chosen[kind].append((name, v))
                locs[f"{kind}.{name}"] = vloc
            points.append(Point(spec, tuple(chosen["set"]), tuple(chosen["recipe"]), locs=locs))
        return points

    def points(self, value: Any, loc: Loc | None) -> list[Point]:
        if not isinstance(value, LocList):
            self.problem(WRONG_TYPE, f"`points` must be a list of points ({{spec: ..., set: {{...}}}}), got "
                         f"{_kind(value)}", loc)
            return []
        out = []
        for i, item in enumerate(value):
            doc = self.mapping(item, "a point", value.val_loc(i))
            if doc is None:
                continue
            self.keys(doc, POINT_KEYS, "a point")
            if "spec" not in doc:
                self.problem(MISSING_KEY, "a point needs `spec:`", doc.loc)
                continue
            if not self.spec_value(doc["spec"], doc.val_loc("spec")):
                continue
            locs = {"spec": doc.val_loc("spec"), "point": doc.loc}
            chosen: dict[str, list] = {"set": [], "recipe": []}
            for kind in ("set", "recipe"):
                for name, v, vloc, _ in self.named_values(doc.get(kind, LocDict()), doc.val_loc(kind), kind):
                    if isinstance(v, LocList):
                        self.problem(WRONG_TYPE, f"a point takes one value of `{name}` (a list of values is for "
                                     "`grid:`); a list-valued param is written nested, e.g. `[[16, 32, 64]]`", vloc)
                        continue
                    chosen[kind].append((name, plain(v)))
                    locs[f"{kind}.{name}"] = vloc
            train = self.train(doc["train"], doc.val_loc("train"), "train") if "train" in doc else ()
            locs.update({f"train.{k}": doc["train"].val_loc(k) for k, _ in train})
            label = doc.get("label")
            if label is not None and not isinstance(label, str):
                self.problem(WRONG_TYPE, f"`label` must be text, got {_kind(label)}", doc.val_loc("label"))
                label = None
            out.append(Point(str(doc["spec"]), tuple(chosen["set"]), tuple(chosen["recipe"]), train, label, locs))
        return out

    def duplicates(self, points: list[Point]) -> None:
        seen: dict[str, Point] = {}
        for p in points:
            other = seen.get(p.key)
            if other is not None:
                first = other.loc("point")
                self.problem(DUPLICATE_POINT, f"this point is the same run as the one at line "
                             f"{first.line if first else '?'} (`{p.key}`)", p.loc("point"),
                             "remove one (a `points:` entry is not crossed with the grid)")
            else:
                seen[p.key] = p


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value is None:
        return "nothing"
    if isinstance(value, float) and not math.isfinite(value):
        return f"`{value}`"
    return f"`{value}`"


# -- selecting points ----------------------------------------------------------------------------------------------

def select(exp: Experiment, only: list[str]) -> list[Point]:
    """The points that `--only KEY=VALUE` (repeatable: one key given twice takes either value; different keys
    must all match) select; a UserError naming the axes and their values when one selects nothing."""
    if not only:
        return list(exp.points)
    axes = exp.axes()
    wanted: dict[str, list[str]] = {}
    for item in only:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise UserError(f"--only {item}: expected KEY=VALUE, e.g. --only spec=cifar_resnet20 (the axes of "
                            f"{exp.name}: {', '.join(axes)})")
        if key not in axes:
            raise UserError(f"--only {item}: {exp.name} has no axis `{key}`; its axes are " + _axes_text(axes))
        wanted.setdefault(key, []).append(text.strip())
    for key, texts in wanted.items():
        for text in texts:
            if not any(_matches(v, text) for v in axes[key]):
                raise UserError(f"--only {key}={text}: no point of {exp.name} has {key}={text}; {key} takes "
                                + ", ".join(value_text(v) for v in axes[key]))
    chosen = [p for p in exp.points if all(key in p.axes() and any(_matches(p.axes()[key], t) for t in texts)
                                           for key, texts in wanted.items())]
    if not chosen:
        given = " ".join(f"--only {k}={t}" for k, ts in wanted.items() for t in ts)
        raise UserError(f"{given}: no point of {exp.name} has all of these (each matches some point alone); the "
                        f"points are {', '.join(p.key for p in exp.points[:12])}"
                        + (f" and {len(exp.points) - 12} more" if len(exp.points) > 12 else ""))
    return chosen


def _matches(value: Any, text: str) -> bool:
    if value_text(value) == text or value_text(value, key=True) == text:
        return True
    if isinstance(value, str):   # (a spec file also by the name its key shows: `--only spec=tiny`)
        return value.removesuffix(".yaml").removesuffix(".yml") == text
    try:
        return value == json.loads(text) and type(value) is type(json.loads(text))
    except ValueError:
        return isinstance(value, float) and _float(text) == value


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _axes_text(axes: dict[str, list[Any]]) -> str:
    return "; ".join(f"{k} ({', '.join(value_text(v) for v in vs[:8])}{', ...' if len(vs) > 8 else ''})"
                     for k, vs in axes.items())
