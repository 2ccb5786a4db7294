"""The training mixture (data.mix): shares, determinism, validation, config checks."""
from __future__ import annotations

import numpy as np
import pytest

from heatmaploc.codec import HeatmapCodec
from heatmaploc.config import load_config
from heatmaploc.data.sources import mix_source, training_stream, validation_samples
from heatmaploc.simulate import get_preset, write_dataset

SMALL = {"height": 24, "width": 24, "count_range": [1, 2]}


def mix_config(tmp_path, with_val: bool = True):
    folder = write_dataset(get_preset("default", **SMALL), 6, tmp_path / "fd", seed=1, workers=1, progress=False)
    val = write_dataset(get_preset("default", **SMALL), 3, tmp_path / "fd_val", seed=2, workers=1, progress=False)
    mix = [{"share": 0.5, "simulate": "default", "overrides": SMALL},
           {"share": 0.3, "simulate": "default", "overrides": {**SMALL, "colormaps": ["viridis"]}},
           {"share": 0.2, "folder": str(folder), **({"val": str(val)} if with_val else {})}]
    return load_config(None, {"data.mix": mix, "data.val_size": 40, "data.augment.crop_size": [24, 24]})


def test_the_mixture_draws_each_component_at_its_share_and_by_index_alone(tmp_path):
    cfg = mix_config(tmp_path)
    source = mix_source(cfg, seed=1000)
    n = 6000
    drawn = np.bincount([source.component(g) for g in range(n)], minlength=3)
    for count, share in zip(drawn, (0.5, 0.3, 0.2)):
        assert abs(count - share * n) < 4 * np.sqrt(n * share * (1 - share))  # binomial, 4 sigma
    again = mix_source(cfg, seed=1000)
    assert [again.component(g) for g in range(200)] == [source.component(g) for g in range(200)]
    assert [mix_source(cfg, seed=1001).component(g) for g in range(200)] != [source.component(g) for g in range(200)]
    g = next(g for g in range(50) if source.component(g) == 2)
    image, points, _, name = source.get(g)
    image2, points2, _, _ = again.get(g)
    assert np.array_equal(image, image2) and np.array_equal(points, points2) and name.endswith(".png")


def test_training_and_validation_samples_come_from_the_mixture(tmp_path):
    cfg = mix_config(tmp_path)
    codec = HeatmapCodec(cfg.codec)
    stream = training_stream(cfg, codec)
    assert stream[5]["image"].shape[-2:] == (24, 24)
    val = validation_samples(cfg, codec)
    assert len(val) == 40
    names = {s["name"] for s in val}
    assert any(n.startswith("sim") for n in names) and any(n.endswith(".png") for n in names)
    # a folder without a validation folder is left out of validation
    no_val = validation_samples(mix_config(tmp_path / "b", with_val=False), codec)
    assert all(s["name"].startswith("sim") for s in no_val)


@pytest.mark.parametrize("mix, message", [
    ([{"share": 0.5, "simulate": "default"}], "shares must sum to 1, got 0.5"),
    ([{"share": 1.0}], "give either simulate"),
    ([{"share": 1.0, "folder": "x", "overrides": {}}], "overrides apply to a simulate component"),
    ([{"share": -1.0, "simulate": "default"}, {"share": 2.0, "simulate": "default"}], r"mix\[0\]: share must be"),
    ([{"share": 1.0, "simulate": "default", "weight": 2}], r"mix\[0\]: unknown key\(s\) \['weight'\]"),
])
def test_a_malformed_mixture_is_one_clear_error(mix, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, {"data.mix": mix})
