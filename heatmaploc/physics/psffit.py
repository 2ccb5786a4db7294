"""Fit of an incoherent power map as ``sum_j p_j K(x - x_j) + b`` (the point-spread
family; :mod:`heatmaploc.physics.psf` for ``K``), with ``p_j >= 0``.

The observed values ``v`` are either the power itself up to an affine map (``linear``;
a raw power map, or a colormap's inverse) or its logarithm (``db``: ``u = exp(gamma v)``
is the power up to a factor; ``gamma = ln(10) / 10`` for a raw map in dB, fitted for a
colormap rendering, whose dB span is unknown).  Powers and the background are solved
linearly (non-negative least squares, weighted) for given positions; positions (and a
parametric PSF's width) by nonlinear least squares on the residual in ``v``, with the
analytic Jacobian of that variable projection (:func:`reduced_jacobian`).

Noise: a beamformer's power estimate has a standard deviation proportional to the power
(an estimated cross-spectral matrix), on a floor; in ``linear`` the noise std of a value
is ``sqrt(s0^2 + (rho m)^2)`` with ``m`` the model above its background, both fitted
from the residual; in ``db`` a constant.  The residual is correlated over about a main
lobe, so every chi-square is divided by the residual's correlation area
(:func:`heatmaploc.physics.local.correlation_area`) and BIC counts independent samples.
Pixels of a dB map at its floor (clipped) are left out.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from scipy.optimize import least_squares, nnls

from heatmaploc.physics.local import correlation_area
from heatmaploc.physics.psf import PSF
from heatmaploc.physics.wavefit import coordinate_sigma

DB_GAMMA = math.log(10.0) / 10.0  # u = exp(gamma v) for v in dB
TINY = 1e-12
FIT_TOLERANCE = 1e-6  # relative change of the cost and of the parameters that ends a fit (scipy: 1e-8)


def is_db_map(values: np.ndarray) -> bool:
    """Whether a raw map's values are in dB: a relative dB map peaks at 0 or below, a
    power map above 0."""
    return float(np.max(values)) <= 0.0


@dataclass(frozen=True)
class Data:
    """The values a fit is scored on.

    Attributes:
        values: ``(H, W)`` observed values ``v``.
        scale: ``linear`` or ``db``; gamma: ``u = exp(gamma v)`` for ``db``.
        mask: ``(H, W)`` bool, pixels used (a dB map's floor left out).
        noise: ``(H, W)`` noise std of each value (None: not yet known, unit).
    """

    values: np.ndarray
    scale: str
    gamma: float = DB_GAMMA
    mask: np.ndarray | None = None
    noise: np.ndarray | None = None

    @property
    def used(self) -> np.ndarray:
        return np.ones(self.values.shape, bool) if self.mask is None else self.mask

    @property
    def power(self) -> np.ndarray:
        """``u``: the power up to a factor (``linear``: the values themselves)."""
        return self.values if self.scale == "linear" else np.exp(self.gamma * (self.values - self.values.max()))


@dataclass(frozen=True)
class PSFFit:
    """One fit.

    Attributes:
        xy: ``(n, 2)`` positions ``(x, y)`` in pixels; powers: ``(n,)`` ``p_j`` in the
            units of :attr:`Data.power`; background: ``b``.
        psf: the PSF; data: what it was fitted on.
        model: ``(H, W)`` fitted power ``sum p_j K + b``; residual: ``(H, W)`` in ``v``.
        chi2: sum of squared normalized residuals over the used pixels (before the
            correlation area); area: the correlation area; used: number of pixels.
        cov_xy: ``(n, 2, 2)``; power_sigma: ``(n,)``.
    """

    xy: np.ndarray
    powers: np.ndarray
    background: float
    psf: PSF
    data: Data
    model: np.ndarray
    residual: np.ndarray
    chi2: float
    area: float
    used: int
    cov_xy: np.ndarray
    power_sigma: np.ndarray

    @property
    def count(self) -> int:
        return len(self.xy)

    @property
    def sigma(self) -> np.ndarray:
        """``(n,)`` standard deviation of each coordinate (:func:`~heatmaploc.physics.wavefit.coordinate_sigma`)."""
        return coordinate_sigma(self.cov_xy)

    def parameters(self) -> int:
        """Free parameters: three per source, the background, a parametric width."""
        return 3 * self.count + 1 + (self.psf.shape != "template")

    def bic(self, area: float | None = None) -> float:
        """BIC over independent samples: ``chi2 / A + k ln(N / A)`` with the correlation
        area ``A`` (``area`` to compare fits on one footing)."""
        a = self.area if area is None else area
        return self.chi2 / a + self.parameters() * self.log_samples(a)

    def log_samples(self, area: float | None = None) -> float:
        """``ln(N / A)``: the BIC's penalty per parameter (independent samples over the
        correlation area ``A``, at least 2; ``area`` as in :meth:`bic`)."""
        return math.log(max(self.used / (self.area if area is None else area), 2.0))


@lru_cache(maxsize=8)
def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Read-only ``(H, W)`` pixel centres ``x`` (columns) and ``y`` (rows)."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    cols.flags.writeable = rows.flags.writeable = False
    return cols, rows


def design(psf: PSF, xy: np.ndarray, shape: tuple[int, int], cache: OrderedDict | None = None) -> np.ndarray:
    """``(H * W, n)`` columns ``K(x - x_j)`` of the ``(n, 2)`` sources.  ``cache``: the
    columns computed before, by ``(width, x, y)``, reused; it keeps the ``2 n + 2``
    most recently used (a finite-difference Jacobian moves one source at a time)."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    gx, gy = _grid(tuple(shape))
    columns = np.empty((gx.size, len(xy)))
    for j, (x, y) in enumerate(xy):
        key = (psf.width, float(x), float(y))
        column = None if cache is None else cache.get(key)
        if column is None:
            column = psf(gx - x, gy - y).ravel()
        if cache is not None:
            cache[key] = column
            cache.move_to_end(key)  # least recently used first out
        columns[:, j] = column
    while cache is not None and len(cache) > 2 * len(xy) + 2:
        cache.popitem(last=False)
    return columns


