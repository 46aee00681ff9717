"""The device and the data a run or an evaluation uses: the device asked for (or the best there is), the data
source's configuration from the recipe, and the check that the data fits the network. Failures are RunErrors.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.runtime.request import RunError

if TYPE_CHECKING:  # (types only: no import at run time)
    from archspec.runtime.recipe import Recipe


def pick_device(name: str | None) -> Any:
    """The torch device `name` (cuda if there is one, else cpu, when None); RunError if it cannot be used."""
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise RunError(f"unknown device {name!r}: use cpu or cuda") from None
    if device.type not in ("cpu", "cuda"):
        raise RunError(f"device {name!r} is not supported: use cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RunError("CUDA is not available on this machine: use --device cpu")
    return device


def data_config(recipe: Recipe, input_shape: tuple[int, ...], data_dir: Path | None, device: Any, seed: int,
                outputs: int, workers: int = 4, download: bool = False) -> Any:
    """The data source's configuration. The model's output count is the number of classes: a folder with
    fewer classes fits it (labels index the outputs), one with more does not."""
    from archspec.runtime.data import DataConfig

    ds, ev = recipe.dataset, recipe.eval
    crop = next((a.get("size") for a in recipe.augment if a.get("op") == "random_crop"), None)
    return DataConfig(
        name=ds.name, root=data_dir, batch_size=recipe.batch_size, seed=seed, device=device,
        train_size=ds.train_size, val_size=ds.val_size, normalize=ds.normalize, augment=list(recipe.augment),
        image_size=ev.crop or crop or input_shape[-1], classes=outputs, eval_views=ev.views,
        eval_resize=ev.resize, workers=workers, download=download, labels=ds.labels,
        repeats=recipe.repeated_augment)


def check_fit(name: str, input_shape: tuple[int, ...], outputs: int, data: Any, batch_size: int | None = None
              ) -> None:
    """RunError if the data's images or classes do not fit the network `name` (with the flag that fixes it), or
    a training batch (`batch_size`, when given) is larger than the training set."""
    if batch_size is not None and batch_size > data.train_size:
        raise RunError(f"the batch of {batch_size:,} images is larger than the training set ({data.train_size:,} "
                       f"images): lower --batch-size (at most {data.train_size:,})")
    if tuple(data.input_shape) != tuple(input_shape):
        shape = "x".join(map(str, data.input_shape))
        raise RunError(f"the data gives {shape} images but {name} takes {'x'.join(map(str, input_shape))}: "
                       f"add --input {shape}")
    if outputs != data.num_classes:
        raise RunError(f"{name} has {outputs} outputs but the dataset has {data.num_classes} classes: "
                       f"add --set num_classes={data.num_classes} (or the spec's equivalent)")


def open_data(config: Any) -> Any:
    """The data source `config` names; a DataError is a RunError."""
    from archspec.runtime.data import DataError, make_data

    try:
        return make_data(config)
    except DataError as e:
        raise RunError(str(e)) from None
