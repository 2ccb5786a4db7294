"""Multi-process training with torch.distributed, as ``torchrun`` starts it.

``torchrun --nproc_per_node N -m heatmaploc train ...`` starts N copies of the command
with ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` (and the rendezvous address) in their
environment; :func:`setup` reads them and joins the process group: ``nccl`` when each
process has a CUDA device of its own, ``gloo`` on CPUs.  Without those variables (or
with ``WORLD_SIZE=1``) everything here is a no-op and training runs as one process.

What the training loop needs to make N processes equal one process with the same global
batch (:mod:`heatmaploc.training`):

* each process takes its contiguous ``batch / N`` share of every step's global sample
  indices (:meth:`Context.share`);
* gradients are averaged by ``DistributedDataParallel``; batch normalization uses the
  statistics of the global batch (``nn.SyncBatchNorm`` on CUDA; on CPUs, where it does
  not run, :class:`CpuSyncBatchNorm`);
* losses normalized by a count over the batch (positives, offset pixels) divide by the
  global count (:meth:`Context.count_norm`), so the averaged gradient is that of the
  one-process loss;
* stop decisions (Ctrl-C, the time budget) are agreed by all processes
  (:meth:`Context.any`), and only rank 0 validates, logs and writes checkpoints.
"""
from __future__ import annotations

import gc
import os
import warnings
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn as nn


@dataclass(frozen=True)
class Context:
    """This process's place in the run: ``rank`` of ``world`` (1: not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """The process that validates, logs and writes (rank 0)."""
        return self.rank == 0

    def share(self, batch: int) -> slice:
        """This rank's slice of a step's ``batch`` global sample positions."""
        per = batch // self.world
        return slice(self.rank * per, (self.rank + 1) * per)

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (a collective call)."""
        if not self.distributed:
            return flag
        t = torch.tensor([1.0 if flag else 0.0])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def max(self, value: float) -> float:
        """The largest ``value`` over the ranks (a collective call)."""
        if not self.distributed:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the ranks (a collective call)."""
        if not self.distributed:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t.item()) / self.world

    def count_norm(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """For a loss ``sum / max(count, 1)`` over this rank's part of the batch: the
        denominator that makes the ranks' averaged gradient the one-process gradient,
        ``max(global count, 1) / world``; ``None`` (the plain one) in one process."""
        if not self.distributed:
            return None

        def norm(count: torch.Tensor) -> torch.Tensor:
            total = count.detach().clone().float()
            dist.all_reduce(total)
            return total.clamp(min=1.0) / self.world

        return norm

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def setup(device_name: str) -> tuple[Context, torch.device | None]:
    """Join the process group torchrun describes, if any.  Returns the context and,
    when distributed, this process's device (``cuda:LOCAL_RANK``, or the CPU); ``None``
    means: pick the device as a single process does."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context(), None
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device_name != "cpu" and torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local)
    return Context(rank, world, local), torch.device(f"cuda:{local}" if cuda else "cpu")


def teardown(ctx: Context) -> None:
    """Leave the process group.  What the caller has let go of but reference cycles
    keep (a run's DistributedDataParallel, whose reducer holds the group) is collected
    first: freed later, possibly at interpreter exit, gloo's threads abort the process."""
    if ctx.distributed and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


class CpuSyncBatchNorm(nn.BatchNorm2d):
    """``BatchNorm2d`` over the global batch of all ranks on CPUs (``nn.SyncBatchNorm``
    runs on accelerators only): the per-channel sums, then the sums of squared deviations
    from the global mean, are all-reduced
    with autograd (``torch.distributed.nn.functional.all_reduce``), so gradients flow
    through the shared statistics as in one process.  Running statistics follow
    ``BatchNorm2d`` (unbiased variance, momentum or cumulative average).  Outside
    training, or in one process, it is ``BatchNorm2d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c = x.shape[1]
        xf = x.float()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # its replacement is private; this one has autograd
            n = torch.tensor(float(x.numel() // c))
            counted = all_reduce(torch.cat([xf.sum(dim=(0, 2, 3)), n.reshape(1)]))
            n = counted[-1]
            mean = counted[:c] / n
            # two passes (sum, then squared deviations): E[x^2] - E[x]^2 cancels badly in float32
            centred = xf - mean[None, :, None, None]
            var = all_reduce((centred * centred).sum(dim=(0, 2, 3))) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - factor).add_(factor * mean.detach())
                self.running_var.mul_(1 - factor).add_(factor * var.detach() * (n / (n - 1)).clamp(max=1e6))
        y = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)


def sync_batchnorm(model: nn.Module, ctx: Context, cuda: bool) -> nn.Module:
    """``model`` with every batch norm computed over the global batch (in place for the
    CPU variant; the state dict keys are unchanged either way)."""
    if not ctx.distributed:
        return model
    if cuda:
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is nn.BatchNorm2d:
                replacement = CpuSyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                               child.track_running_stats)
                replacement.load_state_dict(child.state_dict())
                setattr(module, child_name, replacement)
    return model


__all__ = ["Context", "setup", "teardown", "CpuSyncBatchNorm", "sync_batchnorm"]
