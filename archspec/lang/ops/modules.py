"""The PyTorch modules of ops that torch.nn does not have. Imported only by lowering (it imports torch)."""

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
