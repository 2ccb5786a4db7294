"""Scoring outputs against the truth and calibrating a checkpoint on validation data:
point and pixel metrics, sigma calibration, the decode threshold and the sigma factor
per test-time augmentation mode."""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from tqdm import tqdm

from heatmaploc.codec import CodecConfig, HeatmapCodec
from heatmaploc.config import RunConfig
from heatmaploc.data.sources import validation_samples
from heatmaploc.inference import decode_outputs, predict_samples, support_candidates
from heatmaploc.inference_config import InferenceConfig
from heatmaploc.metrics import (
    GAUSSIAN_COVERAGE,
    HEADLINE_RADIUS,
    RADII,
    pixel_confusion,
    pixel_metrics,
    point_metrics,
    sigma_calibration,
    standardized_errors,
)
from heatmaploc.models import build_model
from heatmaploc.points import Points


def evaluate_outputs(outputs: Sequence[Any], truths: Sequence[np.ndarray], shapes: Sequence[tuple[int, int]],
                     codec: HeatmapCodec, radii: Sequence[float] = RADII, threshold: float | None = None) -> dict[str, Any]:
    """Point metrics at each radius, pixel metrics (disk masks of radius
    ``codec.config.mask_radius`` vs the heatmap thresholded at the decode threshold;
    point models: disks around their points) and the calibration of the points'
    sigmas over pairs matched within ``HEADLINE_RADIUS`` (``calibration``; its
    shares are NaN for a model that predicts no sigma)."""
    thr = codec.config.threshold if threshold is None else threshold
    preds = decode_outputs(outputs, codec, thr)
    result: dict[str, Any] = {"threshold": thr, "n_images": len(truths)}
    for r in radii:
        result[f"r{r:g}"] = point_metrics([p.xy for p in preds], truths, r).to_dict()
    conf = np.zeros((2, 2), np.int64)
    for out, truth, shape in zip(outputs, truths, shapes):
        conf += pixel_confusion(out.source_mask(codec, thr, shape), codec.masks(truth, shape))
    result["pixel"] = pixel_metrics(conf).to_dict()
    result["calibration"] = asdict(sigma_calibration([p.xy for p in preds], [p.sigma for p in preds], truths,
                                                     HEADLINE_RADIUS))
    return result


def best_threshold(outputs: Sequence[Any], truths: Sequence[np.ndarray], codec: HeatmapCodec, grid: Sequence[float],
                   radius: float) -> tuple[float, dict[float, float]]:
    """The decode threshold of ``grid`` with the best pooled F1 at ``radius`` (ties:
    the one closest to 0.5)."""
    scores = {}
    for t in grid:
        preds = decode_outputs(outputs, codec, t)
        scores[float(t)] = point_metrics([p.xy for p in preds], truths, radius).f1
    best = max(scores, key=lambda t: (round(scores[t], 9), -abs(t - 0.5)))
    return best, scores


def sigma_scale(preds: Sequence[Points], truths: Sequence[np.ndarray], radius: float = HEADLINE_RADIUS) -> float:
    """The factor that makes the predicted sigmas of ``preds`` calibrated at one sigma:
    the 68.27 % quantile of ``|error| / sigma`` over the coordinates of the pairs matched
    within ``radius`` (1.0 when no matched point has a sigma).  Multiplying every sigma
    by it puts 68.27 % of those errors within one sigma, as for Gaussian errors."""
    errors, scales, _ = standardized_errors([p.xy for p in preds], [p.sigma for p in preds], truths, radius)
    if not len(scales):
        return 1.0
    return float(np.quantile(np.abs(errors / scales[:, None]), GAUSSIAN_COVERAGE[1]))


def calibrate_checkpoint(ckpt: dict[str, Any], cfg: RunConfig, device: torch.device,
                         val: Sequence[dict] | None = None, modes: Sequence[str] | None = None) -> dict[str, Any]:
    """Calibrate a heatmap checkpoint on the run's validation set, for each test-time
    augmentation of ``modes`` (default: one pass and ``cfg.train.tta``): the decode
    threshold with the best F1 at ``train.val_radius`` and the factor on the points'
    sigmas (:func:`sigma_scale` at that threshold; 1 for models without sigmas).  For
    a point model the threshold is recorded but does not change its points.

    Updates and returns ``ckpt``: ``codec_config.threshold`` (and ``sigma_scale``) and
    ``threshold_scores`` (F1 per threshold) of ``cfg.train.tta``, and ``inference``:
    ``{"tta": cfg.train.tta, "thresholds": {mode: t}, "sigma_scales": {mode: f},
    "tiling": {"size", "overlap"}}`` (:class:`heatmaploc.inference_config.InferenceConfig`,
    which :class:`heatmaploc.api.Localizer` reads; the tiling kept from before, else
    :class:`heatmaploc.tiling.TileConfig`'s), merged over the modes calibrated before."""
    codec = HeatmapCodec(CodecConfig(**{**ckpt["codec_config"], "sigma_scale": 1.0}))
    val = validation_samples(cfg, codec) if val is None else val
    model = build_model(ckpt["model_config"]).to(device)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["model_state"].items()})
    truths = [s["points"].numpy() for s in val]
    inference = InferenceConfig.from_dict(ckpt.get("inference"))
    scores = {}
    for mode in dict.fromkeys(modes or ("none", cfg.train.tta)):
        outputs = predict_samples(model, val, device, tta=mode)
        threshold, scores[mode] = best_threshold(outputs, truths, codec, cfg.train.threshold_grid,
                                                 cfg.train.val_radius)
        inference = inference.calibrated(mode, threshold, sigma_scale(decode_outputs(outputs, codec, threshold), truths))
    inference = inference.with_(tta=cfg.train.tta)
    ckpt["codec_config"] = asdict(inference.codec_for(codec).config)
    ckpt["threshold_scores"] = {str(k): v for k, v in scores[inference.tta].items()}
    ckpt["inference"] = inference.to_dict()
    return ckpt


