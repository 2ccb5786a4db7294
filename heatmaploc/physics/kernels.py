"""Green's functions of the field models (time convention ``exp(-i w t)``).

Every kernel maps distances ``r`` (pixels, any shape, ``r >= 0``) and a complex
wavenumber ``k`` (radians per pixel; ``Im(k) > 0`` is damping) to the complex field
of a unit source.  The observable snapshot at phase ``wt`` is
``Re(u * exp(-1j * wt))`` and the amplitude is ``abs(u)``.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import special

KERNELS = ("free", "plate", "seed")
FIT_TABLE_STEP = 0.2  # px: kernel table step of the fits; Hermite error (k h)^4 / 384 < 1e-5 for wavelengths >= 8 px


def wavenumber(wavelength_px: float, damping: float = 0.0) -> complex:
    """The complex wavenumber ``k = (2 pi / wavelength) (1 + i damping)`` (radians per
    pixel) of a wavelength in pixels and a damping ``Im(k) / Re(k)``."""
    k = 2.0 * math.pi / wavelength_px
    return complex(k, k * damping)


def wavelength_of(k: complex) -> float:
    """The wavelength ``2 pi / Re(k)`` (pixels) of a complex wavenumber (radians per
    pixel): the inverse of :func:`wavenumber` with ``damping = Im(k) / Re(k)``."""
    return 2.0 * math.pi / float(np.real(k))


def free_field(r: np.ndarray, k: complex) -> np.ndarray:
    """2-D Helmholtz point source ``(i/4) H0^(1)(k r)`` (membrane, acoustics)."""
    return 0.25j * special.hankel1(0, k * r)


def thin_plate(r: np.ndarray, k: complex) -> np.ndarray:
    """Kirchhoff thin-plate point force ``H0^(1)(k r) + (2i/pi) K0(k r)``.

    The evanescent ``K0`` term cancels the logarithmic singularity of ``Y0``, so the
    kernel is finite at ``r = 0`` (value ``1 + 0j`` in the limit for real ``k``).
    """
    kr = k * np.asarray(r, dtype=np.float64)
    small = np.abs(kr) < 1e-12
    safe = np.where(small, 1.0, kr)  # the limit is taken below; avoid log(0) warnings
    out = special.hankel1(0, safe) + (2j / np.pi) * special.kv(0, safe)
    return np.where(small, 1.0 + 0.0j, out)


def seed_sine(r: np.ndarray, k: complex) -> np.ndarray:
    """The seed blog's undamped kernel: ``-i exp(i k r)``, so the snapshot at phase
    ``wt`` is ``sin(k r - wt)``.  It has no geometric decay, hence no amplitude map."""
    return -1j * np.exp(1j * np.real(k) * r)


def radial_derivative(kernel: str, r: np.ndarray, k: complex) -> np.ndarray:
    """``dG/dr`` of :func:`evaluate` at ``r > 0`` (complex, same shape as ``r``).  Every
    kernel is a function of ``k r`` (the seed kernel of ``Re(k) r``), so the derivatives
    in the wavenumber follow from this one: ``dG/dk = (r / k) dG/dr``."""
    r = np.asarray(r, dtype=np.float64)
    if kernel == "free":
        return -0.25j * k * special.hankel1(1, k * r)
    if kernel == "plate":
        kr = k * r
        small = np.abs(kr) < 1e-12
        safe = np.where(small, 1.0, kr)
        out = -k * (special.hankel1(1, safe) + (2j / np.pi) * special.kv(1, safe))
        return np.where(small, 0.0j, out)
    if kernel == "seed":
        kr = np.real(k)
        return kr * np.exp(1j * kr * r)
    raise ValueError(f"unknown kernel {kernel!r}; expected one of {KERNELS}")


def evaluate(kernel: str, r: np.ndarray, k: complex) -> np.ndarray:
    """Dispatch on the kernel name (one of :data:`KERNELS`)."""
    if kernel == "free":
        return free_field(r, k)
    if kernel == "plate":
        return thin_plate(r, k)
    if kernel == "seed":
        return seed_sine(r, k)
    raise ValueError(f"unknown kernel {kernel!r}; expected one of {KERNELS}")
