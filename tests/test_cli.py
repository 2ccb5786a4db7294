import os

import numpy as np
import pytest

from heatmaploc.cli import main, parse_overrides
from heatmaploc.data import load_dataset
from heatmaploc.physics.fieldfit import FieldModel, refine_points

from fields import TRUTH, render


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


# ---------------------------------------------------------------- predict / evaluate with the field fit
def test_predict_field_fit_refines_the_models_points(tmp_path, capsys, shipped_localizer):
    import json

    from heatmaploc.cli import main

    image = render("free", 11.0, shape=(48, 48))
    path = tmp_path / "field.npy"
    np.save(path, image.astype(np.float32))
    assert main(["predict", str(path), "--field-fit", "free:11", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)[str(path)]
    found = shipped_localizer.predict(path)
    assert len(printed) == found.count > 0
    expected = refine_points(image.astype(np.float32), found, FieldModel("free", 11.0)).to_list()
    got = np.array([(r["x"], r["y"]) for r in printed])
    assert np.allclose(got, [(r["x"], r["y"]) for r in expected], atol=1e-6)
    assert np.abs(got[np.lexsort(got.T[::-1])] - TRUTH).max() < 1e-3  # both sources, on the true positions


def test_field_fit_errors(tmp_path, capsys):
    from heatmaploc.cli import main
    from heatmaploc.data.io import write_image

    with pytest.raises(SystemExit) as exc:
        main(["predict", str(tmp_path), "--field-fit", "drum:10"])
    assert exc.value.code == 2 and "unknown kernel 'drum'" in capsys.readouterr().err
    rgb = tmp_path / "rgb.png"
    write_image(rgb, np.zeros((16, 16, 3), np.uint8))
    assert main(["predict", str(rgb), "--field-fit", "free:10"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{rgb}: the field fit needs a single-channel raw field" in err[0]


def test_field_colormap_and_amplitude_need_field_fit_and_a_known_colormap(tmp_path, capsys):
    from heatmaploc.cli import main

    path = tmp_path / "field.npy"
    np.save(path, render("free", 11.0).astype(np.float32))
    assert main(["predict", str(path), "--field-colormap", "jet"]) == 2
    assert "--field-colormap and --field-amplitude need --field-fit" in capsys.readouterr().err
    assert main(["predict", str(path), "--field-amplitude"]) == 2
    assert "need --field-fit" in capsys.readouterr().err
    assert main(["predict", str(path), "--field-fit", "free:11", "--field-colormap", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown matplotlib colormap 'nope'" in err[0]


def test_evaluate_field_fit_from_meta_refines_the_snapshots(tmp_path, capsys):
    import json

    from heatmaploc.cli import main

    data = tmp_path / "sim"
    assert main(["simulate", "--n", "4", "--out", str(data), "--seed", "3", "--workers", "1", "--set", "height=64",
                 "--set", "width=64", "--set", "count_range=[1, 2]", "--set", "kernels=[free]",
                 "--set", "observables=[snapshot]", "--set", "outside_count_range=[0, 0]",
                 "--set", "snr_db_range=[40, 40]"]) == 0
    out = tmp_path / "m.json"
    assert main(["evaluate", str(data), "--tta", "none", "--field-fit-from-meta", "--group-by", "kernel",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "refined by the field fit" in printed and "| F1@2 after fit | RMSE@2 after fit (px) |" in printed
    metrics = json.loads(out.read_text())
    fitted, network = metrics["field_fit"], metrics["r2"]
    assert metrics["by_kernel"]["free"]["after_field_fit"] == fitted["r2"]  # one kernel: the group is everything
    assert 1 <= fitted["images_fitted"] <= 4  # the images in which the model found a source
    assert fitted["r2"]["count_accuracy"] == network["count_accuracy"]  # the fit moves points, never adds any
    assert fitted["r2"]["tp"] >= network["tp"] and fitted["r2"]["rmse"] < network["rmse"]


def test_predict_field_amplitude_fits_an_amplitude_map(tmp_path, capsys, shipped_localizer):
    import json

    from heatmaploc.cli import main

    image = render("free", 11.0, shape=(48, 48), observable="amplitude").astype(np.float32)
    path = tmp_path / "amplitude.npy"
    np.save(path, image)
    assert main(["predict", str(path), "--field-fit", "free:11", "--field-amplitude", "--json"]) == 0
    got = np.array([(r["x"], r["y"]) for r in json.loads(capsys.readouterr().out)[str(path)]])
    model = FieldModel("free", 11.0, observable="amplitude")
    expected = refine_points(image, shipped_localizer.predict(path), model).xy
    assert got.shape == expected.shape and np.allclose(got, expected, atol=1e-6)


def test_predict_refine_physics_json_csv_and_known_errors(tmp_path, capsys):
    import json

    from heatmaploc.data.io import read_points_csv

    image = render("plate", 9.0, shape=(48, 48))
    path = tmp_path / "field.npy"
    np.save(path, (image + np.random.default_rng(0).normal(0.0, 0.01, image.shape)).astype(np.float32))
    csv_path = tmp_path / "preds.csv"
    assert main(["predict", str(path), "--refine", "physics", "--tta", "none", "--workers", "1", "--json",
                 "--out", str(csv_path)]) == 0
    printed = json.loads(capsys.readouterr().out.split("predictions:")[0])[str(path)]
    assert set(printed) == {"points", "refined", "physics"} and printed["refined"] is True
    physics = printed["physics"]
    assert physics["kernel"] == "plate" and physics["observable"] == "snapshot" and physics["colormap"] is None
    assert physics["wavelength_px"] == pytest.approx(9.0, rel=1e-3) and physics["count"] == 2
    got = np.array([(r["x"], r["y"]) for r in printed["points"]])
    assert np.abs(got[np.lexsort(got.T[::-1])] - TRUTH).max() < 0.01
    assert csv_path.read_text().splitlines()[0] == ("image,x,y,label,score,sigma,strength,phase,strength_sigma,"
                                                    "phase_sigma,refined")
    assert csv_path.read_text().splitlines()[1].endswith(",1")
    table = read_points_csv(csv_path)
    assert len(table.points["field.npy"]) == 2  # readers take the extra columns
    assert np.all(table.strengths["strength"]["field.npy"] > 0) and np.all(table.strengths["phase_sigma"]["field.npy"] > 0)
    assert {"strength", "strength_sigma", "phase", "phase_sigma"} <= set(printed["points"][0])
    # the table names what was estimated
    assert main(["predict", str(path), "--refine", "physics", "--tta", "none", "--workers", "1"]) == 0
    table_out = capsys.readouterr().out
    assert "physics fit used: plate snapshot, colormap none (raw), wavelength 8.99" in table_out
    assert "count 3 -> 2" in table_out  # the network's third point was removed
    for bad, message in ((["--known", "speed=3"], "--known: unknown physics key(s) ['speed']"),
                         (["--known", "kernel=drum"], "--known: unknown kernel 'drum'"),
                         (["--known", "nokey"], "--known expects KEY=VALUE"),
                         (["--refine", "offset", "--known", "kernel=free"], "--known needs --refine physics")):
        args = ["predict", str(path)] + (bad if "--refine" in bad else ["--refine", "physics"] + bad)
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def test_evaluate_refine_physics_reports_the_estimates(tmp_path, capsys):
    import json

    data = tmp_path / "sim"
    assert main(["simulate", "--n", "3", "--out", str(data), "--seed", "4", "--workers", "1", "--set", "height=48",
                 "--set", "width=48", "--set", "count_range=[1, 2]", "--set", "renderings=[raw]",
                 "--set", "observables=[snapshot]", "--set", "outside_count_range=[0, 0]",
                 "--set", "snr_db_range=[30, 30]"]) == 0
    out = tmp_path / "m.json"
    assert main(["evaluate", str(data), "--tta", "none", "--refine", "physics", "--workers", "1", "--group-by", "kernel",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "refined by the blind physics fit (known: nothing" in printed and "F1@2 physics" in printed
    assert "wavelength vs meta.json" in printed and "time per image: median" in printed
    physics = json.loads(out.read_text())["physics"]
    assert len(physics["estimates"]) == 3 and 0.0 <= physics["accepted"] <= 1.0
    assert physics["wavelength"]["median_relative_error"] < 0.01
    assert physics["r2"]["f1"] >= json.loads(out.read_text())["r2"]["f1"]
    # the paths partition the images, their pairs and their sigma coordinates
    paths = physics["by_mode"]
    modes = {e.get("mode", "network") for e in physics["estimates"]}
    assert set(paths) == modes and "by refinement path" in printed
    assert sum(p["n_images"] for p in paths.values()) == 3
    assert sum(p["tp"] for p in paths.values()) == physics["r2"]["tp"]
    assert sum(p["calibration"]["n_coordinates"] for p in paths.values()) == physics["calibration"]["n_coordinates"]


def test_predict_batch_survives_a_bad_file_and_names_it(tmp_path, capsys):
    import cv2

    from heatmaploc.data.io import read_image, read_points_csv, write_image

    folder = tmp_path / "scans"
    field = render("free", 11.0, shape=(48, 48))
    rgb = (np.stack([field] * 3, axis=-1) - field.min()) / np.ptp(field)
    write_image(folder / "a.png", (rgb * 255).astype(np.uint8))
    (folder / "b.png").write_bytes(b"not a png at all")
    cv2.imwrite(str(folder / "c.jpg"), (rgb * 255).astype(np.uint8))  # JPEG is read (lossy)
    (folder / "notes.txt").write_text("lab notes")
    out = tmp_path / "preds.csv"
    assert read_image(folder / "c.jpg").shape == (48, 48, 3)
    assert main(["predict", str(folder), "--tta", "none", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert f"{folder}: 1 file(s) that are not images skipped (.txt)" in err
    assert any(line.startswith("heatmaploc predict: skipped: ") and "b.png" in line for line in err)
    assert err[-1].startswith("heatmaploc predict: 1 of 3 images could not be predicted")
    assert set(read_points_csv(out).points) <= {"a.png", "c.jpg"} and "2 images" in captured.out
    # --strict stops at the bad file: one line, exit 2, nothing written
    out.unlink()
    assert main(["predict", str(folder), "--tta", "none", "--out", str(out), "--strict"]) == 2
    assert "b.png" in capsys.readouterr().err and not out.exists()


def test_colliding_names_keep_their_folders_and_outputs_are_checked_first(tmp_path, capsys):
    from heatmaploc.data.io import read_points_csv, write_image

    field = render("free", 11.0, shape=(40, 40))
    gray = ((field - field.min()) / np.ptp(field) * 255).astype(np.uint8)
    for run in ("run1", "run2"):
        write_image(tmp_path / run / "x.png", gray)
    out, overlays = tmp_path / "preds.csv", tmp_path / "overlays"
    assert main(["predict", str(tmp_path / "run1"), str(tmp_path / "run2"), "--tta", "none", "--out", str(out),
                 "--overlay", str(overlays)]) == 0
    assert set(read_points_csv(out).points) <= {"run1/x.png", "run2/x.png"}
    assert (overlays / "run1" / "x.png").is_file() and (overlays / "run2" / "x.png").is_file()
    capsys.readouterr()
    for bad, message in ((["--out", str(tmp_path)], "is a folder"),
                         (["--out", str(tmp_path / "missing" / "p.csv")], "does not exist"),
                         (["--overlay", str(out)], "exists and is not a folder")):
        assert main(["predict", str(tmp_path / "run1")] + bad) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


@pytest.mark.parametrize("option,value,message", [
    ("--threshold", "-1", "must be in [0, 1)"), ("--threshold", "1.5", "must be in [0, 1)"),
    ("--threshold", "nan", "must be in [0, 1)"), ("--threshold", "abc", "is not a number"),
    ("--pixel-size", "0", "a finite number > 0"),
])
def test_numeric_options_are_checked(tmp_path, capsys, option, value, message):
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(tmp_path), option, value])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"argument {option}: '{value}'" in err and message in err


def test_an_out_path_the_file_system_refuses_is_one_line_before_inference(tmp_path, capsys):
    """Permission bits do not tell (root ignores them; /sys is read-only for everyone):
    the check writes a temporary file where the output will go."""
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(dir="/sys")
    except OSError:
        pass
    else:
        os.close(fd)
        os.unlink(probe)
        pytest.skip("/sys is writable here")
    image = tmp_path / "a.npy"
    np.save(image, np.zeros((16, 16), np.float32))
    assert main(["predict", str(image), "--out", "/sys/heatmaploc-p.csv"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write in /sys" in err[0]
