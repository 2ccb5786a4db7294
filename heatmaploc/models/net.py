"""HeatmapNet: a DeepLabV3+-like source-heatmap network on any smp encoder."""
from __future__ import annotations

from dataclasses import dataclass

import segmentation_models_pytorch as smp
import torch
import torch.nn as nn
import torch.nn.functional as F

from heatmaploc.models.aspp import AttentionASPP, ConvASPP
from heatmaploc.models.blocks import ConvBNAct, DSConv, crop_to, pad_to_multiple
from heatmaploc.models.encoder_attention import ENCODER_ATTENTIONS, add_coordinate_attention
from heatmaploc.models.fusion import ShallowFusion
from heatmaploc.models.head import HeatmapHead, RegressionHead
from heatmaploc.models.outputs import HeatmapModel


@dataclass(frozen=True)
class HeatmapNetConfig:
    """Architecture of :class:`HeatmapNet` (flat, grouped by prefix; see its docstring)."""

    encoder_name: str = "mobilenet_v2"
    encoder_weights: str | None = None
    encoder_depth: int = 5
    encoder_output_stride: int = 16
    in_channels: int = 3
    classes: int = 1
    aspp: str = "attention"
    aspp_channels: int = 128
    aspp_windows: tuple[int, int, int] = (2, 4, 8)
    aspp_heads: int = 4
    aspp_dilations: tuple[int, int, int] = (6, 12, 18)
    aspp_dropout: float = 0.1
    fusion: str = "shallow"
    fusion_reduced: tuple[int, int] = (16, 16)
    fusion_channels: int = 32
    fusion_dropout: float = 0.1
    skip_channels: int = 48
    decoder_channels: int = 64
    refine_channels: int = 32
    coordconv: bool = False
    head_channels: int = 8
    head_prior: float = 0.01
    regression: bool = False
    regression_channels: int = 16
    encoder_attention: str = "none"
    encoder_attention_from: int = 7


