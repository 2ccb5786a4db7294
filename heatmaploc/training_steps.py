"""The pieces of a training run: the model, optimizer, EMA and schedule it builds, the
loss of one batch, its checkpoints and its log (what :mod:`heatmaploc.training`'s loop
and ``tools/profile_training.py`` share)."""
from __future__ import annotations

import csv
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel

from heatmaploc import distributed
from heatmaploc.atomic import atomic_path
from heatmaploc.codec import HeatmapCodec
from heatmaploc.config import RunConfig, TrainConfig
from heatmaploc.models import build_model, model_config_dict


class TrainingDiverged(ValueError):
    """The loss became NaN/inf; the last good checkpoint was kept."""


def make_ema(model: nn.Module, decay: float) -> AveragedModel:
    """Exponential moving average of weights and buffers with the usual warm-up
    ``min(decay, (1 + n) / (10 + n))``: a fixed decay would keep the random initial
    weights in the average for thousands of steps."""

    @torch.no_grad()
    def update(avg: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        return avg + (current - avg) * (1.0 - d)

    return AveragedModel(model, avg_fn=update, use_buffers=True)


def lr_factor(step: int, warmup: int, total: int, time_fraction: float = 0.0) -> float:
    """Linear warmup, then cosine to 1 % over the steps, or over the time budget when
    ``time_fraction`` (elapsed / budget) is further along."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    progress = max((step - warmup) / max(total - warmup, 1), time_fraction)
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def training_model(cfg: RunConfig, device: torch.device) -> tuple[HeatmapCodec, nn.Module]:
    """The run's codec and freshly initialized model on ``device`` (channels_last when
    ``train.channels_last``), checked against each other."""
    codec = HeatmapCodec(cfg.codec)
    model = build_model({**cfg.model, "in_channels": cfg.data.in_channels}).to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    codec.check_model(model, "model")
    if cfg.codec.refine == "offset" and not getattr(model.config, "regression", False):
        raise ValueError("codec.refine 'offset' decodes the offsets of a regression head: set model.regression: true, "
                         "or another codec.refine")
    return codec, model


def make_optimizer(model: nn.Module, tc: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)


def autocast(tc: TrainConfig, device: torch.device):
    """bfloat16 autocast: on CUDA with ``train.amp``, on the CPU with ``train.cpu_bf16``
    (CPUs with native bfloat16, e.g. AVX512-BF16 or AMX, run the convolutions faster;
    elsewhere it is emulated and slower)."""
    enabled = tc.amp if device.type == "cuda" else tc.cpu_bf16 and device.type == "cpu"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def batch_loss(model: nn.Module, batch: dict[str, Any], codec: HeatmapCodec, tc: TrainConfig,
               device: torch.device, forward: nn.Module | None = None,
               count_norm: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Forward one collated batch under :func:`autocast` (through ``forward``, e.g. the
    DDP wrapper of ``model``, when given) and return the model's own training loss
    (:meth:`~heatmaploc.models.outputs.HeatmapModel.compute_loss`; ``count_norm``: the
    denominator of count-normalized losses, :meth:`heatmaploc.distributed.Context.count_norm`)."""
    x = batch["image"].to(device)
    if tc.channels_last:
        x = x.to(memory_format=torch.channels_last)
    with autocast(tc, device):
        out = (forward or model)(x)
        if count_norm is None:
            return model.compute_loss(out, batch, codec, tc)
        return model.compute_loss(out, batch, codec, tc, count_norm=count_norm)


def checkpoint_payload(model, ema, opt, sched, cfg, codec_cfg, step, epoch, best, history,
                       epoch_losses) -> dict[str, Any]:
    """A training checkpoint: the weights to predict with (the EMA's when there is one)
    and everything a bit-identical resume needs (``train_state``)."""
    return {
        "model_config": model_config_dict(model),
        "codec_config": asdict(codec_cfg),
        "run_config": cfg.to_dict(),
        "model_state": (ema.module if ema is not None else model).state_dict(),
        "train_state": {
            "raw_model_state": model.state_dict(),
            "ema_state": ema.state_dict() if ema is not None else None,
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "step": step,
            "epoch": epoch,
            "best_metric": best,
            "history": history,
            "epoch_losses": list(epoch_losses),  # this epoch's so far: a mid-epoch resume logs the same mean
            "model_train_state": model.train_state(),
            "torch_rng": torch.get_rng_state(),
        },
    }


def write_history(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """``log.csv`` and ``curves.png`` of the validation rows so far."""
    if not history:
        return
    keys = list(history[0])
    with atomic_path(run_dir / "log.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
    from heatmaploc.viz import plot_training_curves

    plot_training_curves(history, run_dir / "curves.png")


def tensorboard(run_dir: Path):
    """A SummaryWriter when tensorboard is installed, else None (it is optional)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def share_train_state(model: nn.Module, ctx: distributed.Context) -> None:
    """Rank 0's validation may change the model's own schedule (the cascade's stage):
    every rank takes rank 0's."""
    if ctx.distributed:
        import torch.distributed as dist

        state = [model.train_state()]
        dist.broadcast_object_list(state, src=0)
        model.load_train_state(state[0])
