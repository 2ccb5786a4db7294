from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from heatmaploc import Localizer, Points
from heatmaploc.data.io import write_image


@pytest.fixture(scope="module")
def loc(tiny_checkpoint):
    return Localizer.from_checkpoint(tiny_checkpoint, device="cpu").with_threshold(0.01)


def _inputs(tmp_path: Path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)
    gray16 = (rng.random((37, 53)) * 65535).astype(np.uint16)
    flt = rng.normal(size=(37, 53))
    write_image(tmp_path / "a.png", rgb)
    write_image(tmp_path / "b.tif", gray16)
    write_image(tmp_path / "c.npy", flt.astype(np.float32))
    return {
        "png path": str(tmp_path / "a.png"), "tif path": tmp_path / "b.tif", "npy path": tmp_path / "c.npy",
        "uint8 rgb": rgb, "uint8 gray": rgb[..., 0], "uint16 gray": gray16, "float64": flt,
        "float32 rgb": rng.random((37, 53, 3)).astype(np.float32), "rgba": np.dstack([rgb, rgb[..., :1]]),
        "PIL": Image.fromarray(rgb),
    }


def test_predict_every_input_type_and_odd_size(loc, tmp_path):
    for name, image in _inputs(tmp_path).items():
        pts = loc.predict(image)
        assert isinstance(pts, Points) and pts.xy.shape == (pts.count, 2), name
        assert np.all((pts.xy >= -0.5) & (pts.xy < [52.5, 36.5])), name
        assert loc.heatmap(image).shape == (1, 37, 53), name


def test_same_image_same_points_whatever_the_container(loc, tmp_path):
    inputs = _inputs(tmp_path)
    a, b, c = loc.predict(inputs["png path"]), loc.predict(inputs["uint8 rgb"]), loc.predict(inputs["PIL"])
    assert np.allclose(a.xy, b.xy) and np.allclose(a.xy, c.xy)


def test_predict_batch_mixed_sizes_matches_single(loc):
    rng = np.random.default_rng(3)
    images = [rng.random((40, 40)), rng.random((31, 45)), rng.random((40, 40))]
    batch = loc.predict_batch(images)
    for image, pts in zip(images, batch):
        single = loc.predict(image)
        # the same points; peaks whose scores tie to float noise may come in another order
        a, b = single.xy[np.lexsort(single.xy.T[::-1])], pts.xy[np.lexsort(pts.xy.T[::-1])]
        assert single.count == pts.count and np.allclose(a, b, atol=1e-4)


def test_points_to_list_and_physical_units(loc):
    image = np.random.default_rng(4).random((40, 40))
    pts = loc.with_threshold(0.0).predict(image, pixel_size=0.5, origin=(10.0, -2.0))  # threshold 0: every peak
    rows = pts.to_list()
    assert len(rows) == pts.count > 1
    assert {"x", "y", "score", "sigma", "x_phys", "y_phys", "sigma_phys"} <= set(rows[0])
    for r in rows:
        assert r["x_phys"] == pytest.approx(10.0 + 0.5 * r["x"]) and r["y_phys"] == pytest.approx(-2.0 + 0.5 * r["y"])
        assert r["sigma_phys"] == pytest.approx(0.5 * r["sigma"])
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    with pytest.raises(ValueError, match="physical frame"):
        loc.predict(image).xy_physical


def test_bad_inputs_give_clear_errors(loc, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        loc.predict(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="NaN"):
        loc.predict(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match="shape"):
        loc.predict(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="unsupported image input"):
        loc.predict(42)


def test_shipped_default_model_finds_the_example_sources_and_nothing_in_a_blank(shipped_localizer):
    from heatmaploc.data.io import read_points_csv
    from heatmaploc.metrics import HEADLINE_RADIUS, point_metrics

    examples = Path(__file__).resolve().parents[1] / "examples"
    truth = read_points_csv(examples / "points.csv").points["plate_0.png"]
    found = shipped_localizer.predict(examples / "images" / "plate_0.png")
    assert shipped_localizer.in_channels == 3 and shipped_localizer.tta == "d4"
    matched = point_metrics([found.xy], [truth], HEADLINE_RADIUS).tp
    assert matched == found.count >= 4 and len(truth) == 5  # no false point; the edge source (x = 2.3) may be missed
    assert shipped_localizer.predict(np.zeros((64, 80), np.uint8)).count == 0


def test_to_device_returns_an_equivalent_localizer(loc):
    assert loc.to("cpu") is loc and loc.to(torch.device("cpu")) is loc
    if torch.cuda.is_available():
        image = np.random.default_rng(3).random((30, 41))
        moved = loc.to("cuda")
        assert moved.device.type == "cuda" and loc.device.type == "cpu"
        assert np.allclose(moved.predict(image).xy, loc.predict(image).xy, atol=1e-3)


def test_the_api_imports_no_training_code():
    """The public API depends on inference, not on training (the import graph, in a
    fresh interpreter)."""
    import subprocess
    import sys

    code = ("import sys, heatmaploc.api; "
            "print(sorted(m for m in sys.modules if m.startswith('heatmaploc.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "heatmaploc.api" in loaded and "heatmaploc.inference" in loaded
    for module in ("heatmaploc.training", "heatmaploc.evaluation", "heatmaploc.data.sources", "heatmaploc.bench"):
        assert f"'{module}'" not in loaded, module


def test_field_refine_through_the_api_equals_the_field_fit_of_the_networks_points(shipped_one_pass):
    from fields import TRUTH, render

    from heatmaploc.physics.fieldfit import FieldModel, refine_points

    image = render("free", 11.0, shape=(48, 48)).astype(np.float32)
    loc = shipped_one_pass
    found = loc.predict(image)
    fitted = loc.predict(image, refine="field", physics=FieldModel("free", 11.0))
    expected = refine_points(image, found, FieldModel("free", 11.0))
    assert fitted.count == found.count == 2
    np.testing.assert_allclose(fitted.xy, expected.xy, atol=1e-9)
    assert np.abs(np.sort(fitted.xy, axis=0) - np.sort(TRUTH, axis=0)).max() < 1e-3
    with pytest.raises(ValueError, match="FieldModel"):
        loc.predict(image, refine="field", physics={"kernel": "free"})
    with pytest.raises(ValueError, match="needs refine='physics' or refine='field'"):
        loc.predict(image, physics=FieldModel("free", 11.0))


def test_a_codec_for_another_class_count_than_the_model_is_refused(loc):
    from heatmaploc.codec import HeatmapCodec

    with pytest.raises(ValueError, match="predicts 1 class.*num_classes=2"):
        Localizer(loc.model, HeatmapCodec(num_classes=2), "cpu", loc.inference)
