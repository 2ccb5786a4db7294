"""The spot-image simulator (preset ``spots``): point sources seen through a microscope's
or telescope's point-spread function on a camera, as in single-molecule and
fluorescence spot detection: each source spreads its photons by a Gaussian or an Airy
PSF integrated over the pixel, on a constant background, with photon (Poisson) noise
and the camera's Gaussian read noise.  No wave physics: the images a point-spread
family models and a wave model must not explain.

Ground truth: the spots' pixel positions (docs/design.md section 1) and their photon
counts (``info["photons"]``, with levels in dB relative to the brightest,
``info["levels_db"]``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from heatmaploc.physics.colormap import apply_colormap, to_uint8
from heatmaploc.physics.psf import PSF
from heatmaploc.simulate.checks import check_size_and_counts, check_subset
from heatmaploc.simulate.preset import PresetConfig, place_points
from heatmaploc.simulate.render import RENDERINGS, draw_rendering

SPOT_SHAPES = ("gaussian", "airy")
SUBPIXELS = 4  # samples per pixel side that integrate the PSF over a pixel


@dataclass(frozen=True)
class SpotsConfig(PresetConfig):
    """Everything that defines a simulated set of spot images except the seed.

    Attributes:
        height, width: image size in pixels.
        count_range: inclusive range of the number of spots per image (0 allowed).
        shapes: PSF shapes drawn uniformly per image (``gaussian``, ``airy``).
        fwhm_px_range: the PSF's full width at half maximum in pixels (uniform per image).
        photons_range: the brightest spot's photon count (log-uniform per image).
        level_spread_db_range: the others' photon counts are drawn uniformly in
            ``[-spread, 0]`` dB relative to the brightest, the spread drawn from this range.
        background_range: background photons per pixel (uniform per image).
        read_noise_range: the camera's Gaussian read noise std in photons (uniform).
        min_separation_fwhm: spots are at least this many FWHM apart.
        border_margin_px: spots keep this distance from the outer pixel centres.
        renderings: ``raw`` (float32 ``.npy`` photon counts) and/or ``colormap`` (RGB
            PNG of the image scaled to its range).
        raw_fraction: probability of ``raw`` when both renderings are allowed.
        colormaps: matplotlib colormap names for ``colormap``.
    """

    KIND = "spots"

    height: int = 64
    width: int = 64
    count_range: tuple[int, int] = (0, 8)
    shapes: tuple[str, ...] = SPOT_SHAPES
    fwhm_px_range: tuple[float, float] = (2.0, 5.0)
    photons_range: tuple[float, float] = (500.0, 10000.0)
    level_spread_db_range: tuple[float, float] = (0.0, 10.0)
    background_range: tuple[float, float] = (2.0, 50.0)
    read_noise_range: tuple[float, float] = (0.5, 3.0)
    min_separation_fwhm: float = 1.0
    border_margin_px: float = 2.0
    renderings: tuple[str, ...] = RENDERINGS
    raw_fraction: float = 0.5
    colormaps: tuple[str, ...] = ("gray", "viridis", "magma", "hot")
    pixel_size: float | None = None
    origin: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        check_size_and_counts(self.height, self.width, self.count_range, "image")
        check_subset("shapes", self.shapes, SPOT_SHAPES)
        check_subset("renderings", self.renderings, RENDERINGS)
        for name in ("fwhm_px_range", "photons_range", "background_range", "read_noise_range",
                     "level_spread_db_range"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must satisfy 0 <= min <= max, got {(lo, hi)}")
        if self.fwhm_px_range[0] <= 0 or self.photons_range[0] <= 0:
            raise ValueError("fwhm_px_range and photons_range must be positive")


@dataclass(frozen=True)
class SpotsScene:
    """One image's spots and camera.

    Attributes:
        points: ``(N, 2)`` spot positions ``(x, y)`` in pixels; photons: ``(N,)``.
        psf: the PSF (shape and FWHM in pixels); background: photons per pixel;
        read_noise: Gaussian read noise std in photons.
    """

    points: np.ndarray
    photons: np.ndarray
    psf: PSF
    background: float
    read_noise: float

    @property
    def powers(self) -> np.ndarray:
        """``(N,)`` each spot's power in the image: its photon count."""
        return self.photons


