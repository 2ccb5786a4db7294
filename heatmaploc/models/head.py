"""Full-resolution heatmap head with optional CoordConv channels."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from heatmaploc.models.blocks import ConvBNAct
from heatmaploc.subpixel import REGRESSION_CHANNELS


def coord_channels(b: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """``(B, 2, H, W)`` normalized ``x`` then ``y`` in [-1, 1] (pixel centres)."""
    ys = torch.linspace(-1.0, 1.0, h, device=like.device, dtype=like.dtype) if h > 1 else torch.zeros(1, device=like.device, dtype=like.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=like.device, dtype=like.dtype) if w > 1 else torch.zeros(1, device=like.device, dtype=like.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y]).unsqueeze(0).expand(b, -1, -1, -1)


def prior_bias(prior: float) -> float:
    """Bias with ``sigmoid(bias) = prior`` (focal-loss initialization)."""
    return -math.log((1.0 - prior) / prior)


class HeatmapHead(nn.Module):
    """``(B, cin, h, w)`` decoder features -> ``(B, classes, H, W)`` logits.

    1x1 reduce -> bilinear upsample to the input size -> [CoordConv] -> 3x3 refine ->
    1x1 to logits, bias initialized so the initial sigmoid output is ``prior``.
    """

    def __init__(self, cin: int, classes: int, channels: int = 16, coordconv: bool = False, prior: float = 0.01) -> None:
        super().__init__()
        self.coordconv = coordconv
        self.reduce = ConvBNAct(cin, channels, 1)
        self.refine = ConvBNAct(channels + (2 if coordconv else 0), channels, 3)
        self.logits = nn.Conv2d(channels, classes, 1)
        nn.init.constant_(self.logits.bias, prior_bias(prior))

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = F.interpolate(self.reduce(x), size=size, mode="bilinear", align_corners=False)
        if self.coordconv:
            y = torch.cat([y, coord_channels(y.shape[0], size[0], size[1], y)], dim=1)
        return self.logits(self.refine(y))


class RegressionHead(nn.Module):
    """``(B, cin, h, w)`` decoder features -> ``(B, 3, H, W)`` maps ``dx, dy, log sigma``
    (pixels of the input; the codec's regression channels).

    3x3 conv -> 1x1 to the three maps at the features' own resolution, then bilinear
    upsampling of those three maps alone.  Inside a source's block the target offset
    ``q - p`` is linear in the pixel position ``p``, which bilinear interpolation
    reproduces exactly, so the head needs no full-resolution features (the costly part
    of a head on a CPU).  The last conv starts at zero: a fresh head predicts the peak
    pixel itself with sigma 1 px and does not disturb a trained heatmap branch.
    """

    def __init__(self, cin: int, channels: int = 16) -> None:
        super().__init__()
        self.refine = ConvBNAct(cin, channels, 3)
        self.out = nn.Conv2d(channels, REGRESSION_CHANNELS, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(self.out(self.refine(x)), size=size, mode="bilinear", align_corners=False)
