"""The data layer's shared interface: `DataConfig` (what a source is asked for) and its checks, the `Data` every
source implements, `BatchStream`, and the constants the sources share. The sources (cifar, memory, folder) import
it; `archspec.runtime.data` re-exports what callers use."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import Tensor

from archspec.lang.recipe_fields import field_at
from archspec.runtime.data.common import DataError, why, worker_message
from archspec.runtime.options import DATASETS  # declared with the flags that name them

NORMALIZATIONS = field_at("dataset.normalize").choices  # declared with the recipe
EVAL_VIEWS = field_at("eval.views").choices
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
MEAN_IMAGES = 2000          # train images that estimate an image folder's pixel statistics
SYNTHETIC_VAL = 256         # images in the synthetic "val" split

IN_MEMORY_OPS = ("pad_crop", "random_crop", "random_resized_crop", "hflip", "lighting", "rand_augment",
                 "trivial_augment", "random_erasing")
FOLDER_OPS = ("random_resized_crop", "scale_jitter", "random_crop", "hflip", "lighting", "rand_augment",
              "trivial_augment", "random_erasing")
LABEL_SETS = ("fine", "coarse")  # CIFAR-100's: its 100 classes, or their 20 superclasses

Batch = tuple[Tensor, Tensor]


@dataclass
class DataConfig:
    """What `make_data` needs; built by the trainer from the recipe and the command line."""

    name: str                     # "cifar10" | "cifar100" | "imagenet_folder" | "synthetic"
    root: Path | None             # --data-dir
    batch_size: int
    seed: int
    device: torch.device
    train_size: int | None = None  # cifar: images used for training (default 45000 of 50000); folders: a cap
    val_size: int | None = None    # cifar: held-out "val" images of the 50000 (default 5000); folders: a cap
    normalize: str = "per_pixel_mean"  # "per_pixel_mean" | "per_channel" | "none" | "imagenet" | "inception"
    augment: list[dict] = field(default_factory=list)  # recipe entries, e.g. {"op": "pad_crop", "pad": 4}
    image_size: int | None = None  # synthetic / imagenet crop size
    classes: int | None = None     # number of classes; at least the number the data holds
    eval_views: int = 1            # 1 = single view; 10 = 4 corners + centre and their flips
    eval_resize: int = 256         # imagenet eval: shorter side resized to this, then centre crop `image_size`
    workers: int = 4               # imagenet DataLoader workers
    download: bool = False         # cifar10 / cifar100: fetch it if absent (checksum verified)
    synthetic_size: int = 1024     # synthetic: number of distinct training images
    shard: tuple[int, int] = (0, 1)  # (rank, world size): this process's share of every global batch
    channels_last: bool = False    # training batches come laid out channels_last (what the model runs in)
    labels: str | None = None      # cifar100 only: None or "fine" (100 classes), "coarse" (20 superclasses)
    repeats: int = 1               # repeated augmentation: each drawn image comes this many times an epoch


# ----------------------------------------------------------------------------------------------------------------
# Streams and the common interface


class BatchStream(Iterator[Batch]):
    """An iterator of (x, y) batches that counts how long its consumer waited for them.

    `wait_seconds()` is the total time spent inside `next()`: for image folders the time the training loop stood
    idle waiting for decoded batches (a large share of the step time means the input pipeline is the
    bottleneck: add workers); for in-memory sources only the cost of launching the indexing and augmentation.
    """

    def __init__(self, batches: Iterator[Batch], on_close: Callable[[], None] | None = None) -> None:
        self._batches = batches
        self._waited = 0.0
        self._on_close = on_close

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> Batch:
        start = time.perf_counter()
        try:
            return next(self._batches)
        except DataError as e:
            if "\n" in str(e):  # raised in a DataLoader worker: torch wraps the message in a traceback
                raise DataError(worker_message(str(e))) from None
            raise
        finally:
            self._waited += time.perf_counter() - start

    def wait_seconds(self) -> float:
        return self._waited

    def close(self) -> None:
        """Stop the stream now (and its worker processes, if it has its own)."""
        self._batches = iter(())
        if self._on_close is not None:
            self._on_close()
            self._on_close = None


class Data:
    """A dataset ready for training: sizes, a resumable augmented train stream, eval streams, a log line.

    Every tensor a stream yields is on `config.device`: x float32 (B, C, H, W) normalised (and, for training,
    augmented), y int64 (B,).

    With `eval_views == 10`, `eval_iter` yields x of shape (B * 10, C, H, W), sample-major (rows 10*b .. 10*b + 9
    are the ten views of sample b: top-left, top-right, bottom-left, bottom-right, centre, then the same five
    flipped horizontally) and y of shape (B,): the trainer reshapes the logits to (B, 10, classes), takes the
    softmax and averages over the 10 views before scoring.
    """

    num_classes: int
    input_shape: tuple[int, int, int]
    train_size: int
    iters_per_epoch: int
    splits: tuple[str, ...]
    eval_views: int
    class_names: list[str] | None = None  # by label, where the dataset names them (CIFAR's meta file, folders)

    @property
    def train_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of training batches: `input_shape` (what evaluation gives) unless a folder's training crop
        differs from its evaluation crop (FixRes)."""
        return getattr(self, "_train_shape", None) or self.input_shape

    def train_iter(self, start: int = 0) -> BatchStream:
        """Batches of iterations start, start + 1, ... forever (epoch = iteration // iters_per_epoch)."""
        raise NotImplementedError

    def eval_iter(self, split: str, batch_size: int | None = None) -> BatchStream:
        """One pass over `split` in order, no augmentation, the last batch possibly smaller.

        `split` is one of `splits`, or "train": the training images as evaluation sees them (training error).
        """
        raise NotImplementedError

    def describe(self) -> str:
        """One line for the run log: sizes, normalisation, augmentation, loader."""
        raise NotImplementedError

    def _check_split(self, split: str) -> None:
        if split not in self.splits and split != "train":
            raise DataError(f"no {split!r} split in this dataset; it has {', '.join(self.splits)}")


