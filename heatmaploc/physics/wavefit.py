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
(``scipy.optimize.least_squares``).  The Jacobian is exact: every kernel is a
function of ``k r``, so all derivatives follow from ``dG/dr``
(:func:`heatmaploc.physics.forward.radial_fields`).

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

from heatmaploc.physics.forward import ALL_OBSERVABLES, anisotropy_metric, map_offsets, radial_fields
from heatmaploc.physics.kernels import KERNELS, wavenumber
from heatmaploc.physics.spectrum import ring_directions

WAVELENGTH_RANGE = (0.75, 1.35)  # fitted wavelength bounds, as factors of the start value
ANISOTROPY_RANGE = (1.0, 2.0)  # fitted wavelength ratio across / along the axis
DAMPING_MAX = 0.3
SOURCE_SIZE_RANGE = (0.05, 5.0)
HUBER_SCALE = 3.0  # where the robust loss turns linear, in units of the residual's scale
FIT_TABLE_STEP = 0.2  # px; Hermite interpolation error (k h)^4 / 384 < 1e-5 for wavelengths >= 8 px


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
        return _linearized_std(self.cov_q, self.strengths, phase=False)

    @property
    def phase_sigma(self) -> np.ndarray:
        """``(n,)`` standard deviation of each ``arg q_j`` in radians (linearized)."""
        return _linearized_std(self.cov_q, self.strengths, phase=True)

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


