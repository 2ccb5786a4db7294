"""Classical baseline: Gaussian filter + ``skimage.feature.peak_local_max``.

The image is brought to [0, 1] gray (the package's preprocessing rule), smoothed, and
its deviation from the median, ``|g - median(g)|``, is searched for peaks: sources are
extrema of both amplitude maps and snapshots.  Parameters are tuned on a labelled
training split by grid search on F1.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.feature import peak_local_max

from heatmaploc.data.preprocess import to_unit_range
from heatmaploc.metrics import HEADLINE_RADIUS, point_metrics
from heatmaploc.points import Points


@dataclass(frozen=True)
class ClassicalDetector:
    sigma: float = 1.5
    threshold_rel: float = 0.5
    min_distance: int = 3

    def feature(self, image: np.ndarray) -> np.ndarray:
        gray = to_unit_range(image, 1)[0].astype(np.float64)
        smooth = gaussian_filter(gray, self.sigma)
        return np.abs(smooth - np.median(smooth))

    def detect(self, image: np.ndarray) -> Points:
        """``(N, 2)`` ``(x, y)`` integer peak positions with their feature values."""
        feat = self.feature(image)
        peaks = peak_local_max(feat, min_distance=self.min_distance, threshold_rel=self.threshold_rel, exclude_border=False)
        xy = peaks[:, ::-1].astype(np.float64)
        scores = feat[peaks[:, 0], peaks[:, 1]] / max(float(feat.max()), 1e-12) if len(peaks) else np.zeros(0)
        return Points(xy, scores)


def tune_classical(images: Sequence[np.ndarray], truths: Sequence[np.ndarray], radius: float = HEADLINE_RADIUS,
                   sigmas: Sequence[float] = (0.8, 1.5, 2.5, 4.0), thresholds: Sequence[float] = (0.2, 0.35, 0.5, 0.65, 0.8),
                   min_distances: Sequence[int] = (2, 4, 8)) -> tuple[ClassicalDetector, float]:
    """Grid search maximizing pooled F1 at ``radius``; returns the best detector and F1."""
    best, best_f1 = ClassicalDetector(), -1.0
    for s, t, m in itertools.product(sigmas, thresholds, min_distances):
        det = ClassicalDetector(s, t, m)
        f1 = point_metrics([det.detect(im).xy for im in images], truths, radius).f1
        if f1 > best_f1:
            best, best_f1 = det, f1
    return best, best_f1


@dataclass(frozen=True)
class TrackpyDetector:
    """``trackpy.locate`` (Crocker-Grier, sub-pixel centroids) on the same feature map
    as :class:`ClassicalDetector`; features keep ``mass >= mass_rel * max mass``.
    Needs the optional ``trackpy`` extra."""

    diameter: int = 7
    mass_rel: float = 0.5
    sigma: float = 1.0

    def detect(self, image: np.ndarray) -> Points:
        import warnings

        import trackpy

        trackpy.quiet()
        feat = ClassicalDetector(sigma=self.sigma).feature(image)
        with warnings.catch_warnings():  # trackpy's pandas deprecations; "no maxima" is handled below
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            found = trackpy.locate(feat / max(float(feat.max()), 1e-12) * 255.0, self.diameter, minmass=0, preprocess=False)
        if len(found) == 0:
            return Points(np.zeros((0, 2)))
        mass = found["mass"].to_numpy()
        keep = mass >= self.mass_rel * mass.max()
        return Points(found[["x", "y"]].to_numpy()[keep], mass[keep] / mass.max())


def tune_trackpy(images: Sequence[np.ndarray], truths: Sequence[np.ndarray], radius: float = HEADLINE_RADIUS,
                 diameters: Sequence[int] = (5, 9, 13), mass_rels: Sequence[float] = (0.2, 0.35, 0.5, 0.65, 0.8)) -> tuple[TrackpyDetector, float]:
    """Grid search of :class:`TrackpyDetector` maximizing pooled F1 at ``radius``."""
    best, best_f1 = TrackpyDetector(), -1.0
    for d, m in itertools.product(diameters, mass_rels):
        det = TrackpyDetector(d, m)
        f1 = point_metrics([det.detect(im).xy for im in images], truths, radius).f1
        if f1 > best_f1:
            best, best_f1 = det, f1
    return best, best_f1
