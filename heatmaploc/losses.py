"""Heatmap losses.  ``logits`` and ``target`` are ``(B, K, H, W)``; targets are the
codec's Gaussians in [0, 1]."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def target_peaks(target: torch.Tensor) -> torch.Tensor:
    """Boolean ``(B, K, H, W)``: the peak pixel(s) of each target Gaussian (local 3x3
    maxima above 0.5), the positives of the focal loss for sub-pixel targets."""
    return (target == F.max_pool2d(target, 3, 1, 1)) & (target > 0.5)


def penalty_reduced_focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet's focal loss: positives ``-(1-p)^a log p``; negatives
    ``-(1-y)^b p^a log(1-p)``; summed and divided by the number of positives (>= 1)."""
    pos = target_peaks(target)
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    pos_loss = -((1 - p) ** alpha) * log_p
    neg_loss = -((1 - target) ** beta) * (p**alpha) * log_not_p
    loss = torch.where(pos, pos_loss, neg_loss).sum()
    return loss / pos.sum().clamp(min=1)


def weighted_bce_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight: float = 20.0) -> torch.Tensor:
    """BCE against the soft Gaussian targets (its minimum is ``sigmoid = target``, so
    the output keeps the Gaussian shape the codec's debiased soft-argmax expects),
    each pixel weighted ``1 + pos_weight * target``; mean over pixels."""
    weight = 1.0 + pos_weight * target
    return F.binary_cross_entropy_with_logits(logits, target, weight=weight)


def heatmap_loss(name: str, logits: torch.Tensor, target: torch.Tensor, **kw) -> torch.Tensor:
    if name == "focal":
        return penalty_reduced_focal_loss(logits, target, kw.get("alpha", 2.0), kw.get("beta", 4.0))
    if name == "bce":
        return weighted_bce_loss(logits, target, kw.get("pos_weight", 20.0))
    raise ValueError(f"unknown loss {name!r}; expected 'focal' or 'bce'")
