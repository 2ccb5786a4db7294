"""Benchmark report: ``report.json`` (everything) and ``report.md`` (tables to paste),
written with the plots of :mod:`heatmaploc.bench.plots`."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from heatmaploc.bench.config import main_suite_name
from heatmaploc.atomic import atomic_write_text
from heatmaploc.bench.plots import write_plots

SEED_BLOG = {"num_acc": 0.9933, "coord": {"0.5": 1.0, "0.4": 0.9966, "0.3": 0.9581, "0.2": 0.7776, "0.1": 0.3629}}


def _f(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _trained_on(model: dict) -> str:
    """What a model in the report was trained on: its checkpoint, or the data section it
    was trained with here (simulator preset or folder, and point-centred crops)."""
    data = model.get("train_data")
    if not model.get("trained_here") or not data:
        return "its checkpoint's data"
    what = f"`{data.get('simulate') or data.get('train')}`"
    crop = (data.get("augment") or {}).get("point_crop")
    return what + (f", {crop:g} point crops" if crop else "")


def _physics_table(report: dict[str, Any]) -> list[str]:
    """The first model's points alone, refined by the field fit with each scene's known
    physics, and by the blind physics fit, on every suite that ran them."""
    physics = {name: rows for name, rows in report.get("physics", {}).items() if "known" in rows}  # wave suites
    if not physics:
        return []
    first = next(iter(report["models"]))
    lines = ["", f"## Physics refinement of `{first}`'s points (every suite)", "",
             "Rows per suite: the network alone; `+ known physics`: the field fit with the scene's kernel, "
             "wavelength, damping, observable and colormap (`heatmaploc.physics.fieldfit`, the count stays the "
             "network's); `+ blind physics`: the physics estimated from each image, the count corrected by BIC "
             "and the network's points kept where no model explains the image (`heatmaploc.physics.blind`). "
             "Seconds: per image, one process each (median / 90th percentile).", "",
             "| suite | points | F1@1 | F1@2 | RMSE@2 (px) | count acc | fit used | wavelength error | within 1 / 2 sigma "
             "| s / image |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, rows in physics.items():
        network = report["models"][first]["suites"][name]
        lines.append(f"| {name} | network | {_f(network['r1']['f1'])} | {_f(network['r2']['f1'])} | "
                     f"{_f(network['r2']['rmse'], 3)} | {_f(network['r2']['count_accuracy'])} | | | "
                     f"{_coverage(network.get('calibration'))} | |")
        known = rows["known"]
        lines.append(f"| | + known physics | {_f(known['r1']['f1'])} | {_f(known['r2']['f1'])} | "
                     f"{_f(known['r2']['rmse'], 3)} | {_f(known['r2']['count_accuracy'])} | | | | "
                     f"{known['seconds_per_image']:.2f} |")
        blind = rows["blind"]
        error = blind["wavelength_median_relative_error"]
        lines.append(f"| | + blind physics | {_f(blind['r1']['f1'])} | {_f(blind['r2']['f1'])} | "
                     f"{_f(blind['r2']['rmse'], 3)} | {_f(blind['r2']['count_accuracy'])} | "
                     f"{100 * blind['accepted']:.1f} % | {'' if error != error else f'{100 * error:.3f} %'} | "
                     f"{_coverage(blind.get('calibration'))} | {blind['seconds']['median']:.2f} / "
                     f"{blind['seconds']['p90']:.2f} |")
    return lines


def _point_spread_table(report: dict[str, Any]) -> list[str]:
    """Point-spread suites (beamforming maps, spot images): the first model's points,
    refined by the wave family (which must leave them as good as it found them) and by
    the point-spread family; on beamforming maps also acoular's deconvolutions of the
    arrays' cross-spectral matrices."""
    physics = {name: rows for name, rows in report.get("physics", {}).items() if "psf" in rows}
    if not physics:
        return []
    peers = report.get("acoustic_peers", {})
    first = next(iter(report["models"]))
    lines = ["", f"## Point-spread images (beamforming maps, spots): `{first}`, the wave and the point-spread family"
             + (" and acoular" if peers else ""), "",
             "The network and the refinements see only the image: `+ wave family` is `physics={\"family\": "
             "\"wave\"}` (where no wave model explains an image it keeps the network's points), `+ PSF family` is "
             "`physics={\"family\": \"psf\"}` (PSF shape or template from the image, count by BIC, powers by "
             "weighted NNLS), `+ physics (family chosen)` is `refine=\"physics\"` with nothing known (the family "
             "test of `heatmaploc.physics.family` picks one per image; `chosen`: the share of images it sent to "
             "the PSF family). "
             + ("acoular's CLEAN-SC and DAMAS (`heatmaploc.bench.acoular_peer`) get what an image user does not "
                "have: the microphones' cross-spectral matrix and the array geometry; their sources are the local "
                "maxima of the deconvolved map within a dynamic range tuned on a separate suite. " if peers else "")
             + "Level error: median over matched sources of the error of the level relative to the image's "
             "strongest source (dB). Seconds: per image, one process (median).",
             "", "| suite | method | images | F1@1 | F1@2 | RMSE@2 (px) | count acc | level error (dB) | s / image |",
             "|---|---|---|---|---|---|---|---|---|"]

    def row(suite: str, label: str, m: dict, n: Any, seconds: str) -> str:
        level = m.get("level_error_db_median", float("nan"))
        return (f"| {suite} | {label} | {n} | {_f(m['r1']['f1'])} | {_f(m['r2']['f1'])} | {_f(m['r2']['rmse'], 3)} | "
                f"{_f(m['r2']['count_accuracy'])} | {'' if level != level else f'{level:.2f}'} | {seconds} |")

    for name, rows in physics.items():
        network = report["models"][first]["suites"][name]
        n = report["suites"][name]["n_images"]
        lines.append(row(name, "network", network, n, ""))
        if rows.get("wave"):
            lines.append(row("", "+ wave family", rows["wave"], n, f"{rows['wave']['seconds']['median']:.2f}"))
        lines.append(row("", "+ PSF family", rows["psf"], n, f"{rows['psf']['seconds']['median']:.2f}"))
        if rows.get("blind"):
            share = rows["blind"].get("psf_chosen")
            label = "+ physics (family chosen" + (f": PSF on {100 * share:.0f} %)" if share is not None else ")")
            lines.append(row("", label, rows["blind"], n, f"{rows['blind']['seconds']['median']:.2f}"))
        peer = peers.get(name)
        if peer is None:
            continue
        if "skipped" in peer:
            lines.append(f"| | acoular | | skipped: {peer['skipped']} | | | | | |")
            continue
        for method, m in peer.items():
            lines.append(row("", f"acoular {method.upper()} (CSM; {m['dynamic_range_db']:g} dB range)", m,
                             m["n_images"], f"{m['seconds_median']:.2f}"))
    return lines


