"""Lowering of the weighted layers and their normalisation: `nn.Conv2d`, `nn.BatchNorm2d`/`1d`, `nn.GroupNorm`
and `nn.Linear`, initialised as in the paper (He): kaiming-normal convs (fan_out, ReLU), norm weight 1 and bias 0,
or weight 0 where the spec says `zero_init` (the last norm of each residual branch).
"""

from __future__ import annotations

from typing import Any

from archspec.compiler.ops.base import Lowering, Shape, torch_pair


def _conv_module(a: dict, in_shape: Shape) -> Any:
    from torch import nn

    return nn.Conv2d(in_shape[0], a["out"], torch_pair(a["kernel"]), torch_pair(a["stride"]), torch_pair(a["pad"]),
                     torch_pair(a["dilation"]), a["groups"], a["bias"])


def _conv_init(module: Any, a: dict) -> None:
    from torch import nn

    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def _bn_module(a: dict, in_shape: Shape) -> Any:
    from torch import nn

    cls = nn.BatchNorm2d if len(in_shape) == 3 else nn.BatchNorm1d
    return cls(in_shape[0], eps=a["eps"], momentum=a["momentum"], affine=a["affine"])


def _gn_module(a: dict, in_shape: Shape) -> Any:
    from torch import nn

    return nn.GroupNorm(a["groups"], in_shape[0], eps=a["eps"], affine=a["affine"])


def _bn_init(module: Any, a: dict) -> None:
    from torch import nn

    if module.affine:
        nn.init.constant_(module.weight, 0.0 if a.get("zero_init") else 1.0)
        nn.init.zeros_(module.bias)


def _linear_module(a: dict, in_shape: Shape) -> Any:
    from torch import nn

    return nn.Linear(in_shape[0], a["out"], a["bias"])


LOWERINGS = [
    Lowering(op="conv", torch_name="Conv2d", module=_conv_module, init=_conv_init, overwritable=True),
    Lowering(op="bn", torch_name="BatchNorm2d", module=_bn_module, init=_bn_init, overwritable=True),
    Lowering(op="group_norm", torch_name="GroupNorm", module=_gn_module, init=_bn_init, overwritable=True),
    Lowering(op="linear", torch_name="Linear", module=_linear_module, overwritable=True),
]
