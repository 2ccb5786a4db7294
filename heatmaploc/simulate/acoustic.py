"""The acoustic-camera simulator (preset ``acoustic``): conventional beamforming maps of
uncorrelated monopoles seen by a planar microphone array
(:mod:`heatmaploc.physics.beamform`), from a cross-spectral matrix estimated from a
finite number of snapshots, so the map carries a measured one's estimation noise.

The map's pixel size follows from the drawn main-lobe width in pixels; the aperture is
drawn so that the map spans at most about +-45 degrees seen from the array (wider maps
of a small aperture would put most sources far off axis).  Ground truth: the sources'
pixel positions (docs/design.md section 1) and powers (``info["powers"]``, with their
levels in dB relative to the strongest, ``info["levels_db"]``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from heatmaploc.physics import beamform
from heatmaploc.physics.colormap import apply_colormap, to_uint8
from heatmaploc.simulate.checks import check_size_and_counts, check_subset
from heatmaploc.simulate.preset import PresetConfig, place_points
from heatmaploc.simulate.render import RENDERINGS, draw_rendering

SCALES = ("linear", "db")


@dataclass(frozen=True)
class AcousticConfig(PresetConfig):
    """Everything that defines a simulated set of beamforming maps except the seed.

    Attributes:
        height, width: map size in pixels.
        count_range: inclusive range of the number of sources per map (0 allowed).
        level_spread_db_range: the sources' levels are drawn uniformly in
            ``[-spread, 0]`` dB relative to the strongest (one source at 0 dB), the
            spread itself drawn uniformly from this range.
        mic_count_range: inclusive range of the number of microphones.
        geometries: array geometries drawn uniformly (:data:`beamform.GEOMETRIES`).
        aperture_wavelengths_range: array diameter in wavelengths (log-uniform), raised
            where needed to keep the map within about +-45 degrees.
        distance_apertures_range: distance of the map plane in apertures (uniform).
        mainlobe_px_range: -3 dB main-lobe width in pixels (uniform): sets the pixel size.
        min_separation_mainlobes: sources are at least this many main-lobe widths apart.
        border_margin_px: sources keep this distance from the outer pixel centres.
        snr_db_range: microphone SNR (total source power at the array centre over the
            noise power of one microphone), uniform.
        snapshots_range: number of snapshots the cross-spectral matrix is averaged
            over (log-uniform); None: the exact matrix.
        remove_diagonal_fraction: probability that the auto-spectra are removed.
        scales: ``linear`` (power) and/or ``db`` (``10 log10`` of the power relative to
            the map's maximum, floored at minus the drawn dynamic range).
        dynamic_range_db_range: the dB map's floor below its maximum (uniform).
        renderings: ``raw`` (float32 ``.npy``) and/or ``colormap`` (RGB PNG).
        raw_fraction: probability of ``raw`` when both renderings are allowed.
        colormaps: matplotlib colormap names for ``colormap``.
    """

    KIND = "acoustic"

    height: int = 64
    width: int = 64
    count_range: tuple[int, int] = (1, 5)
    level_spread_db_range: tuple[float, float] = (0.0, 20.0)
    mic_count_range: tuple[int, int] = (16, 128)
    geometries: tuple[str, ...] = beamform.GEOMETRIES
    aperture_wavelengths_range: tuple[float, float] = (2.0, 20.0)
    distance_apertures_range: tuple[float, float] = (0.5, 1.5)
    mainlobe_px_range: tuple[float, float] = (3.0, 8.0)
    min_separation_mainlobes: float = 1.0
    border_margin_px: float = 2.0
    snr_db_range: tuple[float, float] = (-10.0, 20.0)
    snapshots_range: tuple[int, int] | None = (64, 1024)
    remove_diagonal_fraction: float = 0.5
    scales: tuple[str, ...] = SCALES
    dynamic_range_db_range: tuple[float, float] = (30.0, 40.0)
    renderings: tuple[str, ...] = RENDERINGS
    raw_fraction: float = 0.5
    colormaps: tuple[str, ...] = ("jet", "viridis", "inferno", "hot", "turbo")
    pixel_size: float | None = None
    origin: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        check_size_and_counts(self.height, self.width, self.count_range, "map")
        if not 2 <= self.mic_count_range[0] <= self.mic_count_range[1]:
            raise ValueError(f"mic_count_range must be ordered and >= 2, got {self.mic_count_range}")
        check_subset("geometries", self.geometries, beamform.GEOMETRIES)
        check_subset("scales", self.scales, SCALES)
        check_subset("renderings", self.renderings, RENDERINGS)
        if self.aperture_wavelengths_range[0] <= 0 or self.mainlobe_px_range[0] <= 0:
            raise ValueError("aperture_wavelengths_range and mainlobe_px_range must be positive")
        if self.snapshots_range is not None and self.snapshots_range[0] < 1:
            raise ValueError(f"snapshots_range must be >= 1, got {self.snapshots_range}")


@dataclass(frozen=True)
class AcousticScene:
    """One map's sources and instrument.

    Attributes:
        points: ``(N, 2)`` source positions ``(x, y)`` in pixels; powers: ``(N,)``.
        mics: ``(M, 2)`` microphone positions (wavelengths); geometry: its kind.
        aperture, distance, pixel: array diameter, map distance and pixel size, in
            wavelengths.
        noise_power: microphone noise power; snapshots: None for the exact matrix.
        remove_diagonal: auto-spectra removed; scale: ``linear`` or ``db``;
        dynamic_range_db: the dB map's floor below its maximum.
    """

    points: np.ndarray
    powers: np.ndarray
    mics: np.ndarray
    geometry: str
    aperture: float
    distance: float
    pixel: float
    noise_power: float
    snapshots: int | None
    remove_diagonal: bool
    scale: str
    dynamic_range_db: float

    @property
    def mainlobe_px(self) -> float:
        """The main lobe's -3 dB width in pixels."""
        return beamform.mainlobe_width(self.aperture, self.distance) / self.pixel


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def sample_acoustic_scene(cfg: AcousticConfig, rng: np.random.Generator) -> AcousticScene:
    """Draw one map's sources and instrument from ``cfg``."""
    mainlobe_px = float(rng.uniform(*cfg.mainlobe_px_range))
    lo, hi = cfg.aperture_wavelengths_range
    # the map spans W * pixel = W * 1.03 distance / (aperture * mainlobe_px); keep it <= 2 distance
    needed = 1.03 * max(cfg.height, cfg.width) / (2.0 * mainlobe_px)
    aperture = _log_uniform(rng, min(max(lo, needed), hi), hi)
    distance = float(rng.uniform(*cfg.distance_apertures_range)) * aperture
    pixel = beamform.mainlobe_width(aperture, distance) / mainlobe_px
    geometry = str(rng.choice(cfg.geometries))
    mics = beamform.array_positions(geometry, int(rng.integers(cfg.mic_count_range[0], cfg.mic_count_range[1] + 1)),
                                    aperture, rng)
    n = int(rng.integers(cfg.count_range[0], cfg.count_range[1] + 1))
    points = place_points(n, cfg.height, cfg.width, cfg.border_margin_px, cfg.min_separation_mainlobes * mainlobe_px,
                          rng, "sources", "min_separation_mainlobes, mainlobe_px_range or count_range")
    spread = float(rng.uniform(*cfg.level_spread_db_range))
    levels = -rng.uniform(0.0, spread, size=n)
    if n:
        levels[int(rng.integers(n))] = 0.0
    powers = 10.0 ** (levels / 10.0)
    snr_db = float(rng.uniform(*cfg.snr_db_range))
    noise_power = float(max(powers.sum(), 1.0) / 10.0 ** (snr_db / 10.0))
    snapshots = None if cfg.snapshots_range is None else int(round(_log_uniform(rng, *cfg.snapshots_range)))
    remove_diagonal = bool(rng.random() < cfg.remove_diagonal_fraction)
    scale = str(rng.choice(cfg.scales))
    dynamic_range = float(rng.uniform(*cfg.dynamic_range_db_range))
    return AcousticScene(points, powers, mics, geometry, aperture, distance, pixel, noise_power, snapshots,
                         remove_diagonal, scale, dynamic_range)


def scene_csm(scene: AcousticScene, height: int, width: int, rng: np.random.Generator | None) -> np.ndarray:
    """``(M, M)`` cross-spectral matrix of ``scene``'s microphones (drawn from ``rng``
    when the scene has a finite number of snapshots): what the array measured."""
    sources = beamform.pixel_to_focus(scene.points, height, width, scene.pixel, scene.distance)
    return beamform.cross_spectral_matrix(scene.mics, sources, scene.powers, scene.noise_power, scene.snapshots, rng)


def power_map(scene: AcousticScene, height: int, width: int, rng: np.random.Generator | None,
              csm: np.ndarray | None = None) -> np.ndarray:
    """``(H, W)`` float64 beamforming power map of ``scene`` (linear) from ``csm``
    (default: :func:`scene_csm` drawn from ``rng``)."""
    csm = scene_csm(scene, height, width, rng) if csm is None else csm
    grid = beamform.focus_grid(height, width, scene.pixel, scene.distance)
    return beamform.beamform(csm, scene.mics, grid, scene.remove_diagonal).reshape(height, width)


def to_db(power: np.ndarray, dynamic_range_db: float) -> np.ndarray:
    """``10 log10(power / max)`` floored at ``-dynamic_range_db`` (non-positive powers
    too)."""
    peak = float(np.max(power))
    if peak <= 0:
        return np.full(power.shape, -float(dynamic_range_db))
    floor = peak * 10.0 ** (-dynamic_range_db / 10.0)
    return 10.0 * np.log10(np.maximum(power, floor) / peak)


def simulate_acoustic(cfg: AcousticConfig, rng: np.random.Generator
                      ) -> tuple[AcousticScene, np.ndarray, np.ndarray, dict[str, Any]]:
    """One map drawn from ``rng``: ``(scene, cross-spectral matrix, rendered map, info)``,
    in the one order of draws that makes a dataset reproducible from its seed."""
    scene = sample_acoustic_scene(cfg, rng)
    csm = scene_csm(scene, cfg.height, cfg.width, rng)
    image, info = render_acoustic(cfg, scene, rng, csm)
    return scene, csm, image, info


def render_acoustic(cfg: AcousticConfig, scene: AcousticScene, rng: np.random.Generator,
                    csm: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The rendered map (float32 ``(H, W)`` raw or uint8 ``(H, W, 3)`` colormap) and its
    generator info (JSON-friendly: powers, levels, instrument); ``csm``: the scene's
    :func:`scene_csm` when the caller drew it (from the same ``rng``, just before)."""
    power = power_map(scene, cfg.height, cfg.width, rng, csm)
    values = to_db(power, scene.dynamic_range_db) if scene.scale == "db" else power
    rendering = draw_rendering(cfg.renderings, cfg.raw_fraction, rng)
    info: dict[str, Any] = {"rendering": rendering}
    if rendering == "colormap":
        name = str(rng.choice(cfg.colormaps))
        image = to_uint8(apply_colormap(values, name))
        info["colormap"] = name
    else:
        image = values.astype(np.float32)
    peak = float(scene.powers.max()) if len(scene.powers) else 1.0
    info.update(kind="acoustic", scale=scene.scale, count=len(scene.points),
                powers=[round(float(p), 8) for p in scene.powers],
                levels_db=[round(float(10 * np.log10(p / peak)), 4) for p in scene.powers],
                geometry=scene.geometry, microphones=len(scene.mics), aperture_wavelengths=round(scene.aperture, 4),
                distance_wavelengths=round(scene.distance, 4), pixel_wavelengths=round(scene.pixel, 6),
                mainlobe_px=round(scene.mainlobe_px, 4), snapshots=scene.snapshots,
                remove_diagonal=scene.remove_diagonal,
                mic_snr_db=round(float(10 * np.log10(max(scene.powers.sum(), 1.0) / scene.noise_power)), 4))
    if scene.scale == "db":
        info["dynamic_range_db"] = round(scene.dynamic_range_db, 4)
    return image, info
