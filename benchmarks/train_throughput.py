"""Training throughput through archspec's own training loop (runtime/train.py), against hand-written twins.

Both the lowered model and a hand-written PyTorch twin (reference_models.py, same architecture) are trained by
the very same loop, `archspec.runtime.train.train`, on the same synthetic data with the recipe's augmentation
(pad-crop and flip for CIFAR), metric windows, NaN checks, evaluation and checkpoint at the end: what
`archspec train` does, minus reading files. Reported per model: steady images/s of each (the windows after the
first, which holds compile warm-up and autotuning; each model run twice, a-h-h-a, the faster counting), the
ratio archspec / hand-written (1.00 = equal, above 1 = archspec faster), peak memory, and for the CIFAR nets the projected wall time of the paper's schedule
(64k iterations of 128, with its 32 evaluations of 15k images and 32 checkpoints, each timed here).

    python benchmarks/train_throughput.py                       # CUDA if present (bf16 + channels_last); all models
    python benchmarks/train_throughput.py --device cpu --models cifar_resnet20 --iters 12
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_models import cifar_resnet, imagenet_resnet  # noqa: E402

import archspec  # noqa: E402

MODELS: dict[str, tuple[str, Callable[[], torch.nn.Module], int, int]] = {  # spec, twin, input size, batch
    "cifar_resnet20": ("cifar_resnet20", lambda: cifar_resnet(3), 32, 128),
    "cifar_resnet56": ("cifar_resnet56", lambda: cifar_resnet(9), 32, 128),
    "cifar_resnet110": ("cifar_resnet110", lambda: cifar_resnet(18), 32, 128),
    "cifar_resnet1202": ("cifar_resnet1202", lambda: cifar_resnet(200), 32, 128),
    "resnet50_tv": ("resnet50_tv", lambda: imagenet_resnet(50), 224, 256),
}
PAPER_ITERS, PAPER_EVALS, PAPER_EVAL_IMAGES = 64_000, 32, 15_000


def loop_run(model: torch.nn.Module, spec: str, device: torch.device, *, batch: int, iters: int, log_interval: int,
             bf16: bool, channels_last: bool, compile: bool, checkpoint_activations: bool = False,
             val_images: int | None = None) -> dict[str, Any]:
    """Train `model` for `iters` steps through runtime.train on synthetic data shaped like `spec`'s; returns the
    loop's summary plus the time of one evaluated image and of one checkpoint."""
    from archspec.runtime import checkpoint
    from archspec.runtime.data import DataConfig, make_data
    from archspec.runtime.evaluate import evaluate
    from archspec.runtime.recipe import resolve
    from archspec.runtime.train import TrainOptions, train

    loaded = archspec.load(spec)
    size = loaded.input_shape[-1]
    augment = "[{op: pad_crop, pad: 4}, {op: hflip}]" if size == 32 else "[{op: hflip}]"
    recipe = resolve(loaded.recipe, {"iters": iters, "batch_size": batch, "log_interval": log_interval,
                                     "eval_interval": iters, "no_warmup": True, "dataset": "synthetic",
                                     "val_size": val_images},
                     [f"augment={augment}", "eval.views=1"])
    classes = 10 if size == 32 else 1000
    data = make_data(DataConfig(name="synthetic", root=None, batch_size=batch, seed=0, device=device,
                                augment=recipe.augment, image_size=size, classes=classes,
                                synthetic_size=max(4 * batch, 512), channels_last=channels_last,
                                val_size=val_images))
    with tempfile.TemporaryDirectory() as run_dir:
        options = TrainOptions(run_dir=Path(run_dir), device=device, progress=False, bf16=bf16,
                               channels_last=channels_last, compile=compile,
                               checkpoint_activations=checkpoint_activations)
        start = time.perf_counter()
        summary = train(model, recipe, data, options, lambda text: None)
        summary["wall_s"] = time.perf_counter() - start
        net = model.eval()
        _sync(device)
        t = time.perf_counter()
        result = evaluate(net, data, "val", channels_last=channels_last, bf16=bf16)
        _sync(device)
        summary["eval_s_per_image"] = (time.perf_counter() - t) / max(1, result["images"])
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        t = time.perf_counter()
        checkpoint.save(Path(run_dir) / "timed.pt", {"model": net.state_dict(), "optimizer": optimizer.state_dict()})
        summary["checkpoint_s"] = time.perf_counter() - t
    return summary


