"""The ``heatmaploc`` command: thin subcommands over the library; ``main(argv) -> int``.

User errors (``ValueError``, ``FileNotFoundError``) become one line on stderr and exit
code 2.
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import yaml

from heatmaploc import __version__
from heatmaploc.tta import TTA_MODES
from heatmaploc.codec import REFINE_MODES


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

    cfg = get_preset(args.preset, **parse_overrides(args.overrides))
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


# ---------------------------------------------------------------- train
def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config")
    p.add_argument("--config", help="YAML config (default: the built-in defaults = configs/default.yaml)")
    p.add_argument("--out", help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--init-from", metavar="CKPT", help="start from these weights ('default' = the shipped model)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set train.steps=500")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_train)


def _run_train(args) -> int:
    from heatmaploc.api import default_checkpoint_path
    from heatmaploc.config import load_config
    from heatmaploc.engine import train

    cfg = load_config(args.config, parse_overrides(args.overrides))
    out = Path(args.out) if args.out else Path("runs") / (Path(args.config).stem if args.config else "default")
    init = args.init_from or cfg.train.init_from
    init = str(default_checkpoint_path()) if init == "default" else init
    try:
        result = train(cfg, out, resume=args.resume, init_from=init, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"heatmaploc train: interrupted; continue with: heatmaploc train --out {out} --resume"
              + (f" --config {args.config}" if args.config else ""), file=sys.stderr)
        return 130
    state = "finished" if result.finished else "stopped at the time budget"
    print(f"{state}: best val F1@{cfg.train.val_radius:g} {result.best_metric:.4f}, decode threshold {result.threshold:g}")
    print(f"best checkpoint: {result.best_checkpoint}\nlog: {out / 'log.csv'}  curves: {out / 'curves.png'}")
    return 0


# ---------------------------------------------------------------- predict
def expand_inputs(paths: Sequence[str]) -> list[Path]:
    """Files as given; a folder gives its images (or those of its images/ subfolder)."""
    from heatmaploc.data.index import list_images

    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            folder = p / "images" if (p / "images").is_dir() else p
            found = list_images(folder)
            if not found:
                raise ValueError(f"{folder}: no .png/.tif/.tiff/.npy images")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out


def ground_truth_for(path: Path, cache: dict) -> np.ndarray | None:
    """Points of ``path`` from a points.csv beside it (or beside its images/ folder)."""
    from heatmaploc.data.io import read_points_csv

    for folder in (path.parent, path.parent.parent if path.parent.name == "images" else None):
        if folder is None:
            continue
        csv_path = folder / "points.csv"
        if csv_path.is_file():
            if csv_path not in cache:
                cache[csv_path] = read_points_csv(csv_path)
            return cache[csv_path].points.get(path.name, np.zeros((0, 2)))
    return None


def _load_localizer(checkpoint: str | None, device: str, refine: str | None = None, tta: str | None = None):
    from heatmaploc.api import Localizer

    if checkpoint in (None, "default"):
        loc = Localizer.default(device, tta)
    else:
        loc = Localizer.from_checkpoint(checkpoint, device, tta)
    return loc.with_codec(refine=refine) if refine else loc


def _add_tta_option(p) -> None:
    p.add_argument("--tta", choices=TTA_MODES,
                   help="average the heatmap over flips ('flip', 4 passes) or flips and quarter turns ('d4', 8 passes); "
                        "default: the checkpoint's (the shipped model: d4), else none")


def field_model_arg(text: str):
    """``KERNEL:WAVELENGTH[:DAMPING]`` (wavelength in pixels) -> a FieldModel."""
    from heatmaploc.fieldfit import FieldModel

    parts = text.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError("expected KERNEL:WAVELENGTH[:DAMPING]")
        return FieldModel(parts[0], float(parts[1]), float(parts[2]) if len(parts) == 3 else 0.0)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: {err}") from None


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="find sources in images (files or folders)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    p.add_argument("--checkpoint", help="model checkpoint (default: the shipped model)")
    p.add_argument("--threshold", type=float, help="decode threshold (default: the one stored in the checkpoint)")
    p.add_argument("--refine", choices=REFINE_MODES,
                   help="sub-pixel step (default: the checkpoint's: offset for models with a regression head, else softargmax)")
    _add_tta_option(p)
    p.add_argument("--out", help="write predictions CSV (image,x,y,label,score,sigma)")
    p.add_argument("--overlay", metavar="DIR", help="write PNG overlays of predictions (and ground truth if known)")
    p.add_argument("--json", action="store_true", help="print the points as JSON instead of a table")
    p.add_argument("--pixel-size", type=float, help="also report physical coordinates (units per pixel)")
    p.add_argument("--field-fit", type=field_model_arg, metavar="KERNEL:WAVELENGTH[:DAMPING]",
                   help="refine the points by a least-squares fit of the wave field (snapshots, or amplitude maps "
                        "with --field-amplitude; raw single-channel, or RGB with --field-colormap; kernel free, plate "
                        "or seed; wavelength in pixels; see heatmaploc.fieldfit)")
    p.add_argument("--field-colormap", metavar="NAME",
                   help="with --field-fit: the images are RGB renderings through this matplotlib colormap")
    p.add_argument("--field-amplitude", action="store_true",
                   help="with --field-fit: the images are amplitude maps |u| (a vibrometer's), not snapshots")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.set_defaults(func=_run_predict)


def _run_predict(args) -> int:
    import json

    from tqdm import tqdm

    from heatmaploc.data.io import read_image, write_points_csv
    from heatmaploc.fieldfit import refine_points
    from heatmaploc.viz import plot_points_grid

    field_model = args.field_fit
    if field_model is None and (args.field_colormap is not None or args.field_amplitude):
        raise ValueError("--field-colormap and --field-amplitude need --field-fit KERNEL:WAVELENGTH")
    if field_model is not None:
        field_model = replace(field_model, colormap=args.field_colormap,
                              observable="amplitude" if args.field_amplitude else "snapshot")
    files = expand_inputs(args.paths)
    loc = _load_localizer(args.checkpoint, args.device, args.refine, args.tta)
    results = []
    for path in tqdm(files, desc="predict", unit="img", disable=len(files) < 4):
        pts = loc.predict(path, threshold=args.threshold, pixel_size=args.pixel_size)
        if field_model is not None:
            pts = refine_points(read_image(path), pts, field_model, name=str(path))
        results.append((path, pts))
    if args.json:
        print(json.dumps({str(p): pts.to_list() for p, pts in results}, indent=1))
    else:
        width = max(len(p.name) for p, _ in results)
        print(f"{'image':<{width}}  count  points (x, y, score[, +-sigma px])")
        for path, pts in results:
            shown = ", ".join(f"({r['x']:.2f}, {r['y']:.2f}, {r['score']:.2f}"
                              + (f", +-{r['sigma']:.2f})" if r["sigma"] == r["sigma"] else ")") for r in pts.to_list()[:4])
            more = f" ... +{pts.count - 4}" if pts.count > 4 else ""
            print(f"{path.name:<{width}}  {pts.count:>5}  {shown}{more}")
        print(f"{len(results)} images, {sum(p.count for _, p in results)} sources "
              f"(threshold {args.threshold if args.threshold is not None else loc.threshold:g})")
    if args.out:
        write_points_csv(args.out, [(p.name, pts.xy, pts.labels, pts.scores, pts.sigma) for p, pts in results])
        print(f"predictions: {args.out}")
    if args.overlay:
        cache: dict = {}
        out_dir = Path(args.overlay)
        for path, pts in results:
            truth = ground_truth_for(path, cache)
            title = f"{path.name}: {pts.count} found" + (f", {len(truth)} true" if truth is not None else "")
            plot_points_grid([read_image(path)], [truth], out_dir / f"{path.stem}.png", preds=[pts.xy], titles=[title], columns=1)
        print(f"overlays: {out_dir}/ (red x = predicted, white o = ground truth)")
    return 0


# ---------------------------------------------------------------- evaluate
def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="point and pixel metrics of a model on a labelled dataset folder")
    p.add_argument("dataset", help="dataset folder (images/ + points.csv)")
    p.add_argument("--checkpoint", help="model checkpoint (default: the shipped model)")
    p.add_argument("--threshold", type=float, help="decode threshold (default: the checkpoint's)")
    p.add_argument("--refine", choices=REFINE_MODES,
                   help="sub-pixel step (default: the checkpoint's: offset for models with a regression head, else softargmax)")
    _add_tta_option(p)
    p.add_argument("--radius", type=float, action="append", default=[], help="extra matching radius in pixels")
    p.add_argument("--group-by", metavar="KEY", action="append", default=[],
                   help="also break F1@2 down by a per-image field of meta.json (kernel, observable, rendering, ...)")
    p.add_argument("--field-fit-from-meta", action="store_true",
                   help="also report the points refined by the field fit with the physics each image's meta.json "
                        "record states (simulated datasets: kernel, wavelength, damping, observable, colormap)")
    p.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_run_evaluate)


def _print_point_table(metrics: dict, radii: Sequence[float]) -> None:
    print("| radius (px) | precision | recall | F1 | RMSE (px) | mean dist (px) | count acc | count MAE |")
    print("|---|---|---|---|---|---|---|---|")
    for r in radii:
        m = metrics[f"r{r:g}"]
        print(f"| {r:g} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {m['rmse']:.4f} | "
              f"{m['mean_distance']:.4f} | {m['count_accuracy']:.4f} | {m['count_mae']:.4f} |")


def _field_fit_from_meta(index, images: list, preds: list, per_image: dict) -> tuple[list[np.ndarray], int]:
    """Each image's points refined with its meta.json physics (``model_from_meta``);
    returns the ``(N, 2)`` arrays and how many images were fitted."""
    from tqdm import tqdm

    from heatmaploc.fieldfit import model_from_meta, refine_points

    refined, fitted = [], 0
    for rec, image, pts in tqdm(list(zip(index.records, images, preds)), desc="field fit", unit="img"):
        model = model_from_meta(per_image.get(rec.name, {}))
        if model is not None and pts.count:
            pts = refine_points(image, pts, model, name=str(rec.path))
            fitted += 1
        refined.append(pts.xy)
    return refined, fitted


def _run_evaluate(args) -> int:
    import json

    from tqdm import tqdm

    from heatmaploc.data.index import load_dataset
    from heatmaploc.data.io import read_image
    from heatmaploc.engine import decode_outputs, evaluate_outputs
    from heatmaploc.metrics import point_metrics

    index = load_dataset(args.dataset, progress=True)
    loc = _load_localizer(args.checkpoint, args.device, args.refine, args.tta)
    images = [read_image(rec.path) for rec in tqdm(index.records, desc="read", unit="img")]
    outputs = loc.raw_outputs(images)
    truths = [rec.points for rec in index.records]
    shapes = [image.shape[:2] for image in images]
    radii = sorted({1.0, 2.0, 3.0, *args.radius})
    metrics = evaluate_outputs(outputs, truths, shapes, loc.codec, radii, threshold=args.threshold)
    print(f"{args.dataset}: {len(index)} images, {int(index.counts().sum())} sources, threshold {metrics['threshold']:g}, "
          f"tta {loc.tta}")
    _print_point_table(metrics, radii)
    px = metrics["pixel"]
    print(f"pixel (disk radius {loc.codec.config.mask_radius:g} px): mIoU {px['miou']:.4f}  mPA {px['mpa']:.4f}  "
          f"precision {px['mprecision']:.4f}  recall {px['mrecall']:.4f}  F1 {px['mf1']:.4f}  "
          f"source IoU {px['iou'][1]:.4f}  source F1 {px['f1'][1]:.4f}")
    cal = metrics["calibration"]
    if cal["n_coordinates"]:
        print(f"sigma calibration (pairs within {cal['radius']:g} px, {cal['n_coordinates']} coordinates): "
              f"|error| <= 1 sigma {100 * cal['within_1sigma']:.1f} % (ideal 68.3), <= 2 sigma "
              f"{100 * cal['within_2sigma']:.1f} % (ideal 95.4); median sigma {cal['median_sigma']:.3f} px, "
              f"rms error per coordinate {cal['rms_error']:.3f} px")
    per_image = index.meta.get("images", {})
    refined = None
    if args.field_fit_from_meta:
        preds = decode_outputs(outputs, loc.codec, metrics["threshold"])
        refined, fitted = _field_fit_from_meta(index, images, preds, per_image)
        metrics["field_fit"] = {"images_fitted": fitted,
                                **{f"r{r:g}": point_metrics(refined, truths, r).to_dict() for r in radii}}
        print(f"\nrefined by the field fit with each image's meta.json physics ({fitted} of {len(index)} images "
              "fitted; the count stays the model's):")
        _print_point_table(metrics["field_fit"], radii)
    for key in args.group_by:
        groups: dict[str, list[int]] = {}
        for i, rec in enumerate(index.records):
            groups.setdefault(str(per_image.get(rec.name, {}).get(key, "(none)")), []).append(i)
        fit_cols = (" F1@2 after fit | RMSE@2 after fit (px) |", "---|---|") if refined is not None else ("", "")
        print(f"\nby {key}:\n| {key} | images | sources | F1@2 | RMSE@2 (px) | count acc |{fit_cols[0]}\n"
              f"|---|---|---|---|---|---|{fit_cols[1]}")
        metrics[f"by_{key}"] = {}
        for value, idx in sorted(groups.items()):
            sub = evaluate_outputs([outputs[i] for i in idx], [truths[i] for i in idx], [shapes[i] for i in idx],
                                   loc.codec, (2.0,), threshold=args.threshold)["r2"]
            metrics[f"by_{key}"][value] = sub
            row = (f"| {value} | {len(idx)} | {sum(len(truths[i]) for i in idx)} | {sub['f1']:.4f} | "
                   f"{sub['rmse']:.4f} | {sub['count_accuracy']:.4f} |")
            if refined is not None:
                after = point_metrics([refined[i] for i in idx], [truths[i] for i in idx], 2.0).to_dict()
                sub["after_field_fit"] = after
                row += f" {after['f1']:.4f} | {after['rmse']:.4f} |"
            print(row)
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=2))
    return 0


# ---------------------------------------------------------------- benchmark
def _add_benchmark(sub) -> None:
    p = sub.add_parser("benchmark", help="every model on the same suites: report.json, report.md, plots")
    p.add_argument("--config", help="benchmark YAML (default: the built-in benchmark)")
    p.add_argument("--out", default="benchmark", help="output folder (default: ./benchmark)")
    p.add_argument("--quick", action="store_true", help="the built-in quick benchmark (a few minutes)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_benchmark)


def _run_benchmark(args) -> int:
    from heatmaploc.bench.config import load_bench_config
    from heatmaploc.bench.runner import run_benchmark

    if args.config and args.quick:
        raise ValueError("--quick selects the built-in quick benchmark; it cannot be combined with --config")
    cfg = load_bench_config(args.config, quick=args.quick)
    report = run_benchmark(cfg, args.out, progress=not args.quiet)
    print(f"benchmark done in {report['minutes']:.1f} min: {Path(args.out) / 'report.md'}, "
          f"{Path(args.out) / 'report.json'}, plots in {Path(args.out) / 'plots'}/")
    return 0


# ---------------------------------------------------------------- main
COMMANDS: list[Callable] = [_add_simulate, _add_info, _add_train, _add_predict, _add_evaluate, _add_benchmark]


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
