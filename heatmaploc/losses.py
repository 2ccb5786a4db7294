"""Losses.  Heatmap losses: ``logits`` and ``target`` are ``(B, K, H, W)``; targets are
the codec's Gaussians in [0, 1].  Regression losses: the offset/uncertainty head's
``(B, 3, H, W)`` maps ``dx, dy, log sigma`` against the codec's ``encode_offsets``
targets ``(B, 3, H, W)`` (``dx, dy``, 0/1 weight)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from heatmaploc.codec import LOG_SIGMA_RANGE

CountNorm = Callable[[torch.Tensor], torch.Tensor]


def target_peaks(target: torch.Tensor) -> torch.Tensor:
    """Boolean ``(B, K, H, W)``: the peak pixel(s) of each target Gaussian (local 3x3
    maxima above 0.5), the positives of the focal loss for sub-pixel targets."""
    return (target == F.max_pool2d(target, 3, 1, 1)) & (target > 0.5)


def _per_count(total: torch.Tensor, count: torch.Tensor, count_norm: CountNorm | None) -> torch.Tensor:
    """``total / max(count, 1)``, or ``total / count_norm(count)`` (e.g. the count over
    the global batch of several processes, :meth:`heatmaploc.distributed.Context.count_norm`)."""
    return total / (count.clamp(min=1) if count_norm is None else count_norm(count))


def penalty_reduced_focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0,
                               count_norm: CountNorm | None = None) -> torch.Tensor:
    """CenterNet's focal loss: positives ``-(1-p)^a log p``; negatives
    ``-(1-y)^b p^a log(1-p)``; summed and divided by the number of positives (>= 1)."""
    pos = target_peaks(target)
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    pos_loss = -((1 - p) ** alpha) * log_p
    neg_loss = -((1 - target) ** beta) * (p**alpha) * log_not_p
    loss = torch.where(pos, pos_loss, neg_loss).sum()
    return _per_count(loss, pos.sum().float(), count_norm)


def weighted_bce_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight: float = 20.0) -> torch.Tensor:
    """BCE against the soft Gaussian targets (its minimum is ``sigmoid = target``, so
    the output keeps the Gaussian shape the codec's debiased soft-argmax expects),
    each pixel weighted ``1 + pos_weight * target``; mean over pixels."""
    weight = 1.0 + pos_weight * target
    return F.binary_cross_entropy_with_logits(logits, target, weight=weight)


def heatmap_loss(name: str, logits: torch.Tensor, target: torch.Tensor, **kw) -> torch.Tensor:
    if name == "focal":
        return penalty_reduced_focal_loss(logits, target, kw.get("alpha", 2.0), kw.get("beta", 4.0),
                                          kw.get("count_norm"))
    if name == "bce":
        return weighted_bce_loss(logits, target, kw.get("pos_weight", 20.0))
    raise ValueError(f"unknown loss {name!r}; expected 'focal' or 'bce'")


def offset_losses(pred: torch.Tensor, target: torch.Tensor,
                  count_norm: CountNorm | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Offset and uncertainty losses on the weighted pixels near each source.

    Returns ``(offset, sigma)``, each summed over the two coordinates and averaged over
    the weighted pixels (0 when there are none):

    * ``offset``: L1 of the residual ``r = predicted - true`` offset (CenterNet's
      choice; robust to the occasional pixel whose source is ambiguous);
    * ``sigma``: the Gaussian negative log-likelihood ``r^2 / (2 s^2) + log s`` of the
      predicted ``s = exp(log sigma)`` with ``r`` detached, so the offset is fitted by
      the L1 term alone and ``s`` learns the spread of what remains: its minimum is
      ``s^2 = E[r^2]``, the calibrated standard deviation.
    """
    weight = target[:, 2]
    n = weight.sum()
    residual = pred[:, :2] - target[:, :2]
    offset = _per_count((residual.abs().sum(1) * weight).sum(), n, count_norm)
    log_sigma = pred[:, 2].clamp(*LOG_SIGMA_RANGE)
    r2 = residual.detach().pow(2).sum(1)
    nll = 0.5 * r2 * torch.exp(-2.0 * log_sigma) + 2.0 * log_sigma
    return offset, _per_count((nll * weight).sum(), n, count_norm)
