"""Shared pieces of the data sources: seeds, orders, augmentation plans, normalisation, messages."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from archspec.lang.augment import AUGMENT, PIXEL_POLICIES, defaults, param_problem
from archspec.lang.errors import UserError

STATS_CHUNK = 256           # images per chunk when summing pixels: 256 * 255**2 < 2**24, exact in float32

# AlexNet's PCA colour noise (Krizhevsky et al. 2012), as in fb.resnet.torch: on [0, 1]-scaled RGB pixels.
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009),
              (-0.5808, -0.0045, -0.8140),
              (-0.5836, -0.6948, 0.4203))

Op = tuple[str, dict[str, Any]]


class DataError(UserError):
    """Missing or corrupt dataset, bad data option: str(e) is ONE line naming the file/folder and the fix."""


# ----------------------------------------------------------------------------------------------------------------
# Seeds, orders, augmentation plans


def stable_seed(*parts: object) -> int:
    """A 63-bit seed that depends on `parts` only (stable across runs, platforms and library versions)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def cpu_generator(*parts: object) -> torch.Generator:
    return torch.Generator().manual_seed(stable_seed(*parts))


def device_generator(device: torch.device, *parts: object) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(stable_seed(*parts))


def epoch_order(n: int, seed: int, epoch: int) -> Tensor:
    """The order of the n training samples in `epoch` (a CPU permutation)."""
    return torch.randperm(n, generator=cpu_generator("epoch", seed, epoch))


def fixed_order(n: int, tag: str) -> np.ndarray:
    """A fixed permutation of range(n) named by `tag`: the same for every run, seed, platform and library version."""
    keys = np.array([stable_seed(tag, i) for i in range(n)], dtype=np.int64)
    return np.argsort(keys, kind="stable")


def fixed_subset(n: int, k: int, tag: str) -> np.ndarray:
    """The first k of the fixed permutation `tag` of range(n), sorted."""
    return np.sort(fixed_order(n, tag)[:k])


def parse_augment(entries: list[dict], allowed: tuple[str, ...], dataset: str) -> list[Op]:
    """The recipe's augment entries as (op, params with defaults), checked against `archspec.lang.augment`."""
    ops: list[Op] = []
    for k, entry in enumerate(entries or [], 1):
        if not isinstance(entry, dict) or "op" not in entry:
            raise DataError(f"augment entry {k} has no op; write e.g. {{op: hflip}}")
        op = entry["op"]
        if op not in AUGMENT:
            raise DataError(f"unknown augment op {op!r} (entry {k}); known: {', '.join(AUGMENT)}")
        if op not in allowed:
            raise DataError(f"augment op {op} does not apply to {dataset}; it takes {', '.join(allowed)}")
        names = defaults(op)
        extra = sorted(set(entry) - {"op"} - set(names))
        if extra:
            raise DataError(f"augment op {op} has no parameter {extra[0]!r}; it takes {', '.join(names)}")
        params = {**names, **{key: v for key, v in entry.items() if key != "op"}}
        check_params(op, params)
        ops.append((op, params))
    return ops


def check_params(op: str, p: dict[str, Any]) -> None:
    """DataError if the parameters of `op` (defaults filled in) are out of type or range."""
    problem = param_problem(op, p)
    if problem is not None:
        raise DataError(problem)


def pixel_ops(ops: list[Op]) -> int:
    """How many of `ops` run on 0..255 pixels before normalisation: those up to and including the last
    RandAugment / TrivialAugment (0 if there is none). Random erasing works on normalised values: one before the
    last of them is refused, naming its entry."""
    last = max((k for k, (op, _) in enumerate(ops) if op in PIXEL_POLICIES), default=-1)
    for k, (op, _) in enumerate(ops[:last + 1]):
        if op == "random_erasing":
            raise DataError(f"augment op random_erasing (entry {k + 1}) comes before {ops[last][0]} (entry "
                            f"{last + 1}); random erasing works on normalised values: move it after")
    return last + 1


def _shown(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) and len(repr(v)) > 8 else str(v).lower() if isinstance(v, bool) \
        else str(v)


def describe_ops(ops: list[Op]) -> str:
    if not ops:
        return "none"
    parts = []
    for op, p in ops:
        names = defaults(op)
        args = ",".join(f"{k}={_shown(v)}" for k, v in p.items() if v is not None and k in names)
        parts.append(f"{op}({args})" if args else op)
    return " ".join(parts)


_PCA_BASIS: dict[torch.device, tuple[Tensor, Tensor]] = {}


def pca_rgb(alpha: Tensor) -> Tensor:
    """AlexNet lighting: (..., 3) alphas -> (..., 3) RGB offsets on [0, 1] pixels (eigvec @ (alpha * eigval))."""
    basis = _PCA_BASIS.get(alpha.device)
    if basis is None:  # made once per device: a copy to a GPU on every batch would wait for the GPU each time
        basis = _PCA_BASIS[alpha.device] = (torch.tensor(PCA_EIGVAL, device=alpha.device),
                                            torch.tensor(PCA_EIGVEC, device=alpha.device))
    eigval, eigvec = basis
    return (alpha * eigval) @ eigvec.T


# ----------------------------------------------------------------------------------------------------------------
# Normalisation


