"""Joint least-squares fit of a wave-field model with analytic derivatives.

The model of an image (snapshot, amplitude or complex observable, docs/design.md
section 1 coordinates: ``(x, y)`` pixels, pixel centres at integers) is

    f(p) = obs( sum_j q_j G(k r_j(p)) ) + c,   r_j(p) = sqrt(|p - s_j|^2 + a^2),
    k = (2 pi / lambda) (1 + i d),   obs = Re (snapshot), |.| (amplitude) or the
    identity (complex: a measured complex field, fitted as its real and imaginary
    parts, with a complex offset ``c``),

with the positions ``s_j``, complex strengths ``q_j`` (they absorb the snapshot's
time phase), the offset ``c`` and, optionally, the source size ``a``, the wavelength
``lambda`` and the damping ``d`` fitted together by bounded Gauss-Newton
(``scipy.optimize.least_squares``) with the exact Jacobian of
:class:`heatmaploc.physics.waveproblem.WaveProblem`; the strengths start from the
linear solutions of :mod:`heatmaploc.physics.wavelinear`.  What is fitted is stated by
a :class:`Hypothesis` (the model and its start values) and :class:`FitOptions` (which
globals are free, the loss, the solver).

The covariance of the fitted parameters is the inverse Fisher information at the
estimate, ``s^2 (J^T J)^-1`` with ``s^2 = RSS / (N - p)`` (white Gaussian noise of
unknown level); its position blocks give each source's Cramér-Rao-style standard
deviation.  This module fits one stated hypothesis; choosing among hypotheses and
counts is :mod:`heatmaploc.physics.blind`'s job.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field as dataclass_field

import numpy as np
from scipy.optimize import least_squares

from heatmaploc.physics.forward import ALL_OBSERVABLES, anisotropy_metric
from heatmaploc.physics.kernels import KERNELS, wavenumber
from heatmaploc.physics.spectrum import ring_directions
from heatmaploc.physics.wavelinear import covariances, fill_strengths, linearized_std, plane_wave_paths, start_strengths
from heatmaploc.physics.waveproblem import HUBER_SCALE, FitOptions, Hypothesis, PlaneWaves, WaveProblem

ANISOTROPY_RANGE = (1.0, 2.0)  # fitted wavelength ratio across / along the axis
DAMPING_MAX = 0.3
SOURCE_SIZE_RANGE = (0.05, 5.0)
# relative change of the cost and of the parameters that ends a fit (scipy's default 1e-8):
# a relative RSS change of 1e-5 moves a BIC over N = 16,384 values by 0.16, far below
# any decision's margin (docs/benchmark/refine_speed: same counts, ~0.8x the time)
FIT_TOLERANCE = 1e-5


def coordinate_sigma(cov_xy: np.ndarray) -> np.ndarray:
    """``(n,)`` standard deviation of each coordinate of ``(n, 2, 2)`` position
    covariances: the root of the mean of the x and y variances (a point's ``sigma``)."""
    return np.sqrt(np.clip(0.5 * (cov_xy[:, 0, 0] + cov_xy[:, 1, 1]), 0.0, None))


@dataclass(frozen=True)
class WaveFit:
    """Result of :func:`fit_wave`.

    Attributes:
        kernel, observable: the hypothesis fitted.
        xy: ``(n, 2)`` fitted ``(x, y)`` pixels; strengths ``(n,)`` complex ``q_j``.
        offset: ``c`` (complex for the complex observable); source_size_px,
            wavelength_px, damping: fitted or fixed globals.
        rss: residual sum of squares over the ``n_pixels`` fitted data values (pixels;
            twice the pixels for a complex field: real and imaginary parts).
        n_params: number of fitted real parameters.
        cov_xy: ``(n, 2, 2)`` covariance of each source's ``(x, y)`` (pixels^2).
        converged: ``least_squares`` reported success.
        background, background_angles: ``(m,)`` complex amplitudes and directions
            (radians) of the fit's plane waves (empty without).
        residual: ``(P,)`` weighted residual (model minus data) at the fitted pixels,
            row-major (complex observable: ``(2 P,)``, the real parts, then the
            imaginary parts).
        cov_q: ``(n, 2, 2)`` covariance of each source's ``(Re q, Im q)``.
        anisotropy: ``(ratio, angle)`` of an orthotropic fit
            (:func:`~heatmaploc.physics.forward.anisotropy_metric`: ``wavelength_px``
            along the axis at ``angle`` radians, ``ratio`` times it across); ``None``:
            isotropic.
    """

    kernel: str
    observable: str
    xy: np.ndarray
    strengths: np.ndarray
    offset: float
    source_size_px: float
    wavelength_px: float
    damping: float
    rss: float
    n_pixels: int
    n_params: int
    cov_xy: np.ndarray
    converged: bool
    background: np.ndarray = dataclass_field(default_factory=lambda: np.zeros(0, np.complex128))
    background_angles: np.ndarray = dataclass_field(default_factory=lambda: np.zeros(0))
    residual: np.ndarray = dataclass_field(default_factory=lambda: np.zeros(0), repr=False)
    cov_q: np.ndarray = dataclass_field(default_factory=lambda: np.zeros((0, 2, 2)), repr=False)
    anisotropy: tuple[float, float] | None = None

    @property
    def metric(self) -> np.ndarray | None:
        """The anisotropy's ``(2, 2)`` metric (``None``: isotropic)."""
        return None if self.anisotropy is None else anisotropy_metric(*self.anisotropy)

    @property
    def wavenumber(self) -> complex:
        """The fit's complex wavenumber (:func:`~heatmaploc.physics.kernels.wavenumber`)."""
        return wavenumber(self.wavelength_px, self.damping)

    @property
    def residual_std(self) -> float:
        """``sqrt(RSS / N)`` (with a robust fit, of the Huber cost)."""
        return math.sqrt(self.rss / max(self.n_pixels, 1))

    @property
    def sigma(self) -> np.ndarray:
        """``(n,)`` standard deviation of each coordinate (:func:`coordinate_sigma`)."""
        return coordinate_sigma(self.cov_xy)

    @property
    def strength_sigma(self) -> np.ndarray:
        """``(n,)`` standard deviation of each ``|q_j|`` (linearized; NaN without a
        covariance)."""
        return linearized_std(self.cov_q, self.strengths, phase=False)

    @property
    def phase_sigma(self) -> np.ndarray:
        """``(n,)`` standard deviation of each ``arg q_j`` in radians (linearized)."""
        return linearized_std(self.cov_q, self.strengths, phase=True)

    def complex_residual(self) -> np.ndarray:
        """The :attr:`residual` as ``(P,)`` complex for the complex observable (real
        otherwise, unchanged)."""
        if self.observable != "complex":
            return self.residual
        half = len(self.residual) // 2
        return self.residual[:half] + 1j * self.residual[half:]

    def bic(self) -> float:
        """Bayesian information criterion ``N log(RSS / N) + p log N`` (Gaussian noise
        of unknown level); lower is better."""
        n = max(self.n_pixels, 1)
        return n * math.log(max(self.rss, 1e-300) / n) + self.n_params * math.log(n)


def warm_strengths(like: WaveFit, xy: np.ndarray) -> np.ndarray:
    """``(n,)`` start strengths of the sources ``xy (n, 2)`` from a fit ``like`` of the
    same hypothesis: the strength of the source at exactly the same coordinates, NaN
    (to be estimated) for the others."""
    strengths = np.full(len(xy), np.nan, np.complex128)
    for j, p in enumerate(xy):
        same = np.flatnonzero(np.all(like.xy == p, axis=1))
        if len(same):
            strengths[j] = like.strengths[same[0]]
    return strengths


def fit_wave(field: np.ndarray, xy: np.ndarray, model: Hypothesis, options: FitOptions = FitOptions(), *,
             weights: np.ndarray | None = None, bounds: tuple[np.ndarray, np.ndarray] | None = None,
             pixels: tuple[np.ndarray, np.ndarray] | None = None, strengths: np.ndarray | None = None,
             offset: complex = 0.0, fixed_field: np.ndarray | None = None,
             planes: PlaneWaves | None = None) -> WaveFit:
    """Fit ``model`` to the float (or complex) ``(H, W)`` ``field`` from start positions
    ``xy (n, 2)``, as ``options`` say.

    Args:
        weights: ``(H, W)`` per-pixel weights (one over the noise std where it varies,
            e.g. a colormap rendering); the RSS, the BIC and the covariance are then
            of the weighted residual.
        bounds: ``(lo, hi)`` each ``(n, 2)``: the box of every position; default the
            start ``+- options.max_shift`` inside the image.
        pixels: ``(rows, cols)`` integer indices of the pixels to fit (e.g. a
            window), instead of every ``options.stride``-th pixel of the image.
        strengths: start ``q`` (sources, then plane waves; a warm start, with
            ``offset`` the start ``c``); NaN or missing entries (e.g. sources just
            added) are estimated with the others held; default: all by linear least
            squares (snapshot, complex) or a phase retrieval (amplitude).
        fixed_field: ``(P,)`` complex field added to the model at the fitted pixels,
            held (e.g. the fitted neighbours of a window, around a source's core).
        planes: plane waves that join the sources (:class:`PlaneWaves`); they are
            reported in ``WaveFit.background`` and ``WaveFit.background_angles``, and
            travel in the mapped coordinates of an anisotropic model.
    """
    kernel, observable, wavelength = model.kernel, model.observable, model.wavelength_px
    damping, source_size, anisotropy = model.damping, model.source_size_px, model.anisotropy
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; expected one of {KERNELS}")
    if observable not in ALL_OBSERVABLES:
        raise ValueError(f"unknown observable {observable!r}; expected one of {ALL_OBSERVABLES}")
    h, w = field.shape
    if pixels is None:
        rows, cols = np.arange(0, h, options.stride), np.arange(0, w, options.stride)
    else:
        rows, cols = (np.asarray(i, dtype=np.int64) for i in pixels)
    xs, ys = cols.astype(np.float64), rows.astype(np.float64)
    complex_data = observable == "complex"
    values = np.asarray(field)[np.ix_(rows, cols)].ravel()
    if complex_data:
        values = values.astype(np.complex128)
        data = np.concatenate([values.real, values.imag])
    else:
        if np.iscomplexobj(values):
            raise ValueError(f"a complex field needs the complex observable, not {observable!r}")
        values = data = values.astype(np.float64)
    weight_px = None if weights is None else np.asarray(weights, dtype=np.float64)[np.ix_(rows, cols)].ravel()
    weight_data = None if weight_px is None else (np.tile(weight_px, 2) if complex_data else weight_px)
    start = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    n = len(start)
    m = planes.count if planes is not None else 0
    nt = n + m
    origin = planes.origin if planes is not None else (0.0, 0.0)
    grid_x, grid_y = (g.ravel() for g in np.meshgrid(xs - origin[0], ys - origin[1]))
    fit_offset = options.fit_offset
    if bounds is None:
        edge = np.array([w - 0.5, h - 0.5])
        lo_xy, hi_xy = np.maximum(start - options.max_shift, -0.5), np.minimum(start + options.max_shift, edge)
    else:
        lo_xy, hi_xy = (np.asarray(b, dtype=np.float64).reshape(-1, 2) for b in bounds)
    plane_angles = planes.angles if planes is not None else None
    if m and plane_angles is None:
        # start directions: the plane waves that the residual of the fit without them holds
        first = fit_wave(field, start, model, FitOptions(
            fit_wavelength=False, fit_damping=False, fit_size=False, fit_offset=fit_offset, fit_anisotropy=False,
            table_step=options.table_step, max_nfev=options.max_nfev // 2, tr_solver=options.tr_solver),
            bounds=(lo_xy, hi_xy), strengths=None if strengths is None else np.asarray(strengths)[:n], offset=offset,
            weights=weights, pixels=(rows, cols), fixed_field=fixed_field)
        spacing = float(np.median(np.diff(cols))) if len(cols) > 1 else 1.0
        plane_angles = ring_directions(first.complex_residual().reshape(len(rows), len(cols)), wavelength, m, spacing,
                                       half_turn=observable == "snapshot")
    angles0 = np.asarray(plane_angles if m else [], np.float64).reshape(m)
    globals_free = [name for name, free in (("a", options.fit_size), ("lambda", options.fit_wavelength),
                                            ("d", options.fit_damping and kernel != "seed")) if free]
    fit_anisotropy = anisotropy is not None and options.fit_anisotropy
    problem = WaveProblem(kernel, observable, wavelength, damping, source_size, xs, ys, grid_x, grid_y, data,
                          weight_data, n, m, globals_free, fit_offset, fit_anisotropy, anisotropy, options.table_step,
                          fixed_field)

    pos0 = np.clip(start, lo_xy + 1e-9, hi_xy - 1e-9)
    metric0 = None if anisotropy is None else anisotropy_metric(*anisotropy)
    planes0 = np.exp(1j * (2 * math.pi / wavelength) * plane_wave_paths(angles0, *problem.mapped_grid(metric0)))
    if strengths is None and fixed_field is not None:
        raise ValueError("a fit with a fixed field needs start strengths")
    if strengths is None:
        q0, c0 = start_strengths(kernel, observable, pos0, xs, ys, wavenumber(wavelength, damping), source_size,
                                 values, fit_offset, weight_px, options.table_step, planes0, metric0)
    else:
        q0 = np.asarray(strengths, np.complex128).reshape(-1)
        q0 = np.concatenate([q0, np.full(nt - len(q0), np.nan)]) if len(q0) < nt else q0[:nt]
        c0 = (complex(offset) if complex_data else float(np.real(offset))) if fit_offset else 0.0
        missing = ~np.isfinite(q0)
        if missing.any():
            q0 = fill_strengths(kernel, observable, pos0, q0, c0, xs, ys, wavenumber(wavelength, damping),
                                source_size, values, weight_px, options.table_step, planes0, metric0)
    wavelength_range = options.wavelength_range
    g_start = {"a": source_size, "lambda": wavelength, "d": damping}
    g_lo = {"a": SOURCE_SIZE_RANGE[0], "lambda": wavelength_range[0] * wavelength, "d": 0.0}
    g_hi = {"a": SOURCE_SIZE_RANGE[1], "lambda": wavelength_range[1] * wavelength, "d": DAMPING_MAX}
    c_start = ([np.real(c0), np.imag(c0)] if complex_data else [np.real(c0)]) if fit_offset else []
    aniso0 = list(anisotropy) if fit_anisotropy else []
    aniso_lo, aniso_hi = ([ANISOTROPY_RANGE[0], -np.inf], [ANISOTROPY_RANGE[1], np.inf]) if fit_anisotropy else ([], [])
    x0 = np.concatenate([pos0.ravel(), q0.real, q0.imag, c_start, [g_start[k] for k in globals_free], angles0, aniso0])
    lo = np.concatenate([lo_xy.ravel(), np.full(2 * nt + problem.n_offset, -np.inf), [g_lo[k] for k in globals_free],
                         np.full(m, -np.inf), aniso_lo])
    hi = np.concatenate([hi_xy.ravel(), np.full(2 * nt + problem.n_offset, np.inf), [g_hi[k] for k in globals_free],
                         np.full(m, np.inf), aniso_hi])
    finite = np.isfinite(lo)
    x0[finite] = np.maximum(x0[finite], lo[finite] + 1e-9 * (np.abs(lo[finite]) + 1))
    finite = np.isfinite(hi)
    x0[finite] = np.minimum(x0[finite], hi[finite] - 1e-9 * (np.abs(hi[finite]) + 1))
    if len(x0) == 0:
        rss = float(np.sum((data if weight_data is None else data * weight_data) ** 2))
        return WaveFit(kernel, observable, start, np.zeros(0, np.complex128), 0.0, source_size, wavelength, damping,
                       rss, len(data), 0, np.zeros((0, 2, 2)), True, np.zeros(0, np.complex128),
                       anisotropy=None if anisotropy is None else tuple(anisotropy))
    solve = dict(jac=problem.jacobian, bounds=(lo, hi), x_scale="jac", method="trf", max_nfev=options.max_nfev,
                 tr_solver=options.tr_solver, ftol=FIT_TOLERANCE, xtol=FIT_TOLERANCE)
    result = least_squares(problem.residual, x0, **solve)
    if options.robust:
        # Huber loss by one reweighting (iteratively reweighted least squares): residuals
        # beyond HUBER_SCALE keep the weight that makes their pull constant
        magnitude = np.abs(problem.residual(result.x))
        problem.irls = np.sqrt(np.minimum(1.0, HUBER_SCALE / np.maximum(magnitude, 1e-12)))
        result = least_squares(problem.residual, result.x, **solve)
    pos, q, c, a, lam, d = problem.unpack(result.x)
    res = problem.residual(result.x) / problem.irls
    if options.robust:
        magnitude = np.abs(res)
        rss = float(np.sum(np.where(magnitude <= HUBER_SCALE, magnitude**2,
                                    2 * HUBER_SCALE * magnitude - HUBER_SCALE**2)))
    else:
        rss = float(res @ res)
    cov_xy, cov_q = covariances(problem.jacobian(result.x), rss, n, nt)
    fitted = None
    if anisotropy is not None:
        ratio, angle = (float(v) for v in (result.x[problem.i_a:problem.i_a + 2] if fit_anisotropy else anisotropy))
        fitted = (ratio, float(np.angle(np.exp(2j * angle)) / 2))  # an axis: the angle modulo pi
    return WaveFit(kernel, observable, pos.copy(), q[:n], c, a, lam, d, rss, len(data), len(x0), cov_xy,
                   bool(result.success), q[n:], result.x[problem.i_t:problem.i_a].copy(), res, cov_q, fitted)