def fit_wave(field: np.ndarray, xy: np.ndarray, kernel: str, observable: str, wavelength: float, damping: float = 0.0,
             source_size: float = 1.0, *, fit_wavelength: bool = True, fit_damping: bool = True,
             fit_size: bool = True, fit_offset: bool = True, bounds: tuple[np.ndarray, np.ndarray] | None = None,
             max_shift: float = 2.0, stride: int = 1, strengths: np.ndarray | None = None, offset: float = 0.0,
             weights: np.ndarray | None = None, robust: bool = False,
             wavelength_range: tuple[float, float] = WAVELENGTH_RANGE, table_step: float | None = FIT_TABLE_STEP,
             max_nfev: int = 60, plane_waves: int = 0, origin: tuple[float, float] = (0.0, 0.0),
             plane_angles: np.ndarray | None = None, fixed_field: np.ndarray | None = None,
             tr_solver: str = "lsmr",
             pixels: tuple[np.ndarray, np.ndarray] | None = None,
             anisotropy: tuple[float, float] | None = None, fit_anisotropy: bool = True) -> WaveFit:
    """Fit the model to the float (or complex) ``(H, W)`` ``field`` from start positions ``xy (n, 2)``.

    Args:
        kernel, observable: the hypothesis (``KERNELS``; ``snapshot``, ``amplitude``, or
            ``complex`` for a complex ``field``).
        wavelength, damping, source_size: start (or fixed) values of the globals.
        fit_*: which globals are free (the seed kernel has no damping).
        bounds: ``(lo, hi)`` each ``(n, 2)``: the box of every position; default the
            start ``+- max_shift`` inside the image.
        stride: fit every ``stride``-th pixel of each axis (a cheaper, noisier fit).
        strengths: start ``q (n,)`` (a warm start, with ``offset`` the start ``c``);
            NaN entries (e.g. sources just added) are estimated with the others held;
            default: all by linear least squares (snapshot) or a phase retrieval
            (amplitude).
        weights: ``(H, W)`` per-pixel weights (one over the noise std where it varies,
            e.g. a colormap rendering); the RSS, the BIC and the covariance are then
            of the weighted residual.
        wavelength_range: bounds of a fitted wavelength, as factors of the start.
        table_step: kernel table step (px; ``None``: exact kernel values, slower).
        robust: Huber loss with its corner at ``HUBER_SCALE`` (residuals in units of
            the noise, so with ``weights``), by one reweighting of the converged
            quadratic fit: heavy-tailed errors, e.g. a colormap inverted under strong
            noise, lose their pull; ``rss`` is then the Huber cost, which equals the
            RSS where no residual passes the corner.
        plane_waves: ``m`` plane waves ``b exp(i Re(k) e_m . (p - origin))`` join the
            sources in ``u`` (what arrives from outside a window: reflections, sources
            out of reach), their complex amplitudes ``b`` fitted like strengths and
            their directions ``e_m = (cos t_m, sin t_m)`` fitted too, starting at
            ``plane_angles`` (default: the strongest directions on the wavelength's
            ring of the spectrum of what a fit without them leaves,
            :func:`~heatmaploc.physics.spectrum.ring_directions`).  They are reported
            in ``WaveFit.background`` and ``WaveFit.background_angles``.
        pixels: ``(rows, cols)`` integer indices of the pixels to fit (e.g. a
            window), instead of every ``stride``-th pixel of the image.
        fixed_field: ``(P,)`` complex field added to ``u`` at the fitted pixels, held
            (e.g. the fitted neighbours of a window, around a source's core).
        tr_solver: ``least_squares``'s trust-region solver: ``lsmr`` (iterative, for
            the many parameters of a whole image) or ``exact`` (dense, faster for the
            few of a small window with single-threaded BLAS).
        anisotropy: ``(ratio, angle)``: an orthotropic medium
            (:func:`~heatmaploc.physics.forward.anisotropy_metric`), its start (with
            ``fit_anisotropy``, ratio within ``ANISOTROPY_RANGE``) or fixed value;
            ``None``: isotropic.  Plane waves then travel in the mapped coordinates
            (their direction is that of the isotropic medium).
    """
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; expected one of {KERNELS}")
    if observable not in ALL_OBSERVABLES:
        raise ValueError(f"unknown observable {observable!r}; expected one of {ALL_OBSERVABLES}")
    h, w = field.shape
    if pixels is None:
        rows, cols = np.arange(0, h, stride), np.arange(0, w, stride)
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
    m = int(plane_waves)
    nt = n + m
    grid_x, grid_y = (g.ravel() for g in np.meshgrid(xs - origin[0], ys - origin[1]))
    fit_damping = fit_damping and kernel != "seed"
    if bounds is None:
        edge = np.array([w - 0.5, h - 0.5])
        lo_xy, hi_xy = np.maximum(start - max_shift, -0.5), np.minimum(start + max_shift, edge)
    else:
        lo_xy, hi_xy = (np.asarray(b, dtype=np.float64).reshape(-1, 2) for b in bounds)
    amplitude = observable == "amplitude"
    if m and plane_angles is None:
        # start directions: the plane waves that the residual of the fit without them holds
        first = fit_wave(field, start, kernel, observable, wavelength, damping, source_size, fit_wavelength=False,
                         fit_damping=False, fit_size=False, fit_offset=fit_offset, bounds=(lo_xy, hi_xy),
                         strengths=None if strengths is None else np.asarray(strengths)[:n], offset=offset,
                         weights=weights, table_step=table_step, max_nfev=max_nfev // 2, pixels=(rows, cols),
                         fixed_field=fixed_field, tr_solver=tr_solver, anisotropy=anisotropy, fit_anisotropy=False)
        spacing = float(np.median(np.diff(cols))) if len(cols) > 1 else 1.0
        plane_angles = ring_directions(first.complex_residual().reshape(len(rows), len(cols)), wavelength, m, spacing,
                                       half_turn=observable == "snapshot")
    angles0 = np.asarray(plane_angles if m else [], np.float64).reshape(m)

    # parameter vector: x, y per source | Re q, then Re b | Im q, then Im b | c (Re, Im for a complex
    # field) | a | lambda | d | plane-wave angles
    i_q = 2 * n
    i_c = 2 * n + 2 * nt
    n_offset = (2 if complex_data else 1) if fit_offset else 0
    i_g = i_c + n_offset
    globals_free = [name for name, free in (("a", fit_size), ("lambda", fit_wavelength), ("d", fit_damping)) if free]
    i_t = i_g + len(globals_free)
    fit_anisotropy = anisotropy is not None and fit_anisotropy
    i_a = i_t + m  # ratio, angle of a fitted anisotropy

    def metric_of(x: np.ndarray) -> np.ndarray | None:
        if anisotropy is None:
            return None
        return anisotropy_metric(*(x[i_a:i_a + 2] if fit_anisotropy else anisotropy))

    def unpack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, complex, float, float, float]:
        g = dict(zip(globals_free, x[i_g:i_t]))
        q = x[i_q:i_q + nt] + 1j * x[i_q + nt:i_c]
        c = (complex(x[i_c], x[i_c + 1]) if complex_data else float(x[i_c])) if fit_offset else 0.0
        return x[:2 * n].reshape(n, 2), q, c, g.get("a", source_size), g.get("lambda", wavelength), g.get("d", damping)

    def observed(z: np.ndarray, u: np.ndarray) -> np.ndarray:
        """What a change ``z (k, P)`` of the complex field changes in the data
        ``(k, len(data))``, to first order at the field ``u``."""
        if amplitude:
            return np.real(np.conj(u) / np.maximum(np.abs(u), 1e-12) * z)
        if complex_data:
            return np.concatenate([z.real, z.imag], axis=-1)
        return z.real

    def mapped_grid(metric: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        return map_offsets(metric, grid_x, grid_y)

    cache: dict[str, tuple] = {}
    irls = [np.ones(len(data))]  # robust reweighting factors, one per pixel (1: quadratic loss)

    def evaluate(x: np.ndarray) -> tuple:
        key = x.tobytes()
        if key not in cache:
            pos, q, c, a, lam, d = unpack(x)
            metric = metric_of(x)
            g, dg, r, offsets = radial_fields(kernel, pos, xs, ys, wavenumber(lam, d), a,
                                              table_step=table_step, metric=metric)
            theta = x[i_t:i_a]
            waves = plane_wave_paths(theta, *mapped_grid(metric))
            plane = np.exp(1j * (2 * math.pi / lam) * waves)
            u = q[:n] @ g + q[n:] @ plane
            if fixed_field is not None:
                u = u + fixed_field
            g = np.vstack([g, plane])
            cache.clear()
            cache[key] = (pos, q, c, a, lam, d, g, dg, r, offsets, u, waves)
        return cache[key]

    def residual(x: np.ndarray) -> np.ndarray:
        u = evaluate(x)[10]
        c = unpack(x)[2]
        if complex_data:
            model = np.concatenate([u.real + np.real(c), u.imag + np.imag(c)])
        else:
            model = (np.abs(u) if amplitude else u.real) + c
        res = (model - data) * irls[0]
        return res if weight_data is None else res * weight_data

    def jacobian(x: np.ndarray) -> np.ndarray:
        pos, q, c, a, lam, d, g, dg, r, offsets, u, waves = evaluate(x)
        jac = np.empty((len(data), len(x)))
        qdg = q[:n, None] * dg
        metric = metric_of(x)
        # d r / d s = -M^T (M (p - s)) / r: the mapped offsets taken back through M^T
        back = offsets if metric is None else np.einsum("ji,jnp->inp", metric, offsets)
        jac[:, 0:2 * n:2] = observed(-qdg * back[0] / r, u).T
        jac[:, 1:2 * n:2] = observed(-qdg * back[1] / r, u).T
        jac[:, i_q:i_q + nt] = observed(g, u).T
        jac[:, i_q + nt:i_c] = observed(1j * g, u).T
        if complex_data and fit_offset:
            half = len(data) // 2
            jac[:, i_c:i_c + 2] = 0.0
            jac[:half, i_c] = 1.0
            jac[half:, i_c + 1] = 1.0
        elif fit_offset:
            jac[:, i_c] = 1.0
        column = i_g
        for name in globals_free:
            if name == "a":
                du = (qdg * (a / r)).sum(axis=0)
            elif name == "lambda":
                du = (qdg * (-r / lam)).sum(axis=0)
                if m:  # d/dlambda of exp(i (2 pi / lambda) phase) = -i (2 pi / lambda^2) phase exp(...)
                    du = du + (q[n:, None] * g[n:] * waves * (-2j * math.pi / lam**2)).sum(axis=0)
            else:
                du = (qdg * r).sum(axis=0) * (1j / (1 + 1j * d))
            jac[:, column] = observed(du[None], u)[0]
            column += 1
        theta = x[i_t:i_a]
        mx, my = mapped_grid(metric)
        across = -np.sin(theta)[:, None] * mx + np.cos(theta)[:, None] * my  # d(phase)/d(angle)
        jac[:, i_t:i_a] = observed(q[n:, None] * g[n:] * across * (2j * math.pi / lam), u).T
        if fit_anisotropy:
            ratio = x[i_a]
            # the mapped offsets (u', v'): d/d ratio (0, -v'/ratio), d/d angle (ratio v', -u'/ratio)
            dr_ratio = -offsets[1] ** 2 / (ratio * r)
            dr_angle = offsets[0] * offsets[1] * (ratio - 1.0 / ratio) / r
            k_plane = 2j * math.pi / lam
            ex, ey = np.cos(theta)[:, None], np.sin(theta)[:, None]
            path_ratio = ey * (-my / ratio)
            path_angle = ex * (ratio * my) + ey * (-mx / ratio)
            for column, dr, dpath in ((i_a, dr_ratio, path_ratio), (i_a + 1, dr_angle, path_angle)):
                du = (qdg * dr).sum(axis=0) + (q[n:, None] * g[n:] * k_plane * dpath).sum(axis=0)
                jac[:, column] = observed(du[None], u)[0]
        jac *= irls[0][:, None]
        return jac if weight_data is None else jac * weight_data[:, None]

    pos0 = np.clip(start, lo_xy + 1e-9, hi_xy - 1e-9)
    metric0 = None if anisotropy is None else anisotropy_metric(*anisotropy)
    planes0 = np.exp(1j * (2 * math.pi / wavelength) * plane_wave_paths(angles0, *mapped_grid(metric0)))
    if strengths is None and fixed_field is not None:
        raise ValueError("a fit with a fixed field needs start strengths")
    if strengths is None:
        q0, c0 = _start_strengths(kernel, observable, pos0, xs, ys, wavenumber(wavelength, damping), source_size,
                                  values, fit_offset, weight_px, table_step, planes0, metric0)
    else:
        q0 = np.asarray(strengths, np.complex128).reshape(-1)
        q0 = np.concatenate([q0, np.full(nt - len(q0), np.nan)]) if len(q0) < nt else q0[:nt]
        c0 = (complex(offset) if complex_data else float(np.real(offset))) if fit_offset else 0.0
        missing = ~np.isfinite(q0)
        if missing.any():
            q0 = _fill_strengths(kernel, observable, pos0, q0, c0, xs, ys, wavenumber(wavelength, damping),
                                 source_size, values, weight_px, table_step, planes0, metric0)
    g_start = {"a": source_size, "lambda": wavelength, "d": damping}
    g_lo = {"a": SOURCE_SIZE_RANGE[0], "lambda": wavelength_range[0] * wavelength, "d": 0.0}
    g_hi = {"a": SOURCE_SIZE_RANGE[1], "lambda": wavelength_range[1] * wavelength, "d": DAMPING_MAX}
    c_start = ([np.real(c0), np.imag(c0)] if complex_data else [np.real(c0)]) if fit_offset else []
    aniso0 = list(anisotropy) if fit_anisotropy else []
    aniso_lo, aniso_hi = ([ANISOTROPY_RANGE[0], -np.inf], [ANISOTROPY_RANGE[1], np.inf]) if fit_anisotropy else ([], [])
    x0 = np.concatenate([pos0.ravel(), q0.real, q0.imag, c_start, [g_start[k] for k in globals_free], angles0, aniso0])
    lo = np.concatenate([lo_xy.ravel(), np.full(2 * nt + n_offset, -np.inf), [g_lo[k] for k in globals_free],
                         np.full(m, -np.inf), aniso_lo])
    hi = np.concatenate([hi_xy.ravel(), np.full(2 * nt + n_offset, np.inf), [g_hi[k] for k in globals_free],
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
    result = least_squares(residual, x0, jac=jacobian, bounds=(lo, hi), x_scale="jac", method="trf",
                           max_nfev=max_nfev, tr_solver=tr_solver)
    if robust:
        # Huber loss by one reweighting (iteratively reweighted least squares): residuals
        # beyond HUBER_SCALE keep the weight that makes their pull constant
        magnitude = np.abs(residual(result.x))
        irls[0] = np.sqrt(np.minimum(1.0, HUBER_SCALE / np.maximum(magnitude, 1e-12)))
        result = least_squares(residual, result.x, jac=jacobian, bounds=(lo, hi), x_scale="jac", method="trf",
                               max_nfev=max_nfev, tr_solver=tr_solver)
    pos, q, c, a, lam, d = unpack(result.x)
    res = residual(result.x) / irls[0]
    if robust:
        magnitude = np.abs(res)
        rss = float(np.sum(np.where(magnitude <= HUBER_SCALE, magnitude**2,
                                    2 * HUBER_SCALE * magnitude - HUBER_SCALE**2)))
    else:
        rss = float(res @ res)
    cov_xy, cov_q = _covariances(jacobian(result.x), rss, n, nt)
    fitted = None
    if anisotropy is not None:
        ratio, angle = (float(v) for v in (result.x[i_a:i_a + 2] if fit_anisotropy else anisotropy))
        fitted = (ratio, float(np.angle(np.exp(2j * angle)) / 2))  # an axis: the angle modulo pi
    return WaveFit(kernel, observable, pos.copy(), q[:n], c, a, lam, d, rss, len(data), len(x0), cov_xy,
                   bool(result.success), q[n:], result.x[i_t:i_a].copy(), res, cov_q, fitted)


def plane_wave_paths(angles: np.ndarray, grid_x: np.ndarray, grid_y: np.ndarray) -> np.ndarray:
    """``(m, P)`` path lengths ``e_m . (p - origin)`` (pixels) of plane waves travelling at
    ``angles (m,)`` (radians) at pixels whose offsets from the origin are ``grid_x``,
    ``grid_y`` ``(P,)``; the wave is ``exp(i (2 pi / wavelength) * path)``."""
    angles = np.asarray(angles, dtype=np.float64)
    return np.cos(angles)[:, None] * grid_x + np.sin(angles)[:, None] * grid_y


def retrieve_strengths(fields: np.ndarray, amplitude: np.ndarray, fit_offset: bool = True, starts: int = 4,
                       iterations: int = 40, seed: int = 0) -> tuple[np.ndarray, float]:
    """Complex strengths ``q (n,)`` and offset ``c`` with ``|fields @ q| + c ~ amplitude``
    for fixed source fields ``(P, n)`` and amplitudes ``(P,)``: alternating projections
    (take the phase of the current field, then solve the linear least-squares problem
    ``amplitude * phase = fields @ q + c * phase``) from ``starts`` phase draws (the
    first all in phase); the best final residual wins.  ``q`` is defined up to a
    common phase."""
    n = fields.shape[1]
    # real and imaginary rows of fields @ q in the unknowns (Re q, Im q): fixed; only the
    # offset's column, c * phase, changes with the phase
    real_rows = np.vstack([np.hstack([fields.real, -fields.imag]), np.hstack([fields.imag, fields.real])])
    rng = np.random.default_rng(seed)
    best = (np.inf, np.zeros(n, np.complex128), 0.0)
    for trial in range(starts):
        q = np.ones(n, np.complex128) if trial == 0 else np.exp(2j * np.pi * rng.random(n))
        c = 0.0
        for _ in range(iterations):
            phase = np.exp(1j * np.angle(fields @ q))
            design = np.column_stack([real_rows, np.concatenate([phase.real, phase.imag])]) if fit_offset else real_rows
            rhs = amplitude * phase
            sol, *_ = np.linalg.lstsq(design, np.concatenate([rhs.real, rhs.imag]), rcond=None)
            q, c = sol[:n] + 1j * sol[n:2 * n], (float(sol[-1]) if fit_offset else 0.0)
        err = float(np.sum((np.abs(fields @ q) + c - amplitude) ** 2))
        if err < best[0]:
            best = (err, q, c)
    return best[1], best[2]


def _fill_strengths(kernel: str, observable: str, xy: np.ndarray, q: np.ndarray, c: float, xs: np.ndarray,
                    ys: np.ndarray, k: complex, source_size: float, data: np.ndarray,
                    weights: np.ndarray | None, table_step: float | None = FIT_TABLE_STEP,
                    planes: np.ndarray | None = None, metric: np.ndarray | None = None) -> np.ndarray:
    """``q`` (sources, then the ``planes (m, P)`` plane waves) with its NaN entries
    estimated, the others held: for a snapshot or a complex field by weighted linear
    least squares on what the known terms leave (``data (P,)``, complex for a complex
    field); for an amplitude map the median known magnitude (1 if none) at the best of
    eight phases."""
    g = radial_fields(kernel, xy, xs, ys, k, source_size, table_step=table_step, metric=metric)[0]
    if planes is not None and len(planes):
        g = np.vstack([g, planes])
    missing = ~np.isfinite(q)
    known = np.where(missing, 0.0, q)
    w = np.ones(len(data)) if weights is None else weights
    if observable == "snapshot":
        out = known.astype(np.complex128)
        out[missing] = _linear_snapshot(g[missing], data - c - (known @ g).real, False, weights)[0]
        return out
    if observable == "complex":
        out = known.astype(np.complex128)
        out[missing] = _linear_complex(g[missing], data - c - known @ g, False, weights)[0]
        return out
    out = known.astype(np.complex128)
    magnitude = float(np.median(np.abs(q[~missing]))) if (~missing).any() else 1.0
    for j in np.flatnonzero(missing):
        base = out @ g
        errors = [np.sum((w * (np.abs(base + magnitude * np.exp(1j * phi) * g[j]) + c - data)) ** 2)
                  for phi in np.linspace(0, 2 * np.pi, 8, endpoint=False)]
        out[j] = magnitude * np.exp(1j * np.linspace(0, 2 * np.pi, 8, endpoint=False)[int(np.argmin(errors))])
    return out


def _start_strengths(kernel: str, observable: str, xy: np.ndarray, xs: np.ndarray, ys: np.ndarray, k: complex,
                     source_size: float, data: np.ndarray, fit_offset: bool,
                     weights: np.ndarray | None = None, table_step: float | None = FIT_TABLE_STEP,
                     planes: np.ndarray | None = None, metric: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Start ``q`` (sources, then the ``planes (m, P)`` plane waves) and ``c``:
    (weighted) linear least squares for a snapshot or a complex field (``data``
    complex), alternating projections for an amplitude map."""
    g = radial_fields(kernel, xy, xs, ys, k, source_size, table_step=table_step, metric=metric)[0]
    if planes is not None and len(planes):
        g = np.vstack([g, planes])
    if len(g) == 0:
        return np.zeros(0, np.complex128), np.mean(data) if fit_offset else 0.0
    if observable == "amplitude":
        return retrieve_strengths(g.T, data, fit_offset, starts=3, iterations=25)
    if observable == "complex":
        return _linear_complex(g, data, fit_offset, weights)[:2]
    return _linear_snapshot(g, data, fit_offset, weights)[:2]


def _linear_snapshot(g: np.ndarray, data: np.ndarray, fit_offset: bool,
                     weights: np.ndarray | None = None) -> tuple[np.ndarray, float, np.ndarray]:
    """Weighted linear least squares of ``data (P,) ~ Re(q @ g) + c`` for fixed unit
    fields ``g (n, P)``: ``(q (n,), c, residual (P,))`` (``c = 0`` without ``fit_offset``)."""
    n = len(g)
    cols = np.hstack([g.real.T, -g.imag.T] + ([np.ones((len(data), 1))] if fit_offset else []))
    w = np.ones(len(data)) if weights is None else weights
    coef, *_ = np.linalg.lstsq(cols * w[:, None], data * w, rcond=None)
    return coef[:n] + 1j * coef[n:2 * n], float(coef[-1]) if fit_offset else 0.0, data - cols @ coef


def _linear_complex(g: np.ndarray, data: np.ndarray, fit_offset: bool,
                    weights: np.ndarray | None = None) -> tuple[np.ndarray, complex, np.ndarray]:
    """Weighted linear least squares of a complex ``data (P,) ~ q @ g + c`` for fixed
    unit fields ``g (n, P)``: ``(q (n,), c, residual (P,))``."""
    n = len(g)
    cols = np.hstack([g.T] + ([np.ones((len(data), 1))] if fit_offset else [])).astype(np.complex128)
    w = np.ones(len(data)) if weights is None else weights
    coef, *_ = np.linalg.lstsq(cols * w[:, None], data * w, rcond=None)
    return coef[:n], complex(coef[-1]) if fit_offset else 0.0, data - cols @ coef


def _linearized_std(cov_q: np.ndarray, q: np.ndarray, phase: bool) -> np.ndarray:
    """``(n,)`` standard deviation of ``|q_j|`` (or ``arg q_j``) from the ``(n, 2, 2)``
    covariance of ``(Re q_j, Im q_j)``: the gradient ``(Re q, Im q) / |q|`` (or
    ``(-Im q, Re q) / |q|^2``) through it."""
    q = np.asarray(q, np.complex128).reshape(-1)
    if len(cov_q) != len(q):
        return np.full(len(q), np.nan)
    magnitude = np.maximum(np.abs(q), 1e-300)
    grad = (np.stack([-q.imag, q.real], axis=1) / magnitude[:, None] ** 2 if phase
            else np.stack([q.real, q.imag], axis=1) / magnitude[:, None])
    return np.sqrt(np.clip(np.einsum("ni,nij,nj->n", grad, cov_q, grad), 0.0, None))


def _covariances(jac: np.ndarray, rss: float, n: int, nt: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 2, 2)`` position blocks and ``(n, 2, 2)`` ``(Re q_j, Im q_j)`` blocks of
    ``s^2 (J^T J)^+``, ``s^2 = RSS / (N - p)``, for the parameter layout of
    :func:`fit_wave` (``nt`` strengths: the sources', then the plane waves')."""
    dof = max(jac.shape[0] - jac.shape[1], 1)
    # scale columns first: the parameters differ by orders of magnitude in size
    scale = np.sqrt(np.sum(jac**2, axis=0))
    scale[scale == 0] = 1.0
    info = (jac / scale).T @ (jac / scale)
    cov = np.linalg.pinv(info, hermitian=True) / np.outer(scale, scale) * (rss / dof)
    out = np.empty((n, 2, 2))
    out_q = np.empty((n, 2, 2))
    for j in range(n):
        out[j] = cov[2 * j:2 * j + 2, 2 * j:2 * j + 2]
        idx = [2 * n + j, 2 * n + nt + j]
        out_q[j] = cov[np.ix_(idx, idx)]
    return out, out_q


def linear_rss(field: np.ndarray, xy: np.ndarray, kernel: str, wavelength: float, damping: float = 0.0,
               source_size: float = 1.0, stride: int = 1) -> float:
    """Residual sum of squares of the best snapshot model (of a complex field: the
    complex model) with the positions, the wavelength and the damping held fixed
    (strengths and offset solved linearly): the cheap profile used to scan wavelengths
    and kernels."""
    xs, ys = np.arange(0, field.shape[1], stride, dtype=np.float64), np.arange(0, field.shape[0], stride, dtype=np.float64)
    data = np.asarray(field)[::stride, ::stride].ravel()
    g = radial_fields(kernel, np.asarray(xy).reshape(-1, 2), xs, ys, wavenumber(wavelength, damping), source_size,
                      table_step=FIT_TABLE_STEP)[0]
    if np.iscomplexobj(data):
        res = _linear_complex(g, data.astype(np.complex128), True)[2]
        return float(np.sum(np.abs(res) ** 2))
    res = _linear_snapshot(g, data.astype(np.float64), True)[2]
    return float(res @ res)
