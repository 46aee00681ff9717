"""Normalisations that carry their own activation and keep no running statistics: `frn` (Filter Response
Normalisation with its thresholded linear unit, Singh and Krishnan 2019; timm's `FilterResponseNormTlu2d`, as
resnetv2_50d_frn uses it) and `evonorm` (EvoNorm-S0, Liu et al. 2020; timm's `EvoNorm2dS0`, as resnetv2_50d_evos
uses it). Each replaces a BN + ReLU pair; both compute their statistics from each sample, the same in training
and eval.

- `frn`: y = x / sqrt(mean over H x W of x^2 + eps) * weight + bias, then with `act` max(y, tau). Parameters
  `weight`, `bias` and (with `act`) `tau`, one per channel each: timm's names and order.
- `evonorm`: with `act`, y = x * sigmoid(v * x) / std_group(x) * weight + bias, where std_group is the standard
  deviation (biased, eps added to the variance) over each group of channels and H x W; parameters `weight`,
  `bias` and (with `act`) `v`, one per channel each. timm's `apply_act=False` drops `v` and, as timm's
  EvoNorm2dS0 does, the division by the group statistics too: `act: false` is x * weight + bias.

Counted as BN is, plus their activation as activations are (docs/conventions.md): per element, the scale and
shift is one multiply-add (1 MAC-equivalent, 2 FLOPs); with `act`, the activation (FRN's max with tau, S0's
x * sigmoid(v * x), as `silu` counts) is one op more. The per-sample statistics and the division by them are not
counted, as for `group_norm`. So an FRN-TLU or an EvoNorm-S0 counts what the BN + ReLU it replaces counts. No
buffers. Both are structural (`act` decides which parameters there are; `groups` what the weights were trained
with). Their lowering is in `archspec.compiler.ops.norms`, their modules in `archspec.compiler.ops.norm_modules`.
"""

from __future__ import annotations

from archspec.lang.codes import WRONG_TENSOR_SHAPE
from archspec.lang.ops.base import Attr, Counts, OpDef, Shape, ShapeError, feature_map, numel


def _frn_shape(a: dict, ins: list[Shape]) -> Shape:
    feature_map("frn", ins[0])
    return ins[0]


def _divisors(c: int) -> list[int]:
    return [g for g in (32, 16, 8, 4, 2, 1) if c % g == 0]


def evonorm_groups(a: dict, channels: int) -> int:
    """The number of groups timm's EvoNorm2dS0 uses: channels / group_size when `group_size` is set, else `groups`."""
    return channels // a["group_size"] if a["group_size"] else a["groups"]


def _evonorm_shape(a: dict, ins: list[Shape]) -> Shape:
    c, _, _ = feature_map("evonorm", ins[0])
    if a["group_size"] and c % a["group_size"]:
        raise ShapeError(WRONG_TENSOR_SHAPE, f"evonorm: {c} channels do not split into groups of "
                         f"{a['group_size']}", f"use a group size that divides {c} (e.g. `group_size: "
                         f"{_divisors(c)[0]}`)")
    if not a["group_size"] and c % a["groups"]:
        raise ShapeError(WRONG_TENSOR_SHAPE, f"evonorm: {c} channels do not split into {a['groups']} groups",
                         f"use a number of groups that divides {c} (e.g. `groups: {_divisors(c)[0]}`)")
    return ins[0]


def _norm_act_counts(a: dict, ins: list[Shape], out: Shape) -> Counts:
    """Per channel: weight, bias and, with `act`, tau (FRN) or v (EvoNorm). Per element: the scale and shift as BN
    (1 op, 2 FLOPs) and, with `act`, the activation (1 op); the statistics are not counted."""
    act = 1 if a["act"] else 0
    n = numel(out)
    return Counts(params=(2 + act) * ins[0][0], extra=(1 + act) * n, extra_flops=(2 + act) * n)


def _evonorm_label(a: dict) -> str:
    if not a["act"]:
        return "EvoNorm-S0 affine"
    return f"EvoNorm-S0 gs{a['group_size']}" if a["group_size"] else f"EvoNorm-S0/{a['groups']}"


COMMON = {
    "zero_init": Attr(type="bool", default=False, doc="initialise the scale to 0 (last norm of a residual branch)"),
    "channels": Attr(type="int", default=None, min=1, doc="optional: the channels this norm expects (checked)"),
}

FRN_ATTRS = {
    "act": Attr(type="bool", default=True,
                doc="the thresholded linear unit max(y, tau), a learnt tau per channel (timm's apply_act); "
                    "false: no tau"),
    "eps": Attr(type="float", default=1e-5, min=0, doc="added to the mean square"),
    **COMMON,
}

EVONORM_ATTRS = {
    "groups": Attr(type="int", default=32, min=1,
                   doc="groups of channels whose statistics are shared (they must divide the channels)"),
    "group_size": Attr(type="int", default=None, min=1,
                       doc="optional: channels per group instead (groups = channels / group_size, as timm)"),
    "act": Attr(type="bool", default=True,
                doc="x * sigmoid(v * x) / group std, a learnt v per channel (timm's apply_act); false, as timm: "
                    "no v and no normalisation, x * weight + bias"),
    "eps": Attr(type="float", default=1e-5, min=0, doc="added to the group variance"),
    **COMMON,
}

OPS = [
    OpDef(name="frn", doc="filter response normalisation with a thresholded linear unit (FRN-TLU; timm's "
          "FilterResponseNormTlu2d): each channel of each sample scaled by its RMS over H x W", kind="norm",
          attrs=FRN_ATTRS, inputs=(1, 1), shape=_frn_shape, counts=_norm_act_counts, expects="channels",
          structural=True, label=lambda a: "FRN+TLU" if a["act"] else "FRN", fold=True),
    OpDef(name="evonorm", doc="EvoNorm-S0 (timm's EvoNorm2dS0): x * sigmoid(v * x) divided by the standard "
          "deviation of its group of channels, then a scale and shift; no running statistics", kind="norm",
          attrs=EVONORM_ATTRS, inputs=(1, 1), shape=_evonorm_shape, counts=_norm_act_counts, expects="channels",
          structural=True, label=_evonorm_label, fold=True),
]
