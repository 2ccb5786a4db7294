"""The linear parts of a wave-field fit: strengths for fixed positions, plane-wave
paths, and the covariances of a converged fit.

For fixed source positions, wavelength, damping and source size the model of
:mod:`heatmaploc.physics.wavefit` is linear in the complex strengths ``q`` and the
offset ``c`` (snapshot and complex observables): weighted linear least squares gives
them exactly, which starts every nonlinear fit and scans wavelengths cheaply
(:func:`linear_rss`).  An amplitude map ``|sum q_j G_j| + c`` is not linear in ``q``;
alternating projections retrieve its strengths (:func:`retrieve_strengths`).
Arrays follow docs/design.md section 1: pixels ``(x, y)``, pixel centres at integers;
fields ``g (n, P)`` hold one unit source's field per row over ``P`` pixels.
"""
from __future__ import annotations

import numpy as np

from heatmaploc.physics.forward import radial_fields
from heatmaploc.physics.kernels import FIT_TABLE_STEP, wavenumber


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


def fill_strengths(kernel: str, observable: str, xy: np.ndarray, q: np.ndarray, c: float, xs: np.ndarray,
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
        out[missing] = linear_snapshot(g[missing], data - c - (known @ g).real, False, weights)[0]
        return out
    if observable == "complex":
        out = known.astype(np.complex128)
        out[missing] = linear_complex(g[missing], data - c - known @ g, False, weights)[0]
        return out
    out = known.astype(np.complex128)
    magnitude = float(np.median(np.abs(q[~missing]))) if (~missing).any() else 1.0
    for j in np.flatnonzero(missing):
        base = out @ g
        errors = [np.sum((w * (np.abs(base + magnitude * np.exp(1j * phi) * g[j]) + c - data)) ** 2)
                  for phi in np.linspace(0, 2 * np.pi, 8, endpoint=False)]
        out[j] = magnitude * np.exp(1j * np.linspace(0, 2 * np.pi, 8, endpoint=False)[int(np.argmin(errors))])
    return out


def start_strengths(kernel: str, observable: str, xy: np.ndarray, xs: np.ndarray, ys: np.ndarray, k: complex,
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
        return linear_complex(g, data, fit_offset, weights)[:2]
    return linear_snapshot(g, data, fit_offset, weights)[:2]


def linear_snapshot(g: np.ndarray, data: np.ndarray, fit_offset: bool,
                     weights: np.ndarray | None = None) -> tuple[np.ndarray, float, np.ndarray]:
    """Weighted linear least squares of ``data (P,) ~ Re(q @ g) + c`` for fixed unit
    fields ``g (n, P)``: ``(q (n,), c, residual (P,))`` (``c = 0`` without ``fit_offset``)."""
    n = len(g)
    cols = np.hstack([g.real.T, -g.imag.T] + ([np.ones((len(data), 1))] if fit_offset else []))
    w = np.ones(len(data)) if weights is None else weights
    coef, *_ = np.linalg.lstsq(cols * w[:, None], data * w, rcond=None)
    return coef[:n] + 1j * coef[n:2 * n], float(coef[-1]) if fit_offset else 0.0, data - cols @ coef


def linear_complex(g: np.ndarray, data: np.ndarray, fit_offset: bool,
                    weights: np.ndarray | None = None) -> tuple[np.ndarray, complex, np.ndarray]:
    """Weighted linear least squares of a complex ``data (P,) ~ q @ g + c`` for fixed
    unit fields ``g (n, P)``: ``(q (n,), c, residual (P,))``."""
    n = len(g)
    cols = np.hstack([g.T] + ([np.ones((len(data), 1))] if fit_offset else [])).astype(np.complex128)
    w = np.ones(len(data)) if weights is None else weights
    coef, *_ = np.linalg.lstsq(cols * w[:, None], data * w, rcond=None)
    return coef[:n], complex(coef[-1]) if fit_offset else 0.0, data - cols @ coef


def linearized_std(cov_q: np.ndarray, q: np.ndarray, phase: bool) -> np.ndarray:
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


def covariances(jac: np.ndarray, rss: float, n: int, nt: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 2, 2)`` position blocks and ``(n, 2, 2)`` ``(Re q_j, Im q_j)`` blocks of
    ``s^2 (J^T J)^+``, ``s^2 = RSS / (N - p)``, for the parameter layout of
    :func:`heatmaploc.physics.wavefit.fit_wave` (``nt`` strengths: the sources', then the plane waves')."""
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
        res = linear_complex(g, data.astype(np.complex128), True)[2]
        return float(np.sum(np.abs(res) ** 2))
    res = linear_snapshot(g, data.astype(np.float64), True)[2]
    return float(res @ res)