def noise_model(data: Data, fit_power: np.ndarray, background: float) -> np.ndarray:
    """``(H, W)`` noise std of each value (module docstring) from a fit's power
    ``(H, W)`` (in :attr:`Data.power`'s units) and background: in power,
    ``sqrt(s0^2 + (rho m)^2)`` with ``m`` the sources' part, ``s0`` and ``rho`` from a
    robust regression of the squared power residual on ``(1, m^2)``; carried to a dB
    map's values through ``dv = du / (gamma u)``."""
    used = data.used
    m = fit_power - background if data.scale == "linear" else fit_power
    r2 = (data.power - fit_power)[used] ** 2
    m2 = m[used] ** 2
    order = np.argsort(m2)
    bins = np.array_split(order, max(2, min(16, len(order) // 64)))
    x = np.array([m2[b].mean() for b in bins])
    y = np.array([np.median(r2[b]) / 0.4549 for b in bins])  # median of chi2_1 = 0.4549
    coef, _ = nnls(np.stack([np.ones_like(x), x], axis=1), y)
    floor = max(coef[0], 1e-6 * float(np.mean(r2)) + TINY)
    std = np.sqrt(floor + coef[1] * m**2)
    if data.scale == "db":
        std = std / (data.gamma * np.maximum(fit_power, TINY))
    return std


def power_std(data: Data, used: np.ndarray, fitted_power: np.ndarray | None = None) -> np.ndarray:
    """``(k,)`` noise std of the ``used`` (flat bool) power values ``u``: the values'
    noise (unit when unknown), carried to a dB map's power through ``du = gamma u dv``
    at ``fitted_power`` (flat; default the data's own power)."""
    noise = (data.noise if data.noise is not None else np.ones(data.values.shape)).ravel()[used]
    if data.scale == "linear":
        return noise
    ref = data.power.ravel() if fitted_power is None else fitted_power
    return noise * data.gamma * np.maximum(ref[used], TINY)


def solve_linear(data: Data, columns: np.ndarray, model_guess: np.ndarray | None = None
                 ) -> tuple[np.ndarray, float, np.ndarray]:
    """Non-negative powers ``(n,)``, the background and the ``(H*W,)`` fitted power for
    the PSF ``columns``, by weighted NNLS on :attr:`Data.power` (weights: the noise
    model, carried to ``u`` for ``db`` through ``dv = du / (gamma u)``)."""
    used = data.used.ravel()
    u = data.power.ravel()
    w = 1.0 / np.maximum(power_std(data, used, model_guess), TINY)
    n = columns.shape[1]
    # weighted columns: the sources', the background's (a dB map's is positive; a linear
    # map's either sign, as two non-negative columns)
    weighted = np.empty((len(w), n + (1 if data.scale == "db" else 2)))
    weighted[:, :n] = (columns if used.all() else columns[used]) * w[:, None]
    weighted[:, n] = w
    if data.scale != "db":
        weighted[:, n + 1] = -w
    coef, _ = nnls(weighted, u[used] * w, maxiter=50 * weighted.shape[1])
    background = float(coef[n] - (coef[n + 1] if data.scale == "linear" else 0.0))
    return coef[:n], background, columns @ coef[:n] + background


def residual_of(data: Data, fitted_power: np.ndarray) -> np.ndarray:
    """``(H, W)`` residual in the observed values ``v`` (0 on unused pixels)."""
    if data.scale == "linear":
        pred = fitted_power.reshape(data.values.shape)
    else:
        pred = data.values.max() + np.log(np.maximum(fitted_power, TINY)).reshape(data.values.shape) / data.gamma
    return np.where(data.used, data.values - pred, 0.0)


def _normalized(data: Data, residual: np.ndarray) -> np.ndarray:
    noise = data.noise if data.noise is not None else np.ones(residual.shape)
    return residual / noise


def fit(data: Data, psf: PSF, xy: np.ndarray, fit_width: bool = True, max_shift: float = 3.0,
        area: float | None = None) -> PSFFit:
    """The fit of ``(n, 2)`` sources started at ``xy`` (each kept within ``max_shift``
    pixels of its start and inside the image; ``max_shift=0``: held at ``xy``) with
    ``psf`` (its width fitted too for a parametric shape when ``fit_width``), on
    ``data`` with its noise model.  ``area`` fixes the correlation area (default:
    measured on this fit's residual)."""
    shape = data.values.shape
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    free_width = fit_width and psf.shape != "template"
    used = data.used
    move = max_shift > 0

    def unpack(theta: np.ndarray) -> tuple[PSF, np.ndarray]:
        p = replace(psf, width=float(theta[-1])) if free_width else psf
        return p, theta[:2 * len(xy)].reshape(-1, 2) if move else xy

    columns: OrderedDict = OrderedDict()  # one fit's PSF, so a column is known by its width and position
    last: dict = {}

    def evaluate(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        key = theta.tobytes()
        if last.get("key") != key:  # least_squares asks for the Jacobian where it just evaluated
            p, pts = unpack(theta)
            cols = design(p, pts, shape, columns)
            powers, background, fitted = solve_linear(data, cols)
            first = None
            if data.scale == "db":  # one more pass with weights at the fitted power
                first = (powers, background, fitted)
                powers, background, fitted = solve_linear(data, cols, fitted)
            last.update(key=key, value=(cols, powers, background, fitted), first=first)
        return last["value"]

    def residuals(theta: np.ndarray) -> np.ndarray:
        fitted = evaluate(theta)[3]
        return _normalized(data, residual_of(data, fitted))[used]

    def jacobian(theta: np.ndarray) -> np.ndarray:
        p, pts = unpack(theta)
        cols, powers, background, fitted = evaluate(theta)
        jac = reduced_jacobian(data, p, pts, cols, powers, background, fitted, free_width, last["first"])
        return jac if move else jac[:, 2 * len(pts):]

    width0 = np.array([psf.width] if free_width else [])
    if move:
        theta0 = np.concatenate([xy.ravel(), width0])
        lo = np.concatenate([np.maximum(xy - max_shift, -0.5).ravel(), 0.5 * width0])
        hi = np.concatenate([np.minimum(xy + max_shift, np.array([shape[1] - 0.5, shape[0] - 0.5])).ravel(),
                             2.0 * width0])
    else:
        theta0, lo, hi = width0, 0.5 * width0, 2.0 * width0
    theta0 = np.clip(theta0, lo + 1e-9, hi - 1e-9)
    if len(theta0):
        result = least_squares(residuals, theta0, jac=jacobian, bounds=(lo, hi), x_scale=1.0,
                               max_nfev=25, ftol=FIT_TOLERANCE, xtol=FIT_TOLERANCE)
        theta, jac = result.x, result.jac
    else:
        theta, jac = theta0, np.zeros((int(used.sum()), 0))
    p, pts = unpack(theta)
    _, powers, background, fitted = evaluate(theta)
    residual = residual_of(data, fitted)
    normalized = _normalized(data, residual)
    a = correlation_area(normalized, max(2.0, p.width)) if area is None else area
    cov_xy, power_sigma = _covariances(data, p, pts, powers, jac, a, fitted)
    return PSFFit(pts, powers, float(background), p, data, fitted.reshape(shape), residual,
                  float(np.sum(normalized[used] ** 2)), a, int(used.sum()), cov_xy, power_sigma)


def reduced_jacobian(data: Data, psf: PSF, xy: np.ndarray, columns: np.ndarray, powers: np.ndarray,
                     background: float, fitted: np.ndarray, with_width: bool,
                     first: tuple[np.ndarray, float, np.ndarray] | None = None) -> np.ndarray:
    """``(used, 2 n [+ 1])`` Jacobian of the normalized residual ``r`` in the positions
    ``xy (n, 2)`` (and the width) with the powers and the background solved again at
    every step as :func:`fit` solves them (:func:`solve_linear`).  With ``B = w [A 1]``
    the weighted design of the free linear parameters (the positive powers, the
    background), ``c`` their values, ``e = w u - B c`` and ``d`` a derivative in one
    parameter, the solution moves by
    ``dc = (B^T B)^-1 (dB^T e - B^T dB c + 2 B^T (e dw / w))`` and the fitted power by
    ``dA c + [A 1] dc``; ``r`` follows it through ``-1 / noise`` (a linear map, whose
    weights are fixed: Golub and Pereyra's variable-projection derivative) or
    ``-1 / (noise gamma u)`` (a dB map: its residual is in dB while its powers are
    solved in power, in a second pass whose weights ``1 / (noise gamma u1)`` move with
    the first pass's fitted power ``u1``).  ``columns``: ``(H*W, n)`` (:func:`design`);
    ``fitted``: the flat fitted power; ``first``: a dB map's first pass (powers,
    background, flat fitted power)."""
    shape = data.values.shape
    used = data.used.ravel()
    gx, gy = (g.ravel()[used] for g in _grid(tuple(shape)))
    k = 2 * len(xy) + int(with_width)
    derivatives = []  # per source: its column's derivative in each of its parameters, as (column index, values)
    for j, (x, y) in enumerate(xy):
        dx, dy = gx - x, gy - y
        kx, ky = psf.gradient(dx, dy)
        derivatives.append(list(zip((2 * j, 2 * j + 1, k - 1),
                                    [-kx, -ky] + ([-(dx * kx + dy * ky) / psf.width] if with_width else []))))
    u = data.power.ravel()[used]
    design_used = columns[used]

    def moved(coef: np.ndarray, bg: float, model: np.ndarray, weights_at: np.ndarray | None,
              weight_rate: np.ndarray | None) -> np.ndarray:
        """``(used, k)`` derivative of one pass's fitted power (``weight_rate``: ``dw / w``)."""
        w = 1.0 / np.maximum(power_std(data, used, weights_at), TINY)
        e = w * (u - model)
        free = np.flatnonzero(coef > 0)
        basis = design_used[:, free]
        if data.scale == "linear" or bg > 0:  # a dB map's background at zero is held there
            basis = np.concatenate([basis, np.ones((len(u), 1))], axis=1)
        q, rr = np.linalg.qr(basis * w[:, None])
        slot = {j: i for i, j in enumerate(free)}  # a free source's column in B
        d_fixed = np.zeros((len(u), k))  # dA c: the power's derivative at fixed powers
        d_dot_e = np.zeros((basis.shape[1], k))  # dB^T e: nonzero in the moved source's column only
        for j, parts in enumerate(derivatives):
            for c, d in parts:
                d_fixed[:, c] += coef[j] * d
                if j in slot:
                    d_dot_e[slot[j], c] += (w * d) @ e
        # (B^T B)^-1 B^T x = R^-1 Q^T x, with B = Q R (least squares: a rank-deficient R stays finite)
        inner = np.linalg.lstsq(rr.T, d_dot_e, rcond=None)[0] - q.T @ (w[:, None] * d_fixed)
        if weight_rate is not None:
            inner += 2.0 * q.T @ (e[:, None] * weight_rate)
        return d_fixed + basis @ np.linalg.lstsq(rr, inner, rcond=None)[0]

    noise = (data.noise if data.noise is not None else np.ones(shape)).ravel()[used]
    model = fitted[used]
    if data.scale == "linear":
        return -moved(powers, background, model, None, None) / noise[:, None]
    if first is None:
        raise ValueError("a dB map's Jacobian needs the first pass of its linear solve")
    coef1, bg1, fitted1 = first
    model1 = np.maximum(fitted1[used], TINY)
    weight_rate = -moved(coef1, bg1, fitted1[used], None, None) / model1[:, None]  # w = 1 / (noise gamma u1)
    d_power = moved(powers, background, model, fitted1, weight_rate)
    return -d_power / (noise * data.gamma * np.maximum(model, TINY))[:, None]


def _covariances(data: Data, psf: PSF, xy: np.ndarray, powers: np.ndarray, jac: np.ndarray, area: float,
                 fitted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position covariances from the normalized residual's Jacobian and power sigmas
    from the weighted linear solve, both times the correlation area (correlated noise)."""
    n = len(xy)
    cov_xy = np.full((n, 2, 2), np.nan)
    if n and jac.shape[1] >= 2 * n:
        jtj = jac.T @ jac
        try:
            cov = np.linalg.pinv(jtj) * area
            for j in range(n):
                cov_xy[j] = cov[2 * j:2 * j + 2, 2 * j:2 * j + 2]
        except np.linalg.LinAlgError:
            pass
    used = data.used.ravel()
    cols = np.concatenate([design(psf, xy, data.values.shape), np.ones((data.values.size, 1))], axis=1)[used]
    weighted = cols / power_std(data, used, fitted)[:, None]
    try:
        power_sigma = np.sqrt(np.clip(np.diag(np.linalg.pinv(weighted.T @ weighted))[:n] * area, 0, None))
    except np.linalg.LinAlgError:
        power_sigma = np.full(n, np.nan)
    return cov_xy, power_sigma
