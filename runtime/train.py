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
- Ctrl-C or SIGTERM finishes the step in flight, saves a checkpoint and stops cleanly. During an evaluation it is
  acknowledged at once and the evaluation stops at the next batch (in a single process; under torchrun every
  process must finish it); the splits not evaluated are recorded in the checkpoint and evaluated first on resume.
- Checkpoints come often enough that a kill loses little: by default every evaluation, but at least ten times
  per run (so a short run checkpoints every log interval), and whenever `checkpoint_minutes` have passed since
  the last one (checked at log intervals, default 10 minutes). Each carries the architecture's identity.
"""

from __future__ import annotations

import json
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from archspec.runtime import checkpoint
from archspec.runtime.data.common import cpu_generator
from archspec.runtime.evaluate import evaluate
from archspec.runtime.measures import Window, peak_memory_mb, run_summary
from archspec.runtime.metrics import MetricsLog, Progress
from archspec.runtime.recipe import Recipe

__all__ = ["Diverged", "Interrupted", "TrainOptions", "Window", "checkpoint_interval", "make_optimizer",
           "peak_memory_mb", "train"]


STOP_CHECK_STEPS = 10  # under torchrun, processes agree on a stop request this often (steps)


class Diverged(Exception):
    """The loss became NaN or infinite; the message says where and which checkpoint is the last good one."""


class Interrupted(Exception):
    """Stopped by Ctrl-C or SIGTERM after saving a checkpoint."""


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """How to train, as the caller decided it (read-only: what the loop learns as it goes lives in the loop)."""
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
    tensorboard: bool = False  # scalars also as TensorBoard events in <run>/tensorboard/ (runtime.metrics)
    preprocessing: dict[str, Any] | None = None  # what the inputs must be, into every checkpoint (runtime.preprocess)
    seed: int = 0  # the run's seed: Mixup/CutMix draw from generators seeded by (seed, iteration)


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

    def name(self) -> str:
        return "Ctrl-C" if self.signal == signal.SIGINT else signal.Signals(self.signal or signal.SIGTERM).name

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """The optimizer the recipe's `optimizer.name` picks, with its declared fields (archspec.lang.recipe_fields)."""
    from archspec.runtime.optim import build_optimizer

    return build_optimizer(model, recipe.optimizer)


@dataclass(frozen=True)
class StepParts:
    """What one update needs beyond the model and the batch: the loss of (logits, targets) and the gradient
    clipping (None: none). The targets are the labels, or the mixed soft targets of Mixup/CutMix."""
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    clip: Callable[[], None] | None = None


def step_parts(recipe: Recipe, model: nn.Module, classes: int) -> StepParts:
    """The loss and the clipping the recipe asks for."""
    from archspec.runtime.losses import TrainLoss
    from archspec.runtime.optim import clip_gradients

    loss = TrainLoss(recipe.loss, classes, smoothing=recipe.label_smoothing,
                     target_threshold=recipe.bce_target_threshold)
    if recipe.clip_grad is None:
        return StepParts(loss=loss)
    mode, top, params = recipe.clip_grad.mode, recipe.clip_grad.max, list(model.parameters())
    return StepParts(loss=loss, clip=lambda: clip_gradients(params, mode, top))


