"""Noise and the choice of rendering of a simulated field (the colormap and the 8-bit
quantization are :mod:`heatmaploc.physics.colormap`'s)."""
from __future__ import annotations

import numpy as np

RENDERINGS = ("raw", "colormap")  # a float .npy of the field, or an RGB PNG of it


def noise_std_for_snr(image: np.ndarray, snr_db: float) -> float:
    """Noise std giving ``std(image) / noise_std = 10^(snr_db / 20)``."""
    return float(np.std(image)) / (10.0 ** (snr_db / 20.0))


def add_noise(image: np.ndarray, std: float, rng: np.random.Generator, clip: bool) -> np.ndarray:
    """Additive white Gaussian noise; ``clip`` keeps a [0, 1] rendering in range."""
    noisy = image + rng.normal(0.0, std, size=image.shape) if std > 0 else image.copy()
    return np.clip(noisy, 0.0, 1.0) if clip else noisy


def draw_rendering(renderings: tuple[str, ...], raw_fraction: float, rng: np.random.Generator) -> str:
    """``raw`` or ``colormap``: drawn (``raw`` with probability ``raw_fraction``) when
    both are allowed, otherwise the one allowed (no draw)."""
    if len(renderings) == 2:
        return "raw" if rng.random() < raw_fraction else "colormap"
    return renderings[0]
