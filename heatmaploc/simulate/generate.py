"""One simulated image (deterministic from ``(seed, index)``) and whole datasets."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from heatmaploc._version import __version__
from heatmaploc.data.io import write_image, write_json, write_points_csv
from heatmaploc.physics.colormap import apply_colormap, to_uint8
from heatmaploc.processes import single_threaded, single_threaded_pool
from heatmaploc.simulate import render
from heatmaploc.simulate.acoustic import AcousticConfig, simulate_acoustic
from heatmaploc.simulate.config import SimConfig
from heatmaploc.simulate.spots import SpotsConfig, simulate_spots
from heatmaploc.simulate.scene import Scene, sample_scene, synthesize


@dataclass(frozen=True)
class SimulatedImage:
    """A rendered image with its ground truth.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB (colormap), ``(H, W)`` float32 (raw) or
            ``(H, W)`` complex64 (the complex observable, always raw).
        points: ``(N, 2)`` float64 source positions ``(x, y)`` in pixels.
        scene: the scene that produced it (:class:`Scene`, or the acoustic or spots
            preset's own).
        info: per-image generator parameters (JSON-friendly).
    """

    image: np.ndarray
    points: np.ndarray
    scene: Any
    info: dict[str, Any]

    @property
    def extension(self) -> str:
        return ".npy" if self.image.dtype != np.uint8 else ".png"


def image_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of image ``index``: independent of worker count and order."""
    return np.random.default_rng([int(seed), int(index)])


def render_scene(cfg: SimConfig, scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """Field -> rendered, noisy image and the rendering parameters."""
    return render_field(cfg, synthesize(scene, cfg.height, cfg.width), rng)


def render_field(cfg: SimConfig, field: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """A ``(H, W)`` observable -> rendered (raw or colormap), noisy image and the
    rendering parameters, drawn from ``cfg``.  A complex field is rendered raw, with
    independent noise of the drawn std on its real and imaginary parts (the SNR is
    that of each part: ``std(u) / sqrt(2)`` over the noise std)."""
    if np.iscomplexobj(field):
        return _render_complex(cfg, field, rng)
    rendering = render.draw_rendering(cfg.renderings, cfg.raw_fraction, rng)
    info: dict[str, Any] = {"rendering": rendering}
    if rendering == "colormap":
        name = str(rng.choice(cfg.colormaps))
        clean = apply_colormap(field, name)
        info["colormap"] = name
    else:
        clean = field
    if cfg.noise_std is not None:
        std = float(cfg.noise_std)
    else:
        snr_db = float(rng.uniform(*cfg.snr_db_range))
        std = render.noise_std_for_snr(clean, snr_db)
        if np.ptp(field) <= 1e-12:  # no signal in view: noise at the level of a typical rendering
            std = (0.25 if rendering == "colormap" else 1.0) / (10.0 ** (snr_db / 20.0))
        info["snr_db"] = round(snr_db, 4)
    info["noise_std"] = std
    noisy = render.add_noise(clean, std, rng, clip=rendering == "colormap")
    image = to_uint8(noisy) if rendering == "colormap" else noisy.astype(np.float32)
    return image, info


def _render_complex(cfg: SimConfig, field: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    info: dict[str, Any] = {"rendering": "raw"}
    if cfg.noise_std is not None:
        std = float(cfg.noise_std)
    else:
        snr_db = float(rng.uniform(*cfg.snr_db_range))
        std = float(np.std(field)) / np.sqrt(2.0) / 10.0 ** (snr_db / 20.0)
        if np.ptp(np.abs(field)) <= 1e-12:
            std = 1.0 / (10.0 ** (snr_db / 20.0))
        info["snr_db"] = round(snr_db, 4)
    info["noise_std"] = std
    noise = rng.normal(0.0, std, size=(2,) + field.shape) if std > 0 else np.zeros((2,) + field.shape)
    return (field + noise[0] + 1j * noise[1]).astype(np.complex64), info


def simulate_image(cfg: SimConfig, seed: int, index: int) -> SimulatedImage:
    """Image ``index`` of the dataset defined by ``(cfg, seed)`` (a beamforming map for
    an :class:`~heatmaploc.simulate.acoustic.AcousticConfig`, a spot image for a
    :class:`~heatmaploc.simulate.spots.SpotsConfig`)."""
    rng = image_rng(seed, index)
    if isinstance(cfg, AcousticConfig):
        scene, _, image, info = simulate_acoustic(cfg, rng)
        return SimulatedImage(image, scene.points, scene, info)
    if isinstance(cfg, SpotsConfig):
        scene, image, info = simulate_spots(cfg, rng)
        return SimulatedImage(image, scene.points, scene, info)
    scene = sample_scene(cfg, index, rng)
    image, info = render_scene(cfg, scene, rng)
    info.update(
        kernel=scene.kernel,
        observable=scene.observable,
        wavelength_px=round(scene.wavelength, 6),
        damping=round(float(np.imag(scene.wavenumber) / np.real(scene.wavenumber)), 6),
        time_phase=round(scene.time_phase, 6),
        source_size_px=round(scene.source_size, 6),
        count=len(scene.points),
        hidden_sources=len(scene.hidden_points),
    )
    if scene.slowness_slope or scene.source_radius or scene.reflection:  # the stress suites' mismatch
        info.update(slowness_slope=round(scene.slowness_slope, 8), source_radius_px=round(scene.source_radius, 6),
                    reflection=scene.reflection)
    if scene.medium is not None:  # a finite-difference medium
        m = scene.medium
        speed = m.speed if m.speed is not None else np.ones(1)
        info.update(medium="finite-difference", speed_min=round(float(speed.min()), 6),
                    speed_max=round(float(speed.max()), 6), orthotropy_ratio=round(m.ratio, 6),
                    orthotropy_angle=round(m.angle, 6),
                    edges={side: [m.edges[side], round(m.distances[side], 4)] for side in m.edges
                           if m.edges[side] != "absorb"})
    return SimulatedImage(image, scene.points, scene, info)


def _write_one(args: tuple[SimConfig, int, int, str]) -> tuple[str, np.ndarray, dict[str, Any]]:
    cfg, seed, index, images_dir = args
    sim = simulate_image(cfg, seed, index)
    name = f"{index:06d}{sim.extension}"
    write_image(Path(images_dir) / name, sim.image)
    return name, sim.points, sim.info


def write_dataset(cfg: SimConfig, n: int, out: str | Path, seed: int = 0, workers: int | None = None,
                  progress: bool = True, start: int = 0) -> Path:
    """Simulate images ``start .. start + n - 1`` into the docs/design.md layout at ``out``.

    Writes ``images/<index>.png|npy``, ``points.csv`` (4 decimals) and ``meta.json``
    (the generator config, seed, version, physical frame when known, and per-image
    parameters).  Same ``(cfg, n, seed, start)``, same bytes, whatever ``workers``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out = Path(out)
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
    jobs = [(cfg, seed, i, str(images_dir)) for i in range(start, start + n)]
    if workers == 1:
        with single_threaded():
            results = [_write_one(j) for j in tqdm(jobs, desc="simulate", unit="img", disable=not progress)]
    else:
        chunk = max(1, min(32, math.ceil(n / (4 * workers))))
        with single_threaded_pool(workers, fork=True) as pool:  # the simulator does not use torch
            results = list(tqdm(pool.map(_write_one, jobs, chunksize=chunk), total=n, desc="simulate",
                                unit="img", disable=not progress))
    write_points_csv(out / "points.csv", [(name, pts, None, None) for name, pts, _ in results])
    meta: dict[str, Any] = {
        "generator": "heatmaploc.simulate",
        "version": __version__,
        "seed": seed,
        "start": start,
        "n": n,
        "config": cfg.to_dict(),
        "mixed_channels": len(cfg.renderings) > 1,
        "images": {name: info for name, _, info in results},
    }
    if cfg.pixel_size is not None:
        meta["pixel_size"] = cfg.pixel_size
        meta["origin"] = list(cfg.origin)
    write_json(out / "meta.json", meta)
    return out
