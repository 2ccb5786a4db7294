"""tools/refine_speed.py end to end: real files, the shipped model, real subprocesses."""
import json
import subprocess
import sys
from pathlib import Path

from heatmaploc.simulate import get_preset, write_dataset

ROOT = Path(__file__).resolve().parents[1]


def test_the_same_tree_twice_refines_every_image_identically(tmp_path):
    cfg = get_preset("default", height=48, width=48, count_range=(1, 2))
    data = write_dataset(cfg, 2, tmp_path / "data", seed=5, workers=1, progress=False)
    out = tmp_path / "report"
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "refine_speed.py"), str(data), "--n", "2",
                          "--tta", "none", "--tree", str(ROOT), "--tree", str(ROOT), "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((out / "refine_speed.json").read_text())
    assert report["images"] == 2 and len(report["trees"]) == 2
    for tree in report["trees"]:
        assert tree["identical"] == 2  # the refinement is deterministic across processes
        assert tree["same_count"] == 2 and tree["max_move_px"] == 0.0
        assert [image["seconds"] > 0 for image in tree["images"]] == [True, True]
    assert "| network (none) |" in (out / "refine_speed.md").read_text()


def test_a_folder_without_a_heatmaploc_package_is_one_clear_error(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "refine_speed.py"), str(tmp_path), "--tree",
                          str(tmp_path), "--out", str(tmp_path / "report")], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0
    assert run.stderr.strip().splitlines() == [f"--tree {tmp_path}: no heatmaploc package in it"]
