"""Conventional frequency-domain beamforming of a planar microphone array: the physics
of an acoustic camera's power map (the point-spread family's reference instrument).

Lengths are in wavelengths (``k = 2 pi``).  The array lies in the plane ``z = 0``,
centred on the origin; the map is a grid of focus points in the plane ``z = distance``.
Sources are uncorrelated monopoles; the transfer of source ``s`` to microphone ``m`` is
``a_m(s) = (r_0 / r_m) exp(-i k r_m)`` with ``r_m = |m - s|`` and ``r_0`` the source's
distance to the array centre, so a source's power ``p`` is the mean-square pressure it
would give at the array centre.  The steering vector is ``h(g) = a(g) / |a(g)|^2``
("true level"): a lone source's map peaks at its power, ``B(s) = h(s)^H C h(s) = p``.
"""
from __future__ import annotations

import math

import numpy as np

GEOMETRIES = ("random", "spiral", "grid")
GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))


def array_positions(geometry: str, count: int, aperture: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """``(M, 2)`` microphone positions ``(x, y)`` in wavelengths, within a disc of
    diameter ``aperture`` centred on the origin: ``random`` (uniform in the disc, at
    least ``aperture / (4 sqrt(M))`` apart), ``spiral`` (Vogel's sunflower spiral) or
    ``grid`` (the largest square grid of at most ``count`` microphones, its corners on
    the disc's edge)."""
    radius = aperture / 2.0
    if geometry == "grid":
        n = max(2, int(math.isqrt(count)))
        side = np.linspace(-radius / math.sqrt(2), radius / math.sqrt(2), n)
        gx, gy = np.meshgrid(side, side)
        return np.stack([gx.ravel(), gy.ravel()], axis=1)
    if geometry == "spiral":
        i = np.arange(count) + 0.5
        r = radius * np.sqrt(i / count)
        t = i * GOLDEN_ANGLE
        return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    if geometry == "random":
        if rng is None:
            raise ValueError("a random array needs a random generator")
        gap = aperture / (4.0 * math.sqrt(count))
        out: list[np.ndarray] = []
        while len(out) < count:
            p = rng.uniform(-radius, radius, 2)
            if np.hypot(*p) <= radius and all(np.hypot(*(p - q)) >= gap for q in out):
                out.append(p)
        return np.asarray(out)
    raise ValueError(f"unknown array geometry {geometry!r}; expected one of {GEOMETRIES}")


def transfer(mics: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(P, M)`` complex transfer ``a_m(p)`` of ``(P, 3)`` points ``(x, y, z)`` to the
    ``(M, 2)`` microphones (module docstring)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    diff = points[:, None, :2] - mics[None, :, :]
    r = np.sqrt(np.sum(diff**2, axis=2) + points[:, None, 2] ** 2)
    r0 = np.linalg.norm(points, axis=1)[:, None]
    return (r0 / r) * np.exp(-2j * math.pi * r)


def cross_spectral_matrix(mics: np.ndarray, sources: np.ndarray, powers: np.ndarray, noise_power: float,
                          snapshots: int | None, rng: np.random.Generator | None = None) -> np.ndarray:
    """``(M, M)`` cross-spectral matrix of uncorrelated sources at ``(n, 3)`` positions
    with ``(n,)`` powers and independent microphone noise of power ``noise_power``:
    exact when ``snapshots`` is None, otherwise averaged over that many independent
    complex Gaussian snapshots (the estimation noise of a measured one)."""
    a = transfer(mics, sources)  # (n, M)
    m = len(mics)
    if snapshots is None:
        return (a.T * powers) @ a.conj() + noise_power * np.eye(m)
    if rng is None:
        raise ValueError("an estimated cross-spectral matrix needs a random generator")

    def gaussian(shape: tuple[int, ...]) -> np.ndarray:
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / math.sqrt(2.0)

    signals = gaussian((len(powers), snapshots)) * np.sqrt(np.asarray(powers, dtype=np.float64))[:, None]
    x = a.T @ signals + math.sqrt(noise_power) * gaussian((m, snapshots))  # (M, K)
    return x @ x.conj().T / snapshots


def focus_grid(height: int, width: int, pixel: float, distance: float) -> np.ndarray:
    """``(H * W, 3)`` focus points of an ``(H, W)`` map centred on the array axis, pixel
    ``(col, row)`` at ``((col - (W-1)/2) pixel, (row - (H-1)/2) pixel, distance)``."""
    cols = (np.arange(width) - (width - 1) / 2.0) * pixel
    rows = (np.arange(height) - (height - 1) / 2.0) * pixel
    gx, gy = np.meshgrid(cols, rows)
    return np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, distance)], axis=1)


def pixel_to_focus(xy: np.ndarray, height: int, width: int, pixel: float, distance: float) -> np.ndarray:
    """``(n, 3)`` focus-plane positions of ``(n, 2)`` pixel positions ``(x, y)`` (the
    convention of :func:`focus_grid`)."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    return np.stack([(xy[:, 0] - (width - 1) / 2.0) * pixel, (xy[:, 1] - (height - 1) / 2.0) * pixel,
                     np.full(len(xy), distance)], axis=1)


def beamform(csm: np.ndarray, mics: np.ndarray, grid: np.ndarray, remove_diagonal: bool = False,
             chunk: int = 4096) -> np.ndarray:
    """``(P,)`` real power ``h(g)^H C h(g)`` at the ``(P, 3)`` focus points (true-level
    steering, module docstring).  ``remove_diagonal`` drops the microphones'
    auto-spectra (and their noise) and rescales by ``M / (M - 1)``, as acoustic cameras
    commonly do; the map can then go below zero."""
    c = np.array(csm, dtype=np.complex128)
    m = len(mics)
    if remove_diagonal:
        np.fill_diagonal(c, 0.0)
    out = np.empty(len(grid))
    for start in range(0, len(grid), chunk):
        a = transfer(mics, grid[start:start + chunk])
        h = a / np.sum(np.abs(a) ** 2, axis=1, keepdims=True)
        out[start:start + chunk] = np.real(np.einsum("pm,mn,pn->p", h.conj(), c, h))
    if remove_diagonal:
        out *= m / (m - 1.0)
    return out


def mainlobe_width(aperture: float, distance: float) -> float:
    """Approximate -3 dB width (wavelengths) of a filled disc aperture's main lobe
    focused at ``distance``: ``1.03 distance / aperture`` (small angles)."""
    return 1.03 * distance / aperture
