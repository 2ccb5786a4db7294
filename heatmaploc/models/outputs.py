"""One output interface for every model.

A model turns an image batch into per-image *outputs* (:meth:`outputs`) and a training
batch into its loss (:meth:`compute_loss`); an output turns into points
(:meth:`decode`) and into the source mask of the pixel metrics (:meth:`source_mask`).
Inference, evaluation, calibration, training and the benchmark call only these, so
none of them branches on the kind of model:

* heatmap models (:class:`HeatmapModel`: HeatmapNet, the smp baselines) output
  :class:`HeatmapOutput`, the ``(K, H, W)`` probabilities (``(K + 3, H, W)`` with the
  regression maps), averaged over test-time augmentation and decoded by the codec;
* point models (the seed blog's cascade) output :class:`PointOutput`, the points they
  regress; the codec's threshold and refinement do not apply to them.

Training-state hooks (:meth:`HeatmapModel.on_validation`, :meth:`HeatmapModel.train_state`,
:meth:`HeatmapModel.load_train_state`) let a model keep its own schedule (the
cascade's two stages) through validation, checkpoints and resume.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from heatmaploc.codec import HeatmapCodec
from heatmaploc.losses import heatmap_loss, offset_losses
from heatmaploc.points import Points
from heatmaploc.tiling import DECODE_BLOCK, decode_in_blocks
from heatmaploc.tta import averaged_maps


class HeatmapOutput:
    """One image's maps: ``(K, H, W)`` float32 probabilities, or ``(K + 3, H, W)`` with
    ``dx, dy, log sigma`` after them (:mod:`heatmaploc.codec`); ``tiled``: stitched
    from tiles (:mod:`heatmaploc.tiling`)."""

    def __init__(self, maps: np.ndarray, tiled: bool = False) -> None:
        self.maps = maps
        self.tiled = tiled

    def decode(self, codec: HeatmapCodec, threshold: float | None = None) -> Points:
        """Points of the maps; stitched or large maps block by block, without a peak cap
        (:func:`heatmaploc.tiling.decode_in_blocks`)."""
        if self.tiled or max(self.maps.shape[1:]) > DECODE_BLOCK:
            return decode_in_blocks(codec, self.maps, threshold)
        return codec.decode(torch.from_numpy(self.maps)[None], threshold=threshold)[0]

    def heatmap(self, codec: HeatmapCodec) -> np.ndarray:
        """``(K, H, W)`` source probabilities."""
        return self.maps[: codec.config.num_classes]

    def source_mask(self, codec: HeatmapCodec, threshold: float, shape: tuple[int, int]) -> np.ndarray:
        """``(H, W)`` bool: pixels whose probability exceeds ``threshold`` in any class."""
        return self.heatmap(codec).max(axis=0) > threshold


class PointOutput:
    """One image's points, as a point model regresses them (decoding is the identity)."""

    def __init__(self, points: Points) -> None:
        self.points = points

    def decode(self, codec: HeatmapCodec, threshold: float | None = None) -> Points:
        return self.points

    def heatmap(self, codec: HeatmapCodec) -> np.ndarray:
        raise ValueError("this model predicts points directly and has no heatmap")

    def source_mask(self, codec: HeatmapCodec, threshold: float, shape: tuple[int, int]) -> np.ndarray:
        """``(H, W)`` bool: disks of the codec's mask radius around the points."""
        return codec.masks(self.points.xy, shape)


class HeatmapModel:
    """Mixin of the heatmap models: ``forward`` gives ``(B, K[+3], H, W)`` logits (and
    regression maps)."""

    def outputs(self, x: torch.Tensor, tta: str = "none") -> list[HeatmapOutput]:
        """``(B, C, H, W)`` images -> one :class:`HeatmapOutput` per image, averaged over
        the test-time augmentation ``tta`` (:func:`heatmaploc.tta.averaged_maps`)."""
        return [HeatmapOutput(m) for m in averaged_maps(self, x, tta).cpu().numpy()]

    def compute_loss(self, out: torch.Tensor, batch: dict[str, Any], codec: HeatmapCodec, tc: Any,
                     count_norm=None) -> torch.Tensor:
        """The heatmap loss (``tc.loss``) on the ``K`` heatmap channels plus, with a
        regression head, ``offset_weight`` x offset L1 + ``sigma_weight`` x sigma NLL
        (:func:`heatmaploc.losses.offset_losses`) on the batch's offset targets;
        ``count_norm``: the denominator of the count-normalized terms (several processes)."""
        k, device = codec.config.num_classes, out.device
        loss = heatmap_loss(tc.loss, out[:, :k].float(), batch["heatmap"].to(device), pos_weight=tc.bce_pos_weight,
                            alpha=tc.focal_alpha, beta=tc.focal_beta, count_norm=count_norm)
        if codec.split_regression(out) is not None:
            offset, sigma = offset_losses(out[:, k:].float(), batch["offsets"].to(device), count_norm)
            loss = loss + tc.offset_weight * offset + tc.sigma_weight * sigma
        return loss

    def on_validation(self, metrics: dict[str, Any]) -> str | None:
        """Called with the validation metrics at the radius of ``train.val_radius``
        after each epoch; a message to show, or None."""
        return None

    def train_state(self) -> dict[str, Any]:
        """Model state outside the weights that a resumed run needs."""
        return {}

    def load_train_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`train_state`."""
