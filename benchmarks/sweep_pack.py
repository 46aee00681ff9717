"""K cifar_resnet20 runs packed on one device through `archspec sweep` against the same K runs one at a time.

    python benchmarks/sweep_pack.py                          # CUDA when available: K=8 runs on GPU 0
    python benchmarks/sweep_pack.py --device cpu --runs 2    # a CPU: --jobs K, cores / K threads each

Small CIFAR nets leave a modern GPU mostly idle (each step is a few milliseconds of kernel launches), so several
runs on one GPU (`archspec sweep --per-gpu K`) should train several times the images per second of one run; the
issue's goal is >= 3x for K cifar_resnet20 runs on a modern GPU. Both sweeps run here, in the same session, on the
same CIFAR-format files (tests/learnable_cifar.py), the same experiment and flags; the only difference is
`--per-gpu K` (on a CPU `--jobs K`) against one run at a time. Figures:
- wall: K x iterations x batch images over the sweep's wall-clock time (process start-up, data loading and
  evaluation included: what a user waits for);
- steady: the sum over the runs of each run's own images/s (runtime/train.py's, training steps only), for the
  packed sweep, against the mean of one run alone.
benchmarks/gpu_check.py runs this as its `sweep_pack` section (small in --quick mode, on a CPU in CI).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _write_cifar(root: Path, per_batch: int) -> Path:
    """tests/learnable_cifar.py (plain Python), loaded by its path: tests/ is not put on sys.path."""
    spec = importlib.util.spec_from_file_location("learnable_cifar", ROOT / "tests" / "learnable_cifar.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_learnable_cifar(root, per_batch=per_batch, test_images=200)


def measure(device: str, runs: int, iters: int, batch: int, work: Path, threads: int | None = None) -> dict[str, Any]:
    """Both sweeps; their figures and the ratios packed / one at a time. `threads`: each run's (--cpus-per-run) in
    both sweeps; by default a run alone takes every core and a packed one its share (what a sweep chooses)."""
    data = _write_cifar(work / "cifar", per_batch=1000)   # 5,000 training images: runs go over them as epochs
    train_size = 4800
    exp = work / "pack.yaml"
    exp.write_text("archspec: 1\nexperiment: sweep_pack\ngrid: {spec: cifar_resnet20}\n"
                   f"seeds: {runs}\ntrain: {{iters: {iters}, batch_size: {batch}, log_interval: {max(1, iters // 4)}, "
                   f"eval_interval: {iters}, train_size: {train_size}, val_size: 200}}\n")
    cuda = device == "cuda"
    common = ["--data-dir", str(data), "--device", device, "--quiet"] + (["--bf16", "--channels-last"] if cuda else [])
    env = dict(os.environ)
    if cuda:  # one GPU: the packing is on one device
        env["CUDA_VISIBLE_DEVICES"] = env.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]
    env.pop("OMP_NUM_THREADS", None)  # each sweep chooses its runs' threads (cores / jobs on a CPU)
    if threads:
        common += ["--cpus-per-run", str(threads)]
    one = _sweep(exp, work / "one", common + ["--jobs", "1"], env)
    packed = _sweep(exp, work / "packed", common + (["--per-gpu", str(runs)] if cuda else ["--jobs", str(runs)]), env)
    images = runs * iters * batch
    out = {"device": device, "runs": runs, "iters": iters, "batch": batch, "threads_per_run": threads,
           "one_at_a_time": {"seconds": one["seconds"], "wall_images_per_s": round(images / one["seconds"], 1),
                             "run_images_per_s": one["rates"]},
           "packed": {"seconds": packed["seconds"], "wall_images_per_s": round(images / packed["seconds"], 1),
                      "run_images_per_s": packed["rates"]}}
    out["wall_ratio"] = round(one["seconds"] / packed["seconds"], 2)
    alone = sum(one["rates"]) / len(one["rates"])
    out["steady_ratio"] = round(sum(packed["rates"]) / alone, 2) if alone else None
    return out


def _sweep(exp: Path, out: Path, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "archspec", "sweep", str(exp), "--out", str(out), *args],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=3600)
    seconds = time.perf_counter() - start
    if r.returncode != 0:
        raise RuntimeError(f"archspec sweep {' '.join(args)} exited with {r.returncode}: {r.stderr[-2000:]}"
                           f"{r.stdout[-2000:]}")
    rates = []
    for run in sorted((out / "cifar_resnet20").glob("seed*/run.json")):
        final = json.loads(run.read_text()).get("final") or {}
        rates.append(round(float(final.get("images_per_s") or 0.0), 1))
    return {"seconds": round(seconds, 1), "rates": rates}


def section(device: Any, quick: bool, work: Path) -> dict[str, Any]:
    """benchmarks/gpu_check.py's `sweep_pack` section."""
    kind = getattr(device, "type", str(device))
    if kind == "cuda":
        runs, iters, batch = (4, 60, 128) if quick else (8, 400, 128)
    else:
        runs, iters, batch = (2, 8, 16) if quick else (min(4, os.cpu_count() or 1), 40, 32)
    (work / "sweep_pack").mkdir(parents=True, exist_ok=True)
    result = measure(kind, runs, iters, batch, work / "sweep_pack")
    if kind == "cuda" and not quick:
        result["goal"] = ">= 3x images/s for K runs packed on one modern GPU against one at a time"
        result["goal_met"] = result["wall_ratio"] >= 3
    return result


def markdown_lines(r: dict[str, Any]) -> list[str]:
    if not r.get("ok"):
        return []
    one, packed = r["one_at_a_time"], r["packed"]
    return ["", f"## Packing {r['runs']} cifar_resnet20 runs on one device (archspec sweep)", "",
            "| | seconds | images/s (wall) | runs' own images/s |", "|---|---|---|---|",
            f"| one at a time | {one['seconds']} | {one['wall_images_per_s']:,.0f} | "
            f"{', '.join(f'{v:,.0f}' for v in one['run_images_per_s'])} |",
            f"| {r['runs']} packed | {packed['seconds']} | {packed['wall_images_per_s']:,.0f} | "
            f"{', '.join(f'{v:,.0f}' for v in packed['run_images_per_s'])} |", "",
            f"- ratio packed / one at a time: {r['wall_ratio']}x wall-clock, {r['steady_ratio']}x steady-state "
            f"({r['iters']} iterations of batch {r['batch']} per run)"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--runs", type=int, default=None,
                   help="K, the runs packed (default 8 on CUDA, min(4, cores) on a CPU)")
    p.add_argument("--iters", type=int, default=None, help="iterations per run (default 400 on CUDA, 40 on a CPU)")
    p.add_argument("--batch", type=int, default=None, help="batch size (default 128 on CUDA, 32 on a CPU)")
    p.add_argument("--cpus-per-run", type=int, default=None,
                   help="threads of each run in both sweeps (default: a run alone takes every core, a packed one "
                   "cores / K)")
    args = p.parse_args()
    device = args.device
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    cuda = device == "cuda"
    runs = args.runs or (8 if cuda else min(4, os.cpu_count() or 1))
    iters = args.iters or (400 if cuda else 40)
    batch = args.batch or (128 if cuda else 32)
    with tempfile.TemporaryDirectory() as tmp:
        r = measure(device, runs, iters, batch, Path(tmp), args.cpus_per_run)
    print("\n".join(markdown_lines({"ok": True, **r})).strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
