"""Simulator configuration (:class:`SimConfig`) and the named presets.

All lengths are in pixels unless a name says otherwise; wavelengths are
``2 pi / Re(k)`` in pixels.  A preset is a plain :class:`SimConfig`, so any field can
be overridden with :func:`dataclasses.replace`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from heatmaploc.physics.forward import ALL_OBSERVABLES, OBSERVABLES
from heatmaploc.physics.kernels import KERNELS
from heatmaploc.simulate.acoustic import AcousticConfig
from heatmaploc.simulate.spots import SpotsConfig
from heatmaploc.simulate.checks import check_size_and_counts
from heatmaploc.simulate.render import RENDERINGS


@dataclass(frozen=True)
class SimConfig:
    """Everything that defines a simulated dataset except the seed and its size.

    Attributes:
        height, width: image size in pixels.
        count_range: inclusive ``(min, max)`` number of sources per image; 0 allowed.
        count_schedule: ``"uniform"`` draws the count per image; ``"blocks"`` gives
            ``images_per_block`` consecutive images to each count in turn (seed blog).
        kernels: field models drawn uniformly per image (see ``kernels.KERNELS``).
            The ``seed`` kernel has no amplitude map, so it is always a snapshot.
        observables: ``snapshot`` (``Re(u e^{-iwt})``) and/or ``amplitude`` (``|u|``).
        wavelength_range: wavelength in pixels, drawn log-uniformly.
        damping_range: ``Im(k) / Re(k)``, drawn uniformly.
        amplitude_range: source amplitudes ``A_j``, drawn uniformly (their ratio range).
        random_source_phase: random ``phi_j``; otherwise all sources are in phase.
        source_size_range: regularization length ``a`` (``r -> sqrt(r^2 + a^2)``).
        min_separation_px, min_separation_wavelengths: the larger of the two is the
            minimum distance between two sources of one image.
        border_margin_px: sources keep this distance from the outer pixel centres.
        source_box: optional ``(x0, x1, y0, y1)`` pixel box sources are drawn in.
        outside_count_range: inclusive range of extra, unlabelled sources placed
            outside the image (between ``outside_clearance_wavelengths`` wavelengths
            and half the image size beyond the edge): wave fields without a source in
            view, so that rings alone are not evidence of a source.
        phase_mode: ``"random"`` time phase ``wt`` per image, or ``"frame"``:
            ``wt = phase_step * (index % images_per_block)``.
        renderings: ``raw`` (float32 ``.npy`` field) and/or ``colormap`` (RGB PNG).
        raw_fraction: probability of ``raw`` when both renderings are allowed.
        colormaps: matplotlib colormap names drawn uniformly for ``colormap``.
        snr_db_range: noise as an SNR (std of the rendered image over noise std, in
            dB), drawn uniformly; ignored when ``noise_std`` is set.
        noise_std: absolute noise std (colormap renderings are in [0, 1]).
        pixel_size, origin: physical units per pixel and the physical ``(x, y)`` of
            pixel ``(0, 0)``; written to ``meta.json`` when ``pixel_size`` is set.
        speed_variation, source_radius_range, reflection, wall_distance_px: physics
            the point-source model does not describe (stress suites): the wave speed
            varies linearly across the width, per image by up to ``+-speed_variation``
            (a fraction) at the edges; sources are discs of a radius drawn from
            ``source_radius_range`` (pixels); a wall ``wall_distance_px`` beyond the left
            edge reflects with coefficient ``reflection`` (0: none).
        medium_speed_variation, medium_scale_wavelengths, orthotropy_range,
        edge_count_range, edge_conditions, edge_distance_px_range: media solved by
            finite differences (:mod:`heatmaploc.physics.fdsolve`; ``free`` and ``plate``
            kernels only), used when any is active (:attr:`finite_difference`): a
            smooth random wave speed ``1 + e s(p)`` with ``|s| <= 1`` and ``e`` up to
            ``medium_speed_variation``, correlated over ``medium_scale_wavelengths``
            wavelengths (drawn uniformly); an orthotropic medium whose wavelength ratio
            is drawn from ``orthotropy_range`` at a uniform axis angle; a number of the
            view's sides, from ``edge_count_range``, that are reflecting edges (condition
            drawn from ``edge_conditions``: ``dirichlet`` or ``neumann``) at a distance
            drawn from ``edge_distance_px_range`` beyond the view; the other sides
            absorb.  The source size is the std of a Gaussian source there.
    """

    height: int = 128
    width: int = 128
    count_range: tuple[int, int] = (0, 6)
    count_schedule: str = "uniform"
    images_per_block: int = 100
    kernels: tuple[str, ...] = KERNELS
    observables: tuple[str, ...] = OBSERVABLES
    wavelength_range: tuple[float, float] = (8.0, 24.0)
    damping_range: tuple[float, float] = (0.0, 0.03)
    amplitude_range: tuple[float, float] = (0.5, 1.0)
    random_source_phase: bool = True
    source_size_range: tuple[float, float] = (0.5, 1.5)
    min_separation_px: float = 4.0
    min_separation_wavelengths: float = 0.5
    border_margin_px: float = 2.0
    source_box: tuple[float, float, float, float] | None = None
    outside_count_range: tuple[int, int] = (0, 1)
    outside_clearance_wavelengths: float = 0.5
    phase_mode: str = "random"
    phase_step: float = 0.2
    renderings: tuple[str, ...] = RENDERINGS
    raw_fraction: float = 0.3
    colormaps: tuple[str, ...] = ("jet", "turbo", "gray", "hot", "coolwarm", "seismic")
    snr_db_range: tuple[float, float] | None = (5.0, 30.0)
    noise_std: float | None = None
    pixel_size: float | None = None
    origin: tuple[float, float] = (0.0, 0.0)
    speed_variation: float = 0.0
    source_radius_range: tuple[float, float] = (0.0, 0.0)
    reflection: float = 0.0
    wall_distance_px: float = 3.0
    medium_speed_variation: float = 0.0
    medium_scale_wavelengths: tuple[float, float] = (1.0, 3.0)
    orthotropy_range: tuple[float, float] = (1.0, 1.0)
    edge_count_range: tuple[int, int] = (0, 0)
    edge_conditions: tuple[str, ...] = ("dirichlet", "neumann")
    edge_distance_px_range: tuple[float, float] = (1.0, 12.0)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def finite_difference(self) -> bool:
        """True when the scenes' fields are solved by finite differences."""
        return bool(self.medium_speed_variation or self.orthotropy_range != (1.0, 1.0) or self.edge_count_range[1])

    def __post_init__(self) -> None:
        check_size_and_counts(self.height, self.width, self.count_range)
        for name in self.kernels:
            if name not in KERNELS:
                raise ValueError(f"unknown kernel {name!r}; expected one of {KERNELS}")
        for name in self.observables:
            if name not in ALL_OBSERVABLES:
                raise ValueError(f"unknown observable {name!r}; expected one of {ALL_OBSERVABLES}")
        if "complex" in self.observables and self.finite_difference:
            raise ValueError("the complex observable is not simulated for finite-difference media yet")
        for name in self.renderings:
            if name not in RENDERINGS:
                raise ValueError(f"unknown rendering {name!r}; expected one of {RENDERINGS}")
        if not (self.kernels and self.observables and self.renderings):
            raise ValueError("kernels, observables and renderings must not be empty")
        if self.count_schedule not in ("uniform", "blocks"):
            raise ValueError(f"count_schedule must be 'uniform' or 'blocks', got {self.count_schedule!r}")
        if self.phase_mode not in ("random", "frame"):
            raise ValueError(f"phase_mode must be 'random' or 'frame', got {self.phase_mode!r}")
        if self.wavelength_range[0] <= 0 or self.wavelength_range[1] < self.wavelength_range[0]:
            raise ValueError(f"wavelength_range must be positive and ordered, got {self.wavelength_range}")
        if self.snr_db_range is None and self.noise_std is None:
            raise ValueError("give snr_db_range or noise_std (use noise_std=0 for no noise)")
        if self.finite_difference:
            self._check_finite_difference()

    def _check_finite_difference(self) -> None:
        from heatmaploc.physics.fdsolve import EDGES

        if "seed" in self.kernels:
            raise ValueError("finite-difference media (medium_*, orthotropy_range, edge_*) model the 'free' and "
                             "'plate' kernels; remove 'seed' from kernels")
        if self.speed_variation or self.reflection or self.source_radius_range[1]:
            raise ValueError("speed_variation, reflection and source_radius_range are analytic stand-ins; "
                             "with a finite-difference medium use medium_speed_variation and edge_count_range")
        if not 0.0 <= self.medium_speed_variation < 0.5:
            raise ValueError(f"medium_speed_variation must be in [0, 0.5), got {self.medium_speed_variation}")
        if not 0.5 <= self.orthotropy_range[0] <= self.orthotropy_range[1] <= 3.0:
            raise ValueError(f"orthotropy_range must be ordered within [0.5, 3], got {self.orthotropy_range}")
        lo, hi = self.edge_count_range
        if not 0 <= lo <= hi <= 4:
            raise ValueError(f"edge_count_range must satisfy 0 <= min <= max <= 4, got {self.edge_count_range}")
        bad = [c for c in self.edge_conditions if c not in EDGES[1:]]
        if bad or not self.edge_conditions:
            raise ValueError(f"edge_conditions must be among {EDGES[1:]}, got {self.edge_conditions}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON/YAML-friendly dict (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SimConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown simulator option(s): {sorted(unknown)}")
        converted = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**converted)


