"""Count correction by model-order selection.

Starting from a fitted set of sources, two kinds of change are proposed in turn:

* **add** one source where the residual is most structured: for a snapshot the
  matched filter of the residual with the kernel (the energy that one more source at
  ``p`` would explain, ``<R, Re G_p>^2 / |Re G_p|^2 + <R, Im G_p>^2 / |Im G_p|^2``, by FFT
  correlation over the image and a margin around it, so that a source outside the
  field of view can be modelled too); for an amplitude map the largest positive
  residual after Gaussian smoothing;
* **remove** each of the weakest sources (smallest energy ``|q_j G_j|^2``).

Every proposal is refitted (:func:`heatmaploc.physics.wavefit.fit_wave`) and accepted
only when the Bayesian information criterion ``N log(RSS / N) + p log N`` (the noise
level estimated from the residual) decreases; a source costs four parameters
(``x, y, Re q, Im q``), so it must lower the RSS by the factor ``N^(-4/N)``.  The
changes stop when no proposal is accepted or after ``max_changes``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.signal import fftconvolve

from heatmaploc.physics.forward import observe, radial_fields, wave_field
from heatmaploc.physics.wavefit import WaveFit

log = logging.getLogger(__name__)

Refit = Callable[[np.ndarray, WaveFit], WaveFit]  # (n, 2) start positions, fit to take the globals from -> fit


@dataclass(frozen=True)
class CountChanges:
    """Result of :func:`select_count`: the final fit and what changed."""

    fit: WaveFit
    added: int
    removed: int


def model_image(fit: WaveFit, shape: tuple[int, int]) -> np.ndarray:
    """The fitted model ``obs(sum_j q_j G_j) + c`` on the full ``(H, W)`` pixel grid."""
    h, w = shape
    k = 2 * np.pi / fit.wavelength_px * (1 + 1j * fit.damping)
    u = wave_field(fit.kernel, fit.xy, fit.strengths, np.arange(w), np.arange(h), k, fit.source_size_px)
    return observe(u, fit.observable) + fit.offset


def source_energies(fit: WaveFit, shape: tuple[int, int], stride: int = 2) -> np.ndarray:
    """``(n,)`` energy ``sum_p |obs-part of q_j G_j(p)|^2`` of each fitted source over
    the image (every ``stride``-th pixel), the measure of a weak source."""
    h, w = shape
    k = 2 * np.pi / fit.wavelength_px * (1 + 1j * fit.damping)
    g = radial_fields(fit.kernel, fit.xy, np.arange(0, w, stride), np.arange(0, h, stride), k, fit.source_size_px)[0]
    parts = fit.strengths[:, None] * g
    return np.sum((np.abs(parts) if fit.observable == "amplitude" else parts.real) ** 2, axis=1)


def residual_candidate(residual: np.ndarray, fit: WaveFit, margin: int, weights: np.ndarray | None = None,
                       exclude: float = 2.0) -> np.ndarray | None:
    """``(x, y)`` where one more source would explain most of the ``(H, W)`` residual
    (see the module docstring; with per-pixel ``weights``, one over the noise std, the
    weighted energy), at least ``exclude`` px from the fitted sources; a snapshot's
    search extends ``margin`` px beyond the image.  ``None`` if nowhere."""
    h, w = residual.shape
    w2 = np.ones_like(residual) if weights is None else np.asarray(weights, dtype=np.float64) ** 2
    if fit.observable == "amplitude":
        score = gaussian_filter(residual * w2, 1.5) / gaussian_filter(w2, 1.5)
        margin = 0
    else:
        size_y, size_x = h + 2 * margin, w + 2 * margin
        dy, dx = np.mgrid[-(size_y - 1):size_y, -(size_x - 1):size_x]
        k = 2 * np.pi / fit.wavelength_px * (1 + 1j * fit.damping)
        from heatmaploc.physics.kernels import evaluate

        template = evaluate(fit.kernel, np.sqrt(dx**2 + dy**2 + fit.source_size_px**2).astype(np.float64), k)
        padded = np.pad(residual * w2, margin)
        support = np.pad(w2, margin)
        score = np.zeros((size_y, size_x))
        for part in (template.real, template.imag):
            corr = fftconvolve(padded, part, mode="valid")
            norm = fftconvolve(support, part**2, mode="valid")
            score += corr**2 / np.maximum(norm, 1e-12 * max(norm.max(), 1e-300))
    yy, xx = np.mgrid[0:score.shape[0], 0:score.shape[1]]
    xx, yy = xx - margin, yy - margin
    for x, y in fit.xy:
        score[(xx - x) ** 2 + (yy - y) ** 2 < exclude**2] = -np.inf
    if not np.isfinite(score).any():
        return None
    iy, ix = np.unravel_index(int(np.argmax(score)), score.shape)
    return np.array([float(xx[iy, ix]), float(yy[iy, ix])])


def outside_ring(shape: tuple[int, int], margin: int, per_ring: int = 12, rings: int = 2) -> np.ndarray:
    """``(per_ring * rings, 2)`` start positions around the image, ``margin / (rings + 1)``
    apart in depth: where to look for a source outside the view that the residual
    cannot point to (an amplitude map's fringes, a matched filter misled by the model)."""
    h, w = shape
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    out = []
    for ring in range(1, rings + 1):
        depth = margin * ring / (rings + 1)
        half = np.array([w / 2 + depth, h / 2 + depth])
        for angle in np.linspace(0, 2 * np.pi, per_ring, endpoint=False) + ring * np.pi / per_ring:
            direction = np.array([np.cos(angle), np.sin(angle)])
            out.append(centre + direction * np.min(half / np.maximum(np.abs(direction), 1e-9)))
    return np.asarray(out)


def select_count(field: np.ndarray, fit: WaveFit, refit: Refit, margin: int, weights: np.ndarray | None = None,
                 max_changes: int = 6, removals_per_round: int = 2) -> CountChanges:
    """Add and remove sources while the BIC of ``refit`` improves (module docstring).

    ``fit`` is the current fit of ``field``; ``refit(xy, like)`` fits from start
    positions with the globals of ``like`` (its fits must use the same pixels, so that
    their BICs compare).  Each round first refits the current sources the same way, so
    that a proposal is never credited with what more iterations alone would give."""
    added = removed = 0
    for _ in range(max_changes):
        fit = refit(fit.xy, fit)
        changed = False
        candidate = residual_candidate(field - model_image(fit, field.shape), fit, margin, weights)
        if candidate is not None:
            trial = refit(np.vstack([fit.xy, candidate[None]]), fit)
            if trial.bic() < fit.bic():
                log.debug("added a source at (%.2f, %.2f): BIC %.1f -> %.1f", *candidate, fit.bic(), trial.bic())
                fit, added, changed = trial, added + 1, True
        if len(fit.xy):
            for j in np.argsort(source_energies(fit, field.shape))[:removals_per_round]:
                trial = refit(np.delete(fit.xy, j, axis=0), fit)
                if trial.bic() < fit.bic():
                    log.debug("removed the source at (%.2f, %.2f): BIC %.1f -> %.1f", *fit.xy[j], fit.bic(), trial.bic())
                    fit, removed, changed = trial, removed + 1, True
                    break
        if not changed:
            break
    return CountChanges(fit, added, removed)
