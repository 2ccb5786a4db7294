"""Grouped coordinate attention inside an smp encoder's inverted-residual blocks (the
SFF-WA study's encoder change, SEEDS.md B), added by wrapping, without forking smp.

Coordinate attention (Hou et al., 2021) gates a feature map by one weight per row and
one per column, so the gate knows *where* along each axis a response lies, which a
channel gate (SE) does not.  The SFF-WA variant computes the row and column statistics
as mean + max pooling (cheaper than adaptive pooling on CPUs and GPUs alike), uses
grouped 1x1 convs, and applies the gate after the depthwise conv of the deeper blocks
only (it slowed training badly when used everywhere).
"""
from __future__ import annotations

import torch
import torch.nn as nn

ENCODER_ATTENTIONS = ("none", "ggca")


class GroupedCoordAttention(nn.Module):
    """``(B, C, H, W) -> (B, C, H, W)``: ``x * a_row(y) * a_col(x)``.

    Row statistics: mean + max over ``W`` -> ``(B, C, H, 1)``; column statistics: mean +
    max over ``H`` -> ``(B, C, 1, W)``.  Both go through one shared grouped 1x1 conv to
    ``C / reduction`` channels (BN, Hardswish), then a grouped 1x1 conv each back to
    ``C`` channels and a sigmoid.  The output convs start at zero weight and bias
    ``+4`` (a gate of about 0.98 everywhere), so the block added to a trained encoder
    starts close to the identity.
    """

    def __init__(self, channels: int, groups: int = 4, reduction: int = 8) -> None:
        super().__init__()
        groups = max(g for g in range(1, groups + 1) if channels % g == 0)
        hidden = max(channels // reduction, 8)
        hidden += (-hidden) % groups
        self.reduce = nn.Sequential(nn.Conv2d(channels, hidden, 1, groups=groups, bias=False), nn.BatchNorm2d(hidden),
                                    nn.Hardswish())
        self.to_row = nn.Conv2d(hidden, channels, 1, groups=groups)
        self.to_col = nn.Conv2d(hidden, channels, 1, groups=groups)
        for conv in (self.to_row, self.to_col):
            nn.init.zeros_(conv.weight)
            nn.init.constant_(conv.bias, 4.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        rows = x.mean(dim=3, keepdim=True) + x.amax(dim=3, keepdim=True)  # (B, C, H, 1)
        cols = x.mean(dim=2, keepdim=True) + x.amax(dim=2, keepdim=True)  # (B, C, 1, W)
        both = self.reduce(torch.cat([rows, cols.transpose(2, 3)], dim=2))  # (B, hidden, H + W, 1)
        row_part, col_part = torch.split(both, [h, w], dim=2)
        return x * torch.sigmoid(self.to_row(row_part)) * torch.sigmoid(self.to_col(col_part.transpose(2, 3)))


def add_coordinate_attention(encoder: nn.Module, first_block: int, groups: int = 4, reduction: int = 8) -> int:
    """Insert a :class:`GroupedCoordAttention` after the depthwise conv of every
    inverted-residual block of ``encoder.features`` from index ``first_block`` on
    (torchvision MobileNetV2 layout, which smp's ``mobilenet_v2`` encoder is).

    Returns the number of blocks changed; raises ``ValueError`` for an encoder without
    that layout.
    """
    features = getattr(encoder, "features", None)
    if features is None:
        raise ValueError(f"encoder_attention needs a MobileNetV2-style encoder (features of inverted-residual "
                         f"blocks); {type(encoder).__name__} has none")
    changed = 0
    for block in list(features)[first_block:]:
        conv = getattr(block, "conv", None)
        if conv is None:
            continue
        layers = list(conv)
        depthwise = next((i for i, layer in enumerate(layers) if _is_depthwise(layer)), None)
        if depthwise is None:
            continue
        channels = _out_channels(layers[depthwise])
        layers.insert(depthwise + 1, GroupedCoordAttention(channels, groups, reduction))
        block.conv = nn.Sequential(*layers)
        changed += 1
    if not changed:
        raise ValueError(f"encoder_attention: no inverted-residual block from index {first_block} of "
                         f"{type(encoder).__name__}.features")
    return changed


def _is_depthwise(layer: nn.Module) -> bool:
    convs = [m for m in layer.modules() if isinstance(m, nn.Conv2d)]
    return len(convs) == 1 and convs[0].groups > 1 and convs[0].groups == convs[0].in_channels


def _out_channels(layer: nn.Module) -> int:
    return next(m for m in layer.modules() if isinstance(m, nn.Conv2d)).out_channels
