"""`archspec sweep --backend ray`: the same runs as Ray tasks, on a cluster (`--address`) or on a local instance
started for the sweep (the default; `RAY_ADDRESS` attaches to a running one instead).

Each task runs the very command a local run would (`python -m archspec train ... --out DIR/<key>/seed<N>`) on its
node, so the run folders are the same; DIR must be a folder every node sees (a shared file system) for the
folders, the logs and the live view to be in one place. A task asks for `--cpus-per-run` CPUs (default 1, which
is also its runs' thread count) and, where the cluster has GPUs, 1/`--per-gpu` of a GPU (Ray sets the task's
CUDA_VISIBLE_DEVICES). Ctrl-C cancels the tasks: each forwards SIGINT to its run, which saves a checkpoint.

Ray is an optional extra: `pip install 'archspec-nn[ray]'`.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.lang import install_hint
from archspec.runtime.request import RunError
from archspec.runtime.rundir import LOCK

if TYPE_CHECKING:
    from archspec.runtime.sweep_plan import Run, SweepRequest


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RunError(f"--backend ray needs Ray, which is not installed here: {install_hint('ray')}") from None
    return ray


def train_task(argv: list[str], log: str, threads: int | None) -> int:
    """A run on a Ray worker: `python -m archspec train ...`, its output appended to `log`; the exit code. A
    cancelled task (KeyboardInterrupt) interrupts the run, which saves a checkpoint, and waits for it."""
    import signal
    import subprocess
    import sys

    from archspec.runtime.sweep_exec import die_with_parent

    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n== {time.strftime('%Y-%m-%dT%H:%M:%S')} (Ray, {os.uname().nodename}) archspec "
                  f"{' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen([sys.executable, "-m", "archspec", *argv], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                preexec_fn=die_with_parent())
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            return proc.wait()


class RayBackend:
    def __init__(self, req: SweepRequest, todo: int):
        ray = require_ray()
        self.ray, self.owned = ray, False
        if not ray.is_initialized():
            options = {"include_dashboard": False, "log_to_driver": False, "logging_level": "warning"}
            try:
                ray.init(address=req.address, **options)
            except (ConnectionError, RuntimeError, ValueError) as e:
                where = f"the Ray cluster at {req.address}" if req.address else "a local Ray instance"
                raise RunError(f"--backend ray: cannot start or reach {where}: {e}") from None
            self.owned = True
        resources = ray.cluster_resources()
        gpus = 0 if req.device == "cpu" else int(resources.get("GPU", 0))
        if req.per_gpu and not gpus:
            raise RunError("--per-gpu packs runs on GPUs, and the Ray cluster has none (or --device cpu): give "
                           "--cpus-per-run N, or --jobs N")
        if req.device == "cuda" and not gpus:
            raise RunError("--device cuda: the Ray cluster has no GPU")
        per_gpu = req.per_gpu or 1
        self.num_gpus = (10_000 // per_gpu) / 10_000 if gpus else 0   # (Ray counts GPU shares in 1/10,000ths)
        self.num_cpus = req.cpus_per_run or 1
        self.threads = req.cpus_per_run or (None if gpus else 1)
        fits = gpus * per_gpu if gpus else int(resources.get("CPU", 1) // self.num_cpus)
        self.jobs = max(1, min(req.jobs or fits or 1, todo or 1))
        place = (f"{self.num_gpus:g} GPU and {self.num_cpus} CPU per run" if gpus else f"{self.num_cpus} CPU per run")
        self.what = (f"as Ray tasks ({'cluster ' + req.address if req.address else 'a local instance'}: "
                     f"{int(resources.get('CPU', 0))} CPUs, {gpus} GPUs), up to {self.jobs} at a time, {place}")
        self.task = ray.remote(train_task)
        self.cancelled: set[str] = set()

    def start(self, run: Run) -> None:
        run.handle = self.task.options(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=0).remote(
            run.argv, str(run.log), self.threads)

    def ended(self, run: Run) -> int | None:
        ray = self.ray
        ready, _ = ray.wait([run.handle], timeout=0)
        if not ready:
            return None
        try:
            return int(ray.get(run.handle))
        except ray.exceptions.TaskCancelledError:
            # the task was told to stop; its run is saving a checkpoint until it lets go of its folder
            return 130 if _released(run.folder) else None
        except ray.exceptions.RayError as e:
            with open(run.log, "a", encoding="utf-8") as log:
                log.write(f"archspec sweep: the Ray task failed: {str(e).splitlines()[0] if str(e) else e}\n")
            return 1

    def interrupt(self, run: Run) -> None:
        """The first time, the task forwards SIGINT to its run; the second (a second Ctrl-C), its worker is killed,
        and the run gets SIGTERM (it keeps its last checkpoint)."""
        force = run.name in self.cancelled
        self.cancelled.add(run.name)
        try:
            self.ray.cancel(run.handle, force=force)
        except (self.ray.exceptions.RayError, ValueError, TypeError):
            pass   # (it has just ended)

    def close(self) -> None:
        if self.owned:
            self.ray.shutdown()


def _released(folder: Path) -> bool:
    """Whether no process holds the run folder's lock (the run has ended, or never started)."""
    try:
        fd = os.open(folder / LOCK, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
