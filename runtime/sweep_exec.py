"""Running a sweep's runs: the scheduler every backend shares, the local backend (processes on this machine) and
the live view.

Local runs are `python -m archspec train ...` processes, at most `jobs` at a time. On CUDA each run sees one GPU
(CUDA_VISIBLE_DEVICES), `--per-gpu K` of them per GPU; the default is one run per GPU (jobs = GPUs x per_gpu). On
a CPU the default is one run at a time (a run already uses every core through torch's threads); with `--jobs N`
each run gets cores / N threads (OMP_NUM_THREADS), unless the environment sets them or `--cpus-per-run` does.

Each run is a process group of its own, so that Ctrl-C reaches only the sweep, which forwards one SIGINT to each
run: each saves a checkpoint and stops, as `archspec train` does on Ctrl-C; a second Ctrl-C is forwarded too
(the runs stop at once, keeping their last checkpoint). On Linux each run also gets SIGTERM if the sweep dies
(a SIGKILL), so no run is left behind holding its folder: it checkpoints and stops.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from archspec.runtime.rundir import RunDir
from archspec.runtime.sweep_view import LiveView

if TYPE_CHECKING:
    from archspec.runtime.sweep_plan import Run, SweepRequest

POLL_S = 0.25
STOP_WAIT_S = 300   # after Ctrl-C: how long the runs may take to save their checkpoints


class Backend(Protocol):
    jobs: int
    what: str       # how runs are placed, in words (printed when the sweep starts)

    def start(self, run: Run) -> None: ...
    def ended(self, run: Run) -> int | None: ...   # the exit code once the run's process has ended
    def interrupt(self, run: Run) -> None: ...
    def close(self) -> None: ...


def schedule(req: SweepRequest, runs: list[Run], backend: Backend) -> bool:
    """Start pending runs while fewer than `backend.jobs` run; record how each ends. Ctrl-C (or SIGTERM) stops
    starting runs and interrupts the running ones; True when that happened."""
    view = LiveView(req.quiet)
    pending = [r for r in runs if r.status == "pending"]
    done = len(runs) - len(pending)
    view.event(f"sweep {req.experiment.name}: {len(runs)} runs in {req.out}; {done} done before, {len(pending)} to "
               f"run, {backend.what}")
    stop = _Stop()
    running: list[Run] = []
    gate: Run | None = None   # with --download, the first run fetches the data alone
    try:
        while running or (pending and not stop.count):
            if stop.count and not any(r.status == "interrupting" for r in running):
                for r in running:
                    backend.interrupt(r)
                    r.status = "interrupting"
            if stop.count > 1 and not stop.forwarded_twice:
                stop.forwarded_twice = True
                for r in running:
                    backend.interrupt(r)
            while not stop.count and pending and len(running) < backend.jobs and not _gated(gate):
                run = pending.pop(0)
                run.started, run.status = time.time(), "running"
                try:
                    backend.start(run)
                except OSError as e:
                    run.status, run.message, run.ended = "failed", f"could not start: {e}", time.time()
                    view.event(f"failed    {run.name}: {run.message}")
                    continue
                gate = run if req.download and gate is None else gate
                running.append(run)
                view.event(f"started   {run.name}" + (f" on GPU {run.gpu}" if run.gpu is not None else "")
                           + (" (resumed)" if "--resume" in run.argv else ""))
            for run in list(running):
                code = backend.ended(run)
                if code is None:
                    continue
                running.remove(run)
                finish(run, code)
                view.event(f"{run.status:<9} {run.name}" + (f": {run.message}" if run.message else ""))
            if stop.count and running and time.time() - stop.since > STOP_WAIT_S:
                view.event(f"{len(running)} runs did not stop within {STOP_WAIT_S} s of Ctrl-C; leaving them")
                break
            view.refresh(running, runs)
            time.sleep(POLL_S)
    finally:
        stop.restore()
        view.close()
        backend.close()
        for run in runs:   # (only when runs did not stop in time after Ctrl-C, or the sweep itself failed)
            if run.status in ("running", "interrupting"):
                run.status, run.message = "interrupted", "still running when the sweep ended; it was sent SIGTERM"
    return bool(stop.count)


def _gated(gate: Run | None) -> bool:
    """Whether the run fetching the data (--download) has yet to get past it (its first metrics, or its end)."""
    if gate is None or gate.ended is not None:
        return False
    try:
        return (RunDir(gate.folder).metrics.stat().st_mtime < (gate.started or 0) - 1)
    except OSError:
        return True


def finish(run: Run, code: int) -> None:
    """Record how a run ended, from its run.json (its status and message) and its exit code."""
    run.code, run.ended = code, time.time()
    info = RunDir(run.folder).marker() or {}
    status = info.get("status")
    if code == 130 and not info:   # stopped before it began (a queued Ray task)
        run.status, run.message = "pending", "stopped before it started"
        return
    if code == 0 and status == "finished":
        run.status, run.message = "finished", ""
        return
    if status in ("diverged", "interrupted") and code in (3, 130):
        run.status = status
        # (the run's own advice, `archspec train --resume ...`, is the sweep's to follow: run it again)
        run.message = str(info.get("message", "")).split(";")[0][:300]
        return
    run.status = "failed"
    run.message = f"exit code {code}: {last_line(run.log)}" if code >= 0 else \
        f"killed by {signal.Signals(-code).name if -code in signal.valid_signals() else -code}"


def last_line(log: Path) -> str:
    """The last line of a run's log that says something (its error), shortened."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return f"(no log at {log})"
    text = lines[-1] if lines else "(nothing printed)"
    return text if len(text) <= 300 else text[:297] + "..."


