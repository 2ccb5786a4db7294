"""Which refinement family an image belongs to when nothing says (docs/design.md
section 5b, Family): a wave field, a point-spread (power) map, or nothing beyond the noise.

The test reads the image's profile around the network's points, model-free and in a few
milliseconds, before any fit:

* **tail ratio** of a point: the median of ``|v - background|`` over the annulus one
  to two main-lobe widths (FWHM) from it, the noise's share removed in quadrature, over
  the point's peak ``|v - background|`` (``background``: the image's median).  A 2-D
  wave keeps a large share of its amplitude there (a Hankel field decays as
  ``r^-1/2``: 0.2-0.4 of the peak for the damping of plates and membranes), and a wave
  image's interference does not cancel it over a whole annulus; a point-spread
  function is down to its sidelobes (a Gaussian to nothing, an Airy disc's first ring
  to 1.75 %, a beamformer's to its sidelobe level).
* **point-spread**: the median tail ratio over the points whose peak is at least
  ``MIN_PEAK_SNR`` noise std and whose annulus has 12 pixels in the image is below
  ``PSF_TAIL``;
* **nothing** (:func:`nothing_to_refine`, before the colormap is even identified): no
  network point, no support candidate, and the image's standard deviation (an RGB
  image's channel mean, a complex field's modulus) is at most ``ACCEPT_RATIO`` (the
  blind fit's "down to the noise") times its white-noise level (the wavelet estimate of
  the same values: a pointwise function of white noise is white): a constant explains
  it down to the noise.  The wavelet estimate assumes Gaussian noise, which a
  colormap's channels are not quite; where the channel mean fails, the colormap's
  inverse is tested too;
* **wave** otherwise, and always for a complex field (the point-spread family fits
  real power maps).

A raw map whose values are all non-positive is a map in dB (``10 log10`` of a power
relative to its maximum); its tail ratio is read on ``10^(v / 10)``.  A colormap
rendering of a dB map has no such sign, and its compressed profile reads as a wave:
such maps take the wave family unless ``family=psf`` is given.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from heatmaploc.physics.blind import ACCEPT_RATIO
from heatmaploc.physics.observation import wavelet_noise
from heatmaploc.physics.psffit import DB_GAMMA, is_db_map

PSF_TAIL = 0.06  # median tail ratio below which an image is a point-spread map
MIN_PEAK_SNR = 5.0  # a point's peak in noise std for its profile to count
REACH_PX = 24  # pixels around a point the profile is read over (main lobes up to 12 px FWHM)
MEDIAN_ABS_NOISE = 0.6745  # median of |N(0, 1)|


@dataclass(frozen=True)
class FamilyEvidence:
    """What the family test found.

    Attributes:
        family: ``wave``, ``psf`` or ``none`` (nothing beyond the noise).
        tail: median tail ratio over the points read (NaN: none was).
        points: how many points' profiles were read.
        reason: one line for ``Points.physics``.
    """

    family: str
    tail: float
    points: int
    reason: str

    def to_dict(self) -> dict:
        return {"family": self.family, "tail_ratio": None if math.isnan(self.tail) else round(self.tail, 6),
                "points_read": self.points, "reason": self.reason}


def tail_ratio(values: np.ndarray, noise: float, x: float, y: float, reach: int = REACH_PX) -> float | None:
    """The tail ratio (module docstring) of the point ``(x, y)`` (pixels, docs/design.md
    section 1) of the ``(H, W)`` map ``values`` minus its background, with noise std
    ``noise``; None when its peak is below ``MIN_PEAK_SNR`` noise std, its half maximum
    is not reached within ``reach`` / 4 px, or its annulus has fewer than 12 pixels in
    the image."""
    h, w = values.shape
    c, r = int(round(x)), int(round(y))
    r0, r1, c0, c1 = max(r - reach, 0), min(r + reach + 1, h), max(c - reach, 0), min(c + reach + 1, w)
    if r0 >= r1 or c0 >= c1:
        return None
    patch = np.abs(values[r0:r1, c0:c1])
    ys, xs = np.mgrid[r0:r1, c0:c1]
    distance = np.hypot(xs - x, ys - y)
    core = patch[distance <= 1.0]
    if not core.size or core.max() < MIN_PEAK_SNR * noise:
        return None
    peak = float(core.max())
    radii = np.arange(1, reach // 4 + 1)
    medians = np.asarray(ndimage.median(patch, labels=np.round(distance).astype(np.int64), index=radii))
    below = np.flatnonzero(medians < 0.5 * peak)  # rings of integer radius; an empty ring's NaN is never below
    if not len(below):
        return None
    half_width = float(radii[below[0]])
    annulus = patch[(distance >= 2 * half_width) & (distance <= 4 * half_width)]
    if annulus.size < 12:
        return None
    level = float(np.median(annulus))
    return math.sqrt(max(level**2 - (MEDIAN_ABS_NOISE * noise) ** 2, 0.0)) / peak


def nothing_to_refine(image: np.ndarray, xy: np.ndarray, candidates: np.ndarray | None = None
                      ) -> FamilyEvidence | None:
    """The family ``none`` (module docstring) of an image (``(H, W)`` raw or complex,
    or ``(H, W, 3)`` RGB, checked by :func:`heatmaploc.data.io.check_image`) with the
    network's ``(n, 2)`` points ``xy`` and ``(c, 2)`` support ``candidates``, or None
    when it has a point, a candidate or anything beyond the noise.  Read before any
    colormap inversion: an RGB image's channel mean is a pointwise function of the
    field, so white noise stays white in it."""
    if len(np.asarray(xy).reshape(-1, 2)) or (candidates is not None and len(candidates)):
        return None
    values = np.asarray(image)
    values = np.abs(values) if np.iscomplexobj(values) else values.astype(np.float64)
    if values.ndim == 3:
        values = values.mean(axis=2)
    values = values.reshape(values.shape[:2])
    ratio = float(np.std(values)) / max(wavelet_noise(values), np.finfo(float).tiny)
    if ratio > ACCEPT_RATIO:
        return None
    return FamilyEvidence("none", float("nan"), 0, f"no point, and the image's std is {ratio:.2f}x its white-noise "
                                                   f"level: nothing beyond the noise")


def choose_family(field: np.ndarray, noise: float, xy: np.ndarray, raw: bool = True) -> FamilyEvidence:
    """The family, ``wave`` or ``psf``, of the ``(H, W)`` ``field`` (an image's observed
    field: raw, complex, or a colormap's inverse; ``raw``: its values are the image's
    own numbers) with noise std ``noise``, read around the network's ``(n, 2)`` points
    ``xy`` (module docstring; :func:`nothing_to_refine` tells the family ``none``)."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if np.iscomplexobj(field):
        return FamilyEvidence("wave", float("nan"), 0, "a complex field")
    values = np.asarray(field, dtype=np.float64)
    if raw and is_db_map(values):  # its power
        power = 10.0 ** (values / 10.0)
        noise = noise * DB_GAMMA * float(np.median(power))  # the noise of a typical power value
        values = power
    values = values - float(np.median(values))
    tails = [t for x, y in xy if (t := tail_ratio(values, noise, x, y)) is not None]
    if not tails:
        return FamilyEvidence("wave", float("nan"), 0, "no point's profile could be read")
    tail = float(np.median(tails))
    if tail < PSF_TAIL:
        return FamilyEvidence("psf", tail, len(tails), f"median tail ratio {tail:.3f} < {PSF_TAIL} over "
                                                       f"{len(tails)} point(s): a point-spread map")
    return FamilyEvidence("wave", tail, len(tails), f"median tail ratio {tail:.3f} >= {PSF_TAIL} over "
                                                    f"{len(tails)} point(s)")
