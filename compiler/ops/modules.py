"""The PyTorch modules of ops that torch.nn does not have: `SubsamplePad` (option-A shortcut) and `DropPath`
(stochastic depth). Imported only by the lowerings that build them (it imports torch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SubsamplePad(nn.Module):
    """Option-A shortcut: keep every `stride`-th position, zero-pad channels up to `out` (no parameters)."""

    def __init__(self, out: int, stride: int, where: str = "end"):
        super().__init__()
        self.out, self.stride, self.where = out, stride, where

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out - x.shape[1]
        before = extra // 2 if self.where == "both" else 0
        return F.pad(x, (0, 0, 0, 0, before, extra - before))

    def extra_repr(self) -> str:
        return f"out={self.out}, stride={self.stride}, where={self.where}"


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016): in training, each sample of the batch is zeroed with probability
    `p` and the kept ones are scaled by 1 / (1 - p); the identity in eval mode and when p is 0.

    The mask is drawn from torch's default generator of the input's device, so restoring the RNG state (a resumed
    run, a recomputed checkpoint) draws the same mask again.
    """

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        shape = [x.shape[0]] + [1] * (x.dim() - 1)  # one draw per sample, broadcast over the rest
        mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        return (x * mask).div_(keep)  # kept samples are exactly x / keep; the product is not kept for backward

    def extra_repr(self) -> str:
        return f"p={self.p:g}"
