"""The compiler half of the example plugin: how `layer_scale` becomes torch (imported only to build a model)."""

from __future__ import annotations

from archspec.compiler.ops.base import Lowering


def _module(a: dict, in_shape: tuple):
    import torch
    from torch import nn

    class LayerScale(nn.Module):
        def __init__(self, channels: int, init: float):
            super().__init__()
            self.gamma = nn.Parameter(torch.full((channels,), float(init)))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.gamma.view(1, -1, 1, 1)

    return LayerScale(in_shape[0], a["init"])


LOWERINGS = [Lowering(op="layer_scale", torch_name="LayerScale", module=_module)]
