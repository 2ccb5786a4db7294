"""``heatmaploc evaluate``: metrics of a model on a labelled dataset folder."""
from __future__ import annotations

from heatmaploc.atomic import atomic_write_text
from heatmaploc.cli.common import (add_large_image_options, add_refine_option, add_tta_option, load_localizer,
                                   physics_options, positive_float, print_point_table, threshold_arg)
from heatmaploc.metrics import RADII


def add(sub) -> None:
    p = sub.add_parser("evaluate", help="point and pixel metrics of a model on a labelled dataset folder")
    p.add_argument("dataset", metavar="DATASET", help="dataset folder (images/ + points.csv)")
    p.add_argument("--checkpoint", help="model checkpoint (default: the shipped model)")
    p.add_argument("--threshold", type=threshold_arg, help="decode threshold (default: the checkpoint's)")
    add_refine_option(p, physics=True)
    add_tta_option(p)
    add_large_image_options(p)
    p.add_argument("--radius", type=positive_float, action="append", default=[], help="extra matching radius in pixels")
    p.add_argument("--group-by", metavar="KEY", action="append", default=[],
                   help="also break F1@2 down by a per-image field of meta.json (kernel, observable, rendering, ...)")
    p.add_argument("--field-fit-from-meta", action="store_true",
                   help="also report the points refined by the field fit with the physics each image's meta.json "
                        "record states (simulated datasets: kernel, wavelength, damping, observable, colormap)")
    p.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def print_physics(phys: dict, radii, n_images: int) -> None:
    known = ", ".join(f"{k}={v}" for k, v in phys["known"].items()) or "nothing"
    print(f"\nrefined by the blind physics fit (known: {known}; fit used on {100 * phys['accepted']:.1f} % of "
          f"{n_images} images, the network's points kept on the rest):")
    print_point_table(phys, radii)
    cal = phys["calibration"]
    if cal["n_coordinates"]:
        print(f"sigma calibration after the fit: |error| <= 1 sigma {100 * cal['within_1sigma']:.1f} % (ideal 68.3), "
              f"<= 2 sigma {100 * cal['within_2sigma']:.1f} % (ideal 95.4); median sigma {cal['median_sigma']:.4f} px")
    wl = phys["wavelength"]
    if wl["n_images"]:
        print(f"wavelength vs meta.json ({wl['n_images']} images with a wave in view): median relative error "
              f"{100 * wl['median_relative_error']:.3f} %, 90th percentile {100 * wl['p90_relative_error']:.3f} %; "
              f"{wl['n_images_fit_used']} images whose fit was used: median "
              f"{100 * wl['median_relative_error_fit_used']:.3f} %")
    print("by refinement path (points at 2 px; sigma calibration of that path's points):\n"
          "| path | images | F1@2 | RMSE@2 (px) | count acc | within 1 sigma | within 2 sigma | median sigma (px) |\n"
          "|---|---|---|---|---|---|---|---|")
    for mode, sub in phys["by_mode"].items():
        c = sub["calibration"]
        shares = (f"{100 * c['within_1sigma']:.1f} % | {100 * c['within_2sigma']:.1f} % | {c['median_sigma']:.3f}"
                  if c["n_coordinates"] else "- | - | -")
        print(f"| {mode} | {sub['n_images']} | {sub['f1']:.4f} | {sub['rmse']:.4f} | {sub['count_accuracy']:.4f} | "
              f"{shares} |")
    accs = [f"{k} {100 * phys[f'{k}_accuracy']:.1f} %" for k in ("kernel", "observable", "colormap")
            if phys[f"{k}_accuracy"] == phys[f"{k}_accuracy"]]
    if accs:
        print("model identified right (images whose fit was used): " + ", ".join(accs))
    sec = phys["seconds"]
    print(f"time per image: median {sec['median']:.2f} s, p90 {sec['p90']:.2f} s, max {sec['max']:.2f} s "
          f"(one process each); wall time per image over all workers {sec['wall_per_image']:.2f} s")


def run(args) -> int:
    import json

    from heatmaploc.evaluation import evaluate_dataset

    known = physics_options(args)
    loc = load_localizer(args.checkpoint, args.device, args.refine, args.tta, args)
    radii = sorted({*RADII, *args.radius})
    metrics = evaluate_dataset(loc, args.dataset, radii, args.threshold, args.group_by, args.field_fit_from_meta,
                               progress=True, physics=known, workers=args.workers if known is not None else None)
    print(f"{args.dataset}: {metrics['n_images']} images, {metrics['n_sources']} sources, threshold "
          f"{metrics['threshold']:g}, tta {metrics['tta']}")
    print_point_table(metrics, radii)
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
    fit = metrics.get("field_fit")
    if fit is not None:
        print(f"\nrefined by the field fit with each image's meta.json physics ({fit['images_fitted']} of "
              f"{metrics['n_images']} images fitted; the count stays the model's):")
        print_point_table(fit, radii)
    phys = metrics.get("physics")
    if phys is not None:
        print_physics(phys, radii, metrics["n_images"])
    for key in args.group_by:
        fit_cols = (" F1@2 after fit | RMSE@2 after fit (px) |", "---|---|") if fit is not None else ("", "")
        if phys is not None:
            fit_cols = (fit_cols[0] + " F1@2 physics | RMSE@2 physics (px) | count acc physics |",
                        fit_cols[1] + "---|---|---|")
        print(f"\nby {key}:\n| {key} | images | sources | F1@2 | RMSE@2 (px) | count acc |{fit_cols[0]}\n"
              f"|---|---|---|---|---|---|{fit_cols[1]}")
        for value, sub in metrics[f"by_{key}"].items():
            row = (f"| {value} | {sub['n_images']} | {sub['n_sources']} | {sub['f1']:.4f} | {sub['rmse']:.4f} | "
                   f"{sub['count_accuracy']:.4f} |")
            if fit is not None:
                row += f" {sub['after_field_fit']['f1']:.4f} | {sub['after_field_fit']['rmse']:.4f} |"
            if phys is not None:
                after = sub["after_physics"]
                row += f" {after['f1']:.4f} | {after['rmse']:.4f} | {after['count_accuracy']:.4f} |"
            print(row)
    if args.json:
        atomic_write_text(args.json, json.dumps(metrics, indent=2))
    return 0
