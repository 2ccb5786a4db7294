"""Cramér-Rao bound of source positions under the seed blog's protocol (seed000).

The rendering maps the min-max normalized field v in [0, 1] through jet to RGB and adds
noise of std 0.1 per channel; the bound uses the equivalent noise 0.1 / JET_SLOPE = 0.025
on v (see heatmaploc.bench.physics.JET_SLOPE), with amplitudes and phases as nuisance
parameters (or known, as the protocol fixes them), in pixels and in the blog's units.
The benchmark's seed table carries the same bound as a Coord(eps) ceiling.

Usage: python tools/seed000_limit.py [--images 30] [--noise 0.025]
"""
from __future__ import annotations

import argparse

import numpy as np

from heatmaploc.bench.physics import scene_position_bounds
from heatmaploc.simulate import get_preset
from heatmaploc.simulate.generate import image_rng
from heatmaploc.simulate.scene import sample_scene


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=30, help="images per source count")
    ap.add_argument("--noise", type=float, default=0.025, help="noise std on the normalized field")
    ap.add_argument("--known-strengths", action="store_true", help="amplitudes and phases known (the protocol fixes them)")
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


if __name__ == "__main__":
    main()
