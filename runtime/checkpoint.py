"""Checkpoints that survive: written whole or not at all, read without executing anything.

A checkpoint is a dict of tensors and plain values (`torch.load(..., weights_only=True)` can read it): the model
and optimizer state, the iteration, the schedule state, the RNG states, and the metric window in progress.
Writes go to a temporary file beside the target, are flushed to disk, then renamed over it, so a crash or a
SIGKILL leaves either the previous checkpoint or the new one, never a torn file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

FORMAT = "archspec-checkpoint"
VERSION = 1


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message is one line naming the file and the fix."""


def save(path: str | os.PathLike, state: dict[str, Any]) -> None:
    from archspec.files import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, **state}, f)
            f.flush()
            os.fsync(f.fileno())


def load(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint written by `save`; anything else (missing, damaged, foreign) is a CheckpointError."""
    from archspec.compiler.export import BadFile, load_tensors

    try:
        data = load_tensors(path, "checkpoint")
    except BadFile as e:
        raise CheckpointError(str(e)) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an archspec training checkpoint (use `archspec export --weights` "
                              "or `archspec eval --checkpoint` for a plain state_dict)")
    if data.get("version") != VERSION:
        raise CheckpointError(f"{path} is checkpoint format {data.get('version')}; this archspec reads {VERSION}")
    return data


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
