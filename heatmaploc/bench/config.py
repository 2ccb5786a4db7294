"""Benchmark configuration (YAML <-> dataclasses) and the built-in default / quick
benchmarks."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from heatmaploc.bench.suites import SuiteSpec
from heatmaploc.tta import transforms


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
    suites: tuple[SuiteSpec, ...]
    models: tuple[ModelSpec, ...]
    train_minutes: float = 4.0
    train_data: dict = field(default_factory=lambda: {"simulate": "default", "val_size": 64})
    train_defaults: dict = field(default_factory=lambda: {"steps": 100000, "steps_per_epoch": 100, "batch_size": 16,
                                                          "loss": "focal"})
    radii: tuple[float, ...] = (1.0, 2.0, 3.0)
    physical_radius: float | None = None
    thresholds: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    classical_train: dict = field(default_factory=lambda: {"seed": 9100, "n": 80})
    lsq_images: int = 10
    seed_eps: tuple[float, ...] = (0.5, 0.4, 0.3, 0.2, 0.1)
    seed_crlb_images: int = 60
    decode_modes: tuple[str, ...] = ("softargmax", "argmax", "parabola", "offset")
    tta_modes: tuple[str, ...] = ("none", "flip", "d4")
    speed_sizes: tuple[int, ...] = (128, 256)
    speed_batch: int = 8
    speed_rounds: int = 5
    threads: int = 2
    examples: int = 8


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


def load_bench_config(path: str | Path | None, quick: bool = False) -> BenchConfig:
    """A YAML benchmark config, or the built-in one (``quick`` shrinks everything)."""
    if path is None:
        return bench_from_dict(quick_benchmark() if quick else default_benchmark(), "built-in benchmark")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: benchmark config not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: invalid YAML ({err})") from None
    return bench_from_dict(data, str(path))


def _suites(scale: float, seed_n: int) -> list[dict]:
    n = lambda k: max(2, int(round(k * scale)))  # noqa: E731
    suites: list[dict] = [
        {"name": "default", "group": "main", "seed": 7001, "n": n(300)},
        {"name": "counts 0-10", "group": "stress", "seed": 7002, "n": n(150), "overrides": {"count_range": [0, 10]}},
        {"name": "unseen colormap (viridis)", "group": "stress", "seed": 7003, "n": n(150),
         "overrides": {"renderings": ["colormap"], "colormaps": ["viridis"]}},
        {"name": "unseen wavelengths 4-8 px", "group": "stress", "seed": 7004, "n": n(100), "overrides": {"wavelength_range": [4, 8]}},
        {"name": "unseen wavelengths 24-40 px", "group": "stress", "seed": 7005, "n": n(100), "overrides": {"wavelength_range": [24, 40]}},
        {"name": "near the border", "group": "stress", "seed": 7006, "n": n(150), "generator": "border"},
    ]
    for snr in (-5, 0, 5, 10, 20, 30):
        suites.append({"name": f"SNR {snr} dB", "group": "snr", "seed": 7100 + snr, "n": n(60),
                       "overrides": {"snr_db_range": [snr, snr]}})
    for sep in (0.25, 0.5, 0.75, 1.0, 1.5, 2.0):
        suites.append({"name": f"pair {sep:g} wavelengths", "group": "pairs", "seed": 7200 + int(sep * 100), "n": n(40),
                       "generator": "close_pairs", "separation": sep})
    for snr in (0, 10, 20, 30):
        suites.append({"name": f"isolated {snr} dB", "group": "crlb", "seed": 7300 + snr, "n": n(40), "generator": "isolated",
                       "overrides": {"kernels": ["free"], "observables": ["snapshot"], "renderings": ["raw"],
                                     "snr_db_range": [snr, snr], "border_margin_px": 16}})
    suites.append({"name": "seed000 test", "group": "seed", "preset": "seed000", "seed": 424242, "n": seed_n})
    return suites


def default_benchmark() -> dict[str, Any]:
    """The benchmark a plain ``heatmaploc benchmark`` runs (about an hour on 2 cores)."""
    net = {"name": "heatmapnet", "regression": True}  # the shipped recipe: heatmap + offset/sigma head
    offset = {"refine": "offset"}
    learned = [
        {"label": "heatmapnet", "model": net, "codec": offset},
        {"label": "deeplabv3plus", "model": {"name": "deeplabv3plus"}, "reference": True},
        {"label": "unet", "model": {"name": "unet"}},
        {"label": "cascade (seed CNN)", "model": {"name": "cascade"}},
        {"label": "ablation: no regression head (soft-argmax)", "model": {"name": "heatmapnet"}},
        {"label": "ablation: GGCA encoder attention", "model": {**net, "encoder_attention": "ggca"}, "codec": offset},
        {"label": "ablation: dilated ASPP", "model": {**net, "aspp": "conv"}, "codec": offset},
        {"label": "ablation: no shallow fusion", "model": {**net, "fusion": "none"}, "codec": offset},
        {"label": "ablation: CoordConv", "model": {**net, "coordconv": True}, "codec": offset},
        {"label": "ablation: sigma 1.5", "model": net, "codec": {"sigma": 1.5, **offset}},
    ]
    return {
        "suites": _suites(1.0, 300),
        "models": [{"label": "heatmapnet (shipped)", "checkpoint": "default", "tta": "none"}] + learned,
        "train_minutes": 4.0,
        "train_data": {"simulate": "default", "val_size": 64},
        "train_defaults": {"steps": 100000, "steps_per_epoch": 100, "batch_size": 16, "loss": "focal"},
        "physical_radius": 0.2,
    }


def quick_benchmark() -> dict[str, Any]:
    """A few minutes: tiny suites, two short trainings."""
    suites = [s for s in _suites(0.1, 4) if s["group"] != "snr" or s["name"] in ("SNR 0 dB", "SNR 20 dB")]
    suites = [s for s in suites if s["group"] != "pairs" or s["name"] in ("pair 0.5 wavelengths", "pair 2 wavelengths")]
    suites = [s for s in suites if s["group"] != "crlb" or s["name"] == "isolated 20 dB"]
    return {
        "suites": suites,
        "models": [
            {"label": "heatmapnet (shipped)", "checkpoint": "default", "tta": "none"},
            {"label": "deeplabv3plus", "model": {"name": "deeplabv3plus"}, "reference": True},
            {"label": "cascade (seed CNN)", "model": {"name": "cascade", "blocks": 4, "hidden": 64}},
        ],
        "train_minutes": 0.3,
        "train_defaults": {"steps": 30, "steps_per_epoch": 15, "batch_size": 8, "loss": "focal"},
        "train_data": {"simulate": "default", "val_size": 8},
        "classical_train": {"seed": 9100, "n": 12},
        "lsq_images": 2,
        "speed_sizes": [128],
        "speed_rounds": 2,
        "examples": 4,
    }
