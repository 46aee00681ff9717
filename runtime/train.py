"""The training loop: a module, a resolved recipe and a data source in; checkpoints and metrics out.

It never reads YAML: the command line (archspec.train_cmd) resolves the spec and recipe and hands them over.
Properties it keeps:
- Exact resume: data order and augmentation are functions of (seed, iteration), the model, optimizer,
  schedule, RNG and the metric window in progress are in the checkpoint, and metrics logged after the
  checkpoint are dropped on resume. On CPU a run killed with SIGKILL and resumed logs the losses an
  uninterrupted run logs.
- No host synchronisation per step: losses and errors accumulate on the device and are read at log intervals,
  where the NaN/inf guard runs; checkpoints are written only right after a window passed that guard, so the
  last checkpoint on disk is always a good one.
- Ctrl-C or SIGTERM finishes the step in flight, saves a checkpoint and stops cleanly.
"""

from __future__ import annotations

import json
import math
import resource
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from archspec.runtime import checkpoint
from archspec.runtime.evaluate import evaluate
from archspec.runtime.metrics import MetricsLog, Progress
from archspec.runtime.recipe import Recipe


class Diverged(Exception):
    """The loss became NaN or infinite; the message says where and which checkpoint is the last good one."""


class Interrupted(Exception):
    """Stopped by Ctrl-C or SIGTERM after saving a checkpoint."""


@dataclass
class TrainOptions:
    run_dir: Path
    device: torch.device
    resume: bool = False
    checkpoint_interval: int | None = None  # iterations; by default every evaluation
    progress: bool = True
    eval_batch_size: int | None = None
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False
    dist: Any = None  # runtime.distributed.Dist; None: a single process


class Window:
    """Loss and error sums of the steps since the last log line, kept on the device (no per-step sync)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.loss = torch.zeros((), dtype=torch.float64, device=self.device)
        self.wrong = torch.zeros((), dtype=torch.int64, device=self.device)
        self.images = 0
        self.steps = 0
        self.started = time.perf_counter()

    def add(self, loss: torch.Tensor, logits: torch.Tensor, target: torch.Tensor) -> None:
        n = target.shape[0]
        self.loss += loss.detach().double() * n
        self.wrong += (logits.detach().argmax(1) != target).sum()
        self.images += n
        self.steps += 1

    def read(self, dist: Any = None) -> tuple[float, float]:
        """(mean loss, error fraction) over all processes; synchronises with the device."""
        sums = torch.stack([self.loss, self.wrong.double(),
                            torch.tensor(float(self.images), dtype=torch.float64, device=self.device)])
        if dist is not None:
            dist.sum_(sums)
        loss, wrong, images = sums.tolist()
        n = max(1.0, images)
        return loss / n, wrong / n

    def state(self) -> dict[str, Any]:
        return {"loss": self.loss.cpu(), "wrong": self.wrong.cpu(), "images": self.images, "steps": self.steps}

    def load(self, state: dict[str, Any]) -> None:
        self.loss = state["loss"].to(self.device)
        self.wrong = state["wrong"].to(self.device)
        self.images, self.steps = state["images"], state["steps"]


class _StopFlag:
    """SIGINT/SIGTERM set a flag the loop reads after each step (a step is never cut in half)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopFlag":
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    o = recipe.optimizer
    return torch.optim.SGD(model.parameters(), lr=float(o["lr"]), momentum=float(o.get("momentum", 0)),
                           weight_decay=float(o.get("weight_decay", 0)), nesterov=bool(o.get("nesterov", False)))