class _Stop:
    """SIGINT and SIGTERM, counted (the handlers of the sweep process while it runs)."""

    def __init__(self) -> None:
        self.count, self.since, self.forwarded_twice = 0, 0.0, False
        self.previous: dict[int, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (a test's): Ctrl-C is the caller's
                pass

    def _handle(self, signum: int, frame: Any) -> None:
        self.count += 1
        self.since = self.since or time.time()

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


# -- the local backend ---------------------------------------------------------------------------------------------

class LocalBackend:
    def __init__(self, req: SweepRequest, todo: int):
        from archspec.runtime.request import RunError

        self.req = req
        self.gpus = _cuda_devices(req.device)
        self.threads: int | None = req.cpus_per_run
        if self.gpus:
            per_gpu = req.per_gpu or 1
            self.jobs = req.jobs or len(self.gpus) * per_gpu
            self.per_gpu = req.per_gpu or -(-self.jobs // len(self.gpus))
            self.what = (f"{self.jobs} at a time on {len(self.gpus)} GPU{'s' if len(self.gpus) > 1 else ''}, up to "
                         f"{self.per_gpu} per GPU" + (" (--jobs)" if req.jobs else
                                                      " (--per-gpu)" if req.per_gpu else " (one per GPU by default)"))
        else:
            if req.per_gpu:
                raise RunError("--per-gpu packs runs on GPUs, and there is none here (or --device cpu): give --jobs N "
                               "to run N at a time on the CPU")
            cores = os.cpu_count() or 1
            self.jobs = req.jobs or 1
            if self.threads is None and self.jobs > 1 and not os.environ.get("OMP_NUM_THREADS"):
                self.threads = max(1, cores // self.jobs)
            self.what = (f"{self.jobs} at a time on the CPU" + ("" if req.jobs else " (the default: --jobs N for more)")
                         + (f", {self.threads} threads each" if self.threads else ""))
        self.jobs = max(1, min(self.jobs, todo or 1))
        self.procs: dict[str, subprocess.Popen] = {}
        self.files: dict[str, Any] = {}
        self.placed: dict[str, int] = {}   # run -> the GPU it was given
        self.preexec = die_with_parent()

    def _gpu(self) -> int | None:
        """The GPU with the fewest runs now (the first of those)."""
        if not self.gpus:
            return None
        load = {g: 0 for g in range(len(self.gpus))}
        for name, gpu in self.placed.items():
            if name in self.procs:
                load[gpu] += 1
        return min(load, key=lambda g: (load[g], g))

    def start(self, run: Run) -> None:
        env = dict(os.environ)
        run.gpu = self._gpu()
        if run.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[run.gpu]
            self.placed[run.name] = run.gpu
        if self.threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(self.threads)
        run.log.parent.mkdir(parents=True, exist_ok=True)
        log = open(run.log, "ab")
        log.write(f"\n== {time.strftime('%Y-%m-%dT%H:%M:%S')} archspec {' '.join(run.argv)}\n".encode())
        log.flush()
        self.files[run.name] = log
        self.procs[run.name] = subprocess.Popen(
            [sys.executable, "-m", "archspec", *run.argv], stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, env=env, start_new_session=True, preexec_fn=self.preexec)

    def ended(self, run: Run) -> int | None:
        proc = self.procs.get(run.name)
        if proc is None or proc.poll() is None:
            return None
        self.procs.pop(run.name)
        self.files.pop(run.name).close()
        return proc.returncode

    def interrupt(self, run: Run) -> None:
        proc = self.procs.get(run.name)
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGINT)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        for name, proc in list(self.procs.items()):  # (only after a stop that took too long)
            if proc.poll() is None:
                proc.terminate()
        for f in self.files.values():
            f.close()


def _cuda_devices(device: str | None) -> list[str]:
    """The GPUs runs go on (as CUDA_VISIBLE_DEVICES names them), none on --device cpu or a machine without."""
    from archspec.runtime.request import RunError

    if device is not None and device.startswith("cuda:"):
        raise RunError(f"--device {device}: a sweep places its runs on the GPUs itself; give --device cuda (and "
                       f"CUDA_VISIBLE_DEVICES={device[5:]} to use that GPU alone)")
    if device == "cpu":
        return []
    import torch

    count = torch.cuda.device_count()
    if device == "cuda" and count == 0:
        raise RunError("--device cuda: no CUDA device is available here")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    names = [v.strip() for v in visible.split(",") if v.strip()] if visible else [str(i) for i in range(count)]
    return names[:count]


def die_with_parent() -> Any:
    """What a run's process calls before it starts (Popen's preexec_fn), on Linux: SIGTERM to it when the sweep's
    process ends, however it ends; None elsewhere. The C function is looked up here, in the parent, so that the
    child only calls it (nothing is imported or locked between fork and exec)."""
    try:
        import ctypes

        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG

    return preexec
