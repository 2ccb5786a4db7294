"""Where the local refinement fits: one window per group of interacting sources
(:func:`window_layout`; the rules are in :mod:`heatmaploc.physics.local`).  Pixel
ranges are ``(start, stop)`` with stop exclusive; points are ``(x, y)`` pixels
(docs/design.md section 1)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

WINDOW_WAVELENGTHS = 1.0  # window radius around each source: the local model and the decisions
MIN_RADIUS_PX = 6.0
GROUP_WAVELENGTHS = 1.0  # sources closer than this share a window
NEIGHBOUR_WAVELENGTHS = 2.5  # other sources this close to a window are modelled in it


@dataclass(frozen=True)
class Window:
    """One window of :func:`window_layout`.

    Attributes:
        members: ``(k,)`` indices of the sources this window reports.
        neighbours: ``(l,)`` indices of the other sources within ``NEIGHBOUR_WAVELENGTHS``
            of it: modelled, not reported.
        rows, cols: ``(start, stop)`` pixel ranges of the window (stop exclusive).
    """

    members: np.ndarray
    neighbours: np.ndarray
    rows: tuple[int, int]
    cols: tuple[int, int]

    @property
    def centre(self) -> tuple[float, float]:
        """``(x, y)`` centre of the window (the plane waves' phase origin)."""
        return 0.5 * (self.cols[0] + self.cols[1] - 1), 0.5 * (self.rows[0] + self.rows[1] - 1)

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """``(n,)`` bool: which ``(x, y)`` lie on the window's pixels."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return ((xy[:, 0] >= self.cols[0] - 0.5) & (xy[:, 0] <= self.cols[1] - 0.5)
                & (xy[:, 1] >= self.rows[0] - 0.5) & (xy[:, 1] <= self.rows[1] - 0.5))


def window_radius(wavelength: float) -> float:
    """Pixels around a source that its window covers."""
    return max(MIN_RADIUS_PX, WINDOW_WAVELENGTHS * wavelength)


def box(xy: np.ndarray, radius: float, shape: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(rows, cols)`` ``(start, stop)`` pixel ranges of the bounding box of ``xy (n, 2)``
    grown by ``radius`` pixels and clipped to an ``(H, W)`` image."""
    h, w = shape
    lo = np.floor(xy.min(axis=0) - radius).astype(int)
    hi = np.ceil(xy.max(axis=0) + radius).astype(int) + 1
    return (max(0, lo[1]), min(h, hi[1])), (max(0, lo[0]), min(w, hi[0]))


def box_distance(xy: np.ndarray, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """``(n,)`` distance (pixels) of each ``(x, y)`` from the box of pixels ``rows`` x ``cols``."""
    lo = np.array([cols[0] - 0.5, rows[0] - 0.5])
    hi = np.array([cols[1] - 0.5, rows[1] - 0.5])
    return np.linalg.norm(np.maximum(0.0, np.maximum(lo - xy, xy - hi)), axis=1)


def window_layout(xy: np.ndarray, shape: tuple[int, int], wavelength: float) -> list[Window]:
    """Windows of the ``(n, 2)`` sources ``xy`` on an ``(H, W)`` image: one per group of
    sources closer than ``GROUP_WAVELENGTHS * wavelength`` (connected components), each
    the bounding box of its group grown by :func:`window_radius` and clipped to the
    image.  Every source is a member of exactly one window."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    n = len(xy)
    if n == 0:
        return []
    pairs = cKDTree(xy).query_pairs(GROUP_WAVELENGTHS * wavelength, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)) if len(pairs) else \
        coo_matrix((n, n))
    _, labels = connected_components(graph, directed=False)
    radius = window_radius(wavelength)
    windows = []
    for group in range(labels.max() + 1):
        members = np.flatnonzero(labels == group)
        rows, cols = box(xy[members], radius, shape)
        near = box_distance(xy, rows, cols) <= NEIGHBOUR_WAVELENGTHS * wavelength
        windows.append(Window(members, np.flatnonzero(near & (labels != group)), rows, cols))
    return windows
