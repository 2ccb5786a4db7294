import numpy as np

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
