"""The training loop: a module, a resolved recipe and a data source in; checkpoints and metrics out.

It never reads YAML: the driver (archspec.runtime.driver) resolves the spec and recipe and hands them over.
Properties it keeps:
- Exact resume: data order and augmentation are functions of (seed, iteration), the model, optimizer,
  schedule, RNG and the metric window in progress are in the checkpoint, and metrics logged after the
  checkpoint are dropped on resume. On CPU a run killed with SIGKILL and resumed logs the losses an
  uninterrupted run logs.
- No host synchronisation per step: losses and errors accumulate on the device and are read at log intervals,
  where the NaN/inf guard runs; checkpoints are written only right after a window passed that guard, so the
  last checkpoint on disk is always a good one.
- Ctrl-C or SIGTERM finishes the step in flight, saves a checkpoint and stops cleanly.
- Checkpoints come often enough that a kill loses little: by default every evaluation, but at least ten times
  per run (so a short run checkpoints every log interval), and whenever `checkpoint_minutes` have passed since
  the last one (checked at log intervals, default 10 minutes). Each carries the architecture's identity.
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


STOP_CHECK_STEPS = 10  # under torchrun, processes agree on a stop request this often (steps)


class Diverged(Exception):
    """The loss became NaN or infinite; the message says where and which checkpoint is the last good one."""


class Interrupted(Exception):
    """Stopped by Ctrl-C or SIGTERM after saving a checkpoint."""


@dataclass
class TrainOptions:
    run_dir: Path
    device: torch.device
    resume: bool = False
    checkpoint_interval: int | None = None  # iterations; by default every evaluation, at least 10 per run
    checkpoint_minutes: float = 10.0  # and at the first log interval after this many minutes since the last one
    progress: bool = True
    eval_batch_size: int | None = None
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False
    dist: Any = None  # runtime.distributed.Dist; None: a single process
    arch: dict[str, Any] | None = None  # the architecture's identity (runtime.checkpoint.architecture)
    on_checkpoint: Callable[[int], None] | None = None  # told the iteration of each checkpoint written
    checkpoint_activations: bool = False  # the model is a runtime.stages.StageCheckpointed
    running_stats: Any = None  # set by train(): runtime.stages.RunningStats of the model when checkpointing
    resume_state: dict[str, Any] | None = None  # last.pt, already read and verified by the caller


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
        self.timed_images = 0  # images of this process's own steps in the window: what images/s is made of
        self.started = time.perf_counter()

    def restart_clock(self) -> None:
        """Evaluation and checkpoints are not training: images/s counts from here."""
        self.timed_images, self.started = 0, time.perf_counter()

    def add(self, loss: torch.Tensor, logits: torch.Tensor, target: torch.Tensor) -> None:
        n = target.shape[0]
        self.loss += loss.detach().double() * n
        self.wrong += (logits.detach().argmax(1) != target).sum()
        self.images += n
        self.timed_images += n
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
        self.timed_images, self.started = 0, time.perf_counter()  # steps before the restart were timed elsewhere


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


def checkpoint_interval(total: int, log_every: int, eval_every: int, asked: int | None) -> int:
    """Iterations between checkpoints: `asked`, or every evaluation but at least ten times per run; always a
    multiple of the log interval, where the NaN check runs (a checkpoint is never of a diverged state)."""
    every = asked or min(eval_every, log_every * -(-total // (10 * log_every)))
    return max(log_every, -(-every // log_every) * log_every)


def train(model: nn.Module, recipe: Recipe, data: Any, options: TrainOptions,
          log: Callable[[str], None], step_fn: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Train `model` by `recipe` on `data`; returns the final summary (also written to run.json).

    `log` receives every line worth keeping (evaluations, warm-up, checkpoints on stop): the caller writes it to
    log.txt and shows it. The progress bar is drawn here."""
    from archspec.runtime.distributed import Dist, average_buffers, wrap

    device = options.device
    dist = options.dist or Dist()
    main = dist.is_main
    run_dir = options.run_dir
    net = model.to(device)  # the module itself: state_dict, evaluation (whatever wraps it for training)
    if options.channels_last:
        net.to(memory_format=torch.channels_last)
    model = wrap(net, dist, device)
    evaluator = net
    if options.compile:
        model = torch.compile(model)
        evaluator = torch.compile(net)  # evaluation runs compiled too (its own graph, in eval mode)
    optimizer = make_optimizer(net, recipe)
    ipe = data.iters_per_epoch
    total = recipe.total_iters(ipe)
    log_every = recipe.log_interval
    eval_every = recipe.eval_interval(ipe)
    ckpt_every = checkpoint_interval(total, log_every, eval_every, options.checkpoint_interval)
    ckpt_seconds = 60.0 * options.checkpoint_minutes
    stop_every = min(log_every, STOP_CHECK_STEPS)
    state: dict[str, Any] = {"iteration": 0, "warming_up": bool(recipe.warmup), "best_val_err": None,
                             "started": time.time()}
    window = Window(device)
    metrics = MetricsLog(run_dir / "metrics.jsonl") if main else _Silent()
    if not main:
        log = _quiet_log
    last = run_dir / "last.pt"
    saved_at: int | None = None  # the iteration of the checkpoint on disk
    if options.resume:
        ck = options.resume_state or checkpoint.training_state(last, options.arch or {})
        options.resume_state = None  # (held only until here: it is the size of the model and its optimizer)
        net.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        state.update(ck["state"])
        note = checkpoint.set_rng_state(ck["rng"], device, dist)
        if note:
            log(note)
        window.load(ck["window"])
        metrics.open(keep_until=state["iteration"])
        saved_at = state["iteration"]
        log(f"resumed from {last} at iteration {state['iteration']:,} of {total:,}")
    else:
        metrics.open()
    i = state["iteration"]
    batches = data.train_iter(i)
    progress = Progress(total, enabled=options.progress and main)
    progress.begin(i)
    start_time = time.perf_counter()
    saved_time = time.monotonic()
    waited = _waited(batches)
    first_window = True

    def save_checkpoint(at: int) -> None:
        nonlocal saved_at, saved_time
        if not _finite(net):  # the last update can break the weights although the losses before it were fine
            raise Diverged(_diverged(float("nan"), at, at, recipe.lr(at - 1, ipe, state["warming_up"]), last,
                                     saved_at, run_dir, where="the weights"))
        average_buffers(net, dist)
        rng = checkpoint.rng_state(device, dist)  # every process's generators (a collective under DDP)
        if main:
            checkpoint.save(last, {"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                                   "state": {**state, "iteration": at}, "rng": rng,
                                   "window": window.state(), "recipe": json.loads(recipe.to_json()),
                                   "arch": options.arch or {}})
            if options.on_checkpoint is not None:
                options.on_checkpoint(at)
        dist.barrier()
        saved_at, saved_time = at, time.monotonic()

    step = step_fn or _plain_step
    benchmark = torch.backends.cudnn.benchmark
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: cuDNN picks its fastest kernels once (reset below)
    if options.checkpoint_activations:
        from archspec.runtime.stages import RunningStats

        options.running_stats = RunningStats(net)
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
                logged = i % log_every == 0 or i == total
                if logged:
                    mean_loss, err = window.read(dist)
                    if not math.isfinite(mean_loss):
                        raise Diverged(_diverged(mean_loss, i - window.steps + 1, i, lr, last, saved_at, run_dir))
                    elapsed = time.perf_counter() - window.started
                    ips = window.timed_images * dist.world / max(elapsed, 1e-9)
                    warmup = first_window  # compile warm-up, cuDNN autotuning, caches: not the steady speed
                    first_window = False
                    wait = _waited(batches) - waited
                    waited += wait
                    record = {"kind": "train", "iter": i, "epoch": round(i / ipe, 4), "loss": mean_loss, "lr": lr,
                              "train_err": 100 * err, "images_per_s": ips,
                              "time": time.perf_counter() - start_time, "data_wait": wait / max(elapsed, 1e-9),
                              "window_s": elapsed, "peak_mem_mb": peak_memory_mb(device)}
                    if warmup:
                        record["warmup"] = True
                    if device.type == "cuda":
                        torch.cuda.reset_peak_memory_stats(device)  # each record: the peak of its own window
                    metrics.write(record)
                    progress.update(i, mean_loss, lr, 100 * err, ips)
                    if wait > 0.2 * elapsed and elapsed > 1:
                        log(f"input pipeline is the bottleneck: {100 * wait / elapsed:.0f}% of the "
                            f"last {window.steps} steps waited for data (more --workers?)")
                    if state["warming_up"] and not recipe.warmup_still(i, err, ipe):
                        state["warming_up"] = False
                        log(f"warm-up ends at iteration {i:,} (training error {100 * err:.1f}%)")
                    window.reset()
                if i % eval_every == 0 or i == total:
                    average_buffers(net, dist)
                    _evaluate_all(net, evaluator, data, recipe, options, i, state, metrics, log, run_dir, dist)
                    model.train()
                    window.restart_clock()
                due = logged and time.monotonic() - saved_time >= ckpt_seconds
                if dist.active and logged:
                    due = dist.any(due, device)  # every process saves (and waits) at the same step
                if i % ckpt_every == 0 or i == total or due:
                    save_checkpoint(i)
                    window.restart_clock()
                # alone, stop right after the step; together, decide every few steps so all stop at the same step
                # (within torchrun's grace between SIGTERM and SIGKILL) without a collective on every step
                asked = stop.signal is not None
                if dist.active:
                    asked = dist.any(asked, device) if i % stop_every == 0 else False
                if asked and i < total:
                    mean_loss, _ = window.read(dist) if window.images or dist.active else (0.0, 0.0)
                    if math.isfinite(mean_loss):
                        save_checkpoint(i)
                    raise Interrupted(f"stopped at iteration {i:,} of {total:,}; saved {last}; continue with "
                                      f"`archspec train --resume --out {run_dir}`")
    finally:
        torch.backends.cudnn.benchmark = benchmark
        progress.end()
        metrics.close()
    return _summary(run_dir, state, total, start_time, device) if main else {}


