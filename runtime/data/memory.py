"""In-memory sources (CIFAR-10 and synthetic): batches indexed, normalised and augmented on the device."""

from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

from archspec.runtime.data.base import (Batch, BatchStream, Data, DataConfig, IN_MEMORY_OPS, SYNTHETIC_VAL,
                                        batch_positions, check_start, class_count, repeats_text)
from archspec.runtime.data.augment_ops import POLICIES, random_erasing, random_resized_crop
from archspec.runtime.data.common import (DataError, Op, center_crop, describe_ops, device_generator, epoch_order,
                                          normalizer, parse_augment, pca_rgb, pixel_ops, pixel_sums, ten_crop, why)


# ----------------------------------------------------------------------------------------------------------------
# In-memory sources: CIFAR-10 and synthetic


def _pad_crop(x: Tensor, pad: int, size: int, fill: float, g: torch.Generator, share: tuple[int, slice]) -> Tensor:
    """Each image padded (with `fill`) by `pad` and cropped to size x size at a random place; vectorised. The
    places are drawn for the whole global batch (`share`: its size, and the rows that are this process's images),
    so a process crops only its own images yet gets exactly what one process alone would. The result comes out
    laid out NHWC (channels_last): that is how the gather below produces it; `TensorData` settles the layout."""
    if pad:
        x = torch.nn.functional.pad(x, (pad, pad, pad, pad), value=float(fill))
    b, _, h, w = x.shape
    if h == size and w == size:
        return x
    total, rows = share
    top = torch.randint(0, h - size + 1, (total,), generator=g, device=x.device)[rows]
    left = torch.randint(0, w - size + 1, (total,), generator=g, device=x.device)[rows]
    steps = torch.arange(size, device=x.device)
    ys = (top[:, None] + steps)[:, :, None]          # (B, size, 1)
    xs = (left[:, None] + steps)[:, None, :]         # (B, 1, size)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return x.permute(0, 2, 3, 1)[batch, ys, xs].permute(0, 3, 1, 2)


def _hflip(x: Tensor, p: float, g: torch.Generator, share: tuple[int, slice]) -> Tensor:
    total, rows = share
    flip = (torch.rand(total, generator=g, device=x.device) < p)[rows]
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def _plan_in_memory(ops: list[Op], size: int, dataset: str) -> tuple[list[Op], int]:
    """Ops with their crop sizes resolved, and the size of the images they produce from size x size ones."""
    planned: list[Op] = []
    for op, p in ops:
        if op in ("pad_crop", "random_crop"):
            pad = p.get("pad", 0)
            crop = p["size"] if p["size"] is not None else size
            if crop > size + 2 * pad:
                raise DataError(f"augment op {op}: size {crop} is larger than the {size + 2 * pad}-pixel "
                                f"{'padded ' if pad else ''}{dataset} images")
            p = {"pad": pad, "fill": 0.0, **p, "size": crop}
            size = crop
        elif op == "random_resized_crop":
            crop = p["size"] if p["size"] is not None else size
            if crop > size:
                raise DataError(f"augment op random_resized_crop: size {crop} is larger than the {size}-pixel "
                                f"{dataset} images (evaluation takes a centre crop of that size); use at most {size}")
            p = {**p, "size": crop}
            size = crop
        planned.append((op, p))
    return planned, size


