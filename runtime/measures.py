"""What the training loop measures: the loss and error sums of the steps since the last log line (`Window`, kept
on the device), the peak memory, and the summary a finished run returns (`run_summary`, from metrics.jsonl).
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

import torch

from archspec.runtime.metrics import read_metrics, steady_images_per_s


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


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_summary(run_dir: Path, state: dict[str, Any], total: int, start: float, device: torch.device) -> dict[str, Any]:
    """The run's summary: the last record of each kind, the best validation error, the steady training speed
    (images over seconds of the windows after the first one of each start, which holds compile warm-up and
    autotuning) and the peak memory (the highest window peak)."""
    records = read_metrics(run_dir / "metrics.jsonl")
    trains = [r for r in records if r.get("kind") == "train"]
    peaks = [r["peak_mem_mb"] for r in trains if isinstance(r.get("peak_mem_mb"), (int, float))]
    final: dict[str, Any] = {"iterations": total, "best_val_err": state["best_val_err"],
                             "peak_mem_mb": round(max(peaks + [peak_memory_mb(device)]), 1)}
    for kind in ("train", "val", "test"):
        last = [r for r in records if r.get("kind") == kind]
        if last:
            final[f"final_{kind}"] = last[-1]
    speed = steady_images_per_s(trains)
    if speed is not None:
        final["images_per_s"] = speed
    return final
