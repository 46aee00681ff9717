"""What a run writes as it goes: metrics as JSON lines, a human log, and a progress line with an ETA.

`metrics.jsonl` has one record per line: `{"kind": "train", "iter", "epoch", "loss", "lr", "train_err",
"images_per_s", "time", ...}` per log interval and `{"kind": "val" | "test", "iter", "loss", "err",
"top5_err", "images"}` per evaluation. Errors are percentages. On resume, records past the checkpoint's
iteration (logged after it, before the crash) are dropped, so a resumed run's file reads like an uninterrupted
one's.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO


class MetricsLog:
    def __init__(self, path: Path):
        self.path = path
        self.file: TextIO | None = None

    def open(self, keep_until: int | None = None) -> None:
        """Open for appending; with `keep_until`, first drop records of later iterations (and torn lines)."""
        if keep_until is not None and self.path.exists():
            kept = []
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by a crash
                if record.get("iter", 0) <= keep_until:
                    kept.append(line)
            from archspec.lang.files import write_text

            write_text(self.path, "".join(k + "\n" for k in kept))
        self.file = self.path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        assert self.file is not None
        self.file.write(json.dumps(record, allow_nan=True) + "\n")
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def clock(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """A progress line on a terminal (redrawn in place), or one line per log interval otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True):
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()
        self.start_iter = 0

    def begin(self, iteration: int) -> None:
        self.started, self.start_iter = time.perf_counter(), iteration

    def update(self, iteration: int, loss: float, lr: float, err: float, images_per_s: float) -> None:
        if not self.enabled:
            return
        done = iteration - self.start_iter
        elapsed = time.perf_counter() - self.started
        eta = elapsed / done * (self.total - iteration) if done else float("nan")
        width = 24
        filled = int(width * iteration / max(1, self.total))
        bar = "=" * filled + (">" if filled < width else "") + " " * max(0, width - filled - 1)
        text = (f"[{bar}] {iteration:,}/{self.total:,}  loss {loss:.4f}  lr {lr:.4g}  err {err:.2f}%  "
                f"{images_per_s:,.0f} img/s  ETA {clock(eta)}")
        if self.tty:
            self.stream.write("\r" + text + "\x1b[K")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def end(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
