"""The PyTorch modules of the fixed and standardised filters (`archspec.lang.ops.filters`): `BlurPool2d`
(anti-aliased downsampling) and `StdConv2d` (a weight-standardised `nn.Conv2d`). Their parameter and buffer
names are timm's, so that timm's state_dicts load into them strictly. Imported only by the lowerings that build
them (it imports torch)."""

from __future__ import annotations

from math import comb

import torch
import torch.nn.functional as F
from torch import nn

from archspec.lang.ops.filters import blur_padding


def binomial_filter(kernel: int) -> torch.Tensor:
    """The k x k low-pass filter: the outer product of the binomial coefficients C(k-1, i) / 2^(k-1) (it sums to
    1; every value is a dyadic fraction, exact in float32)."""
    row = torch.tensor([comb(kernel - 1, i) for i in range(kernel)], dtype=torch.float64) / 2 ** (kernel - 1)
    return torch.outer(row, row).float()


class BlurPool2d(nn.Module):
    """A fixed binomial filter applied to each channel alone (a depthwise conv) with a stride, after padding every
    side by `blur_padding(kernel, stride)` in `pad_mode`. The filter, one k x k copy per channel, is the
    non-persistent buffer `filt`: it moves with the module (`.to`), is counted by `buffers()`, and is in no
    state_dict, as timm's."""

    def __init__(self, channels: int, kernel: int = 3, stride: int = 2, pad_mode: str = "reflect"):
        super().__init__()
        self.channels, self.kernel, self.stride = channels, kernel, stride
        self.pad_mode = "constant" if pad_mode == "zeros" else pad_mode
        self.padding = blur_padding(kernel, stride)
        self.register_buffer("filt", binomial_filter(kernel).expand(channels, 1, kernel, kernel).contiguous(),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.padding
        if self.pad_mode == "constant":  # zeros: the convolution's own padding does it
            return F.conv2d(x, self.filt, stride=self.stride, padding=p, groups=self.channels)
        return F.conv2d(F.pad(x, (p, p, p, p), mode=self.pad_mode), self.filt, stride=self.stride,
                        groups=self.channels)

    def extra_repr(self) -> str:
        return (f"{self.channels}, kernel={self.kernel}, stride={self.stride}, padding={self.padding}, "
                f"pad_mode={self.pad_mode}")


class StdConv2d(nn.Conv2d):
    """`nn.Conv2d` whose weight is standardised before each use: for each output channel, minus the mean and
    divided by sqrt(variance + eps) over its fan-in (in / groups x kh x kw), the variance biased (divided by the
    fan-in). The stored `weight` (and the state_dict key) is the raw one."""

    def __init__(self, *args, eps: float = 1e-8, **kwargs):
        super().__init__(*args, **kwargs)
        self.eps = eps

    def standardised_weight(self) -> torch.Tensor:
        flat = self.weight.reshape(self.out_channels, -1)
        var, mean = torch.var_mean(flat, dim=1, correction=0, keepdim=True)
        return ((flat - mean) * torch.rsqrt(var + self.eps)).reshape_as(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.standardised_weight(), self.bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", eps={self.eps:g}"
