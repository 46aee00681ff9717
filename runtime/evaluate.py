"""Evaluation: loss, top-1 and top-5 error of a model on a data split, single view or 10-crop.

With 10 views the data source yields each sample's views consecutively (B*10 images); their softmax outputs
are averaged per sample, as in the paper's 10-crop testing.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def evaluate(model: nn.Module, data: Any, split: str, *, views: int = 1, batch_size: int | None = None,
             channels_last: bool = False, bf16: bool = False, reduce: Any = None) -> dict[str, Any]:
    """`reduce` sums counts over processes when each evaluated a share of the split (distributed training)."""
    was_training = model.training
    model.eval()
    images = 0
    loss_acc: torch.Tensor | None = None
    wrong1_acc: torch.Tensor | None = None
    wrong5_acc: torch.Tensor | None = None
    for x, y in data.eval_iter(split, batch_size):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x).float()
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
    device = next(model.parameters()).device
    sums = torch.tensor([loss_acc.item() if images else 0.0, float(wrong1_acc.item()) if images else 0.0,
                         float(wrong5_acc.item()) if images else 0.0, float(images)], dtype=torch.float64,
                        device=device)
    if reduce is not None:
        reduce(sums)
    loss_sum, wrong1, wrong5, images = sums.tolist()
    wrong1, wrong5, images = int(wrong1), int(wrong5), int(images)
    model.train(was_training)
    n = max(1, images)
    return {"loss": float(loss_sum) / n, "err": 100 * wrong1 / n, "top5_err": 100 * wrong5 / n, "images": images}
