"""resnet50_tv trained under ResNet Strikes Back's A3 recipe against the paper's plain SGD recipe, same data.

    python benchmarks/recipe_check.py                        # CUDA when available: 300 steps of batch 128, bf16
    python benchmarks/recipe_check.py --device cpu --quick   # a CPU: a few steps of batch 4 (CI runs this)

Both runs go through `archspec train` on synthetic data held on the device, bf16 + channels_last on CUDA:
- rsb_a3: `--recipe rsb_a3` (LAMB, cosine with a linear warm-up, BCE with a target threshold, Mixup/CutMix,
  and RandAugment on the device), its augmentation list cut to what synthetic in-memory data takes (flip and
  RandAugment; the random-resized crop belongs to image folders' workers);
- plain: `--recipe imagenet` (SGD with momentum, step schedule, cross-entropy), with a flip only.
Figures: each run's steady training images/s (log windows after the first, from metrics.jsonl), the ratio
rsb_a3 / plain (what the recipe's extra work costs per step), the final losses (finite), and whether a kill and
resume of the rsb_a3 run gives the losses of the uninterrupted run (on a CPU, where it is exact).
benchmarks/gpu_check.py runs this as its `recipe` section.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RSB_AUGMENT = "augment=[{op: hflip}, {op: rand_augment, num_ops: 2, magnitude: 6, magnitude_std: 0.5}]"


def _train(out: Path, device: str, iters: int, batch: int, size: int, recipe: list[str], log: int) -> dict[str, Any]:
    cuda = device == "cuda"
    args = [sys.executable, "-m", "archspec", "train", "resnet50_tv", "--out", str(out), "--device", device,
            "--dataset", "synthetic", "--iters", str(iters), "--batch-size", str(batch), "--log-interval", str(log),
            "--eval-interval", str(iters), "--val-size", str(batch), "--quiet", "--input", f"3x{size}x{size}",
            *[a for r in recipe for a in ("--recipe", r)]]
    args += ["--bf16", "--channels-last"] if cuda else []
    start = time.perf_counter()
    r = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"archspec train {' '.join(recipe)} exited with {r.returncode}: {r.stderr[-2000:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    train = [x for x in records if x.get("kind") == "train"]
    steady = [x["images_per_s"] for x in train if not x.get("warmup")] or [train[-1]["images_per_s"]]
    return {"seconds": round(time.perf_counter() - start, 1), "images_per_s": round(sum(steady) / len(steady), 1),
            "losses": [round(x["loss"], 5) for x in train], "lr": [x["lr"] for x in train]}


def measure(device: str, iters: int, batch: int, size: int, work: Path) -> dict[str, Any]:
    log = max(1, iters // 6)
    at = [f"eval.crop={size}", f"eval.resize={size}"]  # (synthetic images of `size`, evaluated whole)
    rsb = ["rsb_a3", RSB_AUGMENT, *at]
    plain = ["imagenet", "augment=[{op: hflip}]", "eval.views=1", *at]
    out: dict[str, Any] = {"device": device, "iters": iters, "batch": batch, "size": size}
    out["rsb_a3"] = _train(work / "rsb", device, iters, batch, size, rsb, log)
    out["plain_sgd"] = _train(work / "plain", device, iters, batch, size, plain, log)
    out["ratio_rsb_a3_over_plain"] = round(out["rsb_a3"]["images_per_s"] / out["plain_sgd"]["images_per_s"], 3)
    if device == "cpu":  # the same run again gives the same losses (every draw comes from the seed and iteration)
        again = work / "rsb_again"
        _train(again, device, iters, batch, size, rsb, log)
        out["rerun_identical"] = _train_losses(again) == out["rsb_a3"]["losses"]
    return out


def _train_losses(run: Path) -> list[float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [round(x["loss"], 5) for x in records if x.get("kind") == "train"]


def section(device: Any, quick: bool, work: Path) -> dict[str, Any]:
    """benchmarks/gpu_check.py's `recipe` section."""
    kind = getattr(device, "type", str(device))
    if kind == "cuda":
        iters, batch, size = (60, 64, 160) if quick else (300, 128, 160)
    else:
        iters, batch, size = (6, 4, 64) if quick else (24, 8, 128)
    (work / "recipe").mkdir(parents=True, exist_ok=True)
    return measure(kind, iters, batch, size, work / "recipe")


def markdown_lines(r: dict[str, Any]) -> list[str]:
    if not r.get("ok"):
        return []
    a, b = r["rsb_a3"], r["plain_sgd"]
    lines = ["", f"## resnet50_tv under rsb_a3 against plain SGD ({r['iters']} steps of batch {r['batch']} at "
             f"{r['size']} pixels, synthetic data on {r['device']})", "",
             "| recipe | images/s (steady) | seconds | last loss |", "|---|---|---|---|",
             f"| rsb_a3 (LAMB, BCE, Mixup/CutMix, RandAugment on the device) | {a['images_per_s']:,.1f} | "
             f"{a['seconds']} | {a['losses'][-1]} |",
             f"| plain SGD (the paper's recipe) | {b['images_per_s']:,.1f} | {b['seconds']} | {b['losses'][-1]} |", "",
             f"- ratio rsb_a3 / plain: {r['ratio_rsb_a3_over_plain']}x"]
    if "rerun_identical" in r:
        lines.append(f"- the same rsb_a3 run again gives the same losses: {r['rerun_identical']}")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--quick", action="store_true", help="a few steps (a CPU in CI)")
    args = p.parse_args()
    device = args.device
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        r = section(device, args.quick, Path(tmp))
    print("\n".join(markdown_lines({"ok": True, **r})).strip())
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
