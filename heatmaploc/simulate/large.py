"""Large simulated fields (thousands of sources) for tiled inference and its targets.

:func:`heatmaploc.simulate.scene.synthesize` sums every source over every pixel, which
is ``N x H x W`` kernel values: fine for training images, hours for a 4000 x 4000
field with thousands of sources.  Here the field is a sum of FFT convolutions
instead: source positions are drawn as usual and then rounded to a ``1/grid`` pixel
lattice (the returned points are the rounded ones, so the truth is exact); the sources
of each of the ``grid^2`` sub-pixel offsets form a weighted impulse image that is
convolved with the kernel sampled at that offset, truncated at ``reach_px`` (the
medium must be damped enough for the truncation not to matter: by default the field
of a source has decayed to ``exp(-Im(k) reach_px)`` there).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.signal import oaconvolve

from heatmaploc.physics import kernels
from heatmaploc.physics.forward import observe
from heatmaploc.simulate.config import SimConfig
from heatmaploc.simulate.generate import SimulatedImage, image_rng, render_field
from heatmaploc.simulate.scene import Scene, sample_scene


def lattice_field(scene: Scene, height: int, width: int, grid: int, reach_px: int) -> np.ndarray:
    """``(height, width)`` complex field of ``scene``'s sources, whose positions must lie
    on the ``1/grid`` lattice, by one FFT convolution per sub-pixel offset."""
    pts = np.asarray(scene.points, np.float64).reshape(-1, 2)
    cells = np.rint(pts * grid).astype(np.int64)
    whole, frac = np.floor_divide(cells, grid), np.mod(cells, grid)
    m = np.arange(-reach_px, reach_px + 1, dtype=np.float64)
    out = np.zeros((height, width), np.complex128)
    a2 = scene.source_size**2
    for fx in range(grid):
        for fy in range(grid):
            sel = (frac[:, 0] == fx) & (frac[:, 1] == fy)
            if not sel.any():
                continue
            impulses = np.zeros((height, width), np.complex128)
            np.add.at(impulses, (whole[sel, 1], whole[sel, 0]), scene.strengths[sel])
            r = np.sqrt((m[None, :] - fx / grid) ** 2 + (m[:, None] - fy / grid) ** 2 + a2)
            kernel = kernels.evaluate(scene.kernel, r, scene.wavenumber)
            out += oaconvolve(impulses, kernel, mode="full")[reach_px : reach_px + height, reach_px : reach_px + width]
    return out


def simulate_large(cfg: SimConfig, seed: int, height: int, width: int, per_megapixel: float | None = None,
                   damping: float | None = 0.03, grid: int = 4, reach_px: int | None = None) -> SimulatedImage:
    """One large image drawn like ``cfg``'s (kernel, wavelength, observable, rendering,
    noise, minimum separation) at ``per_megapixel`` sources per 10^6 pixels (default:
    the density of ``cfg``'s most crowded images), without sources outside the view.

    ``damping`` (``Im k / Re k``) replaces ``cfg``'s draw (default 0.03, the top of the
    default preset's range: a dense undamped field is dominated by the far sources'
    sum, which no training image shows); ``reach_px`` defaults to where a source's field
    has decayed by ``exp(-8)``.
    """
    if per_megapixel is None:
        per_megapixel = cfg.count_range[1] / (cfg.height * cfg.width) * 1e6
    n = int(round(per_megapixel * height * width / 1e6))
    big = replace(cfg, height=height, width=width, count_range=(n, n), outside_count_range=(0, 0),
                  damping_range=(damping, damping) if damping is not None else cfg.damping_range)
    rng = image_rng(seed, 0)
    scene = sample_scene(big, 0, rng)
    points = np.clip(np.rint(scene.points * grid) / grid, 0.0, [width - 1, height - 1])
    scene = replace(scene, points=points)
    if reach_px is None:
        decay = float(np.imag(scene.wavenumber))
        reach_px = int(min(max(8.0 / decay, 64.0), max(height, width))) if decay > 0 else max(height, width)
    field = observe(lattice_field(scene, height, width, grid, reach_px), scene.observable, scene.time_phase)
    image, info = render_field(big, field, rng)
    info.update(kernel=scene.kernel, observable=scene.observable, wavelength_px=round(scene.wavelength, 6),
                damping=round(float(np.imag(scene.wavenumber) / np.real(scene.wavenumber)), 6), count=len(points),
                lattice=1.0 / grid, reach_px=reach_px)
    return SimulatedImage(image, points, scene, info)


def to_uint16(image: np.ndarray) -> np.ndarray:
    """A raw float image min-max scaled to the full uint16 range (a camera's 16 bits)."""
    x = np.asarray(image, np.float64)
    lo, hi = float(x.min()), float(x.max())
    return np.rint((x - lo) / (hi - lo if hi > lo else 1.0) * 65535.0).astype(np.uint16)


__all__ = ["lattice_field", "simulate_large", "to_uint16"]
