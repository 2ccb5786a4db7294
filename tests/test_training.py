"""Training on configs/tiny.yaml (real model, real simulated data, a few CPU steps)."""
from pathlib import Path

import numpy as np
import pytest
import torch

from heatmaploc.api import Localizer
from heatmaploc.checkpoint import load_checkpoint, save_checkpoint
from heatmaploc.config import load_config
from heatmaploc.training import TrainingDiverged, train
from heatmaploc.training_steps import lr_factor

from interrupts import ctrl_c_in_second_epoch

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"


def test_tiny_training_lowers_loss_and_writes_checkpoints(tiny_run):
    losses = [h["train_loss"] for h in tiny_run.history]
    assert len(losses) == 3 and losses[-1] < losses[0]
    for name in ("best.pt", "last.pt", "config.yaml", "log.csv", "curves.png"):
        assert (tiny_run.run_dir / name).is_file(), name
    ckpt = load_checkpoint(tiny_run.last_checkpoint)
    assert ckpt["train_state"]["step"] == 12 and ckpt["package_version"]
    # best.pt records the F1 that made it best
    best = load_checkpoint(tiny_run.best_checkpoint)["train_state"]["best_metric"]
    assert best == max(h["val_f1"] for h in tiny_run.history) == tiny_run.best_metric
    assert load_config(tiny_run.run_dir / "config.yaml") == load_config(TINY)


def test_threshold_is_chosen_stored_and_used(tiny_run):
    ckpt = load_checkpoint(tiny_run.best_checkpoint)
    assert ckpt["codec_config"]["threshold"] == tiny_run.threshold
    assert tiny_run.threshold in load_config(TINY).train.threshold_grid
    loc = Localizer.from_checkpoint(tiny_run.best_checkpoint, device="cpu")
    assert loc.threshold == tiny_run.threshold
    image = np.random.default_rng(0).random((40, 44)).astype(np.float32)
    heat = loc.heatmap(image)
    pts = loc.predict(image)
    assert np.all(pts.scores > tiny_run.threshold)
    # every stored-threshold detection is a peak of the heatmap above that threshold
    assert pts.count == loc.predict(image, threshold=tiny_run.threshold).count
    assert pts.count <= int((heat > tiny_run.threshold).sum())


def test_resume_after_interrupt_continues_from_saved_step(tmp_path):
    cfg = load_config(TINY)

    def interrupt(step, model):
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path, progress=False, on_step=interrupt)
    saved = load_checkpoint(tmp_path / "last.pt")["train_state"]
    assert saved["step"] == 6 and saved["epoch"] == 1 and len(saved["history"]) == 1
    seen = []
    result = train(cfg, tmp_path, resume=True, progress=False, on_step=lambda step, model: seen.append(step))
    assert seen[0] == 7 and seen[-1] == 12  # no step repeated, none lost
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert load_checkpoint(tmp_path / "last.pt")["train_state"]["step"] == 12


def test_nan_loss_stops_with_clear_error_and_keeps_last_good(tmp_path):
    cfg = load_config(TINY)

    def poison(step, model):
        if step == 5:  # a fault after the first epoch's checkpoint (step 4)
            with torch.no_grad():
                for p in model.parameters():
                    p.fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match="loss became nan at step 5"):
        train(cfg, tmp_path, progress=False, on_step=poison)
    good = load_checkpoint(tmp_path / "last.pt")
    assert good["train_state"]["step"] == 4
    assert all(torch.isfinite(v).all() for v in good["model_state"].values() if v.is_floating_point())


