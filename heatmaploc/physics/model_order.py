"""Count correction by model-order selection.

Starting from a fitted set of sources, two kinds of change are proposed in turn:

* **add** one source where the residual is most structured: for a snapshot the
  matched filter of the residual with the kernel (the energy that one more source at
  ``p`` would explain, ``<R, Re G_p>^2 / |Re G_p|^2 + <R, Im G_p>^2 / |Im G_p|^2``, by FFT
  correlation over the image and a margin around it, so that a source outside the
  field of view can be modelled too); for a complex field the same with the complex
  inner product, ``|<R, G_p>|^2 / |G_p|^2``; for an amplitude map the largest positive
  residual after Gaussian smoothing;
* **remove** each of the weakest sources (smallest energy ``|q_j G_j|^2``) and each
  member of a pair too close to be resolved (:func:`unresolved`).

A snapshot's or complex field's addition is refitted only where its matched-filter
energy (what the source would explain with its strength solved linearly and nothing
else moving) is at least ``LINEAR_SCREEN`` of the energy the BIC asks of a source
(:func:`addition_price`): on test500 every addition the refit accepted had at least
2.2 times that price, and nine in ten of those it rejected less than 0.4 of it.
Every proposal is refitted (:func:`heatmaploc.physics.wavefit.fit_wave`) and accepted
only when it leaves every pair of sources resolved (:func:`resolved`) and the
Bayesian information criterion ``N log(RSS / N) + p log N`` (the noise
level estimated from the residual) decreases; a source costs four parameters
(``x, y, Re q, Im q``), so it must lower the RSS by the factor ``N^(-4/N)``.  The
changes stop when no proposal is accepted or after ``max_changes``.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.optimize import linear_sum_assignment
from scipy.signal import fftconvolve
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from heatmaploc.physics.forward import map_offsets, observe, radial_fields, tabulated_kernel
from heatmaploc.physics.kernels import FIT_TABLE_STEP
from heatmaploc.physics.wavefit import WaveFit

log = logging.getLogger(__name__)

MIN_SEPARATION_PX = 2.0
REMOVAL_MARGIN = 10.0  # removal is tried for sources whose energy is below this many times a source's BIC price
SOURCE_PARAMETERS = 4  # a source's fitted parameters: x, y, Re q, Im q
LINEAR_SCREEN = 0.5  # an addition is refitted only where its linear energy is at least this share of its BIC price
Refit = Callable[[np.ndarray, WaveFit], WaveFit]  # (n, 2) start positions, fit to take the globals from -> fit


@dataclass(frozen=True)
class CountChanges:
    """Result of :func:`select_count`: the final fit and what changed."""

    fit: WaveFit
    added: int
    removed: int


def fit_reach(max_shift: float) -> float:
    """How far (pixels) a fitted source may lie from the point it started from, each
    coordinate moving at most ``max_shift``: no fitted source is paired with a network
    point farther away (:func:`paired`)."""
    return max_shift * math.sqrt(2) + 1e-9


def paired(fitted: np.ndarray, start: np.ndarray, max_shift: float) -> tuple[np.ndarray, np.ndarray]:
    """``(m,)`` and ``(n,)`` bool: which fitted sources ``(m, 2)`` and which network
    points ``start (n, 2)`` are paired, one to one within the fit's reach
    (:func:`fit_reach`), by the assignment of least total distance.  A source split in
    two leaves one half unpaired; a source standing for two network points, one of them."""
    fitted_paired, start_paired = np.zeros(len(fitted), bool), np.zeros(len(start), bool)
    rows, cols = pairs(fitted, start, max_shift)
    fitted_paired[rows], start_paired[cols] = True, True
    return fitted_paired, start_paired


def pairs(fitted: np.ndarray, start: np.ndarray, max_shift: float) -> tuple[np.ndarray, np.ndarray]:
    """``(k,)`` row indices into ``fitted (m, 2)`` and ``(k,)`` into ``start (n, 2)``
    of the pairs of :func:`paired`."""
    fitted = np.asarray(fitted, dtype=np.float64).reshape(-1, 2)
    start = np.asarray(start, dtype=np.float64).reshape(-1, 2)
    if not (len(fitted) and len(start)):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    reach = fit_reach(max_shift)
    m = len(fitted)
    # points farther apart than the reach never pair, so the assignment splits into the
    # connected groups of the within-reach graph (thousands of points on a large image:
    # one dense matrix would need gigabytes)
    near = cKDTree(fitted).sparse_distance_matrix(cKDTree(start), reach * (1 + 1e-9), output_type="coo_matrix")
    graph = coo_matrix((np.ones(near.nnz), (near.row, near.col + m)), shape=(m + len(start),) * 2)
    _, labels = connected_components(graph, directed=False)
    found_rows, found_cols = [], []
    for group in np.unique(labels[near.row]):
        members = np.flatnonzero(labels == group)
        r, c = members[members < m], members[members >= m] - m
        dist = np.linalg.norm(fitted[r][:, None, :] - start[c][None, :, :], axis=2)
        rows, cols = linear_sum_assignment(np.where(dist <= reach, dist, 1e9))
        close = dist[rows, cols] <= reach
        found_rows.append(r[rows[close]])
        found_cols.append(c[cols[close]])
    if not found_rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows, cols = np.concatenate(found_rows), np.concatenate(found_cols)
    order = np.argsort(rows, kind="stable")
    return rows[order], cols[order]


def model_image(fit: WaveFit, shape: tuple[int, int]) -> np.ndarray:
    """The fitted model ``obs(sum_j q_j G_j) + c`` on the full ``(H, W)`` pixel grid."""
    h, w = shape
    g = radial_fields(fit.kernel, fit.xy, np.arange(w), np.arange(h), fit.wavenumber, fit.source_size_px,
                      table_step=FIT_TABLE_STEP, metric=fit.metric)[0]
    return observe((fit.strengths @ g).reshape(h, w), fit.observable) + fit.offset


def source_energies(fit: WaveFit, shape: tuple[int, int], stride: int = 2,
                    weights: np.ndarray | None = None) -> np.ndarray:
    """``(n,)`` energy ``sum_p (w_p * obs-part of q_j G_j(p))^2`` of each fitted source
    over the image (every ``stride``-th pixel; ``weights`` ``(H, W)``, default 1): how
    much the fit would lose without it."""
    h, w = shape
    g = radial_fields(fit.kernel, fit.xy, np.arange(0, w, stride), np.arange(0, h, stride), fit.wavenumber,
                      fit.source_size_px, table_step=FIT_TABLE_STEP, metric=fit.metric)[0]
    parts = fit.strengths[:, None] * g
    parts = np.abs(parts) if fit.observable in ("amplitude", "complex") else parts.real  # complex: |Re|^2 + |Im|^2
    if weights is not None:
        parts = parts * np.asarray(weights, dtype=np.float64)[::stride, ::stride].ravel()
    return np.sum(parts**2, axis=1)


def residual_candidates(residual: np.ndarray, fit: WaveFit, margin: int, weights: np.ndarray | None = None,
                        count: int = 3, exclude: float = 2.0) -> list[np.ndarray]:
    """Up to ``count`` ``(x, y)`` where one more source would explain most of the
    ``(H, W)`` residual (see the module docstring; with per-pixel ``weights``, one over
    the noise std, the weighted energy), best first, at least ``exclude`` px from the
    fitted sources and ``2 * exclude`` px from each other; a snapshot's search extends
    ``margin`` px beyond the image."""
    return [xy for xy, _ in scored_candidates(residual, fit, margin, weights, count, exclude)]


def scored_candidates(residual: np.ndarray, fit: WaveFit, margin: int, weights: np.ndarray | None = None,
                      count: int = 3, exclude: float = 2.0) -> list[tuple[np.ndarray, float | None]]:
    """:func:`residual_candidates` with each one's energy: for a snapshot or a complex
    field the (weighted) residual energy, summed over all ``(H, W)`` pixels, that one
    more source held there with its strength solved linearly would explain; None for an
    amplitude map (its candidates are ranked by the smoothed residual, not an energy)."""
    h, w = residual.shape
    w2 = np.ones_like(residual) if weights is None else np.asarray(weights, dtype=np.float64) ** 2
    if fit.observable == "amplitude":
        score = gaussian_filter(residual * w2, 1.5) / gaussian_filter(w2, 1.5)
        margin = 0
    else:
        size_y, size_x = h + 2 * margin, w + 2 * margin
        dy, dx = np.mgrid[-(size_y - 1):size_y, -(size_x - 1):size_x]
        dx, dy = map_offsets(fit.metric, dx, dy)  # an orthotropic fit: the kernel of the mapped offsets
        template = tabulated_kernel(fit.kernel, np.sqrt(dx**2 + dy**2 + fit.source_size_px**2), fit.wavenumber)
        padded = np.pad(residual * w2, margin)
        support = np.pad(w2, margin)
        if np.iscomplexobj(residual):  # a complex field: the template is radial, so correlation = convolution
            corr = fftconvolve(padded, np.conj(template), mode="valid")
            norm = fftconvolve(support, np.abs(template) ** 2, mode="valid")
            score = np.abs(corr) ** 2 / np.maximum(norm, 1e-12 * max(norm.max(), 1e-300))
        else:
            corr = fftconvolve(padded, template, mode="valid")  # real and imaginary parts in one
            score = np.zeros((size_y, size_x))
            for c, part in ((corr.real, template.real), (corr.imag, template.imag)):
                norm = fftconvolve(support, part**2, mode="valid")
                score += c**2 / np.maximum(norm, 1e-12 * max(norm.max(), 1e-300))
    yy, xx = np.mgrid[0:score.shape[0], 0:score.shape[1]]
    xx, yy = xx - margin, yy - margin
    for x, y in fit.xy:
        score[(xx - x) ** 2 + (yy - y) ** 2 < exclude**2] = -np.inf
    out = []
    while len(out) < count and np.isfinite(score).any():
        iy, ix = np.unravel_index(int(np.argmax(score)), score.shape)
        xy = np.array([float(xx[iy, ix]), float(yy[iy, ix])])
        out.append((xy, None if fit.observable == "amplitude" else float(score[iy, ix])))
        score[(xx - xy[0]) ** 2 + (yy - xy[1]) ** 2 < (2 * exclude) ** 2] = -np.inf
    return out


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


def addition_price(fit: WaveFit, field: np.ndarray) -> float:
    """The residual energy, summed over all pixels of the ``(H, W)`` ``field``, that one
    more source (four parameters) must explain for the BIC of ``fit`` (over its
    ``fit.n_pixels`` data values) to decrease: ``RSS (1 - N^(-4/N))``, scaled from the
    fitted data values to the field's (a complex pixel holds two)."""
    n = max(fit.n_pixels, 2)
    per_value = fit.rss * -math.expm1(-SOURCE_PARAMETERS * math.log(n) / n) / n
    values = field.size * (2 if np.iscomplexobj(field) else 1)
    return per_value * values


