"""Running under `torchrun`: process group, this process's device, and the few collective steps training needs.

`torchrun --nproc_per_node=N -m archspec train ...` starts N processes with RANK, LOCAL_RANK and WORLD_SIZE set.
Each takes its slice of every global batch (the recipe's batch size is the global batch, so the learning rate
needs no change), gradients are averaged by DistributedDataParallel, and only rank 0 writes the run folder.
Metric windows and evaluation counts are summed over processes, and decisions (stop, NaN) are taken together,
so no process waits for another that already left.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """Sum `t` over processes, in place (a no-op alone)."""
        if self.active:
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        return t

    def any(self, flag: bool, device: torch.device) -> bool:
        """True if `flag` is true in any process."""
        if not self.active:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.active and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def from_environment(device: torch.device) -> tuple[Dist, torch.device]:
    """The process group torchrun describes (or a single process), and the device this process trains on."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if device.type == "cuda":  # bound to its GPU from the start: NCCL sets up eagerly, no device guessing
        torch.distributed.init_process_group(backend=backend, device_id=device)
    else:
        torch.distributed.init_process_group(backend=backend)
    return Dist(rank, world, local), device


def wrap(model: torch.nn.Module, dist: Dist, device: torch.device) -> Any:
    """DistributedDataParallel around `model` when running in several processes."""
    if not dist.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    # No buffer broadcast on every forward (batch norm's running statistics are averaged over processes before
    # each evaluation and checkpoint instead: `average_buffers`); gradients live in DDP's buckets (no copy).
    import inspect

    no_sync = ({"forward_sync_buffers": False}  # its name since torch 2.13
               if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
               else {"broadcast_buffers": False})
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                   gradient_as_bucket_view=True, **no_sync)


def average_buffers(model: torch.nn.Module, dist: Dist) -> None:
    """Make batch norm's running statistics the same in every process: their mean over processes (each process
    saw its own share of the batches). A no-op alone, and for SyncBatchNorm, whose statistics already agree."""
    if not dist.active:
        return
    stats = [b for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
             and not isinstance(m, torch.nn.SyncBatchNorm) and m.track_running_stats
             for b in (m.running_mean, m.running_var) if b is not None]
    if not stats:
        return
    flat = torch.cat([b.reshape(-1).double() for b in stats])
    torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
    flat /= dist.world
    offset = 0
    with torch.no_grad():
        for b in stats:
            b.copy_(flat[offset:offset + b.numel()].view_as(b))
            offset += b.numel()
