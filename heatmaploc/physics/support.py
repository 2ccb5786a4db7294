"""Where the network's heatmap supports a source that the physics refinement adds.

The refinement adds a source only where the image supports it independently of the
model (docs/design.md section 5b): the network's heatmap shows something there.  The
caller hands over a :class:`Support` per image
(:func:`heatmaploc.inference.support_candidates`), or just its peaks as an ``(c, 2)``
array:

* ``peaks``: heatmap peaks above ``SUPPORT_SHARE`` of the detection threshold, which
  the local and point-spread paths try as sources of their own;
* ``trace``: where the heatmap reaches ``TRACE_SHARE`` of the threshold.  An addition
  of the image-wide fit far from every network point needs a trace within
  ``TRACE_RADIUS_PX``.  Measured with the shipped model at d4 (threshold 0.2) on 200
  test500 images: every source the image-wide fit rightly added had heatmap values of
  at least 0.13 of the threshold within 2 px (a faint source often shows only as the
  skewed tail of a strong neighbour's peak, so a trace is a value, not a peak); its
  additions in empty regions of heterogeneous and orthotropic media (50 images each),
  at most 0.042.

A peak enters the local path's windows only near an in-view source of the image-wide
fit (:func:`peaks_near`; that fit is not accepted as a whole, but its count search put
a source there too): in a single snapshot a standing-wave antinode of reflections looks
like a source to a window, while the image-wide fit explains it by sources beyond the
edges.  Measured on the 50 images of the reflecting-edges mismatch suite: of 12 local
additions, the one at a true source lay 0.96 px from a source of the image-wide fit,
10 of the 11 others 4.4-47 px from every one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

SUPPORT_SHARE = 0.5  # share of the detection threshold: a heatmap peak a window may add as a source
TRACE_SHARE = 0.07  # share of the detection threshold: a trace (between the measured 0.04 and 0.13, module docstring)
TRACE_RADIUS_PX = 2  # half-width of the box around an addition searched for a trace


@dataclass(frozen=True)
class Support:
    """One image's support: ``peaks`` ``(c, 2)`` ``(x, y)`` pixels (docs/design.md
    section 1) and ``trace`` ``(H, W)`` bool, or None where the caller has no heatmap
    (a point model): then no addition needs a trace."""

    peaks: np.ndarray
    trace: np.ndarray | None = None

    def traced(self, xy: np.ndarray) -> bool:
        """Whether the trace reaches the box of half-width ``TRACE_RADIUS_PX`` around
        ``xy (2,)`` (true without a trace map)."""
        if self.trace is None:
            return True
        h, w = self.trace.shape
        col, row = int(round(float(xy[0]))), int(round(float(xy[1])))
        rows = slice(max(row - TRACE_RADIUS_PX, 0), max(min(row + TRACE_RADIUS_PX + 1, h), 0))
        cols = slice(max(col - TRACE_RADIUS_PX, 0), max(min(col + TRACE_RADIUS_PX + 1, w), 0))
        return bool(self.trace[rows, cols].any())


def as_support(candidates: "Support | np.ndarray | None") -> Support | None:
    """A :class:`Support` of ``candidates`` (an ``(c, 2)`` array: its peaks, no trace
    map); None stays None (add wherever the model asks)."""
    if candidates is None or isinstance(candidates, Support):
        return candidates
    peaks = np.asarray(candidates, dtype=np.float64)
    if peaks.size and (peaks.ndim != 2 or peaks.shape[1] != 2):
        raise ValueError(f"support candidates are (c, 2) rows of (x, y), got shape {peaks.shape}")
    return Support(peaks.reshape(-1, 2))


def support_peaks(candidates: "Support | np.ndarray | None") -> np.ndarray | None:
    """``(c, 2)`` peaks of ``candidates`` (None: None)."""
    support = as_support(candidates)
    return None if support is None else support.peaks


def within_reach(xy: np.ndarray, sources: np.ndarray, reach: float) -> np.ndarray:
    """``(n,)`` bool: which rows of ``xy (n, 2)`` lie within ``reach`` pixels of one of
    ``sources (m, 2)`` (none when there is no source)."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    sources = np.asarray(sources, dtype=np.float64).reshape(-1, 2)
    if not len(xy) or not len(sources):
        return np.zeros(len(xy), bool)
    return cKDTree(sources).query(xy, k=1)[0] <= reach


def peaks_near(peaks: np.ndarray | None, sources: np.ndarray, reach: float) -> np.ndarray | None:
    """The rows of ``peaks (c, 2)`` within ``reach`` pixels of one of ``sources (m, 2)``,
    in order (none when there is no source); None stays None."""
    if peaks is None:
        return None
    peaks = np.asarray(peaks, dtype=np.float64).reshape(-1, 2)
    return peaks[within_reach(peaks, sources, reach)]
