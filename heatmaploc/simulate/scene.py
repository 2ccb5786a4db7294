"""Scene sampling and field synthesis.

A :class:`Scene` holds the sources of one image in pixel coordinates (docs/design.md section 1:
``(x, y)``, pixel centres at integers) and the wave parameters; :func:`synthesize`
evaluates the observable on the pixel-centre grid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from heatmaploc.physics.fdsolve import SIDES, Medium, solve_field
from heatmaploc.physics.forward import TABLE_STEP, observe, wave_field
from heatmaploc.physics.kernels import wavelength_of, wavenumber
from heatmaploc.simulate.config import SimConfig


@dataclass(frozen=True)
class Scene:
    """Sources and wave parameters of one image.

    Attributes:
        points: ``(N, 2)`` float64 source positions ``(x, y)`` in pixels (the labels).
        strengths: ``(N,)`` complex ``q_j = A_j exp(i phi_j)``.
        hidden_points, hidden_strengths: ``(M, 2)`` / ``(M,)`` unlabelled sources
            outside the image (they shape the field but are not ground truth).
        wavenumber: complex ``k`` in radians per pixel (``Im(k) >= 0`` damps).
        kernel: kernel name; observable: ``snapshot`` or ``amplitude``.
        time_phase: ``w t`` of the snapshot (radians).
        source_size: regularization length ``a`` in pixels.
        slowness_slope, centre_x: the wavenumber changes by ``slowness_slope`` (a
            fraction) per pixel along ``x`` about column ``centre_x`` (0: uniform medium).
        source_radius: every source is a disc of this radius (pixels), not a point.
        mirror_x, reflection: a straight wall at ``x = mirror_x`` reflects the field
            with this coefficient (mirror-image sources); ``None``: no wall.
        medium: a medium solved by finite differences
            (:class:`heatmaploc.physics.fdsolve.Medium`, holding the wavenumber, the
            kernel and the source size too); ``None``: the analytic kernels.
    """

    points: np.ndarray
    strengths: np.ndarray
    wavenumber: complex
    kernel: str
    observable: str
    time_phase: float
    source_size: float
    hidden_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    hidden_strengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.complex128))
    slowness_slope: float = 0.0
    centre_x: float = 0.0
    source_radius: float = 0.0
    mirror_x: float | None = None
    reflection: float = 0.0
    medium: Medium | None = None

    @property
    def wavelength(self) -> float:
        """Wavelength ``2 pi / Re(k)`` in pixels."""
        return wavelength_of(self.wavenumber)


def complex_field(scene: Scene, height: int, width: int, exact: bool = False) -> np.ndarray:
    """Complex field ``u = sum_j q_j G(k r_j)`` of the scene's sources, hidden ones
    included, on the ``(height, width)`` pixel grid (:func:`heatmaploc.physics.forward.wave_field`).

    The kernel is radial and the same for all sources of a scene, so (unless
    ``exact``) the Bessel kernels are evaluated once on a table of ``r`` with step
    ``TABLE_STEP`` and linearly interpolated for each source: a 3-6x speed-up with a
    relative error below 1e-4 (far under any noise level we simulate).
    """
    points = np.vstack([scene.points.reshape(-1, 2), scene.hidden_points.reshape(-1, 2)])
    strengths = np.concatenate([scene.strengths, scene.hidden_strengths])
    if scene.medium is not None:
        return solve_field(scene.medium, points, strengths, height, width)
    if scene.source_radius > 0:  # a disc: a centre and two rings of sub-sources sharing the strength
        offsets = [(0.0, 0.0)] + [(rho * np.cos(t), rho * np.sin(t)) for rho, m in ((0.5, 6), (1.0, 12))
                                  for t in np.linspace(0, 2 * np.pi, m, endpoint=False)]
        offsets = np.asarray(offsets) * scene.source_radius
        points = (points[:, None, :] + offsets[None]).reshape(-1, 2)
        strengths = np.repeat(strengths / len(offsets), len(offsets))
    if scene.mirror_x is not None and scene.reflection:
        mirrored = points.copy()
        mirrored[:, 0] = 2 * scene.mirror_x - mirrored[:, 0]
        points, strengths = np.vstack([points, mirrored]), np.concatenate([strengths, scene.reflection * strengths])
    step = None if exact or scene.kernel == "seed" else TABLE_STEP
    return wave_field(scene.kernel, points, strengths, np.arange(width, dtype=np.float64),
                      np.arange(height, dtype=np.float64), scene.wavenumber, scene.source_size, step,
                      scene.slowness_slope, scene.centre_x)


def synthesize(scene: Scene, height: int, width: int) -> np.ndarray:
    """The observable of ``scene`` as a float64 ``(height, width)`` array (complex128
    for the complex observable)."""
    return observe(complex_field(scene, height, width), scene.observable, scene.time_phase)


def _draw_count(cfg: SimConfig, index: int, rng: np.random.Generator) -> int:
    lo, hi = cfg.count_range
    if cfg.count_schedule == "blocks":
        counts = list(range(lo, hi + 1))
        return counts[(index // cfg.images_per_block) % len(counts)]
    return int(rng.integers(lo, hi + 1))


def _draw_positions(cfg: SimConfig, n: int, min_sep: float, rng: np.random.Generator) -> np.ndarray:
    """Rejection-sample ``n`` positions with pairwise distance >= ``min_sep``."""
    if cfg.source_box is not None:
        x0, x1, y0, y1 = cfg.source_box
    else:
        m = cfg.border_margin_px
        x0, x1, y0, y1 = m, cfg.width - 1 - m, m, cfg.height - 1 - m
    if x1 < x0 or y1 < y0:
        raise ValueError(f"border margin {cfg.border_margin_px} leaves no room in a {cfg.width}x{cfg.height} image")
    points = np.zeros((0, 2))
    for attempt in range(200 * max(n, 1)):
        if len(points) == n:
            break
        candidate = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        if len(points) == 0 or np.min(np.hypot(*(points - candidate).T)) >= min_sep:
            points = np.vstack([points, candidate])
    if len(points) < n:
        raise ValueError(
            f"could not place {n} sources {min_sep:.1f} px apart in a "
            f"{cfg.width}x{cfg.height} image; lower min_separation or count_range"
        )
    return points


def _draw_outside(cfg: SimConfig, n: int, wavelength: float, rng: np.random.Generator,
                  reach: float | None = None) -> np.ndarray:
    """``n`` positions outside the image, at least the clearance beyond its edge and at
    most ``reach`` (default: half the image size) beyond it."""
    clear = max(cfg.outside_clearance_wavelengths * wavelength, 4.0)
    ext = max(0.5 * max(cfg.height, cfg.width) if reach is None else reach, clear + 1.0)
    x0, x1, y0, y1 = -0.5 - ext, cfg.width - 0.5 + ext, -0.5 - ext, cfg.height - 0.5 + ext
    out = []
    while len(out) < n:
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        dx = max(-0.5 - x, x - (cfg.width - 0.5), 0.0)
        dy = max(-0.5 - y, y - (cfg.height - 0.5), 0.0)
        if np.hypot(dx, dy) >= clear:
            out.append((x, y))
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def sample_scene(cfg: SimConfig, index: int, rng: np.random.Generator) -> Scene:
    """Draw the scene of image ``index`` (``index`` matters for block schedules)."""
    n = _draw_count(cfg, index, rng)
    wl_lo, wl_hi = cfg.wavelength_range
    wavelength = float(math.exp(rng.uniform(math.log(wl_lo), math.log(wl_hi))))
    damping = float(rng.uniform(*cfg.damping_range))
    kernel = str(rng.choice(cfg.kernels))
    observable = "snapshot" if kernel == "seed" else str(rng.choice(cfg.observables))
    min_sep = max(cfg.min_separation_px, cfg.min_separation_wavelengths * wavelength)
    points = _draw_positions(cfg, n, min_sep, rng)
    amplitudes = rng.uniform(*cfg.amplitude_range, size=n)
    phases = rng.uniform(0.0, 2.0 * math.pi, size=n) if cfg.random_source_phase else np.zeros(n)
    if cfg.phase_mode == "frame":
        time_phase = cfg.phase_step * (index % cfg.images_per_block)
    else:
        time_phase = float(rng.uniform(0.0, 2.0 * math.pi))
    n_out = int(rng.integers(cfg.outside_count_range[0], cfg.outside_count_range[1] + 1))
    reach = fd_margin(wavelength) if cfg.finite_difference else None
    hidden = _draw_outside(cfg, n_out, wavelength, rng, reach)
    hidden_q = rng.uniform(*cfg.amplitude_range, size=n_out) * np.exp(1j * rng.uniform(0, 2 * math.pi, size=n_out))
    # model mismatch (stress suites): drawn only when enabled, so other datasets keep their bytes
    slope = rng.uniform(-1.0, 1.0) * 2.0 * cfg.speed_variation / cfg.width if cfg.speed_variation else 0.0
    radius = float(rng.uniform(*cfg.source_radius_range)) if cfg.source_radius_range[1] > 0 else 0.0
    k = wavenumber(wavelength, damping)
    source_size = float(rng.uniform(*cfg.source_size_range))
    medium = _draw_medium(cfg, k, kernel, wavelength, source_size, rng) if cfg.finite_difference else None
    return Scene(
        points=points,
        hidden_points=hidden,
        hidden_strengths=hidden_q,
        strengths=amplitudes * np.exp(1j * phases),
        wavenumber=k,
        kernel=kernel,
        observable=observable,
        time_phase=time_phase,
        source_size=source_size,
        slowness_slope=slope,
        centre_x=(cfg.width - 1) / 2.0,
        source_radius=radius,
        mirror_x=-0.5 - cfg.wall_distance_px if cfg.reflection else None,
        reflection=cfg.reflection,
        medium=medium,
    )


def fd_margin(wavelength: float) -> float:
    """Pixels between the view and an absorbing layer of a finite-difference medium:
    room for the sources outside the view."""
    return max(16.0, wavelength)


def _draw_medium(cfg: SimConfig, k: complex, kernel: str, wavelength: float, source_size: float,
                 rng: np.random.Generator) -> Medium:
    """A finite-difference medium of ``cfg`` (:attr:`SimConfig.finite_difference`):
    the wave speed field, the orthotropy and the reflecting edges."""
    from scipy.ndimage import gaussian_filter

    speed = None
    if cfg.medium_speed_variation:
        scale = float(rng.uniform(*cfg.medium_scale_wavelengths)) * wavelength
        noise = gaussian_filter(rng.standard_normal((cfg.height, cfg.width)), scale / 2.0, mode="reflect")
        amplitude = float(rng.uniform(0.5, 1.0)) * cfg.medium_speed_variation
        speed = 1.0 + amplitude * noise / max(float(np.abs(noise).max()), 1e-12)
    ratio = float(rng.uniform(*cfg.orthotropy_range))
    angle = float(rng.uniform(0.0, math.pi)) if ratio != 1.0 else 0.0
    n_edges = int(rng.integers(cfg.edge_count_range[0], cfg.edge_count_range[1] + 1))
    edged = set(rng.choice(SIDES, size=n_edges, replace=False).tolist()) if n_edges else set()
    edges, distances = {}, {}
    for side in SIDES:
        if side in edged:
            edges[side] = str(rng.choice(cfg.edge_conditions))
            distances[side] = float(rng.uniform(*cfg.edge_distance_px_range))
        else:
            edges[side], distances[side] = "absorb", fd_margin(wavelength)
    return Medium(k, kernel, speed, ratio, angle, edges, distances, source_size)
