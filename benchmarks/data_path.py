"""Training input pipeline throughput of an image folder: archspec's FolderData train stream against torchvision's
ImageFolder + transforms v2 in a DataLoader, under the same torchvision-v2-style recipe.

archspec: decode, random_resized_crop 176 and hflip in the loader workers (Pillow, uint8), then on the device
(here the CPU), batched: trivial_augment on float pixels, normalisation (ImageNet), random_erasing (p 0.1, const).
torchvision: RandomResizedCrop(176, antialias), RandomHorizontalFlip, TrivialAugmentWide, PILToTensor,
ToDtype(float32, scale), Normalize, RandomErasing(0.1), all per image in the workers.

A JPEG folder (10 classes x 60 images of 500x375, textured so that decoding costs what photographs do) is made in
a temporary folder. Same batch (64) and worker counts (0, 1, 2); rounds alternate which pipeline goes first; the
first batch of every stream (worker start-up) is not timed; the main process runs one torch thread. Printed: images/s,
images/s per core used (workers + main), the ratio archspec / torchvision, and where the time goes per image and per
batch, each piece timed on its own in this process.

    python benchmarks/data_path.py [--batches 5 --rounds 2 --workers 0 1 2]   # where torchvision imports (CI: its parity venv)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from archspec.lang.augment import defaults
from archspec.runtime.data import DataConfig, make_data
from archspec.runtime.data import augment_ops as A
from archspec.runtime.data.folder import _load_image, _to_tensor

CLASSES, PER_CLASS, SIZE = 10, 60, (500, 375)
BATCH, CROP = 64, 176
AUGMENT = [{"op": "random_resized_crop", "size": CROP}, {"op": "hflip"}, {"op": "trivial_augment"},
           {"op": "random_erasing", "p": 0.1, "mode": "const"}]


def make_folder(root: Path) -> None:
    """Textured JPEGs: smooth colour fields plus noise and edges (a flat or pure-noise image decodes unlike a photo)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    w, h = SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for split, count in (("train", PER_CLASS), ("val", 4)):
        for c in range(CLASSES):
            folder = root / split / f"class{c:02d}"
            folder.mkdir(parents=True)
            for k in range(count):
                f = rng.uniform(0.01, 0.08, 6)
                base = np.stack([np.sin(xx * f[0] + yy * f[1]), np.cos(xx * f[2] - yy * f[3]),
                                 np.sin((xx + yy) * f[4]) * np.cos(yy * f[5])], axis=-1)
                img = 128 + 90 * base + rng.normal(0, 18, (h, w, 3))
                img[(xx.astype(int) // rng.integers(20, 60)) % 2 == 0] += 25
                Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"{k}.jpg", quality=90)


def archspec_stream(root: Path, workers: int):
    data = make_data(DataConfig(name="imagenet_folder", root=root, batch_size=BATCH, seed=0,
                                device=torch.device("cpu"), image_size=CROP, eval_resize=200, workers=workers,
                                normalize="imagenet", augment=AUGMENT))
    return data.train_iter(0)


def torchvision_stream(root: Path, workers: int):
    from torchvision import datasets
    from torchvision.transforms import v2

    t = v2.Compose([v2.RandomResizedCrop(CROP, antialias=True), v2.RandomHorizontalFlip(), v2.TrivialAugmentWide(),
                    v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True),
                    v2.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), v2.RandomErasing(0.1)])
    loader = torch.utils.data.DataLoader(datasets.ImageFolder(str(root / "train"), t), batch_size=BATCH, shuffle=True,
                                         num_workers=workers, drop_last=True,
                                         prefetch_factor=4 if workers else None)
    return iter(loader)


def rate(stream, batches: int) -> float:
    next(stream)  # worker start-up and the first decode: not timed
    start = time.perf_counter()
    for _ in range(batches):
        x, _ = next(stream)
        assert x.shape == (BATCH, 3, CROP, CROP)
    seconds = time.perf_counter() - start
    close = getattr(stream, "close", None) or getattr(stream, "_shutdown_workers", None)
    if close:
        close()
    return batches * BATCH / seconds


