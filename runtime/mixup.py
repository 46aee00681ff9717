"""Mixup and CutMix on a training batch, with the mixed (and label-smoothed) targets that go with them.

The definitions are timm's Mixup in batch mode with the area correction on (`correct_lam`): a batch is mixed with
its own reverse (sample i with sample B-1-i), one lam for the whole batch.

- mixup (Zhang et al. 2018): x lam + x.flip(0) (1 - lam), lam ~ Beta(mixup_alpha, mixup_alpha).
- cutmix (Yun et al. 2019): lam ~ Beta(cutmix_alpha, cutmix_alpha); a box of int(h sqrt(1 - lam)) x
  int(w sqrt(1 - lam)) centred on a uniformly drawn pixel and clipped to the image is pasted from the reversed
  batch; lam becomes 1 - box area / image area (timm's rand_bbox and its lam correction).
- targets: lam x smooth_one_hot(y) + (1 - lam) x smooth_one_hot(y.flip(0)) (timm's mixup_target).

`MixCut` mixes a batch with probability `prob`, choosing cutmix with probability `switch_prob` when both alphas are
> 0. Every random number comes from the CPU generator that the caller passes (the training loop seeds it per
iteration, so a resumed run mixes as an uninterrupted one would) and the global generators are never touched. lam is
drawn as the first coordinate of a Dirichlet(alpha, alpha) sample in float64 from torch's own sampler
(torch._sample_dirichlet, the draw behind torch.distributions.Beta, which itself takes no generator); x stays on its
device and nothing is read back from it.
"""

from __future__ import annotations

import math

import torch

from archspec.runtime.losses import smooth_one_hot

Box = tuple[int, int, int, int]


def mixup_images(x: torch.Tensor, lam: float) -> torch.Tensor:
    """The batch blended with its reverse: x lam + x.flip(0) (1 - lam)."""
    return x * lam + x.flip(0) * (1.0 - lam)


def cutmix_box(h: int, w: int, lam: float, g: torch.Generator) -> Box:
    """(y0, y1, x0, x1): a cutmix box of side ratio sqrt(1 - lam) centred on a pixel drawn from `g` (row, then
    column), clipped to the h x w image."""
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(h * ratio), int(w * ratio)
    cy = int(torch.randint(0, h, (), generator=g))
    cx = int(torch.randint(0, w, (), generator=g))
    y0, y1 = min(max(cy - cut_h // 2, 0), h), min(max(cy + (cut_h + 1) // 2, 0), h)
    x0, x1 = min(max(cx - cut_w // 2, 0), w), min(max(cx + (cut_w + 1) // 2, 0), w)
    return y0, y1, x0, x1


def cutmix_images(x: torch.Tensor, box: Box) -> torch.Tensor:
    """A copy of the (B, C, H, W) batch with `box` of every image taken from the reversed batch."""
    y0, y1, x0, x1 = box
    out = x.clone()
    out[:, :, y0:y1, x0:x1] = x[:, :, y0:y1, x0:x1].flip(0)
    return out


def box_lam(box: Box, h: int, w: int) -> float:
    """The share of each image that a cutmix with `box` keeps: 1 - box area / image area."""
    y0, y1, x0, x1 = box
    return 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)


def mixed_targets(y: torch.Tensor, lam: float, classes: int, smoothing: float) -> torch.Tensor:
    """(B, classes) float32: lam x smooth_one_hot(y) + (1 - lam) x smooth_one_hot(y.flip(0))."""
    t = smooth_one_hot(y, classes, smoothing)
    return t * lam + t.flip(0) * (1.0 - lam)


def beta_sample(alpha: float, g: torch.Generator) -> float:
    """One draw of Beta(alpha, alpha) from generator `g` (a CPU generator)."""
    concentration = torch.tensor([alpha, alpha], dtype=torch.float64)
    return float(torch._sample_dirichlet(concentration, generator=g)[0])


def _uniform(g: torch.Generator) -> float:
    return float(torch.rand((), dtype=torch.float64, generator=g))


class MixCut:
    """`mix(x, y, g) -> (x_mixed, soft_targets)`: mixup or cutmix of a batch as timm's Mixup in batch mode; see the
    module docstring. Targets are float32 (B, classes), smoothed by `smoothing`, on y's device."""

    def __init__(self, mixup_alpha: float, cutmix_alpha: float, prob: float = 1.0, switch_prob: float = 0.5,
                 smoothing: float = 0.0, *, classes: int) -> None:
        if mixup_alpha < 0 or cutmix_alpha < 0 or not (mixup_alpha > 0 or cutmix_alpha > 0):
            raise ValueError(f"mixup needs mixup_alpha or cutmix_alpha > 0 (and neither < 0), not {mixup_alpha} "
                             f"and {cutmix_alpha}")
        if not (0.0 <= prob <= 1.0 and 0.0 <= switch_prob <= 1.0):
            raise ValueError(f"prob and switch_prob must be in [0, 1], not {prob} and {switch_prob}")
        if not (isinstance(classes, int) and classes >= 1):
            raise ValueError(f"classes must be a positive integer, not {classes!r}")
        self.mixup_alpha, self.cutmix_alpha = float(mixup_alpha), float(cutmix_alpha)
        self.prob, self.switch_prob, self.smoothing, self.classes = prob, switch_prob, smoothing, classes

    def draw(self, g: torch.Generator) -> tuple[float, bool]:
        """(lam, use cutmix) for one batch; lam 1.0 when the batch is left unmixed. Draws, in order: whether to
        mix, then (both alphas > 0) whether to cut, then lam."""
        if not _uniform(g) < self.prob:
            return 1.0, False
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            cut = _uniform(g) < self.switch_prob
        else:
            cut = self.mixup_alpha == 0
        return beta_sample(self.cutmix_alpha if cut else self.mixup_alpha, g), cut

    def __call__(self, x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        lam, cut = self.draw(g)
        if lam == 1.0:
            return x, smooth_one_hot(y, self.classes, self.smoothing)
        if cut:
            h, w = x.shape[-2:]
            box = cutmix_box(h, w, lam, g)
            x, lam = cutmix_images(x, box), box_lam(box, h, w)
        else:
            x = mixup_images(x, lam)
        return x, mixed_targets(y, lam, self.classes, self.smoothing)
