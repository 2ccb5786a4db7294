"""Torch datasets: image tensor + points + target heatmap (through the codec)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from heatmaploc.codec import HeatmapCodec
from heatmaploc.data.augment import AugmentConfig, augment
from heatmaploc.data.index import DatasetIndex
from heatmaploc.data.io import read_image
from heatmaploc.data.preprocess import normalize, to_unit_range


def make_sample(image: np.ndarray, points: np.ndarray, labels: np.ndarray, name: str, codec: HeatmapCodec,
                in_channels: int, aug: AugmentConfig | None, rng: np.random.Generator | None) -> dict[str, Any]:
    """One training/eval sample from a loaded image.

    Returns a dict with ``image`` ``(C, H, W)`` float32 (normalized), ``heatmap``
    ``(K, H, W)`` float32 target, ``points`` ``(N, 2)`` float64 pixels, ``labels``
    ``(N,)`` int64 and ``name``.
    """
    x = to_unit_range(image, in_channels, name)
    if aug is not None:
        if rng is None:
            raise ValueError("augmentation needs an explicit numpy Generator")
        x, points, labels = augment(x, points, labels, aug, rng)
    target = codec.encode(points, x.shape[-2:], labels)
    return {
        "image": torch.from_numpy(np.ascontiguousarray(normalize(x))),
        "heatmap": torch.from_numpy(target),
        "points": torch.as_tensor(np.asarray(points, dtype=np.float64).reshape(-1, 2)),
        "labels": torch.as_tensor(np.asarray(labels, dtype=np.int64).reshape(-1)),
        "name": name,
    }


class HeatmapDataset(Dataset):
    """A :class:`DatasetIndex` as torch samples (see :func:`make_sample`).

    Augmentation randomness is ``default_rng([seed, epoch, index])``: deterministic,
    different every epoch (call :meth:`set_epoch`), independent of worker count.
    """

    def __init__(self, index: DatasetIndex, codec: HeatmapCodec, in_channels: int = 3,
                 augment: AugmentConfig | None = None, seed: int = 0) -> None:
        if len(index) == 0:
            raise ValueError(f"{index.root}: empty dataset")
        self.index, self.codec, self.in_channels = index, codec, in_channels
        self.augment, self.seed, self.epoch = augment, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        rec = self.index[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        return make_sample(read_image(rec.path), rec.points, rec.labels, rec.name, self.codec,
                           self.in_channels, self.augment, rng)


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack images ``(B, C, H, W)`` and heatmaps ``(B, K, H, W)``; keep ``points`` and
    ``labels`` as lists of ``(N_i, 2)`` / ``(N_i,)`` tensors, ``names`` as a list."""
    shapes = {tuple(s["image"].shape) for s in batch}
    if len(shapes) > 1:
        raise ValueError(f"cannot batch images of different sizes {sorted(shapes)}; set a crop size or batch size 1")
    return {
        "image": torch.stack([s["image"] for s in batch]),
        "heatmap": torch.stack([s["heatmap"] for s in batch]),
        "points": [s["points"] for s in batch],
        "labels": [s["labels"] for s in batch],
        "names": [s["name"] for s in batch],
    }
