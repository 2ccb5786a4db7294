"""Run a benchmark: every model on the same suites in one process, speed as ratios to a
reference measured in the same run, then ``report.json``, ``report.md`` and plots."""
from __future__ import annotations

import logging
import statistics
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from heatmaploc.api import Localizer
from heatmaploc.checkpoint import checkpoint_path
from heatmaploc.bench.classical import tune_classical, tune_trackpy
from heatmaploc.bench.config import BenchConfig, ModelSpec, main_suite_name
from heatmaploc.bench.measures import (acoustic_peer_metrics, amplitude_crlb_of_suite, blind_physics_metrics, both_found,
                                       crlb_of_suite, crlb_ratio, field_fit_metrics, frame_metrics, lsq_points,
                                       pr_curve, psf_metrics, seed_protocol_ceiling)
from heatmaploc.bench.suites import Suite, SuiteSpec, build_suite
from heatmaploc.codec import HeatmapCodec
from heatmaploc.config import config_from_dict, to_plain
from heatmaploc.evaluation import evaluate_outputs
from heatmaploc.inference import decode_outputs, support_candidates
from heatmaploc.outputs import PointOutput
from heatmaploc.runtime import torch_session
from heatmaploc.training import train
from heatmaploc.metrics import HEADLINE_RADIUS, match_points, point_metrics
from heatmaploc.models import model_complexity
from heatmaploc.points import Points
from heatmaploc.tta import transforms

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- models
def training_data(cfg: BenchConfig, spec: ModelSpec) -> dict[str, Any]:
    """The data section a model is trained with: the benchmark's ``train_data`` with the
    model's own ``data`` overrides on top (``augment`` merged key by key)."""
    data = {**cfg.train_data, **spec.data}
    if "augment" in cfg.train_data and "augment" in spec.data:
        data["augment"] = {**cfg.train_data["augment"], **spec.data["augment"]}
    return data


def obtain_model(spec: ModelSpec, cfg: BenchConfig, out: Path, progress: bool) -> tuple[Localizer, list[dict]]:
    """A Localizer for ``spec``: loaded, or trained here within ``cfg.train_minutes``."""
    if spec.checkpoint:
        loc = Localizer.from_checkpoint(checkpoint_path(spec.checkpoint), device="auto", tta=spec.tta)
        if spec.codec:
            loc = loc.with_codec(**spec.codec)
        return loc, []
    if not spec.model:
        raise ValueError(f"model {spec.label!r}: give a checkpoint or a registry model to train")
    run_cfg = config_from_dict({
        "model": spec.model,
        "codec": spec.codec,
        "data": training_data(cfg, spec),
        "train": {**cfg.train_defaults, "max_minutes": cfg.train_minutes, "threads": cfg.threads, **spec.train},
    }, f"benchmark model {spec.label!r}")
    run_dir = out / "runs" / "".join(c if c.isalnum() else "_" for c in spec.label)
    result = train(run_cfg, run_dir, progress=progress)
    # The resume state (optimizer moments included) is not needed once training is
    # over; best.pt, log.csv and config.yaml stay.
    result.last_checkpoint.unlink(missing_ok=True)
    return Localizer.from_checkpoint(result.best_checkpoint, device="auto", tta=spec.tta), result.history


# ---------------------------------------------------------------- speed
def pipeline_speed(locs: dict[str, Localizer], sizes, batch: int, rounds: int) -> dict[str, dict[str, float]]:
    """Images/s of preprocess + network + decode from uint8 RGB, at batch 1 and
    ``batch``, after warm-up; models interleaved round by round, medians."""
    rng = np.random.default_rng(0)
    result: dict[str, dict[str, float]] = {label: {} for label in locs}
    for size in sizes:
        images = [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(batch)]
        for bs in (1, batch):
            def run(loc: Localizer) -> float:
                t0 = time.perf_counter()
                loc.predict_batch(images[:bs], batch_size=bs)
                return bs / (time.perf_counter() - t0)

            for loc in locs.values():
                run(loc)
            samples = {label: [] for label in locs}
            for _ in range(rounds):
                for label, loc in locs.items():
                    samples[label].append(run(loc))
            for label in locs:
                result[label][f"{size}px_b{bs}"] = statistics.median(samples[label])
    return result


def tta_ablation(loc: Localizer, suite: Suite, cfg: BenchConfig) -> dict[str, Any]:
    """Point metrics of one heatmap model on ``suite`` under each test-time augmentation
    of ``cfg.tta_modes`` (same weights, same threshold), with the CPU time per image
    relative to a single pass."""
    shapes = [im.shape[:2] for im in suite.images]
    result: dict[str, Any] = {}
    for mode in cfg.tta_modes:
        t0 = time.perf_counter()
        outputs = loc.with_tta(mode).raw_outputs(suite.images)
        seconds = time.perf_counter() - t0
        m = evaluate_outputs(outputs, suite.truths, shapes, loc.codec, cfg.radii)
        result[mode] = {**{f"r{r:g}": m[f"r{r:g}"] for r in cfg.radii}, "passes": len(transforms(mode)), "seconds": seconds}
    base = result.get("none", next(iter(result.values())))["seconds"]
    for entry in result.values():
        entry["time_ratio"] = entry["seconds"] / base
    return result


