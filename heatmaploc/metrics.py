"""Point matching, point metrics and pixel metrics (docs/design.md section 6).

Points are ``(N, 2)`` ``(x, y)`` pixels.  Conventions for empty sets (explicit):

* precision = tp / (tp + fp), or 1.0 when nothing was predicted;
* recall = tp / (tp + fn), or 1.0 when there is nothing to find;
* F1 = 2 tp / (2 tp + fp + fn), or 1.0 when both sets are empty;
* RMSE and mean distance are over matched pairs, NaN when there is none.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

HEADLINE_RADIUS = 2.0  # pixels: the radius of the headline figures (F1, RMSE, sigma calibration); docs/design.md section 6
RADII = (1.0, HEADLINE_RADIUS, 3.0)  # the matching radii (pixels) every report gives


@dataclass(frozen=True)
class Matching:
    """Result of matching one image: index pairs and their distances (pixels)."""

    pred_idx: np.ndarray
    true_idx: np.ndarray
    distances: np.ndarray
    n_pred: int
    n_true: int

    @property
    def tp(self) -> int:
        return len(self.distances)

    @property
    def fp(self) -> int:
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        return self.n_true - self.tp


def match_points(pred: np.ndarray, true: np.ndarray, radius: float) -> Matching:
    """Hungarian matching on Euclidean distance; a pair counts only if ``d <= radius``.

    Pairs beyond the radius get a prohibitive cost, so the assignment first maximizes
    the number of pairs within the radius, then minimizes their total distance.
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 2)
    true = np.asarray(true, dtype=np.float64).reshape(-1, 2)
    empty = np.zeros(0, np.int64)
    if len(pred) == 0 or len(true) == 0:
        return Matching(empty, empty, np.zeros(0), len(pred), len(true))
    dist = cdist(pred, true)
    within = dist <= radius
    big = 1e6 * (1.0 + float(radius))
    rows, cols = linear_sum_assignment(np.where(within, dist, big))
    ok = within[rows, cols]
    return Matching(rows[ok], cols[ok], dist[rows[ok], cols[ok]], len(pred), len(true))


@dataclass(frozen=True)
class PointMetrics:
    """Pooled point metrics at one radius (pixels unless stated)."""

    radius: float
    n_images: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    rmse: float
    mean_distance: float
    count_accuracy: float
    count_mae: float

    def to_dict(self) -> dict:
        return asdict(self)


