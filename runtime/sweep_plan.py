"""The runs of a sweep, planned: what the command line asked (`SweepRequest`), each run (`Run`: a point and a seed,
its folder, its `archspec train` command and how it stands) and how a point's values are given to `archspec
train` (`--set`, `--recipe`, a spec file's path). `runtime.sweep` carries a request out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.lang.experiment import Experiment, Point
from archspec.runtime.rundir import RunDir

if TYPE_CHECKING:
    from archspec.lang.diagnostics import Diagnostic


@dataclass
class SweepRequest:
    experiment: Experiment
    points: list[Point]                   # the points to run (--only applied); every point is checked
    train: dict[str, dict[str, Any]]      # point key -> its train flags (argparse dest -> value, JSON-able)
    train_argv: dict[str, list[str]]      # point key -> those flags as `archspec train` arguments (every point)
    seeds: int
    out: Path
    jobs: int | None = None               # None: from the devices (sweep_exec) or the cluster (sweep_ray)
    per_gpu: int | None = None
    cpus_per_run: int | None = None
    backend: str = "local"                # local or ray
    address: str | None = None
    quiet: bool = False
    dry_run: bool = False
    command: str = ""
    device: str | None = None             # --device of every run (None: cuda when available)
    download: bool = False
    problems: list[Diagnostic] = field(default_factory=list)   # found by the command line (train flags, E703)


@dataclass
class Run:
    """One run of a sweep: a point and a seed, its folder, and how it stands."""
    point: Point
    seed: int
    folder: Path
    argv: list[str]                        # `archspec train ...` (after `python -m archspec`)
    before: str = "new"                    # the folder's state when the sweep started (RunDir.state)
    status: str = "pending"                # pending, running, interrupting, finished, diverged, failed, interrupted
    message: str = ""
    code: int | None = None
    started: float | None = None
    ended: float | None = None
    handle: Any = None                     # the backend's
    gpu: int | None = None

    @property
    def name(self) -> str:
        return f"{self.point.key}/seed{self.seed}"

    @property
    def log(self) -> Path:
        return self.folder.parent / f"seed{self.seed}.log"


# -- the runs' commands --------------------------------------------------------------------------------------------

def spec_ref(point: Point, exp: Experiment) -> str:
    """What `archspec train` is given for the point's spec: a shipped name as it is, a file by its absolute path
    (a path in an experiment file is relative to the file's folder)."""
    ref = point.spec
    zoo = ref.count("/") == 1 and not ref.endswith((".yaml", ".yml")) and ref.split("/")[0] == "timm"
    if zoo or ("/" not in ref and not ref.endswith((".yaml", ".yml"))):
        return ref
    path = Path(ref).expanduser()
    return str(path if path.is_absolute() else (exp.path.parent / path).absolute())


def set_text(value: Any) -> str:
    """A --set value as `archspec train` reads it: text as it is (a str param takes it whole), else JSON (YAML)."""
    return value if isinstance(value, str) else json.dumps(value)


def recipe_text(value: Any) -> str:
    """A --recipe value (read as YAML): text that YAML reads back as the same text stays as it is."""
    if isinstance(value, str):
        import yaml

        try:
            same = yaml.safe_load(value) == value
        except yaml.YAMLError:
            same = False
        return value if same and value.strip() == value and value else json.dumps(value)
    return json.dumps(value)


def point_args(req: SweepRequest, point: Point) -> list[str]:
    """The `archspec train` arguments of a point (without --out and --seed)."""
    args = ["train", spec_ref(point, req.experiment)]
    for k, v in point.set:
        args += ["--set", f"{k}={set_text(v)}"]
    for k, v in point.recipe:
        args += ["--recipe", f"{k}={recipe_text(v)}"]
    return args + req.train_argv.get(point.key, [])


def plan_runs(req: SweepRequest, out: Path) -> list[Run]:
    runs = []
    for point in req.points:
        base = point_args(req, point)
        for seed in range(req.seeds):
            folder = out / point.key / f"seed{seed}"
            run = Run(point, seed, folder, base + ["--out", str(folder), "--seed", str(seed), "--quiet"])
            rundir = RunDir(folder)
            run.before = rundir.state()
            status = (rundir.marker() or {}).get("status")
            if run.before == "finished":
                run.status, run.message = "finished", "finished before this sweep"
            elif status == "diverged" and run.before in ("resumable", "failed_start"):
                run.status = "diverged"
                why = str((rundir.marker() or {}).get("message", "")).split(";")[0]
                run.message = f"diverged before this sweep: {why}".strip()
            elif run.before == "resumable":
                run.argv.append("--resume")
            runs.append(run)
    return runs
