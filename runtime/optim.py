"""Optimizers for the training loop: the recipe's `optimizer:` section made into a torch optimizer, its parameter
groups, the LAMB optimizer and gradient clipping.

`build_optimizer` makes `sgd` (torch.optim.SGD), `adamw` (torch.optim.AdamW) or `lamb` (`Lamb` below) over the
groups of `param_groups`: with `norm_bias_decay` true every trainable parameter is decayed; false, parameters of one
dimension or fewer (biases, norm weights and shifts) and every parameter named `*.bias` get weight decay 0 — the
rule timm's optimizer factory applies (torchvision's recipe likewise exempts norm layers).

`Lamb` follows the definition of timm's `timm.optim.Lamb` (the NVIDIA "NvLamb" variant of You et al., "Large Batch
Optimization for Deep Learning", 2019) with its defaults of bias correction on and coupled decay: the gradients are
first divided by max(1, global norm / `max_grad_norm`), the norm taken over every gradient of every group; the
Adam moments are kept as usual and the update is m_hat / (sqrt(v_hat) + eps) plus `weight_decay` x w; where the group
decays (or `always_adapt`), the update is scaled by the trust ratio ||w|| / ||update|| (1 where either norm is 0,
at most 1 with `trust_clip`); the weight moves by -lr x update. The step count is kept per group, as a Python int
saved in the state dict; nothing is read back from the device during a step.

`clip_gradients` clips in place by total norm, by value, or adaptively (AGC, Brock et al. 2021, as timm defines it:
each output unit's gradient norm held to at most `max_value` x that unit's weight norm, weight norms floored at
1e-3), again without reading anything back from the device.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch
from torch import nn


class Lamb(torch.optim.Optimizer):
    """LAMB, step for step as timm's Lamb (bias correction on, weight decay added to the update); see the module
    docstring. `max_grad_norm` None: no global clipping."""

    def __init__(self, params: Any, lr: float = 5e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.02, grad_averaging: bool = True, max_grad_norm: float | None = 1.0,
                 trust_clip: bool = False, always_adapt: bool = False) -> None:
        if not lr >= 0.0:
            raise ValueError(f"Lamb: lr must be >= 0, not {lr}")
        if not eps >= 0.0:
            raise ValueError(f"Lamb: eps must be >= 0, not {eps}")
        if not weight_decay >= 0.0:
            raise ValueError(f"Lamb: weight_decay must be >= 0, not {weight_decay}")
        if not all(0.0 <= b < 1.0 for b in betas) or len(betas) != 2:
            raise ValueError(f"Lamb: betas must be two numbers in [0, 1), not {betas}")
        if max_grad_norm is not None and not max_grad_norm > 0.0:
            raise ValueError(f"Lamb: max_grad_norm must be > 0 or None, not {max_grad_norm}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, grad_averaging=grad_averaging,
                        max_grad_norm=max_grad_norm, trust_clip=trust_clip, always_adapt=always_adapt)
        super().__init__(params, defaults)

    def _clip_divisor(self) -> torch.Tensor | None:
        """max(1, global gradient norm / max_grad_norm) as a 0-d tensor on the gradients' device, or None."""
        limit = self.defaults["max_grad_norm"]
        if limit is None:
            return None
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return None
        if any(g.is_sparse for g in grads):
            raise RuntimeError("Lamb does not take sparse gradients")
        norms = torch._foreach_norm(grads)
        total = torch.linalg.vector_norm(torch.stack([n.to(norms[0].device) for n in norms]))
        return (total / limit).clamp_(min=1.0)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        divisor = self._clip_divisor()
        for group in self.param_groups:
            group["step"] = int(group.get("step", 0)) + 1
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            self._step_group(group, params, divisor)
        return loss

    def _step_group(self, group: dict, params: list[torch.Tensor], divisor: torch.Tensor | None) -> None:
        beta1, beta2 = group["betas"]
        step, lr, eps, wd = group["step"], group["lr"], group["eps"], group["weight_decay"]
        bc1 = 1.0 - beta1 ** step
        bc2_root = (1.0 - beta2 ** step) ** 0.5
        grads, ms, vs = [], [], []
        for p in params:
            if p.grad.is_sparse:
                raise RuntimeError("Lamb does not take sparse gradients")
            state = self.state[p]
            if not state:
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            grads.append(p.grad)
            ms.append(state["exp_avg"])
            vs.append(state["exp_avg_sq"])
        if divisor is not None:  # new tensors: p.grad itself stays as it was
            grads = [g / divisor.to(g.device) for g in grads]
        if group["grad_averaging"]:
            torch._foreach_lerp_(ms, grads, 1.0 - beta1)
        else:
            torch._foreach_mul_(ms, beta1)
            torch._foreach_add_(ms, grads)
        torch._foreach_mul_(vs, beta2)
        torch._foreach_addcmul_(vs, grads, grads, value=1.0 - beta2)
        denom = torch._foreach_sqrt(vs)
        torch._foreach_div_(denom, bc2_root)
        torch._foreach_add_(denom, eps)
        updates = torch._foreach_div(ms, bc1)
        torch._foreach_div_(updates, denom)
        if wd != 0:
            torch._foreach_add_(updates, params, alpha=wd)
        if wd != 0 or group["always_adapt"]:
            torch._foreach_mul_(updates, _trust_ratios(params, updates, group["trust_clip"]))
        torch._foreach_add_(params, updates, alpha=-lr)


