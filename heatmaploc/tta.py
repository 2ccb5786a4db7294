"""Test-time augmentation over the symmetries of the pixel grid.

A point source's field is isotropic, so flipping or rotating an image by a multiple of
90 degrees flips or rotates its source heatmap the same way.  Averaging the model's
probabilities over such transforms (each mapped back exactly, pixel for pixel) cancels
part of the model's own orientation-dependent errors.  Modes:

* ``"none"``: one forward pass;
* ``"flip"``: identity, left-right, up-down and both (4 passes);
* ``"d4"``: all 8 symmetries of the square (4 rotations, each with and without a
  left-right flip; 8 passes).  Non-square images work: a rotated image is simply
  ``W x H``, and the heatmap is rotated back.
"""
from __future__ import annotations

import torch
import torch.nn as nn

TTA_MODES = ("none", "flip", "d4")

Transform = tuple[int, bool]  # (quarter turns, then left-right flip first)


def transforms(mode: str) -> list[Transform]:
    """The ``(quarter_turns, flip)`` pairs of a mode (identity first)."""
    if mode == "none":
        return [(0, False)]
    if mode == "flip":
        return [(0, False), (0, True), (2, True), (2, False)]  # rot180 + lr flip = up-down flip
    if mode == "d4":
        return [(k, f) for k in range(4) for f in (False, True)]
    raise ValueError(f"unknown test-time augmentation {mode!r}; expected one of {TTA_MODES}")


def apply(x: torch.Tensor, t: Transform) -> torch.Tensor:
    """Transform ``(..., H, W)``: optional left-right flip, then ``k`` quarter turns."""
    k, flip = t
    if flip:
        x = torch.flip(x, dims=[-1])
    return torch.rot90(x, k, dims=[-2, -1]) if k % 4 else x


def invert(y: torch.Tensor, t: Transform) -> torch.Tensor:
    """Undo :func:`apply` on a model output."""
    k, flip = t
    if k % 4:
        y = torch.rot90(y, -k, dims=[-2, -1])
    return torch.flip(y, dims=[-1]) if flip else y


def averaged_probabilities(model: nn.Module, x: torch.Tensor, mode: str = "none") -> torch.Tensor:
    """``(B, C, H, W)`` images -> ``(B, K, H, W)`` float32 source probabilities of a
    heatmap model (logits in, sigmoid averaged over the mode's transforms)."""
    total = None
    ts = transforms(mode)
    for t in ts:
        p = torch.sigmoid(invert(model(apply(x, t)).float(), t))
        total = p if total is None else total + p
    return total / len(ts)
