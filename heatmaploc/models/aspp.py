"""ASPP variants on the deepest encoder feature map ``(B, C_in, H/s, W/s)``.

Both return ``(B, channels, H/s, W/s)``.  The image-pooling branch uses GroupNorm so a
batch of one trains.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from heatmaploc.models.blocks import ConvBNAct, DSConv, SEGate, WindowAttention


class PoolingBranch(nn.Module):
    """Global average pool -> 1x1 conv -> GroupNorm -> ReLU -> broadcast to the map."""

    def __init__(self, cin: int, cout: int, groups: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.norm = nn.GroupNorm(min(groups, cout), cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm(self.conv(x.mean(dim=(2, 3), keepdim=True))))
        return y.expand(-1, -1, x.shape[2], x.shape[3])


class AttentionBranch(nn.Sequential):
    """Local 3x3 depthwise conv -> window attention -> 1x1 projection -> SE channel
    gate, on the (shared) reduced features."""

    def __init__(self, channels: int, window: int, heads: int) -> None:
        cout = channels
        super().__init__(
            ConvBNAct(cout, cout, 3, groups=cout, act=nn.GELU),
            WindowAttention(cout, window, heads),
            ConvBNAct(cout, cout, 1, act=nn.GELU),
            SEGate(cout),
        )


class _ASPPBase(nn.Module):
    def __init__(self, cin: int, cout: int, branches: Sequence[nn.Module], dropout: float) -> None:
        super().__init__()
        self.branches = nn.ModuleList([ConvBNAct(cin, cout, 1), *branches, PoolingBranch(cin, cout)])
        self.project = nn.Sequential(ConvBNAct(len(self.branches) * cout, cout, 1), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))


class AttentionASPP(_ASPPBase):
    """Branch 1: 1x1 conv; branches 2-4: local window self-attention at three window
    sizes, all three on one shared 1x1 reduction of the input; branch 5: image pooling;
    concat -> 1x1 -> BN -> ReLU (-> dropout)."""

    def __init__(self, cin: int, cout: int, windows: Sequence[int] = (2, 4, 8), heads: int = 4, dropout: float = 0.1) -> None:
        if len(windows) != 3:
            raise ValueError(f"attention ASPP needs three window sizes, got {tuple(windows)}")
        super().__init__(cin, cout, [AttentionBranch(cout, w, heads) for w in windows], dropout)
        self.reduce = ConvBNAct(cin, cout, 1, act=nn.GELU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, *attention, pooling = self.branches
        reduced = self.reduce(x)
        outs = [first(x), *(branch(reduced) for branch in attention), pooling(x)]
        return self.project(torch.cat(outs, dim=1))


class ConvASPP(_ASPPBase):
    """Classic DeepLabV3 ASPP with depthwise-separable dilated 3x3 branches (ablation)."""

    def __init__(self, cin: int, cout: int, dilations: Sequence[int] = (6, 12, 18), dropout: float = 0.1) -> None:
        if len(dilations) != 3:
            raise ValueError(f"conv ASPP needs three dilation rates, got {tuple(dilations)}")
        super().__init__(cin, cout, [nn.Sequential(ConvBNAct(cin, cout, 1), DSConv(cout, cout, 3, d)) for d in dilations], dropout)
