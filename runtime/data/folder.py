"""Image folders in the ImageNet layout, decoded by Pillow in DataLoader workers."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor

from archspec.runtime.data.base import (Batch, BatchStream, Data, DataConfig, FOLDER_OPS, IMAGE_SUFFIXES,
                                        MEAN_IMAGES, batch_positions, check_start, class_count, repeats_text)
from archspec.runtime.data.augment_ops import POLICIES, random_erasing, resized_crop_boxes
from archspec.runtime.data.common import (FIXED_NORMALIZATIONS, DataError, Normalizer, Op, cpu_generator, describe_ops, epoch_order,
                                          device_generator, fixed_subset, normalizer, parse_augment, pca_rgb,
                                          pixel_ops, ten_crop, why)

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------------------------
# Image folders (ImageNet layout)


def _scan(root: Path, split: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Class names (sorted), image paths relative to root (bytes) and labels of root/split/<class>/*."""
    folder = root / split
    layout = f"an image folder needs {root}/train/<class>/*.JPEG and {root}/val/<class>/*.JPEG"
    if not folder.is_dir():
        raise DataError(f"{folder} is missing; {layout}")
    try:
        classes = sorted(d.name for d in os.scandir(folder) if d.is_dir() and not d.name.startswith("."))
        paths: list[bytes] = []
        labels: list[int] = []
        for label, name in enumerate(classes):
            files = sorted(e.name for e in os.scandir(folder / name)
                           if e.is_file() and not e.name.startswith(".") and e.name.lower().endswith(IMAGE_SUFFIXES))
            paths += [os.fsencode(f"{split}/{name}/{f}") for f in files]
            labels += [label] * len(files)
    except OSError as e:
        raise DataError(f"cannot list {folder}: {why(e)}") from None
    if not classes:
        raise DataError(f"{folder} has no class folders; {layout}")
    if not paths:
        raise DataError(f"{folder} holds no images (*.JPEG, *.jpg, *.png) in its class folders; {layout}")
    return classes, np.array(paths), np.array(labels, dtype=np.int64)


