"""Finite-difference wave fields of media the analytic kernels do not describe.

The time-harmonic field ``u`` (time convention ``exp(-i w t)``) of point sources in a
medium that may be heterogeneous, orthotropic and bounded, on the pixel grid of an
image (docs/design.md section 1: pixel centres at integers):

    div(A grad u) + k(p)^2 u = -sum_j q_j delta(p - s_j)                  (membrane, acoustics)

    u = -4i (u+ - u-),  div(A grad u+-) +- k(p)^2 u+- = -sum_j q_j delta    (Kirchhoff plate)

With ``A`` the identity and a uniform ``k`` these are the ``free`` and ``plate`` kernels of
:mod:`heatmaploc.physics.kernels` (``(i/4) H0(kr)``, and ``H0(kr) + (2i/pi) K0(kr)`` through
the factorization of the plate operator ``(lap + k^2)(lap - k^2)``), which is what the
tests check the solver against.

- ``k(p) = k0 / c(p)`` with ``c`` the relative wave speed (1 + a smooth field).
- ``A = R(angle) diag(1, ratio^2) R(angle)^T``: an orthotropic medium whose waves have
  the wavelength ``2 pi / k`` along the direction ``angle`` (radians from +x, towards +y)
  and ``ratio`` times that across it; in a homogeneous one the field is the isotropic
  kernel at the distance ``sqrt(d^T A^-1 d)``, divided by ``ratio``.
- Each side of the domain absorbs (a layer in which ``k^2`` gains a growing imaginary
  part, then a fixed boundary: the waves leave the view), or is an edge at a given
  distance beyond the view that reflects: ``dirichlet`` (``u = 0``: a fixed membrane
  edge, a pressure-release wall; for the plate a simply supported edge) or ``neumann``
  (zero normal derivative: a free membrane edge, a rigid wall; for the plate a guided
  edge, zero slope and shear).
- The grid has ``refine`` nodes per pixel (at least 10 per wavelength), pixel centres on
  nodes; the second-order 9-point stencil's wavenumber is corrected for its mean
  numerical dispersion, and a point source is spread bilinearly onto its 4 nodes (a
  finite source as a Gaussian of that width), which keeps its centroid exact.
  One sparse LU factorization (``scipy.sparse.linalg.splu``) serves all sources.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu

from heatmaploc.physics.kernels import wavelength_of

EDGES = ("absorb", "dirichlet", "neumann")
SIDES = ("left", "right", "top", "bottom")
MIN_NODES_PER_WAVELENGTH = 10
ABSORB_WAVELENGTHS = 1.5  # width of an absorbing layer
ABSORB_STRENGTH = 2.0  # Im(k^2) / Re(k^2) at the outer boundary of an absorbing layer


@dataclass(frozen=True)
class Medium:
    """What the wave sees.

    Attributes:
        wavenumber: complex ``k0`` in radians per pixel (``Im > 0`` damps).
        kernel: ``free`` (Helmholtz) or ``plate`` (Kirchhoff).
        speed: ``(H, W)`` relative wave speed at the pixel centres of the view
            (``None``: 1 everywhere); outside the view it continues as at the nearest
            view pixel.
        ratio, angle: orthotropy: the wavelength across the direction ``angle`` over
            that along it (``ratio`` 1: isotropic).
        edges: per side (``left``, ``right``, ``top``, ``bottom``) one of
            :data:`EDGES`; distances: per side, how far beyond the view's outer pixel
            edge (``-0.5`` / ``W - 0.5``) an edge lies, or the extra margin before an
            absorbing layer (pixels).
        source_size: std of a Gaussian source in pixels (0: a point source).
    """

    wavenumber: complex
    kernel: str = "free"
    speed: np.ndarray | None = None
    ratio: float = 1.0
    angle: float = 0.0
    edges: dict = field(default_factory=lambda: dict.fromkeys(SIDES, "absorb"))
    distances: dict = field(default_factory=lambda: dict.fromkeys(SIDES, 8.0))
    source_size: float = 0.0

    def __post_init__(self) -> None:
        if self.kernel not in ("free", "plate"):
            raise ValueError(f"the finite-difference medium models the 'free' and 'plate' kernels, got {self.kernel!r}")
        for side in SIDES:
            if self.edges.get(side) not in EDGES:
                raise ValueError(f"edge {side!r} must be one of {EDGES}, got {self.edges.get(side)!r}")
            if not self.distances.get(side, -1) >= 0:
                raise ValueError(f"distance of edge {side!r} must be >= 0, got {self.distances.get(side)!r}")
        if not 0.5 <= self.ratio <= 3.0:
            raise ValueError(f"orthotropy ratio must be in [0.5, 3], got {self.ratio!r}")

    @property
    def wavelength(self) -> float:
        """Wavelength ``2 pi / Re(k)`` in pixels."""
        return wavelength_of(self.wavenumber)


@dataclass(frozen=True)
class Grid:
    """The computational grid: ``refine`` nodes per pixel; node ``(i, j)`` (row, column)
    sits at ``(x0 + j / refine, y0 + i / refine)`` pixels; the view's pixel ``(r, c)`` is
    node ``(r0 + refine r, c0 + refine c)``; ``layer[side]``: absorbing nodes per side."""

    refine: int
    x0: float
    y0: float
    shape: tuple[int, int]
    view_origin: tuple[int, int]
    layer: dict


def refinement(medium: Medium) -> int:
    """Nodes per pixel so that the shortest wavelength (the slowest point of the medium,
    across the orthotropy axis) spans at least ``MIN_NODES_PER_WAVELENGTH`` nodes."""
    slowest = float(np.min(medium.speed)) if medium.speed is not None else 1.0
    shortest = medium.wavelength * slowest * min(1.0, medium.ratio)
    return max(1, math.ceil(MIN_NODES_PER_WAVELENGTH / shortest))


def make_grid(medium: Medium, height: int, width: int) -> Grid:
    """The grid of a ``(height, width)`` view in ``medium``: absorbing sides get their
    margin and a layer of :data:`ABSORB_WAVELENGTHS` of the longest wavelength; an edge
    side ends at the edge (a Dirichlet edge on a node, a Neumann edge half a node
    beyond the last node)."""
    ref = refinement(medium)
    h = 1.0 / ref
    longest = medium.wavelength * (float(np.max(medium.speed)) if medium.speed is not None else 1.0) * max(1.0, medium.ratio)
    nodes, layer = {}, {}
    for side in SIDES:
        reach = 0.5 + medium.distances[side]  # from the outer pixel centre
        if medium.edges[side] == "absorb":
            layer[side] = math.ceil(ABSORB_WAVELENGTHS * longest / h)
            nodes[side] = math.ceil(reach / h) + layer[side]
        else:
            layer[side] = 0
            # dirichlet: the edge node itself is not an unknown; neumann: the edge lies half a node out
            nodes[side] = max(1, round(reach / h - (1.0 if medium.edges[side] == "dirichlet" else 0.5)))
    shape = (nodes["top"] + ref * (height - 1) + 1 + nodes["bottom"], nodes["left"] + ref * (width - 1) + 1 + nodes["right"])
    return Grid(ref, -nodes["left"] * h, -nodes["top"] * h, shape, (nodes["top"], nodes["left"]), layer)


def _wavenumber_squared(medium: Medium, grid: Grid, height: int, width: int, waves: bool = True) -> np.ndarray:
    """``k(p)^2`` on the nodes: ``k0 / c``, ``c`` continued beyond the view as at its nearest
    pixel; for the propagating part (``waves``) with the absorbing layers' imaginary ramp
    and the dispersion correction (the evanescent part of the plate needs neither)."""
    rows = grid.y0 + np.arange(grid.shape[0]) / grid.refine
    cols = grid.x0 + np.arange(grid.shape[1]) / grid.refine
    if medium.speed is None:
        speed = np.ones(grid.shape)
    else:
        ri = np.clip(np.rint(rows), 0, height - 1).astype(int)
        ci = np.clip(np.rint(cols), 0, width - 1).astype(int)
        speed = np.asarray(medium.speed, dtype=np.float64)[np.ix_(ri, ci)]
    k2 = (medium.wavenumber / speed) ** 2
    if not waves:
        return k2
    k2 = k2 * _dispersion_factor(np.real(medium.wavenumber) / speed / grid.refine)
    ramp = np.zeros(grid.shape)
    n_rows, n_cols = grid.shape
    for side, n in grid.layer.items():
        if not n:
            continue
        depth = np.arange(n, 0, -1) / n  # 1 at the outer boundary
        profile = ABSORB_STRENGTH * depth**2
        if side == "left":
            ramp[:, :n] = np.maximum(ramp[:, :n], profile[None, :])
        elif side == "right":
            ramp[:, n_cols - n:] = np.maximum(ramp[:, n_cols - n:], profile[::-1][None, :])
        elif side == "top":
            ramp[:n, :] = np.maximum(ramp[:n, :], profile[:, None])
        else:
            ramp[n_rows - n:, :] = np.maximum(ramp[n_rows - n:, :], profile[::-1][:, None])
    return k2 * (1.0 + 1j * ramp)


def _dispersion_factor(kh: np.ndarray) -> np.ndarray:
    """``k_fd^2 / k^2`` that gives the 5-point Laplacian's plane waves the wavenumber
    ``k`` on average over directions (``kh``: wavenumber times node spacing)."""
    theta = np.linspace(0.0, math.pi / 2, 33)
    kh = np.asarray(kh, dtype=np.float64)[..., None]
    numeric = 4.0 * (np.sin(0.5 * kh * np.cos(theta)) ** 2 + np.sin(0.5 * kh * np.sin(theta)) ** 2)
    return np.mean(numeric, axis=-1) / np.maximum(kh[..., 0] ** 2, 1e-30)


def _operator(medium: Medium, grid: Grid, k2: np.ndarray, sign: float) -> sparse.csc_matrix:
    """The 9-point matrix of ``div(A grad u) + sign k^2 u`` times ``h^2`` on the grid's
    unknowns; neighbours beyond a Dirichlet side are zero, beyond a Neumann side the
    mirror image of the node inside (the edge half a node out), beyond an absorbing
    layer zero (the layer has absorbed the wave)."""
    c, s = math.cos(medium.angle), math.sin(medium.angle)
    r2 = medium.ratio**2
    a11, a22, a12 = c * c + r2 * s * s, s * s + r2 * c * c, (1.0 - r2) * c * s
    n_rows, n_cols = grid.shape
    index = np.arange(n_rows * n_cols).reshape(grid.shape)
    h2 = (1.0 / grid.refine) ** 2
    stencil = {(0, 0): -2 * a11 - 2 * a22, (0, 1): a11, (0, -1): a11, (1, 0): a22, (-1, 0): a22,
               (1, 1): 0.5 * a12, (-1, -1): 0.5 * a12, (1, -1): -0.5 * a12, (-1, 1): -0.5 * a12}
    neumann = {side: medium.edges[side] == "neumann" for side in SIDES}

    def neighbour(axis_index: np.ndarray, step: int, n: int, low: str, high: str) -> tuple[np.ndarray, np.ndarray]:
        j = axis_index + step
        valid = np.ones(j.shape, bool)
        below, above = j < 0, j >= n
        if neumann[low]:
            j = np.where(below, -j - 1, j)
        else:
            valid &= ~below
        if neumann[high]:
            j = np.where(above, 2 * n - 1 - j, j)
        else:
            valid &= ~above
        return np.clip(j, 0, n - 1), valid

    rows_i, cols_i = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
    data, rows, cols = [], [], []
    for (di, dj), weight in stencil.items():
        if weight == 0.0:
            continue
        ni, vi = neighbour(rows_i, di, n_rows, "top", "bottom")
        nj, vj = neighbour(cols_i, dj, n_cols, "left", "right")
        ok = vi & vj
        rows.append(index[ok])
        cols.append(index[ni[ok], nj[ok]])
        data.append(np.full(int(ok.sum()), weight, dtype=np.complex128))
    rows.append(index.ravel())
    cols.append(index.ravel())
    data.append(sign * h2 * k2.ravel())
    n = n_rows * n_cols
    return sparse.csc_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def _sources(grid: Grid, points: np.ndarray, strengths: np.ndarray, size: float) -> np.ndarray:
    """The right-hand side ``h^2 sum_j q_j delta(p - s_j)``: each source spread over the
    nodes with weights summing to 1 and centroid ``s_j`` (bilinear, or a Gaussian of std
    ``size`` pixels when that exceeds a node spacing)."""
    f = np.zeros(grid.shape, dtype=np.complex128)
    for (x, y), q in zip(np.asarray(points, dtype=np.float64).reshape(-1, 2), np.ravel(strengths)):
        u, v = (x - grid.x0) * grid.refine, (y - grid.y0) * grid.refine  # node units
        if not (0 <= u <= grid.shape[1] - 1 and 0 <= v <= grid.shape[0] - 1):
            continue  # beyond an edge: outside the medium
        if size * grid.refine > 1.0:
            sd = size * grid.refine
            reach = int(math.ceil(6 * sd)) + 1  # truncated tails below 1e-8: the centroid stays exact
            i0, j0 = int(round(v)), int(round(u))
            ii = np.arange(max(0, i0 - reach), min(grid.shape[0], i0 + reach + 1))
            jj = np.arange(max(0, j0 - reach), min(grid.shape[1], j0 + reach + 1))
            w = np.exp(-0.5 * ((ii[:, None] - v) ** 2 + (jj[None, :] - u) ** 2) / sd**2)
            f[np.ix_(ii, jj)] += q * w / w.sum()
            continue
        i, j = min(int(v), grid.shape[0] - 2), min(int(u), grid.shape[1] - 2)
        fv, fu = v - i, u - j
        f[i, j] += q * (1 - fv) * (1 - fu)
        f[i, j + 1] += q * (1 - fv) * fu
        f[i + 1, j] += q * fv * (1 - fu)
        f[i + 1, j + 1] += q * fv * fu
    return f.ravel()


def solve_field(medium: Medium, points: np.ndarray, strengths: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(height, width)`` complex field of sources at ``points`` ``(N, 2)`` ``(x, y)``
    pixels (beyond the view allowed, inside an edge) with complex ``strengths`` ``(N,)``
    in ``medium``, at the view's pixel centres; normalized as the analytic kernels
    (:mod:`heatmaploc.physics.kernels`) for a homogeneous, isotropic, unbounded medium."""
    grid = make_grid(medium, height, width)
    k2 = _wavenumber_squared(medium, grid, height, width)
    rhs = _sources(grid, points, strengths, medium.source_size)
    r0, c0 = grid.view_origin
    view = (slice(r0, r0 + grid.refine * (height - 1) + 1, grid.refine),
            slice(c0, c0 + grid.refine * (width - 1) + 1, grid.refine))
    # (div A grad + k^2) u = -delta  ->  (h^2 L) u = -h^2 delta = -rhs (rhs already carries the node weights)
    helmholtz = splu(_operator(medium, grid, k2, 1.0)).solve(-rhs).reshape(grid.shape)[view]
    if medium.kernel == "free":
        return helmholtz
    evanescent = _wavenumber_squared(medium, grid, height, width, waves=False)
    modified = splu(_operator(medium, grid, evanescent, -1.0)).solve(-rhs).reshape(grid.shape)[view]
    return -4j * (helmholtz - modified)
