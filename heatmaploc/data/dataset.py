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
    ``(K, H, W)`` float32 target, ``offsets`` ``(3, H, W)`` float32 regression target
    (:meth:`HeatmapCodec.encode_offsets`), ``points`` ``(N, 2)`` float64 pixels, ``labels``
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
        "offsets": torch.from_numpy(codec.encode_offsets(points, x.shape[-2:])),
        "points": torch.as_tensor(np.asarray(points, dtype=np.float64).reshape(-1, 2)),
        "labels": torch.as_tensor(np.asarray(labels, dtype=np.int64).reshape(-1)),
        "name": name,
    }


class ImageSource:
    """Random access to ``(image, points, labels, name)`` by a global index ``g``."""

    def __len__(self) -> int:
        raise NotImplementedError

    def get(self, g: int):
        raise NotImplementedError


class IndexSource(ImageSource):
    """A :class:`DatasetIndex`; index ``g`` wraps around, walking a new permutation
    each pass when ``shuffle`` (from ``default_rng([seed, pass])``)."""

    def __init__(self, index: DatasetIndex, seed: int = 0, shuffle: bool = False) -> None:
        if len(index) == 0:
            raise ValueError(f"{index.root}: empty dataset")
        self.index, self.seed, self.shuffle = index, seed, shuffle
        self._perms: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.index)

    def get(self, g: int):
        n = len(self.index)
        i = g % n
        if self.shuffle:
            p = g // n
            if p not in self._perms:
                self._perms = {p: np.random.default_rng([self.seed, p]).permutation(n)}
            i = int(self._perms[p][i])
        rec = self.index[i]
        return read_image(rec.path), rec.points, rec.labels, rec.name


class SampleStream(Dataset):
    """Torch samples (see :func:`make_sample`) of an :class:`ImageSource`;
    augmentation randomness is ``default_rng([seed, g])``: deterministic and
    independent of worker count and order."""

    def __init__(self, source: ImageSource, codec: HeatmapCodec, in_channels: int = 3,
                 augment: AugmentConfig | None = None, seed: int = 0) -> None:
        self.source, self.codec, self.in_channels, self.augment, self.seed = source, codec, in_channels, augment, seed

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, g: int) -> dict[str, Any]:
        image, points, labels, name = self.source.get(int(g))
        rng = np.random.default_rng([self.seed, int(g)]) if self.augment is not None else None
        return make_sample(image, points, labels, name, self.codec, self.in_channels, self.augment, rng)


class HeatmapDataset(SampleStream):
    """A :class:`DatasetIndex` as torch samples, one epoch at a time: sample ``i`` of
    epoch ``e`` is stream item ``e * len + i``, so augmentations differ every epoch
    (call :meth:`set_epoch`) and repeat exactly for the same epoch."""

    def __init__(self, index: DatasetIndex, codec: HeatmapCodec, in_channels: int = 3,
                 augment: AugmentConfig | None = None, seed: int = 0) -> None:
        super().__init__(IndexSource(index), codec, in_channels, augment, seed)
        self.index, self.epoch = index, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, i: int) -> dict[str, Any]:
        return super().__getitem__(self.epoch * len(self) + int(i))


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack images ``(B, C, H, W)``, heatmaps ``(B, K, H, W)`` and offset targets
    ``(B, 3, H, W)``; keep ``points`` and
    ``labels`` as lists of ``(N_i, 2)`` / ``(N_i,)`` tensors, ``names`` as a list."""
    shapes = {tuple(s["image"].shape) for s in batch}
    if len(shapes) > 1:
        raise ValueError(f"cannot batch images of different sizes {sorted(shapes)}; set a crop size or batch size 1")
    return {
        "image": torch.stack([s["image"] for s in batch]),
        "heatmap": torch.stack([s["heatmap"] for s in batch]),
        "offsets": torch.stack([s["offsets"] for s in batch]),
        "points": [s["points"] for s in batch],
        "labels": [s["labels"] for s in batch],
        "names": [s["name"] for s in batch],
    }