def _trust_ratios(params: list[torch.Tensor], updates: list[torch.Tensor], clip: bool) -> list[torch.Tensor]:
    """||w|| / ||update|| per tensor (1 where either is 0; at most 1 with `clip`), as 0-d tensors, computed in one
    batch of ops per (device, dtype)."""
    w_norms, u_norms = torch._foreach_norm(params), torch._foreach_norm(updates)
    out: list[torch.Tensor] = [w_norms[0]] * len(params)
    by_kind: dict[tuple, list[int]] = {}
    for i, n in enumerate(w_norms):
        by_kind.setdefault((n.device, n.dtype), []).append(i)
    for idx in by_kind.values():
        w = torch.stack([w_norms[i] for i in idx])
        u = torch.stack([u_norms[i] for i in idx])
        r = torch.where(w > 0, torch.where(u > 0, w / u, 1.0), 1.0)
        if clip:
            r = r.clamp(max=1.0)
        for i, ri in zip(idx, r.unbind(0)):
            out[i] = ri
    return out


def param_groups(model: nn.Module, weight_decay: float, norm_bias_decay: bool) -> list[dict]:
    """The trainable parameters of `model` in optimizer groups: one decayed group, or (norm_bias_decay False) the
    decayed ones (ndim > 1, name not ending in `.bias`) and the rest with weight decay 0. Empty groups are left out."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if norm_bias_decay or (p.ndim > 1 and not name.endswith(".bias")):
            decay.append(p)
        else:
            no_decay.append(p)
    groups = [{"params": decay, "weight_decay": float(weight_decay)}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, o: Any) -> torch.optim.Optimizer:
    """The optimizer that record `o` (the recipe's `optimizer:` section: name, lr, weight_decay, norm_bias_decay and
    the named optimizer's own fields) describes, over `param_groups(model, ...)`."""
    groups = param_groups(model, o.weight_decay, o.norm_bias_decay)
    if not groups:
        raise ValueError("the model has no trainable parameters to optimize")
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                               nesterov=bool(o.nesterov))
    if o.name == "adamw":
        return torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay)
    if o.name == "lamb":
        return Lamb(groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay,
                    max_grad_norm=o.max_grad_norm, trust_clip=bool(o.trust_clip), always_adapt=bool(o.always_adapt))
    raise ValueError(f"unknown optimizer {o.name!r}: use sgd, adamw or lamb")


def _unit_norms(x: torch.Tensor) -> torch.Tensor:
    """The 2-norm of each output unit (dimension 0) of a weight, kept broadcastable; the whole tensor's at ndim <= 1."""
    if x.ndim <= 1:
        return torch.linalg.vector_norm(x)
    return torch.linalg.vector_norm(x, dim=tuple(range(1, x.ndim)), keepdim=True)


def clip_gradients(parameters: Iterable[torch.Tensor] | torch.Tensor, mode: str, max_value: float) -> None:
    """Clip the gradients of `parameters` in place: "norm" (total 2-norm at most max_value), "value" (each element in
    [-max_value, max_value]) or "agc" (adaptive, clip factor max_value). No value is read back from the device."""
    params = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    if not (max_value > 0 and math.isfinite(max_value)):
        raise ValueError(f"clip_gradients: max_value must be a positive number, not {max_value}")
    if mode == "norm":
        torch.nn.utils.clip_grad_norm_(params, max_value, foreach=None)
    elif mode == "value":
        torch.nn.utils.clip_grad_value_(params, max_value, foreach=None)
    elif mode == "agc":
        with torch.no_grad():
            for p in params:
                g = p.grad.detach()
                allowed = _unit_norms(p.detach()).clamp(min=1e-3).mul_(max_value)
                norms = _unit_norms(g)
                scaled = g * (allowed / norms.clamp(min=1e-6))
                g.copy_(torch.where(norms < allowed, g, scaled))
    else:
        raise ValueError(f"clip_gradients: unknown mode {mode!r}: use norm, value or agc")
