"""A tiny spec (a conv and a classifier: each run takes a few seconds, mostly starting up) and experiment files
over it, for the tests of `archspec sweep` (tests/runtime/test_sweep.py, test_sweep_ray.py)."""

from __future__ import annotations

import json
from pathlib import Path

TINY = """\
archspec: 1
name: tiny
imports: [archspec:recipes/cifar10.yaml]
input: [3, 32, 32]
params:
  width: {type: int, default: 8, min: 1}
network:
  - conv1: {op: conv, out: =width, kernel: 3, stride: 2, pad: 1}
  - bn1: {op: bn}
  - relu1: {op: relu}
  - pool: {op: global_avgpool}
  - flat: {op: flatten}
  - fc: {op: linear, out: 10}
"""
FLAGS = "batch_size: 16, log_interval: 5, eval_interval: 10, checkpoint_interval: 5, train_size: 1000, val_size: 200"


def experiment(tmp_path: Path, body: str) -> Path:
    (tmp_path / "tiny.yaml").write_text(TINY)
    path = tmp_path / "exp.yaml"
    path.write_text("archspec: 1\nexperiment: tiny\n" + body)
    return path


def info(run: Path) -> dict:
    """A run folder's run.json."""
    return json.loads((run / "run.json").read_text())
