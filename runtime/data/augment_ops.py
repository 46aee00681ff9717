"""Batched augmentation on the device: RandAugment (timm's arithmetic), TrivialAugmentWide (torchvision's),
random erasing (timm's) and random resized crops (torchvision's box rule), for a whole batch at once.

Pixels are float 0..255 for the policies (RandAugment, TrivialAugment); every op rounds or truncates and clamps
its result as the same op on a uint8 image does (blends truncate, resampling rounds), so a batch stays on the
uint8 grid and equals what the per-image uint8 pipelines make. Random erasing works on normalised values.

All randomness comes from the torch.Generator passed in, drawn for the whole global batch (`share`: its size and
the rows that are this process's images, as `memory._pad_crop` does): a process augments only its own rows yet gets
exactly what one process alone would. Rows are grouped by the op they drew (one kernel per op kind, per-row
magnitudes); there is no Python loop over images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

Share = tuple[int, slice]

RAND_FILL = (124.0, 116.0, 104.0)  # timm's img_mean: the ImageNet mean pixel, what RandAugment fills with

# timm's RandAugment op sets ("inc1" is the increasing-severity one); the names are timm's
RAND_OPS_INCREASING = ("AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
                       "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
                       "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
RAND_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
            "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
# torchvision's TrivialAugmentWide ops, in its order (the draw picks an index into this)
TRIVIAL_OPS = ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color",
               "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize")
TRIVIAL_SIGNED = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast",
                  "Sharpness")
GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "TranslateXRel", "TranslateYRel", "Rotate")


def _uniform(shape: tuple[int, ...], g: torch.Generator, device: torch.device, rows: slice) -> Tensor:
    return torch.rand(shape, generator=g, device=device)[rows]


def _col(v: Tensor) -> Tensor:
    return v.view(-1, 1, 1, 1)


# ----------------------------------------------------------------------------------------------------------------
# Colour ops on float pixels 0..255 (n, C, H, W) with per-row factors (n,)


def gray(x: Tensor) -> Tensor:
    """(n, 1, H, W) luma of RGB pixels (ITU-R 601-2, torchvision's weights)."""
    return x[:, 0:1] * 0.2989 + x[:, 1:2] * 0.587 + x[:, 2:3] * 0.114


def blend(a: Tensor, b: Tensor, f: Tensor) -> Tensor:
    """a * f + b * (1 - f), clamped to 0..255 and truncated (as a uint8 blend is)."""
    f = _col(f)
    return (a * f + b * (1 - f)).clamp_(0, 255).floor_()


def brightness(x: Tensor, f: Tensor) -> Tensor:
    return (x * _col(f)).clamp_(0, 255).floor_()


def saturation(x: Tensor, f: Tensor) -> Tensor:
    return blend(x, gray(x).floor_(), f)


def contrast(x: Tensor, f: Tensor) -> Tensor:
    return blend(x, gray(x).floor_().mean(dim=(1, 2, 3), keepdim=True), f)


def sharpness(x: Tensor, f: Tensor) -> Tensor:
    """Blend with the 3x3 smoothing (1s around a 5, / 13) of each image; the border pixels stay."""
    if x.shape[-1] <= 2 or x.shape[-2] <= 2:
        return x
    rows = x[..., :, :-2] + x[..., :, 1:-1] + x[..., :, 2:]  # the 3x3 box sum by shifted adds (a grouped conv2d is
    box = rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]  # several times slower on CPUs)
    smooth = ((box + 4 * x[..., 1:-1, 1:-1]) / 13.0).round_()
    out = x.clone()
    out[..., 1:-1, 1:-1] = blend(x[..., 1:-1, 1:-1], smooth, f)
    return out


def posterize(x: Tensor, bits: Tensor) -> Tensor:
    """Keep the top `bits` (0..8, per row) bits of each (integral) pixel."""
    step = _col(torch.exp2(8 - bits.to(x.dtype)))
    return torch.div(x, step, rounding_mode="floor") * step


def solarize(x: Tensor, threshold: Tensor) -> Tensor:
    """Pixels >= threshold (per row) inverted."""
    return torch.where(x >= _col(threshold), 255 - x, x)


def solarize_add(x: Tensor, add: Tensor, threshold: float = 128) -> Tensor:
    """`add` (per row) added to pixels below `threshold`, capped at 255 (timm's SolarizeAdd)."""
    return torch.where(x < threshold, (x + _col(add)).clamp_(max=255), x)


