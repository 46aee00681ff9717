"""What a model's inputs must be: the preprocessing record, declared once, that travels with the model.

A network trained by archspec expects its images prepared exactly as training prepared them (CIFAR-10: the RGB
pixels minus the per-pixel mean of the training split, divided by 255; an image folder: the shorter side resized,
a centre crop, then its mean and std). `Preprocessing` says so in one record, written

- into every checkpoint (last.pt, best.pt) under `preprocessing`, tensors as tensors (`stored()`; checked after
  the checksum like every other field, `problem()`),
- into the run folder as `preprocessing.json` (`as_json()`: the mean image as base64 float32 bytes, exact),
- into exports (ONNX metadata_props, TorchScript and torch.export extra files: the JSON form under
  `archspec.preprocessing`), and applied inside an export made `--with-preprocessing` (`PixelInput`).

The record (JSON form; the checkpoint's has tensors where this has `mean` and `scale` encoded):

    format "archspec-preprocessing", version 1
    input       [C, H, W]   what the network takes (layout NCHW, channels RGB)
    pixels      "0..255"    the scale of the raw pixels `mean` is in (uint8 values, as float or uint8)
    images      [H, W] | null   the size of the training images where it is fixed (CIFAR: 32x32); null when
                                they are resized (image folders)
    resize      int | null  evaluation resizes the shorter side to this (bilinear), then ...
    crop        [H, W]      ... takes the centre crop of the input's size (always the input's H, W)
    normalize   per_pixel_mean | per_channel | imagenet | inception | none   (the recipe's dataset.normalize)
    mean        C numbers, or {"shape": [C, h, w], "dtype": "float32", "base64": ...} (a mean image, h, w >= H, W:
                its centre crop of the input's size is used)
    scale       C numbers
    mean_01, std_01   the same per channel on [0, 1] pixels, as torchvision and timm write them (for people)
    classes     the class names by output index, where known (CIFAR-10's batches.meta, an image folder's class
                folders, ImageNet's where torchvision or timm is installed), else null
    num_classes, source (how the statistics were taken, in words)

The network's input is `(x - mean) * scale` with x the raw RGB pixels (0..255) of the centre crop, in float32:
the very operations the data loaders apply (`runtime.data.common.Normalizer`), so a prediction from a saved image
equals what evaluation computed.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from archspec.lang.errors import UserError

FORMAT = "archspec-preprocessing"
VERSION = 1
FILE = "preprocessing.json"   # in a run folder
METADATA_KEY = "archspec.preprocessing"   # in exports (ONNX metadata_props; extra files add ".json")
KINDS = ("per_pixel_mean", "per_channel", "imagenet", "inception", "none")
FORMULA = "(x - mean) * scale; x the RGB pixels (0..255, float32) of the centre crop, NCHW"


class PreprocessingError(UserError):
    """A preprocessing record that is missing, damaged or does not fit; one line naming the file and the fix."""


@dataclass(frozen=True)
class Preprocessing:
    input: tuple[int, int, int]          # C, H, W
    normalize: str                       # one of KINDS
    mean: Tensor                         # float32 (C, 1, 1) or (C, h, w), 0..255 units
    scale: Tensor                        # float32 (C, 1, 1)
    resize: int | None = None            # shorter side before the centre crop (None: images used as they are)
    images: tuple[int, int] | None = None  # the training images' size where fixed (CIFAR)
    classes: tuple[str, ...] | None = None
    num_classes: int | None = None
    source: str = ""

    # -- applying it ------------------------------------------------------------------------------------------

    def mean_at(self, h: int, w: int) -> Tensor:
        """The mean for an (h, w) input: per channel as it is, a mean image's centre crop."""
        mh, mw = self.mean.shape[-2:]
        if (mh, mw) == (1, 1) or (mh, mw) == (h, w):
            return self.mean
        if mh < h or mw < w:
            raise PreprocessingError(f"the recorded mean image is {mh}x{mw}, smaller than the {h}x{w} input: the "
                                     f"model takes {self.input[1]}x{self.input[2]} images")
        top, left = (mh - h) // 2, (mw - w) // 2
        return self.mean[:, top:top + h, left:left + w].contiguous()

    def normalise(self, x: Tensor) -> Tensor:
        """(N, C, H, W) raw pixels (uint8 or float, 0..255) -> the network's input."""
        return (x.float() - self.mean_at(*x.shape[-2:]).to(x.device)) * self.scale.to(x.device)

    # -- for people -------------------------------------------------------------------------------------------

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Mean and std per channel on [0, 1] pixels (a mean image averaged over its pixels)."""
        mean = (self.mean.double().mean(dim=(1, 2)) / 255).tolist()
        std = (1 / (self.scale.double().view(-1) * 255)).tolist()
        return [round(v, 6) for v in mean], [round(v, 6) for v in std]

    def describe(self) -> str:
        c, h, w = self.input
        size = (f"shorter side resized to {self.resize}, centre {h}x{w} crop" if self.resize is not None else
                f"{h}x{w}" + (f" (centre crop of the {self.images[0]}x{self.images[1]} images)"
                              if self.images and tuple(self.images) != (h, w) else ""))
        mean, std = self.channel_stats()
        what = {"per_pixel_mean": f"minus the per-pixel mean image ({'x'.join(map(str, self.mean.shape))}), / 255",
                "none": "/ 255"}.get(self.normalize, f"mean {_short(mean)}, std {_short(std)} (on [0,1] pixels)")
        return f"RGB {size}, {what}"

    # -- forms --------------------------------------------------------------------------------------------------

    def _fields(self) -> dict[str, Any]:
        mean, std = self.channel_stats()
        return {"format": FORMAT, "version": VERSION, "input": list(self.input), "layout": "NCHW",
                "channels": "RGB", "pixels": "0..255", "images": list(self.images) if self.images else None,
                "resize": self.resize, "interpolation": "bilinear", "crop": list(self.input[1:]),
                "normalize": self.normalize, "mean_01": mean, "std_01": std, "formula": FORMULA,
                "classes": list(self.classes) if self.classes is not None else None,
                "num_classes": self.num_classes, "source": self.source}

    def stored(self) -> dict[str, Any]:
        """The checkpoint's form: plain values and two float32 tensors."""
        return {**self._fields(), "mean": self.mean.detach().cpu().float().clone(),
                "scale": self.scale.detach().cpu().float().clone()}

    def as_json(self) -> dict[str, Any]:
        """The JSON form (run folder, export metadata): exact, the mean image as base64 float32 bytes."""
        return {**self._fields(), "mean": _tensor_json(self.mean), "scale": _tensor_json(self.scale)}

    def to_text(self) -> str:
        """The JSON form, a field per line."""
        fields = self.as_json()
        return "{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in fields.items()) + "\n}\n"

    def write(self, path: Path) -> None:
        from archspec.lang.files import write_text

        write_text(path, self.to_text())


