"""The live view of a sweep: a line per running run with its progress, read from the run's own files (the last
records of metrics.jsonl, the length in run.json), so that it is the same for local runs and Ray tasks.

On a terminal (stderr) the lines are redrawn in place every second, under the events (a run started, finished,
failed); elsewhere (a log file, a pipe) the events are printed as they happen and each running run's line every
`PLAIN_EVERY_S` seconds. `--quiet`: neither; the summary at the end is printed all the same.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from archspec.lang.diagnostics import printable
from archspec.runtime.rundir import RunDir

if TYPE_CHECKING:
    from archspec.runtime.sweep_plan import Run

REDRAW_S = 1.0
PLAIN_EVERY_S = 60.0
TAIL_BYTES = 8192


def progress(run: Run) -> dict[str, Any]:
    """What the run's files say of its progress: iteration, total, loss, training error, seconds per
    iteration (from its last two training records); {} before it has any."""
    rundir = RunDir(run.folder)
    info = rundir.marker() or {}
    total = info.get("iterations") if isinstance(info.get("iterations"), int) else None
    records = _tail(rundir.metrics)
    train = [r for r in records if r.get("kind") == "train" and isinstance(r.get("iter"), int)]
    out: dict[str, Any] = {"total": total}
    if train:
        last = train[-1]
        out.update(iter=last["iter"], loss=last.get("loss"), err=last.get("train_err"))
        if len(train) >= 2:
            a, b = train[-2], train[-1]
            if all(isinstance(r.get("time"), (int, float)) for r in (a, b)) and b["iter"] > a["iter"]:
                out["s_per_iter"] = (b["time"] - a["time"]) / (b["iter"] - a["iter"])
    evals = [r for r in records if r.get("kind") in ("val", "test") and isinstance(r.get("err"), (int, float))]
    if evals:
        out["eval"] = f"{evals[-1]['kind']} {evals[-1]['err']:.2f}%"
    return out


def _tail(path: Any) -> list[dict[str, Any]]:
    """The whole records among the last TAIL_BYTES of a metrics file (a torn last line is skipped)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - TAIL_BYTES))
            lines = f.read().splitlines()[1 if size > TAIL_BYTES else 0:]
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def run_line(run: Run, width: int) -> str:
    p = progress(run)
    parts = [f"{run.name:<{width}}"]
    if "iter" not in p:
        parts.append("starting" if run.status == "running" else run.status)
    else:
        total = p.get("total")
        if isinstance(total, int) and total > 0:
            parts.append(f"{p['iter']:>7,}/{total:,} {100 * p['iter'] / total:5.1f}%")
        else:
            parts.append(f"{p['iter']:>7,}")
        if isinstance(p.get("loss"), (int, float)):
            parts.append(f"loss {p['loss']:.3f}")
        if isinstance(p.get("err"), (int, float)):
            parts.append(f"train err {p['err']:.1f}%")
        if p.get("eval"):
            parts.append(p["eval"])
        if isinstance(total, int) and p.get("s_per_iter"):
            parts.append(f"eta {_clock(max(0, total - p['iter']) * p['s_per_iter'])}")
    if run.status == "interrupting":
        parts.append("(stopping: saving a checkpoint)")
    return "  ".join(parts)


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class LiveView:
    def __init__(self, quiet: bool, stream: Any = None):
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        try:
            self.tty = bool(self.stream.isatty()) and os.environ.get("TERM") != "dumb"
        except (AttributeError, ValueError):
            self.tty = False
        self.drawn = 0          # lines of the block drawn last (a terminal)
        self.last = 0.0
        self.started = time.time()

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            self.quiet = True   # the reader left: the sweep goes on, silently

    def event(self, text: str) -> None:
        if self.quiet:
            return
        stamp = time.strftime("%H:%M:%S")
        self._clear()
        self._write(f"[{stamp}] {printable(text)}\n")
        if self.tty:
            self.last = 0.0   # redraw the block under it

    def _clear(self) -> None:
        if self.tty and self.drawn:
            self._write(f"\x1b[{self.drawn}F\x1b[J")
            self.drawn = 0

    def refresh(self, running: list[Run], runs: list[Run]) -> None:
        if self.quiet or not running:
            return
        now = time.time()
        if now - self.last < (REDRAW_S if self.tty else PLAIN_EVERY_S):
            return
        if not self.tty and now - self.started < PLAIN_EVERY_S:
            return
        self.last = now
        width = max(len(r.name) for r in running)
        done = sum(r.status in ("finished", "diverged", "failed", "interrupted") for r in runs)
        head = f"{done}/{len(runs)} done, {len(running)} running"
        lines = [head] + ["  " + printable(run_line(r, width)) for r in running]
        if self.tty:
            columns = _columns(self.stream)   # (a line longer than the terminal would wrap and break the redraw)
            self._clear()
            self._write("".join((line[:columns - 1] if columns >= 20 else line) + "\n" for line in lines))
            self.drawn = len(lines)
        else:
            stamp = time.strftime("%H:%M:%S")
            self._write("".join(f"[{stamp}] {line}\n" for line in lines))

    def close(self) -> None:
        self._clear()


def _columns(stream: Any) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, AttributeError, ValueError):
        return 120