def per_piece(root: Path, n: int = 48) -> None:
    """Each step on its own: per image (ms) and per batch of 64 (ms)."""
    from PIL import Image
    from torchvision.transforms import v2

    paths = sorted((root / "train").rglob("*.jpg"))[:n]
    g = torch.Generator().manual_seed(0)
    p = defaults("random_resized_crop") | {"size": CROP}

    def ms(fn, reps: int = 1) -> float:
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - start) / reps * 1e3

    images = [_load_image(str(q), None) for q in paths]
    decode = ms(lambda: [_load_image(str(q), None) for q in paths]) / n

    def crop():
        out = []
        for img in images:
            w, h = img.size
            draws = (torch.rand(1, 10, generator=g), torch.rand(1, 10, generator=g), torch.rand(1, 2, generator=g))
            top, left, bh, bw = A.resized_crop_boxes(h, w, p, *draws)[0].tolist()
            out.append(img.resize((CROP, CROP), Image.Resampling.BILINEAR, box=(left, top, left + bw, top + bh)))
        return out

    crops = crop()
    crop_ms = ms(crop) / n
    flip_ms = ms(lambda: [c.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for c in crops]) / n
    tensor_ms = ms(lambda: [_to_tensor(c) for c in crops]) / n
    x = torch.stack([_to_tensor(c) for c in crops[:BATCH]] * (BATCH // len(crops) + 1))[:BATCH]
    share = (BATCH, slice(0, BATCH))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1) * 255
    scale = 1 / (torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1) * 255)
    trivial = ms(lambda: A.trivial_augment(x.float(), {"bins": 31}, g, share), 5)
    norm = ms(lambda: (x.float() - mean) * scale, 5)
    erase_p = defaults("random_erasing") | {"p": 0.1, "mode": "const"}
    xn = (x.float() - mean) * scale
    erase = ms(lambda: A.random_erasing(xn, erase_p, g, share), 5)
    print(f"\narchspec, per image (ms): decode {decode:.2f}, random_resized_crop {crop_ms:.2f}, hflip {flip_ms:.3f}, "
          f"to uint8 tensor {tensor_ms:.3f}")
    print(f"archspec, per batch of {BATCH} on the CPU (ms): trivial_augment {trivial:.1f} ({trivial / BATCH:.2f}/image), "
          f"normalise {norm:.1f} ({norm / BATCH:.3f}/image), random_erasing p 0.1 {erase:.1f} "
          f"({erase / BATCH:.3f}/image)")
    tv_crop = v2.RandomResizedCrop(CROP, antialias=True)
    tv_triv, tv_flip = v2.TrivialAugmentWide(), v2.RandomHorizontalFlip()
    tail = v2.Compose([v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    tv_erase = v2.RandomErasing(0.1)
    tv_crops = [tv_crop(im) for im in images]
    print(f"torchvision, per image (ms): RandomResizedCrop {ms(lambda: [tv_crop(im) for im in images]) / n:.2f}, "
          f"flip {ms(lambda: [tv_flip(c) for c in tv_crops]) / n:.3f}, TrivialAugmentWide "
          f"{ms(lambda: [tv_triv(c) for c in tv_crops]) / n:.2f}, to tensor + scale + normalise "
          f"{ms(lambda: [tail(c) for c in tv_crops]) / n:.2f}, RandomErasing "
          f"{ms(lambda: [tv_erase(t) for t in [tail(c) for c in tv_crops[:8]]]) / 8:.3f} (includes 1/6 of the tail)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=5, help="timed batches per measurement")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        make_folder(root)
        print(f"made {CLASSES * PER_CLASS} JPEGs of {SIZE[0]}x{SIZE[1]} in {time.perf_counter() - start:.1f} s; "
              f"batch {BATCH}, crop {CROP}, {args.batches} timed batches per run, best of {args.rounds} rounds")
        best: dict[tuple[str, int], float] = {}
        for r in range(args.rounds):
            for w in args.workers:
                order = [("archspec", archspec_stream), ("torchvision", torchvision_stream)]
                for name, make in (order if r % 2 == 0 else order[::-1]):
                    v = rate(make(root, w), args.batches)
                    best[name, w] = max(best.get((name, w), 0.0), v)
        print(f"\n{'workers':>7} {'archspec img/s':>15} {'per core':>9} {'torchvision img/s':>18} {'per core':>9} "
              f"{'ratio':>6}")
        for w in args.workers:
            a, t = best["archspec", w], best["torchvision", w]
            cores = w + 1
            print(f"{w:>7} {a:>15.1f} {a / cores:>9.1f} {t:>18.1f} {t / cores:>9.1f} {a / t:>6.2f}")
        per_piece(root)


if __name__ == "__main__":
    main()
