"""One command that checks archspec's whole GPU path and writes a JSON and a Markdown summary.

    python benchmarks/gpu_check.py --out gpu-check                 # on a CUDA machine: everything below
    python benchmarks/gpu_check.py --device cpu --quick --out x    # on a CPU in a few minutes (CI runs this)

Sections (each records what it measured, or why it was skipped; a failure in one does not stop the others):
1. `tests`: the CUDA-marked tests (pytest -m cuda). The only section that needs pytest (the `test` extra); the
   others run where archspec is installed without it.
2. `train_cli`: `archspec train` through the command line on CIFAR-format files made here, across at least two
   epoch boundaries, with every host synchronisation counted (torch.cuda.set_sync_debug_mode) and attributed to
   the step it follows: syncs after ordinary steps (not a log, evaluation or checkpoint point) must be 0.
3. `throughput`: training images/s of cifar_resnet20/56/110/1202 and resnet50_tv through runtime/train.py against
   hand-written twins in the same run (bf16 + channels_last on CUDA, with and without --compile), the ratio,
   peak memory, and the projected time of the paper's CIFAR schedule.
4. `lowering_overhead`: benchmarks/lowering_overhead.py on the device.
5. `resnet1202_memory`: ResNet-1202 at batch 128 (8 on a CPU), peak memory with and without
   --checkpoint-activations.
6. `ddp`: a 2-process run through torchrun (NCCL when 2 GPUs exist; gloo on a CPU).
7. `family`: the ResNet family's newer ops on the device (grouped convs, squeeze-and-excitation's sigmoid and
   broadcast mul, pre-activation, average-pooled shortcuts, drop path at drop_path_rate=0.1): training steps of
   resnext50_32x4d, seresnet50, resnetv2_50 and resnet50d in bf16 + channels_last on CUDA, finite losses, the
   fraction of samples drop path zeroed against its probability, and images/s; then a fine-tuning start (a
   state_dict of 1000 classes into a 10-class model on the device).
- `bench`: `archspec bench` of resnet50_tv against torchvision's resnet50 in the same run (benchmarks/bench_check.py),
   bf16 + channels_last, inference and training, eager and (on CUDA without --quick) compiled: images/s, latency,
   peak memory and the ratio archspec / torchvision (the hand-written twin where torchvision is not importable).
- `sweep_pack`: K cifar_resnet20 runs packed on one device through `archspec sweep --per-gpu K` (a CPU: --jobs K)
   against the same runs one at a time (benchmarks/sweep_pack.py): images/s and the ratio (goal >= 3x on a GPU).
- `recipe`: resnet50_tv trained a few hundred steps under `--recipe rsb_a3` (LAMB, BCE, Mixup/CutMix, RandAugment
   on the device) in bf16 + channels_last on synthetic data, against the paper's plain SGD recipe in the same run
   (benchmarks/recipe_check.py): images/s and the ratio; on a CPU, that the same run twice gives the same losses.

A GPU box without internet may hold torch but not jsonschema or graphviz: `python benchmarks/fetch_wheels.py`
downloads the wheels archspec needs (on a machine with internet) into `.wheels/`; see docs/training.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402
from bench_check import bench_section, markdown_lines as bench_lines  # noqa: E402
from recipe_check import markdown_lines as recipe_lines, section as recipe_section  # noqa: E402
from sweep_pack import markdown_lines as sweep_pack_lines, section as sweep_pack  # noqa: E402


def section(name: str, results: dict[str, Any], fn: Callable[[], Any]) -> None:
    start = time.perf_counter()
    print(f"== {name}", flush=True)
    try:
        results[name] = {"ok": True, **fn()}
    except Skip as e:
        results[name] = {"ok": None, "skipped": str(e)}
    except Exception as e:  # noqa: BLE001 - record it and go on with the other sections
        results[name] = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
    results[name]["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps({k: v for k, v in results[name].items() if k != "traceback"}, default=str)[:2000], flush=True)


class Skip(Exception):
    pass


# -- 1. the CUDA tests ------------------------------------------------------------------------------------------

def cuda_tests(device: torch.device) -> dict[str, Any]:
    if device.type != "cuda":
        raise Skip("no CUDA device: the CUDA-marked tests need one")
    if not _importable("pytest"):
        raise RuntimeError("the `tests` section runs the CUDA-marked tests with pytest, which is not installed "
                           "here: pip install pytest (or the `test` extra: pip install -e '.[test]'), or leave the "
                           "section out with --only")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
                        str(ROOT / "tests")], capture_output=True, text=True, cwd=ROOT, timeout=1800)
    tail = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-500:]
    if r.returncode not in (0, 5):
        raise RuntimeError(f"CUDA tests failed: {tail}\n{r.stdout[-3000:]}")
    return {"summary": tail}


def _importable(name: str) -> bool:
    """Whether `import name` would work in this interpreter (found, and not blocked)."""
    import importlib

    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def _cifar_writer() -> Callable[..., Path]:
    """`write_learnable_cifar` of tests/learnable_cifar.py (plain Python, no pytest), loaded by its path: tests/
    is not put on sys.path, as its folders (`tests/archspec`) would shadow the installed packages."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("learnable_cifar", ROOT / "tests" / "learnable_cifar.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_learnable_cifar


