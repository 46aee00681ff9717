"""The data layer of `archspec train`: datasets, splits, normalisation, augmentation and resumable batch streams.

Three kinds of source, chosen by `DataConfig.name`:

* `cifar10`, `cifar100`: the python-pickle files of CIFAR-10 / CIFAR-100 (its 100 fine classes, or with
  `labels="coarse"` its 20 superclasses), read by an unpickler that rebuilds numpy arrays and nothing else (a file
  that would run code is refused, never executed), held in memory as uint8 on the training device; normalisation
  and augmentation run there on whole batches, vectorised.
* `imagenet_folder`: `<root>/train/<class>/*.JPEG` and `<root>/val/<class>/*.JPEG`, decoded and cropped by Pillow
  in DataLoader workers, which send uint8 crops; normalisation (and the lighting noise) run on the device.
* `synthetic`: random images generated on the device from the seed, for benchmarks and smoke tests.

Every stream is a pure function of the seed and the iteration: the order of epoch `e` is a permutation drawn from
a torch.Generator seeded by (seed, e), the augmentation of iteration `i` from one seeded by (seed, i) (of sample
`k` in epoch `e` by (seed, e, k) for image folders, so the worker count does not matter; with repeated
augmentation, `DataConfig.repeats` > 1, its copy `c` by (seed, e, k, c)). `train_iter(k)` thus
yields exactly what `train_iter(0)` yields from its k-th batch on: a run resumed after a crash continues the very
same stream. No global RNG (torch, numpy, random) is ever touched.

Pixel statistics are kept in 0..255 units; a model receives `(x - mean image) / 255` (per_pixel_mean),
`(x - channel mean) / channel std` (per_channel) or `x / 255` (none). Augmentations that pad (pad_crop) pad the
normalised image with `fill` (default 0, i.e. the mean). Errors are `DataError`s whose message is one line
naming the file or folder and the fix.
"""

from __future__ import annotations

# the public face: the interface and constants live in base.py, the sources in cifar, memory and folder
from archspec.runtime.data.base import (Batch, BatchStream, Data, DataConfig, DATASETS, FOLDER_OPS, IMAGE_SUFFIXES,
                                        IN_MEMORY_OPS, MEAN_IMAGES, NORMALIZATIONS, SYNTHETIC_VAL, checked_config)
from archspec.runtime.data.common import DataError

__all__ = ["BatchStream", "Data", "DataConfig", "DataError", "make_data"]


def make_data(config: DataConfig) -> Data:
    """The dataset `config` names, loaded (or indexed) and checked; DataError says what is wrong and the fix."""
    from archspec.runtime.data.cifar import load_cifar
    from archspec.runtime.data.folder import FolderData
    from archspec.runtime.data.memory import synthetic

    config = checked_config(config)
    if config.name == "imagenet_folder":
        import importlib.util

        if importlib.util.find_spec("PIL") is None:
            from archspec.lang import install_hint

            raise DataError(f"image folders are decoded with Pillow, which is not installed: {install_hint('train')}")
    if config.name in ("cifar10", "cifar100"):
        return load_cifar(config)
    if config.name == "synthetic":
        return synthetic(config)
    return FolderData(config)
