"""The physics refinement of one image's network points (docs/design.md section 5b):
which path decides them, and the :class:`~heatmaploc.points.Points` each path returns.

* **global**: the image-wide fit (:mod:`heatmaploc.physics.blind`) explains the image
  down to the noise: its sources are reported;
* **local**: a wave model was found but does not explain the whole image: every source
  is decided in a window of its own (:mod:`heatmaploc.physics.local`);
* **windowed**: an image of more than ``WINDOWED_ABOVE_PX`` pixels (an image-wide fit
  would cost too much time and memory): the model is estimated on the crop of
  ``ESTIMATION_CROP_PX`` pixels a side that holds the most network points, and every
  source is decided in its window, as in the local path, over the whole image; the
  memory is that of the image's field and one window's fit;
* **psf**: a point-spread (power) map, such as an acoustic camera's beamforming map or
  a spot image, fitted as a sum of PSFs with powers (:mod:`heatmaploc.physics.psfrefine`);
* otherwise the network's points come back unchanged.

The family is the one ``known`` states (:func:`~heatmaploc.physics.known.stated_family`),
else the one the image's profile around the network's points shows
(:func:`~heatmaploc.physics.family.choose_family`, a few milliseconds): a wave field
takes the paths above, a point-spread map the **psf** path, and an image with nothing
beyond the noise and no point comes back at once.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from heatmaploc.data.io import check_image
from heatmaploc.physics.blind import MIN_SIZE, estimate_with_start
from heatmaploc.physics.family import choose_family, nothing_to_refine
from heatmaploc.physics.known import stated_family, validate_known
from heatmaploc.physics.observation import in_view, observed_field, unit_scale
from heatmaploc.physics.local import LocalSource, refine_locally, window_needs
from heatmaploc.physics.model_order import fit_reach, paired, pairs, separation_limit
from heatmaploc.physics.psfrefine import combined_positions, refine_psf
from heatmaploc.physics.support import Support, as_support, peaks_near, support_peaks, within_reach
from heatmaploc.physics.summary import PhysicsEstimate
from heatmaploc.physics.wavefit import WaveFit
from heatmaploc.physics.waveproblem import Hypothesis
from heatmaploc.points import STRENGTH_FIELDS, Points

log = logging.getLogger(__name__)

NETWORK_SIGMA_FALLBACK = 0.5  # pixels: the network point's sigma where its model gives none
WINDOWED_ABOVE_PX = 1024 * 1024  # images with more pixels are refined window by window (an image-wide fit's memory)
ESTIMATION_CROP_PX = 128  # side of the crop a windowed image's model is estimated on (the image-wide fit's size)


def windowed(shape: tuple[int, ...]) -> bool:
    """Whether an image of ``shape`` ``(H, W[, C])`` is refined window by window
    (more than ``WINDOWED_ABOVE_PX`` pixels)."""
    return shape[0] * shape[1] > WINDOWED_ABOVE_PX


def refine_physics(image: np.ndarray, points: Points, known: Mapping | None = None, name: str = "image",
                   max_shift: float = 3.0, candidates: Support | np.ndarray | None = None,
                   workers: int = 1, progress: bool = False) -> Points:
    """``points`` (the network's) refined by the physics of ``image``.

    The image-wide fit (:func:`estimate`) is tried first; when it explains the image
    down to the noise its in-image sources are reported with the fit's sigma, except
    additions that are not confirmed (:func:`_confirmed_additions`).  When a
    wave model was found but does not explain the whole image (a heterogeneous or
    anisotropic medium, reflecting edges, a finite source), each source is decided in a
    window of its own (:func:`heatmaploc.physics.local.refine_locally`): refined where
    its window's local model is down to the noise, removed where the window does not
    need it, added only at the peaks of ``candidates`` near a source of the
    image-wide fit (:func:`~heatmaploc.physics.support.peaks_near`) that a window
    needs: a :class:`~heatmaploc.physics.support.Support` (the network's heatmap peaks above a
    support floor and where the heatmap shows a trace,
    :func:`heatmaploc.inference.support_candidates`) or its ``(c, 2)`` peaks alone;
    None: wherever the model asks.  Otherwise ``points`` come back unchanged.  An
    image of more than ``WINDOWED_ABOVE_PX`` pixels goes by :func:`refine_windowed`.  ``refined`` says
    whether any point changed; ``physics`` holds the estimate.  ``workers``: processes
    that share the windows of the local and windowed paths (the result is the same);
    ``progress``: a progress bar over those windows.

    Where ``known`` states no family, the image's profile chooses it (module
    docstring): a point-spread map goes by :func:`refine_point_spread`, an image with
    nothing beyond the noise comes back unchanged; ``physics["family_evidence"]``
    records the test.

    A source the fit adds has score 0 (it has no heatmap peak above the threshold);
    kept sources keep the score of the network point they started from."""
    started = time.perf_counter()
    known = validate_known(known, name)
    candidates = as_support(candidates)
    family = stated_family(known)
    if family == "psf":
        return refine_point_spread(image, points, known, name, max_shift, candidates)
    arr = check_image(np.asarray(image), name)
    if family is not None or min(arr.shape[:2]) < MIN_SIZE:  # a tiny image: the wave path says why it is not fitted
        return _refine_wave(arr, points, known, name, max_shift, candidates, workers=workers, progress=progress)
    nothing, observed = nothing_to_refine(arr, points.xy, support_peaks(candidates)), None
    if nothing is None:
        observed = observed_field(arr, name, known)
        if observed[1] is not None:  # the colormap's inverse: nearer Gaussian noise than the RGB channels
            nothing = nothing_to_refine(observed[0], points.xy, support_peaks(candidates))
    if nothing is not None:
        log.info("%s: nothing to refine (%s)", name, nothing.reason)
        est = PhysicsEstimate(False, nothing.reason, count_network=points.count, count=points.count, family="none",
                              family_evidence=nothing.to_dict(), seconds=time.perf_counter() - started)
        return replace(points, refined=False, physics=est.to_dict())
    evidence = choose_family(observed[0], float(np.median(observed[2])), points.xy, raw=observed[1] is None)
    log.info("%s: %s family (%s)", name, evidence.family, evidence.reason)
    if evidence.family == "psf":
        out = refine_point_spread(arr, points, known, name, max_shift, candidates, observed)
    else:
        out = _refine_wave(arr, points, known, name, max_shift, candidates, observed, workers, progress)
    return replace(out, physics={**out.physics, "family_evidence": evidence.to_dict(),
                                 "seconds": round(time.perf_counter() - started, 6)})


def _refine_wave(image: np.ndarray, points: Points, known: Mapping, name: str, max_shift: float,
                 candidates: Support | None, observed: tuple | None = None, workers: int = 1,
                 progress: bool = False) -> Points:
    """:func:`refine_physics`'s wave paths (module docstring: global, local, windowed);
    ``observed``: the image's observed field when the caller has it; ``workers``: the
    processes that share the windows; ``progress``: a progress bar over them."""
    started = time.perf_counter()
    shape = np.shape(image)[:2]
    if windowed(shape):
        return refine_windowed(image, points, known, name, max_shift, candidates, workers=workers, observed=observed,
                               progress=progress)
    est, fit, local = estimate_with_start(image, points.xy, known, name, max_shift, None, observed)
    stay = np.zeros(0, np.int64)
    if est.accepted and fit is not None and local is not None:
        if est.added:
            est, fit = _confirmed_additions(est, fit, local, points, candidates, shape, max_shift, name)
        if est.removed:
            est, stay = _confirmed_removals(est, fit, local, points, shape, max_shift, name)
    if est.accepted or local is None:
        return refined_points(points, est, fit, shape, max_shift, stay)
    sigma = np.where(np.isfinite(points.sigma), points.sigma, NETWORK_SIGMA_FALLBACK)
    agreed = peaks_near(support_peaks(candidates), fit.xy[in_view(fit.xy, shape)], fit_reach(max_shift))
    sources = refine_locally(local.field, local.weights, points.xy, sigma, local.hypothesis, agreed, max_shift,
                             workers, progress)
    est = replace(est, mode="local", seconds=time.perf_counter() - started, count=len(sources),
                  added=sum(s.decision == "added" for s in sources),
                  removed=len(points.xy) - sum(s.decision != "added" for s in sources),
                  sources=[s.to_dict(local.scale) for s in sources])
    log.info("%s: local physics refined %d, kept %d, added %d, removed %d", name,
             sum(s.decision == "refined" for s in sources), sum(s.decision == "kept" for s in sources),
             est.added, est.removed)
    return local_points(points, est, sources, local.scale, max_shift)


def refine_point_spread(image: np.ndarray, points: Points, known: Mapping | None = None, name: str = "image",
                        max_shift: float = 3.0, candidates: Support | np.ndarray | None = None,
                        observed: tuple | None = None) -> Points:
    """``points`` refined as the sources of a point-spread (power) map
    (:func:`~heatmaploc.physics.psfrefine.refine_psf`): positions, count and powers.
    ``strength`` is a source's power in the map's linear units (a raw dB map's
    ``10^(v/10)``; relative for a colormap rendering), ``phase`` NaN; ``physics`` holds
    the PSF, the scale and each source's level in dB relative to the strongest.
    ``candidates`` (a :class:`~heatmaploc.physics.support.Support` or its ``(c, 2)``
    peaks): where a source may be added (the network's heatmap peaks
    above the support floor); None: wherever the residual asks for one.  ``observed``:
    the image's :func:`~heatmaploc.physics.observation.observed_field` when the caller
    has it."""
    started = time.perf_counter()
    known = dict(known or {})
    arr = check_image(np.asarray(image), name)
    if np.iscomplexobj(arr):
        raise ValueError(f"{name}: family=psf fits a real power map, got a complex field")
    field, colormap, _ = observed if observed is not None else observed_field(arr, name, known)
    result = refine_psf(field, points.xy, {**known, "raw": colormap is None}, max_shift, name,
                        support_peaks(candidates))
    physics = {"family": "psf", "mode": "psf", "kernel": None, "accepted": result is not None,
               "colormap": colormap, "count_network": points.count,
               "family_evidence": None}
    if result is None:
        physics.update(count=points.count, reason="no network point to start from",
                       seconds=round(time.perf_counter() - started, 6))
        return replace(points, refined=False, physics=physics)
    fit = result.fit
    unit = 10.0 ** (float(field.max()) / 10.0) if result.scale == "db" and colormap is None else 1.0
    physics.update(count=fit.count, added=result.added, removed=result.removed, scale=result.scale,
                   psf=fit.psf.shape, psf_width_px=round(fit.psf.width, 4), correlation_area_px=round(fit.area, 3),
                   bic_by_shape=result.bic_by_shape, levels_db=[round(float(v), 3) for v in result.levels_db],
                   reason="", seconds=round(time.perf_counter() - started, 6))
    scores, labels = _inherited(points, fit.xy, max_shift)
    values = np.stack([fit.powers * unit, fit.power_sigma * unit, np.full(fit.count, np.nan),
                       np.full(fit.count, np.nan)])
    xy, sigma = combined_positions(fit.xy, fit.sigma, points.xy, points.sigma, max_shift)
    return Points(xy, scores, labels, points.frame, sigma, refined=True, physics=physics,
                  **_strength_fields(values, None))


def _confirmed_additions(est: PhysicsEstimate, fit: WaveFit, local, points: Points, candidates: Support | None,
                         shape: tuple[int, int], max_shift: float, name: str) -> tuple[PhysicsEstimate, WaveFit]:
    """The accepted image-wide ``fit`` without the in-view sources it added that are not
    confirmed.  An addition is a fitted source that no network point claims (network
    points and fitted sources paired one to one within the fit's reach,
    :func:`~heatmaploc.physics.model_order.paired`), so a source split in two adds one.
    It is confirmed where no other kept source lies closer than the count search's
    :func:`~heatmaploc.physics.model_order.separation_limit` (the image-wide fit's
    last iterations may bring two sources closer than the search lets them start),
    where its own window needs it
    (:func:`~heatmaploc.physics.local.window_needs`: an addition that only patches a
    mismatch of the image-wide model elsewhere is undone) and, when it lies beyond the
    reach of every network point, where the network's heatmap shows a trace near it
    (:meth:`~heatmaploc.physics.support.Support.traced`): no source appears where the
    heatmap shows nothing."""
    inside = in_view(fit.xy, shape)
    claimed = np.zeros(len(fit.xy), bool)
    claimed[inside] = paired(fit.xy[inside], points.xy, max_shift)[0]
    added = np.flatnonzero(inside & ~claimed)
    if not len(added):
        return est, fit
    far = ~within_reach(fit.xy, points.xy, fit_reach(max_shift))
    drop = []
    for j in added:
        others = np.setdiff1d(np.arange(len(fit.xy)), [*drop, j])
        if within_reach(fit.xy[j], fit.xy[others], separation_limit(fit))[0] \
                or (candidates is not None and far[j] and not candidates.traced(fit.xy[j])) \
                or not window_needs(local.field, local.weights, fit.xy, int(j), local.hypothesis, max_shift,
                                    context=_at_unit_scale(fit, local)):
            drop.append(int(j))
    if not drop:
        return est, fit
    log.info("%s: %d of the image-wide fit's %d additions not confirmed; undone", name, len(drop), len(added))
    keep = np.setdiff1d(np.arange(len(fit.xy)), drop)
    fit = replace(fit, xy=fit.xy[keep], strengths=fit.strengths[keep], cov_xy=fit.cov_xy[keep], cov_q=fit.cov_q[keep])
    est = replace(est, count=est.count - len(drop), added=est.added - len(drop), unconfirmed=len(drop))
    return est, fit


def _at_unit_scale(fit: WaveFit, local) -> WaveFit:
    """The image-wide ``fit`` (strengths in the image's units) with the strengths of
    ``local.field`` (:class:`~heatmaploc.physics.blind.LocalStart`, the field at unit
    scale), as a window holds its farther sources."""
    return replace(fit, strengths=fit.strengths / local.scale)


def _confirmed_removals(est: PhysicsEstimate, fit: WaveFit, local, points: Points, shape: tuple[int, int],
                        max_shift: float, name: str) -> tuple[PhysicsEstimate, np.ndarray]:
    """``(est, stay)``: the indices of the network points that the accepted image-wide
    ``fit`` removed but that stay, as the network gave them, and the estimate counting
    them.  A removal is a network point that no fitted source in view claims (paired
    one to one within the fit's reach, :func:`~heatmaploc.physics.model_order.paired`).
    It is confirmed as an addition is (:func:`_confirmed_additions`): a point whose own
    window needs a source there (:func:`~heatmaploc.physics.local.window_needs`, the
    image-wide fit's farther sources held in it) stays, so an image-wide model that
    explains a source away by a mismatch elsewhere (a reflecting edge's source replaced
    by its mirror image beyond the edge) does not remove it.  A point closer than the
    count search's :func:`~heatmaploc.physics.model_order.separation_limit` to a
    reported source is a duplicate the fit merged and stays removed."""
    inside = in_view(fit.xy, shape)
    reported = fit.xy[inside]
    removed = np.flatnonzero(~paired(reported, points.xy, max_shift)[1])
    context = _at_unit_scale(fit, local)
    stay: list[int] = []
    for i in removed:
        if within_reach(points.xy[i], np.vstack([reported, points.xy[stay]]), separation_limit(fit))[0]:
            continue
        if window_needs(local.field, local.weights, np.vstack([fit.xy, points.xy[i]]), len(fit.xy),
                        local.hypothesis, max_shift, context=context):
            stay.append(int(i))
    if not stay:
        return est, np.zeros(0, np.int64)
    log.info("%s: %d of the image-wide fit's %d removals not confirmed; the network's points stay", name,
             len(stay), len(removed))
    est = replace(est, count=est.count + len(stay), removed=est.removed - len(stay), unconfirmed_removals=len(stay))
    return est, np.asarray(stay, np.int64)


def estimation_crop(xy: np.ndarray, shape: tuple[int, int], side: int = ESTIMATION_CROP_PX,
                    tries: int = 256) -> tuple[slice, slice]:
    """``(rows, cols)`` slices of the ``side x side`` crop (clipped to the ``(H, W)``
    image) that holds the most of the ``(n, 2)`` points: crops centred on up to
    ``tries`` of them (evenly spaced in their order) are counted; the image's centre
    crop when there is no point."""
    h, w = shape
    sh, sw = min(side, h), min(side, w)
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    centres = xy[np.unique(np.linspace(0, len(xy) - 1, min(tries, len(xy))).round().astype(int))] if len(xy) \
        else np.array([[(w - 1) / 2, (h - 1) / 2]])
    r0 = np.clip(np.round(centres[:, 1] - sh / 2).astype(int), 0, h - sh)
    c0 = np.clip(np.round(centres[:, 0] - sw / 2).astype(int), 0, w - sw)
    crops = [(slice(int(r), int(r) + sh), slice(int(c), int(c) + sw)) for r, c in zip(r0, c0)]
    return crops[int(np.argmax([np.count_nonzero(in_crop(xy, *crop)) for crop in crops]))]


def in_crop(xy: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """``(n,)`` bool: which ``(x, y)`` lie on the pixels ``rows`` x ``cols`` (each pixel
    spanning its centre +- 0.5, docs/design.md section 1)."""
    return ((xy[:, 0] >= cols.start - 0.5) & (xy[:, 0] < cols.stop - 0.5)
            & (xy[:, 1] >= rows.start - 0.5) & (xy[:, 1] < rows.stop - 0.5))


def refine_windowed(image: np.ndarray, points: Points, known: Mapping | None = None, name: str = "image",
                    max_shift: float = 3.0, candidates: Support | np.ndarray | None = None,
                    crop_side: int = ESTIMATION_CROP_PX, workers: int = 1, observed: tuple | None = None,
                    progress: bool = False) -> Points:
    """``points`` refined window by window (module docstring, *windowed*): the model of
    the :func:`estimation_crop` of side ``crop_side`` (:func:`~heatmaploc.physics.blind.estimate` on it, with
    ``known``), then every network point and candidate decided in its window over the
    whole image with that model's kernel, observable, colormap and start values
    (:func:`~heatmaploc.physics.local.refine_locally`).  When the crop shows no wave
    model, ``points`` come back unchanged with the crop's reason.  ``workers``: processes
    that share the windows (the result is the same); ``observed``: the image's
    :func:`~heatmaploc.physics.observation.observed_field` when the caller has it (used
    where its colormap is the crop's); ``progress``: a progress bar over the windows."""
    started = time.perf_counter()
    arr = check_image(np.asarray(image), name)
    rows, cols = estimation_crop(points.xy, arr.shape[:2], crop_side)
    origin = np.array([cols.start, rows.start], dtype=np.float64)
    inside = in_crop(points.xy, rows, cols)
    crop_name = f"{name} (rows {rows.start}:{rows.stop}, cols {cols.start}:{cols.stop})"
    est, _, _ = estimate_with_start(arr[rows, cols], points.xy[inside] - origin, known, crop_name, max_shift, None,
                                    model_error=False)  # the crop's model is used, not its fit's points
    where = f"the model of rows {rows.start}:{rows.stop}, cols {cols.start}:{cols.stop}"
    if est.kernel is None:  # no wave model, or a crop explained without any source: nothing to go by
        est = replace(est, accepted=False, mode="network", count_network=points.count, count=points.count,
                      added=0, removed=0, reason=f"{where}: {est.reason or 'no source in it'}",
                      seconds=time.perf_counter() - started)
        return replace(points, refined=False, physics=est.to_dict())
    if observed is None or observed[1] != est.colormap:
        observed = observed_field(arr, name, {**dict(known or {}), "colormap": est.colormap})
    field, weights, _, scale, noise = unit_scale(observed[0], observed[2])
    del observed
    anisotropy = None if est.anisotropy_ratio is None else (est.anisotropy_ratio, est.anisotropy_angle)
    hypothesis = Hypothesis(est.kernel, est.observable, est.wavelength_px, est.damping or 0.0, est.source_size_px,
                            anisotropy)
    sigma = np.where(np.isfinite(points.sigma), points.sigma, NETWORK_SIGMA_FALLBACK)
    sources = refine_locally(field, weights, points.xy, sigma, hypothesis, support_peaks(candidates), max_shift,
                             workers, progress)
    est = replace(est, accepted=False, mode="windowed", noise_std=noise, count_network=points.count,
                  reason=f"windowed: {arr.shape[0]}x{arr.shape[1]} pixels refined window by window with {where}",
                  seconds=time.perf_counter() - started, count=len(sources),
                  added=sum(s.decision == "added" for s in sources),
                  removed=points.count - sum(s.decision != "added" for s in sources), hidden_sources=0,
                  sources=[s.to_dict(scale) for s in sources])
    log.info("%s: windowed physics refined %d, kept %d, added %d, removed %d", name,
             sum(s.decision == "refined" for s in sources), sum(s.decision == "kept" for s in sources),
             est.added, est.removed)
    return local_points(points, est, sources, scale, max_shift)


def local_points(points: Points, est: PhysicsEstimate, sources: list[LocalSource], scale: float,
                 max_shift: float = 3.0) -> Points:
    """The :class:`~heatmaploc.points.Points` of the local refinement's ``sources`` (fitted
    on a field divided by ``scale``): a refined or kept point keeps the score and label
    of the network point it is paired with (:func:`_inherited`); an added one has score
    0; strengths in the image's units, NaN where a point was kept.  ``refined`` is true
    when any point changed."""
    xy = np.array([s.xy for s in sources], dtype=np.float64).reshape(-1, 2)
    sigma = np.array([s.sigma for s in sources], dtype=np.float64)
    scores, labels = _inherited(points, xy, max_shift)
    added = np.array([s.decision == "added" for s in sources], bool)
    scores[added], labels[added] = 0.0, 0
    changed = any(s.decision != "kept" for s in sources) or est.removed > 0
    values = np.full((4, len(sources)), np.nan)
    for j, s in enumerate(sources):
        if s.strength is not None:
            values[:, j] = (abs(s.strength) * scale, s.strength_sigma * scale, np.angle(s.strength), s.phase_sigma)
    return Points(xy, scores, labels, points.frame, sigma, refined=changed, physics=est.to_dict(),
                  **_strength_fields(values, est.observable))


def _inherited(points: Points, xy: np.ndarray, max_shift: float) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, labels)`` of ``xy (m, 2)``: those of the network point each is paired
    with one to one within the fit's reach (:func:`~heatmaploc.physics.model_order.pairs`,
    the pairing the positions are combined by); 0 and label 0 for a point with none (a
    source the fit added, or the second half of a split)."""
    scores = np.zeros(len(xy))
    labels = np.zeros(len(xy), np.int64)
    rows, cols = pairs(np.asarray(xy, dtype=np.float64).reshape(-1, 2), points.xy, max_shift)
    scores[rows] = points.scores[cols]
    labels[rows] = points.labels[cols]
    return scores, labels


def refined_points(points: Points, est: PhysicsEstimate, fit: WaveFit | None, shape: tuple[int, int],
                   max_shift: float = 3.0, stay: np.ndarray | None = None) -> Points:
    """The :class:`~heatmaploc.points.Points` that :func:`refine_physics` returns for the
    network's ``points`` and :func:`estimate`'s result on an image of ``shape (H, W)``:
    the fit's sources in view, then the network points of index ``stay`` (removals not
    confirmed, :func:`_confirmed_removals`) with their score, label and sigma and no
    strength."""
    if not est.accepted or fit is None:
        return replace(points, refined=False, physics=est.to_dict())
    inside = in_view(fit.xy, shape)
    stay = np.zeros(0, np.int64) if stay is None else np.asarray(stay, np.int64)
    xy, sigma = fit.xy[inside], fit.sigma[inside]
    scores, labels = _inherited(points, xy, max_shift)
    q = fit.strengths[inside]
    values = np.stack([np.abs(q), fit.strength_sigma[inside], np.angle(q), fit.phase_sigma[inside]])
    values = np.concatenate([values, np.full((4, len(stay)), np.nan)], axis=1)
    return Points(np.vstack([xy, points.xy[stay]]), np.r_[scores, points.scores[stay]],
                  np.r_[labels, points.labels[stay]], points.frame, np.r_[sigma, points.sigma[stay]], refined=True,
                  physics=est.to_dict(), **_strength_fields(values, fit.observable))


def _strength_fields(values: np.ndarray, observable: str | None) -> dict[str, np.ndarray]:
    """The :class:`~heatmaploc.points.Points` strength keywords from ``(4, n)`` rows
    ``|q|, sigma |q|, arg q, sigma arg q``; an amplitude map's phases are not observed
    (NaN)."""
    values = np.array(values, dtype=np.float64).reshape(4, -1)
    if observable == "amplitude":
        values[2:] = np.nan
    return dict(zip(STRENGTH_FIELDS, values))