def _short(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.3g}" for v in values) + ")"


def _tensor_json(t: Tensor) -> Any:
    t = t.detach().cpu().float().contiguous()
    if tuple(t.shape[1:]) == (1, 1):
        return [float(v) for v in t.view(-1).tolist()]  # float32 -> float64 -> text is exact both ways
    data = t.numpy().astype("<f4").tobytes()
    return {"shape": list(t.shape), "dtype": "float32", "base64": base64.b64encode(data).decode("ascii")}


def _tensor_of_json(value: Any) -> Tensor | None:
    import numpy as np

    if isinstance(value, list) and value and all(_number(v) for v in value):
        return torch.tensor([float(v) for v in value], dtype=torch.float32).view(-1, 1, 1)
    if not isinstance(value, dict) or value.get("dtype") != "float32" or not isinstance(value.get("base64"), str):
        return None
    shape = value.get("shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(_count(n) for n in shape)):
        return None
    try:
        raw = base64.b64decode(value["base64"], validate=True)
    except ValueError:
        return None
    if len(raw) != 4 * math.prod(shape):
        return None
    return torch.from_numpy(np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape).copy())


# -- reading and checking ---------------------------------------------------------------------------------------

def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def problem(d: Any, tensors: bool = True) -> str | None:
    """What is wrong with a stored record (`tensors`: the checkpoint's form, else the JSON form), or None."""
    if not isinstance(d, dict):
        return "not a mapping"
    if d.get("format") != FORMAT:
        return f"its format is {d.get('format')!r}, not {FORMAT!r}"
    if d.get("version") != VERSION:
        return f"it is version {d.get('version')!r}; this archspec reads version {VERSION}"
    shape = d.get("input")
    if not (isinstance(shape, list) and len(shape) == 3 and all(_count(n) for n in shape)):
        return "`input` is not [C, H, W]"
    for key, want in (("layout", "NCHW"), ("channels", "RGB"), ("pixels", "0..255")):
        if d.get(key, want) != want:
            return f"`{key}` is {d.get(key)!r}, not {want!r}"
    images = d.get("images")
    if images is not None and not (isinstance(images, list) and len(images) == 2 and all(_count(n) for n in images)):
        return "`images` is not [H, W] or null"
    if d.get("resize") is not None and not _count(d.get("resize")):
        return "`resize` is not a whole number or null"
    if d.get("normalize") not in KINDS:
        return f"`normalize` is {d.get('normalize')!r}, not one of {', '.join(KINDS)}"
    mean, scale = (d.get(k) for k in ("mean", "scale"))
    if not tensors:
        mean, scale = _tensor_of_json(mean), _tensor_of_json(scale)
    c = shape[0]
    for key, t in (("mean", mean), ("scale", scale)):
        if not isinstance(t, Tensor) or t.dtype != torch.float32 or t.dim() != 3 or t.shape[0] != c:
            return f"`{key}` is not {c} float32 values per channel or pixel"
        if not bool(torch.isfinite(t).all()):
            return f"`{key}` holds a NaN or an infinity"
    if tuple(scale.shape[1:]) != (1, 1) or not bool((scale > 0).all()):
        return "`scale` is not one positive number per channel"
    if tuple(mean.shape[1:]) != (1, 1) and (mean.shape[1] < shape[1] or mean.shape[2] < shape[2]):
        return f"the mean image is {mean.shape[1]}x{mean.shape[2]}, smaller than the {shape[1]}x{shape[2]} input"
    classes, n = d.get("classes"), d.get("num_classes")
    if n is not None and not _count(n):
        return "`num_classes` is not a whole number or null"
    if classes is not None and not (isinstance(classes, list) and all(isinstance(s, str) for s in classes)
                                    and (n is None or len(classes) <= n)):
        return "`classes` is not a list of names (at most one per output)"
    if not isinstance(d.get("source", ""), str):
        return "`source` is not text"
    return None