def invert(x: Tensor) -> Tensor:
    return 255 - x


def autocontrast(x: Tensor) -> Tensor:
    """Each channel of each image stretched to 0..255 (unchanged where it is flat)."""
    low = x.amin(dim=(-2, -1), keepdim=True)
    high = x.amax(dim=(-2, -1), keepdim=True)
    flat = high == low
    inv_scale = torch.where(flat, torch.ones_like(high), (high - low) / 255.0)
    low = torch.where(flat, torch.zeros_like(low), low)
    return ((x - low) / inv_scale).clamp_(0, 255).floor_()


def equalize(x: Tensor) -> Tensor:
    """Histogram equalisation of each channel of each image (PIL's rule), from per-row per-channel histograms."""
    n, c, h, w = x.shape
    flat = x.reshape(n * c, h * w).long().clamp_(0, 255)
    hist = torch.zeros(n * c, 256, dtype=torch.int64, device=x.device)
    hist.scatter_add_(1, flat, torch.ones_like(flat))
    cum = hist.cumsum(1)
    last = cum.argmax(1, keepdim=True)  # the last value that occurs: its pixels are left out of the step
    step = torch.div(h * w - hist.gather(1, last), 255, rounding_mode="floor")
    lut = torch.div(cum[:, :-1] + step // 2, step.clamp(min=1), rounding_mode="floor").clamp_(0, 255)
    lut = torch.cat([torch.zeros_like(lut[:, :1]), lut], dim=1)
    out = lut.gather(1, flat).to(x.dtype)
    return torch.where(step != 0, out, flat.to(x.dtype)).view(n, c, h, w)


# ----------------------------------------------------------------------------------------------------------------
# Geometric ops: one affine resampling for every row that drew one


def affine(x: Tensor, matrix: Tensor, fill: Tensor, mode: str) -> Tensor:
    """Each image resampled through its (n, 2, 3) matrix, which maps output pixel coordinates to input ones (origin
    at the image centre, pixel centres at half-integers, y down); outside points take `fill` ((C,) pixels)."""
    n, c, h, w = x.shape
    theta = matrix.clone()
    theta[:, 0, 1] *= h / w
    theta[:, 1, 0] *= w / h
    theta[:, 0, 2] *= 2 / w
    theta[:, 1, 2] *= 2 / h
    grid = F.affine_grid(theta.to(x.dtype), [n, c, h, w], align_corners=False)
    fill = fill.view(1, c, 1, 1).to(x.dtype)
    out = F.grid_sample(x - fill, grid, mode=mode, padding_mode="zeros", align_corners=False) + fill
    return out.round_().clamp_(0, 255)


def geometric_matrix(kind: Tensor, amount: Tensor, h: int, w: int) -> Tensor:
    """(n, 2, 3) output -> input matrices for rows of `kind` (indices into GEOMETRIC) and `amount` (shear factor,
    translation in pixels, rotation in degrees counter-clockwise). Shears keep the top-left corner fixed (timm's and
    torchvision's), rotations the centre; a translation by t moves the content by t pixels."""
    n = len(kind)
    m = torch.zeros(n, 2, 3, dtype=torch.float32, device=amount.device)
    a = amount.float()
    is_ = {name: kind == i for i, name in enumerate(GEOMETRIC)}
    rad = torch.deg2rad(torch.where(is_["Rotate"], a, torch.zeros_like(a)))
    cos, sin = torch.cos(rad), torch.sin(rad)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = cos, -sin, sin, cos
    shear_x, shear_y = torch.where(is_["ShearX"], a, 0.0), torch.where(is_["ShearY"], a, 0.0)
    m[:, 0, 1] += shear_x
    m[:, 0, 2] += shear_x * (h / 2)
    m[:, 1, 0] += shear_y
    m[:, 1, 2] += shear_y * (w / 2)
    m[:, 0, 2] -= torch.where(is_["TranslateX"] | is_["TranslateXRel"], a, 0.0)
    m[:, 1, 2] -= torch.where(is_["TranslateY"] | is_["TranslateYRel"], a, 0.0)
    return m


# ----------------------------------------------------------------------------------------------------------------
# The policies


def _apply(x: Tensor, names: tuple[str, ...], choice: Tensor, arg: Tensor, fill: Tensor, mode: str) -> Tensor:
    """x with row r changed by op names[choice[r]] at argument arg[r] (choice -1: unchanged); one kernel per op."""
    picked = choice.cpu()  # one wait per call: which rows run which op
    geo = [i for i, name in enumerate(names) if name in GEOMETRIC]
    for i in sorted(set(picked.tolist()) - {-1}):
        name = names[i]
        if name in GEOMETRIC:
            continue
        rows = torch.nonzero(picked == i).flatten().to(x.device)
        x.index_copy_(0, rows, _colour(name, x[rows], arg[rows]))
    geo_rows = torch.nonzero(torch.isin(picked, torch.tensor(geo, dtype=picked.dtype))).flatten()
    if len(geo_rows):
        rows = geo_rows.to(x.device)
        kinds = torch.tensor([GEOMETRIC.index(n) if n in GEOMETRIC else -1 for n in names],
                             device=x.device)[choice[rows]]
        h, w = x.shape[-2:]
        x.index_copy_(0, rows, affine(x[rows], geometric_matrix(kinds, arg[rows], h, w), fill, mode))
    return x


def _colour(name: str, x: Tensor, a: Tensor) -> Tensor:
    base = name.replace("Increasing", "")
    if base == "Identity":
        return x
    if base in ("Brightness", "Color", "Contrast", "Sharpness"):
        return {"Brightness": brightness, "Color": saturation, "Contrast": contrast, "Sharpness": sharpness}[base](x, a)
    if base == "Posterize":
        return posterize(x, a)
    if base == "Solarize":
        return solarize(x, a)
    if base == "SolarizeAdd":
        return solarize_add(x, a)
    return {"AutoContrast": autocontrast, "Equalize": equalize, "Invert": invert}[base](x)


def rand_level_arg(names: tuple[str, ...], choice: Tensor, level: Tensor, sign: Tensor, h: int, w: int) -> Tensor:
    """timm's level -> argument mapping (level in [0, 10]) for each row's op: a factor, bits, threshold, degrees,
    shear or pixels (translations as a share 0.45 * level / 10 of the width or height)."""
    frac = level / 10.0
    arg = torch.zeros_like(level)
    for i, name in enumerate(names):
        here = choice == i
        if name == "Rotate":
            v = frac * 30.0 * sign
        elif name in ("ShearX", "ShearY"):
            v = frac * 0.3 * sign
        elif name in ("TranslateXRel", "TranslateYRel"):
            v = frac * 0.45 * sign * (w if name == "TranslateXRel" else h)
        elif name == "Posterize":
            v = torch.floor(frac * 4)
        elif name == "PosterizeIncreasing":
            v = 4 - torch.floor(frac * 4)
        elif name == "Solarize":
            v = torch.floor(frac * 256).clamp(max=256)
        elif name == "SolarizeIncreasing":
            v = 256 - torch.floor(frac * 256).clamp(max=256)
        elif name == "SolarizeAdd":
            v = torch.floor(frac * 110).clamp(max=128)
        elif name.endswith("Increasing"):
            v = (1.0 + sign * frac * 0.9).clamp(min=0.1)
        elif name in ("Color", "Contrast", "Brightness", "Sharpness"):
            v = frac * 1.8 + 0.1
        else:
            continue
        arg = torch.where(here, v, arg)
    return arg


def rand_augment(x: Tensor, p: dict, g: torch.Generator, share: Share) -> Tensor:
    """timm's RandAugment on float pixels 0..255: `num_ops` layers, each an op drawn uniformly per image, applied
    with probability `prob` at a magnitude ~ N(magnitude, magnitude_std) clipped to [0, 10]; random signs; fill
    the mean pixel; bilinear resampling."""
    total, rows = share
    dev = x.device
    names = RAND_OPS_INCREASING if p["increasing"] else RAND_OPS
    x = x.clone()  # rows are replaced in place below
    h, w = x.shape[-2:]
    fill = torch.tensor(RAND_FILL[:x.shape[1]], device=dev)
    for _ in range(p["num_ops"]):
        choice = torch.randint(len(names), (total,), generator=g, device=dev)[rows]
        apply = _uniform((total,), g, dev, rows) <= p["prob"]
        level = p["magnitude"] + p["magnitude_std"] * torch.randn((total,), generator=g, device=dev)[rows]
        level = level.clamp(0, 10) if p["magnitude_std"] > 0 else torch.full_like(level, float(p["magnitude"]))
        sign = torch.where(_uniform((total,), g, dev, rows) > 0.5, -1.0, 1.0)
        arg = rand_level_arg(names, choice, level, sign, h, w)
        x = _apply(x, names, torch.where(apply, choice, -1), arg, fill, "bilinear")
    return x


def trivial_magnitudes(bins: int, device: torch.device | None = None) -> dict[str, Tensor]:
    """Op -> its `bins` magnitudes (torchvision's TrivialAugmentWide table)."""
    table = {"ShearX": torch.linspace(0.0, 0.99, bins), "ShearY": torch.linspace(0.0, 0.99, bins),
             "TranslateX": torch.linspace(0.0, 32.0, bins), "TranslateY": torch.linspace(0.0, 32.0, bins),
             "Rotate": torch.linspace(0.0, 135.0, bins),
             **{k: torch.linspace(0.0, 0.99, bins) for k in ("Brightness", "Color", "Contrast", "Sharpness")},
             "Posterize": (8 - (torch.arange(bins) / ((bins - 1) / 6))).round().int().float(),
             "Solarize": torch.linspace(1.0, 0.0, bins)}
    return {k: v.to(device) for k, v in table.items()}


def trivial_augment(x: Tensor, p: dict, g: torch.Generator, share: Share) -> Tensor:
    """torchvision's TrivialAugmentWide on float pixels 0..255: one op per image drawn uniformly, a magnitude bin
    drawn uniformly, negated with probability 1/2 for signed ops; nearest resampling, fill 0."""
    total, rows = share
    dev = x.device
    bins = p["bins"]
    x = x.clone()  # rows are replaced in place below
    choice = torch.randint(len(TRIVIAL_OPS), (total,), generator=g, device=dev)[rows]
    level = torch.randint(bins, (total,), generator=g, device=dev)[rows]
    negate = _uniform((total,), g, dev, rows) <= 0.5
    table = trivial_magnitudes(bins, dev)
    arg = torch.zeros(len(choice), device=dev)
    for i, name in enumerate(TRIVIAL_OPS):
        if name not in table:
            continue
        v = table[name][level]
        if name in TRIVIAL_SIGNED:
            v = torch.where(negate, -v, v)
        if name in ("TranslateX", "TranslateY"):
            v = torch.trunc(v)  # whole pixels (int(magnitude))
        elif name in ("Brightness", "Color", "Contrast", "Sharpness"):
            v = 1.0 + v
        elif name == "Solarize":
            v = 255.0 * v
        arg = torch.where(choice == i, v, arg)
    return _apply(x, TRIVIAL_OPS, choice, arg, torch.zeros(x.shape[1], device=dev), "nearest")


# ----------------------------------------------------------------------------------------------------------------
# Random erasing (normalised values) and random resized crops


def random_erasing(x: Tensor, p: dict, g: torch.Generator, share: Share) -> Tensor:
    """timm's RandomErasing: with probability p an image gets k boxes (k uniform in 1..count), each of an area
    uniform in [min_area, max_area] / k of the image and a log-uniform aspect in [min_aspect, 1 / min_aspect]
    (the first of 10 attempts that fits), filled with per-pixel N(0, 1) (pixel), one N(0, 1) per channel (rand)
    or 0 (const)."""
    total, rows = share
    dev = x.device
    n, c, h, w = x.shape
    erase_all = torch.rand((total,), generator=g, device=dev) <= p["p"]
    erase = erase_all[rows]
    count = p["count"]
    k_all = torch.randint(1, count + 1, (total,), generator=g, device=dev) if count > 1 else \
        torch.ones(total, dtype=torch.int64, device=dev)
    k = k_all[rows]
    lo, hi = math.log(p["min_aspect"]), math.log(1 / p["min_aspect"])
    ys = torch.arange(h, device=dev).view(1, 1, h, 1)
    xs = torch.arange(w, device=dev).view(1, 1, 1, w)
    for slot in range(count):
        area = (p["min_area"] + (p["max_area"] - p["min_area"]) * _uniform((total, 10), g, dev, rows)) \
            * (h * w) / k[:, None]
        aspect = torch.exp(lo + (hi - lo) * _uniform((total, 10), g, dev, rows))
        bh = torch.round(torch.sqrt(area * aspect))
        bw = torch.round(torch.sqrt(area / aspect))
        fits = (bw < w) & (bh < h)
        first = fits.int().argmax(1, keepdim=True)
        bh, bw = bh.gather(1, first)[:, 0], bw.gather(1, first)[:, 0]
        place = _uniform((total, 2), g, dev, rows)
        top = torch.floor(place[:, 0] * (h - bh + 1))
        left = torch.floor(place[:, 1] * (w - bw + 1))
        # noise is drawn for the global batch's erased images only (in batch order), each process taking its own
        active_all = (erase_all & (slot < k_all)).cpu()  # one wait per box slot
        mine = active_all.clone()
        mine[:rows.start] = False
        mine[rows.stop:] = False
        where_mine = mine[active_all].nonzero().flatten().to(dev)
        shape = (c, h, w) if p["mode"] == "pixel" else (c, 1, 1)
        if p["mode"] == "const" or not bool(active_all.any()):
            noise = torch.zeros((len(where_mine), *shape), device=dev)
        else:
            noise = torch.randn((int(active_all.sum()), *shape), generator=g, device=dev)[where_mine]
        on = (erase & (slot < k) & fits.any(1)).cpu()
        sel = mine[rows].nonzero().flatten()  # this process's rows with a box in this slot, in order
        keep = on[sel]
        sel, noise = sel[keep].to(dev), noise[keep.to(dev)]
        if len(sel):
            mask = ((ys >= _col(top[sel])) & (ys < _col(top[sel] + bh[sel])) & (xs >= _col(left[sel]))
                    & (xs < _col(left[sel] + bw[sel])))
            x = x.index_copy(0, sel, torch.where(mask, noise.to(x.dtype), x[sel]))
    return x


def resized_crop_boxes(h: int, w: int, p: dict, u_area: Tensor, u_ratio: Tensor, u_place: Tensor) -> Tensor:
    """torchvision's RandomResizedCrop boxes (n, 4) = (top, left, height, width) of an h x w image from uniform
    draws: u_area, u_ratio (n, 10) for the 10 attempts, u_place (n, 2); the central crop when no attempt fits."""
    area = h * w * (p["min_scale"] + (p["max_scale"] - p["min_scale"]) * u_area.double())
    lo, hi = math.log(p["min_ratio"]), math.log(p["max_ratio"])
    ratio = torch.exp(lo + (hi - lo) * u_ratio.double())
    bw = torch.round(torch.sqrt(area * ratio))
    bh = torch.round(torch.sqrt(area / ratio))
    fits = (bw > 0) & (bw <= w) & (bh > 0) & (bh <= h)
    first = fits.int().argmax(1, keepdim=True)
    bh, bw, found = bh.gather(1, first)[:, 0], bw.gather(1, first)[:, 0], fits.any(1)
    top = torch.floor(u_place[:, 0].double() * (h - bh + 1))
    left = torch.floor(u_place[:, 1].double() * (w - bw + 1))
    # the fallback: the whole image, or its central part of the nearest allowed aspect ratio
    in_ratio = w / h
    if in_ratio < min(p["min_ratio"], p["max_ratio"]):
        fw, fh = w, int(round(w / min(p["min_ratio"], p["max_ratio"])))
    elif in_ratio > max(p["min_ratio"], p["max_ratio"]):
        fw, fh = int(round(h * max(p["min_ratio"], p["max_ratio"]))), h
    else:
        fw, fh = w, h
    fallback = torch.tensor([(h - fh) // 2, (w - fw) // 2, fh, fw], dtype=torch.float64, device=bh.device)
    boxes = torch.stack([top, left, bh, bw], dim=1)
    return torch.where(found[:, None], boxes, fallback).long()


def draw_resized_crop(h: int, w: int, p: dict, g: torch.Generator, share: Share, device: torch.device) -> Tensor:
    total, rows = share
    u_area = _uniform((total, 10), g, device, rows)
    u_ratio = _uniform((total, 10), g, device, rows)
    u_place = _uniform((total, 2), g, device, rows)
    return resized_crop_boxes(h, w, p, u_area, u_ratio, u_place)


def random_resized_crop(x: Tensor, p: dict, g: torch.Generator, share: Share) -> Tensor:
    """Each image's box (torchvision's rule) resized to size x size by bilinear interpolation (no antialiasing),
    one grid_sample for the batch."""
    n, c, h, w = x.shape
    size = p["size"]
    box = draw_resized_crop(h, w, p, g, share, x.device).to(x.dtype)
    top, left, bh, bw = box.unbind(1)
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = bw / w
    theta[:, 0, 2] = (2 * left + bw) / w - 1
    theta[:, 1, 1] = bh / h
    theta[:, 1, 2] = (2 * top + bh) / h - 1
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


POLICIES = {"rand_augment": rand_augment, "trivial_augment": trivial_augment}
