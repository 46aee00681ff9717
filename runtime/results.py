"""Many runs as one table, as the paper gives Table 6: per grid point, the final and the lowest test error over
seeds as "best (mean±std)", with the parameters, MACs, training speed and time. `collect` finds the runs and
groups them into points; `runtime.results_table` renders them (Markdown, CSV, JSON); `archspec plot` draws the
same points (`runtime.plot`).

Where the runs come from (each argument of `archspec results DIR...`):
- a sweep folder (it holds `sweep.json`, written by `archspec sweep`): one point per entry of its `points`, with
  the point's runs at the folders it lists, in its order. A listed run whose folder holds no run.json yet is
  "not started"; a run folder inside the sweep folder that sweep.json does not list is named in a note, not
  counted.
- a run folder (it holds `run.json`), or a folder of run folders (searched `FIND_DEPTH` levels down): runs are
  pooled into points by what they trained, seeds apart: the spec's name, its network (the graph's hash), its
  params as resolved (`spec.yaml`) and the recipe as resolved (`recipe.json`). A point's settings are the params
  and recipe fields that differ between the points of the same spec.

Nothing is dropped: a run's status comes from run.json (`finished`, `running`, `interrupted`, `failed`,
`diverged`), `stopped` when run.json says running but no process holds the folder's lock (the run was killed),
`not started` for a listed run with no run.json. Numbers are over a point's finished runs only; the others are
counted in the point's status. run.json is read through `RunDir.info` (every field checked); a damaged one
stops the command in one line naming it (exit code 2), as does a damaged sweep.json.

Errors (percent) are of the held-out split the runs were evaluated on: `test` (for CIFAR-10, its 10,000 test
images; the paper's Table 6 and Figure 6), or `val` for runs that have no test split. Per run: `final` is the
error of the last evaluation, `lowest` the lowest of all its evaluations (what the curves of Figure 6 dip to: a
look at the test set, not a model selected on validation). Images/s is the run's steady training speed as
run.json's summary computes it (log windows after the first of each start, which holds warm-up); time is the
training clock of metrics.jsonl (summed over resumes).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from archspec.lang.errors import UserError
from archspec.lang.files import load_json, read_regular
from archspec.runtime.metrics import steady_images_per_s, training_seconds
from archspec.runtime.results_sweep import SWEEP_FILE, ResultsError, read_sweep
from archspec.runtime.rundir import RunDir, RunDirError, lock_held

FIND_DEPTH = 3  # folders below a given one searched for run folders
NOT_STARTED, STOPPED = "not started", "stopped"
UNFINISHED = ("running", STOPPED, "interrupted", "failed", "diverged", NOT_STARTED)


@dataclass
class RunResult:
    folder: Path
    seed: int | None
    status: str
    spec: str | None = None
    split: str | None = None           # "test", else "val": the split its errors are of
    final_err: float | None = None
    lowest_err: float | None = None
    ema_final_err: float | None = None  # the EMA weights' final error on the same split (a recipe with `ema:`)
    images_per_s: float | None = None
    seconds: float | None = None
    iteration: int | None = None       # the last iteration recorded
    iterations: int | None = None      # the run's length
    params: int | None = None
    macs: int | None = None
    message: str | None = None
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)
    group: tuple = field(default=(), repr=False)
    settings: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def finished(self) -> bool:
        return self.status == "finished"


@dataclass
class Stat:
    """A number over a point's finished runs: `best` (lowest error, or highest speed), mean, sample std (n-1;
    None for one run), n."""
    best: float
    mean: float
    std: float | None
    n: int


@dataclass
class Point:
    key: str
    spec: str
    settings: dict[str, Any]
    runs: list[RunResult]
    label: str | None = None
    source: Path | None = None
    params: int | None = None  # of the spec as planned, for a point none of whose runs has started
    macs: int | None = None

    @property
    def finished(self) -> list[RunResult]:
        return [r for r in self.runs if r.finished]

    @property
    def split(self) -> str | None:
        splits = {r.split for r in self.finished if r.split}
        return splits.pop() if len(splits) == 1 else ("mixed" if splits else None)

    def stat(self, name: str, higher_is_better: bool = False) -> Stat | None:
        values = [v for r in self.finished if isinstance(v := getattr(r, name), (int, float)) and math.isfinite(v)]
        if not values:
            return None
        return Stat(max(values) if higher_is_better else min(values), statistics.fmean(values),
                    statistics.stdev(values) if len(values) > 1 else None, len(values))

    def size(self, name: str) -> int | None:
        """params or macs: of the point's runs (all the same network), else of the spec as planned, else None."""
        return next((getattr(r, name) for r in self.runs if getattr(r, name) is not None), getattr(self, name))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.runs:
            out[r.status] = out.get(r.status, 0) + 1
        return out