class TensorData(Data):
    """A dataset held in memory on the device as uint8: indexing, normalising and augmenting cost a few kernels."""

    def __init__(self, config: DataConfig, *, pool: Tensor, labels: Tensor, train_index: Tensor,
                 evals: dict[str, tuple[Tensor, Tensor, Tensor | None]], natural_classes: int, where: str) -> None:
        self.config = config
        self.device = config.device
        self.pool, self.labels, self.train_index = pool, labels, train_index
        self.evals = evals
        self.where = where
        self.train_size = len(train_index)
        self.iters_per_epoch = max(1, self.train_size // config.batch_size)
        self.splits = tuple(evals)
        self.eval_views = config.eval_views
        self.num_classes = class_count(config, natural_classes, where)
        ops = parse_augment(config.augment, IN_MEMORY_OPS, config.name)
        self.ops, out = _plan_in_memory(ops, pool.shape[-1], config.name)
        self.pixel_ops = pixel_ops(self.ops)  # the first ops, up to the last RandAugment / TrivialAugment, on pixels
        _, self.norm_size = _plan_in_memory(self.ops[:self.pixel_ops], pool.shape[-1], config.name)
        self.out_size = out  # what evaluation gives: the training size, or (FixRes) the evaluation crop
        resized = [op for op, _ in self.ops if op in ("pad_crop", "random_crop", "random_resized_crop")]
        if config.image_size is not None and config.image_size != out:
            if not (resized and resized[-1] == "random_resized_crop" and config.image_size <= pool.shape[-1]):
                raise DataError(f"{config.name} gives {out}x{out} images (after augmentation) but image_size is "
                                f"{config.image_size}; change image_size or the crop size (only a "
                                f"random_resized_crop may train at another size than evaluation's, up to the "
                                f"{pool.shape[-1]}-pixel images)")
            self._train_shape = (pool.shape[1], out, out)  # FixRes: train on these, evaluate centre crops
            self.out_size = config.image_size
        self.input_shape = (pool.shape[1], self.out_size, self.out_size)
        total = total_sq = None
        if config.normalize in ("per_pixel_mean", "per_channel"):
            total, total_sq = pixel_sums(pool, train_index)
        self.norm = normalizer(config.normalize, total, total_sq, self.train_size, self.device, "train")
        self.train_norm = self.norm.at_size(self.norm_size)  # where the pixel ops leave the images

    def train_iter(self, start: int = 0) -> BatchStream:
        return BatchStream(self._train_batches(check_start(start)))

    def _train_batches(self, start: int) -> Iterator[Batch]:
        b, per_epoch, seed = self.config.batch_size, self.iters_per_epoch, self.config.seed
        rank, world = self.config.shard
        repeats = self.config.repeats
        per = b // world
        share = (b, slice(rank * per, (rank + 1) * per))  # this process's rows of every global batch
        epoch, order = -1, self.train_index
        i = start
        while True:
            e, pos = divmod(i, per_epoch)
            if e != epoch:
                epoch = e
                order = self.train_index[_to_device(epoch_order(self.train_size, seed, e), self.device)]
            if repeats == 1:
                index = order[pos * b:(pos + 1) * b][share[1]]
            else:  # repeated augmentation: the copies of an image differ by the rows they are augmented in
                index = order[_to_device(batch_positions(pos, b, repeats)[0][share[1]], self.device)]
            g = device_generator(self.device, "augment", seed, i)
            x = self._augment(self.pool[index], g, share)
            yield self._layout(x), self.labels[index]
            i += 1

    def _layout(self, x: Tensor) -> Tensor:
        """The batch in the memory format the model runs in (a no-op when augmentation already made it so)."""
        fmt = torch.channels_last if self.config.channels_last else torch.contiguous_format
        return x.contiguous(memory_format=fmt)

    def _augment(self, x: Tensor, g: torch.Generator, share: tuple[int, slice]) -> Tensor:
        """uint8 images -> normalised, augmented ones. Without RandAugment / TrivialAugment: normalised first, then
        every op in order. With them: the ops up to the last of them on float pixels 0..255, then normalised,
        then the rest."""
        if not self.pixel_ops:
            return self._run(self.ops, self.norm(x), g, share, pixels=False)
        x = self._run(self.ops[:self.pixel_ops], x.float(), g, share, pixels=True)
        return self._run(self.ops[self.pixel_ops:], self.train_norm(x), g, share, pixels=False)

    def _run(self, ops: list[Op], x: Tensor, g: torch.Generator, share: tuple[int, slice], pixels: bool) -> Tensor:
        """`ops` applied to x: normalised values, or (pixels) float pixels 0..255, where a pad's fill (given in
        normalised units) is the pixel that normalises to it and lighting adds 255 x its RGB offsets."""
        total, rows = share
        for op, p in ops:
            if op in ("pad_crop", "random_crop"):
                if pixels:
                    fill = self.norm.pixel(p["fill"])
                    x = _pad_crop(x - fill, p["pad"], p["size"], 0.0, g, share) + fill
                else:
                    x = _pad_crop(x, p["pad"], p["size"], p["fill"], g, share)
            elif op == "hflip":
                x = _hflip(x, p["p"], g, share)
            elif op == "lighting":
                alpha = torch.randn((total, 3), generator=g, device=x.device)[rows] * p["alphastd"]
                x = x + (255.0 * pca_rgb(alpha)[:, :, None, None] if pixels else self.norm.shift(pca_rgb(alpha)))
            elif op == "random_resized_crop":
                x = random_resized_crop(x, p, g, share)
            elif op in POLICIES:
                x = POLICIES[op](x, p, g, share)
            elif op == "random_erasing":
                x = random_erasing(x, p, g, share)
        return x

    def eval_iter(self, split: str, batch_size: int | None = None) -> BatchStream:
        self._check_split(split)
        images, labels, index = self.evals.get(split) or (self.pool, self.labels, self.train_index)
        return BatchStream(self._eval_batches(images, labels, index, batch_size or self.config.batch_size))

    def _eval_batches(self, images: Tensor, labels: Tensor, index: Tensor | None, b: int) -> Iterator[Batch]:
        rank, world = self.config.shard
        if world > 1:  # each process evaluates every world-th image; the trainer sums the counts
            index = (index if index is not None else torch.arange(len(images), device=images.device))[rank::world]
        n = len(index) if index is not None else len(images)
        for start in range(0, n, b):
            take = index[start:start + b] if index is not None else slice(start, start + b)
            x = self.norm(images[take])
            if self.eval_views == 10:
                x = ten_crop(x, self.out_size)
            elif self.out_size != x.shape[-1]:
                x = center_crop(x, self.out_size).contiguous()
            yield x, labels[take]

    def describe(self) -> str:
        sizes = " / ".join([f"train {self.train_size}"] + [f"{s} {len(v[2]) if v[2] is not None else len(v[0])}"
                                                           for s, v in self.evals.items()])
        c, h, w = self.input_shape
        trained = "" if self.train_shape == self.input_shape else f" (trained at {self.train_shape[1]}x" \
            f"{self.train_shape[2]})"
        return (f"{self.where}: {sizes} images of {c}x{h}x{w}{trained}, {self.num_classes} classes, batch "
                f"{self.config.batch_size} ({self.iters_per_epoch} iters/epoch{repeats_text(self.config)}); "
                f"{self.norm.text}; augment "
                f"{describe_ops(self.ops)}; eval {self.eval_views} view(s); in memory on {self.device} (uint8)")


def _to_device(t: Tensor, device: torch.device) -> Tensor:
    """A CPU tensor on `device` without making the host wait: from pinned memory, asynchronously, on CUDA."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def synthetic(config: DataConfig) -> Data:
    """Random images and labels made on the device from the seed (benchmarks, smoke tests)."""
    crops = [e.get("size") for e in config.augment if isinstance(e, dict) and e.get("op") in ("pad_crop",
                                                                                               "random_crop",
                                                                                               "random_resized_crop")]
    size = config.image_size or next((s for s in crops if isinstance(s, int)), None) or 32
    classes = config.classes or 10
    device = config.device
    g = device_generator(device, "synthetic", config.seed)
    try:
        images = torch.randint(0, 256, (config.synthetic_size, 3, size, size), dtype=torch.uint8, device=device,
                               generator=g)
        labels = torch.randint(0, classes, (config.synthetic_size,), device=device, generator=g)
        n_val = SYNTHETIC_VAL if config.val_size is None else min(SYNTHETIC_VAL, config.val_size)
        val = torch.randint(0, 256, (n_val, 3, size, size), dtype=torch.uint8, device=device, generator=g)
        val_labels = torch.randint(0, classes, (n_val,), device=device, generator=g)
    except (RuntimeError, MemoryError) as e:
        raise DataError(f"cannot make {config.synthetic_size} synthetic 3x{size}x{size} images on {device}: "
                        f"{why(e)}; lower synthetic_size or image_size") from None
    train_index = torch.arange(config.synthetic_size, device=device)
    return TensorData(config, pool=images, labels=labels, train_index=train_index,
                       evals={"val": (val, val_labels, None)}, natural_classes=classes,
                       where=f"synthetic (seed {config.seed})")


