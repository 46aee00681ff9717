"""How long does it take to learn a network's FLOPs? archspec against the usual alternative, in the same run.

archspec:  `archspec compile SPEC --flops` as a fresh process (start to exit), which never imports torch.
peer:      a fresh Python process that imports torch, builds the model in PyTorch (torchvision's when it
           imports, else the hand-written twin in reference_models.py) and counts FLOPs by tracing a forward
           pass with torch.utils.flop_counter.FlopCounterMode.

Runs alternate, each case several times; medians and the ratio are printed, and the two FLOP counts are
compared (FlopCounterMode reports 2 x multiply-adds of conv and matmul, archspec `--unit flops` the same).

    python benchmarks/compile_speed.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CASES = [
    # spec, peer model expression, input shape
    ("specs/resnet152_tv.yaml", "imagenet_resnet(152)", (3, 224, 224)),
    ("specs/resnet50_tv.yaml", "imagenet_resnet(50)", (3, 224, 224)),
    ("specs/cifar_resnet1202.yaml", "cifar_resnet(200)", (3, 32, 32)),
]

PEER = """
import sys, json
sys.path.insert(0, {here!r})
import torch
from torch.utils.flop_counter import FlopCounterMode
from reference_models import imagenet_resnet, cifar_resnet
model = {expr}.eval()
with torch.no_grad(), FlopCounterMode(display=False) as counter:
    model(torch.zeros(1, *{shape}))
print(json.dumps({{"flops": counter.get_total_flops()}}))
"""


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{proc.stderr}")
    return elapsed, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = dict(os.environ)
    print(f"{'case':<30} {'archspec':>10} {'trace (torch)':>14} {'ratio':>7}   FLOPs archspec / traced")
    for spec, expr, shape in CASES:
        ours, theirs = [], []
        flops_ours = flops_theirs = None
        for _ in range(args.repeat):
            t, out = timed([sys.executable, "-m", "archspec", "compile", spec, "--flops"], env)
            ours.append(t)
            t, out = timed([sys.executable, "-c", PEER.format(here=str(HERE), expr=expr, shape=shape)], env)
            theirs.append(t)
            flops_theirs = json.loads(out.strip().splitlines()[-1])["flops"]
        _, out = timed([sys.executable, "-m", "archspec", "compile", spec, "--json", "--unit", "flops"], env)
        flops_ours = json.loads(out)["total"]
        a, b = statistics.median(ours), statistics.median(theirs)
        agree = "equal" if flops_ours == flops_theirs else f"{flops_ours:,} vs {flops_theirs:,}"
        print(f"{spec:<30} {a:>9.3f}s {b:>13.3f}s {b / a:>6.1f}x   {agree}")


if __name__ == "__main__":
    main()
