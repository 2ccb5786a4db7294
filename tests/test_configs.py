"""Every shipped run config parses, names a buildable model and trains on streamed data."""
from pathlib import Path

import pytest
import torch

from heatmaploc.config import load_config
from heatmaploc.models import build_model

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_one_config_per_baseline_and_the_default():
    names = {p.stem for p in CONFIGS}
    assert {"default", "default_stage1", "tiny", "heatmapnet", "deeplabv3plus", "unet", "cascade"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_builds_its_model(path):
    cfg = load_config(path)
    assert cfg.data.simulate or cfg.data.train, f"{path.name}: no training data"
    model = build_model({**cfg.model, "in_channels": cfg.data.in_channels}).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, cfg.data.in_channels, 64, 64))
    assert isinstance(out, (dict, torch.Tensor))


def test_default_continues_from_stage1():
    stage2, stage1 = load_config(CONFIGS[0].parent / "default.yaml"), load_config(CONFIGS[0].parent / "default_stage1.yaml")
    assert stage2.train.init_from == "runs/default_stage1/best.pt"
    assert stage2.model == stage1.model and stage2.codec == stage1.codec
    assert stage2.data.train_seed != stage1.data.train_seed and stage2.data.val_seed == stage1.data.val_seed
