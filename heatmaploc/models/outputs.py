"""One output interface for every model.

A model turns an image batch into per-image *outputs* (:meth:`outputs`) and a training
batch into its loss (:meth:`compute_loss`); an output turns into points
(:meth:`decode`) and into the source mask of the pixel metrics (:meth:`source_mask`).
Inference, evaluation, calibration, training and the benchmark call only these, so
none of them branches on the kind of model:

* heatmap models (:class:`HeatmapModel`: HeatmapNet, the smp baselines) output
  :class:`heatmaploc.outputs.HeatmapOutput`, the ``(K, H, W)`` probabilities
  (``(K + 3, H, W)`` with the regression maps), averaged over test-time augmentation
  and decoded by the codec;
* point models (the seed blog's cascade) output :class:`heatmaploc.outputs.PointOutput`,
  the points they regress; the codec's threshold and refinement do not apply to them.

The outputs themselves live in :mod:`heatmaploc.outputs` (no torch).

Training-state hooks (:meth:`HeatmapModel.on_validation`, :meth:`HeatmapModel.train_state`,
:meth:`HeatmapModel.load_train_state`) let a model keep its own schedule (the
cascade's two stages) through validation, checkpoints and resume.
"""
from __future__ import annotations

from typing import Any

import torch

from heatmaploc.codec import HeatmapCodec
from heatmaploc.losses import heatmap_loss, offset_losses
from heatmaploc.outputs import HeatmapOutput
from heatmaploc.tta import averaged_maps


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
