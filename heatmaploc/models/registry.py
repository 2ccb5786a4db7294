"""Model registry: ``build_model(name_or_config, **overrides)`` and complexity helpers."""
from __future__ import annotations

from dataclasses import asdict, fields, is_dataclass, replace
from typing import Any

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from heatmaploc.models.baselines import CascadeCNN, CascadeConfig, SmpBaseline, SmpBaselineConfig
from heatmaploc.models.net import HeatmapNet, HeatmapNetConfig

REGISTRY: dict[str, tuple[type[nn.Module], Any]] = {
    "heatmapnet": (HeatmapNet, HeatmapNetConfig()),
    "deeplabv3plus": (SmpBaseline, SmpBaselineConfig(arch="deeplabv3plus")),
    "unet": (SmpBaseline, SmpBaselineConfig(arch="unet")),
    "cascade": (CascadeCNN, CascadeConfig()),
}


def _coerce(cfg_cls, values: dict[str, Any]) -> dict[str, Any]:
    known = {f.name for f in fields(cfg_cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for {cfg_cls.__name__}; known: {sorted(known)}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def build_model(name_or_config: str | dict | Any, **overrides: Any) -> nn.Module:
    """Build a registry model.

    Args:
        name_or_config: a registry name (``heatmapnet``, ``deeplabv3plus``, ``unet``,
            ``cascade``), a dict ``{"name": ..., **options}`` (as saved in checkpoints
            and YAML configs), or a config dataclass instance.
        overrides: config fields to change, e.g. ``aspp="conv"``.

    The model's ``registry_name`` and ``config`` attributes rebuild it exactly.
    """
    if isinstance(name_or_config, str):
        name, values = name_or_config, {}
    elif isinstance(name_or_config, dict):
        values = dict(name_or_config)
        name = values.pop("name", None)
        if name is None:
            raise ValueError(f"model config needs a 'name' (one of {sorted(REGISTRY)}), got keys {sorted(values)}")
    elif is_dataclass(name_or_config):
        matches = [n for n, (_, c) in REGISTRY.items() if type(c) is type(name_or_config)]
        if isinstance(name_or_config, SmpBaselineConfig):
            matches = [name_or_config.arch]
        if not matches:
            raise ValueError(f"no registry model takes a {type(name_or_config).__name__}")
        name, values = matches[0], asdict(name_or_config)
    else:
        raise ValueError(f"expected a model name, dict or config, got {type(name_or_config).__name__}")
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(REGISTRY)}")
    cls, default = REGISTRY[name]
    cfg = replace(default, **_coerce(type(default), {**values, **overrides}))
    model = cls(cfg)
    model.registry_name = name
    return model


def model_config_dict(model: nn.Module) -> dict[str, Any]:
    """``{"name": ..., **config}``: what :func:`build_model` needs to rebuild ``model``."""
    return {"name": model.registry_name, **asdict(model.config)}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def model_complexity(model: nn.Module, size: tuple[int, int] = (256, 256), in_channels: int | None = None) -> dict[str, float]:
    """Parameters (millions) and forward FLOPs (GFLOPs, multiply-add = 2 FLOPs, counted
    by ``torch.utils.flop_counter``) for one ``(1, C, H, W)`` image in eval mode."""
    was_training = model.training
    model.eval()
    channels = in_channels or getattr(model, "in_channels", 3)
    x = torch.zeros(1, channels, *size, device=next(model.parameters()).device)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    model.train(was_training)
    return {"params_m": count_parameters(model) / 1e6, "gflops": counter.get_total_flops() / 1e9}
