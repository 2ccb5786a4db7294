"""ONNX against torch on a dataset: heatmap difference, point lists, images per second.

    heatmaploc simulate --preset default --n 50 --out /tmp/test50 --seed 2026
    python tools/onnx_parity.py /tmp/test50 --out docs/benchmark/deploy

Exports the checkpoint (default: the shipped model) with ``heatmaploc export``'s
function, then predicts every image of the dataset with both engines at the model's
default test-time augmentation: the maximum absolute difference of the probability
maps (and of the regression maps), whether the point lists agree (same count,
positions within 1e-3 px) and images per second of each engine, measured in the same
run (torch and onnxruntime on the same number of threads; best of ``--repeats``).
Writes ``onnx_parity.json`` and ``onnx_parity.md``.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="dataset folder (images/)")
    parser.add_argument("--checkpoint", default=None, help="default: the shipped model")
    parser.add_argument("--out", help="report folder")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import numpy as np
    import torch

    from heatmaploc import Localizer
    from heatmaploc.data.index import list_images
    from heatmaploc.data.io import read_image, write_json
    from heatmaploc.onnx_export import export_onnx

    folder = Path(args.dataset)
    folder = folder / "images" if (folder / "images").is_dir() else folder
    images = [read_image(p) for p in list_images(folder)]
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = export_onnx(args.checkpoint, Path(tmp) / "model.onnx")
        export_s = time.perf_counter() - start
        size_mb = path.stat().st_size / 1e6
        torch_loc = (Localizer.default("cpu") if args.checkpoint is None
                     else Localizer.from_checkpoint(args.checkpoint, "cpu"))
        onnx_loc = Localizer.from_onnx(path, threads=threads)
        k = torch_loc.codec.config.num_classes
        maps_t, maps_o = torch_loc.raw_outputs(images), onnx_loc.raw_outputs(images)
        prob_diff = max(float(np.abs(a.maps[:k] - b.maps[:k]).max()) for a, b in zip(maps_t, maps_o))
        reg_diff = max((float(np.abs(a.maps[k:] - b.maps[k:]).max()) for a, b in zip(maps_t, maps_o)
                        if a.maps.shape[0] > k), default=0.0)
        pts_t, pts_o = torch_loc.predict_batch(images), onnx_loc.predict_batch(images)
        same_count = sum(a.count == b.count for a, b in zip(pts_t, pts_o))
        max_shift = max((float(np.abs(a.xy - b.xy).max()) for a, b in zip(pts_t, pts_o) if a.count and a.count == b.count),
                        default=0.0)

        def rate(loc) -> float:
            best = float("inf")
            for _ in range(args.repeats):
                begin = time.perf_counter()
                loc.predict_batch(images)
                best = min(best, time.perf_counter() - begin)
            return len(images) / best

        torch_rate, onnx_rate = rate(torch_loc), rate(onnx_loc)
    result = {
        "images": len(images), "shape": list(images[0].shape), "tta": torch_loc.tta, "threads": threads,
        "export_seconds": export_s, "onnx_megabytes": size_mb,
        "max_abs_probability_diff": prob_diff, "max_abs_regression_diff": reg_diff,
        "images_same_count": same_count, "points": sum(p.count for p in pts_t),
        "max_position_diff_px": max_shift,
        "torch_images_per_s": torch_rate, "onnxruntime_images_per_s": onnx_rate,
        "onnxruntime_over_torch": onnx_rate / torch_rate,
    }
    print(json.dumps(result, indent=1))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "onnx_parity.json", result)
        lines = [
            "# ONNX (onnxruntime, CPU) against torch (CPU)",
            "",
            f"`python tools/onnx_parity.py {args.dataset}`: {len(images)} images of shape {tuple(images[0].shape)}, "
            f"{'the shipped model' if args.checkpoint is None else args.checkpoint}, tta {torch_loc.tta}, "
            f"{threads} threads for each engine; one run.",
            "",
            "| measure | value |",
            "|---|---|",
            f"| max abs difference, source probability maps | {prob_diff:.2e} |",
            f"| max abs difference, regression maps (dx, dy, log sigma) | {reg_diff:.2e} |",
            f"| images with the same count | {same_count} / {len(images)} ({result['points']} points) |",
            f"| max position difference | {max_shift:.2e} px |",
            f"| torch, images/s | {torch_rate:.2f} |",
            f"| onnxruntime, images/s | {onnx_rate:.2f} |",
            f"| onnxruntime / torch | {onnx_rate / torch_rate:.3f} |",
            f"| export time, file size | {export_s:.1f} s, {size_mb:.1f} MB |",
            "",
        ]
        (out / "onnx_parity.md").write_text("\n".join(lines))
        print(f"report: {out}/onnx_parity.md")


if __name__ == "__main__":
    main()
