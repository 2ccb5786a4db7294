"""Fine-tuning: the held-out share, the adoption of a checkpoint's model and codec,
``heatmaploc finetune`` and the documented commands as real subprocesses, and
``Localizer.finetune`` (real shipped model, real files, a few steps each)."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmaploc.checkpoint import adopt_model_config, default_checkpoint_path, load_checkpoint
from heatmaploc.data.index import DatasetIndex, ImageRecord, load_dataset, split_dataset
from heatmaploc.finetune import VAL_SHARE, finetune_config
from heatmaploc.simulate import get_preset, write_dataset

ROOT = Path(__file__).resolve().parents[1]
# Appended to a documented command so that its run ends after two small steps; the
# command itself runs as the docs write it.
SHORT = ["--set", "train.steps=2", "--set", "train.batch_size=2", "--set", "data.augment.crop_size=[48, 48]",
         "--quiet"]


def labelled(root: Path, n: int, seed: int, **sim) -> Path:
    """``n`` simulated 48 x 48 images with 2-3 sources each (a folder as users label it)."""
    cfg = get_preset("default", **{"height": 48, "width": 48, "count_range": (2, 3), **sim})
    return write_dataset(cfg, n, root, seed=seed, workers=1, progress=False)


def heatmaploc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "heatmaploc", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def index_of(names: list[str], points_per_image: int = 3) -> DatasetIndex:
    records = [ImageRecord(n, Path(n), np.zeros((points_per_image, 2)), np.zeros(points_per_image, np.int64))
               for n in names]
    return DatasetIndex(Path("ds"), records)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="abcdefgh0123456789_", min_size=1, max_size=8), min_size=25, max_size=60,
                unique=True))
def test_the_validation_share_is_a_function_of_the_names_alone(names):
    train, val = split_dataset(index_of(names), VAL_SHARE)
    held = {r.name for r in val.records}
    assert len(held) == int(np.ceil(VAL_SHARE * len(names)))
    assert held.isdisjoint(r.name for r in train.records) and len(train) + len(val) == len(names)
    # the order of the files does not matter, only their names
    _, again = split_dataset(index_of(list(reversed(names))), VAL_SHARE)
    assert {r.name for r in again.records} == held


def test_a_validation_share_too_small_to_calibrate_on_is_refused():
    with pytest.raises(ValueError, match="validation share of its 12 images holds 3 image"):
        split_dataset(index_of([f"{i}.png" for i in range(12)]), VAL_SHARE)
    with pytest.raises(ValueError, match="with 5 source"):  # enough images, too few sources
        split_dataset(index_of([f"{i}.png" for i in range(25)], points_per_image=1), VAL_SHARE)


def test_a_checkpoint_model_is_adopted_and_only_adaptable_settings_may_differ():
    shipped = load_checkpoint(default_checkpoint_path())["model_config"]
    unset = {"name": "heatmapnet"}
    assert adopt_model_config(unset, shipped, "default", unset=unset) == shipped
    assert adopt_model_config({**unset, "in_channels": 1}, shipped, "default", unset=unset)["in_channels"] == 1
    no_head = {**shipped, "regression": False}
    assert adopt_model_config({**unset, "regression": True}, no_head, "stage5", unset=unset)["regression"] is True
    with pytest.raises(ValueError, match=r"model.aspp='conv' conflicts with the checkpoint default.*'attention'"):
        adopt_model_config({**unset, "aspp": "conv"}, shipped, "default", unset=unset)
    with pytest.raises(ValueError, match="model.regression=False conflicts"):
        adopt_model_config({**unset, "regression": False}, shipped, "default", unset=unset)


def test_finetune_config_takes_the_checkpoint_the_data_channels_and_the_held_out_share(tmp_path):
    data = labelled(tmp_path / "gray", 30, seed=3, renderings=("raw",))
    cfg = finetune_config(data, minutes=2.5)
    ckpt = load_checkpoint(default_checkpoint_path())
    assert cfg.model == {k: v for k, v in ckpt["model_config"].items() if k != "in_channels"}
    assert cfg.data.in_channels == 1  # every image gray
    assert cfg.data.val_share == VAL_SHARE and cfg.data.val is None and cfg.data.simulate is None
    assert cfg.train.max_minutes == 2.5 and cfg.train.tta == "d4" and cfg.train.init_from == "default"
    assert cfg.codec.refine == "offset" and cfg.codec.sigma == ckpt["codec_config"]["sigma"]
    assert cfg.codec.threshold == 0.5 and cfg.codec.sigma_scale == 1.0  # recalibrated, not taken over
    rgb = labelled(tmp_path / "rgb", 30, seed=4, renderings=("colormap",))
    assert finetune_config(rgb, val=data).data.in_channels == 3
    with pytest.raises(ValueError, match=r"train.lr: expected a number, got 'fast'"):
        finetune_config(data, overrides={"train.lr": "fast"})


def test_heatmaploc_finetune_writes_a_calibrated_checkpoint_that_predict_uses(tmp_path, monkeypatch, capsys):
    """Through the CLI's main in this process (the documented commands below run as
    real subprocesses)."""
    from heatmaploc.cli import main

    data = labelled(tmp_path / "data", 30, seed=5, renderings=("raw",))
    monkeypatch.chdir(tmp_path)
    assert main(["finetune", str(data), "--out", "run", "--minutes", "5", *SHORT]) == 0
    out = capsys.readouterr().out
    assert "1-channel input; validation: 20% of" in out and "calibrated for tta d4" in out
    ckpt = load_checkpoint(tmp_path / "run" / "best.pt")
    assert ckpt["model_config"]["in_channels"] == 1 and ckpt["model_config"]["regression"] is True
    assert ckpt["inference"]["tta"] == "d4"
    assert ckpt["codec_config"]["threshold"] == ckpt["inference"]["thresholds"]["d4"]
    assert ckpt["codec_config"]["sigma_scale"] == ckpt["inference"]["sigma_scales"]["d4"] > 0
    held = {r.name for r in split_dataset(load_dataset(data), VAL_SHARE)[1].records}
    assert main(["predict", str(data / "images" / sorted(held)[0]), "--checkpoint", "run/best.pt"]) == 0
    assert re.search(r"\d+ source", capsys.readouterr().out)
    assert main(["finetune", str(data), "--out", "run"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "heatmaploc finetune: error: run already holds a run (last.pt, best.pt, log.csv); continue it with "
        "heatmaploc train --out run --resume, or start afresh with --overwrite"]


def test_heatmaploc_finetune_on_too_few_labelled_images_is_one_line(tmp_path):
    labelled(tmp_path / "few", 10, seed=6)
    run = heatmaploc("finetune", "few", "--minutes", "1", cwd=tmp_path)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "few: a 20% validation share of its 10 images holds 2 image(s)" in lines[0]
    assert not (tmp_path / "runs").exists()


def documented_commands() -> list[str]:
    """The fine-tuning command lines of docs/usage.md's code blocks, as written."""
    lines, inside = [], False
    for line in (ROOT / "docs" / "usage.md").read_text().splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line.strip())
    wanted = ("heatmaploc finetune ", "heatmaploc train --init-from ", "heatmaploc predict my_images ")
    return [line for line in lines if line.startswith(wanted)]