def unresolved(fit: WaveFit) -> np.ndarray:
    """Indices of the sources of ``fit`` that have another closer than
    :func:`separation_limit`: such a pair (often with opposite phases)
    is a dipole that absorbs a model mismatch, or one source found twice, not two
    sources a wave image can resolve."""
    if len(fit.xy) < 2:
        return np.zeros(0, np.int64)
    dist = np.linalg.norm(fit.xy[:, None, :] - fit.xy[None, :, :], axis=2) + np.eye(len(fit.xy)) * 1e9
    return np.flatnonzero(dist.min(axis=1) < separation_limit(fit))


def separation_limit(fit: WaveFit) -> float:
    """Pixels: the least distance of two sources of ``fit`` that a wave image resolves,
    ``max(MIN_SEPARATION_PX, wavelength / 4)``."""
    return max(MIN_SEPARATION_PX, 0.25 * fit.wavelength_px)


def resolved(fit: WaveFit) -> bool:
    """No pair of sources of ``fit`` is :func:`unresolved`."""
    return len(unresolved(fit)) == 0


def select_count(field: np.ndarray, fit: WaveFit, refit: Refit, margin: int, weights: np.ndarray | None = None,
                 max_changes: int = 6, removals_per_round: int = 2, candidates_per_round: int = 2) -> CountChanges:
    """Add and remove sources while the BIC of ``refit`` improves (module docstring).

    ``fit`` is the current fit of ``field``; ``refit(xy, like)`` fits from start
    positions with the globals of ``like`` (its fits must use the same pixels, so that
    their BICs compare).  Each round first refits the current sources the same way, so
    that a proposal is never credited with what more iterations alone would give."""
    added = removed = 0
    for _ in range(max_changes):
        fit = refit(fit.xy, fit)
        changed = False
        screen = LINEAR_SCREEN * addition_price(fit, field)
        for candidate, energy in scored_candidates(field - model_image(fit, field.shape), fit, margin, weights,
                                                   candidates_per_round):
            if energy is not None and energy < screen:
                continue  # the candidate cannot come near paying for itself: not refitted
            trial = refit(np.vstack([fit.xy, candidate[None]]), fit)
            if trial.bic() < fit.bic() and resolved(trial):
                log.debug("added a source at (%.2f, %.2f): BIC %.1f -> %.1f", *candidate, fit.bic(), trial.bic())
                fit, added, changed = trial, added + 1, True
                break
        if len(fit.xy):
            # dropping source j costs about its energy; one far above the BIC's price of
            # a source (in noise units: weights are one over the noise std) stays
            energies = source_energies(fit, field.shape, 2, weights)
            price = SOURCE_PARAMETERS * np.log(max(fit.n_pixels, 2))
            weak = [j for j in np.argsort(energies)[:removals_per_round]
                    if weights is None or energies[j] < REMOVAL_MARGIN * price]
            for j in list(dict.fromkeys(weak + [int(i) for i in unresolved(fit)])):
                trial = refit(np.delete(fit.xy, j, axis=0), fit)
                if trial.bic() < fit.bic():
                    log.debug("removed the source at (%.2f, %.2f): BIC %.1f -> %.1f", *fit.xy[j], fit.bic(), trial.bic())
                    fit, removed, changed = trial, removed + 1, True
                    break
        if not changed:
            break
    return CountChanges(fit, added, removed)
