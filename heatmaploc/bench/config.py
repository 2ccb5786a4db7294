"""Benchmark configuration (YAML <-> dataclasses) and the built-in default / quick
benchmarks."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from heatmaploc.bench.suites import SuiteSpec
from heatmaploc.codec import REFINE_MODES
from heatmaploc.metrics import RADII
from heatmaploc.tta import TTA_MODES, transforms


@dataclass(frozen=True)
class ModelSpec:
    """A model in the benchmark.

    Attributes:
        label: name in the report.
        checkpoint: a checkpoint path, or ``default`` for the shipped model.
        model: a registry config (``{"name": "unet", ...}``) to train here under the
            benchmark's equal budget (when ``checkpoint`` is unset).
        codec: codec overrides (e.g. ``sigma``, ``refine``) for training and decoding.
        train: ``TrainConfig`` overrides for this model.
        data: ``DataConfig`` overrides for this model's training data, merged over the
            benchmark's ``train_data`` (``augment`` key by key), e.g. another simulator
            preset or crop; the budget stays the benchmark's.
        reference: the speed reference (ratios are to this model).
        tta: test-time augmentation (``none``, ``flip``, ``d4``); unset: the
            checkpoint's own (the shipped model: ``d4``; models trained here: none).
    """

    label: str
    checkpoint: str | None = None
    model: dict | None = None
    codec: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    reference: bool = False
    tta: str | None = None

    def __post_init__(self) -> None:
        if self.tta is not None:
            transforms(self.tta)  # unknown modes fail here, not after training


@dataclass(frozen=True)
class BenchConfig:
    """A benchmark: suites, models and what is measured (see the built-in
    ``builtin/default.yaml`` for every key).  ``physics_groups``: the suite groups
    whose images the first model's points are also refined on, by the field fit with
    the known physics and by the blind physics fit (``None``: every suite; ``[]``:
    none).  ``acoustic_peer``: acoular's settings on beamforming suites (None: no
    peer).  ``classical_train``: the suite the classical baselines are tuned on
    (``preset``, default ``default``; ``seed``; ``n``)."""

    suites: tuple[SuiteSpec, ...]
    models: tuple[ModelSpec, ...]
    train_minutes: float = 4.0
    train_data: dict = field(default_factory=lambda: {"simulate": "default", "val_size": 64})
    train_defaults: dict = field(default_factory=lambda: {"steps": 100000, "steps_per_epoch": 100, "batch_size": 16,
                                                          "loss": "focal"})
    radii: tuple[float, ...] = RADII
    physical_radius: float | None = None
    thresholds: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    classical_train: dict = field(default_factory=lambda: {"seed": 9100, "n": 80})
    lsq_images: int = 10
    seed_eps: tuple[float, ...] = (0.5, 0.4, 0.3, 0.2, 0.1)
    seed_crlb_images: int = 60
    decode_modes: tuple[str, ...] = REFINE_MODES
    tta_modes: tuple[str, ...] = TTA_MODES
    speed_sizes: tuple[int, ...] = (128, 256)
    speed_batch: int = 8
    speed_rounds: int = 5
    threads: int = 2
    examples: int = 8
    physics_groups: tuple[str, ...] | None = None
    acoustic_peer: dict | None = field(default_factory=lambda: {"tuning_seed_offset": 50000, "tuning_n": 20,
                                                         "limits": {"clean-sc": None, "damas": 20}})


def main_suite_name(groups: dict[str, str]) -> str:
    """The suite that the main table, the plots and the ablations use: the first of group
    ``main``, else the first suite (``groups`` maps suite names to groups, in order)."""
    return next((name for name, group in groups.items() if group == "main"), next(iter(groups)))


def _spec(cls, data: dict, where: str):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) and k not in ("suites", "models") else v for k, v in data.items()})
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def bench_from_dict(data: dict[str, Any], source: str = "benchmark config") -> BenchConfig:
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping")
    data = dict(data)
    suites = tuple(_spec(SuiteSpec, s, f"{source}: suites[{i}]") for i, s in enumerate(data.pop("suites", [])))
    models = tuple(_spec(ModelSpec, m, f"{source}: models[{i}]") for i, m in enumerate(data.pop("models", [])))
    if not suites or not models:
        raise ValueError(f"{source}: needs at least one suite and one model")
    return _spec(BenchConfig, {**data, "suites": suites, "models": models}, source)


BUILTIN = Path(__file__).resolve().parent / "builtin"  # default.yaml, quick.yaml: the built-in benchmarks


def builtin_config_path(quick: bool = False) -> Path:
    """The YAML file of the built-in benchmark (``quick``: the few-minute version)."""
    return BUILTIN / ("quick.yaml" if quick else "default.yaml")


def load_bench_config(path: str | Path | None, quick: bool = False) -> BenchConfig:
    """A YAML benchmark config, or (``path`` None) the built-in one of
    :func:`builtin_config_path` (``quick`` shrinks everything)."""
    path = Path(path) if path is not None else builtin_config_path(quick)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: benchmark config not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: invalid YAML ({err})") from None
    return bench_from_dict(data, str(path))