def paper_minutes(summary: dict[str, Any], batch: int) -> float:
    """The paper's CIFAR schedule at the measured speed, with its evaluations and checkpoints."""
    steps = PAPER_ITERS * batch / summary["images_per_s"]
    evals = PAPER_EVALS * PAPER_EVAL_IMAGES * summary["eval_s_per_image"]
    return (steps + evals + PAPER_EVALS * summary["checkpoint_s"]) / 60


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compare(key: str, device: torch.device, *, batch: int | None = None, iters: int, log_interval: int, bf16: bool,
            channels_last: bool, compile: bool) -> dict[str, Any]:
    """archspec and its hand-written twin through the same loop; one row."""
    spec, make_twin, size, default_batch = MODELS[key]
    batch = batch or default_batch
    row: dict[str, Any] = {"model": key, "batch": batch, "compile": compile, "bf16": bf16,
                           "channels_last": channels_last}
    makers = {"archspec": lambda: archspec.build(spec), "hand": make_twin}
    # a, h, h, a: each is measured once early and once late, so that warming of the process and drift of the
    # machine hit both alike; the faster of each one's two runs counts
    for who in ("archspec", "hand", "hand", "archspec"):
        torch.manual_seed(0)
        s = loop_run(makers[who](), spec, device, batch=batch, iters=iters, log_interval=log_interval, bf16=bf16,
                     channels_last=channels_last, compile=compile)
        best = row.get(who)
        if best is None or (s.get("images_per_s") or 0) > (best["images_per_s"] or 0):
            row[who] = {"images_per_s": s.get("images_per_s"), "peak_mem_mb": s.get("peak_mem_mb"),
                        "wall_s": s["wall_s"], "eval_s_per_image": s["eval_s_per_image"],
                        "checkpoint_s": s["checkpoint_s"]}
            if size == 32 and who == "archspec":
                row["paper_schedule_min"] = paper_minutes(s, batch)
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    row["ratio"] = row["archspec"]["images_per_s"] / row["hand"]["images_per_s"]
    return row


def format_row(r: dict[str, Any]) -> str:
    a, h = r["archspec"], r["hand"]
    paper = f"{r['paper_schedule_min']:,.1f} min" if "paper_schedule_min" in r else "-"
    return (f"| {r['model']} | {'yes' if r['compile'] else 'no'} | {r['batch']} | {a['images_per_s']:,.0f} | "
            f"{h['images_per_s']:,.0f} | {r['ratio']:.3f} | {a['peak_mem_mb']:,.0f} / {h['peak_mem_mb']:,.0f} | "
            f"{paper} |")


HEADER = ("| model | compile | batch | archspec img/s | hand-written img/s | ratio | peak MiB (a / h) | "
          "paper schedule |\n|---|---|---|---|---|---|---|---|")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--batch", type=int, default=None, help="override every model's batch size")
    p.add_argument("--iters", type=int, default=None, help="steps per run (default 120 CUDA, 12 CPU)")
    p.add_argument("--no-bf16", dest="bf16", action="store_false", default=None)
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false", default=None)
    p.add_argument("--compile", action="store_true", help="also measure both under torch.compile")
    args = p.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    bf16 = cuda if args.bf16 is None else args.bf16
    channels_last = cuda if args.channels_last is None else args.channels_last
    iters = args.iters or (120 if cuda else 12)
    print(f"device {torch.cuda.get_device_name(device) if cuda else 'CPU'}, torch {torch.__version__}, "
          f"bf16={bf16}, channels_last={channels_last}, {iters} iterations per run through runtime/train.py")
    print(HEADER)
    for key in args.models.split(","):
        for compiled in ([False, True] if args.compile else [False]):
            print(format_row(compare(key, device, batch=args.batch, iters=iters, log_interval=max(1, iters // 6),
                                     bf16=bf16, channels_last=channels_last, compile=compiled)), flush=True)


if __name__ == "__main__":
    main()
