"""The PyTorch modules of the channel-level ops (`archspec.lang.ops.channels`): `ChannelConv` (ECA's 1-D conv
across channels) and `BranchSoftmax` (ResNeSt's radix softmax, SK's softmax across paths). Both take and give
B x C x H x W tensors; the reshapes are inside. Imported only by the lowerings that build them (it imports torch).
"""

from __future__ import annotations

import torch
from torch import nn


class ChannelConv(nn.Conv1d):
    """A 1-channel `nn.Conv1d` run along the channels at every spatial position, padded to keep the C channels.

    Its parameters are those of `nn.Conv1d(1, 1, kernel, padding=(kernel - 1) // 2)`: `weight` of shape
    (1, 1, kernel) (and `bias` of shape (1,)), the names and shapes of timm's `EcaModule.conv`."""

    def __init__(self, kernel: int, bias: bool = False):
        super().__init__(1, 1, kernel, padding=(kernel - 1) // 2, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        seq = x.permute(0, 2, 3, 1).reshape(b * h * w, 1, c)  # one sequence of C values per position
        out = self._conv_forward(seq, self.weight, self.bias)
        return out.reshape(b, h, w, c).permute(0, 3, 1, 2)


class BranchSoftmax(nn.Module):
    """Softmax across `branches` of a groups-major input (channel g R C' + r C' + c), given branch-major (channel
    r G C' + g C' + c), at every position; a sigmoid when there is one branch. No parameters."""

    def __init__(self, branches: int, groups: int = 1):
        super().__init__()
        self.branches, self.groups = branches, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branches == 1:
            return torch.sigmoid(x)
        x = x.unflatten(1, (self.groups, self.branches, -1)).transpose(1, 2)  # B, R, G, C', H, W
        return torch.softmax(x, dim=1).flatten(1, 3)

    def extra_repr(self) -> str:
        return f"branches={self.branches}, groups={self.groups}"
