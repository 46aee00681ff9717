"""Evaluation: loss, top-1 and top-5 error of a model on a data split, single view or 10-crop.

With 10 views the data source yields each sample's views consecutively (B*10 images); their softmax outputs
are averaged per sample, as in the paper's 10-crop testing.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn


def evaluate(model: nn.Module, data: Any, split: str, *, views: int | None = None, batch_size: int | None = None,
             channels_last: bool = False, bf16: bool = False, reduce: Any = None,
             stop: Callable[[], bool] | None = None) -> dict[str, Any] | None:
    """`views`: how many views of each image the data yields (by default as many as it was made to:
    `data.eval_views`, from the recipe's `eval.views`). `reduce` sums counts over processes when each evaluated a
    share of the split (distributed training).
    `stop` is asked before each batch; when it says yes the evaluation ends there and the result is None (a
    training run stopped by Ctrl-C; with `reduce` it cannot be used, as every process must reach the sum).

    Runs under `torch.inference_mode`. Every batch has the same shape: the last, smaller one is padded with zeros
    to the first one's size and the padding's outputs dropped, so cuDNN's autotuning and a compiled model see one
    shape only (no re-tuning, no recompilation for an odd-sized tail)."""
    views = data.eval_views if views is None else views
    was_training = model.training
    model.eval()
    images = 0
    loss_acc: torch.Tensor | None = None
    wrong1_acc: torch.Tensor | None = None
    wrong5_acc: torch.Tensor | None = None
    full: int | None = None
    with torch.inference_mode():
        for x, y in data.eval_iter(split, batch_size):
            if stop is not None and stop():
                model.train(was_training)
                return None
            n = x.shape[0]
            full = full or n
            if n < full:
                x = torch.cat([x, x.new_zeros((full - n, *x.shape[1:]))])
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(x).float()[:n]
            if views > 1:
                probs = logits.softmax(-1).view(-1, views, logits.shape[-1]).mean(1)
                loss = F.nll_loss(probs.clamp_min(1e-12).log(), y, reduction="sum")
                scores = probs
            else:
                loss = F.cross_entropy(logits, y, reduction="sum")
                scores = logits
            top = scores.topk(min(5, scores.shape[-1]), dim=-1).indices
            w1 = (top[:, 0] != y).sum()
            w5 = (~(top == y[:, None]).any(-1)).sum()
            loss_acc = loss.double() if loss_acc is None else loss_acc + loss.double()
            wrong1_acc = w1 if wrong1_acc is None else wrong1_acc + w1
            wrong5_acc = w5 if wrong5_acc is None else wrong5_acc + w5
            images += y.shape[0]
        device = next(iter(model.parameters())).device
        zero = torch.zeros((), dtype=torch.float64, device=device)
        sums = torch.stack([loss_acc.double() if loss_acc is not None else zero,
                            wrong1_acc.double() if wrong1_acc is not None else zero,
                            wrong5_acc.double() if wrong5_acc is not None else zero,
                            torch.tensor(float(images), dtype=torch.float64, device=device)])
    sums = sums.clone()  # an ordinary tensor again (inference tensors cannot take part in a collective's autograd)
    if reduce is not None:
        reduce(sums)
    loss_sum, wrong1, wrong5, images = sums.tolist()  # the one read of the device per evaluation
    wrong1, wrong5, images = int(wrong1), int(wrong5), int(images)
    model.train(was_training)
    n = max(1, images)
    return {"loss": float(loss_sum) / n, "err": 100 * wrong1 / n, "top5_err": 100 * wrong5 / n, "images": images}
