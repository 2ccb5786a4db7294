"""Shallow-feature fusion of the stride-2 and stride-4 encoder features."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from heatmaploc.models.blocks import CBAM, ConvBNAct, DSConv


class ShallowFusion(nn.Module):
    """``F1 (B, c1, H/2, W/2)``, ``F2 (B, c2, H/4, W/4)`` -> ``(B, out, H/2, W/2)``.

    Each input: 1x1 reduce + depthwise-separable refine; F2 upsampled to F1; concat;
    1x1 conv to ``out``; dropout; CBAM re-weighting.  (A 3x3 conv after the concat
    would run at stride 2, where it costs more than it adds on CPUs; the decoder's
    depthwise-separable convs follow anyway.)
    """

    def __init__(self, c1: int, c2: int, reduced: tuple[int, int] = (16, 16), out: int = 32, dropout: float = 0.1) -> None:
        super().__init__()
        self.f1 = nn.Sequential(ConvBNAct(c1, reduced[0], 1), DSConv(reduced[0], reduced[0]))
        self.f2 = nn.Sequential(ConvBNAct(c2, reduced[1], 1), DSConv(reduced[1], reduced[1]))
        self.fuse = nn.Sequential(ConvBNAct(sum(reduced), out, 1), nn.Dropout2d(dropout))
        self.attention = CBAM(out)

    def forward(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        a = self.f1(f1)
        b = F.interpolate(self.f2(f2), size=a.shape[-2:], mode="bilinear", align_corners=False)
        return self.attention(self.fuse(torch.cat([a, b], dim=1)))
