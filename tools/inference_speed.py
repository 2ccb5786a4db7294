"""Images per second of the default prediction, and of what could make it faster.

    python tools/inference_speed.py --out docs/benchmark/speed

The shipped model predicts the same simulated images (``--n`` of ``--size`` px, the
default preset) with each variant, in interleaved rounds within one process (this
machine's speed drifts by tens of percent within minutes, so only same-run ratios are
compared); the median of the rounds is reported, and the ratio to today's default (d4,
the eight views one forward pass each).  Variants: the eight d4 views batched into one
forward pass (``heatmaploc.tta.VIEW_BATCH_MAX_PIXELS``), channels-last weights, one
pass (``tta none``), and onnxruntime at d4 when it is installed.  Writes
``speed.json`` and ``speed.md``.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="report folder")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import torch

    from heatmaploc import Localizer, tta
    from heatmaploc.data.io import write_json
    from heatmaploc.simulate import get_preset, simulate_image

    cfg = get_preset("default", height=args.size, width=args.size)
    images = [simulate_image(cfg, 2026, i).image for i in range(args.n)]
    base = Localizer.default("cpu")
    last = copy.deepcopy(base.model).to(memory_format=torch.channels_last)
    variants = {
        "d4, views one by one (default)": (base, 0),
        "d4, views batched": (base, 1 << 40),
    }
    channels_last = Localizer(last, base.codec, "cpu", base.inference)
    variants["d4, views batched, channels-last"] = (channels_last, 1 << 40)
    variants["one pass"] = (base.with_tta("none"), 0)
    tmp = tempfile.TemporaryDirectory()
    try:
        from heatmaploc.onnx_export import export_onnx

        path = export_onnx(None, Path(tmp.name) / "model.onnx")
        variants["d4, onnxruntime"] = (Localizer.from_onnx(path, threads=torch.get_num_threads()), 0)
        variants["d4, onnxruntime, views batched"] = (variants["d4, onnxruntime"][0], 1 << 40)
    except ImportError:
        pass
    times: dict[str, list[float]] = {name: [] for name in variants}
    counts = {}
    for name, (loc, pixels) in variants.items():  # warm-up, and the points each variant finds
        tta.VIEW_BATCH_MAX_PIXELS = pixels
        counts[name] = sum(p.count for p in loc.predict_batch(images[:8]))
    for _ in range(args.rounds):
        for name, (loc, pixels) in variants.items():
            tta.VIEW_BATCH_MAX_PIXELS = pixels
            start = time.perf_counter()
            loc.predict_batch(images)
            times[name].append(time.perf_counter() - start)
    tmp.cleanup()
    reference = statistics.median(times["d4, views one by one (default)"])
    rows = {name: {"images_per_s": args.n / statistics.median(t), "ratio": reference / statistics.median(t),
                   "seconds": t, "points_first8": counts[name]} for name, t in times.items()}
    report = {"n": args.n, "size": args.size, "rounds": args.rounds, "threads": torch.get_num_threads(),
              "variants": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "speed.json", report)
    lines = ["# Prediction speed (CPU, one process)", "",
             f"{args.n} images of {args.size} x {args.size} px (default preset), the shipped model, "
             f"{report['threads']} torch threads; median of {args.rounds} interleaved rounds; ratio to the "
             "default of the same run (`python tools/inference_speed.py`).", "",
             "| variant | images/s | ratio | points on the first 8 |", "|---|---|---|---|"]
    lines += [f"| {name} | {r['images_per_s']:.2f} | {r['ratio']:.2f} | {r['points_first8']} |"
              for name, r in rows.items()]
    (out / "speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