# -- 2. archspec train through the CLI, host syncs counted --------------------------------------------------------

def train_cli(device: torch.device, quick: bool, work: Path) -> dict[str, Any]:
    write_learnable_cifar = _cifar_writer()  # real CIFAR python batches
    cuda = device.type == "cuda"
    data = write_learnable_cifar(work / "cifar", per_batch=600 if quick else 2000, test_images=500)
    batch = 32 if quick else 128
    train_size = 8 * batch  # 8 iterations per epoch
    iters, log_every, eval_every = 24, 12, 24  # three epochs: two epoch boundaries inside the run
    run = work / "run"
    args = ["train", "cifar_resnet20", "--data-dir", str(data), "--out", str(run), "--device", device.type, "--quiet",
            "--iters", str(iters), "--batch-size", str(batch), "--log-interval", str(log_every), "--eval-interval",
            str(eval_every), "--train-size", str(train_size), "--val-size", "200", "--checkpoint-interval", "24"]
    if cuda:
        args += ["--bf16", "--channels-last"]
    by_step, steps = _run_counting_syncs(args, cuda)
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    result: dict[str, Any] = {"iterations": iters, "iters_per_epoch": train_size // batch, "steps_run": steps,
                              "final_test_err": [r["err"] for r in records if r["kind"] == "test"][-1],
                              "images_per_s": json.loads((run / "run.json").read_text())["final"].get("images_per_s")}
    if not cuda:
        result["host_syncs"] = "not counted on a CPU (there is no device to wait for)"
        return result
    # a log or evaluation or checkpoint point may read the device; an ordinary step never should
    expected = {0} | {i for i in range(1, iters + 1) if i % log_every == 0 or i % eval_every == 0 or i == iters}
    ordinary = {k: v for k, v in by_step.items() if k not in expected}
    result.update({"host_syncs_total": sum(by_step.values()), "host_syncs_by_step": by_step,
                   "host_syncs_after_ordinary_steps": sum(ordinary.values()),
                   "host_syncs_per_step": round(sum(by_step.values()) / iters, 3)})
    if ordinary:
        raise RuntimeError(f"host synchronisations after ordinary steps: {ordinary} (of {by_step})")
    return result


def _run_counting_syncs(args: list[str], cuda: bool) -> tuple[dict[int, int], int]:
    """Run `archspec args` in this process; on CUDA, count host synchronisations by the number of steps done."""
    import archspec.runtime.train as loop
    from archspec.cli import main

    done = [0]
    by_step: dict[int, int] = {}
    real_step, real_show = loop._plain_step, warnings.showwarning

    def counted_step(*a: Any, **kw: Any) -> Any:
        out = real_step(*a, **kw)
        done[0] += 1
        return out

    def record(message: Any, *rest: Any, **kw: Any) -> None:
        if "synchroniz" in str(message):
            by_step[done[0]] = by_step.get(done[0], 0) + 1

    loop._plain_step = counted_step
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = record
            if cuda:
                torch.cuda.set_sync_debug_mode("warn")
            try:
                code = main(args)
            finally:
                if cuda:
                    torch.cuda.set_sync_debug_mode(0)
    finally:
        loop._plain_step, warnings.showwarning = real_step, real_show
    if code != 0:
        raise RuntimeError(f"archspec train exited with {code}")
    return dict(sorted(by_step.items())), done[0]


# -- 3. throughput through the training loop ----------------------------------------------------------------------

def throughput(device: torch.device, quick: bool) -> dict[str, Any]:
    from train_throughput import MODELS, compare, format_row, HEADER

    cuda = device.type == "cuda"
    models = ["cifar_resnet20"] if quick else list(MODELS)
    rows, lines = [], [HEADER]
    for key in models:
        for compiled in ([False, True] if cuda and not quick else [False]):
            batch = (16 if quick else None) if not cuda else None
            row = compare(key, device, batch=batch, iters=12 if quick else 120, log_interval=4 if quick else 20,
                          bf16=cuda, channels_last=cuda, compile=compiled)
            rows.append(row)
            lines.append(format_row(row))
            print(lines[-1], flush=True)
    return {"rows": rows, "table": "\n".join(lines)}


