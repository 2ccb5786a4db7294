"""Small building blocks.  Tensors are ``(B, C, H, W)``."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int, value: float = 0.0) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom/right of ``x`` so ``H`` and ``W`` are multiples of ``multiple``.

    Returns the padded tensor and the original ``(H, W)`` for :func:`crop_to`.  Padding
    at the bottom/right keeps pixel ``(0, 0)`` where it was, so coordinates are unchanged.
    """
    h, w = x.shape[-2:]
    # unconditional (a zero pad is a copy): a branch on the size would fix it in an
    # exported graph (heatmaploc.onnx_export)
    x = F.pad(x, (0, (-w) % multiple, 0, (-h) % multiple), value=value)
    return x, (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x[..., : size[0], : size[1]]


class ConvBNAct(nn.Sequential):
    """Conv -> BatchNorm -> activation (``act=None`` for none)."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, dilation: int = 1, groups: int = 1,
                 act: type[nn.Module] | None = nn.ReLU) -> None:
        pad = dilation * (kernel - 1) // 2
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, pad, dilation, groups, bias=False), nn.BatchNorm2d(cout)]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class DSConv(nn.Sequential):
    """Depthwise-separable conv: depthwise kxk + BN + act, pointwise 1x1 + BN + act."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, dilation: int = 1, act: type[nn.Module] = nn.ReLU) -> None:
        super().__init__(ConvBNAct(cin, cin, kernel, dilation=dilation, groups=cin, act=act), ConvBNAct(cin, cout, 1, act=act))


class SEGate(nn.Module):
    """Squeeze-and-excitation channel gate: ``x * sigmoid(MLP(avgpool(x)))``."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(channels // reduction, 8)
        self.fc = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc(x.mean(dim=(2, 3), keepdim=True)))


class CBAM(nn.Module):
    """Channel attention (shared MLP on avg- and max-pooled) then spatial attention
    (7x7 conv on channel mean and max)."""

    def __init__(self, channels: int, reduction: int = 4, kernel: int = 7) -> None:
        super().__init__()
        hidden = max(channels // reduction, 8)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1))
        self.spatial = nn.Conv2d(2, 1, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.mlp(x.mean(dim=(2, 3), keepdim=True)) + self.mlp(x.amax(dim=(2, 3), keepdim=True))
        x = x * torch.sigmoid(gate)
        stats = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(stats))


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel dimension of ``(B, C, H, W)`` (per pixel)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside non-overlapping ``window x window`` tiles
    (Swin/MobileViT-style unfold -> attention -> fold), pre-norm, residual.

    Any ``H, W`` works: the map is padded to a multiple of the window and padded keys
    are masked out, so the result does not depend on the padding; the output is cropped
    back to ``(H, W)``.
    """

    def __init__(self, channels: int, window: int, heads: int) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window, self.heads = window, heads
        self.norm = LayerNorm2d(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        win, heads, d = self.window, self.heads, c // self.heads
        qkv, _ = pad_to_multiple(self.qkv(self.norm(x)), win)
        hp, wp = qkv.shape[-2:]
        nh, nw = hp // win, wp // win
        qkv = qkv.view(b, 3, heads, d, nh, win, nw, win).permute(1, 0, 4, 6, 2, 5, 7, 3)
        q, k, v = qkv.reshape(3, b * nh * nw, heads, win * win, d).unbind(0)
        mask = None
        # an exported graph serves every size, so it always carries the (maybe all-true) mask
        if hp != h or wp != w or torch.onnx.is_in_onnx_export():
            valid = torch.zeros(hp, wp, dtype=torch.bool, device=x.device)
            valid[:h, :w] = True
            valid = valid.view(nh, win, nw, win).permute(0, 2, 1, 3).reshape(1, nh * nw, 1, 1, win * win)
            mask = valid.expand(b, -1, -1, -1, -1).reshape(b * nh * nw, 1, 1, win * win)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = out.view(b, nh, nw, heads, win, win, d).permute(0, 3, 6, 1, 4, 2, 5).reshape(b, c, hp, wp)
        return x + self.proj(crop_to(out, (h, w)))