def train(model: nn.Module, recipe: Recipe, data: Any, options: TrainOptions,
          log: Callable[[str], None], step_fn: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Train `model` by `recipe` on `data`; returns the final summary (also written to run.json)."""
    from archspec.runtime.distributed import Dist, wrap

    device = options.device
    dist = options.dist or Dist()
    main = dist.is_main
    run_dir = options.run_dir
    net = model.to(device)  # the module itself: state_dict, evaluation (whatever wraps it for training)
    if options.channels_last:
        net.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
    model = wrap(net, dist, device)
    if options.compile:
        model = torch.compile(model)
    optimizer = make_optimizer(net, recipe)
    ipe = data.iters_per_epoch
    total = recipe.total_iters(ipe)
    log_every = recipe.log_interval
    eval_every = recipe.eval_interval(ipe)
    ckpt_every = options.checkpoint_interval or eval_every
    ckpt_every = max(log_every, -(-ckpt_every // log_every) * log_every)  # checkpoints only after a NaN check
    state: dict[str, Any] = {"iteration": 0, "warming_up": bool(recipe.warmup), "best_val_err": None,
                             "started": time.time()}
    window = Window(device)
    metrics = MetricsLog(run_dir / "metrics.jsonl") if main else _Silent()
    if not main:
        log = _quiet_log
    last = run_dir / "last.pt"
    if options.resume:
        ck = checkpoint.load(last)
        net.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        state.update(ck["state"])
        checkpoint.set_rng_state(ck["rng"])
        window.load(ck["window"])
        metrics.open(keep_until=state["iteration"])
        log(f"resumed from {last} at iteration {state['iteration']:,} of {total:,}")
    else:
        metrics.open()
    i = state["iteration"]
    batches = data.train_iter(i)
    progress = Progress(total, enabled=options.progress and main)
    progress.begin(i)
    start_time = time.perf_counter()
    waited = _waited(batches)

    def save_checkpoint(at: int) -> None:
        if main:
            checkpoint.save(last, {"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                                   "state": {**state, "iteration": at}, "rng": checkpoint.rng_state(),
                                   "window": window.state(), "recipe": json.loads(recipe.to_json())})
        dist.barrier()

    step = step_fn or _plain_step
    model.train()
    try:
        with _StopFlag() as stop:
            while i < total:
                lr = recipe.lr(i, ipe, state["warming_up"])
                for group in optimizer.param_groups:
                    group["lr"] = lr
                x, y = next(batches)
                if options.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                loss, logits = step(model, optimizer, x, y, options)
                window.add(loss, logits, y)
                i += 1
                if i % log_every == 0 or i == total:
                    mean_loss, err = window.read(dist)
                    if not math.isfinite(mean_loss):
                        good = checkpoint.load(last)["state"]["iteration"] if last.exists() else None
                        where = f"the last good checkpoint is {last} (iteration {good:,})" if good is not None \
                            else "no checkpoint was written yet"
                        raise Diverged(f"the loss became {mean_loss} between iterations {i - window.steps + 1:,} "
                                       f"and {i:,} (lr {lr:g}); {where}. Lower the learning rate (--lr) or add "
                                       f"a warm-up, then --resume or start again")
                    elapsed = time.perf_counter() - window.started
                    ips = window.images / max(elapsed, 1e-9)
                    wait = _waited(batches) - waited
                    waited += wait
                    record = {"kind": "train", "iter": i, "epoch": round(i / ipe, 4), "loss": mean_loss, "lr": lr,
                              "train_err": 100 * err, "images_per_s": ips,
                              "time": time.perf_counter() - start_time, "data_wait": wait / max(elapsed, 1e-9),
                              "peak_mem_mb": peak_memory_mb(device)}
                    metrics.write(record)
                    progress.update(i, mean_loss, lr, 100 * err, ips)
                    if wait > 0.2 * elapsed and elapsed > 1:
                        progress.message(f"input pipeline is the bottleneck: {100 * wait / elapsed:.0f}% of the "
                                         f"last {window.steps} steps waited for data (more --workers?)")
                    if state["warming_up"] and not recipe.warmup_still(i, err, ipe):
                        state["warming_up"] = False
                        progress.message(f"warm-up ends at iteration {i:,} (training error {100 * err:.1f}%)")
                    window.reset()
                if i % eval_every == 0 or i == total:
                    _evaluate_all(net, data, recipe, options, i, state, metrics, progress, log, run_dir, dist)
                    model.train()
                if i % ckpt_every == 0 or i == total:
                    save_checkpoint(i)
                # alone, stop right after the step; together, decide at log intervals so all stop at the same step
                asked = stop.signal is not None
                if dist.active:
                    asked = dist.any(asked, device) if i % log_every == 0 else False
                if asked and i < total:
                    mean_loss, _ = window.read(dist) if window.images or dist.active else (0.0, 0.0)
                    if math.isfinite(mean_loss):
                        save_checkpoint(i)
                    raise Interrupted(f"stopped at iteration {i:,} of {total:,}; saved {last}; continue with "
                                      f"--resume --out {run_dir}")
    finally:
        progress.end()
        metrics.close()
    return _summary(run_dir, state, total, start_time, device) if main else {}


class _Silent:
    """The metrics log of a process that is not rank 0."""

    def open(self, keep_until: int | None = None) -> None:
        pass

    def write(self, record: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def _quiet_log(text: str) -> None:
    pass


def _plain_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                options: TrainOptions) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=options.bf16):
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss, logits


def _waited(batches: Iterator[Any]) -> float:
    fn = getattr(batches, "wait_seconds", None)
    return float(fn()) if callable(fn) else 0.0


def _evaluate_all(model: nn.Module, data: Any, recipe: Recipe, options: TrainOptions, i: int, state: dict[str, Any],
                  metrics: Any, progress: Progress, log: Callable[[str], None], run_dir: Path, dist: Any) -> None:
    views = int(recipe.eval.get("views", 1))
    for split in data.splits:
        result = evaluate(model, data, split, views=views, batch_size=options.eval_batch_size,
                          channels_last=options.channels_last, bf16=options.bf16,
                          reduce=dist.sum_ if dist.active else None)
        if not dist.is_main:
            continue
        metrics.write({"kind": split, "iter": i, **result})
        progress.message(f"iteration {i:,}: {split} error {result['err']:.2f}% (loss {result['loss']:.4f}, "
                         f"{result['images']:,} images{', 10-crop' if views == 10 else ''})")
        if split == "val" and (state["best_val_err"] is None or result["err"] < state["best_val_err"]):
            state["best_val_err"] = result["err"]
            from archspec.files import atomic_path

            with atomic_path(run_dir / "best.pt") as tmp:
                torch.save({"model": model.state_dict(), "iteration": i, "val_err": result["err"]}, tmp)


def _summary(run_dir: Path, state: dict[str, Any], total: int, start: float, device: torch.device) -> dict[str, Any]:
    from archspec.runtime.metrics import read_metrics

    records = read_metrics(run_dir / "metrics.jsonl")
    final: dict[str, Any] = {"iterations": total, "best_val_err": state["best_val_err"],
                             "peak_mem_mb": round(peak_memory_mb(device), 1)}
    for kind in ("train", "val", "test"):
        last = [r for r in records if r.get("kind") == kind]
        if last:
            final[f"final_{kind}"] = last[-1]
    trains = [r for r in records if r.get("kind") == "train"]
    if trains:
        final["images_per_s"] = sum(r["images_per_s"] for r in trains) / len(trains)
    return final