def checkpoint_interval(total: int, log_every: int, eval_every: int, asked: int | None) -> int:
    """Iterations between checkpoints: `asked`, or every evaluation but at least ten times per run; always a
    multiple of the log interval, where the NaN check runs (a checkpoint is never of a diverged state)."""
    every = asked or min(eval_every, log_every * -(-total // (10 * log_every)))
    return max(log_every, -(-every // log_every) * log_every)


def train(model: nn.Module, recipe: Recipe, data: Any, options: TrainOptions,
          log: Callable[[str], None], step_fn: Callable[..., Any] | None = None,
          resume_state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train `model` by `recipe` on `data`; returns the final summary (also written to run.json).

    `log` receives every line worth keeping (evaluations, warm-up, checkpoints on stop): the caller writes it to
    log.txt and shows it. The progress bar is drawn here."""
    loop = _Loop(model, recipe, data, options, log)
    loop.start(resume_state)
    resume_state = None  # (held only until here: it is the size of the model and its optimizer)
    step = step_fn or _plain_step
    benchmark = torch.backends.cudnn.benchmark
    if loop.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: cuDNN picks its fastest kernels once (reset below)
    if options.checkpoint_activations:
        from archspec.runtime.stages import RunningStats

        loop.running_stats = RunningStats(loop.net)
    loop.model.train()
    try:
        with _StopFlag() as stop:
            loop.run(step, stop)
    finally:
        torch.backends.cudnn.benchmark = benchmark
        loop.progress.end()
        loop.metrics.close()
    return run_summary(loop.run_dir, loop.state, loop.total, loop.start_time, loop.device) if loop.main else {}


class _Loop:
    """One call of `train`: the module (`net`), what trains it (`model`: wrapped for DDP, maybe compiled) and what
    evaluates it, the optimizer, the schedule's intervals, the run's state, the metric window and the checkpoint
    on disk (`saved_at`, `saved_time`)."""

    def __init__(self, model: nn.Module, recipe: Recipe, data: Any, options: TrainOptions,
                 log: Callable[[str], None]) -> None:
        from archspec.runtime.distributed import Dist, wrap

        self.recipe, self.data, self.options = recipe, data, options
        self.device = device = options.device
        self.dist = dist = options.dist or Dist()
        self.main = dist.is_main
        self.run_dir = options.run_dir
        self.net = net = model.to(device)  # the module itself: state_dict, evaluation (whatever wraps it to train)
        if options.channels_last:
            net.to(memory_format=torch.channels_last)
        self.model = wrap(net, dist, device)
        self.evaluator = net
        if options.compile:
            self.model = torch.compile(self.model)
            self.evaluator = torch.compile(net)  # evaluation runs compiled too (its own graph, in eval mode)
        self.optimizer = make_optimizer(net, recipe)
        self.parts = step_parts(recipe, net, data.num_classes)
        self.mix: Any = None
        if recipe.mixup is not None:
            from archspec.runtime.mixup import MixCut

            m = recipe.mixup
            self.mix = MixCut(m.mixup_alpha, m.cutmix_alpha, prob=m.prob, switch_prob=m.switch_prob,
                              smoothing=recipe.label_smoothing, classes=data.num_classes)
        self.ema: Any = None
        if recipe.ema is not None:
            from archspec.runtime.ema import WeightEma

            e = recipe.ema
            self.ema = WeightEma(net, e.decay, warmup=e.warmup, warmup_power=e.warmup_power, every=e.every,
                                 start=recipe.iterations(e.start, data.iters_per_epoch) if e.start else 0)
        self.ipe = ipe = data.iters_per_epoch
        self.total = total = recipe.total_iters(ipe)
        self.log_every = recipe.log_interval
        self.eval_every = recipe.eval_interval(ipe)
        self.ckpt_every = checkpoint_interval(total, self.log_every, self.eval_every, options.checkpoint_interval)
        self.ckpt_seconds = 60.0 * options.checkpoint_minutes
        self.stop_every = min(self.log_every, STOP_CHECK_STEPS)
        self.state: dict[str, Any] = {"iteration": 0, "warming_up": recipe.schedule.warmup is not None,
                                      "best_val_err": None, "started": time.time()}
        self.window = Window(device)
        self.metrics: Any = (MetricsLog(self.run_dir / "metrics.jsonl", tensorboard=options.tensorboard)
                             if self.main else _Silent())
        self.log = log if self.main else _quiet_log
        self.last = self.run_dir / "last.pt"
        self.saved_at: int | None = None  # the iteration of the checkpoint on disk
        self.running_stats: Any = None  # runtime.stages.RunningStats of the model under activation checkpointing
        self.inputs = {"preprocessing": options.preprocessing} if options.preprocessing is not None else {}

    def start(self, resume_state: dict[str, Any] | None = None) -> None:
        """Resume from last.pt (`resume_state`: it, already read and verified by the caller) or start afresh;
        open the metrics and the train stream, start the clocks."""
        options, state = self.options, self.state
        if options.resume:
            ck = resume_state or checkpoint.training_state(self.last, options.arch or {})
            self.net.load_state_dict(ck["model"])
            self.optimizer.load_state_dict(ck["optimizer"])
            if self.ema is not None:
                if "ema" not in ck:
                    raise checkpoint.CheckpointError(f"{self.last} holds no EMA of the weights, but the recipe keeps "
                                                     "one: it is not this run's own last.pt; restore it")
                self.ema.load_state_dict(ck["ema"])
            state.update(ck["state"])
            note = checkpoint.set_rng_state(ck["rng"], self.device, self.dist)
            if note:
                self.log(note)
            self.window.load(ck["window"])
            self.metrics.open(keep_until=state["iteration"])
            self.saved_at = state["iteration"]
            self.log(f"resumed from {self.last} at iteration {state['iteration']:,} of {self.total:,}")
        else:
            self.metrics.open()
        asked, why = options.checkpoint_interval, ""
        if asked and asked != self.ckpt_every:  # (the interval used, and why it is not the one asked for)
            why = (f" (--checkpoint-interval {asked:,} rounded up to a multiple of the log interval, "
                   f"{self.log_every:,}: a checkpoint is taken only where the loss has been checked for NaN)")
        self.log(f"checkpoints: every {self.ckpt_every:,} iterations{why} and every {options.checkpoint_minutes:g} "
                 f"minutes, to {self.last}")
        self.i = state["iteration"]
        self.batches = self.data.train_iter(self.i)
        self.progress = Progress(self.total, enabled=options.progress and self.main)
        self.progress.begin(self.i)
        self.start_time = time.perf_counter()
        self.saved_time = time.monotonic()
        self.waited = _waited(self.batches)
        self.first_window = True

    def run(self, step: Callable[..., Any], stop: _StopFlag) -> None:
        """Train from iteration `i` to the end (or a stop request): step, log, evaluate, checkpoint."""
        recipe, options, window = self.recipe, self.options, self.window
        if self.state.get("pending_eval"):  # a resumed run whose evaluation at this iteration was cut short
            self.evaluate(self.i, stop, self.state["pending_eval"]["splits"])
            self.stop_if_asked(self.i, stop)
        while self.i < self.total:
            lr = recipe.lr(self.i, self.ipe, self.state["warming_up"])
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            x, y = next(self.batches)
            target = y
            if self.mix is not None:
                x, target = self.mix(x, y, cpu_generator("mixup", options.seed, self.i))
            if options.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            loss, logits = step(self.model, self.optimizer, x, target, options, self.running_stats, self.parts)
            window.add(loss, logits, y)
            self.i += 1
            i = self.i
            if self.ema is not None:
                self.ema.update(self.net, i)
            logged = i % self.log_every == 0 or i == self.total
            if logged:
                self.log_window(i, lr)
            if i % self.eval_every == 0 or i == self.total:
                self.evaluate(i, stop)
            self.checkpoint_if_due(i, logged)
            self.stop_if_asked(i, stop)

    def log_window(self, i: int, lr: float) -> None:
        """The log line of the window that ends at iteration `i`: the NaN guard, metrics, progress, warm-up."""
        window, dist, device = self.window, self.dist, self.device
        mean_loss, err = window.read(dist)
        if not math.isfinite(mean_loss):
            raise Diverged(_diverged(mean_loss, i - window.steps + 1, i, lr, self.last, self.saved_at, self.run_dir))
        elapsed = time.perf_counter() - window.started
        ips = window.timed_images * dist.world / max(elapsed, 1e-9)
        warmup = self.first_window  # compile warm-up, cuDNN autotuning, caches: not the steady speed
        self.first_window = False
        wait = _waited(self.batches) - self.waited
        self.waited += wait
        record = {"kind": "train", "iter": i, "epoch": round(i / self.ipe, 4), "loss": mean_loss, "lr": lr,
                  "train_err": 100 * err, "images_per_s": ips,
                  "time": time.perf_counter() - self.start_time, "data_wait": wait / max(elapsed, 1e-9),
                  "window_s": elapsed, "peak_mem_mb": peak_memory_mb(device)}
        if warmup:
            record["warmup"] = True
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)  # each record: the peak of its own window
        self.metrics.write(record)
        self.progress.update(i, mean_loss, lr, 100 * err, ips)
        if wait > 0.2 * elapsed and elapsed > 1:
            self.log(f"input pipeline is the bottleneck: {100 * wait / elapsed:.0f}% of the "
                     f"last {window.steps} steps waited for data (more --workers?)")
        if self.state["warming_up"] and not self.recipe.warmup_still(i, err, self.ipe):
            self.state["warming_up"] = False
            linear = self.recipe.schedule.warmup.kind == "linear"
            self.log(f"linear warm-up ends at iteration {i:,}" if linear else
                     f"warm-up ends at iteration {i:,} (training error {100 * err:.1f}%)")
        window.reset()

    def evaluate(self, i: int, stop: _StopFlag, splits: list[str] | None = None) -> None:
        """Evaluate `splits` (default: every split) at iteration `i`. A single process asked to stop ends the
        evaluation at the next batch, says so at once, and keeps the splits left in the state (so in the
        checkpoint that the stop saves) for a resumed run to evaluate first."""
        from archspec.runtime.distributed import average_buffers

        average_buffers(self.net, self.dist)
        asked = None if self.dist.active else (lambda: stop.signal is not None)
        left = self.evaluate_splits(i, splits, asked)
        self.state.pop("pending_eval", None)
        if left:
            self.state["pending_eval"] = {"iteration": i, "splits": left}
            self.progress.message(f"archspec: stopping ({stop.name()}): the evaluation at iteration {i:,} ends "
                                  "here (the rest of it runs first on --resume); saving a checkpoint (Ctrl-C again "
                                  "stops at once, without one)", always=self.main)
        self.model.train()
        self.window.restart_clock()

    def checkpoint_if_due(self, i: int, logged: bool) -> None:
        """Save at the checkpoint interval, at the end, and at a log line when `checkpoint_minutes` have passed."""
        due = logged and time.monotonic() - self.saved_time >= self.ckpt_seconds
        if self.dist.active and logged:
            due = self.dist.any(due, self.device)  # every process saves (and waits) at the same step
        if i % self.ckpt_every == 0 or i == self.total or due:
            self.save_checkpoint(i)
            self.window.restart_clock()

    def stop_if_asked(self, i: int, stop: _StopFlag) -> None:
        """After Ctrl-C or SIGTERM: save a checkpoint (of a finite state) and raise Interrupted."""
        # alone, stop right after the step; together, decide every few steps so all stop at the same step
        # (within torchrun's grace between SIGTERM and SIGKILL) without a collective on every step
        dist, window = self.dist, self.window
        asked = stop.signal is not None
        if dist.active:
            asked = dist.any(asked, self.device) if i % self.stop_every == 0 else False
        if asked and (i < self.total or self.state.get("pending_eval")):
            mean_loss, _ = window.read(dist) if window.images or dist.active else (0.0, 0.0)
            if math.isfinite(mean_loss):
                self.save_checkpoint(i)
            raise Interrupted(f"stopped at iteration {i:,} of {self.total:,}; saved {self.last}; continue with "
                              f"`archspec train --resume --out {self.run_dir}`")

    def evaluate_splits(self, i: int, splits: list[str] | None = None,
                        stop: Callable[[], bool] | None = None) -> list[str]:
        """Evaluate `splits` at iteration `i` (default: every split; logged, in metrics.jsonl); a new best
        validation error saves best.pt. Returns the splits left unevaluated because `stop` said so (a split cut
        short records nothing)."""
        data, options, dist, state = self.data, self.options, self.dist, self.state
        views = self.recipe.eval.views
        todo = [s for s in data.splits if splits is None or s in splits]
        if self.ema is not None:  # the average of the weights is scored beside them, split by split
            todo = [t for s in todo for t in (s, f"{s}_ema") if splits is None or t in splits]
        for k, split in enumerate(todo):
            ema = split.endswith("_ema")
            result = evaluate(self.ema.module if ema else self.evaluator, data, split.removesuffix("_ema"),
                              views=views, batch_size=options.eval_batch_size,
                              channels_last=options.channels_last, bf16=options.bf16,
                              reduce=dist.sum_ if dist.active else None, stop=stop)
            if result is None:
                return todo[k:]
            if not dist.is_main:
                continue
            self.metrics.write({"kind": split, "iter": i, "epoch": round(i / data.iters_per_epoch, 4), **result})
            shown = f"{split.removesuffix('_ema')} error of the EMA weights" if ema else f"{split} error"
            self.log(f"iteration {i:,}: {shown} {result['err']:.2f}% (loss {result['loss']:.4f}, "
                     f"{result['images']:,} images{', 10-crop' if views == 10 else ''})")
            best = "best_val_ema_err" if ema else "best_val_err"
            if split.removesuffix("_ema") == "val" and (state.get(best) is None or result["err"] < state[best]):
                state[best] = result["err"]  # best.pt, and best_ema.pt for the EMA weights: each servable alone
                weights = self.ema.module.state_dict() if ema else self.net.state_dict()
                checkpoint.save(self.run_dir / ("best_ema.pt" if ema else "best.pt"),
                                {"model": weights, "iteration": i, "val_err": result["err"],
                                 "arch": options.arch or {}, **self.inputs})
        return []

    def save_checkpoint(self, at: int) -> None:
        """last.pt at iteration `at` (never of non-finite weights), written by rank 0 after every process agreed."""
        from archspec.runtime.distributed import average_buffers

        net, dist, options, state = self.net, self.dist, self.options, self.state
        if not _finite(net):  # the last update can break the weights although the losses before it were fine
            raise Diverged(_diverged(float("nan"), at, at, self.recipe.lr(at - 1, self.ipe, state["warming_up"]),
                                     self.last, self.saved_at, self.run_dir, where="the weights"))
        average_buffers(net, dist)
        rng = checkpoint.rng_state(self.device, dist)  # every process's generators (a collective under DDP)
        if self.main:
            ema = {"ema": self.ema.state_dict()} if self.ema is not None else {}
            checkpoint.save(self.last, {"model": net.state_dict(), "optimizer": self.optimizer.state_dict(), **ema,
                                        "state": {**state, "iteration": at}, "rng": rng,
                                        "window": self.window.state(), "recipe": json.loads(self.recipe.to_json()),
                                        "arch": options.arch or {}, **self.inputs})
            if options.on_checkpoint is not None:
                options.on_checkpoint(at)
        dist.barrier()
        self.saved_at, self.saved_time = at, time.monotonic()


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
                options: TrainOptions, stats: Any = None, parts: StepParts | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """One update; `y`: the labels or soft targets; `stats`: the RunningStats of a model under activation
    checkpointing (None otherwise); `parts`: the recipe's loss and clipping (None: cross-entropy, no clipping)."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=options.bf16):
        logits = model(x)
        loss = parts.loss(logits.float(), y) if parts is not None else F.cross_entropy(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    saved = stats.snapshot() if stats is not None else None  # recomputed stages must not count the batch twice
    loss.backward()
    if stats is not None:
        stats.restore(saved)
    if parts is not None and parts.clip is not None:
        parts.clip()
    optimizer.step()
    return loss, logits


def _waited(batches: Iterator[Any]) -> float:
    fn = getattr(batches, "wait_seconds", None)
    return float(fn()) if callable(fn) else 0.0
