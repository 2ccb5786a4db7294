"""The ``heatmaploc`` command: thin subcommands over the library; ``main(argv) -> int``.

User errors (``ValueError``, ``FileNotFoundError``) become one line on stderr and exit
code 2.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import yaml

from heatmaploc import __version__


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["key=value", ...]`` -> dict, values parsed as YAML (``[0, 10]``, ``0.5``, ``jet``)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ValueError(f"--set {item!r}: value does not parse ({err})") from None
        if isinstance(parsed, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        out[key.strip()] = parsed
    return out


# ---------------------------------------------------------------- simulate
def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="write a simulated dataset (images/, points.csv, meta.json)")
    g = p.add_argument_group("dataset")
    g.add_argument("--preset", default="default", help="simulator preset: default, seed000")
    g.add_argument("--n", type=int, required=True, help="number of images")
    g.add_argument("--out", required=True, help="output dataset folder")
    g.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    g.add_argument("--start", type=int, default=0, help="index of the first image")
    g.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a SimConfig field, e.g. --set count_range=[0,10]")
    r = p.add_argument_group("run")
    r.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    r.add_argument("--preview", nargs="?", type=int, const=8, default=None, metavar="N",
                   help="also write OUT/preview.png with the first N images and their points (default 8)")
    p.set_defaults(func=_run_simulate)


def _run_simulate(args) -> int:
    from heatmaploc.data import load_dataset, read_image
    from heatmaploc.simulate import get_preset, write_dataset
    from heatmaploc.viz import plot_points_grid

    cfg = get_preset(args.preset, **{k: tuple(v) if isinstance(v, list) else v
                                      for k, v in parse_overrides(args.overrides).items()})
    out = write_dataset(cfg, args.n, args.out, seed=args.seed, workers=args.workers, start=args.start)
    index = load_dataset(out)
    counts = index.counts()
    print(f"wrote {len(index)} images to {out} ({int(counts.sum())} sources, "
          f"{counts.min()}-{counts.max()} per image, preset {args.preset!r}, seed {args.seed})")
    if args.preview:
        recs = index.records[: args.preview]
        images = [read_image(r.path) for r in recs]
        titles = [f"{r.name}  n={len(r.points)}  {index.meta['images'][r.name].get('kernel', '')}" for r in recs]
        path = plot_points_grid(images, [r.points for r in recs], Path(out) / "preview.png", titles=titles)
        print(f"preview: {path}")
    return 0


# ---------------------------------------------------------------- info
def _add_info(sub) -> None:
    p = sub.add_parser("info", help="versions, devices, presets; summarize a dataset or a model")
    p.add_argument("--dataset", help="validate a dataset folder and summarize it")
    p.add_argument("--model", help="registry name: parameters and FLOPs")
    p.add_argument("--size", type=int, nargs=2, default=(256, 256), metavar=("H", "W"),
                   help="input size for FLOPs (default 256 256)")
    p.set_defaults(func=_run_info)


def _run_info(args) -> int:
    import torch

    from heatmaploc.simulate import PRESETS

    print(f"heatmaploc {__version__}  torch {torch.__version__}  cuda {'yes' if torch.cuda.is_available() else 'no'}"
          f"  threads {torch.get_num_threads()}")
    print(f"simulator presets: {', '.join(sorted(PRESETS))}")
    if args.dataset:
        from heatmaploc.data import load_dataset

        index = load_dataset(args.dataset, progress=True)
        counts = index.counts()
        shapes = sorted({r.shape for r in index.records})
        hist = np.bincount(counts)
        print(f"dataset {index.root}: {len(index)} images, {int(counts.sum())} points, "
              f"shapes {shapes[:4]}{' ...' if len(shapes) > 4 else ''}")
        print("count histogram: " + ", ".join(f"{n}:{c}" for n, c in enumerate(hist) if c))
        if index.frame is not None:
            print(f"physical frame: pixel_size {index.frame.pixel_size:g}, origin {index.frame.origin}")
    if args.model:
        from heatmaploc.models import build_model, model_complexity

        model = build_model(args.model)
        stats = model_complexity(model, tuple(args.size), in_channels=getattr(model, "in_channels", 3))
        print(f"model {args.model}: {stats['params_m']:.3f} M parameters, "
              f"{stats['gflops']:.3f} GFLOPs at {args.size[0]}x{args.size[1]}")
    return 0


# ---------------------------------------------------------------- main
COMMANDS: list[Callable] = [_add_simulate, _add_info]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="heatmaploc", description="Localize point sources in 2-D field images.")
    parser.add_argument("--version", action="version", version=f"heatmaploc {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"heatmaploc {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"heatmaploc {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