def of_stored(d: Any, where: str, tensors: bool = True) -> Preprocessing:
    """The record read from a checkpoint (`tensors`) or a JSON file; PreprocessingError naming `where` if damaged."""
    why = problem(d, tensors)
    if why is not None:
        raise PreprocessingError(f"{where}: its preprocessing record is damaged ({why}); use the run's own "
                                 f"best.pt, last.pt or {FILE}")
    mean, scale = (d["mean"], d["scale"]) if tensors else (_tensor_of_json(d["mean"]), _tensor_of_json(d["scale"]))
    return Preprocessing(input=tuple(d["input"]), normalize=d["normalize"], mean=mean, scale=scale,
                         resize=d.get("resize"), images=tuple(d["images"]) if d.get("images") else None,
                         classes=tuple(d["classes"]) if d.get("classes") is not None else None,
                         num_classes=d.get("num_classes"), source=d.get("source", ""))


def of_text(text: str, where: str) -> Preprocessing:
    from archspec.lang.files import load_json

    try:
        data = load_json(text)
    except ValueError as e:
        raise PreprocessingError(f"{where} is not valid JSON ({str(e).splitlines()[0][:80]}); restore it, or "
                                 "write it again from the run's checkpoint") from None
    return of_stored(data, where, tensors=False)


