"""The training loop (importable, no argument parsing).

``train(cfg, run_dir)`` reads top to bottom: build the model (optionally from another
checkpoint's weights) and optimizer, or restore everything from ``last.pt``; then per
epoch: forward/backward/clip/step/EMA over the streamed samples
(:mod:`heatmaploc.data.sources`), validate, checkpoint, log; finally calibrate the best
checkpoint's decode threshold and sigma factor on the validation set.
"""
from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader
from tqdm import tqdm

from heatmaploc import distributed
from heatmaploc.checkpoint import (adapt_state_dict, adopt_codec_config, adopt_model_config, checkpoint_path,
                                   load_checkpoint, save_checkpoint)
from heatmaploc.codec import CodecConfig, HeatmapCodec
from heatmaploc.config import RunConfig, TrainConfig, save_config
from heatmaploc.data.dataset import collate
from heatmaploc.data.sources import training_stream, validation_samples
from heatmaploc.evaluation import calibrate_checkpoint, evaluate_outputs
from heatmaploc.inference import pick_device, predict_samples
from heatmaploc.models import build_model, model_config_dict
from heatmaploc.runtime import StepInterrupt, ignore_interrupt, torch_session

log = logging.getLogger(__name__)


class TrainingDiverged(ValueError):
    """The loss became NaN/inf; the last good checkpoint was kept."""


@dataclass
class TrainResult:
    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    history: list[dict[str, Any]]
    threshold: float
    best_metric: float
    finished: bool