def evaluate_dataset(loc: Any, dataset: str | Path, radii: Sequence[float] = RADII,
                     threshold: float | None = None, group_by: Sequence[str] = (), field_fit_from_meta: bool = False,
                     progress: bool = False, physics: Mapping[str, Any] | None = None,
                     workers: int | None = None) -> dict[str, Any]:
    """Metrics of a :class:`~heatmaploc.api.Localizer` on a labelled dataset folder.

    Each image is read once.  Returns :func:`evaluate_outputs`'s dict (``r<radius>``,
    ``pixel``, ``calibration``, ``threshold``, ``n_images``) plus ``n_sources``,
    ``tta``; with ``field_fit_from_meta`` a ``field_fit`` entry (``images_fitted`` and
    ``r<radius>`` point metrics of the points refined by the field fit with the physics
    each image's ``meta.json`` record states; the count stays the model's); for each
    ``group_by`` key (a per-image field of ``meta.json``) ``by_<key>``: per value the
    point metrics at 2 px, with ``after_field_fit`` when the fit ran.

    With ``physics`` (a mapping of what is known, ``{}`` for nothing) the decoded points
    are also refined by the blind physics fit on ``workers`` processes
    (:func:`heatmaploc.physics.parallel.refine_many`): a ``physics`` entry holds its
    ``r<radius>`` point metrics, ``calibration`` of the fit's sigmas, the share of
    images whose fit was ``accepted``, ``estimates`` (per image: what was estimated,
    with the truth from ``meta.json`` where it states it), ``wavelength`` (median and
    90th percentile of the relative error, images with a wave in view whose
    ``meta.json`` states the wavelength), and ``seconds`` (per-image refinement time:
    median, p90, max; and the wall time per image over all workers), ``by_mode`` (per
    refinement path: point metrics at 2 px and the sigma calibration); the groups gain
    ``after_physics``.
    """
    from heatmaploc.data.index import load_dataset
    from heatmaploc.data.io import read_image
    from heatmaploc.physics.fieldfit import model_from_meta, refine_points

    index = load_dataset(dataset, progress=progress)
    images = [read_image(rec.path) for rec in tqdm(index.records, desc="read", unit="img", disable=not progress)]
    outputs = loc.raw_outputs(images)
    truths = [rec.points for rec in index.records]
    shapes = [image.shape[:2] for image in images]
    radii = sorted({float(r) for r in radii})
    metrics = evaluate_outputs(outputs, truths, shapes, loc.codec, radii, threshold=threshold)
    metrics.update(n_sources=int(index.counts().sum()), tta=loc.tta)
    per_image = index.meta.get("images", {})
    refined = None
    if field_fit_from_meta:
        preds = decode_outputs(outputs, loc.codec, metrics["threshold"])
        refined, fitted = [], 0
        for rec, image, pts in tqdm(list(zip(index.records, images, preds)), desc="field fit", unit="img",
                                    disable=not progress):
            model = model_from_meta(per_image.get(rec.name, {}))
            if model is not None and pts.count:
                pts = refine_points(image, pts, model, name=str(rec.path))
                fitted += 1
            refined.append(pts.xy)
        metrics["field_fit"] = {"images_fitted": fitted,
                                **{f"r{r:g}": point_metrics(refined, truths, r).to_dict() for r in radii}}
    after_physics = None
    if physics is not None:
        metrics["physics"], after_physics = _physics_metrics(
            index, images, decode_outputs(outputs, loc.codec, metrics["threshold"]),
            support_candidates(outputs, loc.codec, metrics["threshold"]), truths, radii, physics, workers, progress)
    for key in group_by:
        groups: dict[str, list[int]] = {}
        for i, rec in enumerate(index.records):
            groups.setdefault(str(per_image.get(rec.name, {}).get(key, "(none)")), []).append(i)
        metrics[f"by_{key}"] = {}
        for value, idx in sorted(groups.items()):
            sub = evaluate_outputs([outputs[i] for i in idx], [truths[i] for i in idx], [shapes[i] for i in idx],
                                   loc.codec, (HEADLINE_RADIUS,), threshold=threshold)["r2"]
            sub.update(n_images=len(idx), n_sources=sum(len(truths[i]) for i in idx))
            if refined is not None:
                sub["after_field_fit"] = point_metrics([refined[i] for i in idx], [truths[i] for i in idx],
                                                   HEADLINE_RADIUS).to_dict()
            if after_physics is not None:
                sub["after_physics"] = point_metrics([after_physics[i].xy for i in idx], [truths[i] for i in idx],
                                                     HEADLINE_RADIUS).to_dict()
            metrics[f"by_{key}"][value] = sub
    return metrics