@dataclass
class Results:
    points: list[Point]
    notes: list[str]


# -- finding the runs -------------------------------------------------------------------------------------------

def collect(paths: Sequence[Path], *, curves: bool = False) -> Results:
    """The points of the sweeps, run folders and folders of run folders at `paths` (see the module's docstring);
    `curves`: keep each run's metrics records (for plotting)."""
    points: list[Point] = []
    loose: list[RunResult] = []
    notes: list[str] = []
    damaged: list[str] = []
    seen: set[Path] = set()
    reader = _Reader(curves, notes, damaged)
    found: list[tuple[str, Path]] = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise ResultsError(f"no such folder: {path}: give sweep folders, run folders or folders of run folders")
        if not path.is_dir():
            raise ResultsError(f"{path} is a file, not a folder: give the sweep or run folder that holds it "
                               f"({path.parent})")
        here = list(_walk(path, FIND_DEPTH))
        if not here:
            raise ResultsError(f"{path} holds no runs: no {SWEEP_FILE} or run.json in it or {FIND_DEPTH} levels "
                               "below: give folders made by `archspec sweep` or `archspec train --out`")
        found.extend(here)
    for kind, folder in sorted(found, key=lambda f: f[0] != "sweep"):  # a sweep's runs are its own, given or not
        if kind == "sweep" and _first_time(folder, seen):
            points.extend(_sweep_points(folder, reader, seen, notes))
        elif kind == "run" and _first_time(folder, seen):
            loose.append(reader.pooled(folder))
    if damaged:
        more = f" (and {len(damaged) - 1} more damaged run folder{'s' if len(damaged) > 2 else ''})" \
            if len(damaged) > 1 else ""
        raise ResultsError(damaged[0] + more)
    points.extend(_pooled(loose))
    _unique_keys(points)
    return Results(points, notes)


def _first_time(folder: Path, seen: set[Path]) -> bool:
    real = folder.resolve()
    if real in seen:
        return False
    seen.add(real)
    return True


def _walk(path: Path, depth: int, seen: set[Path] | None = None) -> Iterable[tuple[str, Path]]:
    """("sweep", folder) and ("run", folder) at and below `path`; a sweep's or a run's folder is not searched
    further; links to folders already searched (loops) are passed over."""
    seen = set() if seen is None else seen
    try:
        real = path.resolve()
    except (OSError, RuntimeError):
        return
    if real in seen:
        return
    seen.add(real)
    if (path / SWEEP_FILE).exists() or (path / SWEEP_FILE).is_symlink():
        yield "sweep", path
        return
    if (path / "run.json").exists() or (path / "run.json").is_symlink():
        yield "run", path
        return
    if depth <= 0:
        return
    for child in _subfolders(path):
        yield from _walk(child, depth - 1, seen)


def _subfolders(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if not p.name.startswith(".") and p.is_dir())
    except OSError:
        return []


# -- sweep.json -------------------------------------------------------------------------------------------------

def _sweep_points(folder: Path, reader: "_Reader", seen: set[Path], notes: list[str]) -> list[Point]:
    sweep = read_sweep(folder)
    points = []
    listed: set[Path] = set()
    train_differs = _differing([p.get("train") or {} for p in sweep["points"]])
    for p in sweep["points"]:
        settings = {**_flat(p.get("set") or {}), **_flat(p.get("recipe") or {})}
        settings.update({f"--{k.replace('_', '-')}": v for k, v in (p.get("train") or {}).items() if k in train_differs})
        runs = []
        for entry in p["runs"]:
            rel = Path(entry["folder"])
            if rel.is_absolute() or ".." in rel.parts:
                raise ResultsError(f"{folder / SWEEP_FILE} is damaged: point `{p['key']}` lists the run folder "
                                   f"{entry['folder']!r}, which is not inside {folder}; restore it, or re-run the "
                                   "`archspec sweep` that wrote it")
            run_folder = folder / rel
            listed.add(run_folder.resolve())
            if _first_time(run_folder, seen):
                runs.append(reader.run(run_folder, entry["seed"]))
        point = Point(p["key"], next((r.spec for r in runs if r.spec), p["spec"]), settings, runs, p.get("label"),
                      folder)
        if point.size("params") is None:  # no run has started: the network as the sweep will build it
            point.spec, point.params, point.macs = reader.planned(_spec_ref(p["spec"], sweep), p.get("set") or {},
                                                                  p.get("name") or point.spec)
        points.append(point)
    strays = [f for child in _subfolders(folder) for kind, f in _walk(child, 1)
              if kind == "run" and f.resolve() not in listed]
    if strays:
        notes.append(f"{len(strays)} run folder{'s' if len(strays) != 1 else ''} in {folder} {'are' if len(strays) != 1 else 'is'} "
                     f"not in its {SWEEP_FILE}, so not counted (first: {strays[0]}): `archspec results "
                     f"{strays[0]}` shows {'them' if len(strays) != 1 else 'it'}")
    return points


