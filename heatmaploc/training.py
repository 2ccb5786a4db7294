"""The training loop (importable, no argument parsing).

``train(cfg, run_dir)`` reads top to bottom: build the model (optionally from another
checkpoint's weights) and optimizer (:mod:`heatmaploc.training_steps`), or restore
everything from ``last.pt``; then per epoch: forward/backward/clip/step/EMA over the
streamed samples (:mod:`heatmaploc.data.sources`), validate, checkpoint, log; finally
calibrate the best checkpoint's decode threshold and sigma factor on the validation set.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from heatmaploc import distributed
from heatmaploc.checkpoint import (adapt_state_dict, adopt_codec_config, adopt_model_config, checkpoint_path,
                                   load_checkpoint, save_checkpoint)
from heatmaploc.codec import CodecConfig
from heatmaploc.config import RunConfig, save_config
from heatmaploc.data.dataset import collate
from heatmaploc.data.sources import training_stream, validation_samples
from heatmaploc.evaluation import calibrate_checkpoint, evaluate_outputs
from heatmaploc.inference import pick_device, predict_samples
from heatmaploc.runtime import StepInterrupt, ignore_interrupt, torch_session
from heatmaploc.training_steps import (TrainingDiverged, batch_loss, checkpoint_payload, lr_factor, make_ema,
                                       make_optimizer, share_train_state, tensorboard, training_model, write_history)

log = logging.getLogger(__name__)

__all__ = ["TrainResult", "TrainingDiverged", "adopt_checkpoint", "train"]


@dataclass
class TrainResult:
    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    history: list[dict[str, Any]]
    threshold: float
    best_metric: float
    finished: bool


def adopt_checkpoint(cfg: RunConfig, ckpt: dict[str, Any], source: str) -> RunConfig:
    """``cfg`` for a run whose weights start from ``ckpt``: the checkpoint's model
    (:func:`~heatmaploc.checkpoint.adopt_model_config`; the input channels stay
    ``data.in_channels``) and codec (:func:`~heatmaploc.checkpoint.adopt_codec_config`)."""
    model = adopt_model_config(cfg.model, ckpt["model_config"], source, unset=RunConfig().model)
    model.pop("in_channels", None)  # data.in_channels builds the model; the weights are adapted to it
    codec = adopt_codec_config(asdict(cfg.codec), ckpt.get("codec_config", {}), asdict(CodecConfig()))
    return replace(cfg, model=model, codec=CodecConfig(**codec))


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
    run = None
    try:
        if tc.batch_size % ctx.world:
            raise ValueError(f"train.batch_size={tc.batch_size} must be a multiple of the {ctx.world} processes "
                             "(the global batch is shared evenly)")
        init_from = init_from if init_from is not None else tc.init_from
        start = None
        if init_from is not None and not resume:  # a resumed run's saved config has adopted it already
            start = (str(init_from), load_checkpoint(checkpoint_path(init_from)))
            cfg = adopt_checkpoint(cfg, start[1], start[0])
        run = _Run(cfg, run_dir, start, ctx, dist_device or pick_device(tc.device), on_step)
        if resume:
            run.restore()
        return run.train(progress)
    finally:
        run = None  # let go of its DistributedDataParallel, which teardown collects
        distributed.teardown(ctx)


class _Run:
    """One run's state and its phases, in the order :meth:`train` takes them (every
    rank builds the same; rank 0 validates, checkpoints and logs)."""

    def __init__(self, cfg: RunConfig, run_dir: Path, start: tuple[str, dict[str, Any]] | None,
                 ctx: distributed.Context, device: torch.device,
                 on_step: Callable[[int, nn.Module], None] | None) -> None:
        tc = cfg.train
        self.cfg, self.tc, self.run_dir, self.ctx, self.device, self.on_step = cfg, tc, run_dir, ctx, device, on_step
        run_dir.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(tc.seed)
        self.codec, model = training_model(cfg, device)
        model = distributed.sync_batchnorm(model, ctx, device.type == "cuda")
        if start is not None:
            model.load_state_dict(adapt_state_dict(start[1]["model_state"], model, start[0]))
            log.info("initialized from %s", start[0])
        self.model = model
        # The gradients of N processes are averaged (DDP); `model` stays the plain module
        # whose weights are saved, averaged (EMA) and validated.
        self.forward = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None) if ctx.distributed else model
        self.opt = make_optimizer(model, tc)
        self.started = time.time()  # minus the minutes of earlier runs when resuming
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: lr_factor(s, tc.warmup_steps, tc.steps, self.time_fraction()))
        self.ema = make_ema(model, tc.ema_decay) if tc.ema_decay else None
        self.step, self.epoch, self.best, self.history, self.losses = 0, 0, -1.0, [], []
        self.last_path, self.best_path = run_dir / "last.pt", run_dir / "best.pt"
        self.board = None
        self.consistent = True  # the in-memory state is exactly the one after `step` steps (false mid-step)

    def time_fraction(self) -> float:
        """Elapsed share of ``train.max_minutes`` (the slowest rank's; 0 without a budget)."""
        tc = self.tc
        return self.ctx.max((time.time() - self.started) / 60 / tc.max_minutes) if tc.max_minutes else 0.0

    def restore(self) -> None:
        """Everything from ``last.pt``: weights, EMA, optimizer, schedule, counters,
        history, this epoch's losses so far and torch's random state."""
        ckpt = load_checkpoint(self.last_path, map_location=self.device)
        ts = ckpt["train_state"]
        self.model.load_state_dict(ts["raw_model_state"])
        if self.ema is not None and ts["ema_state"] is not None:
            self.ema.load_state_dict(ts["ema_state"])
        self.opt.load_state_dict(ts["optimizer"])
        self.sched.load_state_dict(ts["scheduler"])
        self.step, self.epoch, self.best, self.history = ts["step"], ts["epoch"], ts["best_metric"], ts["history"]
        self.losses = list(ts.get("epoch_losses", []))
        torch.set_rng_state(ts["torch_rng"])
        # "stage": checkpoints from before 0.1.0's restructure
        self.model.load_train_state(ts.get("model_train_state", {"stage": ts.get("stage")}))
        log.info("resumed at step %d", self.step)

    def checkpoint(self, path: Path) -> None:
        if self.ctx.main:
            save_checkpoint(path, checkpoint_payload(self.model, self.ema, self.opt, self.sched, self.cfg,
                                                     self.codec.config, self.step, self.epoch, self.best,
                                                     self.history, self.losses))

    def validate(self) -> None:
        """After an epoch (rank 0): a history row, the log line, the model's own
        reaction, and ``best.pt`` when F1 improved."""
        tc, step = self.tc, self.step
        eval_model = self.ema.module if self.ema is not None else self.model
        outputs = predict_samples(eval_model, self.val, self.device, channels_last=tc.channels_last)
        metrics = evaluate_outputs(outputs, self.val_truths, self.val_shapes, self.codec, radii=(tc.val_radius,))
        m = metrics[f"r{tc.val_radius:g}"]
        row = {"epoch": self.epoch, "step": step,
               "train_loss": float(np.mean(self.losses)) if self.losses else float("nan"),
               "val_f1": m["f1"], "val_count_acc": m["count_accuracy"], "val_rmse": m["rmse"],
               "lr": self.opt.param_groups[0]["lr"], "minutes": (time.time() - self.started) / 60}
        self.history.append(row)
        if self.board is not None:
            for key in ("train_loss", "val_f1", "val_count_acc", "val_rmse", "lr"):
                self.board.add_scalar(key, row[key], step)
        log.info("epoch %d step %d: loss %.4f  val F1@%g %.4f  count acc %.3f  rmse %.3f", self.epoch, step,
                 row["train_loss"], tc.val_radius, m["f1"], m["count_accuracy"], m["rmse"])
        message = self.model.on_validation(m)
        if message:
            log.info(message)
        if m["f1"] > self.best:
            self.best = m["f1"]
            self.checkpoint(self.best_path)

    def prepare(self) -> None:
        """After a restore: the rank's dropout seed, the saved config, the sample
        stream and (rank 0) the validation samples; the clock resumes its minutes."""
        tc, ctx, cfg = self.tc, self.ctx, self.cfg
        if ctx.rank:  # other dropout draws than rank 0's, reproducibly
            torch.manual_seed(tc.seed + 7919 * ctx.rank + 104729 * self.step)
        self.validated = self.history[-1]["step"] if self.history else 0  # the last validation's step (all ranks)
        if ctx.main:
            save_config(cfg, self.run_dir / "config.yaml")
        self.stream = training_stream(cfg, self.codec)
        self.val = validation_samples(cfg, self.codec) if ctx.main else []
        self.val_truths = [s["points"].numpy() for s in self.val]
        self.val_shapes = [tuple(s["image"].shape[-2:]) for s in self.val]
        self.started = time.time() - 60 * (self.history[-1]["minutes"] if self.history else 0.0)

    def epoch_loader(self, workers: dict[str, Any]) -> DataLoader:
        """The rank's share of this epoch's remaining samples (they depend only on
        their global index)."""
        tc = self.tc
        end = min((self.epoch + 1) * tc.steps_per_epoch, tc.steps)
        share = self.ctx.share(tc.batch_size)
        indices = [g for s in range(self.step, end) for g in range(s * tc.batch_size, (s + 1) * tc.batch_size)[share]]
        return DataLoader(self.stream, batch_size=tc.batch_size // self.ctx.world, collate_fn=collate,
                          persistent_workers=False, sampler=indices, **workers)

    def optimizer_step(self, batch: dict[str, Any], count_norm: Callable) -> None:
        """Forward, backward, clip, step, schedule and EMA on one batch."""
        tc, model = self.tc, self.model
        self.consistent = False
        loss = batch_loss(model, batch, self.codec, tc, self.device, forward=self.forward, count_norm=count_norm)
        value = self.ctx.mean(loss.item())
        if not math.isfinite(value):
            kept = self.last_path if self.last_path.exists() else "none (no epoch finished)"
            raise TrainingDiverged(f"loss became {value} at step {self.step}; training stopped, the last "
                                   f"good checkpoint is {kept}")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if tc.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        self.opt.step()
        self.sched.step()
        if self.ema is not None:
            self.ema.update_parameters(model)
        self.step += 1
        self.losses.append(value)
        self.consistent = True

    def end_epoch(self) -> None:
        """Validation, ``last.pt`` and the log (rank 0), then every rank in step."""
        self.consistent = False  # until this epoch's row and checkpoint are written
        self.epoch += 1
        self.validated = self.step
        if self.ctx.main:
            self.validate()
            self.checkpoint(self.last_path)
            write_history(self.run_dir, self.history)
        self.losses = []
        share_train_state(self.model, self.ctx)
        self.ctx.barrier()
        self.consistent = True

    def run_epochs(self, bar: tqdm) -> bool:
        """Epochs until the steps are done (True) or the time budget ends them (False);
        Ctrl-C raises ``KeyboardInterrupt`` after the current step."""
        tc, ctx = self.tc, self.ctx
        count_norm = ctx.count_norm()
        # Each DataLoader iterator draws a seed from its generator; from torch's global one
        # (which dropout also draws from) that draw would land elsewhere in the sequence after
        # a mid-epoch resume.  The samples themselves depend only on their global index.
        workers = {"num_workers": self.cfg.data.workers,
                   "worker_init_fn": ignore_interrupt if self.cfg.data.workers else None,
                   "generator": torch.Generator().manual_seed(tc.seed)}
        with StepInterrupt() as stop:
            # an epoch stopped by Ctrl-C after its last step still owes its validation
            while self.step < tc.steps or self.step > self.validated:
                self.model.train()
                for batch in self.epoch_loader(workers):
                    self.optimizer_step(batch, count_norm)
                    bar.update(1)
                    bar.set_postfix(loss=f"{np.mean(self.losses[-20:]):.4f}")
                    if self.on_step is not None:
                        self.on_step(self.step, self.model)
                    if ctx.any(stop.requested):
                        raise KeyboardInterrupt
                    if self.time_fraction() > 1.0:
                        break  # the time budget ends this epoch early: validate and checkpoint as usual
                self.end_epoch()
                if ctx.any(stop.requested):
                    raise KeyboardInterrupt
                if self.time_fraction() > 1.0 and self.step < tc.steps:
                    log.warning("time budget of %.1f min reached at step %d", tc.max_minutes, self.step)
                    return False
        return True

    def calibrate(self) -> float:
        """Rank 0 calibrates ``best.pt`` on the validation samples; its threshold."""
        threshold = float("nan")
        if self.ctx.main:
            best_ckpt = calibrate_checkpoint(load_checkpoint(self.best_path, map_location=self.device), self.cfg,
                                             self.device, self.val)
            threshold = best_ckpt["codec_config"]["threshold"]
            for key in ("format", "format_version", "package_version"):
                best_ckpt.pop(key, None)
            save_checkpoint(self.best_path, best_ckpt)
        self.ctx.barrier()
        return threshold

    def train(self, progress: bool) -> TrainResult:
        """Prepare, run the epochs, calibrate; a Ctrl-C keeps ``last.pt`` consistent."""
        self.prepare()
        ctx = self.ctx
        self.board = tensorboard(self.run_dir) if ctx.main else None
        bar = tqdm(total=self.tc.steps, initial=self.step, desc="train", unit="step",
                   disable=not (progress and ctx.main), dynamic_ncols=True)
        try:
            finished = self.run_epochs(bar)
        except KeyboardInterrupt:
            if self.consistent:  # else (a second Ctrl-C mid-step) the last epoch's checkpoint stays
                self.checkpoint(self.last_path)
            bar.close()
            raise
        finally:
            if self.board is not None:
                self.board.close()
        bar.close()
        threshold = self.calibrate()
        return TrainResult(self.run_dir, self.best_path, self.last_path, self.history, threshold, self.best, finished)
