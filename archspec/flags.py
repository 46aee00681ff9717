"""Command-line values checked in one place: numbers with their valid range, and the files and folders commands
write to. Every subcommand (`train`, `eval`, `export`, `render`, `plot`, ...) declares its options with these
types, so a zero, negative, unordered or out-of-range value, or an output path that cannot be written (a file
where a folder should be, no permission, a read-only mount), is refused before any work starts, in one line
that names the option and what it accepts (exit code 2).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path
from typing import Callable

from archspec.lang.files import os_problem


def _number(text: str, integer: bool) -> float:
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
    if not integer and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """A whole number in [low, high] (either end may be open)."""
    def parse(text: str) -> int:
        value = int(_number(text, integer=True))
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be a whole number {_range(low, high)}, got {value}")
        return value
    parse.__name__ = "whole number"
    return parse


def real(low: float | None = None, high: float | None = None, *, low_open: bool = False,
         high_open: bool = False) -> Callable[[str], float]:
    """A finite number in the range; `low_open`/`high_open` exclude the ends."""
    def parse(text: str) -> float:
        value = _number(text, integer=False)
        bad = ((low is not None and (value < low or (low_open and value == low)))
               or (high is not None and (value > high or (high_open and value == high))))
        if bad:
            raise argparse.ArgumentTypeError(f"must be a number {_range(low, high, low_open, high_open)}, "
                                             f"got {text}")
        return value
    parse.__name__ = "number"
    return parse


def _range(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    def show(v: float) -> str:
        return str(v) if isinstance(v, int) else f"{v:g}"

    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{show(low)}, {show(high)}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {show(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {show(high)}"
    return ""


POSITIVE = integer(1)
NON_NEGATIVE = integer(0)
SEED = integer(0, 2**63 - 1)
POSITIVE_REAL = real(0, low_open=True)
NON_NEGATIVE_REAL = real(0)


def increasing(text: str) -> list[int]:
    """Whole numbers >= 1 separated by commas, in increasing order (lr milestones)."""
    parts = [t.strip() for t in text.split(",") if t.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("expected whole numbers separated by commas, e.g. 32000,48000")
    values = []
    for t in parts:
        try:
            values.append(int(t))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"milestones must be >= 1, got {text}")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise argparse.ArgumentTypeError(f"milestones must increase, e.g. {','.join(map(str, sorted(set(values))))}"
                                         f"; got {text}")
    return values


# -- paths ----------------------------------------------------------------------------------------------------

def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def writable_folder_problem(folder: Path, target: Path | None = None) -> str | None:
    """Why files cannot be created in `folder` (which may not exist yet), or None; `target` is what the message
    names (default the folder). Probes with a real file, since permission bits say nothing of read-only mounts
    and nothing to root."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        return f"{folder} is a file, not a folder"
    base = _nearest_existing(folder.absolute())
    if not base.is_dir():
        return f"{base} is a file, so {folder} cannot be a folder"
    try:
        fd, name = tempfile.mkstemp(prefix=".archspec-probe.", dir=base)
    except OSError as e:
        return os_problem(e, target if target is not None else folder)
    os.close(fd)
    os.unlink(name)
    return None


def output_folder(text: str) -> Path:
    """A folder to write into (created if absent): refused if a file stands there or it cannot be written."""
    path = Path(text).expanduser()
    problem = writable_folder_problem(path)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return path


def output_file(text: str) -> Path:
    """A file to write: its folder must exist and be writable, and the path must not be a folder."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder; name a file in it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise argparse.ArgumentTypeError(f"folder {parent} does not exist: create it first")
    problem = writable_folder_problem(parent, path)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return path


NAMED_WEIGHTS = ("torchvision", "timm", "IMAGENET1K_V1", "IMAGENET1K_V2")


def weights_source(text: str) -> str:
    """`--weights`: a file to read, or published weights by name (torchvision[:TAG], IMAGENET1K_V1/V2, timm[:TAG])."""
    if text.split(":", 1)[0] in NAMED_WEIGHTS and not Path(text).exists():
        return text
    try:
        return str(input_file(text))
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"{e} (or name published weights: {', '.join(NAMED_WEIGHTS)})") from None


def input_path(text: str) -> Path:
    """A file or a folder to read: it must exist."""
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file or folder: {path}")
    return path


def input_file(text: str) -> Path:
    """A file to read: it must exist and be a file."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder; name a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {path}")
    return path