def test_finetune_from_default_with_one_channel_data(tmp_path):
    cfg = load_config(TINY, {"model": {"name": "heatmapnet", "regression": True}, "data.in_channels": 1, "train.steps": 4,
                             "data.simulate_overrides.renderings": ["raw"]})
    default = Path(__file__).resolve().parents[1] / "heatmaploc" / "assets" / "default.pt"
    result = train(cfg, tmp_path, init_from=default, progress=False)
    loc = Localizer.from_checkpoint(result.best_checkpoint, device="cpu")
    assert loc.in_channels == 1 and loc.has_regression
    # before any step the adapted 1-channel network answers a gray image exactly as the
    # 3-channel one answers it replicated to RGB (its first filters are the RGB sums)
    from heatmaploc.checkpoint import adapt_state_dict
    from heatmaploc.models import build_model

    start = load_checkpoint(default)
    gray_model = build_model({**start["model_config"], "in_channels": 1})
    gray_model.load_state_dict(adapt_state_dict(start["model_state"], gray_model))
    rgb = Localizer.from_checkpoint(default, device="cpu", tta="none")
    gray = Localizer(gray_model, rgb.codec, "cpu", rgb.inference)
    image = np.random.default_rng(1).random((33, 47))
    np.testing.assert_allclose(gray.heatmap(image), rgb.heatmap(image), atol=1e-4)


def test_init_from_in_config_loads_weights_and_resume_ignores_it(tmp_path, tiny_run):
    source = load_checkpoint(tiny_run.best_checkpoint)["model_state"]
    cfg = load_config(TINY, {"train.init_from": str(tiny_run.best_checkpoint), "train.steps": 1, "train.lr": 0.0})
    result = train(cfg, tmp_path, progress=False)
    weights = load_checkpoint(result.last_checkpoint)["train_state"]["raw_model_state"]
    conv = [k for k, v in source.items() if v.ndim == 4]
    assert conv and all(torch.equal(weights[k].float(), source[k].float()) for k in conv)


def test_lr_schedule_follows_the_time_budget_when_it_is_further_along():
    assert lr_factor(0, 10, 1000) == pytest.approx(0.1)
    assert lr_factor(505, 10, 1000) == pytest.approx(0.505, abs=1e-9)  # half of the cosine
    assert lr_factor(20, 10, 1000, time_fraction=0.5) == pytest.approx(0.505)
    assert lr_factor(20, 10, 1000, time_fraction=1.5) == pytest.approx(0.01)


def test_time_budget_stops_after_the_step_that_exceeds_it(tmp_path):
    cfg = load_config(TINY, {"train.max_minutes": 1e-6})
    result = train(cfg, tmp_path, progress=False)
    assert not result.finished
    assert [h["step"] for h in result.history] == [1]  # one step, then validation + checkpoint
    assert load_checkpoint(result.last_checkpoint)["train_state"]["step"] == 1


def test_checkpoint_from_another_version_is_refused(tmp_path, tiny_run):
    ckpt = load_checkpoint(tiny_run.best_checkpoint)
    ckpt.pop("format", None)
    ckpt["format_version"] = 99
    path = tmp_path / "future.pt"
    save_checkpoint(path, ckpt)
    data = torch.load(path, weights_only=True)
    data["format_version"] = 99
    torch.save(data, path)
    with pytest.raises(ValueError, match="format 99"):
        load_checkpoint(path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_offset_decoding_needs_a_regression_head(tmp_path):
    cfg = load_config(TINY, {"model.regression": False})
    with pytest.raises(ValueError, match="model.regression: true"):
        train(cfg, tmp_path, progress=False)


def test_regression_model_learns_offsets_and_sigma(tiny_run):
    """The tiny run trains the offset head: its points carry a finite, positive sigma
    and the logged loss includes the regression terms (it starts above the heatmap
    loss alone)."""
    loc = Localizer.from_checkpoint(tiny_run.best_checkpoint, device="cpu").with_threshold(0.0)
    pts = loc.predict(np.random.default_rng(0).random((32, 32)))
    assert pts.count and np.all(np.isfinite(pts.sigma)) and np.all(pts.sigma > 0)
    weights = load_checkpoint(tiny_run.best_checkpoint)["model_state"]
    assert weights["regression_head.out.weight"].abs().sum() > 0  # moved away from its zero start


def test_profile_tool_reports_phases_and_a_same_run_ratio(tmp_path):
    import json
    import subprocess
    import sys

    out = tmp_path / "profile.json"
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "profile_training.py"), "--config", str(TINY),
                           "--steps", "1", "--rounds", "1", "--compare", "train.cpu_bf16=true", "--json", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert set(result["share"]) == {"simulation", "samples + targets", "forward + loss", "backward", "optimizer"}
    assert abs(sum(result["share"].values()) - 1.0) < 1e-9
    assert result["loop_images_per_s"] > 0 and result["ratio"] == result["compare_images_per_s"] / result["loop_images_per_s"]
    assert "images/s" in proc.stdout and "x the baseline, same run" in proc.stdout


