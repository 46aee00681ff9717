"""Images for `archspec predict`: PNG/JPEG files (Pillow) and CIFAR-10 batch files, resized and cropped as a
preprocessing record says, as raw pixels (uint8 C x H x W); the record's normalisation is applied by the caller.

Geometry, as evaluation does it: a record with `resize` (image folders, published weights) resizes the shorter side
to it (bilinear; JPEGs decoded at a reduced scale first where still larger, as the folder loader does) and takes
the centre crop of the input's size. A record without (CIFAR) takes images of the training images' size as they
are (centre-cropped to the input when it is smaller); an image of another size is resized the same way to the
training images' size, which is said on stderr. An image whose channels are not the network's (grayscale, an
alpha channel) is refused with the fix, not converted behind the user's back.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archspec.lang.errors import UserError
from archspec.runtime.preprocess import Preprocessing


class PredictError(UserError):
    """A model, record or image `archspec predict` cannot use; one line naming it and the fix (exit 2)."""

# Pillow modes by what they hold: colour images that convert to RGB without losing a channel, and the others
COLOUR = ("RGB", "YCbCr", "CMYK", "P")
CHANNELS = {"1": (1, "black and white"), "L": (1, "grayscale"), "I": (1, "grayscale, 32-bit"),
            "F": (1, "grayscale, floating point"), "LA": (2, "grayscale and transparency"),
            "La": (2, "grayscale and transparency"), "PA": (4, "colour and transparency"),
            "RGBA": (4, "colour and transparency"), "RGBa": (4, "colour and transparency")}


def check_images(paths: list[Path]) -> None:
    """Refuse a missing image (or a folder) before anything else is done."""
    for path in paths:
        if not path.exists():
            raise PredictError(f"no such image: {path}")
        if not path.is_file():
            raise PredictError(f"{path} is not a file: give PNG or JPEG files")


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        from archspec.lang import install_hint

        raise PredictError(f"archspec predict reads images with Pillow, which is not installed: "
                           f"{install_hint('train')}") from None
    return Image


def read_image(path: Path, pre: Preprocessing, model: str) -> tuple[torch.Tensor, str | None]:
    """The image at `path` as the network's raw input (uint8 C x H x W), and a note when it was resized to the
    training images' size."""
    Image = _pillow()
    try:
        with Image.open(path) as im:
            _check_channels(im, path, pre, model)
            if pre.resize is not None:  # as the folder loader decodes: a JPEG at a reduced scale where still larger
                w, h = im.size
                scale = pre.resize / min(w, h)
                if scale < 1:
                    im.draft("RGB", (math.ceil(w * scale), math.ceil(h * scale)))
            img = im.convert("RGB")
    except PredictError:
        raise
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds for a file that is not an image
        why = " ".join(str(e).split())[:100]
        raise PredictError(f"{path} is not an image Pillow can read ({type(e).__name__}: {why}); give a PNG or JPEG "
                           "file") from None
    return geometry(img, pre, str(path))


def _check_channels(im: Any, path: Path, pre: Preprocessing, model: str) -> None:
    want = pre.input[0]
    mode = im.mode
    if mode == "P" and "transparency" in im.info:
        mode = "PA"
    if want == 3 and mode in COLOUR:
        return
    count, what = CHANNELS.get(mode, (len(im.getbands()), f"mode {mode}"))
    fix = ("convert it to RGB (e.g. Image.open(f).convert('RGB').save(...))" if count < 3 else
           "save it without the alpha channel (e.g. Image.open(f).convert('RGB').save(...))")
    raise PredictError(f"{path} has {count} channel{'s' if count != 1 else ''} ({what}); {model} takes {want} "
                       f"(RGB): {fix}")


def geometry(img: Any, pre: Preprocessing, label: str) -> tuple[torch.Tensor, str | None]:
    """An RGB Pillow image resized and centre-cropped as `pre` says; the note says what was done to an image of
    another size than the training images'."""
    from PIL import Image

    _, h, w = pre.input
    note = None
    if pre.resize is not None:
        img = _resize_shorter(img, pre.resize, Image)
    else:
        size = pre.images or (h, w)
        if img.size != (size[1], size[0]):
            note = (f"{label} is {img.size[0]}x{img.size[1]}: resized (shorter side to {max(size)}, bilinear) and "
                    f"centre-cropped to {size[1]}x{size[0]}, the size of the training images")
            img = _crop(_resize_shorter(img, max(size), Image), size[0], size[1])
    if img.size[0] < w or img.size[1] < h:  # (a resize smaller than the crop: never recorded, but checked)
        img = _resize_shorter(img, max(h, w), Image)
    img = _crop(img, h, w)
    x = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).contiguous()
    return x, note


def _resize_shorter(img: Any, size: int, Image: Any) -> Any:
    """The shorter side to `size`, the other in proportion (as the folder loader and evaluation resize)."""
    w, h = img.size
    if min(w, h) == size:
        return img
    new = (size, max(1, round(h * size / w))) if w <= h else (max(1, round(w * size / h)), size)
    return img.resize(new, Image.Resampling.BILINEAR)


def _crop(img: Any, h: int, w: int) -> Any:
    """The centre h x w crop (the same offsets as the data loaders' centre crops)."""
    iw, ih = img.size
    left, top = (iw - w) // 2, (ih - h) // 2
    return img.crop((left, top, left + w, top + h))


def cifar_images(path: Path, indices: list[int], pre: Preprocessing,
                 model: str) -> list[tuple[str, torch.Tensor, int | None]]:
    """Images of a CIFAR-10 batch file (read by the data loader's safe reader) by index, with their labels."""
    from archspec.runtime.data.cifar import _read_batch
    from archspec.runtime.data.common import DataError

    try:
        images, labels = _read_batch(path)
    except DataError as e:
        raise PredictError(str(e)) from None
    if pre.input[0] != 3:
        raise PredictError(f"{path} holds RGB images; {model} takes {pre.input[0]} channels")
    out = []
    for i in indices:
        if not 0 <= i < len(images):
            raise PredictError(f"--index {i} is not an image of {path}: it holds {len(images)} (0..{len(images) - 1})")
        img = _pillow().fromarray(np.ascontiguousarray(images[i].transpose(1, 2, 0)))
        x, note = geometry(img, pre, f"{path}[{i}]")
        out.append((f"{path}[{i}]", x, int(labels[i])))
    return out
