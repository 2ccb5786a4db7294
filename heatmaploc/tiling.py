"""Large images in tiles: bounded memory and time per pixel, each source decoded once.

A heatmap model's cost per pixel grows with the image (memory traffic), and a
4000 x 4000 pass needs several GB; so an image larger than ``TileConfig.size`` on
either side runs in overlapping square tiles:

* **Tiles** (:func:`tile_layout`): per axis, the fewest tiles of at most ``size``
  pixels whose neighbours overlap by at least ``overlap`` pixels, as short as that
  allows, spread evenly from edge to edge.
* **Stitching** (:func:`tiled_maps`): each tile's maps (test-time augmentation
  included) are blended into one full-size map with weights that ramp linearly from
  the tile's inner edges over ``overlap`` pixels (1 inside, and at the image border).
  The network sees less context near a tile edge; the ramp keeps those pixels' weight
  low and makes the map continuous across seams, so there is one map to decode.
* **Decoding** (:func:`decode_in_blocks`): the stitched map is decoded block by block,
  each block with a margin wide enough for the peak test, the sub-pixel window and the
  window's basin rule; a point is kept by the block whose core contains it.  Every
  point is therefore decoded once, from the same pixels as a whole-map decode would use,
  and no peak cap applies (``max_peaks`` bounds only a whole-map decode).

Inputs are normalized tile by tile with the whole image's intensity bounds
(:func:`heatmaploc.data.preprocess.intensity_bounds`), so a tile's pixels get exactly
the values a whole-image pass would give them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from heatmaploc.codec import HeatmapCodec
from heatmaploc.points import Points

DECODE_BLOCK = 1024  # side of the blocks a large map is decoded in (pixels)


@dataclass(frozen=True)
class TileConfig:
    """Tiled inference settings (a checkpoint's ``inference.tiling``).

    Attributes:
        size: tile side in pixels; images with a side above it are tiled (0: never).
        overlap: minimum overlap of neighbouring tiles (pixels), also the blend ramp.
        batch: tiles per forward pass (1 is fastest per pixel on CPUs: memory traffic).
    """

    size: int = 512
    overlap: int = 32
    batch: int = 1

    def __post_init__(self) -> None:
        if self.size < 0 or self.overlap < 0 or self.batch < 1:
            raise ValueError(f"tile size and overlap must be >= 0 and batch >= 1; got size={self.size}, "
                             f"overlap={self.overlap}, batch={self.batch}")
        if self.size and self.overlap * 2 >= self.size:
            raise ValueError(f"tile overlap {self.overlap} must be less than half the tile size {self.size}")
        if self.size and self.size < 32:
            raise ValueError(f"tile size must be 0 (no tiling) or at least 32 pixels, got {self.size}")

    def applies(self, shape: tuple[int, int]) -> bool:
        """True when an ``(H, W)`` image is tiled."""
        return bool(self.size) and max(shape) > self.size

    def with_(self, size: int | None = None, overlap: int | None = None) -> "TileConfig":
        """A copy with ``size`` / ``overlap`` replaced where given."""
        changes = {k: v for k, v in (("size", size), ("overlap", overlap)) if v is not None}
        return replace(self, **changes)


def tile_layout(length: int, size: int, overlap: int, multiple: int = 1) -> tuple[list[int], int]:
    """``(starts, tile length)`` along one axis: the fewest tiles of at most ``size``
    pixels that cover ``[0, length)`` with neighbours overlapping by at least
    ``overlap``, each as short as that allows (rounded up to ``multiple``, the size the
    network pads to anyway, but not above ``size``), spread evenly from edge to edge;
    one tile ``[0, length)`` when ``length <= size``."""
    if length <= size:
        return [0], length
    n = math.ceil((length - overlap) / (size - overlap))
    tile = min(size, -(-math.ceil((length + (n - 1) * overlap) / n) // multiple) * multiple)
    return [round(i * (length - tile) / (n - 1)) for i in range(n)], tile


def blend_weights(start: int, size: int, length: int, overlap: int) -> np.ndarray:
    """``(size,)`` float32 weights of one tile along one axis: a linear ramp from
    ``0.5 / overlap`` to 1 over ``overlap`` pixels at each side that is inside the
    image, 1 elsewhere."""
    w = np.ones(size, np.float32)
    if overlap == 0:
        return w
    ramp = (np.arange(size, dtype=np.float32) + 0.5) / overlap
    if start > 0:
        w = np.minimum(w, ramp)
    if start + size < length:
        w = np.minimum(w, ramp[::-1])
    return w


def tiled_maps(run: Callable[[np.ndarray], np.ndarray], tile_input: Callable[[int, int, int, int], np.ndarray],
               shape: tuple[int, int], tiling: TileConfig, multiple: int = 1,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
    """The stitched maps of an image too large for one pass (numpy; either engine).

    Args:
        run: ``(B, C, h, w)`` float32 normalized tiles -> their ``(B, K[+3], h, w)``
            maps, test-time augmentation included (the engine's
            :func:`heatmaploc.tta.averaged_maps`).
        tile_input: ``(y0, y1, x0, x1) -> (C, y1 - y0, x1 - x0)`` normalized network
            input of that window of the image.
        shape: ``(H, W)`` of the image.
        tiling: tile size, overlap and batch.
        multiple: the network's padding multiple (tiles are rounded up to it).
        progress: called with the number of tiles done after each batch.

    Returns:
        ``(K[+3], H, W)`` float32: per pixel the blend-weighted mean of the tiles'
        averaged maps (probabilities, then ``dx, dy, log sigma``).
    """
    h, w = shape
    boxes, (size_y, size_x) = tile_boxes(shape, tiling, multiple)
    total = weight = None
    for i in range(0, len(boxes), tiling.batch):
        chunk = boxes[i : i + tiling.batch]
        maps = run(np.stack([tile_input(y, y + size_y, x0, x0 + size_x) for y, x0 in chunk]))
        if total is None:
            total = np.zeros((maps.shape[1], h, w), np.float32)
            weight = np.zeros((h, w), np.float32)
        for (y, x0), m in zip(chunk, maps):
            wt = np.outer(blend_weights(y, size_y, h, tiling.overlap), blend_weights(x0, size_x, w, tiling.overlap))
            total[:, y : y + size_y, x0 : x0 + size_x] += m * wt
            weight[y : y + size_y, x0 : x0 + size_x] += wt
        if progress is not None:
            progress(len(chunk))
    total /= weight
    return total


def tile_boxes(shape: tuple[int, int], tiling: TileConfig,
               multiple: int = 1) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """The ``(y0, x0)`` corners of the tiles of an ``(H, W)`` image, row by row, and the
    tiles' ``(height, width)`` (:func:`tile_layout` per axis)."""
    starts_y, size_y = tile_layout(shape[0], tiling.size, tiling.overlap, multiple)
    starts_x, size_x = tile_layout(shape[1], tiling.size, tiling.overlap, multiple)
    return [(y, x) for y in starts_y for x in starts_x], (size_y, size_x)


def n_tiles(shape: tuple[int, int], tiling: TileConfig) -> int:
    """How many tiles :func:`tiled_maps` runs for an ``(H, W)`` image (the count does
    not depend on the padding multiple)."""
    return len(tile_boxes(shape, tiling)[0])


def decode_margin(codec: HeatmapCodec) -> int:
    """Pixels of context a block needs around its core so that every peak in the core
    is found and refined exactly as in a whole-map decode: the peak test
    (``nms_kernel // 2``), the sub-pixel window (``R``) and the peaks that can cut the
    window by the basin rule (within ``2 R sqrt 2`` of the peak), plus the +-1 px a
    refined point may lie from its peak pixel."""
    r = codec.radius
    return int(math.ceil(2 * math.sqrt(2) * r)) + codec.config.nms_kernel // 2 + r + 2


def decode_in_blocks(codec: HeatmapCodec, maps: np.ndarray, threshold: float | None = None,
                     block: int = DECODE_BLOCK) -> Points:
    """Decode ``(K[+3], H, W)`` maps of one image in ``block``-pixel blocks (with
    :func:`decode_margin` of context each), without a peak cap; points sorted by class,
    then by descending score, as :meth:`HeatmapCodec.decode` orders them."""
    _, h, w = maps.shape
    margin = decode_margin(codec)
    parts = []
    for y0 in range(0, h, block):
        for x0 in range(0, w, block):
            y1, x1 = min(y0 + block, h), min(x0 + block, w)
            cy0, cy1, cx0, cx1 = max(y0 - margin, 0), min(y1 + margin, h), max(x0 - margin, 0), min(x1 + margin, w)
            crop = maps[:, cy0:cy1, cx0:cx1]
            uncapped = HeatmapCodec(replace(codec.config, max_peaks=crop.shape[1] * crop.shape[2]))
            pts = uncapped.decode(crop[None], threshold=threshold)[0]
            xy = pts.xy + np.array([cx0, cy0], np.float64)
            core = (xy[:, 0] >= x0 - 0.5) & (xy[:, 0] < x1 - 0.5) & (xy[:, 1] >= y0 - 0.5) & (xy[:, 1] < y1 - 0.5)
            parts.append((xy[core], pts.scores[core], pts.labels[core], pts.sigma[core]))
    xy, scores, labels, sigma = (np.concatenate([p[i] for p in parts]) for i in range(4))
    order = np.lexsort((-scores, labels))
    return Points(xy[order].reshape(-1, 2), scores[order], labels[order], sigma=sigma[order])
