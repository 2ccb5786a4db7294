"""Print the foundation figures: simulator throughput, codec decode time, sub-pixel
self-test.  Usage: python tools/foundation_figures.py [--n 200] [--workers 2]"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from heatmaploc.codec import HeatmapCodec
from heatmaploc.simulate import get_preset, write_dataset


def simulator_throughput(preset: str, n: int, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_dataset(get_preset(preset), n, tmp, seed=0, workers=workers, progress=False)
        return n / (time.perf_counter() - t0)


def decode_time(size: int, n_points: int, repeats: int, batch: int = 1) -> float:
    codec = HeatmapCodec()
    rng = np.random.default_rng(0)
    maps = np.stack([codec.encode(rng.uniform(5, size - 5, (n_points, 2)), (size, size)) for _ in range(batch)])
    logits = torch.logit(torch.from_numpy(maps).clamp(1e-4, 1 - 1e-4))
    codec.decode(logits, logits=True)
    t0 = time.perf_counter()
    for _ in range(repeats):
        codec.decode(logits, logits=True)
    return (time.perf_counter() - t0) / (repeats * batch)


def subpixel_self_test(sigma: float = 2.0) -> dict[str, float]:
    codec = HeatmapCodec(sigma=sigma)
    phases = np.linspace(0, 1, 21)[:-1]
    errs = []
    for fx in phases:
        for fy in phases:
            p = np.array([[40 + fx, 30 + fy]])
            d = codec.decode(torch.from_numpy(codec.encode(p, (64, 96)))[None])[0]
            errs.append(d.xy[0] - p[0])
    errs = np.array(errs)
    border = []
    for t in np.linspace(0, 1, 41):
        for p in ([-0.5 + 0.999 * t, 20.3], [50.2, 63.499 - 0.999 * t]):
            p = np.array([p])
            d = codec.decode(torch.from_numpy(codec.encode(p, (64, 96)))[None])[0]
            border.append(np.hypot(*(d.xy[0] - p[0])))
    return {"mean_bias_px": float(np.abs(errs.mean(0)).max()), "max_error_px": float(np.hypot(*errs.T).max()),
            "border_max_error_px": float(np.max(border)), "n_interior": len(errs), "n_border": len(border)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.workers)
    for preset in ("default", "seed000"):
        print(f"simulator {preset}: {simulator_throughput(preset, args.n, args.workers):.1f} images/s "
              f"({args.n} images, {args.workers} workers)")
    for size, n_pts in ((128, 6), (512, 20)):
        print(f"decode {size}x{size} ({n_pts} peaks, batch 1): {1e3 * decode_time(size, n_pts, 30):.2f} ms/image; "
              f"batch 16: {1e3 * decode_time(size, n_pts, 5, batch=16):.2f} ms/image")
    print("sub-pixel self-test (sigma 2, ideal Gaussians):", subpixel_self_test())


if __name__ == "__main__":
    main()