@dataclass
class Normalizer:
    """x (uint8, 0..255) -> (x - mean) * scale; mean (3, H, W) or (3, 1, 1), scale (3, 1, 1), on the device."""

    mean: Tensor
    scale: Tensor
    text: str

    def __call__(self, x: Tensor) -> Tensor:
        return (x.float() - self.mean) * self.scale

    def shift(self, rgb01: Tensor) -> Tensor:
        """(B, 3) offsets of [0, 1]-scaled pixels as (B, 3, 1, 1) offsets of normalised ones."""
        return rgb01[:, :, None, None] * (255.0 * self.scale)

    def at_size(self, size: int) -> Normalizer:
        """This normaliser for size x size images: a per-pixel mean image resized (bilinear) to that size."""
        if self.mean.dim() < 3 or self.mean.shape[-1] == 1 or tuple(self.mean.shape[-2:]) == (size, size):
            return self
        mean = torch.nn.functional.interpolate(self.mean[None].float(), size=(size, size), mode="bilinear",
                                               align_corners=False, antialias=self.mean.shape[-1] > size)[0]
        return Normalizer(mean, self.scale, self.text)

    def pixel(self, value: float) -> Tensor:
        """(1, C, 1, 1) pixels (0..255) that normalise to `value` (the mean image's average for a per-pixel mean)."""
        mean = self.mean.float().mean(dim=(-2, -1)).view(1, -1, 1, 1)
        return mean + float(value) / self.scale.view(1, -1, 1, 1)


# Fixed per-channel mean and std of [0, 1] pixels that published weights expect (no statistics are taken):
# torchvision's and most of timm's ImageNet weights, and the Inception-style 0.5 / 0.5 of others (timm's resnetv2_50).
FIXED_NORMALIZATIONS = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "inception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


def normalizer(kind: str, total: Tensor | None, total_sq: Tensor | None, count: int, device: torch.device,
                source: str) -> Normalizer:
    """The normaliser from per-pixel sums (float64, 0..255 units) of `count` images of `source` (or fixed)."""
    if kind in FIXED_NORMALIZATIONS:
        mean, std = FIXED_NORMALIZATIONS[kind]
        return Normalizer(torch.tensor(mean, device=device).view(3, 1, 1) * 255,
                          1 / (torch.tensor(std, device=device).view(3, 1, 1) * 255),
                          f"scaled to [0,1], then the {kind} mean {mean} and std {std}")
    if kind == "none" or total is None or total_sq is None:
        zero = torch.zeros(3, 1, 1, device=device)
        return Normalizer(zero, torch.full((3, 1, 1), 1 / 255, device=device), "scaled to [0,1]")
    mean_image = total / count
    if kind == "per_pixel_mean":
        return Normalizer(mean_image.float().to(device), torch.full((3, 1, 1), 1 / 255, device=device),
                           f"scaled to [0,1] minus the per-pixel mean of {count} {source} images")
    channel_mean = mean_image.mean(dim=(1, 2))
    channel_var = (total_sq / count).mean(dim=(1, 2)) - channel_mean**2
    std = channel_var.clamp_min(0).sqrt()
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    mean = channel_mean.float().view(3, 1, 1).to(device)
    scale = (1 / std).float().view(3, 1, 1).to(device)
    text = ("per-channel mean/std of {n} {s} images (mean {m}, std {d})"
            .format(n=count, s=source, m="/".join(f"{v:.1f}" for v in channel_mean.tolist()),
                    d="/".join(f"{v:.1f}" for v in std.tolist())))
    return Normalizer(mean, scale, text)


def pixel_sums(images: Tensor, index: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Per-pixel sum and sum of squares (float64, CPU) of images[index] (uint8 (N, 3, H, W), any device).
    Chunks are summed exactly in float32 and accumulated in float64 on the images' device; the host reads the
    result once, not once per chunk."""
    n = len(index) if index is not None else len(images)
    total = torch.zeros(images.shape[1:], dtype=torch.float64, device=images.device)
    total_sq = torch.zeros(images.shape[1:], dtype=torch.float64, device=images.device)
    for start in range(0, n, STATS_CHUNK):
        chunk = images[index[start:start + STATS_CHUNK]] if index is not None else images[start:start + STATS_CHUNK]
        x = chunk.float()
        total += x.sum(0).double()
        total_sq += (x * x).sum(0).double()
    return total.cpu(), total_sq.cpu()


# ----------------------------------------------------------------------------------------------------------------
# Evaluation views


def center_crop(x: Tensor, size: int) -> Tensor:
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]


def ten_crop(x: Tensor, size: int) -> Tensor:
    """(B, C, H, W) -> (B * 10, C, size, size): 4 corners, centre, and their flips, sample-major."""
    h, w = x.shape[-2:]
    crops = [x[..., :size, :size], x[..., :size, w - size:], x[..., h - size:, :size],
             x[..., h - size:, w - size:], center_crop(x, size)]
    crops += [c.flip(-1) for c in crops]
    return torch.stack(crops, dim=1).reshape(-1, x.shape[1], size, size)


# ----------------------------------------------------------------------------------------------------------------
# Messages


def why(e: BaseException) -> str:
    """A short one-line account of an exception."""
    text = " ".join(str(e).split())
    if len(text) > 120:
        text = text[:117] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def worker_message(text: str) -> str:
    """The original message of a DataError that a DataLoader worker raised (torch adds the worker's traceback)."""
    for line in reversed(text.strip().splitlines()):
        if "DataError: " in line:
            return line.split("DataError: ", 1)[1].strip()
    return " ".join(text.split())