# -- 4. lowering overhead -----------------------------------------------------------------------------------------

def lowering(device: torch.device, quick: bool) -> dict[str, Any]:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "lowering_overhead.py"), "--device", device.type]
    if device.type == "cuda":
        cmd += ["--bf16", "--channels-last"]
    if quick:
        cmd += ["--batch", "2", "--rounds", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    return {"output": r.stdout.strip()}


# -- 5. ResNet-1202 memory ----------------------------------------------------------------------------------------

def resnet1202(device: torch.device, quick: bool) -> dict[str, Any]:
    import archspec
    from train_throughput import loop_run

    cuda = device.type == "cuda"
    batch = 128 if cuda else (2 if quick else 8)
    out: dict[str, Any] = {"batch": batch}
    for ckpt in (False, True):
        torch.manual_seed(0)
        model = archspec.build("cifar_resnet1202")
        if ckpt:
            from archspec.runtime.stages import checkpoint_stages

            model = checkpoint_stages(model)
        s = loop_run(model, "cifar_resnet1202", device, batch=batch, iters=2 if quick else 6, log_interval=1 if quick
                     else 2, bf16=cuda, channels_last=cuda, compile=False, checkpoint_activations=ckpt,
                     val_images=batch if quick else None)
        out["checkpointed" if ckpt else "plain"] = {"peak_mem_mb": s["peak_mem_mb"],
                                                    "images_per_s": s.get("images_per_s")}
        del model
        if cuda:
            torch.cuda.empty_cache()
    if not cuda:
        out["note"] = "on a CPU the peak is the process's resident set since it started, not the step's"
    return out


# -- 6. DDP -------------------------------------------------------------------------------------------------------

def ddp(device: torch.device, quick: bool, work: Path) -> dict[str, Any]:
    write_learnable_cifar = _cifar_writer()
    cuda = device.type == "cuda"
    if cuda and torch.cuda.device_count() < 2:
        raise Skip(f"{torch.cuda.device_count()} GPU: a 2-process NCCL run needs 2")
    data = write_learnable_cifar(work / "cifar-ddp")
    run = work / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", "29731", "-m",
           "archspec", "train", "cifar_resnet20", "--data-dir", str(data), "--out", str(run), "--device",
           device.type, "--quiet", "--iters", "8", "--batch-size", "32", "--log-interval", "4", "--eval-interval", "8",
           "--train-size", "1000", "--val-size", "200"]
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=1200,
                       env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    info = json.loads((run / "run.json").read_text())
    return {"backend": "nccl" if cuda else "gloo", "processes": info["processes"], "status": info["status"],
            "seconds": round(time.perf_counter() - start, 1)}


# -- summary --------------------------------------------------------------------------------------------------------

def markdown(results: dict[str, Any], env: dict[str, Any]) -> str:
    lines = ["# archspec GPU check", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in env.items()]
    lines += ["", "| section | result | seconds |", "|---|---|---|"]
    for name, r in results.items():
        state = "ok" if r.get("ok") else ("skipped: " + r["skipped"] if r.get("ok") is None else "FAILED: " +
                                          r.get("error", "")[:300].replace("\n", " "))
        lines.append(f"| {name} | {state} | {r.get('seconds')} |")
    t = results.get("throughput", {})
    if t.get("table"):
        lines += ["", "## Throughput through runtime/train.py", "", t["table"]]
    c = results.get("train_cli", {})
    if c.get("ok"):
        lines += ["", "## archspec train (CLI)", ""]
        lines += [f"- {k}: {v}" for k, v in c.items() if k not in ("ok", "seconds")]
    m = results.get("resnet1202_memory", {})
    if m.get("ok"):
        lines += ["", "## ResNet-1202", "", f"- batch {m['batch']}: peak {m['plain']['peak_mem_mb']:,.0f} MiB plain, "
                  f"{m['checkpointed']['peak_mem_mb']:,.0f} MiB with --checkpoint-activations"]
    lo = results.get("lowering_overhead", {})
    if lo.get("ok"):
        lines += ["", "## Lowering overhead", "", "```", lo["output"], "```"]
    f = results.get("family", {})
    if f.get("ok"):
        lines += ["", "## The ResNet family (drop_path_rate 0.1)", ""]
        lines += [f"- {k}: {v}" for k, v in f.items() if k not in ("ok", "seconds")]
    lines += bench_lines(results.get("bench", {}))
    lines += sweep_pack_lines(results.get("sweep_pack", {}))
    lines += recipe_lines(results.get("recipe", {}))
    return "\n".join(lines) + "\n"


