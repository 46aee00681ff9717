"""Training throughput: archspec's modules against hand-written PyTorch models, same step, same data, one run.

For each model both versions take the same training step (bf16 autocast and channels_last on CUDA unless turned
off, SGD with momentum and weight decay, cross-entropy) on the same synthetic batch resident on the device.
Timed chunks alternate between the two after warm-up; the medians give images/s, the ratio archspec /
hand-written (1.00 = equal, above 1 = archspec faster; "best" compares the fastest chunks, steadier on a busy
machine) and the peak memory of each. With --compile, both models
are also measured under torch.compile. For the CIFAR nets the projected time of the paper's schedule
(64k iterations of 128) is printed.

    python benchmarks/train_throughput.py                       # CUDA if present; all models
    python benchmarks/train_throughput.py --device cpu --models cifar_resnet20 --steps 6
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_models import cifar_resnet, imagenet_resnet  # noqa: E402

import archspec  # noqa: E402

MODELS = {  # spec, peer, input size, default batch
    "cifar_resnet20": ("cifar_resnet20", lambda: cifar_resnet(3), 32, 128),
    "cifar_resnet56": ("cifar_resnet56", lambda: cifar_resnet(9), 32, 128),
    "cifar_resnet110": ("cifar_resnet110", lambda: cifar_resnet(18), 32, 128),
    "cifar_resnet1202": ("cifar_resnet1202", lambda: cifar_resnet(200), 32, 128),
    "resnet50": ("resnet50_tv", lambda: imagenet_resnet(50), 224, 256),
}
PAPER_IMAGES = 64_000 * 128


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Trainer:
    def __init__(self, model: torch.nn.Module, device: torch.device, bf16: bool, channels_last: bool,
                 compile: bool):
        self.device, self.bf16, self.channels_last = device, bf16, channels_last
        model = model.to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = torch.compile(model) if compile else model
        self.opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss = F.cross_entropy(self.model(x).float(), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


def measure(pair: dict[str, Trainer], x: torch.Tensor, y: torch.Tensor, steps: int, rounds: int,
            warmup: int) -> dict[str, tuple[float, float]]:
    device = x.device
    for t in pair.values():
        for _ in range(warmup):
            t.step(x, y)
    sync(device)
    times: dict[str, list[float]] = {k: [] for k in pair}
    peaks: dict[str, float] = {}
    for r in range(rounds):
        for name in (list(pair) if r % 2 == 0 else list(reversed(pair))):
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            start = time.perf_counter()
            for _ in range(steps):
                pair[name].step(x, y)
            sync(device)
            times[name].append(time.perf_counter() - start)
            if device.type == "cuda":
                peaks[name] = max(peaks.get(name, 0.0), torch.cuda.max_memory_allocated(device) / 2**20)
    return {k: (x.shape[0] * steps / statistics.median(v), peaks.get(k, float("nan")), x.shape[0] * steps / min(v))
            for k, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--batch", type=int, default=None, help="override every model's batch size")
    p.add_argument("--steps", type=int, default=None, help="steps per timed chunk (default 20 CUDA, 3 CPU)")
    p.add_argument("--rounds", type=int, default=None, help="timed chunks per model (default 6 CUDA, 4 CPU)")
    p.add_argument("--no-bf16", dest="bf16", action="store_false", default=None)
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false", default=None)
    p.add_argument("--compile", action="store_true", help="also measure both under torch.compile")
    args = p.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    bf16 = cuda if args.bf16 is None else args.bf16
    channels_last = cuda if args.channels_last is None else args.channels_last
    steps, rounds = args.steps or (20 if cuda else 3), args.rounds or (6 if cuda else 4)
    if cuda:
        torch.backends.cudnn.benchmark = True
    name_dev = torch.cuda.get_device_name(device) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device {name_dev}, torch {torch.__version__}, bf16={bf16}, channels_last={channels_last}, "
          f"{rounds} chunks of {steps} steps per model")
    print(f"{'model':<18}{'compile':>8}{'batch':>7}{'archspec img/s':>16}{'hand-written':>14}{'ratio':>7}"
          f"{'best':>7}{'peak MiB (a/h)':>18}{'paper schedule':>16}")
    for key in args.models.split(","):
        spec, make_peer, size, batch = MODELS[key]
        batch = args.batch or batch
        for compiled in ([False, True] if args.compile else [False]):
            torch.manual_seed(0)
            ours = archspec.build(spec)
            theirs = make_peer()
            pair = {"archspec": Trainer(ours, device, bf16, channels_last, compiled),
                    "hand": Trainer(theirs, device, bf16, channels_last, compiled)}
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            x = torch.randn(batch, 3, size, size, device=device).to(memory_format=fmt)
            y = torch.randint(0, 10 if size == 32 else 1000, (batch,), device=device)
            result = measure(pair, x, y, steps, rounds, warmup=3 if compiled else 2)
            (a, pa, ba), (h, ph, bh) = result["archspec"], result["hand"]
            schedule = f"{PAPER_IMAGES / a / 60:,.1f} min" if size == 32 else "-"
            peak = f"{pa:,.0f}/{ph:,.0f}" if cuda else "-"
            print(f"{key:<18}{'yes' if compiled else 'no':>8}{batch:>7}{a:>16,.0f}{h:>14,.0f}{a / h:>7.3f}"
                  f"{ba / bh:>7.3f}{peak:>18}{schedule:>16}")
            del pair, ours, theirs, x, y
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
