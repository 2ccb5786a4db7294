"""Augmentations that move points with pixels.

Images are ``(C, H, W)`` float32 in [0, 1] (after :func:`to_unit_range`); points are
``(N, 2)`` ``(x, y)`` pixels with pixel centres at integers, so a horizontal flip maps
``x -> W - 1 - x`` and ``np.rot90`` (counter-clockwise) maps ``(x, y) -> (y, W - 1 - x)``.
All randomness comes from the ``numpy.random.Generator`` passed in.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def hflip(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = image.shape[-1]
    return image[..., ::-1], np.column_stack([w - 1 - points[:, 0], points[:, 1]])


def vflip(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = image.shape[-2]
    return image[..., ::-1, :], np.column_stack([points[:, 0], h - 1 - points[:, 1]])


def rot90(image: np.ndarray, points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rotate by ``k`` quarter turns counter-clockwise (as ``np.rot90`` on ``(H, W)``)."""
    for _ in range(k % 4):
        w = image.shape[-1]
        image = np.rot90(image, 1, axes=(-2, -1))
        points = np.column_stack([points[:, 1], w - 1 - points[:, 0]])
    return image, points


def crop(image: np.ndarray, points: np.ndarray, labels: np.ndarray, top: int, left: int, size: tuple[int, int]):
    """Crop ``size=(h, w)`` at ``(top, left)``; regions outside the image are zero.

    Points are shifted and those outside the crop are dropped.
    """
    c, h, w = image.shape
    ch, cw = size
    out = np.zeros((c, ch, cw), dtype=image.dtype)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + ch, h), min(left + cw, w)
    if y1 > y0 and x1 > x0:
        out[:, y0 - top : y1 - top, x0 - left : x1 - left] = image[:, y0:y1, x0:x1]
    moved = points - np.array([left, top], dtype=np.float64)
    keep = (moved[:, 0] >= -0.5) & (moved[:, 0] < cw - 0.5) & (moved[:, 1] >= -0.5) & (moved[:, 1] < ch - 0.5)
    return out, moved[keep], labels[keep]


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations to apply (training only).

    Attributes:
        flips: random horizontal and vertical flips.
        rot90: random quarter turns (square crops keep their size).
        crop_size: ``(h, w)`` random crop (zero-padded if the image is smaller);
            ``None`` keeps the full image.
        point_crop: probability that a crop is placed around a source instead of
            anywhere: one of the image's points is drawn and the crop's corner is uniform
            over the positions that keep that point at least ``point_crop_margin`` pixels
            inside.  For images whose sources fill a small part of the frame (the seed
            protocol: a 20-pixel box in a 400-pixel image) uniform crops are almost all
            empty.  Images without points are cropped uniformly.
        point_crop_margin: see ``point_crop``.
        contrast: max relative contrast change around the image mean.
        brightness: max additive brightness change.
        gamma: max relative change of a gamma curve.
        noise_std: max std of added Gaussian noise (uniform in ``[0, noise_std]``).
    """

    flips: bool = True
    rot90: bool = True
    crop_size: tuple[int, int] | None = None
    point_crop: float = 0.0
    point_crop_margin: int = 8
    contrast: float = 0.2
    brightness: float = 0.1
    gamma: float = 0.2
    noise_std: float = 0.03

    def __post_init__(self) -> None:
        if not 0.0 <= self.point_crop <= 1.0:
            raise ValueError(f"point_crop is a probability in [0, 1], got {self.point_crop}")
        if self.point_crop_margin < 0:
            raise ValueError(f"point_crop_margin must be >= 0, got {self.point_crop_margin}")


def crop_corner(extent: int, size: int, rng: np.random.Generator, around: float | None = None, margin: int = 0) -> int:
    """The first row (or column) of a crop of ``size`` along an image axis of ``extent``
    pixels: uniform over the crops inside the image (0 when ``size >= extent``), or, with
    ``around`` (a point's coordinate), uniform over those that also keep ``around`` at
    least ``margin`` pixels from the crop's edges (as far as the image allows)."""
    lo, hi = 0, max(extent - size, 0)
    if around is not None:
        margin = min(margin, (size - 1) // 2)
        lo = max(lo, int(np.ceil(around + margin - (size - 1))))
        hi = min(hi, int(np.floor(around - margin)))
        if hi < lo:  # the point is nearer the border than the margin: nearest valid corner
            return int(np.clip(round(around - (size - 1) / 2), 0, max(extent - size, 0)))
    return lo if hi <= lo else int(rng.integers(lo, hi + 1))


def augment(image: np.ndarray, points: np.ndarray, labels: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator):
    """Apply ``cfg`` to ``(C, H, W)`` image and ``(N, 2)`` points; returns all three."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if cfg.crop_size is not None:
        ch, cw = cfg.crop_size
        _, h, w = image.shape
        around = (None, None)
        if cfg.point_crop > 0 and len(points) and rng.random() < cfg.point_crop:
            around = tuple(points[int(rng.integers(0, len(points)))])
        top = crop_corner(h, ch, rng, around[1], cfg.point_crop_margin)
        left = crop_corner(w, cw, rng, around[0], cfg.point_crop_margin)
        image, points, labels = crop(image, points, labels, top, left, (ch, cw))
    if cfg.flips and rng.random() < 0.5:
        image, points = hflip(image, points)
    if cfg.flips and rng.random() < 0.5:
        image, points = vflip(image, points)
    if cfg.rot90 and image.shape[-1] == image.shape[-2]:
        image, points = rot90(image, points, int(rng.integers(0, 4)))
    image = np.ascontiguousarray(image, dtype=np.float32)
    if cfg.gamma > 0:
        image = np.power(np.clip(image, 0.0, 1.0), np.float32(np.exp(rng.uniform(-cfg.gamma, cfg.gamma))))
    if cfg.contrast > 0 or cfg.brightness > 0:
        mean = image.mean()
        factor = 1.0 + rng.uniform(-cfg.contrast, cfg.contrast)
        image = (image - mean) * np.float32(factor) + mean + np.float32(rng.uniform(-cfg.brightness, cfg.brightness))
    if cfg.noise_std > 0:
        image = image + rng.normal(0.0, rng.uniform(0.0, cfg.noise_std), size=image.shape).astype(np.float32)
    return np.clip(image, 0.0, 1.0).astype(np.float32), points, labels
