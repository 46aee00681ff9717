"""The PyTorch modules of the normalisations with their own activation (`archspec.lang.ops.norms`):
`FilterResponseNormTlu2d` (FRN with its thresholded linear unit) and `EvoNorm2dS0`. Parameter names and order
are timm's (`weight`, `bias`, then `tau` or `v`), so that timm's state_dicts load into them strictly. Neither
keeps running statistics: both compute them from each sample, in float32 for half-precision inputs. Imported only
by the lowerings that build them (it imports torch)."""

from __future__ import annotations

import torch
from torch import nn


def _per_channel(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return p.to(x.dtype).reshape(1, -1, 1, 1)


class FilterResponseNormTlu2d(nn.Module):
    """y = x / sqrt(mean over H x W of x^2 + eps) * weight + bias, then max(y, tau) when `act` (no `tau` without)."""

    def __init__(self, channels: int, act: bool = True, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.empty(channels))
        self.tau = nn.Parameter(torch.empty(channels)) if act else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)
        if self.tau is not None:
            nn.init.zeros_(self.tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean_square = x.float().square().mean(dim=(2, 3), keepdim=True)
        y = x * torch.rsqrt(mean_square + self.eps).to(x.dtype) * _per_channel(self.weight, x) \
            + _per_channel(self.bias, x)
        return torch.maximum(y, _per_channel(self.tau, x)) if self.tau is not None else y

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, act={self.tau is not None}, eps={self.eps:g}"


class EvoNorm2dS0(nn.Module):
    """With `act`: y = x * sigmoid(v * x) / sqrt(var + eps) * weight + bias, the variance (biased) over each of
    `groups` groups of channels and H x W of each sample. Without `act`: no `v`, and, as timm's EvoNorm2dS0, no
    normalisation either: y = x * weight + bias."""

    def __init__(self, channels: int, groups: int = 32, act: bool = True, eps: float = 1e-5):
        super().__init__()
        self.groups, self.eps = groups, eps
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.empty(channels))
        self.v = nn.Parameter(torch.empty(channels)) if act else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)
        if self.v is not None:
            nn.init.ones_(self.v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.v is not None:
            grouped = x.reshape(x.shape[0], self.groups, -1)
            var = grouped.float().var(dim=2, correction=0, keepdim=True)
            gated = (x * torch.sigmoid(x * _per_channel(self.v, x))).reshape_as(grouped)
            x = (gated / torch.sqrt(var + self.eps).to(x.dtype)).reshape_as(x)
        return x * _per_channel(self.weight, x) + _per_channel(self.bias, x)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, groups={self.groups}, act={self.v is not None}, eps={self.eps:g}"
