"""What the benchmark measures beyond the point metrics: the seed blog's Coord(eps),
precision/recall over thresholds, Cramér-Rao ratios and ceilings, close-pair recovery,
and the least-squares and field-fit baselines on the isolated-source suites."""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np
from scipy.spatial.distance import pdist

from heatmaploc.bench.least_squares import initial_guesses
from heatmaploc.bench.suites import Suite
from heatmaploc.codec import HeatmapCodec
from heatmaploc.inference import decode_outputs
from heatmaploc.metrics import HEADLINE_RADIUS, match_points, point_metrics, sigma_calibration
from heatmaploc.physics.crlb import JET_SLOPE, WaveModel, efficient_share_within, scene_position_bounds
from heatmaploc.physics.fieldfit import FieldModel, fit_field
from heatmaploc.points import Points


def coord_eps(preds: list[np.ndarray], truths: list[np.ndarray], pixel_size: float, eps: tuple[float, ...]) -> dict[str, float]:
    """Seed-blog "Coord(eps)": share of compared pairs (optimal one-to-one pairs of
    predictions and truths, no radius) closer than ``eps`` physical units."""
    dists = np.asarray([d for p, t in zip(preds, truths) for d in match_points(p, t, np.inf).distances]) * pixel_size
    return {f"{e:g}": float(np.mean(dists < e)) if len(dists) else float("nan") for e in eps}


def pr_curve(outputs: list[Any], truths: list[np.ndarray], codec: HeatmapCodec, thresholds, radius: float) -> list[dict]:
    rows = []
    for t in thresholds:
        m = point_metrics([p.xy for p in decode_outputs(outputs, codec, t)], truths, radius)
        rows.append({"threshold": t, "precision": m.precision, "recall": m.recall, "f1": m.f1})
    return rows


def crlb_of_suite(suite: Suite) -> np.ndarray:
    """Per image the Euclidean CRLB ``sqrt(var_x + var_y)`` of its single source."""
    return np.asarray([float(np.hypot(*scene_position_bounds(scene, *image.shape[:2], info["noise_std"])[0]))
                       for scene, info, image in zip(suite.scenes, suite.infos, suite.images)])


def amplitude_crlb_of_suite(suite: Suite, unknown_globals: bool = False) -> np.ndarray:
    """Per image the CRLB of its single source's amplitude ``|q|``, relative to it
    (``unknown_globals``: with the source size, wavelength, damping and offset as
    nuisance parameters, :func:`heatmaploc.physics.crlb.crlb`)."""
    return np.asarray([float(scene_position_bounds(scene, *image.shape[:2], info["noise_std"], with_amplitude=True,
                                                   unknown_globals=unknown_globals)[0, 2] / np.abs(scene.strengths[0]))
                       for scene, info, image in zip(suite.scenes, suite.infos, suite.images)])


def strength_errors(preds: list[Points], suite: Suite, radius: float = HEADLINE_RADIUS) -> np.ndarray:
    """``(m,)`` relative errors ``|q|_est / |q|_true - 1`` of the matched points (within
    ``radius``) that carry a strength, over the images of ``suite``."""
    out = []
    for pred, truth, scene in zip(preds, suite.truths, suite.scenes):
        m = match_points(pred.xy, truth, radius)
        for i, j in zip(m.pred_idx, m.true_idx):
            if np.isfinite(pred.strength[i]):
                out.append(pred.strength[i] / abs(scene.strengths[j]) - 1.0)
    return np.asarray(out, dtype=np.float64)


def strength_ratio(errors: np.ndarray, bounds: np.ndarray, bounds_unknown_globals: np.ndarray) -> dict[str, float]:
    """The rms relative strength error of the matched points against the rms of the
    per-image relative bounds, with the image's globals known and unknown."""
    rms = float(np.sqrt(np.mean(bounds**2)))
    rms_unknown = float(np.sqrt(np.mean(bounds_unknown_globals**2)))
    err = float(np.sqrt(np.mean(errors**2))) if len(errors) else float("nan")
    return {"strength_crlb_rms": rms, "strength_crlb_rms_unknown_globals": rms_unknown, "strength_rel_rmse": err,
            "strength_n": int(len(errors)), "strength_rmse_over_crlb": err / rms if len(errors) else float("nan"),
            "strength_rmse_over_crlb_unknown_globals": err / rms_unknown if len(errors) else float("nan")}