def test_cli_refuses_to_overwrite_a_run_and_resumes_from_its_saved_config(tmp_path, capsys):
    from heatmaploc.cli import main

    out = tmp_path / "run"
    base = ["train", "--config", str(TINY), "--out", str(out), "--quiet"]
    assert main(base + ["--set", "train.steps=4", "--set", "train.steps_per_epoch=2"]) == 0
    capsys.readouterr()
    assert main(base) == 2  # a run is there: neither --resume nor --overwrite
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a run" in err[0] and "--resume" in err[0] and "--overwrite" in err[0]
    # --resume without --config reads the run's config.yaml, overrides included (4 steps, 2 per epoch)
    assert main(["train", "--out", str(out), "--resume", "--quiet", "--set", "train.steps=6"]) == 0
    assert load_checkpoint(out / "last.pt")["train_state"]["step"] == 6
    assert load_config(out / "config.yaml").train.steps_per_epoch == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--out", str(empty), "--resume"]) == 2
    assert "no saved run config to resume from" in capsys.readouterr().err
    assert main(base + ["--overwrite", "--set", "train.steps=2", "--set", "train.steps_per_epoch=2"]) == 0
    assert load_checkpoint(out / "last.pt")["train_state"]["step"] == 2


def _weights_equal(a: Path, b: Path) -> bool:
    sa, sb = load_checkpoint(a)["train_state"], load_checkpoint(b)["train_state"]
    return sa["step"] == sb["step"] and all(torch.equal(sa["raw_model_state"][k], sb["raw_model_state"][k])
                                           for k in sa["raw_model_state"])


def _log_without_minutes(run: Path) -> list[list[str]]:
    import csv

    with open(run / "log.csv", newline="") as fh:
        return [row[:-1] for row in csv.reader(fh)]  # minutes (wall time) is the last column


def test_ctrl_c_mid_epoch_then_the_printed_command_is_bit_identical(tmp_path, tiny_run):
    """A real Ctrl-C (SIGINT to the process group, a DataLoader worker included) after
    the first epoch; the command training prints resumes to the same weights and log
    as a run never stopped (the session's tiny run: the samples depend only on their
    index, not on the worker that draws them)."""
    import subprocess
    import sys

    reference = tiny_run
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "heatmaploc", "train", "--config", str(TINY), "--out", str(run),
                             "--quiet", "--set", "data.workers=1"], stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    err = ctrl_c_in_second_epoch(proc, run, "epoch 1 step 4", settle=0.1)
    assert proc.wait(timeout=120) == 130, err
    resume_line = [ln for ln in err.splitlines() if "continue with:" in ln]
    assert len(resume_line) == 1
    stopped_at = load_checkpoint(run / "last.pt")["train_state"]["step"]
    assert 4 < stopped_at <= 12
    command = resume_line[0].split("continue with: ")[1].split()
    assert command[:2] == ["heatmaploc", "train"]
    done = subprocess.run([sys.executable, "-m", "heatmaploc", *command[1:], "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _weights_equal(run / "last.pt", reference.last_checkpoint)
    assert _log_without_minutes(run) == _log_without_minutes(reference.run_dir)


def test_interrupt_after_the_last_step_still_validates_on_resume(tmp_path):
    cfg = load_config(TINY)

    def interrupt(step, model):
        if step == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path, progress=False, on_step=interrupt)
    assert len(load_checkpoint(tmp_path / "last.pt")["train_state"]["history"]) == 2
    result = train(cfg, tmp_path, resume=True, progress=False)
    assert [h["step"] for h in result.history] == [4, 8, 12]
