"""The run folder: the files of one training run, and the rules that keep them from trapping or mixing runs.

A run folder is owned by one process at a time: `acquire` takes an exclusive `flock` on `.archspec.lock`, which
the kernel releases when the process ends however it ends (exit, exception, SIGKILL, out of memory), so a
crashed run never leaves the folder stuck, and a second `archspec train` into the same folder is refused at once
instead of interleaving its records with the first one's.

What the folder holds, and when it is written:

| file | what |
|---|---|
| `run.json` | written first, the marker (`"format": "archspec-run"`): command, seed, data location, options, |
|            | the spec's name and hashes, `status` (running/finished/diverged/interrupted/failed), `final` |
| `spec.yaml` | the resolved spec (a spec itself); its SHA-256 is in run.json and in every checkpoint |
| `recipe.json` | the recipe after overrides |
| `metrics.jsonl`, `log.txt` | records (strict JSON) and the log, appended |
| `evals.csv` | a row per evaluation, rebuilt from metrics.jsonl when a run starts or resumes |
| `tensorboard/` | with `--tensorboard`: TensorBoard event files |
| `last.pt`, `best.pt` | checkpoints (runtime.checkpoint) |

Every folder is in one of these states (`state()`): `new` (absent or empty), `foreign` (files that no archspec
run wrote: never touched, not even by a lock file), `missing_checkpoint` (run.json records a checkpoint that is
not there: refused until it is restored), `failed_start` (a run that ended before its first checkpoint: a plain
re-run replaces it, saying so; `--resume` starts it again from its own spec and recipe), `resumable`, or
`finished`.
Temporaries left by a write that was killed are removed when the owner starts.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from archspec.lang.errors import UserError
from archspec.lang.files import os_problem, remove_stale_temporaries, write_text

RUN_FORMAT = "archspec-run"
LOCK = ".archspec.lock"
RUN_FILES = ("run.json", "spec.yaml", "recipe.json", "metrics.jsonl", "evals.csv", "log.txt", "last.pt", "best.pt")


class RunDirError(UserError):
    """A run folder that cannot be used as asked; the message is one line naming the folder and the fix."""


class RunDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock_fd: int | None = None
        self._created = False

    # -- files ---------------------------------------------------------------------------------------------------

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def last(self) -> Path:
        return self.path / "last.pt"

    @property
    def best(self) -> Path:
        return self.path / "best.pt"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def log_file(self) -> Path:
        return self.path / "log.txt"

    # -- ownership -----------------------------------------------------------------------------------------------

    def acquire(self) -> None:
        """Create the folder if needed and own it; refuse if another process does. Removes stale temporaries."""
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"{self.path} is a file, not a folder: name a run folder with --out")
        try:
            self._created = not self.path.exists()
            self.path.mkdir(parents=True, exist_ok=True)
            links = [n for n in (LOCK, *RUN_FILES) if (self.path / n).is_symlink()]
            if links:
                raise RunDirError(f"{self.path / links[0]} is a symbolic link: archspec writes a run folder's own "
                                  "files itself, never through a link (it could write over any file); remove the "
                                  "link, or choose another folder with --out")
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as e:
            raise RunDirError(os_problem(e, self.path)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_lock(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunDirError(f"{self.path} is in use by another archspec process{holder}: wait for it to end, "
                                  "or choose another folder with --out") from None
            raise RunDirError(os_problem(e, self.path / LOCK)) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode())
        self._lock_fd = fd
        remove_stale_temporaries(self.path, RUN_FILES)

    def release(self) -> None:
        """Give the folder up. A lock file in a folder that holds no run (a refused start, someone else's files)
        goes, and so does a folder this process created and left empty."""
        if self._lock_fd is None:
            return
        try:
            if self.marker() is None:
                (self.path / LOCK).unlink()
                if self._created and not any(self.path.iterdir()):
                    self.path.rmdir()
        except OSError:
            pass
        finally:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> "RunDir":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    # -- state ---------------------------------------------------------------------------------------------------

    def state(self) -> str:
        """`new`, `foreign`, `failed_start`, `missing_checkpoint`, `resumable` or `finished` (see the module's
        docstring)."""
        if not self.path.is_dir():
            return "new"
        names = [p.name for p in self.path.iterdir() if p.name != LOCK and not p.name.startswith(".archspec-probe.")]
        if not names:
            return "new"
        info = self.marker()
        if info is None:
            return "foreign"
        if not self.last.is_file():
            # a run that wrote a checkpoint is never taken for one that did not: its last.pt went missing
            return "failed_start" if info.get("checkpoint_iteration") is None else "missing_checkpoint"
        return "finished" if info.get("status") == "finished" else "resumable"

    def foreign_files(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir() if p.name != LOCK)

    def marker(self) -> dict[str, Any] | None:
        """run.json if it is an archspec run's (its marker), else None (absent, damaged or someone else's)."""
        from archspec.runtime.metrics import read_tree

        try:
            info = read_tree(json.loads((self.path / "run.json").read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) and info.get("format") == RUN_FORMAT else None

    def info(self) -> dict[str, Any]:
        info = self.marker()
        if info is None:
            raise RunDirError(f"{self.path / 'run.json'} is missing or damaged, so {self.path} cannot be resumed: "
                              "start a new run in another folder")
        return info

    def describe(self) -> str:
        """A few words on the run in the folder, for messages: `cifar_resnet20, stopped at iteration 20 of 40`."""
        info = self.marker() or {}
        name = info.get("spec", {}).get("name", "a run") if isinstance(info.get("spec"), dict) else "a run"
        at = info.get("checkpoint_iteration")
        total = info.get("iterations")
        status = info.get("status", "running")
        if status == "finished":
            return f"{name}, finished after {total:,} iterations" if isinstance(total, int) else f"{name}, finished"
        where = f"iteration {at:,} of {total:,}" if isinstance(at, int) and isinstance(total, int) else "a checkpoint"
        how = {"diverged": "diverged", "interrupted": "interrupted", "failed": "failed"}.get(status, "stopped")
        return f"{name}, {how}; last checkpoint at {where}"

    # -- writing -------------------------------------------------------------------------------------------------

    def clear(self) -> list[str]:
        """Remove the files of the run in the folder (a failed start being replaced); other files stay."""
        removed = []
        for name in RUN_FILES:
            p = self.path / name
            if p.exists():
                p.unlink()
                removed.append(name)
        return removed

    def begin(self, info: dict[str, Any], spec_text: str, recipe_json: str) -> None:
        """Write a new run's files: run.json first (the marker), then the spec and the recipe."""
        self.write_info({**info, "format": RUN_FORMAT, "status": "running"})
        write_text(self.path / "spec.yaml", spec_text)
        write_text(self.path / "recipe.json", recipe_json)

    def write_info(self, info: dict[str, Any]) -> None:
        from archspec.runtime.metrics import strict_tree

        write_text(self.path / "run.json", json.dumps(strict_tree(info), indent=2, allow_nan=False) + "\n")

    def update_info(self, **fields: Any) -> None:
        info = self.marker()
        if info is not None:
            info.update(fields)
            self.write_info(info)

    def read_text(self, name: str) -> str:
        try:
            return (self.path / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise RunDirError(f"{self.path / name} is missing or damaged, so {self.path} cannot be resumed: start a "
                              "new run in another folder") from None


def _read_lock(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        holder = json.loads(os.read(fd, 4096).decode() or "{}")
        return f" (pid {holder['pid']}, since {holder['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def find_run(path: str | os.PathLike) -> RunDir | None:
    """The run folder a checkpoint file sits in, if it is one."""
    folder = Path(path).parent
    run = RunDir(folder)
    return run if run.marker() is not None else None
