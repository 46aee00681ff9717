"""The learning rate at a point of a schedule: step decay or cosine annealing, after an optional warm-up.

`lr_at(t, ...)` is a closed form of `t`, which is in the schedule's own unit: the caller passes whole epochs when
the rate changes once an epoch (timm's and torchvision's recipes), else iterations or fractional epochs. Nothing is
kept between calls, so a resumed run gets the same rates as an uninterrupted one.

- step: base_lr x gamma ** (the number of milestones <= t) — torch's MultiStepLR and the ResNet paper's recipe
  (timm's MultiStepLRScheduler counts a milestone m from t = m - 1 instead; this module does not).
- cosine: min_lr + (base_lr - min_lr) x (1 + cos(pi t / length)) / 2 while t < length, min_lr after — one cycle of
  timm's CosineLRScheduler (no restarts, k_decay 1), written with the same arithmetic so that its rates come out
  to the last bit.

Warm-up, for t < warmup_length: "linear" ramps from warmup_lr towards base_lr (warmup_lr + t x (base_lr -
warmup_lr) / warmup_length, timm's arithmetic; torchvision's LinearLR with start factor warmup_lr / base_lr is the
same line); "constant" holds warmup_lr (the ResNet paper's ResNet-110 warm-up, which the training loop may also end
early on a training-error threshold). After the warm-up, `prefix` False (timm's default) takes the schedule at t, so
the warm-up covers the schedule's first warmup_length; `prefix` True (torchvision's recipe: LinearLR, then
CosineAnnealingLR over epochs - warmup epochs) takes it at t - warmup_length, a cosine then spanning length -
warmup_length and step milestones counting from the warm-up's end.
"""

from __future__ import annotations

import bisect
import math
from typing import Sequence

KINDS = ("step", "cosine")
WARMUP_KINDS = ("linear", "constant")


def _check(kind: str, length: float, milestones: Sequence[float], gamma: float, warmup_kind: str | None,
           warmup_length: float, prefix: bool) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown schedule kind {kind!r}: use step or cosine")
    if warmup_kind is not None and warmup_kind not in WARMUP_KINDS:
        raise ValueError(f"unknown warm-up kind {warmup_kind!r}: use linear or constant")
    if warmup_length < 0:
        raise ValueError(f"warm-up length must be >= 0, not {warmup_length}")
    if kind == "cosine":
        span = length - warmup_length if (prefix and warmup_kind is not None) else length
        if not span > 0:
            raise ValueError(f"the cosine schedule needs a length > 0 after the warm-up, not {span} "
                             f"(length {length}, warm-up {warmup_length}, prefix {prefix})")
    if kind == "step" and not gamma >= 0:
        raise ValueError(f"gamma must be >= 0, not {gamma}")
    if list(milestones) != sorted(milestones):
        raise ValueError(f"milestones must be in increasing order, not {list(milestones)}")


def lr_at(t: float, *, base_lr: float, kind: str, length: float, milestones: Sequence[float] = (),
          gamma: float = 0.1, min_lr: float = 0.0, warmup_kind: str | None = None, warmup_lr: float = 0.0,
          warmup_length: float = 0.0, prefix: bool = False) -> float:
    """The learning rate at `t` (see the module docstring). ValueError for arguments that make no schedule."""
    _check(kind, length, milestones, gamma, warmup_kind, warmup_length, prefix)
    warming = warmup_kind is not None and warmup_length > 0
    if warming and t < warmup_length:
        if warmup_kind == "constant":
            return float(warmup_lr)
        return warmup_lr + t * ((base_lr - warmup_lr) / warmup_length)
    if warming and prefix:
        t = t - warmup_length
        length = length - warmup_length
    if kind == "step":
        return base_lr * gamma ** bisect.bisect_right(list(milestones), t)
    if t >= length:
        return float(min_lr)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * t / length))