def make_ema(model: nn.Module, decay: float) -> AveragedModel:
    """Exponential moving average of weights and buffers with the usual warm-up
    ``min(decay, (1 + n) / (10 + n))``: a fixed decay would keep the random initial
    weights in the average for thousands of steps."""

    @torch.no_grad()
    def update(avg: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        return avg + (current - avg) * (1.0 - d)

    return AveragedModel(model, avg_fn=update, use_buffers=True)


def _lr_factor(step: int, warmup: int, total: int, time_fraction: float = 0.0) -> float:
    """Linear warmup, then cosine to 1 % over the steps, or over the time budget when
    ``time_fraction`` (elapsed / budget) is further along."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    progress = max((step - warmup) / max(total - warmup, 1), time_fraction)
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _tensorboard(run_dir: Path):
    """A SummaryWriter when tensorboard is installed, else None (it is optional)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def _write_history(run_dir: Path, history: list[dict[str, Any]]) -> None:
    if not history:
        return
    keys = list(history[0])
    with open(run_dir / "log.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
    from heatmaploc.viz import plot_training_curves

    plot_training_curves(history, run_dir / "curves.png")


def _checkpoint_payload(model, ema, opt, sched, cfg, codec_cfg, step, epoch, best, history,
                        epoch_losses) -> dict[str, Any]:
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


def adopt_checkpoint(cfg: RunConfig, ckpt: dict[str, Any], source: str) -> RunConfig:
    """``cfg`` for a run whose weights start from ``ckpt``: the checkpoint's model
    (:func:`~heatmaploc.checkpoint.adopt_model_config`; the input channels stay
    ``data.in_channels``) and codec (:func:`~heatmaploc.checkpoint.adopt_codec_config`)."""
    model = adopt_model_config(cfg.model, ckpt["model_config"], source, unset=RunConfig().model)
    model.pop("in_channels", None)  # data.in_channels builds the model; the weights are adapted to it
    codec = adopt_codec_config(asdict(cfg.codec), ckpt.get("codec_config", {}), asdict(CodecConfig()))
    return replace(cfg, model=model, codec=CodecConfig(**codec))


def make_optimizer(model: nn.Module, tc: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)


def train(cfg: RunConfig, run_dir: str | Path, *, resume: bool = False, init_from: str | Path | None = None,
          progress: bool = True, on_step: Callable[[int, nn.Module], None] | None = None) -> TrainResult:
    """Train ``cfg`` into ``run_dir`` (``config.yaml``, ``last.pt``, ``best.pt``,
    ``log.csv``, ``curves.png``).

    Args:
        resume: continue from ``run_dir/last.pt`` (same config).
        init_from: start from the weights of another checkpoint (``"default"``: the
            shipped model; fine-tuning): the run
            adopts its model and codec (:func:`adopt_checkpoint`; a conflicting model
            setting is a ``ValueError``) and adapts the input channels
            (:func:`adapt_state_dict`); ``None``: ``cfg.train.init_from``.
        on_step: called after every optimizer step with ``(step, model)`` (tests use
            it to simulate an interrupt or a fault).

    Ctrl-C stops after the current optimizer step and saves ``last.pt`` there before
    raising ``KeyboardInterrupt`` (:class:`heatmaploc.runtime.StepInterrupt`), so
    ``resume`` is bit-identical to an uninterrupted run; a second Ctrl-C stops at once
    and keeps the last consistent checkpoint; a NaN loss raises :class:`TrainingDiverged` and keeps the last good
    checkpoint.  The thread count and torch's global random state are the run's own
    inside and restored on return (:func:`heatmaploc.runtime.torch_session`).
    """
    with torch_session(cfg.train.threads):
        return _train(cfg, Path(run_dir), resume, init_from, progress, on_step)


def _train(cfg: RunConfig, run_dir: Path, resume: bool, init_from: str | Path | None, progress: bool,
           on_step: Callable[[int, nn.Module], None] | None) -> TrainResult:
    tc = cfg.train
    ctx, dist_device = distributed.setup(tc.device)
    try:
        if tc.batch_size % ctx.world:
            raise ValueError(f"train.batch_size={tc.batch_size} must be a multiple of the {ctx.world} processes "
                             "(the global batch is shared evenly)")
        init_from = init_from if init_from is not None else tc.init_from
        start = None
        if init_from is not None and not resume:  # a resumed run's saved config has adopted it already
            start = (str(init_from), load_checkpoint(checkpoint_path(init_from)))
            cfg = adopt_checkpoint(cfg, start[1], start[0])
        return _train_loop(cfg, run_dir, resume, start, progress, on_step, ctx, dist_device or pick_device(tc.device))
    finally:
        distributed.teardown(ctx)


def _train_loop(cfg: RunConfig, run_dir: Path, resume: bool, start: tuple[str, dict[str, Any]] | None, progress: bool,
                on_step: Callable[[int, nn.Module], None] | None, ctx: distributed.Context,
                device: torch.device) -> TrainResult:
    tc, data = cfg.train, cfg.data
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(tc.seed)
    codec, model = training_model(cfg, device)
    model = distributed.sync_batchnorm(model, ctx, device.type == "cuda")
    if start is not None:
        model.load_state_dict(adapt_state_dict(start[1]["model_state"], model, start[0]))
        log.info("initialized from %s", start[0])
    # The gradients of N processes are averaged (DDP); `model` stays the plain module
    # whose weights are saved, averaged (EMA) and validated.
    forward = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if ctx.distributed else model
    opt = make_optimizer(model, tc)
    clock = {"start": time.time()}  # minus the minutes of earlier runs when resuming

    def time_fraction() -> float:
        return ctx.max((time.time() - clock["start"]) / 60 / tc.max_minutes) if tc.max_minutes else 0.0

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, tc.warmup_steps, tc.steps, time_fraction()))
    ema = make_ema(model, tc.ema_decay) if tc.ema_decay else None
    step, epoch, best, history, losses = 0, 0, -1.0, [], []
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if resume:
        ckpt = load_checkpoint(last_path, map_location=device)
        ts = ckpt["train_state"]
        model.load_state_dict(ts["raw_model_state"])
        if ema is not None and ts["ema_state"] is not None:
            ema.load_state_dict(ts["ema_state"])
        opt.load_state_dict(ts["optimizer"])
        sched.load_state_dict(ts["scheduler"])
        step, epoch, best, history = ts["step"], ts["epoch"], ts["best_metric"], ts["history"]
        losses = list(ts.get("epoch_losses", []))
        torch.set_rng_state(ts["torch_rng"])
        model.load_train_state(ts.get("model_train_state", {"stage": ts.get("stage")}))  # "stage": before 0.1.0's restructure
        log.info("resumed at step %d", step)
    if ctx.rank:  # other dropout draws than rank 0's, reproducibly
        torch.manual_seed(tc.seed + 7919 * ctx.rank + 104729 * step)
    validated = history[-1]["step"] if history else 0  # the step of the last validation (every rank knows it)
    if ctx.main:
        save_config(cfg, run_dir / "config.yaml")
    stream = training_stream(cfg, codec)
    val = validation_samples(cfg, codec) if ctx.main else []
    val_truths = [s["points"].numpy() for s in val]
    val_shapes = [tuple(s["image"].shape[-2:]) for s in val]

    def checkpoint(path: Path) -> None:
        if ctx.main:
            save_checkpoint(path, _checkpoint_payload(model, ema, opt, sched, cfg, codec.config, step, epoch, best,
                                                      history, losses))

    def validate() -> None:
        """After an epoch (rank 0): a history row, the log line, the model's own
        reaction, and ``best.pt`` when F1 improved."""
        nonlocal best
        eval_model = ema.module if ema is not None else model
        outputs = predict_samples(eval_model, val, device, channels_last=tc.channels_last)
        metrics = evaluate_outputs(outputs, val_truths, val_shapes, codec, radii=(tc.val_radius,))
        m = metrics[f"r{tc.val_radius:g}"]
        row = {"epoch": epoch, "step": step, "train_loss": float(np.mean(losses)) if losses else float("nan"),
               "val_f1": m["f1"], "val_count_acc": m["count_accuracy"], "val_rmse": m["rmse"],
               "lr": opt.param_groups[0]["lr"], "minutes": (time.time() - clock["start"]) / 60}
        history.append(row)
        if board is not None:
            for key in ("train_loss", "val_f1", "val_count_acc", "val_rmse", "lr"):
                board.add_scalar(key, row[key], step)
        log.info("epoch %d step %d: loss %.4f  val F1@%g %.4f  count acc %.3f  rmse %.3f", epoch, step,
                 row["train_loss"], tc.val_radius, m["f1"], m["count_accuracy"], m["rmse"])
        message = model.on_validation(m)
        if message:
            log.info(message)
        if m["f1"] > best:
            best = m["f1"]
            checkpoint(best_path)

    clock["start"] = time.time() - 60 * (history[-1]["minutes"] if history else 0.0)
    finished = True
    board = _tensorboard(run_dir) if ctx.main else None
    bar = tqdm(total=tc.steps, initial=step, desc="train", unit="step", disable=not (progress and ctx.main),
               dynamic_ncols=True)
    consistent = True  # the in-memory state is exactly the one after `step` steps (false mid-step)
    per_rank = tc.batch_size // ctx.world
    share = ctx.share(tc.batch_size)
    count_norm = ctx.count_norm()
    # Each DataLoader iterator draws a seed from its generator; from torch's global one
    # (which dropout also draws from) that draw would land elsewhere in the sequence after
    # a mid-epoch resume.  The samples themselves depend only on their global index.
    workers = {"num_workers": data.workers, "worker_init_fn": ignore_interrupt if data.workers else None,
               "generator": torch.Generator().manual_seed(tc.seed)}
    try:
        with StepInterrupt() as stop:
            # an epoch stopped by Ctrl-C after its last step still owes its validation
            while step < tc.steps or step > validated:
                end = min((epoch + 1) * tc.steps_per_epoch, tc.steps)
                indices = [g for s in range(step, end) for g in range(s * tc.batch_size, (s + 1) * tc.batch_size)[share]]
                loader = DataLoader(stream, batch_size=per_rank, collate_fn=collate, persistent_workers=False,
                                    sampler=indices, **workers)
                model.train()
                for batch in loader:
                    consistent = False
                    loss = batch_loss(model, batch, codec, tc, device, forward=forward, count_norm=count_norm)
                    value = ctx.mean(loss.item())
                    if not math.isfinite(value):
                        raise TrainingDiverged(f"loss became {value} at step {step}; training stopped, the last "
                                               "good checkpoint is "
                                               f"{last_path if last_path.exists() else 'none (no epoch finished)'}")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if tc.grad_clip:
                        nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                    opt.step()
                    sched.step()
                    if ema is not None:
                        ema.update_parameters(model)
                    step += 1
                    losses.append(value)
                    consistent = True
                    bar.update(1)
                    bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
                    if on_step is not None:
                        on_step(step, model)
                    if ctx.any(stop.requested):
                        raise KeyboardInterrupt
                    if time_fraction() > 1.0:
                        break  # the time budget ends this epoch early: validate and checkpoint as usual
                consistent = False  # until this epoch's row and checkpoint are written
                epoch += 1
                validated = step
                if ctx.main:
                    validate()
                    checkpoint(last_path)
                    _write_history(run_dir, history)
                losses = []
                _share_train_state(model, ctx)
                ctx.barrier()
                consistent = True
                if ctx.any(stop.requested):
                    raise KeyboardInterrupt
                if time_fraction() > 1.0 and step < tc.steps:
                    log.warning("time budget of %.1f min reached at step %d", tc.max_minutes, step)
                    finished = False
                    break
    except KeyboardInterrupt:
        if consistent:  # else (a second Ctrl-C mid-step) the last epoch's checkpoint stays
            checkpoint(last_path)
        bar.close()
        raise
    finally:
        if board is not None:
            board.close()
    bar.close()
    threshold = float("nan")
    if ctx.main:
        best_ckpt = calibrate_checkpoint(load_checkpoint(best_path, map_location=device), cfg, device, val)
        threshold = best_ckpt["codec_config"]["threshold"]
        for key in ("format", "format_version", "package_version"):
            best_ckpt.pop(key, None)
        save_checkpoint(best_path, best_ckpt)
    ctx.barrier()
    return TrainResult(run_dir, best_path, last_path, history, threshold, best, finished)


def _share_train_state(model: nn.Module, ctx: distributed.Context) -> None:
    """Rank 0's validation may change the model's own schedule (the cascade's stage):
    every rank takes rank 0's."""
    if ctx.distributed:
        import torch.distributed as dist

        state = [model.train_state()]
        dist.broadcast_object_list(state, src=0)
        model.load_train_state(state[0])
