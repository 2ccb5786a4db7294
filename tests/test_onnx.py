"""ONNX export and onnxruntime inference (the onnx extra; CI installs it)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[onnx]'")

from heatmaploc.api import Localizer  # noqa: E402
from heatmaploc.cli import main  # noqa: E402
from heatmaploc.onnx_export import export_onnx  # noqa: E402


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory) -> Path:
    return export_onnx(tiny_checkpoint, tmp_path_factory.mktemp("onnx") / "tiny.onnx")


def test_onnx_maps_and_points_match_torch_at_any_size_with_tta_and_tiles(tiny_checkpoint, exported):
    """Dynamic batch and size: non-square, not a multiple of the padding, a batch of
    two equal sizes, a tiled image; d4 averaging runs every rotation through the graph."""
    torch_loc = Localizer.from_checkpoint(tiny_checkpoint, device="cpu", tta="d4").with_tiling(64, 16)
    onnx_loc = Localizer.from_onnx(exported, tta="d4").with_tiling(64, 16)
    assert onnx_loc.codec.config == torch_loc.codec.config and onnx_loc.has_regression == torch_loc.has_regression
    rng = np.random.default_rng(0)
    images = [rng.random((37, 53)).astype(np.float32), rng.integers(0, 255, (48, 48, 3), dtype=np.uint8),
              rng.integers(0, 255, (48, 48, 3), dtype=np.uint8), rng.random((90, 150)).astype(np.float32)]
    a, b = torch_loc.raw_outputs(images), onnx_loc.raw_outputs(images)
    assert [o.tiled for o in b] == [False, False, False, True]
    for x, y in zip(a, b):
        assert x.maps.shape == y.maps.shape
        assert np.abs(x.maps - y.maps).max() <= 1e-4


def test_shipped_model_gives_the_same_points_through_onnxruntime(tmp_path, shipped_localizer):
    """Point lists need a trained heatmap (the tiny model's is flat): the shipped model
    on simulated fields, with its default d4 averaging."""
    from heatmaploc.simulate import get_preset, simulate_image

    path = export_onnx(None, tmp_path / "default.onnx")
    torch_loc, onnx_loc = shipped_localizer, Localizer.from_onnx(path)
    assert onnx_loc.tta == torch_loc.tta == "d4" and onnx_loc.threshold == torch_loc.threshold
    images = [simulate_image(get_preset("default", height=96, width=112), 3, i).image for i in range(3)]
    maps_t, maps_o = torch_loc.raw_outputs(images), onnx_loc.raw_outputs(images)
    assert max(np.abs(a.maps - b.maps).max() for a, b in zip(maps_t, maps_o)) <= 1e-4
    pa, pb = torch_loc.predict_batch(images), onnx_loc.predict_batch(images)
    assert sum(p.count for p in pa) >= 3
    for p, q in zip(pa, pb):
        assert p.count == q.count
        np.testing.assert_allclose(q.xy, p.xy, atol=1e-3)


def test_the_shipped_onnx_copy_is_the_shipped_checkpoint():
    """heatmaploc/assets/default.onnx (what a torch-free install runs) must be the
    network of default.pt with its codec and calibration: re-export it with
    `heatmaploc export default heatmaploc/assets/default.onnx --half` when the model changes."""
    from heatmaploc.simulate.examples import example

    torch_loc, onnx_loc = Localizer.default("cpu", engine="torch"), Localizer.default(engine="onnx")
    assert onnx_loc.is_onnx and not torch_loc.is_onnx
    assert onnx_loc.codec.config == torch_loc.codec.config and onnx_loc.tta == torch_loc.tta
    assert onnx_loc.inference.thresholds == torch_loc.inference.thresholds
    images = [example(kind)[1].image for kind in ("plate", "amplitude_raw", "seed_jet")]
    for a, b in zip(torch_loc.with_tta("none").raw_outputs(images), onnx_loc.with_tta("none").raw_outputs(images)):
        assert np.abs(a.maps - b.maps).max() <= 1e-4
    with pytest.raises(ValueError, match="engine must be"):
        Localizer.default(engine="tensorflow")
    with pytest.raises(ValueError, match="runs on the CPU"):
        Localizer.default("cuda", engine="onnx")


def test_export_and_predict_onnx_from_the_command_line(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(tiny_checkpoint), str(out)]) == 0
    assert "exported" in capsys.readouterr().out
    image = tmp_path / "a.npy"
    np.save(image, np.random.default_rng(1).random((40, 44)).astype(np.float32))
    proc = subprocess.run([sys.executable, "-m", "heatmaploc", "predict", str(image), "--onnx", str(out), "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert str(image) in proc.stdout


@pytest.mark.parametrize("case, message", [
    ("garbage", "not an ONNX model"),
    ("foreign", "not exported by 'heatmaploc export'"),
    ("missing", "no such ONNX file"),
    ("both", "exclude each other"),
])
def test_bad_onnx_files_give_one_line(tmp_path, tiny_checkpoint, capsys, case, message):
    import onnx
    from onnx import TensorProto, helper

    path = tmp_path / "bad.onnx"
    if case == "garbage":
        path.write_bytes(b"\x00\x01 this is not a model")
    elif case == "foreign":  # a valid ONNX graph without heatmaploc's metadata
        node = helper.make_node("Identity", ["image"], ["maps"])
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 4, 4])],
                                  [helper.make_tensor_value_info("maps", TensorProto.FLOAT, [1, 3, 4, 4])])
        onnx.save(helper.make_model(graph), str(path))
    image = tmp_path / "a.npy"
    np.save(image, np.zeros((20, 20), np.float32))
    extra = ["--checkpoint", str(tiny_checkpoint)] if case == "both" else []
    assert main(["predict", str(image), "--onnx", str(path), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_an_onnx_network_is_not_fine_tuned(exported, tmp_path):
    loc = Localizer.from_onnx(exported)
    with pytest.raises(ValueError, match="an ONNX network cannot be fine-tuned"):
        loc.finetune([np.zeros((16, 16), np.float32)], [np.zeros((0, 2))], out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
