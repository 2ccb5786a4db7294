"""Where a training step's time goes, on this machine, for a run config.

For ``--steps`` batches of the config's own training stream it times, one phase after
the other in the main process: simulation (``ImageSource.get``: the physics field and
its rendering), sample preparation (normalization, augmentation, heatmap and offset
target encoding, collate), forward with the loss, backward and the optimizer step (with
the EMA update), on the CPU.  It then times the real training loop (DataLoader workers as configured,
data preparation overlapping the network) for the same number of steps and reports the
training images/s of both.  ``--compare KEY=VALUE ...`` repeats the real-loop timing
with those config overrides, interleaved with the baseline (A, B, A, B, ...), so a
change and the baseline share the machine's load, and prints the ratio.

Usage:
    python tools/profile_training.py [--config configs/default.yaml] [--steps 20]
        [--set train.threads=2] [--compare data.workers=0 ...] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from heatmaploc.cli import parse_overrides
from heatmaploc.config import load_config
from heatmaploc.data.dataset import collate, make_sample
from heatmaploc.data.sources import training_stream
from heatmaploc.training_steps import batch_loss, make_ema, make_optimizer, training_model

PHASES = ("simulation", "samples + targets", "forward + loss", "backward", "optimizer")


@contextmanager
def timed(totals: dict, key: str):
    t0 = time.perf_counter()
    yield
    totals[key] = totals.get(key, 0.0) + time.perf_counter() - t0


def setup(cfg):
    torch.manual_seed(cfg.train.seed)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    codec, model = training_model(cfg, torch.device("cpu"))
    opt = make_optimizer(model, cfg.train)
    ema = make_ema(model, cfg.train.ema_decay) if cfg.train.ema_decay else None
    return codec, model, opt, ema


def train_step(cfg, codec, model, opt, ema, batch, totals: dict | None = None) -> float:
    """One optimizer step as :func:`heatmaploc.training.train` takes it (:meth:`heatmaploc.training._Run.optimizer_step`), phase by phase."""
    totals = {} if totals is None else totals
    tc = cfg.train
    with timed(totals, "forward + loss"):
        loss = batch_loss(model, batch, codec, tc, torch.device("cpu"))
    with timed(totals, "backward"):
        opt.zero_grad(set_to_none=True)
        loss.backward()
    with timed(totals, "optimizer"):
        if tc.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        opt.step()
        if ema is not None:
            ema.update_parameters(model)
    return float(loss.item())


def phase_profile(cfg, steps: int) -> dict:
    """Serial per-phase seconds over ``steps`` batches (after one warm-up batch)."""
    codec, model, opt, ema = setup(cfg)
    stream = training_stream(cfg, codec)
    model.train()
    totals: dict[str, float] = {}
    bs = cfg.train.batch_size
    for step in range(steps + 1):
        current: dict[str, float] = {}
        with timed(current, "simulation"):
            loaded = [stream.source.get(step * bs + i) for i in range(bs)]
        with timed(current, "samples + targets"):
            samples = []
            for i, (image, points, labels, name) in enumerate(loaded):
                rng = np.random.default_rng([stream.seed, step * bs + i])
                samples.append(make_sample(image, points, labels, name, codec, cfg.data.in_channels, stream.augment, rng))
            batch = collate(samples)
        train_step(cfg, codec, model, opt, ema, batch, current)
        if step > 0:  # the first batch warms up allocators and caches
            for key, value in current.items():
                totals[key] = totals.get(key, 0.0) + value
    total = sum(totals.values())
    return {"seconds": {p: totals.get(p, 0.0) for p in PHASES}, "share": {p: totals.get(p, 0.0) / total for p in PHASES},
            "serial_images_per_s": steps * bs / total}


def loop_images_per_s(cfg, steps: int) -> float:
    """Images/s of the training loop as ``heatmaploc train`` runs it (DataLoader with
    ``data.workers`` processes feeding the network), after one warm-up batch."""
    codec, model, opt, ema = setup(cfg)
    stream = training_stream(cfg, codec)
    bs = cfg.train.batch_size
    loader = DataLoader(stream, batch_size=bs, sampler=range(0, (steps + 1) * bs), collate_fn=collate,
                        num_workers=cfg.data.workers, persistent_workers=False)
    model.train()
    t0 = None
    for i, batch in enumerate(loader):
        train_step(cfg, codec, model, opt, ema, batch)
        if i == 0:
            t0 = time.perf_counter()
    return steps * bs / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the real-loop timing")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the config (both runs)")
    ap.add_argument("--compare", action="append", default=[], metavar="KEY=VALUE",
                    help="overrides of the changed run timed against the baseline")
    ap.add_argument("--json", help="write the figures as JSON")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.rounds < 1:
        ap.error("--steps and --rounds must be >= 1")
    try:
        cfg = load_config(args.config, parse_overrides(args.set))
        changed = load_config(args.config, parse_overrides(args.set + args.compare)) if args.compare else None
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    prof = phase_profile(cfg, args.steps)
    print(f"{args.config}: batch {cfg.train.batch_size}, crop {cfg.data.augment.crop_size}, "
          f"threads {torch.get_num_threads()}, workers {cfg.data.workers}, {args.steps} steps")
    print(f"{'phase':<20} {'s/step':>8} {'share':>7}")
    for p in PHASES:
        print(f"{p:<20} {prof['seconds'][p] / args.steps:8.4f} {100 * prof['share'][p]:6.1f}%")
    print(f"serial (phases one after another): {prof['serial_images_per_s']:.1f} images/s")
    base, new = [], []
    for _ in range(args.rounds):
        base.append(loop_images_per_s(cfg, args.steps))
        if changed is not None:
            new.append(loop_images_per_s(changed, args.steps))
    result = {"config": args.config, "overrides": args.set, "steps": args.steps, **prof,
              "loop_images_per_s": statistics.median(base), "loop_rounds": base}
    print(f"training loop: {result['loop_images_per_s']:.1f} images/s (median of {args.rounds})")
    if changed is not None:
        result.update(compare=args.compare, compare_images_per_s=statistics.median(new), compare_rounds=new,
                      ratio=statistics.median(new) / result["loop_images_per_s"])
        print(f"with {' '.join(args.compare)}: {result['compare_images_per_s']:.1f} images/s "
              f"({result['ratio']:.2f}x the baseline, same run)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