def merged_peak_share(truths: list[np.ndarray], nms_kernel: int) -> float:
    """Share of images in which two sources fall in one pixel or in pixels closer
    than the peak test's reach (Chebyshev distance of the rounded positions
    ``<= nms_kernel // 2``): a heatmap that peaks at each source's own pixel, as its
    training targets do, shows them as one peak, so peak counting miscounts them."""
    def merged(points: np.ndarray) -> bool:
        if len(points) < 2:
            return False
        return bool(pdist(np.rint(points), "chebyshev").min() <= nms_kernel // 2)
    return float(np.mean([merged(t) for t in truths])) if truths else float("nan")


def seed_protocol_ceiling(suite: Suite, eps: tuple[float, ...], n_images: int, nms_kernel: int = 3) -> dict[str, Any]:
    """Coord(eps) that an efficient unbiased estimator would reach on ``n_images``
    evenly spaced images of a seed-protocol suite (all count blocks): per-source CRLB
    with the protocol's fixed strengths known, noise taken through the jet equivalence
    (:data:`JET_SLOPE`); and, over the whole suite, the share of images whose
    sources a one-peak-per-source-pixel heatmap merges (:func:`merged_peak_share`)."""
    if suite.config is None:
        return {}
    noise = suite.config.noise_std / JET_SLOPE
    picked = np.unique(np.linspace(0, len(suite) - 1, min(n_images, len(suite))).round().astype(int))
    bounds = np.concatenate([scene_position_bounds(suite.scenes[i], *suite.images[i].shape[:2], noise,
                                                   known_strengths=True, relative_to_range=True) for i in picked])
    px = suite.frame.pixel_size
    return {"n_images": len(picked), "normalized_noise": noise,
            "median_crlb_units": float(np.median(np.hypot(*bounds.T)) * px),
            "coord_eps": {f"{e:g}": efficient_share_within(bounds, e / px) for e in eps},
            "nms_kernel": nms_kernel, "merged_peak_share": merged_peak_share(suite.truths, nms_kernel)}


def frame_metrics(preds: list[np.ndarray], suite: Suite, seed_eps: tuple[float, ...],
                  physical_radius: float | None) -> dict[str, Any]:
    """The metrics of a suite with a physical frame (the seed protocol's): ``coord_eps``
    (:func:`coord_eps` at ``seed_eps``) on a seed-group suite, and ``physical`` (the
    point metrics within ``physical_radius`` units) when a radius is given; none
    without a frame."""
    out: dict[str, Any] = {}
    if suite.frame is None:
        return out
    if suite.spec.group == "seed":
        out["coord_eps"] = coord_eps(preds, suite.truths, suite.frame.pixel_size, tuple(seed_eps))
    if physical_radius:
        out["physical"] = physical_radius_metrics(preds, suite.truths, suite.frame, physical_radius)
    return out


def physical_radius_metrics(preds: list[np.ndarray], truths: list[np.ndarray], frame, radius: float) -> dict[str, Any]:
    """Point metrics at a matching radius given in the suite's physical units."""
    return {"radius_units": radius, "radius_px": radius / frame.pixel_size,
            **point_metrics(preds, truths, radius / frame.pixel_size).to_dict()}


def both_found(preds: list[np.ndarray], truths: list[np.ndarray]) -> float:
    """Share of two-source images whose two sources are both found within 2 px."""
    return float(np.mean([point_metrics([p], [t], HEADLINE_RADIUS).tp == 2 for p, t in zip(preds, truths)]))


def crlb_ratio(rmse: float, tp: int, bounds: np.ndarray) -> dict[str, float]:
    """The rms of the per-image bounds and the measured RMSE over it."""
    rms = float(np.sqrt(np.mean(bounds**2)))
    return {"crlb_rms": rms, "rmse_over_crlb": rmse / rms if tp else float("nan")}


def lsq_points(suite: Suite, n_images: int, grid: int = 16) -> list[np.ndarray]:
    """Least-squares physics fit with the true model and known count (first images):
    a matched-filter start on a ``grid x grid`` lattice, then :func:`fit_field` with the
    scene's kernel, wavelength and source size and no offset (the estimator the CRLB
    describes: positions, amplitudes and phases free)."""
    out = []
    for scene, image in zip(suite.scenes[:n_images], suite.images[:n_images]):
        init = initial_guesses(image, WaveModel.from_scene(scene, *image.shape[:2]), len(scene.points), grid=grid)
        model = FieldModel.from_scene(scene, fit_source_size=False, fit_offset=False, observable=scene.observable)
        spacing = (max(image.shape[:2]) - 1) / (grid - 1)
        out.append(fit_field(image, init[:, :2], model, max_shift=2 * spacing).xy)
    return out


def known_model(scene, info: dict) -> FieldModel:
    """The physics a simulated image states: its scene's kernel, wavelength, damping and
    observable, and its colormap for a colormap rendering (the source size is fitted
    from a neutral 1 px start)."""
    colormap = info.get("colormap") if info.get("rendering") == "colormap" else None
    return FieldModel.from_scene(scene, source_size_px=1.0, colormap=colormap, observable=scene.observable)


def field_fit_metrics(preds: list[Points], suite: Suite, bounds: np.ndarray | None = None) -> dict[str, Any]:
    """A model's points ``preds`` on ``suite`` refined by :func:`heatmaploc.physics.fieldfit.fit_field`
    with each scene's known physics (:func:`known_model`; the count stays the model's):
    point metrics within 1 and 2 px, seconds per image of the fit and, with the suite's
    per-image ``bounds``, RMSE / CRLB."""
    refined, seconds = [], 0.0
    for scene, info, image, pred in zip(suite.scenes, suite.infos, suite.images, preds):
        t0 = time.perf_counter()
        refined.append(fit_field(image, pred.xy, known_model(scene, info)).xy if pred.count else pred.xy)
        seconds += time.perf_counter() - t0
    m = point_metrics(refined, suite.truths, HEADLINE_RADIUS)
    out = {"r1": point_metrics(refined, suite.truths, 1.0).to_dict(), "r2": m.to_dict(),
           "seconds_per_image": seconds / max(len(suite), 1)}
    if bounds is not None:
        out.update(crlb_ratio(m.rmse, m.tp, bounds))
    return out


def blind_physics_metrics(preds: list[Points], suite: Suite, bounds: np.ndarray | None = None,
                          workers: int | None = None, candidates: list[np.ndarray] | None = None,
                          amplitude_bounds: tuple[np.ndarray, np.ndarray] | None = None,
                          known: dict | None = None, seed_eps: tuple[float, ...] = (),
                          physical_radius: float | None = None) -> dict[str, Any]:
    """A model's points ``preds`` on ``suite`` refined by the blind physics fit
    (:func:`heatmaploc.physics.parallel.refine_many`; ``known``: what it is told,
    None: nothing, as ``refine="physics"``): point metrics
    within 1 and 2 px, the share of images whose fit was used, the median relative
    error of the estimated wavelength (images with a source), the per-image seconds
    (median, p90, max, one process each), the calibration of the sigmas (the fit's
    where it was used) and, with ``bounds``, RMSE / CRLB; with ``amplitude_bounds``
    (per image, relative; with the globals known and unknown), the relative strength
    error over its bounds; on a suite with a physical frame, :func:`frame_metrics`,
    as the networks' rows of the seed table have them."""
    from heatmaploc.physics.parallel import refine_many, refinement_seconds

    refined = refine_many(suite.images, preds, known, [f"{suite.spec.name} #{i}" for i in range(len(suite))], workers,
                          candidates=candidates)
    m = point_metrics([p.xy for p in refined], suite.truths, HEADLINE_RADIUS)
    errors = [] if suite.is_point_spread else [
        abs(p.physics["wavelength_px"] / scene.wavelength - 1.0) for p, scene in zip(refined, suite.scenes)
        if p.physics.get("wavelength_px") and len(scene.points) + len(scene.hidden_points)]
    calibration = sigma_calibration([p.xy for p in refined], [p.sigma for p in refined], suite.truths, HEADLINE_RADIUS)
    out = {"r1": point_metrics([p.xy for p in refined], suite.truths, 1.0).to_dict(), "r2": m.to_dict(),
           "calibration": dataclasses.asdict(calibration),
           "accepted": float(np.mean([p.refined for p in refined])) if refined else float("nan"),
           "psf_chosen": float(np.mean([p.physics.get("family") == "psf" for p in refined])) if refined else None,
           "level_error_db_median": float(np.median(levels)) if suite.is_point_spread
           and (levels := level_errors(refined, suite)) else float("nan"),
           "wavelength_median_relative_error": float(np.median(errors)) if errors else float("nan"),
           "seconds": refinement_seconds(refined)}
    if bounds is not None:
        out.update(crlb_ratio(m.rmse, m.tp, bounds))
    if amplitude_bounds is not None:
        out.update(strength_ratio(strength_errors(refined, suite), *amplitude_bounds))
    out.update(frame_metrics([p.xy for p in refined], suite, seed_eps, physical_radius))
    return out


def level_errors(preds: list[Points], suite: Suite, radius: float = HEADLINE_RADIUS) -> list[float]:
    """Absolute errors (dB) of the sources' levels relative to each map's strongest
    source: for every matched source but the strongest, ``|10 log10(p_j / p_ref) -
    10 log10(q_j / q_ref)|`` with ``p`` the estimated powers (``Points.strength``),
    ``q`` the true ones and ``ref`` the strongest true source (maps where it is not
    matched, or without estimated powers, give none)."""
    errors = []
    for pts, truth, scene in zip(preds, suite.truths, suite.scenes):
        if len(truth) < 2 or not pts.has_strength:
            continue
        match = match_points(pts.xy, truth, radius)
        est = dict(zip(match.true_idx.tolist(), match.pred_idx.tolist()))
        ref = int(np.argmax(scene.powers))
        if ref not in est or not pts.strength[est[ref]] > 0:
            continue
        for j, i in est.items():
            if j != ref and pts.strength[i] > 0:
                errors.append(abs(10 * math.log10(pts.strength[i] / pts.strength[est[ref]])
                                  - 10 * math.log10(scene.powers[j] / scene.powers[ref])))
    return errors


def _point_rows(preds: list[Points], suite: Suite) -> dict[str, Any]:
    errors = level_errors(preds, suite)
    return {"r1": point_metrics([p.xy for p in preds], suite.truths, 1.0).to_dict(),
            "r2": point_metrics([p.xy for p in preds], suite.truths, HEADLINE_RADIUS).to_dict(),
            "level_error_db_median": float(np.median(errors)) if errors else float("nan"),
            "level_errors": len(errors)}


def psf_metrics(preds: list[Points], suite: Suite, workers: int | None = None,
                candidates: list[np.ndarray] | None = None) -> dict[str, Any]:
    """A model's points on a point-spread suite (beamforming maps, spot images) refined
    by the point-spread family (``physics={"family": "psf"}``): point metrics within 1
    and 2 px, the median relative level error (:func:`level_errors`), the share of maps
    whose fit was used and the per-map seconds (one process each)."""
    from heatmaploc.physics.parallel import refine_many, refinement_seconds

    refined = refine_many(suite.images, preds, {"family": "psf"},
                          [f"{suite.spec.name} #{i}" for i in range(len(suite))], workers, candidates=candidates)
    return {**_point_rows(refined, suite), "accepted": float(np.mean([p.refined for p in refined])) if refined else 0.0,
            "seconds": refinement_seconds(refined)}


def acoustic_peer_metrics(suite: Suite, tuning: Suite, limits: dict[str, int | None]) -> dict[str, Any]:
    """acoular's deconvolutions of the arrays' cross-spectral matrices
    (:mod:`heatmaploc.bench.acoular_peer`) on ``suite``, their dynamic range tuned on
    ``tuning``; ``limits[method]``: the first maps only (DAMAS costs ~20 s a map);
    ``{"skipped": reason}`` without acoular."""
    from heatmaploc.bench import acoular_peer

    reason = acoular_peer.unavailable_reason()
    if reason is not None:
        return {"skipped": reason}
    out: dict[str, Any] = {}
    for method in acoular_peer.METHODS:
        limit = limits.get(method)
        tune_maps, _ = acoular_peer.deconvolved_maps(tuning, method, limit)
        tuned = tuning.head(len(tune_maps))
        dr, tuned_f1 = acoular_peer.tune_dynamic_range(tune_maps, tuned.scenes, tuned.truths, HEADLINE_RADIUS)
        maps, seconds = acoular_peer.deconvolved_maps(suite, method, limit)
        preds = acoular_peer.map_points(maps, suite.scenes, dr)
        out[method] = {**_point_rows(preds, suite.head(len(preds))), "n_images": len(preds), "dynamic_range_db": dr, "tuning_f1": tuned_f1,
                       "seconds_median": seconds}
    return out