def _finite(model: nn.Module) -> bool:
    """Whether every parameter is finite (one read of the device)."""
    flags = [torch.isfinite(p).all() for p in model.parameters()]
    return bool(torch.stack(flags).all()) if flags else True


def _diverged(loss: float, first: int, i: int, lr: float, last: Path, saved_at: int | None, run_dir: Path,
              where: str = "the loss") -> str:
    what = f"{where} became {loss}" if where == "the loss" else f"{where} became NaN or infinite"
    text = f"{what} between iterations {first:,} and {i:,} (lr {lr:g}); "
    fix = ("a lower learning rate (--lr), weight decay (--weight-decay) or momentum (--momentum), or a warm-up "
           "(--recipe 'schedule.warmup={lr: 0.01, until_train_error: 0.8}')")
    if saved_at is None:
        return text + f"no checkpoint was written, so the same command with {fix} starts the run again in {run_dir}"
    return text + (f"the last good checkpoint is {last} (iteration {saved_at:,}); resuming would repeat the same "
                   f"steps: start a new run in another folder (--out) with {fix}")


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
    stats = options.running_stats
    saved = stats.snapshot() if stats is not None else None  # recomputed stages must not count the batch twice
    loss.backward()
    if stats is not None:
        stats.restore(saved)
    optimizer.step()
    return loss, logits


