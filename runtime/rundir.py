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
| `last.pt`, `best.pt`, `best_ema.pt` | checkpoints (runtime.checkpoint; best_ema.pt: the EMA weights' best) |
| `preprocessing.json` | what the inputs must be (runtime.preprocess; also in every checkpoint), written at each start |

Every folder is in one of these states (`state()`): `new` (absent or empty), `foreign` (files that no archspec
run wrote: never touched, not even by a lock file), `missing_checkpoint` (run.json records a checkpoint that is
not there: refused until it is restored), `failed_start` (a run that ended before its first checkpoint: a plain
re-run replaces it, saying so; `--resume` starts it again from its own spec and recipe), `resumable`, or
`finished`.
Temporaries left by a write that was killed are removed when the owner starts.

Anyone may have edited or damaged the files. A run folder's own file that is a symbolic link or not a regular
file (a named pipe put in the lock's place, say) is refused when the folder is acquired, before anything is read
or written. `marker()` reads run.json tolerantly (any mapping with the format; None when unreadable), for telling
the states apart; `info()`, what a resumed run (or an evaluation) goes by, also checks every field archspec reads
against `RUN_SCHEMA` and refuses a damaged one in one line naming the field.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

from archspec.lang.errors import UserError
from archspec.lang.files import (file_kind, load_json, os_problem, read_regular, remove_stale_temporaries,
                                 write_text)

RUN_FORMAT = "archspec-run"
LOCK = ".archspec.lock"
RUN_FILES = ("run.json", "spec.yaml", "recipe.json", "metrics.jsonl", "evals.csv", "log.txt", "last.pt", "best.pt",
             "best_ema.pt", "preprocessing.json")
STATUSES = ("running", "finished", "diverged", "interrupted", "failed")

_COUNT = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
_TEXT_OR_NULL = {"type": ["string", "null"]}
# The fields of run.json that archspec reads, each as it is used (runtime.runinfo.run_info writes most; the driver
# adds `status`, `message`, `resumed`, `checkpoint_iteration`). The others (`command`, versions, `final`, ...)
# are there for people to read.
RUN_SCHEMA = {
    "type": "object",
    "required": ["format", "seed"],
    "properties": {
        "format": {"const": RUN_FORMAT},
        "seed": _COUNT,  # torch.manual_seed's range, as --seed takes it
        "status": {"enum": list(STATUSES)},
        "message": {"type": "string"},
        "spec": {"type": "object", "properties": {"name": {"type": "string"}, "sha256": _TEXT_OR_NULL,
                                                  "params": _COUNT, "macs": _COUNT}},  # (sizes: archspec results)
        "spec_recipe": {"type": ["object", "null"]},
        "recipe_sha256": _TEXT_OR_NULL,
        "data_dir": {"type": ["string", "null"], "minLength": 1, "pattern": "^[^\x00]*$"},
        "options": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "checkpointing": {"type": "object", "properties": {
            "interval": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
            "minutes": {"type": "number", "exclusiveMinimum": 0}}},
        "resumed": _COUNT,
        "checkpoint_iteration": {"anyOf": [_COUNT, {"type": "null"}]},
        "iterations": _COUNT,
        "iters_per_epoch": _COUNT,
    },
}


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
            for name in (LOCK, *RUN_FILES):
                refuse_irregular(self.path / name)
            # O_NONBLOCK: a named pipe put in the lock's place after the check above is never waited on
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0),
                         0o644)
        except OSError as e:
            raise RunDirError(os_problem(e, self.path)) from None
        try:
            refuse_irregular(self.path / LOCK, os.fstat(fd).st_mode)
        except RunDirError:
            os.close(fd)
            raise
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
        """run.json if it is an archspec run's (its marker), else None (absent, unreadable or someone else's).
        Its fields are not checked (see `info`)."""
        from archspec.runtime.metrics import read_tree

        try:
            info = read_tree(load_json(read_regular(self.path / "run.json")))
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) and info.get("format") == RUN_FORMAT else None

    def damage(self) -> str | None:
        """Why run.json, which is there as a file, cannot be read as JSON (`not valid JSON: Expecting value: line
        1 column 31`, `not UTF-8`, `nested too deeply`): a truncated or overwritten run.json is damaged, not absent;
        None when it reads (whether or not it is an archspec run's), or is not there."""
        try:
            data = read_regular(self.path / "run.json")
        except OSError:
            return None
        try:
            load_json(data)
        except UnicodeDecodeError:
            return "not UTF-8 text"
        except ValueError as e:
            why = str(e).split("\n")[0]
            return f"not valid JSON ({why if len(why) <= 80 else why[:77] + '...'})"
        return None

    def info(self) -> dict[str, Any]:
        """run.json of the run in the folder, every field archspec reads checked (`RUN_SCHEMA`); a RunDirError
        naming the file, the field and the fix otherwise."""
        info = self.marker()
        if info is None:
            raise RunDirError(f"{self.path / 'run.json'} is missing or damaged, so {self.path} cannot be resumed: "
                              "start a new run in another folder")
        problem = _schema_problem(info)
        if problem:
            raise RunDirError(f"{self.path / 'run.json'} is damaged: {problem}; restore it from a copy, or start a "
                              "new run in another folder")
        return info

    def describe(self) -> str:
        """A few words on the run in the folder, for messages: `cifar_resnet20, stopped at iteration 20 of 40`."""
        info = self.marker() or {}
        name = info.get("spec", {}).get("name", "a run") if isinstance(info.get("spec"), dict) else "a run"
        name = name if isinstance(name, str) else "a run"
        at = info.get("checkpoint_iteration")
        total = info.get("iterations")
        status = info.get("status", "running")
        status = status if isinstance(status, str) else "running"
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
            return read_regular(self.path / name).decode("utf-8")  # (never waiting on a pipe in the file's place)
        except (OSError, UnicodeDecodeError):
            raise RunDirError(f"{self.path / name} is missing or damaged, so {self.path} cannot be resumed: start a "
                              "new run in another folder") from None


