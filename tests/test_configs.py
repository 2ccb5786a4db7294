"""Every shipped run config parses, names a buildable model and trains on streamed data."""
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from heatmaploc.config import load_config
from heatmaploc.models import build_model

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_one_config_per_baseline_and_the_default():
    names = {p.stem for p in CONFIGS}
    assert {"default", "default_stage1", "default_stage2", "default_stage3", "default_stage4", "default_stage5", "tiny", "heatmapnet", "deeplabv3plus", "unet", "cascade"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_builds_its_model(path):
    cfg = load_config(path)
    assert cfg.data.simulate or cfg.data.train or cfg.data.mix, f"{path.name}: no training data"
    model = build_model({**cfg.model, "in_channels": cfg.data.in_channels}).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, cfg.data.in_channels, 64, 64))
    if isinstance(out, dict):  # the cascade: a count and max_points coordinate pairs per image
        assert out["count"].shape == (1,) and out["coords"].shape == (1, model.config.max_points, 2)
    else:
        channels = cfg.codec.num_classes + (3 if cfg.model.get("regression") else 0)
        assert out.shape == (1, channels, 64, 64) and torch.isfinite(out).all()


def test_default_stages_chain_on_fresh_streams_with_one_validation_set():
    names = ("default_stage1", "default_stage2", "default_stage3", "default_stage4", "default_stage5", "default")
    stages = [load_config(CONFIGS[0].parent / f"{name}.yaml") for name in names]
    assert stages[0].train.init_from is None
    for previous, stage in zip(names[:-1], stages[1:]):
        assert stage.train.init_from == f"runs/{previous}/best.pt"
    heatmap_only = stages[:-1]
    assert all(s.model == stages[0].model and s.codec == stages[0].codec for s in heatmap_only)
    # stage 6 adds the regression head to the same network and decodes with its offsets
    assert stages[-1].model == {**stages[0].model, "regression": True}
    assert replace(stages[-1].codec, refine=stages[0].codec.refine) == stages[0].codec and stages[-1].codec.refine == "offset"
    assert len({s.data.train_seed for s in stages}) == len(stages) and len({s.data.val_seed for s in stages}) == 1
    assert stages[-1].train.tta == "d4"  # both the one-pass and the d4 threshold are calibrated


def test_partial_nested_section_keeps_the_parent_defaults():
    """``--set data.augment.point_crop=0.9`` on the defaults keeps DataConfig's 128-pixel
    crop (the nested section starts from the parent's default, not the class's)."""
    cfg = load_config(None, {"data.augment.point_crop": 0.9})
    assert cfg.data.augment.crop_size == (128, 128) and cfg.data.augment.point_crop == 0.9
    assert load_config(None, {"data.augment.crop_size": None}).data.augment.crop_size is None
    with pytest.raises(ValueError, match=r"data\.augment: point_crop is a probability"):
        load_config(None, {"data.augment.point_crop": 2.0})


@pytest.mark.parametrize("override,message", [
    ({"train.steps": "abc"}, "train.steps: expected an integer, got 'abc'"),
    ({"train.lr": "fast"}, "train.lr: expected a number, got 'fast'"),
    ({"train.steps": 2.5}, "train.steps: expected an integer, got 2.5"),
    ({"train.steps": -5}, "steps must be > 0, got -5"),
    ({"train.lr": -1e-3}, "lr must be >= 0, got -0.001"),
    ({"train.ema_decay": 1.5}, "ema_decay must be in [0, 1) or null, got 1.5"),
    ({"train.amp": "maybe"}, "train.amp: expected true or false, got 'maybe'"),
    ({"data.workers": -1}, "workers must be >= 0, got -1"),
    ({"data.in_channels": 2}, "in_channels must be 1 or 3, got 2"),
])
def test_config_values_are_checked_with_the_key_named(override, message):
    from heatmaploc.config import load_config

    with pytest.raises(ValueError) as err:
        load_config(None, override)
    assert message in str(err.value) and len(str(err.value).splitlines()) == 1


def test_an_int_is_taken_where_a_float_is_expected():
    from heatmaploc.config import load_config

    cfg = load_config(None, {"train.lr": 1, "train.max_minutes": 2})
    assert isinstance(cfg.train.lr, float) and cfg.train.lr == 1.0 and cfg.train.max_minutes == 2.0
