"""What the user asked of the runtime: a `TrainRequest` or an `EvalRequest`, the options they carry, the exit
codes of a run, and `RunError`, the refusal of a request that cannot be carried out as asked.

The command line builds the requests (`archspec.train_cmd`); `archspec.runtime.driver` carries them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archspec.lang.errors import UserError

EXIT_OK, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 3, 130


class RunError(UserError):
    """A request that cannot be carried out as asked; one line naming what and the fix (exit code 2)."""


@dataclass
class TrainRequest:
    spec: str | None = None                 # a file or a shipped name; None with --resume: the folder's
    overrides: list[str] = field(default_factory=list)      # --set
    input_shape: str | None = None          # --input
    recipe_options: dict[str, Any] = field(default_factory=dict)  # the named recipe options given (--iters, ...)
    recipe_overrides: list[str] = field(default_factory=list)     # --recipe field=value
    out: Path | None = None
    resume: bool = False
    seed: int | None = None
    data_dir: Path | None = None
    download: bool = False
    workers: int = 4
    device: str | None = None
    run_options: dict[str, bool | None] = field(default_factory=dict)  # RunOptions' fields; None: not given
    checkpoint_interval: int | None = None
    checkpoint_minutes: float | None = None   # None: not given (10, or a resumed run's own)
    quiet: bool = False
    command: str = ""
    weights: str | None = None              # --weights: start from these (a new run only)


@dataclass
class EvalRequest:
    checkpoint: Path | None = None          # a run's checkpoint or a state_dict file; or:
    weights: str | None = None              # --weights: published weights by name, or a file
    spec: str | None = None
    overrides: list[str] = field(default_factory=list)
    input_shape: str | None = None
    split: str | None = None
    views: int | None = None
    batch_size: int | None = None
    train_size: int | None = None
    val_size: int | None = None
    dataset: str | None = None
    data_dir: Path | None = None
    download: bool = False
    workers: int = 4
    device: str | None = None
