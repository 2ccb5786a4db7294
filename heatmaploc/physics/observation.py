"""An image as the refinement sees it: the field (raw, complex, or an RGB rendering
mapped back through its colormap), its per-pixel noise estimated without a model, the
field at unit scale with its weights, and which points lie in the view (docs/design.md
section 1 coordinates)."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from skimage.restoration import estimate_sigma

from heatmaploc.data.io import channels_of
from heatmaploc.physics.colormap import identify_colormap, invert_colormap, noisy_inversion, rgb_colours, rgb_noise_std


def observed_field(arr: np.ndarray, name: str, known: Mapping) -> tuple[np.ndarray, str | None, np.ndarray]:
    """``(H, W)`` float64 field of an image already through :func:`~heatmaploc.data.io.check_image`
    (complex128 for a complex image), its colormap (None: raw) and the ``(H, W)`` noise
    std of each pixel of the field (of each of its real and imaginary parts), estimated
    without a model: the wavelet noise level of a raw field, or that of the RGB channels
    carried through the colormap's inverse, whose noise bias is undone
    (:func:`~heatmaploc.physics.colormap.noisy_inversion`)."""
    if np.iscomplexobj(arr):
        if known.get("colormap") is not None:
            raise ValueError(f"{name}: colormap {known['colormap']!r} given, but the image is a complex field")
        field = arr.reshape(arr.shape[:2]).astype(np.complex128)
        return field, None, np.full(field.shape, wavelet_noise(field))
    if channels_of(arr) == 1:
        if known.get("colormap") is not None:
            raise ValueError(f"{name}: colormap {known['colormap']!r} given, but the image has one channel")
        field = arr.reshape(arr.shape[:2]).astype(np.float64)
        return field, None, np.full(field.shape, wavelet_noise(field))
    rgb = rgb_colours(arr, name)
    colormap = known.get("colormap")
    if colormap is None:
        colormap, _ = identify_colormap(rgb)
    rgb_noise = rgb_noise_std(rgb)
    if not np.isfinite(rgb_noise):  # every block clipped somewhere: the unmasked estimate
        rgb_noise = float(estimate_sigma(rgb, channel_axis=-1, average_sigmas=True))
    field, noise = noisy_inversion(invert_colormap(rgb, colormap), colormap, rgb_noise)
    return field, colormap, noise


def wavelet_noise(values: np.ndarray) -> float:
    """White-noise std of an ``(H, W)`` real or complex array from its finest wavelet
    details (``skimage.restoration.estimate_sigma``), blind to smooth structure; for a
    complex array the std of each real data value (both parts pooled)."""
    if np.iscomplexobj(values):
        return math.sqrt(0.5 * (float(estimate_sigma(values.real)) ** 2 + float(estimate_sigma(values.imag)) ** 2))
    return float(estimate_sigma(values))


def in_view(xy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(n,)`` bool: which ``(x, y)`` lie on an ``(H, W)`` image (docs/design.md section 1:
    ``-0.5 <= x <= W - 0.5``, the same for ``y``); the others model sources outside the view."""
    h, w = shape
    return np.all((xy >= -0.5) & (xy <= np.array([w - 0.5, h - 0.5])), axis=1)


def unit_scale(field: np.ndarray, noise_map: np.ndarray) -> tuple[np.ndarray, np.ndarray, Any, float, float]:
    """``(field at unit scale, weights, offset, scale, noise)`` of an ``(H, W)`` field and
    its noise map: ``(field - offset) / scale`` (the fits' tolerances assume unit scale),
    weights that put residuals in units of the noise (1 is "down to the noise"), and the
    median noise std; a noiseless field gets a noise of ``1e-6`` of its std, so any
    mismatch shows."""
    noise = float(np.median(noise_map))
    if not noise > 0:
        noise_map = np.full(field.shape, 1e-6 * float(np.std(field)))
        noise = float(noise_map[0, 0])
    offset, scale = field.mean(), float(np.std(field))
    return (field - offset) / scale, scale / noise_map, offset, scale, noise
