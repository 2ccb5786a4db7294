"""Baselines in the registry: plain smp models with our codec, and the seed blog's
cascade CNN (count head + fixed-size coordinate head)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import segmentation_models_pytorch as smp
import torch
import torch.nn as nn
import torch.nn.functional as F

from heatmaploc.models.blocks import crop_to, pad_to_multiple
from heatmaploc.models.head import RegressionHead, prior_bias
from heatmaploc.models.outputs import HeatmapModel
from heatmaploc.outputs import PointOutput
from heatmaploc.points import Points

SMP_ARCHS = {"deeplabv3plus": "DeepLabV3Plus", "unet": "Unet"}


@dataclass(frozen=True)
class SmpBaselineConfig:
    """A plain smp model with one logit channel per source class."""

    arch: str = "deeplabv3plus"
    encoder_name: str = "mobilenet_v2"
    encoder_weights: str | None = None
    in_channels: int = 3
    classes: int = 1
    head_prior: float = 0.01
    regression: bool = False
    regression_channels: int = 16


class SmpBaseline(HeatmapModel, nn.Module):
    """``smp.DeepLabV3Plus`` / ``smp.Unet`` mapping ``(B, C, H, W)`` of any size to
    ``(B, classes, H, W)`` logits (padded to 32, cropped back).

    Two changes from the stock model, both for a fair comparison: the image-pooling
    branch of DeepLabV3+'s ASPP uses GroupNorm instead of BatchNorm (so batch 1 trains,
    as in HeatmapNet), and the head bias starts at the same focal-loss prior.  With
    ``regression`` the offset/uncertainty head of HeatmapNet reads the smp decoder's
    output, and the output has ``classes + 3`` channels (logits, ``dx, dy, log sigma``).
    """

    def __init__(self, config: SmpBaselineConfig | None = None) -> None:
        super().__init__()
        cfg = config or SmpBaselineConfig()
        if cfg.arch not in SMP_ARCHS:
            raise ValueError(f"arch must be one of {sorted(SMP_ARCHS)}, got {cfg.arch!r}")
        self.config, self.in_channels, self.classes = cfg, cfg.in_channels, cfg.classes
        self.net = getattr(smp, SMP_ARCHS[cfg.arch])(encoder_name=cfg.encoder_name, encoder_weights=cfg.encoder_weights,
                                                     in_channels=cfg.in_channels, classes=cfg.classes)
        for module in self.net.modules():
            if type(module).__name__ == "ASPPPooling":
                bn = module[2]
                module[2] = nn.GroupNorm(min(8, bn.num_features), bn.num_features)
        head = [m for m in self.net.segmentation_head.modules() if isinstance(m, nn.Conv2d)][-1]
        nn.init.constant_(head.bias, prior_bias(cfg.head_prior))
        first = next(m for m in self.net.segmentation_head.modules() if isinstance(m, nn.Conv2d))
        self.regression_head = RegressionHead(first.in_channels, cfg.regression_channels) if cfg.regression else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x, 32)
        if self.regression_head is None:
            return crop_to(self.net(x), size)
        features = self.net.decoder(self.net.encoder(x))
        out = torch.cat([self.net.segmentation_head(features), self.regression_head(features, x.shape[-2:])], dim=1)
        return crop_to(out, size)


# ---------------------------------------------------------------- cascade (seed blog)
@dataclass(frozen=True)
class CascadeConfig:
    """The seed blog's CNN4TwoStage: ``blocks`` down-sampling residual blocks from
    ``base_channels`` doubling, global pooling, ``hidden`` units, a count head and a
    residual-MLP coordinate head for ``max_points`` points."""

    in_channels: int = 3
    blocks: int = 6
    base_channels: int = 32
    hidden: int = 128
    max_points: int = 10
    dropout: float = 0.1
    min_count: int = 0
    stage_switch_accuracy: float = 0.9


class DownBlock(nn.Sequential):
    """4x4 stride-2 conv + BN + ReLU, a two-conv residual block, channel dropout."""

    def __init__(self, cin: int, cout: int, dropout: float) -> None:
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())
        self.res = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.drop = nn.Dropout2d(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return self.drop(F.relu(x + self.res(x)))


class ResidualMLP(nn.Module):
    """Two Linear+LayerNorm+ReLU+Dropout layers with a linear shortcut, then a linear out."""

    def __init__(self, cin: int, hidden: int, cout: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(cin, hidden), nn.LayerNorm(hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.ReLU(), nn.Dropout(dropout))
        self.shortcut = nn.Linear(cin, hidden)
        self.out = nn.Linear(hidden, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + self.shortcut(x))


class CascadeCNN(nn.Module):
    """Count + coordinate regression (no heatmap).

    ``forward`` maps ``(B, C, H, W)`` to ``{"count": (B,), "coords": (B, max_points, 2)}``,
    coordinates as fractions of the image extent: ``x_px = u * W - 0.5`` (so ``u`` in
    [0, 1] spans the image area).  :meth:`to_points` gives the same :class:`Points` lists
    as the heatmap models; :meth:`loss` implements the blog's two-stage schedule.  The
    output interface of :mod:`heatmaploc.models.outputs`: :meth:`outputs` gives
    :class:`PointOutput` (test-time augmentation does not apply), :meth:`compute_loss`
    the loss, and the stage survives validation (:meth:`on_validation`) and resume.
    """

    def __init__(self, config: CascadeConfig | None = None) -> None:
        super().__init__()
        cfg = config or CascadeConfig()
        if cfg.blocks < 1 or cfg.max_points < 1:
            raise ValueError(f"blocks and max_points must be >= 1, got {cfg.blocks}, {cfg.max_points}")
        self.config, self.in_channels = cfg, cfg.in_channels
        chans = [cfg.base_channels * 2**i for i in range(cfg.blocks)]
        self.features = nn.Sequential(*[DownBlock(cin, cout, cfg.dropout) for cin, cout in zip([cfg.in_channels] + chans[:-1], chans)])
        self.embed = nn.Sequential(nn.Linear(chans[-1], cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout))
        self.count_head = nn.Linear(cfg.hidden, 1)
        self.coord_head = ResidualMLP(cfg.hidden, cfg.hidden, 2 * cfg.max_points, cfg.dropout)
        self.stage = 1
        self.set_stage(1)

    @property
    def min_size(self) -> int:
        """Inputs are padded to at least this size so the deepest map is >= 2x2."""
        return 2 ** (self.config.blocks + 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h, w = x.shape[-2:]
        ph, pw = max(self.min_size - h, 0), max(self.min_size - w, 0)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        z = self.embed(self.features(x).mean(dim=(2, 3)))
        return {"count": self.count_head(z).squeeze(1), "coords": self.coord_head(z).view(-1, self.config.max_points, 2)}

    # -- the output interface
    @torch.no_grad()
    def outputs(self, x: torch.Tensor, tta: str = "none") -> list[PointOutput]:
        return [PointOutput(p) for p in self.to_points(self(x), tuple(x.shape[-2:]))]

    def compute_loss(self, out: dict[str, torch.Tensor], batch: dict, codec, tc, count_norm=None) -> torch.Tensor:
        device = out["count"].device
        return self.loss(out, [p.to(device) for p in batch["points"]], tuple(batch["image"].shape[-2:]))

    def on_validation(self, metrics: dict) -> str | None:
        if self.update_stage(metrics["count_accuracy"]):
            return "cascade: count accuracy above threshold, stage 2 (coordinates) starts"
        return None

    def train_state(self) -> dict:
        return {"stage": self.stage}

    def load_train_state(self, state: dict) -> None:
        self.set_stage(state.get("stage") or 1)

    # -- training schedule
    def set_stage(self, stage: int) -> None:
        """Stage 1 trains the count only (coordinate head frozen); stage 2 both."""
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {stage}")
        self.stage = stage
        for p in self.coord_head.parameters():
            p.requires_grad_(stage == 2)

    def update_stage(self, count_accuracy: float) -> bool:
        """Switch to stage 2 once the count accuracy exceeds the threshold; returns
        whether the stage changed."""
        if self.stage == 1 and count_accuracy > self.config.stage_switch_accuracy:
            self.set_stage(2)
            return True
        return False

    def loss(self, outputs: dict[str, torch.Tensor], points: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """Count MSE (+ stage 2: coordinate MSE over the first ``min(n_pred, n_true)``
        pairs in list order, the blog's order-dependent matching)."""
        count = outputs["count"]
        n_true = torch.tensor([len(p) for p in points], dtype=count.dtype, device=count.device)
        loss = F.mse_loss(count, n_true)
        if self.stage == 1:
            return loss
        h, w = size
        scale = torch.tensor([w, h], dtype=count.dtype, device=count.device)
        n_pred = self._rounded_count(count.detach())
        terms = []
        for i, pts in enumerate(points):
            m = min(int(n_pred[i]), len(pts), self.config.max_points)
            if m:
                target = (pts[:m].to(count) + 0.5) / scale
                terms.append(F.mse_loss(outputs["coords"][i, :m], target, reduction="sum") / 2)
        n_pairs = sum(min(int(n_pred[i]), len(p), self.config.max_points) for i, p in enumerate(points))
        if terms:
            loss = loss + torch.stack(terms).sum() / n_pairs
        return loss

    def _rounded_count(self, count: torch.Tensor) -> torch.Tensor:
        return count.round().clamp(self.config.min_count, self.config.max_points).long()

    @torch.no_grad()
    def to_points(self, outputs: dict[str, torch.Tensor], size: tuple[int, int]) -> list[Points]:
        """The first ``round(count)`` coordinate pairs (clamped to ``[min_count,
        max_points]``) in pixels, score 1."""
        h, w = size
        n = self._rounded_count(outputs["count"])
        coords = outputs["coords"].double().cpu().numpy()
        out = []
        for i in range(len(n)):
            xy = coords[i, : int(n[i])] * np.array([w, h]) - 0.5
            out.append(Points(xy))
        return out
