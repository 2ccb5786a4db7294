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

import functools
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
from scipy.special import expit

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


def array_ops(x: Any) -> SimpleNamespace:
    """The few array operations test-time augmentation needs, for numpy arrays (the
    ONNX engine, no torch) or torch tensors (imported only when ``x`` is one)."""
    return _NUMPY_OPS if isinstance(x, np.ndarray) else _torch_ops()


@functools.cache
def _torch_ops() -> SimpleNamespace:
    import torch

    return SimpleNamespace(flip=lambda a: torch.flip(a, dims=[-1]), rot90=lambda a, k: torch.rot90(a, k, dims=[-2, -1]),
                           sigmoid=torch.sigmoid, exp=torch.exp, log=torch.log, cat=lambda xs, axis: torch.cat(xs, axis),
                           stack=lambda xs, axis: torch.stack(xs, axis), float32=lambda a: a.float())


_NUMPY_OPS = SimpleNamespace(flip=lambda a: np.flip(a, axis=-1), rot90=lambda a, k: np.rot90(a, k, axes=(-2, -1)),
                             sigmoid=expit, exp=np.exp, log=np.log, cat=lambda xs, axis: np.concatenate(xs, axis),
                             stack=lambda xs, axis: np.stack(xs, axis), float32=lambda a: a.astype(np.float32, copy=False))


def apply(x, t: Transform):
    """Transform ``(..., H, W)`` (numpy or torch): optional left-right flip, then ``k``
    quarter turns (counter-clockwise, ``np.rot90``'s and ``torch.rot90``'s sense)."""
    ops, (k, flip) = array_ops(x), t
    if flip:
        x = ops.flip(x)
    return ops.rot90(x, k) if k % 4 else x


def invert(y, t: Transform):
    """Undo :func:`apply` on a model output."""
    ops, (k, flip) = array_ops(y), t
    if k % 4:
        y = ops.rot90(y, -k)
    return ops.flip(y) if flip else y


def invert_vectors(dx, dy, t: Transform):
    """Map displacement components predicted in the frame of ``apply(x, t)`` back to
    the original frame.  A quarter turn (``np.rot90``, counter-clockwise) maps
    ``(x, y) -> (y, W - 1 - x)``, so a displacement ``(u, v) -> (v, -u)``; a left-right
    flip maps ``(u, v) -> (-u, v)``."""
    k, flip = t
    for _ in range(k % 4):  # undo one turn: (u', v') = (v, -u)  =>  (u, v) = (-v', u')
        dx, dy = -dy, dx
    return (-dx, dy) if flip else (dx, dy)


def averaged_maps(model: Callable[[Any], Any], x, mode: str = "none", batch_views: bool | None = None):
    """``(B, C, H, W)`` images -> the model's maps averaged over the mode's transforms:
    ``(B, K, H, W)`` float32 source probabilities (sigmoid of the logits), followed for
    a model with a regression head by ``dx, dy`` (averaged after mapping back) and
    ``log sigma`` (log of the root mean square sigma).

    One implementation for both engines: ``x`` and what ``model`` returns are torch
    tensors (a torch module) or numpy arrays (an ONNX network, no torch); ``model``
    has ``classes`` (``K``, default 1).

    ``batch_views``: run the views of one shape (all of them for square images; the
    turned and the unturned ones otherwise) as one batch of ``B`` times their number
    instead of one forward pass each; ``None``: when ``B H W`` is at most
    :data:`VIEW_BATCH_MAX_PIXELS`."""
    ops = array_ops(x)
    classes = int(getattr(model, "classes", 1))
    ts = transforms(mode)
    b = x.shape[0]
    if batch_views is None:
        batch_views = b * x.shape[-2] * x.shape[-1] <= VIEW_BATCH_MAX_PIXELS
    groups: dict[object, list[Transform]] = {}
    for t in ts:  # batched: by the view's shape (an odd number of quarter turns swaps H and W)
        groups.setdefault(bool(t[0] % 2) and x.shape[-2] != x.shape[-1] if batch_views else t, []).append(t)
    prob = offsets = variance = None
    for group in groups.values():
        views = [apply(x, t) for t in group]
        out = ops.float32(model(views[0] if len(views) == 1 else ops.cat(views, 0)))
        for j, t in enumerate(group):  # accumulated as they come: one view's maps at a time
            y = invert(out[j * b : (j + 1) * b], t)
            p = ops.sigmoid(y[:, :classes])
            prob = p if prob is None else prob + p
            if y.shape[1] > classes:
                dx, dy = invert_vectors(y[:, classes], y[:, classes + 1], t)
                var = ops.exp(2 * y[:, classes + 2])
                offsets = ops.stack([dx, dy], 1) if offsets is None else offsets + ops.stack([dx, dy], 1)
                variance = var if variance is None else variance + var
    n = len(ts)
    if offsets is None:
        return prob / n
    return ops.cat([prob / n, offsets / n, ops.stack([0.5 * ops.log(variance / n)], 1)], 1)
