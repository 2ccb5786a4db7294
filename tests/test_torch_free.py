"""A torch-free install (``pip install heatmaploc[onnx-runtime]``) in a venv of its own:
torch is absent there, prediction with the shipped model runs through onnxruntime and
gives the torch engine's points, the physics refinement runs, and commands that need
torch say which extra to install."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "images"


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("torch_free") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    proc = subprocess.run([str(root / "bin" / "pip"), "install", "-q", f"{REPO}[onnx-runtime]"],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


def test_the_torch_free_install_has_no_torch_and_imports_none(venv, tmp_path):
    code = ("import importlib.util, sys; import heatmaploc, heatmaploc.api, heatmaploc.cli, heatmaploc.physics.refine; "
            "assert importlib.util.find_spec('torch') is None, 'torch is installed'; "
            "assert not [m for m in sys.modules if m.split('.')[0] == 'torch']; print(heatmaploc.__file__)")
    proc = run(venv, "python", "-c", code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert str(venv) in proc.stdout  # the installed package, not the checkout


def test_torch_free_prediction_gives_the_torch_points(venv, tmp_path, shipped_localizer):
    proc = run(venv, "heatmaploc", "predict", str(EXAMPLES), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    onnx_points = json.loads(proc.stdout)
    names = sorted(onnx_points)
    torch_points = shipped_localizer.predict_batch([EXAMPLES / Path(n).name for n in names])
    assert sum(p.count for p in torch_points) >= 20
    for name, expected in zip(names, torch_points):
        got = np.array([[p["x"], p["y"]] for p in onnx_points[name]]).reshape(-1, 2)
        assert len(got) == expected.count, name
        np.testing.assert_allclose(got, expected.xy, atol=1e-3, err_msg=name)


def test_torch_free_physics_refinement_runs(venv, tmp_path):
    proc = run(venv, "heatmaploc", "predict", str(EXAMPLES / "plate_0.png"), "--refine", "physics", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "physics fit used" in proc.stdout


def test_commands_that_need_torch_name_the_extra(venv, tmp_path):
    proc = run(venv, "heatmaploc", "predict", str(EXAMPLES / "plate_0.png"), "--checkpoint",
               str(REPO / "heatmaploc" / "assets" / "default.pt"), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "heatmaploc predict: error: this needs the 'torch' package, which is not installed here: "
        "pip install 'heatmaploc[torch]'"]
