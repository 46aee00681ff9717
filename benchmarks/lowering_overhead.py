"""Is a module generated from YAML as fast as a hand-written one? Lowered ResNet-50 vs torchvision's resnet50.

Both models get the same weights and the same input; runs alternate (ours, theirs, ours, ...) after warm-up so
that drift of the machine hits both alike; the median of each is reported with the ratio ours/theirs
(1.00 = equal, above 1 = archspec slower), and the ratio of the best runs, which is steadier on a busy machine. The peer is torchvision's resnet50 when torchvision imports, else
the hand-written twin in reference_models.py (same architecture, same module names).
Also reports the time to build ResNet-1202 from its spec.

    python benchmarks/lowering_overhead.py                       # CPU, float32
    python benchmarks/lowering_overhead.py --device cuda --bf16 --channels-last [--compile]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_models import imagenet_resnet  # noqa: E402

import archspec  # noqa: E402


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def step(model: torch.nn.Module, x: torch.Tensor, backward: bool, autocast: bool, device: str) -> float:
    start = time.perf_counter()
    with torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
        if backward:
            model(x).float().sum().backward()
        else:
            with torch.no_grad():
                model(x)
    sync(device)
    return time.perf_counter() - start


def compare(ours: torch.nn.Module, theirs: torch.nn.Module, x: torch.Tensor, backward: bool, rounds: int,
            warmup: int, autocast: bool, device: str) -> tuple[list[float], list[float]]:
    for m in (ours, theirs):
        m.train(backward)
    for _ in range(warmup):
        step(ours, x, backward, autocast, device)
        step(theirs, x, backward, autocast, device)
    a, b = [], []
    for i in range(rounds):
        pair = [(ours, a), (theirs, b)] if i % 2 == 0 else [(theirs, b), (ours, a)]
        for model, times in pair:
            if backward:
                model.zero_grad(set_to_none=True)
            times.append(step(model, x, backward, autocast, device))
    return a, b


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=None, help="default 8 on CPU, 128 on CUDA")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--bf16", action="store_true", help="autocast to bfloat16")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile both models")
    args = p.parse_args()
    device = args.device
    batch = args.batch or (8 if device == "cpu" else 128)
    rounds = args.rounds or (10 if device == "cpu" else 30)
    torch.manual_seed(0)

    archspec.build("cifar_resnet20")  # imports (networkx, torch.fx) happen once, outside the timing
    start = time.perf_counter()
    archspec.build("cifar_resnet1202")
    build_1202 = time.perf_counter() - start

    theirs = imagenet_resnet(50)
    ours = archspec.build("resnet50_tv")
    ours.load_state_dict(theirs.state_dict(), strict=True)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    ours, theirs = (m.to(device, memory_format=fmt) for m in (ours, theirs))
    x = torch.randn(batch, 3, 224, 224, device=device).to(memory_format=fmt)
    with torch.no_grad():
        ours.eval(), theirs.eval()
        same = (ours(x) - theirs(x)).abs().max().item()
    if args.compile:
        ours, theirs = torch.compile(ours), torch.compile(theirs)
    peer = type(theirs).__module__.split(".")[0]
    print(f"ResNet-50 (torchvision layout) vs {peer} resnet50: device={device} batch={batch} "
          f"bf16={args.bf16} channels_last={args.channels_last} compile={args.compile} rounds={rounds}")
    print(f"max |output difference| with the same weights: {same:.2e}")
    for backward in (False, True):
        ta, tb = compare(ours, theirs, x, backward, rounds, 2 if device == "cpu" else 5, args.bf16, device)
        a, b = statistics.median(ta), statistics.median(tb)
        what = "forward+backward" if backward else "forward"
        print(f"{what:<17} archspec {a * 1000:8.1f} ms   hand-written {b * 1000:8.1f} ms   "
              f"ratio {a / b:.3f} (of medians), {min(ta) / min(tb):.3f} (of best runs)   "
              f"({batch / a:,.0f} vs {batch / b:,.0f} images/s)")
    print(f"build cifar_resnet1202 from its spec (load, expand, analyse, lower, initialise): {build_1202:.2f} s")


if __name__ == "__main__":
    main()
