"""Benchmark suites: labelled image sets built in memory from the simulator (or read
from a dataset folder), each image with its generator info for per-level breakdowns.

Special generators place sources where the stress tests need them: pairs at a given
separation (in wavelengths), sources within one wavelength of the border, single
isolated sources for the Cramér-Rao comparison.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from heatmaploc.data.index import load_dataset
from heatmaploc.data.io import read_image
from heatmaploc.points import PhysicalFrame
from heatmaploc.simulate import SimConfig, get_preset
from heatmaploc.simulate.acoustic import AcousticConfig, simulate_acoustic
from heatmaploc.simulate.generate import image_rng, render_scene, simulate_image
from heatmaploc.simulate.spots import SpotsConfig
from heatmaploc.simulate.scene import Scene, sample_scene

GENERATORS = ("standard", "close_pairs", "border", "isolated")


@dataclass(frozen=True)
class SuiteSpec:
    """One suite.

    Attributes:
        name: label in the report.
        group: ``main``, ``stress``, ``snr``, ``crlb``, ``seed``... (report sections).
        preset, overrides: simulator preset and ``SimConfig`` overrides.
        generator: ``standard`` (the preset as is), ``close_pairs`` (two sources
            ``separation`` wavelengths apart), ``border`` (sources within one
            wavelength of the border), ``isolated`` (one source, nothing else).
        separation: for ``close_pairs``, in wavelengths.
        folder: read a labelled dataset folder instead of simulating.
        seed, n: simulator seed (never one used in training) and number of images.
    """

    name: str
    group: str = "main"
    preset: str = "default"
    overrides: dict = field(default_factory=dict)
    generator: str = "standard"
    separation: float = 1.0
    folder: str | None = None
    seed: int = 7001
    n: int = 200


@dataclass
class Suite:
    spec: SuiteSpec
    images: list[np.ndarray]
    truths: list[np.ndarray]
    infos: list[dict[str, Any]]
    scenes: list[Scene | None]
    frame: PhysicalFrame | None = None
    config: SimConfig | None = None  # the simulator config (None for a dataset folder)
    csms: list[np.ndarray] | None = None  # acoustic suites: each map's cross-spectral matrix (what the array measured)

    @property
    def is_acoustic(self) -> bool:
        """Beamforming maps of the acoustic preset (point-spread physics, not waves)."""
        return isinstance(self.config, AcousticConfig)

    @property
    def is_point_spread(self) -> bool:
        """Images of point-spread physics (beamforming maps, spot images): the
        point-spread family models them, no wave model does."""
        return isinstance(self.config, (AcousticConfig, SpotsConfig))

    def __len__(self) -> int:
        return len(self.images)

    def head(self, n: int) -> "Suite":
        """The first ``n`` images of this suite, with their truths, infos, scenes and
        matrices."""
        return replace(self, images=self.images[:n], truths=self.truths[:n], infos=self.infos[:n],
                       scenes=self.scenes[:n], csms=None if self.csms is None else self.csms[:n])


def _place_pair(scene: Scene, cfg, separation: float, rng: np.random.Generator) -> Scene:
    d = separation * scene.wavelength
    cx, cy = (cfg.width - 1) / 2 + rng.uniform(-4, 4), (cfg.height - 1) / 2 + rng.uniform(-4, 4)
    ang = rng.uniform(0, math.pi)
    off = 0.5 * d * np.array([math.cos(ang), math.sin(ang)])
    pts = np.array([[cx, cy] - off, [cx, cy] + off])
    q = scene.strengths[:2] if len(scene.strengths) >= 2 else np.exp(1j * rng.uniform(0, 2 * math.pi, 2))
    return replace(scene, points=pts, strengths=q)


def _place_border(scene: Scene, cfg, rng: np.random.Generator) -> Scene:
    pts = []
    for _ in range(len(scene.points)):
        side = int(rng.integers(0, 4))
        depth = rng.uniform(0.0, min(scene.wavelength, min(cfg.height, cfg.width) / 4))
        along = rng.uniform(0, (cfg.width if side < 2 else cfg.height) - 1)
        if side == 0:
            pts.append((along, depth))
        elif side == 1:
            pts.append((along, cfg.height - 1 - depth))
        elif side == 2:
            pts.append((depth, along))
        else:
            pts.append((cfg.width - 1 - depth, along))
    return replace(scene, points=np.asarray(pts, dtype=np.float64).reshape(-1, 2))


def build_suite(spec: SuiteSpec) -> Suite:
    """Materialize ``spec`` (deterministic from its seed)."""
    if spec.generator not in GENERATORS:
        raise ValueError(f"suite {spec.name!r}: generator must be one of {GENERATORS}, got {spec.generator!r}")
    if spec.folder:
        index = load_dataset(spec.folder)
        return Suite(spec, [read_image(r.path) for r in index.records], [r.points for r in index.records],
                     [{} for _ in index.records], [None] * len(index), index.frame)
    overrides = dict(spec.overrides)
    if spec.generator == "close_pairs":
        overrides.setdefault("count_range", (2, 2))
        overrides.setdefault("outside_count_range", (0, 0))
    if spec.generator == "isolated":
        overrides.update(count_range=(1, 1), outside_count_range=(0, 0))
    cfg = get_preset(spec.preset, **overrides)
    if isinstance(cfg, AcousticConfig):
        return _acoustic_suite(spec, cfg)
    if isinstance(cfg, SpotsConfig):
        return _spots_suite(spec, cfg)
    images, truths, infos, scenes = [], [], [], []
    for i in range(spec.n):
        rng = image_rng(spec.seed, i)
        scene = sample_scene(cfg, i, rng)
        if spec.generator == "close_pairs":
            scene = _place_pair(scene, cfg, spec.separation, rng)
        elif spec.generator == "border":
            scene = _place_border(scene, cfg, rng)
        image, info = render_scene(cfg, scene, rng)
        info.update(kernel=scene.kernel, observable=scene.observable, wavelength_px=scene.wavelength, count=len(scene.points))
        images.append(image)
        truths.append(scene.points)
        infos.append(info)
        scenes.append(scene)
    frame = PhysicalFrame(cfg.pixel_size, cfg.origin) if cfg.pixel_size else None
    return Suite(spec, images, truths, infos, scenes, frame, cfg)


def _acoustic_suite(spec: SuiteSpec, cfg: AcousticConfig) -> Suite:
    """Beamforming maps with their scenes and cross-spectral matrices (the maps are
    those :func:`heatmaploc.simulate.simulate_image` gives for the same seed)."""
    if spec.generator != "standard":
        raise ValueError(f"suite {spec.name!r}: acoustic suites take generator 'standard', got {spec.generator!r}")
    images, truths, infos, scenes, csms = [], [], [], [], []
    for i in range(spec.n):
        scene, csm, image, info = simulate_acoustic(cfg, image_rng(spec.seed, i))
        images.append(image)
        truths.append(scene.points)
        infos.append(info)
        scenes.append(scene)
        csms.append(csm)
    return Suite(spec, images, truths, infos, scenes, None, cfg, csms)


def _spots_suite(spec: SuiteSpec, cfg: SpotsConfig) -> Suite:
    """Spot images with their scenes (:func:`heatmaploc.simulate.simulate_image`'s for
    the same seed)."""
    if spec.generator != "standard":
        raise ValueError(f"suite {spec.name!r}: spots suites take generator 'standard', got {spec.generator!r}")
    sims = [simulate_image(cfg, spec.seed, i) for i in range(spec.n)]
    return Suite(spec, [s.image for s in sims], [s.points for s in sims], [s.info for s in sims],
                 [s.scene for s in sims], None, cfg)
