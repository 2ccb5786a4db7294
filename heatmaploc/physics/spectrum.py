"""Wavelength candidates of a wave image from its radial power spectrum, and the
wavelength a snapshot's profile RSS picks among them.

The snapshot of a point source, ``Re(q G(k r))``, has a 2-D Fourier transform that
peaks on the ring ``|kappa| = Re(k)``; a sum of sources keeps the ring.  The radial
average of the windowed, zero-padded power spectrum therefore peaks at the wave's
spatial frequency ``1 / wavelength``; its strongest local maxima are the candidates a
fit then refines.  An amplitude map ``|u|`` has no such ring, and a wavelength longer
than about half the image leaves no resolved peak: the caller scans those cases.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks

from heatmaploc.physics.wavelinear import linear_rss

PAD = 4  # zero-padding factor: frequency bins of 1 / (PAD * size) cycles per pixel


def radial_power_spectrum(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(frequencies, power)``: the radial mean of ``|FFT|^2`` of the Hann-windowed,
    mean-removed ``(H, W)`` field (real or complex), in bins of ``1 / (PAD * max(H, W))``
    cycles/pixel up to the Nyquist frequency 0.5."""
    h, w = field.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    values = (field - field.mean()) * window
    size = PAD * max(h, w)
    fy = np.fft.fftfreq(size)[:, None]
    if np.iscomplexobj(values):  # no symmetric half: both halves of the plane
        power = np.abs(np.fft.fft2(values, s=(size, size))) ** 2
        fx = np.fft.fftfreq(size)[None, :]
    else:
        power = np.abs(np.fft.rfft2(values, s=(size, size))) ** 2
        fx = np.fft.rfftfreq(size)[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    step = 1.0 / size
    index = np.round(radius / step).astype(np.int64).ravel()
    keep = index <= size // 2
    sums = np.bincount(index[keep], power.ravel()[keep])
    counts = np.bincount(index[keep])
    return np.arange(len(sums)) * step, sums / np.maximum(counts, 1)


def wavelength_candidates(field: np.ndarray, count: int = 3) -> list[float]:
    """Up to ``count`` wavelengths (pixels) at the strongest peaks of the radial power
    spectrum, strongest first, parabola-interpolated between bins; peaks below
    ``2 / min(H, W)`` cycles per pixel (not resolved by the window) and above 0.4
    (aliasing) are ignored."""
    field = np.asarray(field)
    freqs, power = radial_power_spectrum(field if np.iscomplexobj(field) else field.astype(np.float64))
    lo = 2.0 / min(field.shape)
    band = (freqs >= lo) & (freqs <= 0.4)
    if band.sum() < 3 or not np.any(power[band] > 0):
        return []
    log_power = np.log(power + 1e-300 + 1e-12 * power.max())
    peaks, props = find_peaks(log_power, prominence=0.5)
    peaks = [p for p in peaks if band[p] and 0 < p < len(power) - 1]
    peaks.sort(key=lambda p: -power[p])
    out = []
    for p in peaks[:count]:
        a, b, c = log_power[p - 1:p + 2]
        shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) < 0 else 0.0
        out.append(1.0 / ((p + float(np.clip(shift, -0.5, 0.5))) * (freqs[1] - freqs[0])))
    return out


def ring_directions(field: np.ndarray, wavelength: float, count: int, spacing: float = 1.0,
                    half_turn: bool = True) -> np.ndarray:
    """``(count,)`` directions (radians) of the strongest plane waves of wavelength
    ``wavelength`` (pixels) in the ``(h, w)`` ``field`` sampled every ``spacing`` pixels:
    the maxima of the Hann-windowed, zero-padded power spectrum along the ring of radius
    ``1 / wavelength`` cycles per pixel, each at least ``pi / (2 count)`` from the
    others; with ``half_turn`` (a real snapshot, whose spectrum is symmetric) modulo pi."""
    h, w = field.shape
    values = (field - field.mean()) * np.outer(np.hanning(h), np.hanning(w))
    size = PAD * max(h, w)
    power = np.abs(np.fft.fft2(values, s=(size, size))) ** 2
    turn = np.pi if half_turn else 2 * np.pi
    angles = np.linspace(0.0, turn, 360, endpoint=False)
    radius = spacing / wavelength * size  # bins per cycle per pixel
    cols = np.round(radius * np.cos(angles)).astype(np.int64) % size
    rows = np.round(radius * np.sin(angles)).astype(np.int64) % size
    ring = power[rows, cols]
    out = []
    gap = np.pi / (2 * max(count, 1))
    for _ in range(count):
        best = int(np.argmax(ring))
        out.append(angles[best])
        distance = np.abs((angles - angles[best] + turn / 2) % turn - turn / 2)
        ring = np.where(distance < gap, -np.inf, ring)
    return np.asarray(out)


def snapshot_wavelength(field: np.ndarray, xy: np.ndarray, spectral: list[float], stride: int) -> float | None:
    """Best snapshot wavelength: the spectral candidates refined by a scan of the
    profile RSS, and a coarse grid of wavelengths longer than the image."""
    if len(xy) == 0:
        return spectral[0] if spectral else None
    size = max(field.shape)
    # the window biases the ring's peak when the image spans few wavelengths (+13 % at
    # 3.5 wavelengths): the strongest candidate is scanned over +-30 %, the others +-12 %
    grid = [c * f for i, c in enumerate(spectral)
            for f in (np.arange(0.70, 1.3001, 0.02) if i == 0 else np.arange(0.88, 1.1201, 0.02))]
    grid += list(np.geomspace(0.5 * size, 8 * size, 12))
    rss = [linear_rss(field, xy, "free", lam, 0.0, 1.0, stride) for lam in grid]
    return float(grid[int(np.argmin(rss))])


def amplitude_starts(spectral: list[float], size: int) -> list[float]:
    """Start wavelengths of an amplitude map (``|u|`` beats at twice the wavenumber):
    twice the two strongest spectral candidates and two short defaults, none beyond
    four image sizes."""
    starts = [2.0 * c for c in spectral[:2]] + [8.0, 16.0]
    return [s for s in starts if s <= 4 * size]
