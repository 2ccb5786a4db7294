"""The forward model: the wave field of point sources on a pixel grid, and what an
instrument observes of it.  The simulator, the field fit and the Cramér-Rao bounds all
render through these functions.

    u(p) = sum_j q_j G(k r_j(p)),   r_j(p) = sqrt(|p - s_j|^2 + a^2),

for sources ``s_j`` (``(x, y)`` pixels, docs/design.md section 1) with complex strengths
``q_j``, a kernel ``G`` (:mod:`heatmaploc.physics.kernels`), a complex wavenumber ``k``
(radians per pixel) and a source size ``a``, evaluated at pixel centres; the snapshot
observable is ``Re(u exp(-i wt))``, the amplitude ``|u|``, the complex field ``u`` itself
(an instrument that measures phase: a vibrometer or a hologram demodulated at the
drive frequency).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from heatmaploc.physics import kernels

OBSERVABLES = ("snapshot", "amplitude")  # what a real-valued image can be
ALL_OBSERVABLES = OBSERVABLES + ("complex",)  # a complex-valued image is the field itself
TABLE_STEP = 0.02  # pixels; linear interpolation error ~ (k * step)^2 / 8 < 1e-4


def _source_fields(kernel: str, points: np.ndarray, xs: np.ndarray, ys: np.ndarray, k: complex, source_size: float,
                   table_step: float | None, slowness_slope: float = 0.0,
                   centre_x: float = 0.0) -> Iterator[np.ndarray]:
    """The ``(len(ys), len(xs))`` complex field of a unit source at each of ``points``
    in turn: exact kernel values, or (``table_step``) the kernel tabulated once on
    ``r`` for all sources and linearly interpolated.  ``slowness_slope``: the
    wavenumber changes by this fraction per pixel along ``x`` about column
    ``centre_x`` (a medium whose wave speed varies), taken along the straight path
    (``r`` scaled by the relative wavenumber at the path's midpoint)."""
    xs = np.asarray(xs, dtype=np.float64).reshape(1, -1)
    ys = np.asarray(ys, dtype=np.float64).reshape(-1, 1)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    a2 = source_size**2
    radii = [np.sqrt((xs - x) ** 2 + (ys - y) ** 2 + a2) for x, y in pts]
    if slowness_slope:
        radii = [r * (1.0 + slowness_slope * (0.5 * (xs + x) - centre_x)) for r, (x, _) in zip(radii, pts)]
    if table_step is None or not radii:
        for r in radii:
            yield kernels.evaluate(kernel, r, k)
        return
    r_lo = min(float(r.min()) for r in radii)
    r_hi = max(float(r.max()) for r in radii)
    grid = np.arange(r_lo, r_hi + 2 * table_step, table_step)
    table = kernels.evaluate(kernel, grid, k)
    for r in radii:
        yield np.interp(r, grid, table.real) + 1j * np.interp(r, grid, table.imag)


def unit_fields(kernel: str, points: np.ndarray, xs: np.ndarray, ys: np.ndarray, k: complex,
                source_size: float, table_step: float | None = None) -> np.ndarray:
    """``(n, len(ys), len(xs))`` complex fields of unit sources at ``points`` ``(n, 2)``
    ``(x, y)`` pixels, sampled at the pixel centres ``xs`` (columns) x ``ys`` (rows)
    (exact kernel values unless ``table_step``)."""
    out = np.empty((len(np.asarray(points).reshape(-1, 2)), len(np.ravel(ys)), len(np.ravel(xs))), dtype=np.complex128)
    for i, f in enumerate(_source_fields(kernel, points, xs, ys, k, source_size, table_step)):
        out[i] = f
    return out


def wave_field(kernel: str, points: np.ndarray, strengths: np.ndarray, xs: np.ndarray, ys: np.ndarray, k: complex,
               source_size: float, table_step: float | None = None, slowness_slope: float = 0.0,
               centre_x: float = 0.0) -> np.ndarray:
    """``(len(ys), len(xs))`` complex ``u = sum_j q_j G(k r_j)``, accumulated one source
    at a time (memory of one field, whatever the number of sources); ``slowness_slope``
    and ``centre_x`` as in :func:`_source_fields` (0: a uniform medium)."""
    u = np.zeros((len(np.ravel(ys)), len(np.ravel(xs))), dtype=np.complex128)
    fields = _source_fields(kernel, points, xs, ys, k, source_size, table_step, slowness_slope, centre_x)
    for q, f in zip(np.asarray(strengths).reshape(-1), fields):
        u += q * f
    return u


def _tabulated(kernel: str, r: np.ndarray, k: complex, table_step: float, exact_within: float,
               with_slope: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """``G(r)`` and (``with_slope``) ``dG/dr`` for an array of radii: the kernel and its
    derivative tabulated once on ``r``'s range with step ``table_step``, ``G`` by cubic
    Hermite interpolation from values and slopes (error ~ ``(k h)^4 / 384``), the slope
    linearly (only Jacobians use it); exact within ``exact_within`` px of 0."""
    lo = max(float(r.min()), exact_within) if r.size else exact_within
    grid = np.arange(lo, max(float(r.max()) if r.size else lo, lo) + 2 * table_step, table_step)
    table, slope = kernels.evaluate(kernel, grid, k), kernels.radial_derivative(kernel, grid, k)
    pos = np.clip((r - lo) / table_step, 0.0, len(grid) - 1.000001)
    i = pos.astype(np.int64)
    t = pos - i
    t2, t3 = t * t, t * t * t
    g = ((2 * t3 - 3 * t2 + 1) * table[i] + (t3 - 2 * t2 + t) * table_step * slope[i]
         + (3 * t2 - 2 * t3) * table[i + 1] + (t3 - t2) * table_step * slope[i + 1])
    dg = slope[i] * (1.0 - t) + slope[i + 1] * t if with_slope else None
    near = r < exact_within
    if near.any():
        g[near] = kernels.evaluate(kernel, r[near], k)
        if dg is not None:
            dg[near] = kernels.radial_derivative(kernel, r[near], k)
    return g, dg


def tabulated_kernel(kernel: str, r: np.ndarray, k: complex, table_step: float = 0.2,
                     exact_within: float = 1.0) -> np.ndarray:
    """``G(r)`` for any array of radii, tabulated and interpolated as
    :func:`radial_fields` does (exact within ``exact_within`` px of 0): the cheap way
    to fill a large grid, e.g. a matched-filter template."""
    return _tabulated(kernel, np.asarray(r, dtype=np.float64), k, table_step, exact_within, with_slope=False)[0]


def anisotropy_metric(ratio: float, angle: float) -> np.ndarray:
    """``(2, 2)`` matrix ``M = diag(1, 1 / ratio) R(angle)^T`` that maps offsets in an
    orthotropic medium to those of an isotropic one, where the field of a point source
    is ``G(k |M (p - s)|)``: the wavelength is the model's along the axis at ``angle``
    (radians from the ``x`` axis towards ``y``) and ``ratio`` times it across (the
    medium ``div(A grad u) + k^2 u``, ``A = R diag(1, ratio^2) R^T``, up to the factor
    ``1 / ratio`` that the strengths absorb)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, s], [-s / ratio, c / ratio]])


def map_offsets(metric: np.ndarray | None, dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offsets ``(dx, dy)`` (any matching shapes) mapped by an anisotropy ``metric``
    (:func:`anisotropy_metric`): ``M (dx, dy)``; unchanged for ``None`` (isotropic)."""
    if metric is None:
        return dx, dy
    return metric[0, 0] * dx + metric[0, 1] * dy, metric[1, 0] * dx + metric[1, 1] * dy


def radial_fields(kernel: str, points: np.ndarray, xs: np.ndarray, ys: np.ndarray, k: complex, source_size: float,
                  exact_within: float = 1.0, table_step: float | None = TABLE_STEP,
                  metric: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unit-source fields and what their derivatives need, at the pixel centres
    ``xs`` (columns) x ``ys`` (rows), flattened row-major to ``P = len(ys) * len(xs)``:

    ``G (n, P)`` complex, ``dG/dr (n, P)`` complex, ``r (n, P)`` and the offsets
    ``(dx, dy) (2, n, P)`` (pixel minus source; with an anisotropy ``metric``
    (:func:`anisotropy_metric`), mapped by it: ``r`` is then ``sqrt(|M (p - s)|^2 + a^2)``).  The kernel and its derivative are
    tabulated once (step ``table_step``) and interpolated (cubic Hermite for ``G``),
    except within ``exact_within`` px of ``r = 0`` where the free field's logarithm is
    too curved; ``table_step=None`` evaluates every value exactly."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    gx, gy = np.meshgrid(np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64))
    dx = gx.ravel()[None, :] - pts[:, :1]
    dy = gy.ravel()[None, :] - pts[:, 1:]
    dx, dy = map_offsets(metric, dx, dy)
    r = np.sqrt(dx**2 + dy**2 + source_size**2)
    if r.size == 0:
        empty = np.zeros(r.shape, np.complex128)
        return empty, empty.copy(), r, np.stack([dx, dy])
    if table_step is None:
        return kernels.evaluate(kernel, r, k), kernels.radial_derivative(kernel, r, k), r, np.stack([dx, dy])
    g, dg = _tabulated(kernel, r, k, table_step, exact_within, with_slope=True)
    return g, dg, r, np.stack([dx, dy])


def observe(u: np.ndarray, observable: str, time_phase: float = 0.0) -> np.ndarray:
    """What is measured of the complex field ``u``: the snapshot ``Re(u exp(-i wt))``
    or the amplitude ``|u|`` (float64), or the field ``u exp(-i wt)`` (complex128);
    same shape."""
    if observable == "amplitude":
        return np.abs(u)
    if observable == "snapshot":
        return np.real(u * np.exp(-1j * time_phase))
    if observable == "complex":
        return np.asarray(u, np.complex128) * np.exp(-1j * time_phase)
    raise ValueError(f"unknown observable {observable!r}; expected one of {ALL_OBSERVABLES}")
