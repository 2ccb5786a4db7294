"""The one home of a checkpoint's inference settings (heatmaploc.inference_config)."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmaploc.codec import CodecConfig, HeatmapCodec
from heatmaploc.inference_config import InferenceConfig
from heatmaploc.tiling import TileConfig
from heatmaploc.tta import TTA_MODES

modes = st.sampled_from(TTA_MODES)
values = st.dictionaries(modes, st.floats(0.01, 0.99))


@settings(max_examples=60, deadline=None)
@given(modes, values, values, st.integers(64, 1024), st.integers(0, 31))
def test_to_dict_and_from_dict_round_trip(tta, thresholds, scales, size, overlap):
    cfg = InferenceConfig(tta, thresholds, scales, TileConfig(size, overlap))
    assert InferenceConfig.from_dict(cfg.to_dict()) == cfg


@settings(max_examples=60, deadline=None)
@given(modes, modes, values, values)
def test_codec_for_takes_exactly_the_calibration_of_the_mode(tta, mode, thresholds, scales):
    base = HeatmapCodec(CodecConfig(threshold=0.5, sigma_scale=1.0))
    codec = InferenceConfig(tta, thresholds, scales).codec_for(base, mode)
    assert codec.config.threshold == thresholds.get(mode, 0.5)
    assert codec.config.sigma_scale == scales.get(mode, 1.0)
    assert codec.config.refine == base.config.refine


def test_defaults_calibration_and_copies():
    cfg = InferenceConfig.from_dict(None)
    assert cfg == InferenceConfig() and cfg.tiling == TileConfig() and cfg.tta == "none"
    calibrated = cfg.calibrated("d4", 0.3, 1.2).calibrated("none", 0.4, 1.1).with_(tta="d4", tile_size=256)
    assert calibrated.thresholds == {"d4": 0.3, "none": 0.4} and calibrated.sigma_scales == {"d4": 1.2, "none": 1.1}
    assert calibrated.tta == "d4" and calibrated.tiling == TileConfig(256, TileConfig().overlap)
    assert calibrated.to_dict()["tiling"] == {"size": 256, "overlap": TileConfig().overlap}


@pytest.mark.parametrize("values, message", [
    ({"tta": "d8"}, "tta must be one of"),
    ({"thresholds": {"spin": 0.3}}, "unknown test-time augmentation mode"),
    ({"tiling": {"size": 64, "overlap": 40}}, "less than half the tile size"),
    ({"colour": "red"}, "unknown inference setting"),
])
def test_a_bad_setting_names_its_source(values, message):
    with pytest.raises(ValueError, match=f"my.pt: its inference settings.*{message}"):
        InferenceConfig.from_dict(values, "my.pt")