def _ratios(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 1.0
    return precision, recall, f1


def point_metrics(preds: Sequence[np.ndarray], trues: Sequence[np.ndarray], radius: float,
                  per_image: bool = False) -> PointMetrics | list[PointMetrics]:
    """Match every image and pool the counts (``per_image=False``) or return one
    :class:`PointMetrics` per image (``per_image=True``)."""
    if len(preds) != len(trues):
        raise ValueError(f"got {len(preds)} prediction lists but {len(trues)} ground-truth lists")
    matchings = [match_points(p, t, radius) for p, t in zip(preds, trues)]
    groups = [[m] for m in matchings] if per_image else [matchings]
    out = [_pool(g, radius) for g in groups]
    return out if per_image else out[0]


def _pool(matchings: Sequence[Matching], radius: float) -> PointMetrics:
    tp = sum(m.tp for m in matchings)
    fp = sum(m.fp for m in matchings)
    fn = sum(m.fn for m in matchings)
    precision, recall, f1 = _ratios(tp, fp, fn)
    dists = np.concatenate([m.distances for m in matchings]) if matchings else np.zeros(0)
    counts = np.array([(m.n_pred, m.n_true) for m in matchings], dtype=np.int64).reshape(-1, 2)
    n = len(matchings)
    return PointMetrics(
        radius=float(radius), n_images=n, tp=tp, fp=fp, fn=fn, precision=precision, recall=recall, f1=f1,
        rmse=float(np.sqrt(np.mean(dists**2))) if len(dists) else float("nan"),
        mean_distance=float(np.mean(dists)) if len(dists) else float("nan"),
        count_accuracy=float(np.mean(counts[:, 0] == counts[:, 1])) if n else float("nan"),
        count_mae=float(np.mean(np.abs(counts[:, 0] - counts[:, 1]))) if n else float("nan"),
    )


# ---------------------------------------------------------------- calibration of sigma
GAUSSIAN_COVERAGE = {1: 0.6827, 2: 0.9545}  # P(|z| <= k) of a standard normal


@dataclass(frozen=True)
class Calibration:
    """How honest the predicted per-point sigmas are, over matched pairs.

    Each matched pair gives two standardized errors ``z = (pred - true) / sigma``, one
    per coordinate; ``within_1sigma`` / ``within_2sigma`` are the shares with
    ``|z| <= 1`` / ``<= 2`` (ideal for Gaussian errors: 0.683 / 0.954).  Pairs whose
    sigma is unknown (NaN) are left out and counted in ``n_unknown``.
    ``median_sigma`` and ``rms_error`` (per coordinate) compare the scale claimed with
    the scale found.

    Attributes:
        radius: matching radius (pixels).
        n_coordinates: standardized errors counted (2 per matched pair).
        levels, observed: the reliability curve: for each ``k`` in ``levels`` the share
            of ``|z| <= k`` (expected: ``erf(k / sqrt 2)``).
    """

    radius: float
    n_coordinates: int
    n_unknown: int
    within_1sigma: float
    within_2sigma: float
    median_sigma: float
    rms_error: float
    levels: list
    observed: list


def standardized_errors(preds: Sequence[np.ndarray], sigmas: Sequence[np.ndarray], trues: Sequence[np.ndarray],
                        radius: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-coordinate errors ``(M, 2)`` of the matched pairs with a known sigma, their
    sigmas ``(M,)``, and the number of matched pairs whose sigma is unknown."""
    errors, scales, unknown = [], [], 0
    for pred, sigma, true in zip(preds, sigmas, trues):
        pred = np.asarray(pred, dtype=np.float64).reshape(-1, 2)
        sigma = np.asarray(sigma, dtype=np.float64).reshape(-1)
        m = match_points(pred, true, radius)
        known = np.isfinite(sigma[m.pred_idx]) & (sigma[m.pred_idx] > 0)
        unknown += int((~known).sum())
        errors.append(pred[m.pred_idx[known]] - np.asarray(true, dtype=np.float64).reshape(-1, 2)[m.true_idx[known]])
        scales.append(sigma[m.pred_idx[known]])
    return (np.concatenate(errors) if errors else np.zeros((0, 2)), np.concatenate(scales) if scales else np.zeros(0),
            unknown)


def sigma_calibration(preds: Sequence[np.ndarray], sigmas: Sequence[np.ndarray], trues: Sequence[np.ndarray],
                      radius: float = HEADLINE_RADIUS, levels: Sequence[float] = tuple(np.round(np.arange(0.25, 3.01, 0.25), 2))
                      ) -> Calibration:
    """Pooled :class:`Calibration` of predicted sigmas (one ``(N_i,)`` array per image,
    beside the ``(N_i, 2)`` points) against the truth, matched as :func:`point_metrics`
    does at ``radius``; shares are NaN when no matched pair has a sigma."""
    if not len(preds) == len(sigmas) == len(trues):
        raise ValueError(f"got {len(preds)} prediction lists, {len(sigmas)} sigma lists, {len(trues)} truth lists")
    errors, scales, unknown = standardized_errors(preds, sigmas, trues, radius)
    z = np.abs(errors / scales[:, None]).ravel() if len(scales) else np.zeros(0)

    def share(k: float) -> float:
        return float(np.mean(z <= k)) if len(z) else float("nan")

    return Calibration(
        radius=float(radius), n_coordinates=int(len(z)), n_unknown=unknown, within_1sigma=share(1.0),
        within_2sigma=share(2.0), median_sigma=float(np.median(scales)) if len(scales) else float("nan"),
        rms_error=float(np.sqrt(np.mean(errors**2))) if len(errors) else float("nan"),
        levels=[float(k) for k in levels], observed=[share(k) for k in levels],
    )


# ---------------------------------------------------------------- pixel metrics
def pixel_confusion(pred_mask: np.ndarray, true_mask: np.ndarray) -> np.ndarray:
    """``(2, 2)`` int64 confusion matrix ``[true_class, pred_class]`` of two ``(H, W)``
    boolean masks (class 0 background, class 1 source).  Sum over images to pool."""
    pred_mask = np.asarray(pred_mask, dtype=bool)
    true_mask = np.asarray(true_mask, dtype=bool)
    if pred_mask.shape != true_mask.shape:
        raise ValueError(f"mask shapes differ: prediction {pred_mask.shape}, truth {true_mask.shape}")
    idx = true_mask.ravel().astype(np.int64) * 2 + pred_mask.ravel().astype(np.int64)
    return np.bincount(idx, minlength=4).reshape(2, 2)


@dataclass(frozen=True)
class PixelMetrics:
    """Two-class pixel metrics from a confusion matrix.

    ``iou``, ``precision``, ``recall``, ``f1`` are per class ``[background, source]``;
    ``miou``, ``mpa`` (mean per-class recall), ``mprecision``, ``mrecall``, ``mf1``
    average the two classes.  A class absent from both truth and prediction scores
    1.0 (perfect agreement); precision with no prediction of a class is 1.0 when the
    class is absent from the truth too, else 0.0 (and the same for recall).
    """

    confusion: list
    iou: list
    precision: list
    recall: list
    f1: list
    miou: float
    mpa: float
    mprecision: float
    mrecall: float
    mf1: float

    def to_dict(self) -> dict:
        return asdict(self)


def pixel_metrics(confusion: np.ndarray) -> PixelMetrics:
    """Per-class IoU / precision / recall / F1 and their means from ``(2, 2)`` counts."""
    cm = np.asarray(confusion, dtype=np.float64)
    if cm.shape != (2, 2):
        raise ValueError(f"expected a (2, 2) confusion matrix, got {cm.shape}")
    tp = np.diag(cm)
    n_pred = cm.sum(axis=0)
    n_true = cm.sum(axis=1)
    union = n_pred + n_true - tp

    iou = np.where(union > 0, tp / np.where(union > 0, union, 1), 1.0)
    precision = np.where(n_pred > 0, tp / np.where(n_pred > 0, n_pred, 1), np.where(n_true == 0, 1.0, 0.0))
    recall = np.where(n_true > 0, tp / np.where(n_true > 0, n_true, 1), np.where(n_pred == 0, 1.0, 0.0))
    pr = precision + recall
    f1 = np.where(pr > 0, 2 * precision * recall / np.where(pr > 0, pr, 1), 0.0)
    return PixelMetrics(
        confusion=cm.astype(np.int64).tolist(), iou=iou.tolist(), precision=precision.tolist(),
        recall=recall.tolist(), f1=f1.tolist(), miou=float(iou.mean()), mpa=float(recall.mean()),
        mprecision=float(precision.mean()), mrecall=float(recall.mean()), mf1=float(f1.mean()),
    )