def checked_config(config: DataConfig) -> DataConfig:
    """`config` with its values checked, the device a torch.device and the root a Path."""
    if config.name not in DATASETS:
        raise DataError(f"unknown dataset {config.name!r}; use one of {', '.join(DATASETS)}")
    if config.normalize not in NORMALIZATIONS:
        raise DataError(f"unknown normalize {config.normalize!r}; use one of {', '.join(NORMALIZATIONS)}")
    for name in ("batch_size", "synthetic_size", "eval_resize", "repeats"):
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise DataError(f"{name} must be a positive integer, not {value!r}")
    for name in ("image_size", "classes", "train_size", "val_size"):
        value = getattr(config, name)
        low = 0 if name == "val_size" else 1
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
            raise DataError(f"{name} must be an integer >= {low}, not {value!r}")
    rank, world = config.shard
    if not (isinstance(world, int) and world >= 1 and isinstance(rank, int) and 0 <= rank < world):
        raise DataError(f"bad shard {config.shard!r}: expected (rank, world size) with 0 <= rank < world size")
    if config.batch_size % world:
        raise DataError(f"the global batch of {config.batch_size} does not split evenly over {world} processes; "
                        f"use a batch size divisible by {world}")
    if config.labels is not None:
        if config.name != "cifar100":
            raise DataError(f"labels {config.labels!r} picks one of CIFAR-100's two label sets; {config.name} has "
                            f"one: remove dataset.labels")
        if config.labels not in LABEL_SETS:
            raise DataError(f"unknown labels {config.labels!r} for cifar100; use {' or '.join(LABEL_SETS)}")
    if config.eval_views not in EVAL_VIEWS:
        raise DataError(f"eval views must be {' or '.join(map(str, EVAL_VIEWS))} (ten-crop), not "
                        f"{config.eval_views!r}")
    if not isinstance(config.workers, int) or config.workers < 0:
        raise DataError(f"workers must be an integer >= 0, not {config.workers!r}")
    try:
        device = torch.device(config.device)
    except (RuntimeError, TypeError) as e:
        raise DataError(f"bad device {config.device!r}: {why(e)}") from None
    root = Path(config.root).expanduser() if config.root is not None else None
    return DataConfig(**{**config.__dict__, "device": device, "root": root})




def check_start(start: int) -> int:
    """`start` if it is an iteration (an int >= 0) a train stream can begin at."""
    if not isinstance(start, int) or start < 0:
        raise DataError(f"train_iter start must be an iteration >= 0, not {start!r}")
    return start


def class_count(config: DataConfig, natural: int, where: str) -> int:
    """The number of classes (model outputs): `config.classes` if given (at least the `natural` count of the data
    at `where`), else the natural count."""
    if config.classes is None:
        return natural
    if config.classes < natural:
        raise DataError(f"{where} has {natural} classes but classes (the network's outputs) is {config.classes}; "
                        f"set it to at least {natural} (a spec's outputs: e.g. --set num_classes={natural})")
    return config.classes


def repeats_text(config: DataConfig) -> str:
    """The describe() words for repeated augmentation ("" without it)."""
    r = config.repeats
    return f", repeated augmentation: each image {r} times an epoch" if r > 1 else ""


def batch_positions(pos: int, batch_size: int, repeats: int) -> tuple[Tensor, Tensor]:
    """Where the rows of batch `pos` of an epoch come from: (slot, copy), both (batch_size,) int64 CPU tensors.

    The sample at row j is the `copy[j]`-th copy of the epoch's `slot[j]`-th image (an index into the epoch's
    permutation). Repeated augmentation (timm's RepeatAugSampler) repeats every image of the permutation
    `repeats` times in a row and cuts that list into batches: the epoch keeps its length, so it holds about
    train_size / repeats images. Within a batch the rows are sorted by copy (every image's copy 0, then every
    copy 1, ...), so the copies of an image are about batch_size / repeats rows apart: the contiguous slices of
    the global batch that the processes of a distributed run take (`DataConfig.shard`) hold different copies of
    an image whenever there are at least `repeats` processes, while the global batch, and thus everything drawn
    for it, stays the same for any number of processes. repeats 1: (pos * batch_size + j, 0), the plain order.
    """
    p = torch.arange(pos * batch_size, (pos + 1) * batch_size, dtype=torch.int64)
    if repeats == 1:
        return p, torch.zeros_like(p)
    copy = p % repeats
    p = p[torch.sort(copy, stable=True).indices]
    return p // repeats, p % repeats
