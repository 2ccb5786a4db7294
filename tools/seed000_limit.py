"""Cramér-Rao bound of source positions under the seed blog's protocol (seed000).

The rendering maps the min-max normalized field v in [0, 1] through jet to RGB and adds
noise of std 0.1 per channel; the bound uses the equivalent noise 0.1 / JET_SLOPE = 0.025
on v (see heatmaploc.bench.physics.JET_SLOPE), with amplitudes and phases as nuisance
parameters (or known, as the protocol fixes them), in pixels and in the blog's units.
The benchmark's seed table carries the same bound as a Coord(eps) ceiling.

With --count-separation it also asks whether the source count is identifiable: for every
image with n >= 2 sources, the nearest scene with n - 1 unit sources (positions fitted to
the noise-free jet rendering) and its distance d in units of the protocol's RGB noise
(0.1 per channel, all pixels); an ideal test between the two errs with probability
Phi(-d/2).

Usage: python tools/seed000_limit.py [--images 30] [--noise 0.025] [--known-strengths]
       [--count-separation]
"""
from __future__ import annotations

import argparse

import numpy as np
from scipy.spatial.distance import pdist
from scipy.stats import norm

from heatmaploc.bench.physics import fewer_source_distance, scene_position_bounds
from heatmaploc.simulate import get_preset
from heatmaploc.simulate.generate import image_rng
from heatmaploc.simulate.scene import sample_scene


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=30, help="images per source count")
    ap.add_argument("--noise", type=float, default=0.025, help="noise std on the normalized field")
    ap.add_argument("--known-strengths", action="store_true", help="amplitudes and phases known (the protocol fixes them)")
    ap.add_argument("--count-separation", action="store_true",
                    help="also measure how far the nearest scene with one source fewer is (slow: ~10-60 s per image)")
    args = ap.parse_args()
    cfg = get_preset("seed000")
    print(f"seed000: pixel size {cfg.pixel_size:.5f} units, wavelength {cfg.wavelength_range[0]:.0f} px; "
          f"noise {args.noise} on the normalized field; strengths {'known' if args.known_strengths else 'nuisance'}")
    print("| sources | median CRLB (px) | median CRLB (units) | share of sources with CRLB < 0.1 units |")
    print("|---|---|---|---|")
    for count in (1, 2, 3):
        bounds = []
        for i in range(args.images):
            index = (count - 1) * cfg.images_per_block + i
            scene = sample_scene(cfg, index, image_rng(123, index))
            b = scene_position_bounds(scene, cfg.height, cfg.width, args.noise, known_strengths=args.known_strengths,
                                      relative_to_range=True)
            bounds.extend(np.hypot(b[:, 0], b[:, 1]))
        bounds = np.asarray(bounds)
        print(f"| {count} | {np.median(bounds):.3g} | {np.median(bounds) * cfg.pixel_size:.3g} | "
              f"{np.mean(bounds * cfg.pixel_size < 0.1):.2f} |")
    if args.count_separation:
        count_separation(cfg, args.images)


def count_separation(cfg, images: int) -> None:
    noise = float(cfg.noise_std)
    print(f"\nnearest scene with one source fewer, jet rendering, RGB noise {noise} per channel")
    print("| sources | images | min d | median d | smallest source spacing (px) | mean ideal-test error Phi(-d/2) |")
    print("|---|---|---|---|---|---|")
    for count in (2, 3):
        ds, spacings = [], []
        for i in range(images):
            index = (count - 1) * cfg.images_per_block + i
            scene = sample_scene(cfg, index, image_rng(123, index))
            d, _ = fewer_source_distance(scene, cfg.height, cfg.width, noise, colormap=cfg.colormaps[0])
            ds.append(d)
            spacings.append(pdist(scene.points).min())
        ds = np.asarray(ds)
        print(f"| {count} | {images} | {ds.min():.1f} | {np.median(ds):.1f} | {min(spacings):.2f} | "
              f"{norm.cdf(-ds / 2).mean():.2e} |")


if __name__ == "__main__":
    main()