# ---------------------------------------------------------------- main entry
def run_benchmark(cfg: BenchConfig, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Run everything in ``cfg``; write ``out/report.json``, ``out/report.md`` and plots
    (with ``cfg.threads`` CPU threads; the caller's thread count and random state are
    restored on return)."""
    with torch_session(cfg.threads):
        return _run_benchmark(cfg, Path(out), progress)


def _run_benchmark(cfg: BenchConfig, out: Path, progress: bool) -> dict[str, Any]:
    from heatmaploc.bench.report import write_report

    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    suites = {s.name: build_suite(s) for s in tqdm(cfg.suites, desc="suites", disable=not progress)}
    report: dict[str, Any] = {"config": to_plain(asdict(cfg)), "suites": {}, "models": {}, "baselines": {}}
    for name, suite in suites.items():
        report["suites"][name] = {"group": suite.spec.group, "n_images": len(suite),
                                  "n_sources": int(sum(len(t) for t in suite.truths))}
    bounds = {name: crlb_of_suite(s) for name, s in suites.items() if s.spec.group == "crlb"}  # per suite, once
    amplitude_bounds = {name: (amplitude_crlb_of_suite(s), amplitude_crlb_of_suite(s, unknown_globals=True))
                        for name, s in suites.items() if s.spec.group == "crlb"}
    locs: dict[str, Localizer] = {}
    main_outputs: dict[str, list[Any]] = {}
    main_suite = suites[main_suite_name({name: s.spec.group for name, s in suites.items()})]
    first_preds: dict[str, list[Points]] = {}  # the first model's points, for the physics refinements
    first_candidates: dict[str, list[Any]] = {}  # and where the refinement may add a source
    for spec in cfg.models:
        loc, history = obtain_model(spec, cfg, out, progress)
        locs[spec.label] = loc
        entry: dict[str, Any] = {"history": history, "threshold": loc.threshold, "tta": loc.tta, "suites": {},
                                 "complexity": model_complexity(loc.model, (256, 256)), "trained_here": not spec.checkpoint,
                                 "train_data": None if spec.checkpoint else training_data(cfg, spec)}
        for name, suite in tqdm(suites.items(), desc=spec.label, disable=not progress):
            outputs = loc.raw_outputs(suite.images)
            shapes = [im.shape[:2] for im in suite.images]
            metrics = evaluate_outputs(outputs, suite.truths, shapes, loc.codec, cfg.radii)
            preds = decode_outputs(outputs, loc.codec)
            metrics["counts"] = [[len(t), p.count] for t, p in zip(suite.truths, preds)]
            if suite.spec.group == "pairs":
                metrics["both_found"] = both_found([p.xy for p in preds], suite.truths)
            if suite.spec.group == "crlb":
                metrics.update(crlb_ratio(metrics["r2"]["rmse"], metrics["r2"]["tp"], bounds[name]))
            if spec is cfg.models[0] and (cfg.physics_groups is None or suite.spec.group in cfg.physics_groups):
                first_preds[name] = preds
                first_candidates[name] = support_candidates(outputs, loc.codec)
            metrics.update(frame_metrics([p.xy for p in preds], suite, cfg.seed_eps, cfg.physical_radius))
            if suite is main_suite:
                main_outputs[spec.label] = outputs
                metrics["pr_curve"] = pr_curve(outputs, suite.truths, loc.codec, cfg.thresholds, HEADLINE_RADIUS)
                metrics["errors"] = _matched_errors(preds, suite.truths, 3.0)
            entry["suites"][name] = metrics
        report["models"][spec.label] = entry
    first = cfg.models[0].label
    report["decode_ablation"] = {}
    for mode in cfg.decode_modes:
        if mode == "offset" and not locs[first].has_regression:
            continue  # no offset maps to decode
        codec = locs[first].with_codec(refine=mode).codec
        m = evaluate_outputs(main_outputs[first], main_suite.truths, [im.shape[:2] for im in main_suite.images], codec, cfg.radii)
        report["decode_ablation"][mode] = {f"r{r:g}": m[f"r{r:g}"] for r in cfg.radii}
    report["tta_ablation"] = tta_ablation(locs[first], main_suite, cfg)
    report["physics"] = {}
    for name, preds in tqdm(first_preds.items(), desc="physics refinement", disable=not progress):
        if suites[name].is_point_spread:  # each family stated, and the automatic choice
            report["physics"][name] = {
                "wave": blind_physics_metrics(preds, suites[name], None, cfg.threads, first_candidates[name],
                                              known={"family": "wave"}),
                "blind": blind_physics_metrics(preds, suites[name], None, cfg.threads, first_candidates[name]),
                "psf": psf_metrics(preds, suites[name], cfg.threads, first_candidates[name])}
            continue
        report["physics"][name] = {
            "known": field_fit_metrics(preds, suites[name], bounds.get(name)),
            "blind": blind_physics_metrics(preds, suites[name], bounds.get(name), cfg.threads,
                                           first_candidates[name], amplitude_bounds.get(name),
                                           seed_eps=cfg.seed_eps, physical_radius=cfg.physical_radius)}
    report["acoustic_peers"] = {}
    for name, suite in suites.items():
        if suite.is_acoustic and cfg.acoustic_peer:  # acoustic_peer: null leaves the peer out
            peer = cfg.acoustic_peer
            tuning = build_suite(replace(suite.spec, seed=suite.spec.seed + int(peer["tuning_seed_offset"]),
                                         n=int(peer["tuning_n"])))
            report["acoustic_peers"][name] = acoustic_peer_metrics(suite, tuning, dict(peer.get("limits") or {}))
    report["baselines"] = _baselines(cfg, suites, bounds, progress)
    report["seed_ceiling"] = {name: seed_protocol_ceiling(s, cfg.seed_eps, cfg.seed_crlb_images,
                                                          locs[first].codec.config.nms_kernel)
                              for name, s in suites.items() if s.spec.group == "seed" and s.frame is not None}
    report["speed"] = {"cpu": pipeline_speed({label: loc.to("cpu") for label, loc in locs.items()}, cfg.speed_sizes,
                                             cfg.speed_batch, cfg.speed_rounds)}
    if torch.cuda.is_available():
        report["speed"]["cuda"] = pipeline_speed({label: loc.to("cuda") for label, loc in locs.items()}, cfg.speed_sizes,
                                                 cfg.speed_batch, cfg.speed_rounds)
    reference = next((m.label for m in cfg.models if m.reference), first)
    report["speed_reference"] = reference
    report["device"] = {"cuda": torch.cuda.is_available(), "threads": cfg.threads}
    report["minutes"] = (time.time() - started) / 60
    write_report(report, out, suites, main_outputs, locs)
    return report


def _matched_errors(preds: list[Points], truths: list[np.ndarray], radius: float) -> list[float]:
    return [float(d) for p, t in zip(preds, truths) for d in match_points(p.xy, t, radius).distances]


def _detector_on_suites(det, cfg: BenchConfig, suites: dict[str, Suite], label: str, progress: bool) -> dict[str, Any]:
    codec = HeatmapCodec()
    results = {}
    for name, suite in tqdm(suites.items(), desc=label, disable=not progress):
        preds = [det.detect(im) for im in suite.images]
        metrics = evaluate_outputs([PointOutput(p) for p in preds], suite.truths, [im.shape[:2] for im in suite.images],
                                   codec, cfg.radii)
        if suite.spec.group == "pairs":
            metrics["both_found"] = both_found([p.xy for p in preds], suite.truths)
        results[name] = metrics
    return results


def _baselines(cfg: BenchConfig, suites: dict[str, Suite], bounds: dict[str, np.ndarray], progress: bool) -> dict[str, Any]:
    tuning = build_suite(SuiteSpec("classical tuning", preset=cfg.classical_train.get("preset", "default"),
                                   seed=cfg.classical_train["seed"], n=cfg.classical_train["n"]))
    det, tuned_f1 = tune_classical(tuning.images, tuning.truths)
    out: dict[str, Any] = {"classical": {"params": asdict(det), "tuning_f1": tuned_f1,
                                         "suites": _detector_on_suites(det, cfg, suites, "classical", progress)}}
    lsq: dict[str, Any] = {}
    for name, suite in suites.items():
        if suite.spec.group != "crlb" or cfg.lsq_images < 1:
            continue
        pts = lsq_points(suite, cfg.lsq_images)
        truths = suite.truths[: len(pts)]
        m = point_metrics(pts, truths, HEADLINE_RADIUS)
        lsq[name] = {"r2": m.to_dict(), **crlb_ratio(m.rmse, m.tp, bounds[name][: len(pts)]), "n_images": len(pts)}
    out["least_squares_fit"] = lsq
    try:
        import trackpy  # noqa: F401
    except ImportError:
        return out
    tp_det, tp_f1 = tune_trackpy(tuning.images, tuning.truths)
    out["trackpy"] = {"params": asdict(tp_det), "tuning_f1": tp_f1,
                      "suites": _detector_on_suites(tp_det, cfg, suites, "trackpy", progress)}
    return out
