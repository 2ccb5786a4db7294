"""Colormap rendering of a field and its inverse (RGB back to the field): how an
instrument's RGB export relates to the field it shows."""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree



def to_uint8(image: np.ndarray) -> np.ndarray:
    """Quantize a [0, 1] image to 8 bits (what a PNG stores)."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)

def minmax(field: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant field maps to 0.5."""
    lo, hi = float(np.min(field)), float(np.max(field))
    if hi - lo <= 0:
        return np.full(field.shape, 0.5)
    return (field - lo) / (hi - lo)


def get_colormap(name: str):
    """The matplotlib colormap ``name`` (``ValueError`` naming it if unknown); matplotlib
    is imported here, on first use, so importing the physics stays light."""
    from matplotlib import colormaps

    try:
        return colormaps[name]
    except KeyError:
        raise ValueError(f"unknown matplotlib colormap {name!r}") from None


def rgb_colours(image: np.ndarray, name: str, purpose: str = "") -> np.ndarray:
    """``(H, W, 3)`` float64 colours in [0, 1] of a checked ``(H, W, 3|4)`` image: uint8
    / 255, uint16 / 65535; floats must already be colours in [0, 1] (rescaling them would
    change the colours); alpha is dropped.  ``name`` and ``purpose`` (e.g. " for a
    colormap field fit") go into the error message."""
    from heatmaploc.data.preprocess import to_unit_range

    if image.dtype.kind == "f":
        if image.min() < 0 or image.max() > 1:
            raise ValueError(f"{name}: float RGB values must lie in [0, 1]{purpose}, "
                             f"got [{image.min():g}, {image.max():g}]")
        return image[..., :3].astype(np.float64)
    return to_unit_range(image, 3, name).transpose(1, 2, 0)


def apply_colormap(field: np.ndarray, name: str) -> np.ndarray:
    """``(H, W)`` field -> ``(H, W, 3)`` float64 RGB in [0, 1] via min-max + colormap."""
    return np.asarray(get_colormap(name)(minmax(field))[..., :3], dtype=np.float64)


# the simulator's colormaps first, then other common sequential and diverging ones
# (cyclic colormaps revisit colours and cannot be inverted)
COLORMAP_CANDIDATES = ("jet", "turbo", "gray", "hot", "coolwarm", "seismic", "viridis", "plasma", "inferno", "magma",
                       "cividis", "bwr", "RdBu_r")


def _lookup(name: str) -> tuple[np.ndarray, cKDTree]:
    cmap = get_colormap(name)
    lut = np.asarray(cmap(np.arange(cmap.N))[:, :3], dtype=np.float64)
    return lut, cKDTree(lut)


def identify_colormap(rgb: np.ndarray, candidates=COLORMAP_CANDIDATES) -> tuple[str, float]:
    """The colormap among ``candidates`` whose colour curve the ``(H, W, 3)`` RGB
    pixels (in [0, 1]) lie nearest to, by the mean squared RGB distance of a pixel to
    the curve, and that distance.  The mean, not a median: where one colormap's curve
    extends another's (``seismic`` adds dark ends to ``bwr``), only the few pixels at
    the field's extremes tell them apart."""
    pixels = np.asarray(rgb, dtype=np.float64).reshape(-1, 3)
    if len(pixels) > 5000:  # a fixed subsample is plenty to tell colour curves apart
        pixels = pixels[np.linspace(0, len(pixels) - 1, 5000).astype(np.int64)]
    best = ("", np.inf)
    for name in candidates:
        dist, _ = _lookup(name)[1].query(pixels)
        score = float(np.mean(dist**2))
        if score < best[1]:
            best = (name, score)
    return best


def invert_colormap(rgb: np.ndarray, name: str) -> np.ndarray:
    """``(H, W, 3)`` RGB in [0, 1] -> ``(H, W)`` float64 in [0, 1]: for each pixel the
    centre of the colormap entry (of the ``N`` that ``name`` holds) nearest in RGB.
    Up to noise, the inverse of :func:`apply_colormap` within half an entry
    (``0.5 / N``) for colormaps that do not revisit a colour (not the cyclic ones)."""
    lut, tree = _lookup(name)
    _, nearest = tree.query(np.asarray(rgb, dtype=np.float64).reshape(-1, 3))
    return ((nearest + 0.5) / len(lut)).reshape(np.shape(rgb)[:2])


def noisy_inversion(values: np.ndarray, name: str, rgb_noise_std: float, samples: int = 64,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Undo the bias of :func:`invert_colormap` under noise, and say how noisy each value is.

    A rendering with white RGB noise of std ``rgb_noise_std``, clipped to [0, 1] and
    quantized to 8 bits (what an exported PNG holds), inverts to values that are
    biased and heavy-tailed where the colour curve bends or a channel saturates.  The
    inversion is simulated from every entry of the colormap (``samples`` noise draws
    each, a fixed seed); for each inverted entry the mean and the spread of the true
    values that led to it (a flat prior over the entries) replace the observed
    ``values`` and give their noise std.  Returns ``(values, noise_std)`` of the shape
    of ``values``."""
    lut, tree = _lookup(name)
    n = len(lut)
    centres = (np.arange(n) + 0.5) / n
    rng = np.random.default_rng(seed)
    noisy = lut[:, None, :] + rng.normal(0.0, rgb_noise_std, size=(n, samples, 3))
    noisy = to_uint8(noisy) / 255.0
    _, observed = tree.query(noisy.reshape(-1, 3))
    truth = np.repeat(centres, samples)
    hits = np.bincount(observed, minlength=n).astype(np.float64)
    mean = np.bincount(observed, truth, minlength=n) / np.maximum(hits, 1)
    second = np.bincount(observed, truth**2, minlength=n) / np.maximum(hits, 1)
    spread = np.sqrt(np.maximum(second - mean**2, 0.0) + 1.0 / (12.0 * n * n))
    seen = hits > 0
    mean = np.interp(centres, centres[seen], mean[seen])  # entries noise never lands on: from their neighbours
    spread = np.interp(centres, centres[seen], spread[seen])
    index = np.clip(np.round(np.asarray(values, dtype=np.float64) * n - 0.5).astype(np.int64), 0, n - 1)
    return mean[index], spread[index]


def rgb_noise_std(rgb: np.ndarray) -> float:
    """White-noise std of an ``(H, W, 3)`` rendering in [0, 1]: the median absolute
    deviation / 0.6745 of each channel filtered by the separable second difference
    ``[1, -2, 1] x [1, -2, 1]`` (blind to the smooth field, noise gain 6), over the
    3x3 neighbourhoods that no clipping at 0 or 1 touched: saturated regions carry no
    noise and would bias the estimate low.  NaN when no neighbourhood is left."""
    from scipy.ndimage import convolve, minimum_filter

    values = np.asarray(rgb, dtype=np.float64)[..., :3]
    second = np.array([1.0, -2.0, 1.0])
    kernel = np.outer(second, second)
    eps = 0.5 / 255.0
    details = []
    for c in range(3):
        channel = values[..., c]
        detail = convolve(channel, kernel, mode="nearest")[1:-1, 1:-1]
        free = minimum_filter(((channel > eps) & (channel < 1.0 - eps)).astype(np.uint8), size=3)[1:-1, 1:-1] > 0
        details.append(detail[free])
    pooled = np.concatenate(details)
    if len(pooled) == 0:
        return float("nan")
    return float(np.median(np.abs(pooled)) / 0.6745 / 6.0)
