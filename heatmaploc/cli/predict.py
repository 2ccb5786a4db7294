"""``heatmaploc predict``: points of image files or folders (table, JSON, CSV, overlays)."""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from heatmaploc.cli.common import (
    add_large_image_options,
    add_refine_option,
    add_tta_option,
    load_localizer,
    physics_options,
    positive_float,
    threshold_arg,
    writable_file,
    writable_folder,
)
from heatmaploc.data.inputs import expand_inputs, ground_truth_for, unique_names
from heatmaploc.physics.summary import physics_summary
from heatmaploc.sharding import Shard, write_manifest


def field_model_arg(text: str):
    """``KERNEL:WAVELENGTH[:DAMPING]`` (wavelength in pixels) -> a FieldModel."""
    from heatmaploc.physics.fieldfit import FieldModel

    parts = text.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError("expected KERNEL:WAVELENGTH[:DAMPING]")
        return FieldModel(parts[0], float(parts[1]), float(parts[2]) if len(parts) == 3 else 0.0)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: {err}") from None


def add(sub) -> None:
    p = sub.add_parser("predict", help="find sources in images (files or folders)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    p.add_argument("--checkpoint", help="model checkpoint (default: the shipped model)")
    p.add_argument("--threshold", type=threshold_arg, help="decode threshold (default: the one stored in the checkpoint)")
    add_refine_option(p, physics=True)
    add_tta_option(p)
    add_large_image_options(p)
    p.add_argument("--out", help="write predictions CSV (image,x,y,label,score,sigma[,refined])")
    p.add_argument("--overlay", metavar="DIR", help="write PNG overlays of predictions (and ground truth if known)")
    p.add_argument("--json", action="store_true",
                   help="print the points as JSON instead of a table (with --refine physics: per image the points, "
                        "whether the fit was used and the estimated physics)")
    p.add_argument("--pixel-size", type=positive_float, help="also report physical coordinates (units per pixel)")
    p.add_argument("--field-fit", type=field_model_arg, metavar="KERNEL:WAVELENGTH[:DAMPING]",
                   help="refine the points by a least-squares fit of the wave field (snapshots, or amplitude maps "
                        "with --field-amplitude; raw single-channel, or RGB with --field-colormap; kernel free, plate "
                        "or seed; wavelength in pixels; see heatmaploc.physics.fieldfit)")
    p.add_argument("--field-colormap", metavar="NAME",
                   help="with --field-fit: the images are RGB renderings through this matplotlib colormap")
    p.add_argument("--field-amplitude", action="store_true",
                   help="with --field-fit: the images are amplitude maps |u| (a vibrometer's), not snapshots")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first image that cannot be read (default: report it on one line, skip it, "
                        "predict the others and exit with 1)")
    p.add_argument("--shard", metavar="I/N",
                   help="predict only the I-th of N deterministic shares of the inputs (1-based, dealt round-robin "
                        "over the sorted input list) for N processes or a job array; needs --out, beside which a "
                        "manifest is written for 'heatmaploc merge-predictions'")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    import sys

    from tqdm import tqdm

    from heatmaploc.data.io import read_image, write_points_csv
    from heatmaploc.viz import plot_points_grid

    field_model = args.field_fit
    if field_model is None and (args.field_colormap is not None or args.field_amplitude):
        raise ValueError("--field-colormap and --field-amplitude need --field-fit KERNEL:WAVELENGTH")
    known = physics_options(args)
    if field_model is not None and known is not None:
        raise ValueError("--field-fit (known physics) and --refine physics (estimated physics) exclude each other; "
                         "give what you know with --known")
    if field_model is not None:
        field_model = replace(field_model, colormap=args.field_colormap,
                              observable="amplitude" if args.field_amplitude else "snapshot")
    shard = Shard.parse(args.shard) if args.shard is not None else None
    if shard is not None and not args.out:
        raise ValueError("--shard needs --out (the share's CSV, merged later by heatmaploc merge-predictions)")
    writable_file(args.out, "--out")
    writable_folder(args.overlay, "--overlay")
    files, others = expand_inputs(args.paths)
    names = unique_names(files)  # from all inputs, so every share names an image alike
    total = len(files)
    positioned = shard.take(files) if shard is not None else list(enumerate(files))
    files = [f for _, f in positioned]
    for folder, skipped in others.items():
        kinds = ", ".join(sorted({f.suffix.lower() or "(no extension)" for f in skipped}))
        print(f"{folder}: {len(skipped)} file(s) that are not images skipped ({kinds})", file=sys.stderr)
    loc = load_localizer(args.checkpoint, args.device, args.refine, args.tta, args)
    results, images, failed, candidates = [], {}, [], {}
    for path in tqdm(files, desc="predict", unit="img", disable=len(files) < 4):
        try:
            image = read_image(path)  # read once: network, field fit and overlay
            if known is not None:
                pts, candidates[path] = loc.predict_with_support(image, threshold=args.threshold,
                                                                 pixel_size=args.pixel_size)
            elif field_model is not None:
                pts = loc.predict_batch([image], threshold=args.threshold, pixel_size=args.pixel_size,
                                        refine="field", physics=field_model, names=[str(path)])[0]
            else:
                pts = loc.predict(image, threshold=args.threshold, pixel_size=args.pixel_size)
        except (ValueError, FileNotFoundError) as err:
            if args.strict or len(files) == 1:  # one input: its error is the whole story
                raise
            print(f"heatmaploc predict: skipped: {err}", file=sys.stderr)  # the message names the file
            failed.append(path)
            continue
        results.append((path, pts))
        if args.overlay or known is not None:
            images[path] = image
    if not results and shard is None:
        raise ValueError(f"none of the {len(files)} input images could be predicted")
    if known is not None and results:
        from heatmaploc.physics.refine import windowed  # scipy's optimizers: only where refined

        refined = loc.refine([images[p] for p, _ in results], [pts for _, pts in results],
                             [candidates[p] for p, _ in results], known, [str(p) for p, _ in results], args.workers,
                             progress=len(results) >= 4 or any(windowed(images[p].shape) for p, _ in results))
        results = [(path, pts) for (path, _), pts in zip(results, refined)]
    if args.json:
        if known is None:
            print(json.dumps({str(p): pts.to_list() for p, pts in results}, indent=1))
        else:
            print(json.dumps({str(p): {"points": pts.to_list(), "refined": pts.refined, "physics": pts.physics}
                              for p, pts in results}, indent=1))
    else:
        width = max([len(names[p]) for p, _ in results] + [5])
        print(f"{'image':<{width}}  count  points (x, y, score[, +-sigma px])")
        for path, pts in results:
            shown = ", ".join(f"({r['x']:.2f}, {r['y']:.2f}, {r['score']:.2f}"
                              + (f", +-{r['sigma']:.2g})" if r["sigma"] == r["sigma"] else ")") for r in pts.to_list()[:4])
            more = f" ... +{pts.count - 4}" if pts.count > 4 else ""
            print(f"{names[path]:<{width}}  {pts.count:>5}  {shown}{more}")
            if known is not None:
                print(f"{'':<{width}}         {physics_summary(pts.physics)}")
        print(f"{len(results)} images{f' (share {shard} of {total} inputs)' if shard else ''}, "
              f"{sum(p.count for _, p in results)} sources "
              f"(threshold {args.threshold if args.threshold is not None else loc.threshold:g})")
    if args.out:
        write_points_csv(args.out, [(names[p], pts.xy, pts.labels, pts.scores, pts.sigma,
                                     pts.refined if known is not None else None,
                                     (pts.strength, pts.phase, pts.strength_sigma, pts.phase_sigma))
                                    for p, pts in results],
                         with_scores=True, with_refined=known is not None, with_strength=known is not None)
        print(f"predictions: {args.out}")
        if shard is not None:
            done = {p for p, _ in results}
            manifest = write_manifest(args.out, shard, total, [(k, names[f], f in done) for k, f in positioned])
            print(f"share manifest: {manifest}")
    if args.overlay:
        cache: dict = {}
        out_dir = Path(args.overlay)
        for path, pts in results:
            truth = ground_truth_for(path, cache)
            title = f"{names[path]}: {pts.count} found" + (f", {len(truth)} true" if truth is not None else "")
            target = out_dir / Path(names[path]).with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            plot_points_grid([images[path]], [truth], target, preds=[pts.xy], titles=[title], columns=1)
        print(f"overlays: {out_dir}/ (red x = predicted, white o = ground truth)")
    if failed:
        print(f"heatmaploc predict: {len(failed)} of {len(files)} images could not be predicted (listed above); "
              f"the others were", file=sys.stderr)
        return 1
    return 0