def refuse_irregular(path: Path, mode: int | None = None, fix: str = "remove it, or choose another folder with "
                     "--out") -> None:
    """A RunDirError if `path` (of mode `mode`, else looked up; absent is fine) is not a regular file: `RUN/last.pt
    is a folder, not a regular file: ...; <fix>`."""
    if mode is None:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
    if stat.S_ISREG(mode) or stat.S_ISLNK(mode):  # (links are refused on their own)
        return
    raise RunDirError(f"{path} is {file_kind(mode)}, not a regular file: archspec keeps a run folder's own files as plain "
                      f"files (and never waits on a pipe); {fix}")


def _schema_problem(info: dict[str, Any]) -> str | None:
    """What is wrong with the first damaged field of run.json (`RUN_SCHEMA`), in words; None when all is well."""
    import jsonschema

    errors = list(jsonschema.Draft202012Validator(RUN_SCHEMA).iter_errors(info))
    if not errors:
        return None
    e = jsonschema.exceptions.best_match(errors)
    if e.validator == "required":
        missing = next((k for k in e.validator_value if k not in e.instance), e.validator_value[0])
        return f"it has no `{missing}`"
    field = ".".join(str(p) for p in e.absolute_path)
    shown = json.dumps(e.instance)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"`{field}` is {shown}, {_must_be(field, e)}"


def _must_be(field: str, e: Any) -> str:
    schema = e.schema
    if field.split(".")[0] in ("seed", "resumed", "checkpoint_iteration", "iterations", "iters_per_epoch"):
        what = "a whole number from 0 to 2**63-1" + (" (as --seed takes)" if field == "seed" else "")
        return f"but it must be {what}" + (" or null" if field == "checkpoint_iteration" else "")
    if e.validator == "enum":
        return "but it must be one of " + ", ".join(map(str, e.validator_value))
    if e.validator == "pattern":
        return "but a path holds no NUL character"
    if e.validator == "minLength":
        return "but it must not be empty"
    types = schema.get("type") if isinstance(schema, dict) else None
    if types:
        names = {"object": "a mapping", "string": "a string", "null": "null", "boolean": "true or false",
                 "integer": "a whole number"}
        types = types if isinstance(types, list) else [types]
        return "but it must be " + " or ".join(names.get(t, t) for t in types)
    return f"which is not allowed ({e.message})"


def _read_lock(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        holder = json.loads(os.read(fd, 4096).decode() or "{}")
        return f" (pid {holder['pid']}, since {holder['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def lock_held(folder: str | os.PathLike) -> bool | None:
    """Whether a process holds the run folder's lock (its run is alive), read from /proc/locks so that nothing is
    locked, even for a moment; None when this cannot be told (no /proc/locks). A folder whose run.json says
    `running` but whose lock no one holds was killed before it could say so."""
    try:
        inode = os.stat(Path(folder) / LOCK).st_ino
    except OSError:
        return False
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    for line in text.splitlines():  # `1: FLOCK  ADVISORY  WRITE 29652 fe:00:2146906 0 EOF`
        parts = line.split()
        if "FLOCK" in parts and any(p.count(":") == 2 and p.rsplit(":", 1)[1] == str(inode) for p in parts):
            return True
    return False


def find_run(path: str | os.PathLike) -> RunDir | None:
    """The run folder a checkpoint file sits in, if it is one."""
    folder = Path(path).parent
    run = RunDir(folder)
    return run if run.marker() is not None else None
