"""Physical limit of localization (Cramér-Rao bound) and the seed protocol's limits.

The forward model is the simulator's raw snapshot rendering (no colormap):

    I(p) = Re( sum_j A_j exp(i phi_j) G(k r_j(p)) exp(-i wt) ) + noise,

with ``r_j(p) = sqrt(|p - s_j|^2 + a^2)`` at pixel centres ``p`` and white Gaussian
noise of std ``sigma``.  For one source the parameters are ``theta = (x, y, A, phi)``
(``wt`` only shifts ``phi``); the Cramér-Rao lower bound of ``(x, y)`` is the square
root of the first two diagonal entries of the inverse Fisher matrix
``J^T J / sigma^2`` (``J``: numeric Jacobian of the rendered image w.r.t. ``theta``).
A complex field (observable ``complex``) is rendered as ``u exp(-i wt)`` and observed
in its real and imaginary parts, each with white noise of std ``sigma``; the bound of
the amplitude ``A`` is the third diagonal entry.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import least_squares

from heatmaploc.physics.colormap import apply_colormap
from heatmaploc.physics.forward import observe, wave_field
from heatmaploc.physics.kernels import wavelength_of, wavenumber


@dataclass(frozen=True)
class WaveModel:
    """Known wave parameters of the forward model."""

    kernel: str
    wavenumber: complex
    time_phase: float
    source_size: float
    height: int
    width: int
    observable: str = "snapshot"

    @classmethod
    def from_scene(cls, scene, height: int, width: int) -> "WaveModel":
        observable = "complex" if scene.observable == "complex" else "snapshot"
        return cls(scene.kernel, scene.wavenumber, scene.time_phase, scene.source_size, height, width, observable)


def render_sources(model: WaveModel, params: np.ndarray, stride: int = 1) -> np.ndarray:
    """``params`` ``(n, 4)`` rows ``(x, y, A, phi)`` -> ``(H, W)`` float64 snapshot, or
    complex128 field for the complex observable (with ``stride > 1``: at every
    ``stride``-th pixel centre of each axis only)."""
    rows = np.asarray(params, dtype=np.float64).reshape(-1, 4)
    u = wave_field(model.kernel, rows[:, :2], rows[:, 2] * np.exp(1j * rows[:, 3]), np.arange(0, model.width, stride),
                   np.arange(0, model.height, stride), model.wavenumber, model.source_size)
    return observe(u, model.observable, model.time_phase)


def real_values(values: np.ndarray) -> np.ndarray:
    """A rendering as the real data values it holds: the flattened array, or for a
    complex one its real parts, then its imaginary parts."""
    values = np.asarray(values)
    if np.iscomplexobj(values):
        return np.concatenate([values.real.ravel(), values.imag.ravel()])
    return values.ravel()


def jacobian(model: WaveModel, params: np.ndarray) -> np.ndarray:
    """``(H*W, 4n)`` (complex: ``(2 H*W, 4n)``) central-difference Jacobian of :func:`render_sources` (steps:
    1e-4 px for positions, 1e-5 relative for amplitudes, 1e-5 rad for phases)."""
    flat = np.asarray(params, dtype=np.float64).reshape(-1)
    cols = []
    for i in range(len(flat)):
        kind = i % 4
        h = 1e-4 if kind < 2 else (1e-5 * max(1.0, abs(flat[i])) if kind == 2 else 1e-5)
        plus, minus = flat.copy(), flat.copy()
        plus[i] += h
        minus[i] -= h
        cols.append(real_values(render_sources(model, plus) - render_sources(model, minus)) / (2 * h))
    return np.stack(cols, axis=1)


def global_jacobian(model: WaveModel, params: np.ndarray) -> np.ndarray:
    """``(H*W, 4)`` (complex: ``(2 H*W, 5)``) central-difference Jacobian of
    :func:`render_sources` with respect to the image's globals: the source size, the
    wavelength, the damping ``Im k / Re k`` and the offset (complex: its real and
    imaginary parts)."""
    k = complex(model.wavenumber)
    wavelength, damping = wavelength_of(k), k.imag / k.real
    cols = []
    for name, value in (("size", model.source_size), ("wavelength", wavelength), ("damping", damping)):
        h = 1e-5 * max(abs(value), 1e-2)
        renders = []
        for sign in (1.0, -1.0):
            v = value + sign * h
            if name == "size":
                changed = replace(model, source_size=v)
            else:
                lam, d = (v, damping) if name == "wavelength" else (wavelength, v)
                changed = replace(model, wavenumber=wavenumber(lam, d))
            renders.append(real_values(render_sources(changed, params)))
        cols.append((renders[0] - renders[1]) / (2 * h))
    pixels = model.height * model.width
    if model.observable == "complex":
        cols += [np.r_[np.ones(pixels), np.zeros(pixels)], np.r_[np.zeros(pixels), np.ones(pixels)]]
    else:
        cols.append(np.ones(pixels))
    return np.stack(cols, axis=1)


def crlb(model: WaveModel, params: np.ndarray, noise_std: float, known_strengths: bool = False,
         with_amplitude: bool = False, unknown_globals: bool = False) -> np.ndarray:
    """``(n, 2)`` Cramér-Rao bounds (pixels, standard deviations) of each source's
    ``(x, y)``, with amplitudes and phases as nuisance parameters (or, with
    ``known_strengths``, known exactly: a smaller bound); ``with_amplitude``: ``(n, 3)``,
    the bound of the amplitude ``A`` (field units) third.  ``unknown_globals``: the
    source size, wavelength, damping and offset are nuisance parameters too (what an
    estimator that fits them, as the blind refinement does, can reach)."""
    if noise_std <= 0:
        raise ValueError(f"noise_std must be > 0, got {noise_std}")
    jac = jacobian(model, params)
    extra = global_jacobian(model, params) if unknown_globals else np.zeros((jac.shape[0], 0))
    if known_strengths:
        keep = np.array([i % 4 < 2 for i in range(jac.shape[1])])
        jac = jac[:, keep]
    jac = np.hstack([jac, extra])
    fisher = jac.T @ jac / noise_std**2
    cov = np.linalg.inv(fisher)
    per_source = 2 if known_strengths else 4
    diag = np.sqrt(np.clip(np.diag(cov), 0.0, None))[:jac.shape[1] - extra.shape[1]].reshape(-1, per_source)
    return diag[:, :3] if with_amplitude and not known_strengths else diag[:, :2]


# ---------------------------------------------------------------- seed blog protocol
JET_SLOPE = 4.0
"""About how fast jet's RGB channels change per unit of the normalized field (one or
two channels at a time): an RGB image with per-channel noise ``s`` carries about as much
information on the field as a direct observation with noise ``s / JET_SLOPE`` (an
optimistic equivalence: it ignores clipping and 8-bit quantization)."""


def scene_position_bounds(scene, height: int, width: int, noise_std: float, *, known_strengths: bool = False,
                          relative_to_range: bool = False, with_amplitude: bool = False,
                          unknown_globals: bool = False) -> np.ndarray:
    """``(n, 2)`` CRLB (px) of every source of ``scene`` observed with white noise
    ``noise_std`` (with ``relative_to_range``, a fraction of the noise-free field's
    ``max - min``, as for a min-max normalized rendering); ``inf`` where the Fisher
    matrix is singular (coincident sources).  ``with_amplitude``: ``(n, 3)``, the
    bound of each source's amplitude ``|q|`` third; ``unknown_globals``: see :func:`crlb`."""
    from heatmaploc.simulate.scene import synthesize

    if relative_to_range:
        field = synthesize(scene, height, width)
        noise_std = noise_std * float(field.max() - field.min())
    model = WaveModel.from_scene(scene, height, width)
    params = np.column_stack([scene.points, np.abs(scene.strengths), np.angle(scene.strengths)])
    try:
        return crlb(model, params, noise_std, known_strengths=known_strengths, with_amplitude=with_amplitude,
                    unknown_globals=unknown_globals)
    except np.linalg.LinAlgError:
        return np.full((len(scene.points), 3 if with_amplitude and not known_strengths else 2), np.inf)


