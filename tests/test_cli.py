import numpy as np
import pytest

from heatmaploc.cli import main, parse_overrides
from heatmaploc.data import load_dataset


def test_simulate_writes_a_loadable_dataset_and_preview(tmp_path, capsys):
    out = tmp_path / "sim"
    rc = main(["simulate", "--preset", "default", "--n", "6", "--out", str(out), "--seed", "2", "--workers", "1",
               "--set", "height=40", "--set", "width=48", "--set", "count_range=[1, 2]", "--preview", "4"])
    assert rc == 0
    index = load_dataset(out)
    assert len(index) == 6 and index.records[0].shape[:2] == (40, 48)
    assert set(index.counts().tolist()) <= {1, 2}
    assert (out / "preview.png").stat().st_size > 1000
    assert "wrote 6 images" in capsys.readouterr().out


def test_info_summarizes_a_dataset(tiny_dataset, capsys):
    assert main(["info", "--dataset", str(tiny_dataset)]) == 0
    text = capsys.readouterr().out
    assert "3 images, 3 points" in text and "0:1, 1:1, 2:1" in text


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["simulate", "--preset", "nope", "--n", "2", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown simulator preset 'nope'" in err[0]
    assert main(["info", "--dataset", str(tmp_path / "missing")]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
    assert main(["simulate", "--n", "2", "--out", str(tmp_path / "y"), "--set", "colour"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_parse_overrides_yaml_values():
    assert parse_overrides(["a=[0, 10]", "b=0.5", "c=jet", "d=null"]) == {"a": [0, 10], "b": 0.5, "c": "jet", "d": None}
    assert np.isclose(parse_overrides(["x=1e-3"])["x"], 1e-3)


def _labelled_folder(tmp_path):
    from heatmaploc.simulate import get_preset, write_dataset

    cfg = get_preset("default", height=40, width=44, count_range=(1, 2))
    return write_dataset(cfg, 4, tmp_path / "ds", seed=5, workers=1, progress=False)


def test_predict_folder_csv_json_overlay(tmp_path, tiny_checkpoint, capsys):
    from heatmaploc.data.io import read_points_csv

    root = _labelled_folder(tmp_path)
    out_csv, overlays = tmp_path / "preds.csv", tmp_path / "ov"
    rc = main(["predict", str(root), "--checkpoint", str(tiny_checkpoint), "--threshold", "0.01",
               "--out", str(out_csv), "--overlay", str(overlays)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "4 images" in text and "count" in text
    table = read_points_csv(out_csv)
    assert table.scores is not None and set(table.points) <= {f"{i:06d}{e}" for i in range(4) for e in (".png", ".npy")}
    assert len(list(overlays.glob("*.png"))) == 4
    assert main(["predict", str(root / "images"), "--checkpoint", str(tiny_checkpoint), "--json"]) == 0
    import json

    data = json.loads(capsys.readouterr().out)
    assert len(data) == 4 and all(isinstance(v, list) for v in data.values())


def test_evaluate_prints_point_and_pixel_metrics(tmp_path, tiny_checkpoint, capsys):
    root = _labelled_folder(tmp_path)
    assert main(["evaluate", str(root), "--checkpoint", str(tiny_checkpoint), "--json", str(tmp_path / "m.json"),
                 "--group-by", "kernel"]) == 0
    text = capsys.readouterr().out
    assert "| 2 |" in text and "mIoU" in text and "by kernel:" in text
    import json

    metrics = json.loads((tmp_path / "m.json").read_text())
    assert {"r1", "r2", "r3", "pixel", "by_kernel"} <= set(metrics) and metrics["n_images"] == 4
    assert sum(v["tp"] + v["fn"] for v in metrics["by_kernel"].values()) == metrics["r2"]["tp"] + metrics["r2"]["fn"]
    assert main(["evaluate", str(root), "--checkpoint", str(tiny_checkpoint), "--refine", "argmax", "--threshold", "0.01",
                 "--json", str(tmp_path / "a.json")]) == 0
    argmax = json.loads((tmp_path / "a.json").read_text())
    assert argmax["threshold"] == 0.01 and {"r1", "r2", "r3", "pixel"} <= set(argmax)


@pytest.mark.parametrize("setup,pattern", [
    ("missing", "no such file"),
    ("corrupt", "corrupt"),
    ("dims", "shape"),
    ("nan", "NaN"),
    ("badckpt", "not a readable checkpoint"),
])
def test_predict_bad_inputs_one_line_exit_2(tmp_path, tiny_checkpoint, capsys, setup, pattern):
    ckpt = str(tiny_checkpoint)
    target = tmp_path / "x.npy"
    if setup == "corrupt":
        target = tmp_path / "x.png"
        target.write_bytes(b"\x89PNG broken")
    elif setup == "dims":
        np.save(target, np.zeros((2, 3, 4, 5)))
    elif setup == "nan":
        np.save(target, np.full((8, 8), np.nan))
    elif setup == "badckpt":
        np.save(target, np.zeros((8, 8)))
        ckpt = str(tmp_path / "bad.pt")
        (tmp_path / "bad.pt").write_bytes(b"junk")
    assert main(["predict", str(target), "--checkpoint", ckpt]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and pattern in err[0] and err[0].startswith("heatmaploc predict: error:")
