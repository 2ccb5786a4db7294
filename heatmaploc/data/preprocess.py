"""The one image normalization used in training and inference.

Rule (documented for users):

1. Intensity to [0, 1]: uint8 / 255, uint16 / 65535; any other dtype (float, other
   integers) is min-max scaled over the whole image (a constant image becomes 0.5); a
   complex field is its amplitude ``|u|``, min-max scaled.
2. Channels to the model's ``in_channels``: RGBA drops alpha; gray -> RGB replicates
   the channel; RGB -> gray uses luminance ``0.299 R + 0.587 G + 0.114 B``.
3. ``normalize``: ``(x - 0.5) / 0.25`` (applied after augmentation).
"""
from __future__ import annotations

import numpy as np

from heatmaploc.data.io import check_image

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
MEAN, STD = 0.5, 0.25


def intensity_bounds(image: np.ndarray) -> tuple[float, float] | None:
    """The ``(lo, hi)`` that rule 1 maps to [0, 1] for a float (or non-8/16-bit
    integer) image: its minimum and maximum; ``None`` for uint8 and uint16, whose range
    is their dtype's.  Lets a part of an image (a tile) be scaled as the whole is."""
    if image.dtype in (np.uint8, np.uint16):
        return None
    values = np.abs(image) if np.iscomplexobj(image) else image
    return float(values.min()), float(values.max())


def to_unit_range(image: np.ndarray, in_channels: int, source: str = "image",
                  bounds: tuple[float, float] | None = None) -> np.ndarray:
    """``(H, W)`` / ``(H, W, C)`` image -> ``(in_channels, H, W)`` float32 in [0, 1];
    ``bounds``: the :func:`intensity_bounds` of the whole image when ``image`` is a
    part of it (default: its own)."""
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
    image = check_image(image, source)
    if np.iscomplexobj(image):
        image = np.abs(image)  # the network sees the amplitude; the physics fit the complex field
    if image.dtype == np.uint8:
        x = image.astype(np.float32) / 255.0
    elif image.dtype == np.uint16:
        x = image.astype(np.float32) / 65535.0
    else:
        x = image.astype(np.float64)
        lo, hi = intensity_bounds(x) if bounds is None else bounds
        x = ((x - lo) / (hi - lo) if hi > lo else np.full_like(x, 0.5)).astype(np.float32)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.shape[2] == 4:
        x = x[:, :, :3]
    if x.shape[2] == 1 and in_channels == 3:
        x = np.repeat(x, 3, axis=2)
    elif x.shape[2] == 3 and in_channels == 1:
        x = (x @ LUMA)[:, :, None]
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def normalize(x: np.ndarray) -> np.ndarray:
    """[0, 1] -> network input scale."""
    return (x - MEAN) / STD
