"""What a model gives per image, and how it becomes points (torch-free: the ONNX
engine and decoding use these without torch).

* :class:`HeatmapOutput`: the ``(K, H, W)`` probabilities of a heatmap model
  (``(K + 3, H, W)`` with the regression maps), averaged over test-time augmentation
  and decoded by the codec;
* :class:`PointOutput`: the points a point model (the seed blog's cascade) regresses;
  the codec's threshold and refinement do not apply to them.

Both have ``decode(codec, threshold) -> Points``, ``heatmap(codec)``,
``source_mask(codec, threshold, shape)`` and ``trace_mask(codec, threshold)``;
inference, evaluation and the benchmark call only these
(:mod:`heatmaploc.models.outputs` has the models' side of the interface).
"""
from __future__ import annotations

import numpy as np

from heatmaploc.codec import HeatmapCodec
from heatmaploc.points import Points
from heatmaploc.tiling import DECODE_BLOCK, decode_in_blocks


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
        return codec.decode(self.maps[None], threshold=threshold)[0]

    def heatmap(self, codec: HeatmapCodec) -> np.ndarray:
        """``(K, H, W)`` source probabilities."""
        return self.maps[: codec.config.num_classes]

    def source_mask(self, codec: HeatmapCodec, threshold: float, shape: tuple[int, int]) -> np.ndarray:
        """``(H, W)`` bool: pixels whose probability exceeds ``threshold`` in any class."""
        return self.heatmap(codec).max(axis=0) > threshold

    def trace_mask(self, codec: HeatmapCodec, threshold: float) -> np.ndarray:
        """``(H, W)`` bool: pixels whose probability reaches ``threshold`` in any class
        (where the physics refinement's additions find a trace,
        :mod:`heatmaploc.physics.support`)."""
        return self.heatmap(codec).max(axis=0) >= threshold


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

    def trace_mask(self, codec: HeatmapCodec, threshold: float) -> None:
        """None: a point model has no heatmap to find a trace in."""
        return None
