"""An exponential moving average of a model's weights, evaluated beside the model (the recipe's `ema:` section).

`WeightEma` keeps a copy of the model (`.module`, in eval mode, no gradients) and, after optimizer steps, moves every
floating-point tensor of its state dict — parameters and buffers alike, BN statistics included — towards the model's:
ema <- ema + (1 - decay) x (model - ema); other tensors (BN's batch counter) are copied. This is the definition of
timm's ModelEmaV3 (its default of averaging buffers too), including its decay rule:

- the first update (optimizer step `start` + `every`) copies the model (decay 0);
- after it, the decay is `decay`, or with `warmup` min(decay, 1 - (1 + k / warmup_gamma) ** -warmup_power) with
  k = step - start - 1 (timm's `get_decay` with update_after_step = start, min_decay 0; with the defaults the decay
  reaches 0.999 after about 31.6k steps).

`update(model, step)` takes the number of optimizer steps done so far (1-based, after the step) and updates at
steps start + every, start + 2 x every, ...; through the first `start` steps the average follows the weights (each
step copies them, as timm's update_after_step does and as torchvision restarts its average through its warm-up).
The decay is a Python float, so no value is read back from the device. The state that a resumed run needs is the
copy's state dict (`state_dict`/`load_state_dict`): the decay depends on the step number alone.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class WeightEma:
    """The moving average of `model`'s weights; see the module docstring."""

    def __init__(self, model: nn.Module, decay: float, warmup: bool = False, warmup_power: float = 2 / 3,
                 warmup_gamma: float = 1.0, every: int = 1, start: int = 0) -> None:
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must be in [0, 1], not {decay}")
        if not (isinstance(every, int) and every >= 1):
            raise ValueError(f"EMA every must be an integer >= 1, not {every!r}")
        if not (isinstance(start, int) and start >= 0):
            raise ValueError(f"EMA start must be an integer >= 0, not {start!r}")
        if warmup and not (warmup_power > 0 and warmup_gamma > 0):
            raise ValueError(f"EMA warm-up power and gamma must be > 0, not {warmup_power} and {warmup_gamma}")
        self.decay, self.warmup, self.every, self.start = float(decay), bool(warmup), every, start
        self.warmup_power, self.warmup_gamma = float(warmup_power), float(warmup_gamma)
        self.module = copy.deepcopy(model)
        self.module.eval()
        self.module.requires_grad_(False)
        self._keys = list(self.module.state_dict().keys())

    def due(self, step: int) -> bool:
        """Whether `update(model, step)` changes the average at optimizer step `step`."""
        return step <= self.start or (step - self.start) % self.every == 0

    def decay_at(self, step: int) -> float:
        """The decay that an update at optimizer step `step` uses (0: a copy of the model)."""
        if step - self.start <= self.every:
            return 0.0
        if not self.warmup:
            return self.decay
        k = step - self.start - 1
        return min(self.decay, max(0.0, 1 - (1 + k / self.warmup_gamma) ** -self.warmup_power))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average towards `model` after optimizer step `step` (1-based) where that step is due."""
        if not self.due(step):
            return
        weight = 1.0 - self.decay_at(step)
        theirs = model.state_dict()
        if list(theirs.keys()) != self._keys:
            raise ValueError("WeightEma.update: the model's state dict keys differ from those of the averaged copy "
                             "(pass the same, unwrapped model that the average was made from)")
        lerp_e, lerp_m, mixed_e, mixed_m = [], [], [], []
        for e, m in zip(self.module.state_dict().values(), theirs.values()):
            m = m.detach()
            if not e.is_floating_point():
                e.copy_(m)
            elif e.dtype == m.dtype and e.device == m.device:
                lerp_e.append(e)
                lerp_m.append(m)
            else:
                mixed_e.append(e)
                mixed_m.append(m)
        if lerp_e:
            torch._foreach_lerp_(lerp_e, lerp_m, weight)
        for e, m in zip(mixed_e, mixed_m):
            e.lerp_(m.to(device=e.device, dtype=e.dtype), weight)

    def state_dict(self) -> dict[str, Any]:
        return self.module.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.module.load_state_dict(state_dict)