def _spec_ref(ref: str, sweep: dict[str, Any]) -> str:
    """A point's spec as `archspec sweep` gives it to `archspec train`: a shipped name (`cifar_resnet`,
    `timm/resnet50d`) as it is, a file's path relative to the experiment file's folder."""
    zoo = ref.count("/") == 1 and ref.startswith("timm/") and not ref.endswith((".yaml", ".yml"))
    experiment = sweep.get("experiment")
    file = experiment.get("file") if isinstance(experiment, dict) else None
    if zoo or ("/" not in ref and not ref.endswith((".yaml", ".yml"))) or Path(ref).is_absolute() or \
            not isinstance(file, str):
        return ref
    return str(Path(file).parent / ref)


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _differing(trees: list[dict[str, Any]]) -> set[str]:
    """The fields whose values are not the same in every one of `trees` (one absent counts as differing)."""
    keys = {k for t in trees for k in t}
    return {k for k in keys if len({json.dumps(t.get(k, "\0absent"), sort_keys=True) for t in trees}) > 1}


# -- one run ----------------------------------------------------------------------------------------------------

class _Reader:
    """Reads run folders: run.json (checked), metrics.jsonl, and the spec's size (run.json's, else compiled once per
    spec.yaml content)."""

    def __init__(self, curves: bool, notes: list[str], damaged: list[str]):
        self.curves, self.notes, self.damaged = curves, notes, damaged
        self.sizes: dict[str, tuple[int | None, int | None]] = {}

    def run(self, folder: Path, seed: int | None) -> RunResult:
        rd = RunDir(folder)
        if not (folder / "run.json").exists() and not (folder / "run.json").is_symlink():
            return RunResult(folder, seed, NOT_STARTED)
        if rd.marker() is None:
            why = rd.damage() or ("not an archspec run's (it has no \"format\": \"archspec-run\")"
                                  if (folder / "run.json").is_file() else "not a regular file")
            self.damaged.append(f"{folder / 'run.json'} is damaged ({why}): restore it from a copy, or move "
                                f"{folder} out of the folders given")
            return RunResult(folder, seed, "damaged")
        try:
            info = rd.info()
        except RunDirError as e:
            self.damaged.append(str(e))
            return RunResult(folder, seed, "damaged")
        status = info.get("status", "running")
        if status == "running" and lock_held(folder) is False:
            status = STOPPED
        spec = info.get("spec") or {}
        result = RunResult(folder, info["seed"], status, spec=spec.get("name"), iterations=info.get("iterations"),
                           message=info.get("message"))
        if seed is not None and seed != info["seed"]:
            self.notes.append(f"{folder} is listed as seed {seed} but its run.json says seed {info['seed']} (shown)")
        self._metrics(result)
        result.params, result.macs = self._size(folder, spec)
        result.group = (spec.get("graph_sha256") or spec.get("sha256"),)
        return result

    def pooled(self, folder: Path) -> RunResult:
        """A run found outside a sweep, with what pools it with others: its params and recipe as resolved."""
        result = self.run(folder, None)
        if result.status == "damaged":
            return result
        params, recipe = _resolved(folder)
        if params and recipe:
            result.settings = {**_flat(params), **_flat(recipe)}
        else:
            self.notes.append(f"{folder}: its spec.yaml or recipe.json cannot be read, so it is pooled only with "
                              "runs of the same spec whose files are unreadable too")
        result.group = (result.spec, *result.group, json.dumps(params, sort_keys=True),
                        json.dumps(recipe, sort_keys=True))
        return result

    def _metrics(self, r: RunResult) -> None:
        from archspec.runtime.metrics import damaged_note, scan_metrics

        path = r.folder / "metrics.jsonl"
        if not path.exists():
            return
        try:
            records, bad = scan_metrics(path)
        except OSError as e:
            self.notes.append(f"cannot read {path} ({e.strerror or e}): its errors are not shown")
            return
        note = damaged_note(path, bad)
        if note:
            self.notes.append(note)
        if self.curves:
            r.records = records
        held = [x for x in records if x.get("kind") == "test"] or [x for x in records if x.get("kind") == "val"]
        errs = [_number(x.get("err")) for x in held]
        if held:
            r.split = held[0]["kind"]
            r.final_err = errs[-1]
            finite = [e for e in errs if math.isfinite(e)]
            r.lowest_err = min(finite) if finite else math.nan
            ema = [x for x in records if x.get("kind") == f"{r.split}_ema"]
            if ema:
                r.ema_final_err = _number(ema[-1].get("err"))
        trains = [x for x in records if x.get("kind") == "train"]
        r.iteration = max((x["iter"] for x in records), default=None)
        r.images_per_s = steady_images_per_s(trains)
        r.seconds = training_seconds(trains)

    def _size(self, folder: Path, spec: dict[str, Any]) -> tuple[int | None, int | None]:
        if isinstance(spec.get("params"), int) and isinstance(spec.get("macs"), int):
            return spec["params"], spec["macs"]
        key = spec.get("sha256") or str(folder)
        if key not in self.sizes:
            self.sizes[key] = self._compile(folder)
        return self.sizes[key]

    def planned(self, spec: str, overrides: dict[str, Any], name: str) -> tuple[str, int | None, int | None]:
        """The name, params and MACs of a sweep point's spec with its --set values, compiled (name as given and
        no sizes when it does not compile here: the sweep reports that when it runs)."""
        from archspec.compiler.analysis import compile_spec

        try:
            compiled = compile_spec(spec, overrides)  # (Python values, as sweep.json holds them)
        except (UserError, OSError):
            return name, None, None
        return compiled.name, compiled.params, compiled.macs

    def _compile(self, folder: Path) -> tuple[int | None, int | None]:
        from archspec.compiler.analysis import compile_spec

        try:
            compiled = compile_spec(folder / "spec.yaml")
            return compiled.params, compiled.macs
        except (UserError, OSError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            self.notes.append(f"params and MACs of {folder} are not shown: its spec.yaml does not compile "
                              f"({first[:160]})")
            return None, None


def _resolved(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's params as resolved (spec.yaml's `params`) and its recipe (recipe.json); empty when unreadable."""
    from archspec.lang.diagnostics import Sources
    from archspec.lang.yamlsrc import load_file, plain

    params: Any = {}
    try:
        doc = plain(load_file(folder / "spec.yaml", Sources()))
        params = doc.get("params", {}) if isinstance(doc, dict) else {}
    except (UserError, OSError):
        pass
    try:
        recipe = load_json(read_regular(folder / "recipe.json"))
    except (OSError, ValueError):
        recipe = {}
    return (params if isinstance(params, dict) else {}), (recipe if isinstance(recipe, dict) else {})


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


# -- pooling loose runs -----------------------------------------------------------------------------------------

def _pooled(runs: list[RunResult]) -> list[Point]:
    """Runs pooled by what they trained (seeds apart), in the order first met; settings are the fields that differ
    between the points of one spec."""
    groups: dict[tuple, list[RunResult]] = {}
    for r in runs:
        groups.setdefault(r.group, []).append(r)
    by_spec: dict[str | None, list[list[RunResult]]] = {}
    for members in groups.values():
        by_spec.setdefault(members[0].spec, []).append(members)
    points = []
    for members in groups.values():
        siblings = by_spec[members[0].spec]
        readable = [m[0].settings for m in siblings if m[0].settings]
        differ = _differing(readable) if len(readable) > 1 else set()
        settings = {k: members[0].settings.get(k) for k in sorted(differ)}
        if len(siblings) > 1 and not members[0].settings:
            settings = {"files": "unreadable"}
        elif len(siblings) > 1 and not settings:  # the same params and recipe, another network: the spec changed
            settings = {"graph": (members[0].group[1] or "?")[:8]}
        spec = members[0].spec or members[0].folder.name
        key = spec + "".join(f" {k}={show_value(v)}" for k, v in settings.items())
        points.append(Point(key, spec, settings, sorted(members, key=lambda r: (r.seed is None, r.seed or 0))))
    return points


def _unique_keys(points: list[Point]) -> None:
    """Points of different sweeps that share a key are told apart by their sweep folder."""
    keys = [p.key for p in points]
    for p in points:
        if keys.count(p.key) > 1 and p.source is not None:
            p.key = f"{p.source.name}/{p.key}"


def show_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, str):
        return v
    return json.dumps(v)
