"""What a training run records about itself: the run.json record of a new run (`run_info`), the human log
(`RunLog`: log.txt, echoed to the terminal) and how a run ended (`record_end`: run.json and log.txt).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from archspec.lang.yamlsrc import plain
from archspec.runtime.plan import Plan, sha256
from archspec.runtime.request import TrainRequest
from archspec.lang.files import open_append
from archspec.runtime.rundir import RunDir


class RunLog:
    """log.txt with times, echoed to the terminal unless quiet; `note` writes the file only."""

    def __init__(self, path: Path | None, echo: bool, stream: TextIO | None = None):
        self.file = open_append(path) if path is not None else None
        self.echo = echo
        self.stream = stream or sys.stderr

    def note(self, text: str) -> None:
        if self.file is not None:
            self.file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {text}\n")
            self.file.flush()

    def __call__(self, text: str) -> None:
        self.note(text)
        if self.echo:
            self.stream.write(("\r\x1b[K" if self.stream.isatty() else "") + text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def record_end(run: RunDir, main: bool, log: RunLog, status: str, message: str) -> None:
    """Record how the run ended in run.json and log.txt (the terminal gets the message once, from the caller)."""
    if not main:
        return
    log.note(f"{status}: {message}")
    try:
        run.update_info(status=status, message=message)
    except OSError:
        pass  # the disk that failed the run may refuse this too; the run folder stays as it was


def run_info(req: TrainRequest, plan: Plan, arch: dict[str, Any], device: Any, data: Any, total: int,
             dist: Any) -> dict[str, Any]:
    """run.json of a new run: the spec and its hashes, the seed, the versions, the data and the options."""
    import torch

    from archspec.lang import VERSION as __version__

    spec = plan.spec
    return {"spec": {"name": spec.name, "source": spec.display, "sha256": sha256(plan.spec_text),
                     "graph_sha256": arch["graph_sha256"], "params": plan.compiled.params,
                     "macs": plan.compiled.macs},  # (for `archspec results`)
            "spec_recipe": json.loads(json.dumps(plain(spec.recipe or {}))),
            "recipe_source": plan.recipe.source,  # `--recipe NAME`'s recipe in place of the spec's (None: the spec's)
            "recipe_notes": list(plan.recipe.notes),
            "seed": plan.seed, "device": str(device), "command": req.command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "archspec": __version__, "torch": torch.__version__,
            "python": platform.python_version(), "data": data.describe(),
            "data_dir": str(Path(plan.data_dir).expanduser().resolve()) if plan.data_dir is not None else None,
            "iterations": total, "iters_per_epoch": data.iters_per_epoch, "processes": dist.world,
            "options": plan.options.as_dict(), "checkpointing": plan.checkpointing}
