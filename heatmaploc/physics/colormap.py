"""Colormap rendering of a field and its inverse (RGB back to the field): how an
instrument's RGB export relates to the field it shows."""
from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from scipy.spatial import cKDTree


def minmax(field: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant field maps to 0.5."""
    lo, hi = float(np.min(field)), float(np.max(field))
    if hi - lo <= 0:
        return np.full(field.shape, 0.5)
    return (field - lo) / (hi - lo)


def get_colormap(name: str):
    """The matplotlib colormap ``name`` (``ValueError`` naming it if unknown)."""
    try:
        return colormaps[name]
    except KeyError:
        raise ValueError(f"unknown matplotlib colormap {name!r}") from None


def apply_colormap(field: np.ndarray, name: str) -> np.ndarray:
    """``(H, W)`` field -> ``(H, W, 3)`` float64 RGB in [0, 1] via min-max + colormap."""
    return np.asarray(get_colormap(name)(minmax(field))[..., :3], dtype=np.float64)


def invert_colormap(rgb: np.ndarray, name: str) -> np.ndarray:
    """``(H, W, 3)`` RGB in [0, 1] -> ``(H, W)`` float64 in [0, 1]: for each pixel the
    centre of the colormap entry (of the ``N`` that ``name`` holds) nearest in RGB.
    Up to noise, the inverse of :func:`apply_colormap` within half an entry
    (``0.5 / N``) for colormaps that do not revisit a colour (not the cyclic ones)."""
    cmap = get_colormap(name)
    lut = np.asarray(cmap(np.arange(cmap.N))[:, :3], dtype=np.float64)
    _, nearest = cKDTree(lut).query(np.asarray(rgb, dtype=np.float64).reshape(-1, 3))
    return ((nearest + 0.5) / cmap.N).reshape(np.shape(rgb)[:2])
