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

Models with a regression head (``K + 3`` output channels, :mod:`heatmaploc.codec`)
also predict a sub-pixel offset vector per pixel: mapped back, the vector is turned
and flipped with the pixels (:func:`invert_vectors`), then averaged; the predicted
sigmas are combined as the root mean square (an average of correlated estimates is
not more certain than its parts, so no ``1 / sqrt(n)`` is claimed).
"""
from __future__ import annotations

import torch
import torch.nn as nn

TTA_MODES = ("none", "flip", "d4")

Transform = tuple[int, bool]  # (quarter turns, then left-right flip first)
# The views of a test-time augmentation run as one batch up to this many pixels (batch x
# height x width of the input), else view by view.  0: never by default, since on this
# 2-core CPU 8 images of 128 x 128 px at d4 ran 2.4x slower as one batch of 64 than as 8
# batches of 8 (tools/inference_speed.py, docs/benchmark/speed/); batch_views=True asks
# for it where it pays (an accelerator).
VIEW_BATCH_MAX_PIXELS = 0


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


def invert_vectors(dx: torch.Tensor, dy: torch.Tensor, t: Transform) -> tuple[torch.Tensor, torch.Tensor]:
    """Map displacement components predicted in the frame of ``apply(x, t)`` back to
    the original frame.  A quarter turn (``np.rot90``, counter-clockwise) maps
    ``(x, y) -> (y, W - 1 - x)``, so a displacement ``(u, v) -> (v, -u)``; a left-right
    flip maps ``(u, v) -> (-u, v)``."""
    k, flip = t
    for _ in range(k % 4):  # undo one turn: (u', v') = (v, -u)  =>  (u, v) = (-v', u')
        dx, dy = -dy, dx
    return (-dx, dy) if flip else (dx, dy)


def averaged_maps(model: nn.Module, x: torch.Tensor, mode: str = "none",
                  batch_views: bool | None = None) -> torch.Tensor:
    """``(B, C, H, W)`` images -> the model's maps averaged over the mode's transforms:
    ``(B, K, H, W)`` float32 source probabilities (sigmoid of the logits), followed for
    a model with a regression head by ``dx, dy`` (averaged after mapping back) and
    ``log sigma`` (log of the root mean square sigma).

    ``batch_views``: run the views of one shape (all of them for square images; the
    turned and the unturned ones otherwise) as one batch of ``B`` times their number
    instead of one forward pass each; ``None``: when ``B H W`` is at most
    :data:`VIEW_BATCH_MAX_PIXELS`."""
    classes = int(getattr(model, "classes", 1))
    ts = transforms(mode)
    if batch_views is None:
        batch_views = x.shape[0] * x.shape[-2] * x.shape[-1] <= VIEW_BATCH_MAX_PIXELS
    groups: dict[object, list[Transform]] = {}
    for t in ts:  # batched: by the view's shape (an odd number of quarter turns swaps H and W)
        groups.setdefault(bool(t[0] % 2) and x.shape[-2] != x.shape[-1] if batch_views else t, []).append(t)
    prob = offsets = variance = None
    for group in groups.values():
        views = [apply(x, t) for t in group]
        out = model(views[0] if len(views) == 1 else torch.cat(views)).float()
        for t, y in zip(group, out.split(x.shape[0])):  # accumulated as they come: one view's maps at a time
            y = invert(y, t)
            p = torch.sigmoid(y[:, :classes])
            prob = p if prob is None else prob + p
            if y.shape[1] > classes:
                dx, dy = invert_vectors(y[:, classes], y[:, classes + 1], t)
                var = torch.exp(2 * y[:, classes + 2])
                offsets = torch.stack([dx, dy], 1) if offsets is None else offsets + torch.stack([dx, dy], 1)
                variance = var if variance is None else variance + var
    n = len(ts)
    if offsets is None:
        return prob / n
    return torch.cat([prob / n, offsets / n, (0.5 * torch.log(variance / n)).unsqueeze(1)], dim=1)