class HeatmapNet(HeatmapModel, nn.Module):
    """DeepLabV3+-like heatmap localizer.

    ``(B, in_channels, H, W)`` images of any ``H, W`` -> ``(B, classes, H, W)`` logits
    (padded to the encoder stride inside, cropped back).

    Args (of :class:`HeatmapNetConfig`):
        encoder_name: any ``segmentation_models_pytorch`` encoder (random init unless
            ``encoder_weights`` names pretrained weights, which smp then downloads).
        encoder_output_stride: 8 or 16 (dilated last stages).
        aspp: ``"attention"`` (1x1, three window-attention branches at
            ``aspp_windows``, image pooling) or ``"conv"`` (dilated, ablation).
        fusion: ``"shallow"`` (stride-2 + stride-4 features fused at stride 2 with
            CBAM; see below) or ``"none"`` (plain DeepLabV3+ stride-4 skip of
            ``skip_channels``, decoded at stride 4).
        decoder_channels: width of the stride-4 depthwise-separable conv that fuses
            the upsampled ASPP output with the (pooled) shallow features.
        refine_channels: width of the stride-2 stage that concatenates the decoder
            output with the full stride-2 shallow features (fusion ``"shallow"``).
        coordconv: append normalized ``x, y`` channels before the head's 3x3 conv.
        head_prior: initial sigmoid output of the head (focal-loss practice).
        regression: add the offset/uncertainty head (:class:`~heatmaploc.models.head.RegressionHead`, width
            ``regression_channels``) on the same features as the heatmap head; the
            output then has ``classes + 3`` channels: logits, ``dx, dy, log sigma``.
        encoder_attention: ``"ggca"`` inserts grouped coordinate attention after the
            depthwise conv of the encoder's inverted-residual blocks from index
            ``encoder_attention_from`` on (7: the stride-16 and stride-32 stages of
            MobileNetV2; :mod:`heatmaploc.models.encoder_attention`).
    """

    def __init__(self, config: HeatmapNetConfig | None = None) -> None:
        super().__init__()
        cfg = config or HeatmapNetConfig()
        if cfg.encoder_output_stride not in (8, 16):
            raise ValueError(f"encoder_output_stride must be 8 or 16, got {cfg.encoder_output_stride}")
        if cfg.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {cfg.in_channels}")
        if cfg.aspp not in ("attention", "conv"):
            raise ValueError(f"aspp must be 'attention' or 'conv', got {cfg.aspp!r}")
        if cfg.fusion not in ("shallow", "none"):
            raise ValueError(f"fusion must be 'shallow' or 'none', got {cfg.fusion!r}")
        if cfg.encoder_attention not in ENCODER_ATTENTIONS:
            raise ValueError(f"encoder_attention must be one of {ENCODER_ATTENTIONS}, got {cfg.encoder_attention!r}")
        if cfg.encoder_depth != 5:
            raise ValueError(f"encoder_depth must be 5 (stride-2/4 and deep features), got {cfg.encoder_depth}")
        self.config, self.in_channels, self.classes = cfg, cfg.in_channels, cfg.classes
        self.encoder = smp.encoders.get_encoder(cfg.encoder_name, in_channels=cfg.in_channels, depth=cfg.encoder_depth,
                                                weights=cfg.encoder_weights, output_stride=cfg.encoder_output_stride)
        if cfg.encoder_attention == "ggca":
            add_coordinate_attention(self.encoder, cfg.encoder_attention_from)
        chans = self.encoder.out_channels
        self.pad_multiple = 2 ** cfg.encoder_depth
        if cfg.aspp == "attention":
            self.aspp = AttentionASPP(chans[-1], cfg.aspp_channels, cfg.aspp_windows, cfg.aspp_heads, cfg.aspp_dropout)
        else:
            dil = tuple(2 * d for d in cfg.aspp_dilations) if cfg.encoder_output_stride == 8 else cfg.aspp_dilations
            self.aspp = ConvASPP(chans[-1], cfg.aspp_channels, dil, cfg.aspp_dropout)
        # The ASPP output is fused at stride 4 (DeepLabV3+'s position); with shallow
        # fusion a light stride-2 stage follows.  Wide depthwise convs at stride 2 are
        # memory-bound on CPUs and cost more than the whole encoder.
        if cfg.fusion == "shallow":
            self.low = ShallowFusion(chans[1], chans[2], cfg.fusion_reduced, cfg.fusion_channels, cfg.fusion_dropout)
            low_channels = cfg.fusion_channels
            self.refine = nn.Sequential(ConvBNAct(cfg.decoder_channels + cfg.fusion_channels, cfg.refine_channels, 1),
                                        DSConv(cfg.refine_channels, cfg.refine_channels))
            head_in = cfg.refine_channels
        else:
            self.low = ConvBNAct(chans[2], cfg.skip_channels, 1)
            low_channels = cfg.skip_channels
            self.refine = None
            head_in = cfg.decoder_channels
        self.decoder = DSConv(cfg.aspp_channels + low_channels, cfg.decoder_channels)
        self.head = HeatmapHead(head_in, cfg.classes, cfg.head_channels, cfg.coordconv, cfg.head_prior)
        self.regression_head = RegressionHead(head_in, cfg.regression_channels) if cfg.regression else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x, self.pad_multiple)
        feats = self.encoder(x)
        deep = self.aspp(feats[-1])
        if self.refine is not None:
            shallow = self.low(feats[1], feats[2])  # stride 2
            low = F.avg_pool2d(shallow, 2)  # aligned to stride 4
        else:
            low = self.low(feats[2])
        deep = F.interpolate(deep, size=low.shape[-2:], mode="bilinear", align_corners=False)
        y = self.decoder(torch.cat([deep, low], dim=1))
        if self.refine is not None:
            y = F.interpolate(y, size=shallow.shape[-2:], mode="bilinear", align_corners=False)
            y = self.refine(torch.cat([y, shallow], dim=1))
        out = self.head(y, x.shape[-2:])
        if self.regression_head is not None:
            out = torch.cat([out, self.regression_head(y, x.shape[-2:])], dim=1)
        return crop_to(out, size)
