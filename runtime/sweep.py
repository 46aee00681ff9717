"""`archspec sweep`: an experiment's runs in one sweep folder, each an ordinary run folder (docs/experiments.md).

    DIR/sweep.json                     what was asked: the experiment, the points, their seeds and folders
    DIR/<point key>/seed<N>/           a run folder, as `archspec train --out` writes it
    DIR/<point key>/seed<N>.log        what that run printed (its errors included)

Every run is `python -m archspec train SPEC --set ... --recipe ... FLAGS --out DIR/<key>/seed<N> --seed N`, in a
process of its own (`runtime.sweep_exec` runs them on this machine, `runtime.sweep_ray` on a Ray cluster). Before
any run starts, every point is checked (`runtime.sweep_check`: its spec with its --set values compiled, its recipe
resolved) and the folder is checked: a DIR whose sweep.json names another experiment (another name, or another
file: its SHA-256) is refused, as is a DIR of other files, or a point recorded with other recipe flags. A run
that finished (or diverged) is not run again; an interrupted one is resumed (`--resume`); one that ended before
its first checkpoint starts again.

Exit codes: 0 every run finished; 3 a run failed or diverged (the others ran on; the summary lists each);
130 interrupted (Ctrl-C; each run saved a checkpoint: the same command continues); 2 bad input, before any run.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.lang.files import load_json, os_problem, read_regular, write_text
from archspec.runtime.request import RunError
from archspec.runtime.rundir import RunDir
from archspec.runtime.sweep_plan import Run, SweepRequest, plan_runs

if TYPE_CHECKING:
    from archspec.lang.diagnostics import Sources

__all__ = ["EXIT_INTERRUPTED", "EXIT_INVALID", "EXIT_OK", "EXIT_RUN_FAILED", "Run", "SweepRequest", "run_sweep"]

SWEEP_FORMAT = "archspec-sweep"
SWEEP_FILE = "sweep.json"
LOCK = ".archspec-sweep.lock"
EXIT_OK, EXIT_INVALID, EXIT_RUN_FAILED, EXIT_INTERRUPTED = 0, 2, 3, 130
# train flags that change what a run learns: a point recorded with other values is refused (the others, such as
# --device or --workers, may change from one invocation to the next, as `archspec train --resume` allows)
NOT_CHANGING = ("device", "data_dir", "download", "workers", "checkpoint_interval", "checkpoint_minutes",
                "bf16", "channels_last", "compile", "checkpoint_activations", "sync_bn", "tensorboard")


def run_sweep(req: SweepRequest, sources: Sources) -> int:
    """Check everything, then run what is left to run; the exit code (see the module's docstring)."""
    from archspec.lang.diagnostics import SpecError
    from archspec.runtime.sweep_check import check_points

    names, problems = check_points(req, sources)
    problems = req.problems + problems
    if problems:   # in the order of the experiment file
        raise SpecError(sorted(problems, key=lambda d: (d.loc.line, d.loc.col) if d.loc is not None else (0, 0)))
    out = req.out.expanduser().absolute()
    if req.dry_run:
        runs = plan_runs(req, out)
        _refuse_folder(req, out, read_sweep(out))
        return _dry_run(req, runs)
    created = not out.exists()
    lock = _lock(out)
    written = False
    try:
        recorded = read_sweep(out)
        _refuse_folder(req, out, recorded)
        runs = plan_runs(req, out)
        todo = sum(r.status == "pending" for r in runs)
        backend = _backend(req, todo) if todo else None   # (refusals of --per-gpu, --device, Ray: before writing)
        write_text(out / SWEEP_FILE, json.dumps(sweep_record(req, runs, names, recorded), indent=2) + "\n")
        written = True
        from archspec.runtime.sweep_exec import schedule

        interrupted = schedule(req, runs, backend) if backend is not None else False
        return _summary(req, runs, interrupted)
    finally:
        if not written:   # refused: the folder is left as it was
            _unlock_unused(out, created)
        os.close(lock)


def _backend(req: SweepRequest, todo: int) -> Any:
    if req.backend == "ray":
        from archspec.runtime.sweep_ray import RayBackend

        return RayBackend(req, todo)
    from archspec.runtime.sweep_exec import LocalBackend

    return LocalBackend(req, todo)


def _unlock_unused(out: Path, created: bool) -> None:
    try:
        if not (out / SWEEP_FILE).exists():
            (out / LOCK).unlink(missing_ok=True)
            if created and not any(out.iterdir()):
                out.rmdir()
    except OSError:
        pass


# -- the sweep folder ------------------------------------------------------------------------------------------------

def _lock(out: Path) -> int:
    """Own DIR (created if need be) for this sweep: a second sweep into the same DIR is refused at once."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as e:
        raise RunError(os_problem(e, out)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise RunError(f"{out} is in use by another `archspec sweep`: wait for it to end, or choose another --out") \
            from None
    return fd


def read_sweep(out: Path) -> dict[str, Any] | None:
    """DIR/sweep.json, or None when there is none; a RunError when it is damaged."""
    path = out / SWEEP_FILE
    if not path.exists():
        return None
    try:
        data = load_json(read_regular(path))
    except (OSError, ValueError) as e:
        raise RunError(f"{path} is damaged ({e}); restore it, or choose another --out") from None
    if not isinstance(data, dict) or data.get("format") != SWEEP_FORMAT or not isinstance(data.get("points"), list):
        raise RunError(f"{path} is not an archspec sweep's record; choose another --out")
    return data


def _refuse_folder(req: SweepRequest, out: Path, recorded: dict[str, Any] | None) -> None:
    exp = req.experiment
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} is a file, not a folder: name a sweep folder with --out")
    if recorded is None:
        others = sorted(p.name for p in out.iterdir() if p.name != LOCK) if out.is_dir() else []
        if others:
            shown = ", ".join(others[:4]) + (f" and {len(others) - 4} more" if len(others) > 4 else "")
            raise RunError(f"{out} holds files that no archspec sweep wrote ({shown}) and no {SWEEP_FILE}; nothing "
                           "was changed: choose a new or empty folder with --out")
        return
    theirs = recorded.get("experiment") if isinstance(recorded.get("experiment"), dict) else {}
    if theirs.get("name") != exp.name or theirs.get("sha256") != exp.sha256:
        what = (f"experiment `{theirs.get('name')}`" if theirs.get("name") != exp.name else
                f"another version of {exp.name} ({theirs.get('file')}, SHA-256 {str(theirs.get('sha256'))[:12]}; "
                f"{exp.display} is {exp.sha256[:12]})")
        raise RunError(f"{out} is the sweep folder of {what}; runs of two experiments are never mixed: choose "
                       "another --out (or restore the experiment file the folder was made with)")
    selected = {p.key for p in req.points}
    for rec in recorded["points"]:
        key = rec.get("key") if isinstance(rec, dict) else None
        if key not in selected or key not in req.train:
            continue
        before, now = _changing(rec.get("train") or {}), _changing(req.train[key])
        if before != now:
            diff = _first_change(before, now)
            raise RunError(f"{out}/{key} was swept with other options ({diff}); a sweep's runs share their "
                           "recipe: give the same options, or choose another --out")


def _changing(flags: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flags.items() if k not in NOT_CHANGING and v not in (None, False, [])}


def _first_change(before: dict[str, Any], now: dict[str, Any]) -> str:
    for k in sorted(set(before) | set(now)):
        if before.get(k) != now.get(k):
            flag = "--" + k.replace("_", "-").replace("recipe-overrides", "recipe")
            return f"{flag}: {json.dumps(before.get(k))} then, {json.dumps(now.get(k))} now"
    return "?"


def sweep_record(req: SweepRequest, runs: list[Run], names: dict[str, str],
                 recorded: dict[str, Any] | None) -> dict[str, Any]:
    """sweep.json: the points recorded before (other --only selections, other seeds) and those of this sweep."""
    exp = req.experiment
    points: dict[str, dict[str, Any]] = {}
    for rec in (recorded or {}).get("points", []):
        if isinstance(rec, dict) and isinstance(rec.get("key"), str):
            points[rec["key"]] = rec
    for point in req.points:
        old = points.get(point.key, {})
        seeds = sorted({*(s for s in old.get("seeds", []) if isinstance(s, int)), *range(req.seeds)})
        points[point.key] = {
            "key": point.key, "label": point.title, "spec": point.spec, "name": names.get(point.key),
            "set": dict(point.set), "recipe": dict(point.recipe), "train": req.train.get(point.key, {}),
            "seeds": seeds, "runs": [{"seed": s, "folder": f"{point.key}/seed{s}"} for s in seeds]}
    return {"format": SWEEP_FORMAT, "version": 1,
            "experiment": {"name": exp.name, "file": str(exp.path.absolute()), "sha256": exp.sha256,
                           "description": exp.description.strip()},
            "command": req.command, "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "points": list(points.values())}


# -- reporting -------------------------------------------------------------------------------------------------------

def _dry_run(req: SweepRequest, runs: list[Run]) -> int:
    import shlex

    todo = [r for r in runs if r.status == "pending"]
    print(f"{req.experiment.name}: {_count(len(req.points), 'point')} x {_count(req.seeds, 'seed')} = "
          f"{_count(len(runs), 'run')} in {req.out}; {len(todo)} to run, {len(runs) - len(todo)} done")
    for r in runs:
        what = r.status if r.status != "pending" else ("resume" if "--resume" in r.argv else r.before)
        print(f"  {r.name:<40} {what:<12} archspec {shlex.join(r.argv)}")
    return EXIT_OK


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def final_result(run: Run) -> str:
    """The run's final error, from its run.json: `test error 8.21%`; "" when it has none."""
    info = RunDir(run.folder).marker() or {}
    final = info.get("final") if isinstance(info.get("final"), dict) else {}
    test = final.get("final_test") or final.get("final_val")
    if isinstance(test, dict) and isinstance(test.get("err"), (int, float)):
        return f"{test.get('kind', 'test')} error {test['err']:.2f}%"
    return ""


def _summary(req: SweepRequest, runs: list[Run], interrupted: bool) -> int:
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    order = ("finished", "diverged", "failed", "interrupted", "pending")
    shown = ", ".join(f"{counts[s]} {s if s != 'pending' else 'not started'}" for s in order if counts.get(s))
    lines = [f"sweep {req.experiment.name} in {req.out}: {_count(len(runs), 'run')}: {shown}"]
    width = max(len(r.name) for r in runs) if runs else 0
    for r in runs:
        took = f" in {_duration(r.ended - r.started)}" if r.started and r.ended else ""
        detail = final_result(r) + (" (before this sweep)" if r.started is None else "") \
            if r.status == "finished" else r.message
        status = "not started" if r.status == "pending" else r.status
        lines.append(f"  {r.name:<{width}}  {status:<11} {detail}{took}".rstrip())
    if interrupted:
        lines.append("interrupted: each run saved a checkpoint; the same command continues the sweep")
    elif counts.get("failed") or counts.get("diverged") or counts.get("interrupted"):
        lines.append(f"some runs did not finish (their logs: {req.out}/<point>/seed<N>.log); the same command runs "
                     "the failed ones again (a diverged run is kept as it ended)")
    try:
        print("\n".join(lines), flush=True)
    except BrokenPipeError:  # (the reader left; the exit code still says how the sweep went)
        pass
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_RUN_FAILED if any(counts.get(s) for s in ("failed", "diverged", "interrupted")) else EXIT_OK


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"