def _waited(batches: Iterator[Any]) -> float:
    fn = getattr(batches, "wait_seconds", None)
    return float(fn()) if callable(fn) else 0.0


def _evaluate_all(model: nn.Module, evaluator: nn.Module, data: Any, recipe: Recipe, options: TrainOptions, i: int, state: dict[str, Any],
                  metrics: Any, log: Callable[[str], None], run_dir: Path, dist: Any) -> None:
    views = int(recipe.eval.get("views", 1))
    for split in data.splits:
        result = evaluate(evaluator, data, split, views=views, batch_size=options.eval_batch_size,
                          channels_last=options.channels_last, bf16=options.bf16,
                          reduce=dist.sum_ if dist.active else None)
        if not dist.is_main:
            continue
        metrics.write({"kind": split, "iter": i, **result})
        log(f"iteration {i:,}: {split} error {result['err']:.2f}% (loss {result['loss']:.4f}, "
            f"{result['images']:,} images{', 10-crop' if views == 10 else ''})")
        if split == "val" and (state["best_val_err"] is None or result["err"] < state["best_val_err"]):
            state["best_val_err"] = result["err"]
            checkpoint.save(run_dir / "best.pt", {"model": model.state_dict(), "iteration": i,
                                                  "val_err": result["err"], "arch": options.arch or {}})


def _summary(run_dir: Path, state: dict[str, Any], total: int, start: float, device: torch.device) -> dict[str, Any]:
    """The run's summary: the last record of each kind, the best validation error, the steady training speed
    (images over seconds of the windows after the first one of each start, which holds compile warm-up and
    autotuning) and the peak memory (the highest window peak)."""
    from archspec.runtime.metrics import read_metrics

    records = read_metrics(run_dir / "metrics.jsonl")
    trains = [r for r in records if r.get("kind") == "train"]
    peaks = [r["peak_mem_mb"] for r in trains if isinstance(r.get("peak_mem_mb"), (int, float))]
    final: dict[str, Any] = {"iterations": total, "best_val_err": state["best_val_err"],
                             "peak_mem_mb": round(max(peaks + [peak_memory_mb(device)]), 1)}
    for kind in ("train", "val", "test"):
        last = [r for r in records if r.get("kind") == kind]
        if last:
            final[f"final_{kind}"] = last[-1]
    steady = [r for r in trains if not r.get("warmup") and r.get("window_s")] or \
        [r for r in trains if r.get("window_s")]
    seconds = sum(r["window_s"] for r in steady)
    if seconds > 0:
        final["images_per_s"] = sum(r["images_per_s"] * r["window_s"] for r in steady) / seconds
    return final