def _physics_metrics(index: Any, images: Sequence[np.ndarray], preds: Sequence[Points],
                     candidates: Sequence[Any], truths: Sequence[np.ndarray], radii: Sequence[float],
                     known: Mapping[str, Any], workers: int | None, progress: bool) -> tuple[dict[str, Any], list[Points]]:
    """:func:`evaluate_dataset`'s ``physics`` entry and the refined points (``candidates``:
    per image the support candidates, :func:`heatmaploc.inference.support_candidates`)."""
    from heatmaploc.physics.parallel import refine_many, refinement_seconds

    started = time.perf_counter()
    refined = refine_many(images, preds, known, [str(rec.path) for rec in index.records], workers, progress,
                          candidates)
    wall = time.perf_counter() - started
    per_image = index.meta.get("images", {})
    estimates, errors, errors_used = [], [], []
    for rec, pts in zip(index.records, refined):
        est = dict(pts.physics or {})
        truth = per_image.get(rec.name, {})
        est["image"] = rec.name
        est["truth"] = {k: truth.get(k) for k in ("kernel", "observable", "colormap", "wavelength_px", "damping")
                        if k in truth}
        if "rendering" in truth:
            est["truth"]["colormap"] = truth.get("colormap") if truth["rendering"] == "colormap" else None
        if est.get("wavelength_px") and truth.get("wavelength_px"):
            errors.append(abs(est["wavelength_px"] / float(truth["wavelength_px"]) - 1.0))
            if est.get("accepted"):
                errors_used.append(errors[-1])
        estimates.append(est)
    errors_arr = np.asarray(errors)
    out = {f"r{r:g}": point_metrics([p.xy for p in refined], truths, r).to_dict() for r in radii}
    out.update(
        calibration=asdict(sigma_calibration([p.xy for p in refined], [p.sigma for p in refined], truths,
                                             HEADLINE_RADIUS)),
        accepted=float(np.mean([bool(p.refined) for p in refined])) if refined else float("nan"),
        wavelength={"n_images": int(len(errors_arr)),
                    "median_relative_error": float(np.median(errors_arr)) if len(errors_arr) else float("nan"),
                    "p90_relative_error": float(np.percentile(errors_arr, 90)) if len(errors_arr) else float("nan"),
                    "n_images_fit_used": len(errors_used),
                    "median_relative_error_fit_used": float(np.median(errors_used)) if errors_used else float("nan")},
        seconds={**refinement_seconds(refined), "wall_per_image": wall / max(len(refined), 1)},
        known=dict(known), estimates=estimates,
    )
    for key in ("kernel", "observable", "colormap"):
        pairs = [(e.get(key), e["truth"].get(key)) for e in estimates if e.get("accepted") and key in e["truth"]
                 and e.get("kernel") is not None]
        out[f"{key}_accuracy"] = float(np.mean([a == b for a, b in pairs])) if pairs else float("nan")
    out["by_mode"] = _by_mode(refined, truths)
    return out, refined


def _by_mode(refined: Sequence[Points], truths: Sequence[np.ndarray]) -> dict[str, Any]:
    """Per refinement path (``Points.physics["mode"]``: ``global``, ``local``,
    ``windowed``, or ``network`` where the network's points were kept) the images,
    the point metrics at 2 px and the sigma calibration of that path's points: where
    the pooled calibration is off, which path's sigmas are."""
    groups: dict[str, list[int]] = {}
    for i, pts in enumerate(refined):
        groups.setdefault(str((pts.physics or {}).get("mode", "network")), []).append(i)
    out = {}
    for mode, idx in sorted(groups.items()):
        preds, trues = [refined[i].xy for i in idx], [truths[i] for i in idx]
        out[mode] = {"n_images": len(idx), **point_metrics(preds, trues, HEADLINE_RADIUS).to_dict(),
                     "calibration": asdict(sigma_calibration(preds, [refined[i].sigma for i in idx], trues,
                                                             HEADLINE_RADIUS))}
    return out