def _coverage(calibration: dict | None) -> str:
    if not calibration or not calibration.get("n_coordinates"):
        return ""
    return f"{100 * calibration['within_1sigma']:.1f} % / {100 * calibration['within_2sigma']:.1f} %"


def _suites_of(report: dict, group: str) -> list[str]:
    return [name for name, s in report["suites"].items() if s["group"] == group]


def _header(report: dict[str, Any], every: list, main: str) -> list[str]:
    """The run line, the test-time augmentation line and the main suite's table."""
    models = report["models"]
    lines = ["# heatmaploc benchmark", "",
             f"{report['minutes']:.1f} min; CPU threads {report['device']['threads']}, CUDA {'yes' if report['device']['cuda'] else 'no'}. "
             "Point metrics: Hungarian matching within the radius (pixels), pooled over images. "
             "Pixel metrics: disks of the codec's mask radius vs the thresholded heatmap.", ""]
    augmented = [f"{label}: {m['tta']}" for label, m in models.items() if m.get("tta", "none") != "none"]
    if augmented:
        lines += ["Test-time augmentation (heatmaps averaged over flips/quarter turns, also in the speed tables): "
                  + "; ".join(augmented) + "; every other model: none.", ""]
    lines += [f"## Main suite: `{main}` ({report['suites'][main]['n_images']} images, {report['suites'][main]['n_sources']} sources)", "",
              "| model | P@2 | R@2 | F1@1 | F1@2 | F1@3 | RMSE (px) | count acc | count MAE | mIoU | mPA | pixel F1 |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, suites_of in every:
        s = suites_of[main]
        r1, r2, r3, px = s["r1"], s["r2"], s["r3"], s["pixel"]
        lines.append(f"| {label} | {_f(r2['precision'])} | {_f(r2['recall'])} | {_f(r1['f1'])} | {_f(r2['f1'])} | {_f(r3['f1'])} | "
                     f"{_f(r2['rmse'], 3)} | {_f(r2['count_accuracy'])} | {_f(r2['count_mae'], 3)} | {_f(px['miou'])} | "
                     f"{_f(px['mpa'])} | {_f(px['mf1'])} |")
    return lines


def _suite_group_tables(report: dict[str, Any], every: list) -> list[str]:
    """F1 at 2 px of the stress suites and the SNR sweep; both-found rates of the
    close pairs."""
    lines: list[str] = []
    for group, title in (("stress", "Stress suites (F1 at 2 px)"), ("snr", "SNR sweep (F1 at 2 px)")):
        names = _suites_of(report, group)
        if not names:
            continue
        lines += ["", f"## {title}", "", "| model | " + " | ".join(names) + (" | average |" if group == "stress" else " |"),
                  "|---" * (len(names) + 1 + (group == "stress")) + "|"]
        for label, s in every:
            vals = [s[n]["r2"]["f1"] for n in names]
            avg = f" | {_f(float(np.mean(vals)))}" if group == "stress" else ""
            lines.append(f"| {label} | " + " | ".join(_f(v) for v in vals) + avg + " |")
    pairs = _suites_of(report, "pairs")
    if pairs:
        lines += ["", "## Close pairs: probability that both sources are found (within 2 px)", "",
                  "| model | " + " | ".join(pairs) + " |", "|---" * (len(pairs) + 1) + "|"]
        for label, s in every:
            lines.append(f"| {label} | " + " | ".join(_f(s[n].get("both_found")) for n in pairs) + " |")
    return lines


def _crlb_tables(report: dict[str, Any]) -> list[str]:
    """Positions (RMSE / CRLB per model, field fit, blind refinement, least squares)
    and the blind refinement's strengths on the isolated-source suites."""
    models = report["models"]
    crlbs = _suites_of(report, "crlb")
    if not crlbs:
        return []
    lsq = report["baselines"].get("least_squares_fit", {})
    lines = ["", "## Physical limit: isolated free-field sources, RMSE / CRLB (RMSE of matches within 2 px)", "",
             "| model | " + " | ".join(crlbs) + " |", "|---" * (len(crlbs) + 1) + "|",
             "| CRLB rms (px) | " + " | ".join(_f(next(iter(models.values()))["suites"][n]["crlb_rms"], 4) for n in crlbs) + " |"]
    for label, m in models.items():
        lines.append(f"| {label} | " + " | ".join(_f(m["suites"][n]["rmse_over_crlb"], 2) for n in crlbs) + " |")
    physics = report.get("physics", {})
    first = next(iter(models))
    if any(n in physics for n in crlbs):
        lines.append(f"| {first} + field fit (known kernel and wavelength) | "
                     + " | ".join(_f(physics.get(n, {}).get("known", {}).get("rmse_over_crlb"), 2) for n in crlbs) + " |")
        lines.append(f"| {first} + blind physics refinement (nothing known) | "
                     + " | ".join(_f(physics.get(n, {}).get("blind", {}).get("rmse_over_crlb"), 2) for n in crlbs) + " |")
    if lsq:
        lines.append("| least-squares fit (true model, known count) | " + " | ".join(_f(lsq.get(n, {}).get("rmse_over_crlb"), 2) for n in crlbs) + " |")
    blind = {n: physics.get(n, {}).get("blind", {}) for n in crlbs}
    if any("strength_rmse_over_crlb" in v for v in blind.values()):
        lines += ["", f"Strength `|q|` of the blind refinement ({first} + blind physics), relative error of the "
                  "matched points against its Cramér-Rao bound, with the kernel, wavelength, damping, source size "
                  "and offset known to the bound, and with them unknown (nuisance parameters, as the fit "
                  "estimates them):", "",
                  "| | " + " | ".join(crlbs) + " |", "|---" * (len(crlbs) + 1) + "|",
                  "| relative CRLB rms, globals known | "
                  + " | ".join(_f(blind[n].get("strength_crlb_rms"), 4) for n in crlbs) + " |",
                  "| relative CRLB rms, globals unknown | "
                  + " | ".join(_f(blind[n].get("strength_crlb_rms_unknown_globals"), 4) for n in crlbs) + " |",
                  "| relative RMSE | " + " | ".join(_f(blind[n].get("strength_rel_rmse"), 4) for n in crlbs) + " |",
                  "| RMSE / CRLB, globals known | "
                  + " | ".join(_f(blind[n].get("strength_rmse_over_crlb"), 2) for n in crlbs) + " |",
                  "| RMSE / CRLB, globals unknown | "
                  + " | ".join(_f(blind[n].get("strength_rmse_over_crlb_unknown_globals"), 2) for n in crlbs) + " |"]
    return lines


def _seed_table(report: dict[str, Any]) -> list[str]:
    """The seed blog protocol: Num Acc and Coord(eps) against the blog and the ceilings."""
    models = report["models"]
    seeds = _suites_of(report, "seed")
    if not seeds:
        return []
    n = seeds[0]
    first_suite = next(iter(models.values()))["suites"][n]
    eps = list(first_suite.get("coord_eps", {}).keys())
    phys = first_suite.get("physical")
    phys_head = f" | F1 within {phys['radius_units']:g} units ({phys['radius_px']:g} px)" if phys else ""
    lines = ["", f"## Seed blog protocol (`{n}`, held-out test split)", "",
             "The `trained on` column names the training data of the models trained here "
             "(a model trained on another preset saw none of this protocol's images). "
             "The ceiling row is what an efficient unbiased estimator would reach: per-source Cramér-Rao bound "
             "with the protocol's fixed strengths known and the colormap noise taken as noise on the field "
             "(`heatmaploc.physics.crlb.JET_SLOPE`). The peak row's Num Acc is the share of test images in "
             "which no two sources fall in one pixel or in pixels the peak test merges: the most that "
             "counting the peaks of a heatmap shaped like its training targets can reach.", "",
             "| model | trained on | Num Acc | " + " | ".join(f"Coord({e})" for e in eps) + phys_head + " |",
             "|---" * (len(eps) + 3 + bool(phys)) + "|",
             "| seed blog, 7 blocks / 256 | its training data (measured there) | 99.33 % | "
             + " | ".join(f"{100 * SEED_BLOG['coord'][e]:.2f} %" for e in eps) + (" | -" if phys else "") + " |"]
    ceiling = report.get("seed_ceiling", {}).get(n)
    if ceiling:
        lines.append(f"| ceiling: efficient estimator (CRLB, {ceiling['n_images']} evenly spaced images) | - | - | "
                     + " | ".join(f"{100 * ceiling['coord_eps'][e]:.2f} %" for e in eps) + (" | -" if phys else "") + " |")
        if "merged_peak_share" in ceiling:
            k = ceiling["nms_kernel"]
            lines.append(f"| ceiling: one peak per source pixel, {k}x{k} peak test (all test images) | - | "
                         f"{100 * (1 - ceiling['merged_peak_share']):.2f} % | " + " | ".join("-" for _ in eps)
                         + (" | -" if phys else "") + " |")
    pct = lambda v: "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f} %"  # noqa: E731
    rows = [(label, m, m["suites"][n]) for label, m in models.items()]
    refined = (report.get("physics", {}).get(n) or {}).get("blind")
    if refined and "coord_eps" in refined:  # the first model's points refined by the blind physics fit
        first = next(iter(models))
        rows.append((f"{first} + blind physics refinement", models[first], refined))
    for label, m, s in rows:
        lines.append(f"| {label} | {_trained_on(m)} | {pct(s['r2']['count_accuracy'])} | "
                     + " | ".join(pct(s["coord_eps"][e]) for e in eps)
                     + (f" | {_f(s['physical']['f1']) if 'physical' in s else '-'}" if phys else "") + " |")
    return lines


def _calibration_table(report: dict[str, Any]) -> list[str]:
    """Coverage of the per-point sigmas, per model and suite."""
    calibrated = [(label, m) for label, m in report["models"].items()
                  if any((s.get("calibration") or {}).get("n_coordinates") for s in m["suites"].values())]
    if not calibrated:
        return []
    lines = ["", "## Calibration of the per-point sigma (pairs matched within 2 px)", "",
             "Share of coordinates whose error is within 1 and 2 predicted sigmas (ideal for Gaussian errors: "
             "68.3 % and 95.4 %); plot: `plots/sigma_reliability.png`.", "",
             "| model | suite | coordinates | within 1 sigma | within 2 sigma | median sigma (px) | rms error (px) |",
             "|---|---|---|---|---|---|---|"]
    for label, m in calibrated:
        for name, s in m["suites"].items():
            c = s.get("calibration") or {}
            if c.get("n_coordinates"):
                lines.append(f"| {label} | {name} | {c['n_coordinates']} | {100 * c['within_1sigma']:.1f} % | "
                             f"{100 * c['within_2sigma']:.1f} % | {_f(c['median_sigma'], 3)} | {_f(c['rms_error'], 3)} |")
    return lines


def _ablation_tables(report: dict[str, Any]) -> list[str]:
    """The decoding and test-time augmentation ablations of the first model."""
    first = next(iter(report["models"]))
    lines: list[str] = []
    if "decode_ablation" in report:
        lines += ["", f"## Decoding ablation ({first}, main suite)", "", "| refinement | F1@1 | F1@2 | RMSE@2 (px) |", "|---|---|---|---|"]
        for mode, m in report["decode_ablation"].items():
            lines.append(f"| {mode} | {_f(m['r1']['f1'])} | {_f(m['r2']['f1'])} | {_f(m['r2']['rmse'], 3)} |")
    if "tta_ablation" in report:
        lines += ["", f"## Test-time augmentation ({first}, main suite, same threshold)", "",
                  "| mode | passes | F1@1 | F1@2 | RMSE@2 (px) | count acc | time ratio |", "|---|---|---|---|---|---|---|"]
        for mode, m in report["tta_ablation"].items():
            lines.append(f"| {mode} | {m['passes']} | {_f(m['r1']['f1'])} | {_f(m['r2']['f1'])} | {_f(m['r2']['rmse'], 3)} | "
                         f"{_f(m['r2']['count_accuracy'])} | {m['time_ratio']:.2f} |")
    return lines


def _speed_tables(report: dict[str, Any]) -> list[str]:
    """Images/s per device and model, as ratios to the reference model of the same run,
    and the classical baselines' parameters."""
    models = report["models"]
    ref = report["speed_reference"]
    lines: list[str] = []
    for device, speed in report["speed"].items():
        keys = list(next(iter(speed.values())).keys())
        lines += ["", f"## Speed ({device.upper()}): full pipeline images/s (uint8 RGB in, points out), ratio to `{ref}` "
                  "in the same run", "",
                  "| model | params (M) | GFLOPs @256 | " + " | ".join(f"{k} img/s (ratio)" for k in keys) + " |",
                  "|---" * (len(keys) + 3) + "|"]
        for label, s in speed.items():
            c = models[label]["complexity"]
            lines.append(f"| {label} | {c['params_m']:.2f} | {c['gflops']:.2f} | "
                         + " | ".join(f"{s[k]:.1f} ({s[k] / speed[ref][k]:.2f})" for k in keys) + " |")
    tp = report["baselines"].get("trackpy")
    lines += ["", f"Classical baseline parameters (tuned on a separate simulated split): {report['baselines']['classical']['params']}; "
              + (f"trackpy parameters: {tp['params']}." if tp else "trackpy: not installed (pip install 'heatmaploc[trackpy]')."), ""]
    return lines


def markdown(report: dict[str, Any]) -> str:
    """``report.md``: the tables of a benchmark report, section by section."""
    baselines = {"classical (filter + peak_local_max)": report["baselines"]["classical"]["suites"]}
    if isinstance(report["baselines"].get("trackpy"), dict):
        baselines["trackpy.locate"] = report["baselines"]["trackpy"]["suites"]
    main = main_suite_name({name: s["group"] for name, s in report["suites"].items()})
    every = [(label, m["suites"]) for label, m in report["models"].items()] + list(baselines.items())
    lines = (_header(report, every, main) + _suite_group_tables(report, every) + _crlb_tables(report)
             + _physics_table(report) + _point_spread_table(report) + _seed_table(report) + _calibration_table(report)
             + _ablation_tables(report) + _speed_tables(report))
    return "\n".join(lines)


def write_report(report: dict[str, Any], out: Path, suites, main_outputs, locs) -> None:
    atomic_write_text(out / "report.json", json.dumps(_json_safe(report), indent=1))
    atomic_write_text(out / "report.md", markdown(report))
    write_plots(report, out / "plots", suites, main_outputs, locs)
