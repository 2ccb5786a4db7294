"""Where samples come from: simulated images by global index, the fixed validation set,
and the training stream of a run config.

Training data is a deterministic function of the *global sample index* ``g = step *
batch + i``: streamed simulation (``simulate_image(cfg, train_seed, g)``), a
dataset folder walked in per-pass permutations, or a mixture of such sources drawn per
``g`` (:class:`MixSource`).  Resuming at step ``s`` therefore
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


class MixSource(ImageSource):
    """A mixture of sources: sample ``g`` is sample ``g`` of the component drawn for ``g``
    with probabilities ``shares`` (from ``default_rng([seed, g, 1])``, so it depends on
    ``g`` alone: resumable, and the same whatever the worker count)."""

    def __init__(self, components: list[tuple[float, ImageSource]], seed: int, size: int | None = None) -> None:
        if not components:
            raise ValueError("a mixture needs at least one component")
        shares = np.array([share for share, _ in components], dtype=np.float64)
        self.cumulative = np.cumsum(shares / shares.sum())
        self.sources = [source for _, source in components]
        self.seed, self.size = seed, size

    def __len__(self) -> int:
        return self.size if self.size is not None else 2**62

    def component(self, g: int) -> int:
        u = np.random.default_rng([self.seed, g, 1]).random()
        return min(int(np.searchsorted(self.cumulative, u, side="right")), len(self.sources) - 1)

    def get(self, g: int):
        return self.sources[self.component(g)].get(g)


def mix_source(cfg: RunConfig, seed: int, size: int | None = None, validation: bool = False) -> MixSource:
    """The mixture ``cfg.data.mix`` (:class:`~heatmaploc.config.DataConfig`): simulated
    components stream from ``seed`` plus the component's position (times 7919), folder
    components walk their images (shuffled per pass for training); for ``validation``
    each folder component uses its ``val`` folder, and one without is left out."""
    components: list[tuple[float, ImageSource]] = []
    for i, c in enumerate(cfg.data.mix):
        if "simulate" in c:
            components.append((c["share"], SimulatedSource(c["simulate"], c.get("overrides") or {}, seed + 7919 * i)))
        elif not validation:
            components.append((c["share"], IndexSource(load_dataset(c["folder"]), cfg.train.seed + i, shuffle=True)))
        elif c.get("val"):
            components.append((c["share"], IndexSource(load_dataset(c["val"]))))
    return MixSource(components, seed, size)


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
    elif data.mix:
        source = mix_source(cfg, data.val_seed, data.val_size, validation=True)
    elif data.simulate:
        source = SimulatedSource(data.simulate, data.simulate_overrides, data.val_seed, data.val_size)
    else:
        raise ValueError("no validation data: set data.val, data.mix or data.simulate")
    stream = SampleStream(source, codec, data.in_channels, None, 0)
    return [stream[i] for i in range(len(source))]


def training_stream(cfg: RunConfig, codec: HeatmapCodec) -> SampleStream:
    data = cfg.data
    if data.mix:
        source: ImageSource = mix_source(cfg, data.train_seed)
    elif data.train:
        source = IndexSource(train_index(cfg), cfg.train.seed, shuffle=True)
    elif data.simulate:
        source = SimulatedSource(data.simulate, data.simulate_overrides, data.train_seed)
    else:
        raise ValueError("no training data: set data.train or data.simulate")
    return SampleStream(source, codec, data.in_channels, data.augment, cfg.train.seed)
