"""Plots people would rather see than read (PNG out).

Figures are made with matplotlib's object API (:class:`matplotlib.figure.Figure`, which
saves through the Agg canvas), never through pyplot: no backend is chosen and no global
figure state is touched, so the package can be imported beside any GUI.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from heatmaploc.atomic import save_figure


def subplots(*args: Any, figsize: tuple[float, float] | None = None, **kwargs: Any):
    """``(figure, axes)`` like ``pyplot.subplots``, without pyplot."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def _show(ax, image: np.ndarray) -> None:
    if image.ndim == 3 and image.shape[2] >= 3:
        img = image[..., :3]
        if img.dtype != np.uint8:
            lo, hi = float(img.min()), float(img.max())
            img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        ax.imshow(img, interpolation="nearest")
    else:
        ax.imshow(np.squeeze(image), cmap="gray", interpolation="nearest")


def plot_points_grid(images: Sequence[np.ndarray], truths: Sequence[np.ndarray | None], path: str | Path,
                     preds: Sequence[np.ndarray | None] | None = None, titles: Sequence[str] | None = None,
                     columns: int = 4) -> Path:
    """Grid of images with ground truth (white circles) and predictions (red crosses).

    Points are ``(N, 2)`` ``(x, y)`` pixels; ``imshow`` puts pixel centres at integers,
    the same convention, so markers sit exactly on the sources.
    """
    n = len(images)
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    fig, axes = subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i >= n:
            continue
        _show(ax, images[i])
        gt = truths[i] if truths is not None else None
        if gt is not None and len(gt):
            ax.scatter(gt[:, 0], gt[:, 1], s=70, facecolors="none", edgecolors="white", linewidths=1.5)
        pr = preds[i] if preds is not None else None
        if pr is not None and len(pr):
            ax.scatter(pr[:, 0], pr[:, 1], s=40, marker="x", c="red", linewidths=1.5)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)
    return path


def plot_training_curves(history: Sequence[dict], path: str | Path) -> Path:
    """Training loss and validation F1 / count accuracy against the step."""
    steps = [h["step"] for h in history]
    fig, (a, b) = subplots(1, 2, figsize=(10, 3.6))
    a.plot(steps, [h["train_loss"] for h in history], marker="o")
    a.set_xlabel("step")
    a.set_ylabel("train loss")
    a.set_yscale("log")
    b.plot(steps, [h["val_f1"] for h in history], marker="o", label="val F1")
    b.plot(steps, [h["val_count_acc"] for h in history], marker="s", label="val count accuracy")
    b.set_xlabel("step")
    b.set_ylim(0, 1.02)
    b.legend(loc="lower right")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    save_figure(fig, path)
    return path