def efficient_share_within(bounds: np.ndarray, radius: float, draws: int = 4000, seed: int = 0) -> float:
    """Expected share of sources that an efficient unbiased estimator places within
    ``radius`` of the truth, its x and y errors being independent normals with the
    standard deviations ``bounds`` ``(n, 2)`` (Monte Carlo with a fixed seed)."""
    bounds = np.asarray(bounds, dtype=np.float64).reshape(-1, 2)
    if not len(bounds):
        return float("nan")
    z = np.random.default_rng(seed).standard_normal((draws, 2))
    shares = [np.mean(np.hypot(z[:, 0] * bx, z[:, 1] * by) < radius) if np.isfinite(bx + by) else 0.0
              for bx, by in bounds]
    return float(np.mean(shares))


def fewer_source_distance(scene, height: int, width: int, noise_std: float, colormap: str | None = None,
                          fit_stride: int = 4) -> tuple[float, np.ndarray]:
    """How far, in units of the noise, the nearest scene with one source fewer is.

    The alternatives keep the protocol's known, common source strength (all sources of
    ``scene`` must share one) and its wave parameters; their ``n - 1`` positions are
    fitted by least squares to the noise-free rendering of ``scene`` (raw snapshot, or
    ``colormap`` applied to the min-max normalized field), starting from every pair
    merged at its midpoint and from every single source dropped.  The fit runs on every
    ``fit_stride``-th pixel; the distance is then measured on the full grid.

    Returns ``(d, positions)``: ``d = ||render(scene) - render(twin)|| / noise_std``
    and the twin's ``(n - 1, 2)`` positions.  An ideal test between the two scenes
    errs with probability ``Phi(-d / 2)`` on each, so a small ``d`` means the count
    is not identifiable at this noise level.
    """
    points = np.asarray(scene.points, dtype=np.float64).reshape(-1, 2)
    n = len(points)
    if n < 1:
        raise ValueError("the scene has no source to remove")
    strengths = np.asarray(scene.strengths)
    if not np.allclose(strengths, strengths[0]):
        raise ValueError("fewer_source_distance assumes one known strength shared by all sources")
    model = WaveModel.from_scene(scene, height, width)
    amp, phase = float(np.abs(strengths[0])), float(np.angle(strengths[0]))

    def render(positions: np.ndarray, stride: int) -> np.ndarray:
        xy = positions.reshape(-1, 2)
        params = np.column_stack([xy, np.full(len(xy), amp), np.full(len(xy), phase)])
        snapshot = render_sources(model, params, stride)
        return apply_colormap(snapshot, colormap) if colormap else snapshot

    starts = [np.delete(points, i, axis=0) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            rest = np.delete(points, [i, j], axis=0)
            starts.append(np.vstack([rest, (points[i] + points[j]) / 2]))
    truth_coarse, truth = render(points, fit_stride), render(points, 1)
    best_d, best_pos = np.inf, np.zeros((0, 2))
    for start in starts:
        if n > 1:
            fit = least_squares(lambda flat: (render(flat, fit_stride) - truth_coarse).ravel(), start.ravel(),
                                diff_step=1e-5)
            positions = fit.x.reshape(-1, 2)
        else:
            positions = start
        d = float(np.linalg.norm(render(positions, 1) - truth)) / noise_std
        if d < best_d:
            best_d, best_pos = d, positions
    return best_d, best_pos
