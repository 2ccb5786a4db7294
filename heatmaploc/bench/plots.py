"""Benchmark plots: F1 vs radius, precision/recall vs threshold, error histogram,
sigma reliability, count confusion, example overlays, training curves."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from heatmaploc.atomic import save_figure
from heatmaploc.bench.config import main_suite_name
from heatmaploc.viz import plot_points_grid, plot_training_curves, subplots


def _finish(fig, ax, path: Path, xlabel: str, ylabel: str, grid: bool = True) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    if grid:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def plot_reliability(report: dict[str, Any], path: Path) -> Path | None:
    """Reliability diagram of the predicted sigmas: observed share of ``|error| <= k
    sigma`` against the Gaussian expectation ``erf(k / sqrt 2)``, one curve per model
    and suite with calibrated points (none: no plot)."""
    curves = [(f"{label}: {name}", s["calibration"]) for label, m in report["models"].items()
              for name, s in m["suites"].items() if (s.get("calibration") or {}).get("n_coordinates")]
    if not curves:
        return None
    fig, ax = subplots(figsize=(6, 5))
    ax.plot([0, 1], [0, 1], color="gray", lw=1, ls="--", label="ideal")
    for label, c in curves:
        expected = [math.erf(k / math.sqrt(2)) for k in c["levels"]]
        ax.plot(expected, c["observed"], marker=".", lw=1, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    _finish(fig, ax, path, "expected share within k sigma (Gaussian)", "observed share within k sigma")
    return path


def write_plots(report: dict[str, Any], plots: Path, suites, main_outputs, locs) -> None:
    """The PNGs of a benchmark report into the folder ``plots``."""
    plots.mkdir(exist_ok=True)
    main = suites[main_suite_name({name: s.spec.group for name, s in suites.items()})]
    models = report["models"]
    fig, ax = subplots(figsize=(6, 4))
    radii = [float(k[1:]) for k in next(iter(models.values()))["suites"][main.spec.name] if k.startswith("r") and k[1:].replace(".", "").isdigit()]
    for label, m in models.items():
        ax.plot(radii, [m["suites"][main.spec.name][f"r{r:g}"]["f1"] for r in radii], marker="o", label=label)
    _finish(fig, ax, plots / "f1_vs_radius.png", "matching radius (px)", "F1")
    fig, ax = subplots(figsize=(6, 4))
    for label, m in models.items():
        curve = m["suites"][main.spec.name].get("pr_curve")
        if curve:
            ax.plot([c["recall"] for c in curve], [c["precision"] for c in curve], marker=".", label=label)
    _finish(fig, ax, plots / "precision_recall_vs_threshold.png", "recall (2 px)", "precision (2 px)")
    fig, ax = subplots(figsize=(6, 4))
    for label, m in models.items():
        errs = m["suites"][main.spec.name]["errors"]
        if errs:
            ax.hist(errs, bins=30, range=(0, 3), histtype="step", label=label)
    _finish(fig, ax, plots / "error_histogram.png", "localization error of matched pairs (px)", "count", grid=False)
    plot_reliability(report, plots / "sigma_reliability.png")
    first = next(iter(models))
    counts = np.array(models[first]["suites"][main.spec.name]["counts"]).reshape(-1, 2)
    top = int(counts.max()) + 1 if len(counts) else 1
    mat = np.zeros((top, top), int)
    for t, p in counts:
        mat[t, p] += 1
    fig, ax = subplots(figsize=(5, 4.5))
    ax.imshow(mat, cmap="Blues")
    for (i, j), v in np.ndenumerate(mat):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
    ax.set_xlabel("predicted count")
    ax.set_ylabel("true count")
    ax.set_title(f"count confusion: {first}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, plots / "count_confusion.png")
    n = min(report["config"]["examples"], len(main))
    from heatmaploc.inference import decode_outputs

    preds = decode_outputs(main_outputs[first][:n], locs[first].codec)
    plot_points_grid(main.images[:n], main.truths[:n], plots / "examples.png", preds=[p.xy for p in preds],
                     titles=[f"{first}: {p.count} found, {len(t)} true" for p, t in zip(preds, main.truths[:n])])
    for label, m in models.items():
        if m["history"]:
            plot_training_curves(m["history"], plots / f"training_{''.join(c if c.isalnum() else '_' for c in label)}.png")