def read(path: Path) -> Preprocessing:
    """A run folder's preprocessing.json (or any file of the JSON form)."""
    from archspec.lang.files import read_regular

    try:
        text = read_regular(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PreprocessingError(f"cannot read {path} ({type(e).__name__}); restore it from the run's "
                                 "checkpoint") from None
    return of_text(text, str(path))


# -- where records come from --------------------------------------------------------------------------------------

def from_data(data: Any) -> Preprocessing:
    """The record of a training run's data source (`runtime.data.make_data`): its normaliser, sizes, classes."""
    config, norm = data.config, data.norm
    folder = config.name == "imagenet_folder"
    pool = getattr(data, "pool", None)
    names = getattr(data, "class_names", None)
    return Preprocessing(input=tuple(int(n) for n in data.input_shape), normalize=config.normalize,
                         mean=norm.mean.detach().float().cpu().clone(), scale=norm.scale.detach().float().cpu().clone(),
                         resize=config.eval_resize if folder else None,
                         images=tuple(int(n) for n in pool.shape[-2:]) if pool is not None and not folder else None,
                         classes=tuple(names) if names else None, num_classes=int(data.num_classes),
                         source=f"{config.name}: {norm.text}")


def from_published(record: Any, channels: int, num_classes: int) -> Preprocessing:
    """The inputs published weights (`runtime.published.Published`) expect: their fixed mean and std, resize and
    crop; ImageNet's class names where an installed torchvision or timm has them (never downloaded)."""
    from archspec.runtime.data.common import normalizer

    norm = normalizer(record.normalize, None, None, 0, torch.device("cpu"), "train")
    names = imagenet_names() if num_classes == 1000 else None
    return Preprocessing(input=(channels, record.crop, record.crop), normalize=record.normalize,
                         mean=norm.mean.float(), scale=norm.scale.float(), resize=record.resize,
                         classes=tuple(names) if names else None, num_classes=num_classes,
                         source=f"the published {record.origin} weights: {norm.text}")


def imagenet_names() -> list[str] | None:
    """ImageNet-1k's class names from an installed torchvision (or timm); None when neither is installed."""
    import importlib.util

    if importlib.util.find_spec("torchvision") is not None:
        try:
            from torchvision.models._meta import _IMAGENET_CATEGORIES

            if len(_IMAGENET_CATEGORIES) == 1000:
                return list(_IMAGENET_CATEGORIES)
        except Exception:  # noqa: BLE001 - a broken or other torchvision: no names
            pass
    if importlib.util.find_spec("timm") is not None:
        try:
            from timm.data import ImageNetInfo

            info = ImageNetInfo()
            return [info.index_to_description(i) for i in range(1000)]
        except Exception:  # noqa: BLE001
            pass
    return None


# -- exports ------------------------------------------------------------------------------------------------------

class PixelInput(nn.Module):
    """`model` behind its normalisation: takes the raw pixels (N, C, H, W; 0..255, float32 or uint8) of the
    centre crop and computes `model((x - mean) * scale)`."""

    def __init__(self, model: nn.Module, pre: Preprocessing) -> None:
        super().__init__()
        self.model = model
        c, h, w = pre.input
        self.register_buffer("mean", pre.mean_at(h, w).detach().float().clone()[None])
        self.register_buffer("scale", pre.scale.detach().float().clone()[None])

    def forward(self, x: Tensor) -> Tensor:
        return self.model((x.float() - self.mean) * self.scale)


def export_metadata(pre: Preprocessing | None, applied: bool) -> dict[str, str]:
    """What an export records about its inputs (ONNX metadata_props, TorchScript/torch.export extra files)."""
    if pre is None:
        return {"archspec.input": "the network's input, normalised (the preprocessing is not known)"}
    what = ("raw RGB pixels 0..255 (float32), NCHW, of the centre crop: the normalisation is inside" if applied
            else f"normalised: {FORMULA} (see {METADATA_KEY})")
    return {"archspec.input": what, METADATA_KEY: json.dumps(pre.as_json())}