# -- 7. the ResNet family -----------------------------------------------------------------------------------------

def family(device: torch.device, quick: bool, work: Path) -> dict[str, Any]:
    import archspec

    cuda = device.type == "cuda"
    size, batch, steps = (64, 4, 2) if quick else (224, 64, 10)
    out: dict[str, Any] = {}
    for name in ("resnext50_32x4d", "seresnet50", "resnetv2_50", "resnet50d"):
        torch.manual_seed(0)
        model = archspec.build(name, drop_path_rate=0.1).to(device).train()
        fmt = torch.channels_last if cuda else torch.contiguous_format
        model = model.to(memory_format=fmt)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(batch, 3, size, size, device=device).to(memory_format=fmt)
        y = torch.randint(0, 1000, (batch,), device=device)
        losses, seconds = _family_steps(model, opt, x, y, steps, cuda)
        if not all(torch.isfinite(torch.tensor(losses))):
            raise RuntimeError(f"{name}: non-finite loss {losses}")
        out[name] = {"images_per_s": round(batch * steps / seconds, 1), "loss": round(losses[-1], 4)}
    out["drop_path"] = _drop_path_fraction(device)
    torch.save(archspec.build("resnet18_tv").state_dict(), work / "r18.pt")
    tuned = archspec.build("resnet18_tv", weights=work / "r18.pt", num_classes=10).to(device)
    logits = tuned(torch.randn(2, 3, 64, 64, device=device))
    out["fine_tune_start"] = {"notes": tuned.weights_source.notes, "logits": list(logits.shape)}
    return out


def _family_steps(model: Any, opt: Any, x: torch.Tensor, y: torch.Tensor, steps: int,
                  cuda: bool) -> tuple[list[float], float]:
    """One warm-up step, then `steps` timed ones: the losses and the seconds they took."""
    def step() -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    step()
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    losses = [step() for _ in range(steps)]
    if cuda:
        torch.cuda.synchronize()
    return [float(v) for v in losses], time.perf_counter() - started


def _drop_path_fraction(device: torch.device) -> dict[str, Any]:
    """DropPath on the device: the share of samples zeroed against p, and the kept ones scaled by 1 / (1 - p)."""
    from archspec.compiler.ops.modules import DropPath

    p, n = 0.25, 20000
    layer = DropPath(p).train()
    x = torch.ones(n, 2, 3, 3, device=device)
    y = layer(x)
    dropped = (y.flatten(1).abs().sum(1) == 0).float().mean().item()
    kept = y.flatten(1)[y.flatten(1).abs().sum(1) > 0]
    scale_ok = bool(torch.allclose(kept, torch.full_like(kept, 1 / (1 - p))))
    if abs(dropped - p) > 0.02 or not scale_ok:
        raise RuntimeError(f"drop path zeroed {dropped:.3f} of the samples (p={p}); kept ones scaled right: {scale_ok}")
    return {"p": p, "dropped": round(dropped, 4), "kept_scaled_by_1_over_keep": scale_ok}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="small sizes: a few minutes on a CPU")
    p.add_argument("--out", type=Path, default=Path("gpu-check"), help="folder for gpu_check.json and gpu_check.md")
    p.add_argument("--only", default=None, help="comma-separated sections to run (default all)")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here: use --device cpu --quick", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    env = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({os.cpu_count()} cores)",
           "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
           "quick": args.quick, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    results: dict[str, Any] = {}
    wanted = set(args.only.split(",")) if args.only else None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plan: list[tuple[str, Callable[[], Any]]] = [
            ("tests", lambda: cuda_tests(device)),
            ("train_cli", lambda: train_cli(device, args.quick, work)),
            ("throughput", lambda: throughput(device, args.quick)),
            ("lowering_overhead", lambda: lowering(device, args.quick)),
            ("resnet1202_memory", lambda: resnet1202(device, args.quick)),
            ("ddp", lambda: ddp(device, args.quick, work)),
            ("family", lambda: family(device, args.quick, work)),
            ("bench", lambda: bench_section(device, args.quick)),
            ("sweep_pack", lambda: sweep_pack(device, args.quick, work)),
            ("recipe", lambda: recipe_section(device, args.quick, work)),
        ]
        for name, fn in plan:
            if wanted is None or name in wanted:
                section(name, results, fn)
    (args.out / "gpu_check.json").write_text(json.dumps({"environment": env, "results": results}, indent=2,
                                                        default=str))
    text = markdown(results, env)
    (args.out / "gpu_check.md").write_text(text)
    print(text)
    return 1 if any(r.get("ok") is False for r in results.values()) else 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