def _seed000() -> SimConfig:
    """The seed blog's protocol on a 400x400 grid over ``[-10, 10]^2`` (units)."""
    n = 400
    pixel_size = 20.0 / (n - 1)
    k_physical = 0.2
    wavelength_px = 2.0 * math.pi / (k_physical * pixel_size)
    lo, hi = (0.0 + 10.0) / pixel_size, (1.0 + 10.0) / pixel_size
    return SimConfig(
        height=n,
        width=n,
        count_range=(1, 3),
        count_schedule="blocks",
        images_per_block=100,
        kernels=("seed",),
        observables=("snapshot",),
        wavelength_range=(wavelength_px, wavelength_px),
        damping_range=(0.0, 0.0),
        amplitude_range=(1.0, 1.0),
        random_source_phase=False,
        source_size_range=(0.0, 0.0),
        min_separation_px=0.0,
        min_separation_wavelengths=0.0,
        border_margin_px=0.0,
        source_box=(lo, hi, lo, hi),
        outside_count_range=(0, 0),
        phase_mode="frame",
        phase_step=0.2,
        renderings=("colormap",),
        colormaps=("jet",),
        snr_db_range=None,
        noise_std=0.1,
        pixel_size=pixel_size,
        origin=(-10.0, -10.0),
        extra={"protocol": "seed000", "k_physical": k_physical, "speed": 0.2},
    )


PRESETS: dict[str, "SimConfig | AcousticConfig | SpotsConfig"] = {
    "default": SimConfig(),
    "seed000": _seed000(),
    "acoustic": AcousticConfig(),
    "spots": SpotsConfig(),
}


def get_preset(name: str, **overrides: Any) -> "SimConfig | AcousticConfig | SpotsConfig":
    """Return the preset ``name`` with ``overrides`` applied (lists, as YAML and
    ``--set`` give them, become tuples)."""
    if name not in PRESETS:
        raise ValueError(f"unknown simulator preset {name!r}; expected one of {sorted(PRESETS)}")
    if not overrides:
        return PRESETS[name]
    return replace(PRESETS[name], **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