def _load_image(path: str, shorter_hint: int | None) -> Any:
    """The RGB Pillow image at path (JPEGs decoded at a reduced scale when still >= shorter_hint on the short side)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if shorter_hint is not None:
                w, h = im.size
                scale = shorter_hint / min(w, h)
                if scale < 1:
                    im.draft("RGB", (math.ceil(w * scale), math.ceil(h * scale)))
            return im.convert("RGB")
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds for a damaged file
        raise DataError(f"cannot read image {path} ({why(e)}); delete or replace it") from None


def _resize_shorter(img: Any, size: int) -> Any:
    from PIL import Image

    w, h = img.size
    if min(w, h) == size:
        return img
    new = (size, max(1, round(h * size / w))) if w <= h else (max(1, round(w * size / h)), size)
    return img.resize(new, Image.Resampling.BILINEAR)


def _crop_center(img: Any, size: int) -> Any:
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


def _to_tensor(img: Any) -> Tensor:
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).contiguous()


class _FolderImages(torch.utils.data.Dataset):
    """Decodes and crops images in DataLoader workers; yields uint8 tensors (the device normalises them).

    Training keys are (epoch, index), or (epoch, index, copy) with repeated augmentation: all the randomness of
    that sample comes from a generator seeded by (seed, *key), so batches do not depend on the number of workers
    or on which worker made them, and the copies of an image are augmented independently.
    """

    def __init__(self, root: Path, paths: np.ndarray, labels: np.ndarray, *, train: bool, ops: list[Op], seed: int,
                 size: int, resize: int, views: int) -> None:
        self.root, self.paths, self.labels = str(root), paths, labels
        self.train, self.ops, self.seed = train, ops, seed
        self.size, self.resize, self.views = size, resize, views

    def __len__(self) -> int:
        return len(self.paths)

    def _path(self, k: int) -> str:
        return os.path.join(self.root, os.fsdecode(self.paths[k]))

    def __getitem__(self, key: Any) -> tuple:
        if self.train:
            epoch, k, *copy = key  # (epoch, k): the seeds runs without repeated augmentation have always used
            x, alpha = self._train_view(self._path(k), cpu_generator("sample", self.seed, epoch, k, *copy))
            return x, int(self.labels[k]), alpha
        img = _resize_shorter(_load_image(self._path(key), self.resize), self.resize)
        if self.views == 1:
            return _to_tensor(_crop_center(img, self.size)), int(self.labels[key])
        return ten_crop(_to_tensor(img)[None], self.size), int(self.labels[key])

    def _train_view(self, path: str, g: torch.Generator) -> tuple[Tensor, Tensor]:
        ops, size = self.ops, self.size
        hint = ops[0][1]["max"] if ops and ops[0][0] == "scale_jitter" else None
        img = _load_image(path, hint)
        alpha = torch.zeros(3)
        for op, p in ops:
            if op == "scale_jitter":
                img = _resize_shorter(img, int(torch.randint(p["min"], p["max"] + 1, (1,), generator=g)))
            elif op == "random_crop":
                crop = p["size"]
                if min(img.size) < crop:
                    img = _resize_shorter(img, crop)
                w, h = img.size
                left = int(torch.randint(0, w - crop + 1, (1,), generator=g))
                top = int(torch.randint(0, h - crop + 1, (1,), generator=g))
                img = img.crop((left, top, left + crop, top + crop))
            elif op == "random_resized_crop":
                from PIL import Image

                w, h = img.size
                draws = (torch.rand(1, 10, generator=g), torch.rand(1, 10, generator=g), torch.rand(1, 2, generator=g))
                top, left, bh, bw = resized_crop_boxes(h, w, p, *draws)[0].tolist()
                img = img.resize((p["size"], p["size"]), Image.Resampling.BILINEAR,
                                 box=(left, top, left + bw, top + bh))
            elif op == "hflip":
                if float(torch.rand(1, generator=g)) < p["p"]:
                    from PIL import Image

                    img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            elif op == "lighting":
                alpha = torch.randn(3, generator=g) * p["alphastd"]
        if img.size != (size, size):  # the chain did not end in a size x size crop: finish as evaluation does
            img = _crop_center(_resize_shorter(img, self.resize), size)
        return _to_tensor(img), alpha


class _EpochBatches:
    """The batch sampler of an image folder: lists of (epoch, index) keys for iterations start, start + 1, ...
    ((epoch, index, copy) with `repeats` > 1: the rows `batch_positions` lays out).

    Resuming at iteration k regenerates that epoch's order and starts at its position: nothing before is decoded.
    """

    def __init__(self, n: int, batch_size: int, iters_per_epoch: int, seed: int, start: int,
                 shard: tuple[int, int] = (0, 1), repeats: int = 1) -> None:
        self.n, self.batch_size, self.iters_per_epoch = n, batch_size, iters_per_epoch
        self.seed, self.start, self.shard, self.repeats = seed, start, shard, repeats

    def __iter__(self) -> Iterator[list[tuple[int, ...]]]:
        epoch, order = -1, []
        i = self.start
        while True:
            e, pos = divmod(i, self.iters_per_epoch)
            if e != epoch:
                epoch, order = e, epoch_order(self.n, self.seed, e).tolist()
            if self.repeats == 1:
                keys: list[tuple[int, ...]] = [(e, k) for k in order[pos * self.batch_size:(pos + 1) * self.batch_size]]
            else:
                slots, copies = batch_positions(pos, self.batch_size, self.repeats)
                keys = [(e, order[s], c) for s, c in zip(slots.tolist(), copies.tolist())]
            rank, world = self.shard
            per = len(keys) // world
            yield keys[rank * per:(rank + 1) * per] if world > 1 else keys  # this process's share
            i += 1


class FolderData(Data):
    """An ImageNet-style folder, decoded by Pillow in DataLoader workers."""

    def __init__(self, config: DataConfig) -> None:
        if config.root is None:
            raise DataError("imagenet_folder needs --data-dir: a folder with train/<class>/*.JPEG and "
                            "val/<class>/*.JPEG")
        self.config = config
        self.root = root = config.root
        self.device = config.device
        classes, paths, labels = _scan(root, "train")
        val_classes, val_paths, val_labels = _scan(root, "val")
        if classes != val_classes:
            only = sorted(set(classes) ^ set(val_classes))[0]
            side = "train" if only in classes else "val"
            raise DataError(f"class folders differ between {root / 'train'} and {root / 'val'}: {only!r} is only "
                            f"in {side} ({len(classes)} vs {len(val_classes)} classes); make them the same")
        paths, labels = _capped(paths, labels, config.train_size, "train")
        val_paths, val_labels = _capped(val_paths, val_labels, config.val_size, "val")
        self.class_names = classes
        self.num_classes = class_count(config, len(classes), f"{root / 'train'}")
        self.train_size = len(paths)
        self.iters_per_epoch = max(1, self.train_size // config.batch_size)
        self.splits = ("val",)
        self.eval_views = config.eval_views
        self.ops = parse_augment(config.augment, FOLDER_OPS, config.name)
        self.pixel_ops = pixel_ops(self.ops)
        _check_folder_order(self.ops)
        crops = [p["size"] for op, p in self.ops if op in _CROPS and p["size"] is not None]
        size = config.image_size or (crops[-1] if crops else 224)  # the evaluation crop
        if config.eval_resize < size:
            raise DataError(f"eval resize {config.eval_resize} is smaller than the {size}-pixel crop; raise it")
        self.ops = [(op, {**p, "size": p["size"] or size} if op in _CROPS else p) for op, p in self.ops]
        # the training crop: the last crop's size, which may differ from the evaluation crop (FixRes)
        train = next((p["size"] for op, p in reversed(self.ops) if op in _CROPS), size)
        self.size = size
        self.input_shape = (3, size, size)
        self._train_shape = (3, train, train)
        self.lighting = any(op == "lighting" for op, _ in self.ops)
        self.device_ops = [(k, op, p) for k, (op, p) in enumerate(self.ops) if op in _DEVICE_OPS]
        self.pin = self.device.type == "cuda" and torch.cuda.is_available()
        common = dict(seed=config.seed, size=size, resize=config.eval_resize)
        self.train_set = _FolderImages(root, paths, labels, train=True, ops=self.ops, views=1,
                                       **{**common, "size": train})
        self.val_set = _FolderImages(root, val_paths, val_labels, train=False, ops=[], views=config.eval_views,
                                     **common)
        self._eval_loaders: dict[tuple[str, int], torch.utils.data.DataLoader] = {}
        self.norm = self.normalizer(paths, labels)
        self.train_norm = self.norm.at_size(train)

    # -- statistics

    def normalizer(self, paths: np.ndarray, labels: np.ndarray) -> Normalizer:
        kind = self.config.normalize
        if kind in ("none", *FIXED_NORMALIZATIONS):
            return normalizer(kind, None, None, 0, self.device, "train")
        cache = self.root / f".archspec-mean-{self.size}.pt"
        count = min(MEAN_IMAGES, len(paths))
        stats = self._cached_stats(cache, count, len(paths))
        if stats is None:
            subset = fixed_subset(len(paths), count, "imagenet-mean")
            stats = self._estimate(paths[subset], labels[subset])
            self._save_stats(cache, stats, count, len(paths))
        mean, sq_mean = stats
        return normalizer(kind, mean * count, sq_mean * count, count, self.device, "train")

    def _cached_stats(self, cache: Path, count: int, total: int) -> tuple[Tensor, Tensor] | None:
        if not cache.is_file():
            return None
        try:
            saved = torch.load(cache, map_location="cpu", weights_only=True)
            mean, sq_mean = saved["mean"], saved["sq_mean"]
            fits = (mean.shape == sq_mean.shape == (3, self.size, self.size) and saved["images"] == count
                    and saved["train_images"] == total and saved["eval_resize"] == self.config.eval_resize
                    and bool(torch.isfinite(mean).all()) and bool(torch.isfinite(sq_mean).all()))
        except Exception:  # noqa: BLE001 - unreadable or of another layout: estimate afresh
            return None
        return (mean.double(), sq_mean.double()) if fits else None

    def _save_stats(self, cache: Path, stats: tuple[Tensor, Tensor], count: int, total: int) -> None:
        from archspec.lang.files import BadFile, atomic_path

        mean, sq_mean = stats
        try:
            with atomic_path(cache) as tmp:
                torch.save({"mean": mean, "sq_mean": sq_mean, "images": count, "train_images": total,
                            "eval_resize": self.config.eval_resize}, tmp)
        except (OSError, BadFile):  # a read-only dataset folder: estimate again next time
            return

    def _estimate(self, paths: np.ndarray, labels: np.ndarray) -> tuple[Tensor, Tensor]:
        """Per-pixel mean and mean square (float64, 0..255) of the eval centre crops of these images."""
        log.info("estimating the pixel statistics of %s from %d train images", self.root, len(paths))
        dataset = _FolderImages(self.root, paths, labels, train=False, ops=[], views=1, seed=self.config.seed,
                                size=self.size, resize=self.config.eval_resize)
        total = torch.zeros(3, self.size, self.size, dtype=torch.float64)
        total_sq = torch.zeros_like(total)
        for x, _ in BatchStream(iter(self._loader(dataset, batch_size=64, persistent=False))):
            x = x.double()
            total += x.sum(0)
            total_sq += (x * x).sum(0)
        return total / len(paths), total_sq / len(paths)

    # -- streams

    def _loader(self, dataset: torch.utils.data.Dataset, persistent: bool = True, **kwargs: Any
                ) -> torch.utils.data.DataLoader:
        workers = self.config.workers
        return torch.utils.data.DataLoader(
            dataset, num_workers=workers, pin_memory=self.pin, persistent_workers=persistent and workers > 0,
            prefetch_factor=4 if workers > 0 else None,
            generator=torch.Generator().manual_seed(0),  # else DataLoader draws its worker seeds from the global RNG
            **kwargs)

    def train_iter(self, start: int = 0) -> BatchStream:
        sampler = _EpochBatches(self.train_size, self.config.batch_size, self.iters_per_epoch, self.config.seed,
                                check_start(start), self.config.shard, self.config.repeats)
        loader = self._loader(self.train_set, batch_sampler=sampler)
        batches = iter(loader)
        return BatchStream(self._to_device_train(batches, start), on_close=lambda: _shutdown(batches))

    def _to_device_train(self, batches: Iterator, start: int = 0) -> Iterator[Batch]:
        """The workers' uint8 crops on the device, normalised; lighting (its offsets drawn in the workers) and the
        device ops (RandAugment / TrivialAugment on float pixels, random erasing on normalised values) in recipe
        order, batched, their draws from the generator of iteration i for the whole global batch."""
        rank, world = self.config.shard
        per = self.config.batch_size // world
        share = (self.config.batch_size, slice(rank * per, (rank + 1) * per))
        for i, (x, y, alpha) in enumerate(batches, start):
            if any(op != "lighting" for _, op, _ in self.device_ops):
                x = self._device_augment(x.to(self.device, non_blocking=self.pin),
                                         alpha.to(self.device, non_blocking=self.pin), i, share)
            else:
                x = self.norm(x.to(self.device, non_blocking=self.pin))
                if self.lighting:
                    x = x + self.norm.shift(pca_rgb(alpha.to(self.device, non_blocking=self.pin)))
            if self.config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)  # here, once, rather than in the loop
            yield x, y.to(self.device, non_blocking=self.pin)

    def _device_augment(self, x: Tensor, alpha: Tensor, i: int, share: tuple[int, slice]) -> Tensor:
        g = device_generator(self.device, "augment", self.config.seed, i)
        x = x.float()
        if not self.pixel_ops:
            x = self.train_norm(x)
        for k, op, p in self.device_ops:
            pixels = k < self.pixel_ops
            if op == "lighting":
                x = x + (255.0 * pca_rgb(alpha)[:, :, None, None] if pixels else self.train_norm.shift(pca_rgb(alpha)))
            elif op in POLICIES:
                x = POLICIES[op](x, p, g, share)
            else:
                x = random_erasing(x, p, g, share)
            if self.pixel_ops and k == self.pixel_ops - 1:
                x = self.train_norm(x)
        return x

    def eval_iter(self, split: str, batch_size: int | None = None) -> BatchStream:
        self._check_split(split)
        b = batch_size or self.config.batch_size
        if split == "train":
            dataset = _FolderImages(self.root, self.train_set.paths, self.train_set.labels, train=False, ops=[],
                                    views=self.eval_views, seed=self.config.seed, size=self.size,
                                    resize=self.config.eval_resize)
            loader = self._loader(dataset, persistent=False, batch_size=b)
        else:
            loader = self._eval_loaders.get((split, b))
            if loader is None:
                rank, world = self.config.shard
                dataset = self.val_set if world == 1 else \
                    torch.utils.data.Subset(self.val_set, range(rank, len(self.val_set), world))
                loader = self._eval_loaders[split, b] = self._loader(dataset, batch_size=b)
        return BatchStream(self._to_device_eval(iter(loader)))

    def _to_device_eval(self, batches: Iterator) -> Iterator[Batch]:
        for x, y in batches:
            x = x.to(self.device, non_blocking=self.pin)
            if self.eval_views == 10:
                x = x.reshape(-1, *x.shape[2:])
            yield self.norm(x), y.to(self.device, non_blocking=self.pin)

    def describe(self) -> str:
        c = self.config
        loader = (f"{c.workers} workers, prefetch 4{', pinned memory' if self.pin else ''}" if c.workers
                  else "decoding in the main process (workers 0)")
        return (f"imagenet_folder {self.root}: train {self.train_size} / val {len(self.val_set)} images, "
                f"{len(self.class_names)} class folders ({self.num_classes} classes), batch {c.batch_size} "
                f"({self.iters_per_epoch} iters/epoch{repeats_text(c)}), {_crops(self.train_shape, self.size)}; "
                f"{self.norm.text}; augment "
                f"{describe_ops(self.ops)}; eval {self.eval_views} view(s) of the {c.eval_resize}-pixel resize; "
                f"loader {loader}")


_CROPS = ("random_crop", "random_resized_crop")
_WORKER_OPS = ("random_resized_crop", "scale_jitter", "random_crop", "hflip")
_DEVICE_OPS = ("lighting", "rand_augment", "trivial_augment", "random_erasing")


def _check_folder_order(ops: list[Op]) -> None:
    """The crops and flips run in the loader workers, RandAugment / TrivialAugment / random erasing on the device
    after them: a worker op listed after a device op is refused (it would run before it)."""
    device = next(((k, op) for k, (op, _) in enumerate(ops) if op in _DEVICE_OPS and op != "lighting"), None)
    if device is None:
        return
    for k, (op, _) in enumerate(ops[device[0]:], device[0]):
        if op in _WORKER_OPS:
            raise DataError(f"augment op {op} (entry {k + 1}) comes after {device[1]} (entry {device[0] + 1}); "
                            f"for an image folder {op} runs while decoding, before the batched ops on the device: "
                            f"move it before")


def _crops(train_shape: tuple[int, ...], size: int) -> str:
    """The crops trained and evaluated, as the run log says them."""
    _, h, w = train_shape
    return f"3x{size}x{size} crops" if (h, w) == (size, size) else \
        f"3x{h}x{w} training crops, 3x{size}x{size} evaluated"


def _capped(paths: np.ndarray, labels: np.ndarray, cap: int | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    """At most `cap` of the images, a fixed subset (the same for every run)."""
    if cap is None or cap >= len(paths):
        return paths, labels
    if cap < 1:
        raise DataError(f"{split}_size must be at least 1 for an image folder, not {cap}")
    keep = fixed_subset(len(paths), cap, f"imagenet-{split}")
    return paths[keep], labels[keep]


def _shutdown(batches: Any) -> None:
    stop = getattr(batches, "_shutdown_workers", None)
    if stop is not None:
        stop()