def test_the_documented_fine_tuning_commands_run_as_written(tmp_path):
    commands = documented_commands()
    assert [c.split()[1] for c in commands] == ["finetune", "predict", "train"]
    labelled(tmp_path / "my_data", 30, seed=7)
    labelled(tmp_path / "my_val", 6, seed=8)
    labelled(tmp_path / "my_images", 2, seed=9)
    for command in commands:
        argv = shlex.split(command)[1:]
        run = heatmaploc(*argv, *(SHORT if argv[0] != "predict" else []), cwd=tmp_path)
        assert run.returncode == 0, f"{command}: {run.stderr}"
    assert load_checkpoint(tmp_path / "runs" / "mine" / "best.pt")["inference"]["tta"] == "d4"
    trained = load_checkpoint(tmp_path / "runs" / "default" / "best.pt")
    assert trained["model_config"]["in_channels"] == 1 and trained["model_config"]["regression"] is True


def test_localizer_finetune_from_arrays_returns_the_calibrated_model(tmp_path, shipped_localizer):
    data = load_dataset(labelled(tmp_path / "arrays", 30, seed=10))
    from heatmaploc.data.io import read_image

    images = [read_image(r.path) for r in data.records]
    start = shipped_localizer
    tuned = start.finetune(images, [r.points for r in data.records], out=tmp_path / "run", progress=False,
                           overrides={"train.steps": 2, "train.batch_size": 2, "data.augment.crop_size": [48, 48]})
    assert tuned.tta == "d4" and tuned.has_regression
    assert (tmp_path / "run" / "data" / "train" / "points.csv").is_file()
    ckpt = load_checkpoint(tmp_path / "run" / "best.pt")
    assert tuned.threshold == ckpt["inference"]["thresholds"]["d4"]
    assert tuned.predict(images[0]).xy.shape[1] == 2
    with pytest.raises(ValueError, match="30 train images but 29 point lists"):
        start.finetune(images, [r.points for r in data.records][:-1], out=tmp_path / "other")
    with pytest.raises(ValueError, match="already holds a run"):
        start.finetune(images, [r.points for r in data.records], out=tmp_path / "run")
