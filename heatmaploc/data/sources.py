"""Where samples come from: simulated images by global index, the fixed validation set,
and the training stream of a run config.

Training data is a deterministic function of the *global sample index* ``g = step *
batch + i``: streamed simulation (``simulate_image(cfg, train_seed, g)``) or a
dataset folder walked in per-pass permutations.  Resuming at step ``s`` therefore
continues with exactly the samples an uninterrupted run would have seen.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from heatmaploc.codec import HeatmapCodec
from heatmaploc.config import RunConfig
from heatmaploc.data.dataset import ImageSource, IndexSource, SampleStream
from heatmaploc.data.index import DatasetIndex, load_dataset, split_dataset
from heatmaploc.simulate import get_preset, simulate_image


class SimulatedSource(ImageSource):
    """Image ``g`` of the simulated dataset ``(preset + overrides, seed)``."""

    def __init__(self, preset: str, overrides: dict, seed: int, size: int | None = None) -> None:
        self.cfg = get_preset(preset, **overrides)
        self.seed, self.size = seed, size

    def __len__(self) -> int:
        return self.size if self.size is not None else 2**62

    def get(self, g: int):
        sim = simulate_image(self.cfg, self.seed, g)
        return sim.image, sim.points, np.zeros(len(sim.points), np.int64), f"sim{g:08d}"


def train_index(cfg: RunConfig) -> DatasetIndex:
    """The run's training folder (``data.train``), less the images ``data.val_share``
    holds out (:func:`~heatmaploc.data.index.split_dataset`)."""
    index = load_dataset(cfg.data.train)
    return split_dataset(index, cfg.data.val_share)[0] if cfg.data.val_share is not None else index


def val_index(cfg: RunConfig) -> DatasetIndex | None:
    """The run's validation folder: the share of ``data.train`` that ``data.val_share``
    holds out, or ``data.val``; ``None`` when validation is simulated."""
    if cfg.data.val_share is not None:
        return split_dataset(load_dataset(cfg.data.train), cfg.data.val_share)[1]
    return load_dataset(cfg.data.val) if cfg.data.val else None


def validation_samples(cfg: RunConfig, codec: HeatmapCodec) -> list[dict[str, Any]]:
    """The fixed validation set as a list of samples (no augmentation)."""
    data = cfg.data
    val = val_index(cfg)
    if val is not None:
        source: ImageSource = IndexSource(val)
    elif data.simulate:
        source = SimulatedSource(data.simulate, data.simulate_overrides, data.val_seed, data.val_size)
    else:
        raise ValueError("no validation data: set data.val or data.simulate")
    stream = SampleStream(source, codec, data.in_channels, None, 0)
    return [stream[i] for i in range(len(source))]


def training_stream(cfg: RunConfig, codec: HeatmapCodec) -> SampleStream:
    data = cfg.data
    if data.train:
        source: ImageSource = IndexSource(train_index(cfg), cfg.train.seed, shuffle=True)
    elif data.simulate:
        source = SimulatedSource(data.simulate, data.simulate_overrides, data.train_seed)
    else:
        raise ValueError("no training data: set data.train or data.simulate")
    return SampleStream(source, codec, data.in_channels, data.augment, cfg.train.seed)
