"""Point-spread functions of an incoherent power map (the point-spread family of the
physics refinement): parametric shapes and a sampled template, each with its peak
value 1 at offset 0.

Offsets ``(dx, dy)`` are in pixels along ``x`` (columns) and ``y`` (rows), docs/design.md
section 1.  ``width`` is the full width at half maximum (pixels).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage, special

PARAMETRIC_SHAPES = ("gaussian", "airy", "sinc2")
SHAPES = PARAMETRIC_SHAPES + ("template",)
AIRY_HALF = 1.616339948  # (2 J1(x) / x)^2 = 1/2 at this x
SINC_HALF = 0.442946470  # sinc(t)^2 = 1/2 at this t (numpy's normalized sinc)


@dataclass(frozen=True)
class PSF:
    """A point-spread function.

    Attributes:
        shape: one of :data:`SHAPES`.
        width: FWHM in pixels (parametric shapes; a template's, measured, for reports).
        template: ``(2R+1, 2R+1)`` samples at integer offsets, centre ``(R, R)`` = 1
            (``template`` only); values beyond it are 0.
    """

    shape: str
    width: float
    template: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown PSF shape {self.shape!r}; expected one of {SHAPES}")
        if self.shape == "template":
            t = np.asarray(self.template, dtype=np.float64)
            if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape[0] % 2 == 0:
                raise ValueError(f"a PSF template must be a square array of odd size, got shape {t.shape}")
            if not np.all(np.isfinite(t)):
                raise ValueError("a PSF template must be finite")
            object.__setattr__(self, "_coeffs", ndimage.spline_filter(t, order=3))
        elif not self.width > 0:
            raise ValueError(f"a PSF width must be positive, got {self.width}")

    @property
    def radius(self) -> int:
        """Half size of a template (0 for a parametric shape)."""
        return 0 if self.template is None else self.template.shape[0] // 2

    def __call__(self, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """PSF values at offsets ``dx``, ``dy`` (arrays of one shape)."""
        if self.shape == "gaussian":
            return np.exp(-4.0 * math.log(2.0) * (dx**2 + dy**2) / self.width**2)
        if self.shape == "airy":
            x = 2.0 * AIRY_HALF * np.hypot(dx, dy) / self.width
            safe = np.where(x < 1e-8, 1.0, x)
            return np.where(x < 1e-8, 1.0, (2.0 * special.j1(safe) / safe) ** 2)
        if self.shape == "sinc2":
            t = 2.0 * SINC_HALF / self.width
            return (np.sinc(t * dx) * np.sinc(t * dy)) ** 2
        r = self.radius
        coords = np.stack([np.ravel(dy) + r, np.ravel(dx) + r])
        values = ndimage.map_coordinates(self._coeffs, coords, order=3, prefilter=False, mode="constant", cval=0.0)
        return values.reshape(np.shape(dx))

    def gradient(self, dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(dK/d dx, dK/d dy)`` at offsets ``dx``, ``dy``: analytic for the parametric
        shapes, a central difference of the cubic spline (step ``1e-3`` px) for a
        template.  A parametric shape depends on ``d / width`` alone, so its derivative
        in the width is ``-(dx dK/d dx + dy dK/d dy) / width``."""
        if self.shape == "gaussian":
            a = 4.0 * math.log(2.0) / self.width**2
            k = np.exp(-a * (dx**2 + dy**2))
            return -2.0 * a * dx * k, -2.0 * a * dy * k
        if self.shape == "airy":
            c = 2.0 * AIRY_HALF / self.width
            x = c * np.hypot(dx, dy)
            small = x < 1e-4
            safe = np.where(small, 1.0, x)
            j1 = special.j1(safe)
            j2 = 2.0 * j1 / safe - special.j0(safe)  # J2 by the recurrence (jv is ten times slower)
            # d/dx (2 J1(x)/x)^2 = -8 J1(x) J2(x) / x^2, times c dx / r = c^2 dx / x
            factor = np.where(small, -0.5 * c**2, -8.0 * c**2 * j1 * j2 / safe**3)
            return factor * dx, factor * dy
        if self.shape == "sinc2":
            t = 2.0 * SINC_HALF / self.width
            sx, sy = np.sinc(t * dx), np.sinc(t * dy)
            return 2.0 * t * sx * _sinc_derivative(t * dx) * sy**2, 2.0 * t * sy * _sinc_derivative(t * dy) * sx**2
        h = 1e-3
        return (self(dx + h, dy) - self(dx - h, dy)) / (2 * h), (self(dx, dy + h) - self(dx, dy - h)) / (2 * h)


def _sinc_derivative(u: np.ndarray) -> np.ndarray:
    """d/du of numpy's normalized ``sinc(u) = sin(pi u) / (pi u)``."""
    safe = np.where(np.abs(u) < 1e-8, 1.0, u)
    return np.where(np.abs(u) < 1e-8, 0.0, (np.cos(np.pi * safe) - np.sinc(safe)) / safe)


def from_array(array: np.ndarray, name: str = "psf") -> PSF:
    """A user's PSF image as a template: cropped or zero-padded to a square of odd size
    around its maximum, scaled to peak 1 (``ValueError`` naming ``name`` when it is not
    a finite 2-D array with a positive maximum)."""
    a = np.asarray(array, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 3 or not np.all(np.isfinite(a)) or a.max() <= 0:
        raise ValueError(f"{name}: a PSF must be a finite 2-D array of at least 3x3 with a positive maximum")
    r0, c0 = np.unravel_index(int(np.argmax(a)), a.shape)
    radius = max(r0, c0, a.shape[0] - 1 - r0, a.shape[1] - 1 - c0)
    padded = np.zeros((2 * radius + 1, 2 * radius + 1))
    padded[radius - r0:radius - r0 + a.shape[0], radius - c0:radius - c0 + a.shape[1]] = a
    template = padded / a.max()
    return PSF("template", measured_width(template), template)


def measured_width(template: np.ndarray) -> float:
    """FWHM (pixels) of a centred template: twice the radius where its azimuthal mean
    first falls below one half (linear between integer radii)."""
    r = template.shape[0] // 2
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    radius = np.hypot(dx, dy).round().astype(int).ravel()
    means = np.bincount(radius, template.ravel()) / np.maximum(np.bincount(radius), 1)
    below = np.flatnonzero(means < 0.5)
    if not len(below) or below[0] == 0:
        return 2.0 * r
    i = below[0]
    frac = (means[i - 1] - 0.5) / max(means[i - 1] - means[i], 1e-12)
    return 2.0 * (i - 1 + frac)


def symmetric_template(values: np.ndarray, known: np.ndarray, fallback: PSF) -> PSF:
    """A point-symmetric template (``K(d) = K(-d)``, as a beamformer's far-field PSF)
    from ``(2R+1, 2R+1)`` ``values`` measured where ``known`` is true: the mean of a
    value and its mirror where both are known, either where one is, ``fallback``
    elsewhere; scaled to 1 at the centre."""
    mirrored, mirrored_known = values[::-1, ::-1], known[::-1, ::-1]
    both = known & mirrored_known
    out = np.where(both, 0.5 * (values + mirrored), np.where(known, values, mirrored))
    r = values.shape[0] // 2
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    out = np.where(known | mirrored_known, out, fallback(dx.astype(float), dy.astype(float)))
    centre = out[r, r]
    if not centre > 0:
        return fallback
    out = out / centre
    return replace(fallback, shape="template", width=measured_width(out), template=out)
