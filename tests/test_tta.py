import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from heatmaploc import Localizer
from heatmaploc.checkpoint import load_checkpoint, save_checkpoint
from heatmaploc.cli import main
from heatmaploc.config import config_from_dict
from heatmaploc.evaluation import calibrate_checkpoint
from heatmaploc.tta import apply, averaged_maps, invert, transforms


def lopsided_model() -> nn.Module:
    """A real conv net with no symmetry of its own (random 5x5 kernels, a bias)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 5, padding=2), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1)).eval()


@pytest.mark.parametrize("t", transforms("d4"))
def test_every_transform_is_undone_exactly_on_non_square_images(t):
    x = torch.arange(2 * 1 * 5 * 7, dtype=torch.float32).reshape(2, 1, 5, 7)
    y = apply(x, t)
    assert y.shape[-2:] == ((7, 5) if t[0] % 2 else (5, 7))
    assert torch.equal(invert(y, t), x)


def test_the_modes_are_distinct_groups_of_the_square():
    x = torch.randn(1, 1, 6, 6)
    images = {mode: {apply(x, t).numpy().tobytes() for t in transforms(mode)} for mode in ("none", "flip", "d4")}
    assert [len(images[m]) for m in ("none", "flip", "d4")] == [1, 4, 8]
    assert images["none"] <= images["flip"] <= images["d4"]
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        transforms("rot45")


@pytest.mark.parametrize("mode", ["flip", "d4"])
def test_averaged_heatmap_is_equivariant_under_its_transforms(mode):
    model, x = lopsided_model(), torch.randn(1, 1, 9, 12)
    with torch.no_grad():
        base = averaged_maps(model, x, mode)
        assert torch.allclose(averaged_maps(model, x, "none"), torch.sigmoid(model(x)))
        assert not torch.allclose(base, torch.sigmoid(model(x)), atol=1e-3)  # the average does change the map
        for t in transforms(mode):
            assert torch.allclose(averaged_maps(model, apply(x, t), mode), apply(base, t), atol=1e-6)


@pytest.mark.parametrize("mode", ["none", "flip", "d4"])
def test_numpy_and_torch_arrays_give_the_same_averaged_maps(mode):
    """One implementation serves both engines: numpy arrays (onnxruntime, no torch) and
    torch tensors, non-square, with the regression channels mapped back."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.Conv2d(6, 4, 3, padding=1)).eval()
    x = torch.randn(2, 1, 9, 14)

    def numpy_model(a: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(a))).numpy()

    with torch.no_grad():
        expected = averaged_maps(model, x, mode).numpy()
    got = averaged_maps(numpy_model, x.numpy(), mode)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == (2, 4, 9, 14)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_checkpoint_carries_its_tta_and_cli_overrides_it(tiny_checkpoint, tmp_path, capsys):
    ckpt = load_checkpoint(tiny_checkpoint)
    assert ckpt["inference"]["tta"] == "none" and ckpt["inference"]["thresholds"] == {"none": ckpt["codec_config"]["threshold"]}
    assert ckpt["inference"]["sigma_scales"] == {"none": ckpt["codec_config"]["sigma_scale"]}  # a regression model
    run = dict(ckpt["run_config"])
    run["train"] = {**run["train"], "tta": "d4"}
    calibrated = calibrate_checkpoint(ckpt, config_from_dict(run), torch.device("cpu"))
    thresholds = calibrated["inference"]["thresholds"]
    assert calibrated["inference"]["tta"] == "d4" and set(thresholds) == {"none", "d4"}
    assert calibrated["codec_config"]["threshold"] == thresholds["d4"]
    assert set(calibrated["threshold_scores"]) == {str(t) for t in config_from_dict(run).train.threshold_grid}
    path = save_checkpoint(tmp_path / "d4.pt", calibrated)
    loc = Localizer.from_checkpoint(path, device="cpu")
    assert loc.tta == "d4" and loc.threshold == calibrated["codec_config"]["threshold"]
    single = Localizer.from_checkpoint(path, device="cpu", tta="none")
    assert single.tta == "none" and single.threshold == thresholds["none"]
    assert loc.with_tta("none").threshold == thresholds["none"] and single.with_tta("d4").threshold == thresholds["d4"]
    assert loc.with_tta("flip").tta == "flip" and loc.with_tta("flip").threshold == loc.threshold  # not calibrated
    scales = calibrated["inference"]["sigma_scales"]
    assert set(scales) == {"none", "d4"} and all(v > 0 for v in scales.values())
    assert loc.codec.config.sigma_scale == scales["d4"] and single.codec.config.sigma_scale == scales["none"]
    assert single.with_tta("d4").codec.config.sigma_scale == scales["d4"]
    assert loc.with_threshold(0.2).tta == "d4" and loc.with_threshold(0.2).threshold == 0.2
    image = np.random.default_rng(1).random((20, 27)).astype(np.float32)
    assert loc.heatmap(image).shape == (1, 20, 27)
    np.save(tmp_path / "x.npy", image)
    assert main(["predict", str(tmp_path / "x.npy"), "--checkpoint", str(path), "--tta", "flip", "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == [str(tmp_path / "x.npy")]
    with pytest.raises(ValueError, match="tta must be one of"):
        config_from_dict({"train": {"tta": "spin"}})


@pytest.mark.parametrize("shape", [(12, 12), (10, 14)])
@pytest.mark.parametrize("mode", ["flip", "d4"])
def test_views_run_as_one_batch_give_the_maps_of_views_run_one_by_one(shape, mode):
    model = lopsided_model()
    x = torch.randn(3, 1, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        batched = averaged_maps(model, x, mode, batch_views=True)
        alone = averaged_maps(model, x, mode, batch_views=False)
    assert batched.shape == alone.shape == (3, 1, *shape)
    assert torch.allclose(batched, alone, atol=1e-6)
