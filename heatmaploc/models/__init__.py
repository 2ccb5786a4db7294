"""Networks: HeatmapNet, baselines, the registry and complexity helpers."""
from heatmaploc.models.baselines import CascadeCNN, CascadeConfig, SmpBaseline, SmpBaselineConfig
from heatmaploc.models.net import HeatmapNet, HeatmapNetConfig
from heatmaploc.models.registry import (REGISTRY, build_model, count_parameters, model_complexity,
                                        model_config_dict)

__all__ = [
    "CascadeCNN", "CascadeConfig", "SmpBaseline", "SmpBaselineConfig", "HeatmapNet", "HeatmapNetConfig",
    "REGISTRY", "build_model", "count_parameters", "model_complexity", "model_config_dict",
]
