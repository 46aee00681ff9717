"""Lowering of the normalisations with their own activation: `frn` to `FilterResponseNormTlu2d` and `evonorm` to
`EvoNorm2dS0` (modules in `archspec.compiler.ops.norm_modules`, imported when a model is built), initialised as
timm initialises them (weight 1, bias 0, tau 0, v 1), or weight 0 where the spec says `zero_init`.
"""

from __future__ import annotations

from typing import Any

from archspec.compiler.ops.base import Lowering, Shape
from archspec.lang.ops.norms import evonorm_groups


def _frn_module(a: dict, in_shape: Shape) -> Any:
    from archspec.compiler.ops.norm_modules import FilterResponseNormTlu2d

    return FilterResponseNormTlu2d(in_shape[0], act=a["act"], eps=a["eps"])


def _evonorm_module(a: dict, in_shape: Shape) -> Any:
    from archspec.compiler.ops.norm_modules import EvoNorm2dS0

    return EvoNorm2dS0(in_shape[0], groups=evonorm_groups(a, in_shape[0]), act=a["act"], eps=a["eps"])


def _init(module: Any, a: dict) -> None:
    from torch import nn

    module.reset_parameters()
    if a.get("zero_init"):
        nn.init.zeros_(module.weight)


LOWERINGS = [
    Lowering(op="frn", torch_name="FilterResponseNormTlu2d", module=_frn_module, init=_init, overwritable=True),
    Lowering(op="evonorm", torch_name="EvoNorm2dS0", module=_evonorm_module, init=_init, overwritable=True),
]