def sample_spots_scene(cfg: SpotsConfig, rng: np.random.Generator) -> SpotsScene:
    """Draw one image's spots and camera from ``cfg``."""
    psf = PSF(str(rng.choice(cfg.shapes)), float(rng.uniform(*cfg.fwhm_px_range)))
    n = int(rng.integers(cfg.count_range[0], cfg.count_range[1] + 1))
    points = place_points(n, cfg.height, cfg.width, cfg.border_margin_px, cfg.min_separation_fwhm * psf.width,
                          rng, "spots", "min_separation_fwhm, fwhm_px_range or count_range")
    lo, hi = cfg.photons_range
    brightest = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    levels = -rng.uniform(0.0, float(rng.uniform(*cfg.level_spread_db_range)), size=n)
    if n:
        levels[int(rng.integers(n))] = 0.0
    return SpotsScene(points, brightest * 10.0 ** (levels / 10.0), psf, float(rng.uniform(*cfg.background_range)),
                      float(rng.uniform(*cfg.read_noise_range)))


def expected_photons(scene: SpotsScene, height: int, width: int) -> np.ndarray:
    """``(H, W)`` float64 expected photons per pixel: the background plus each spot's
    photons spread by the PSF, integrated over every pixel (``SUBPIXELS`` squared
    samples) and normalized so that a spot far from the border puts all its photons
    in the image."""
    offsets = (np.arange(SUBPIXELS) + 0.5) / SUBPIXELS - 0.5
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.full((height, width), scene.background)
    reach = 6.0 * scene.psf.width if scene.psf.shape == "airy" else 3.0 * scene.psf.width
    norm_grid = np.arange(-math.ceil(reach) - 1, math.ceil(reach) + 2, dtype=np.float64)
    ny, nx = np.meshgrid(norm_grid, norm_grid, indexing="ij")
    total = sum(float(scene.psf(nx + dx, ny + dy).sum()) for dy in offsets for dx in offsets)
    for (x, y), photons in zip(scene.points, scene.photons):
        spread = sum(scene.psf(xs - x + dx, ys - y + dy) for dy in offsets for dx in offsets)
        image += photons * spread / total
    return image


def simulate_spots(cfg: SpotsConfig, rng: np.random.Generator) -> tuple[SpotsScene, np.ndarray, dict[str, Any]]:
    """One image drawn from ``rng``: ``(scene, rendered image, info)``, in the one order
    of draws that makes a dataset reproducible from its seed.  The raw image is
    float32 photons (Poisson of the expected photons plus read noise); a colormap
    rendering scales it to its own range."""
    scene = sample_spots_scene(cfg, rng)
    expected = expected_photons(scene, cfg.height, cfg.width)
    counts = rng.poisson(expected).astype(np.float64) + rng.normal(0.0, scene.read_noise, expected.shape)
    rendering = draw_rendering(cfg.renderings, cfg.raw_fraction, rng)
    info: dict[str, Any] = {"rendering": rendering}
    if rendering == "colormap":
        name = str(rng.choice(cfg.colormaps))
        image = to_uint8(apply_colormap(counts, name))
        info["colormap"] = name
    else:
        image = counts.astype(np.float32)
    peak = float(scene.photons.max()) if len(scene.photons) else 1.0
    info.update(kind="spots", count=len(scene.points), psf=scene.psf.shape, fwhm_px=round(scene.psf.width, 4),
                photons=[round(float(p), 4) for p in scene.photons],
                levels_db=[round(float(10 * np.log10(p / peak)), 4) for p in scene.photons],
                background=round(scene.background, 4), read_noise=round(scene.read_noise, 4))
    return scene, image, info
