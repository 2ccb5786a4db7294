"""Sharded prediction (predict --shard I/N) and merge-predictions, through the CLI, real
files and a real subprocess; the shipped model at tta none on small fields."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from heatmaploc.cli import main
from heatmaploc.data.io import write_image
from heatmaploc.sharding import Shard, manifest_path

from fields import render


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "heatmaploc", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """Seven images in two folders (one name in both), one of them blank (no sources)."""
    root = tmp_path_factory.mktemp("scans")
    for i, wavelength in enumerate((9.0, 11.0, 13.0, 10.0, 12.0, 14.0)):
        field = render("free", wavelength, shape=(40, 48))
        gray = ((field - field.min()) / np.ptp(field) * 255).astype(np.uint8)
        write_image(root / ("day1" if i < 3 else "day2") / f"s{i % 4}.png", gray)
    write_image(root / "day2" / "blank.png", np.full((40, 48), 128, np.uint8))
    return root


def test_shares_are_disjoint_and_cover():
    items = list(range(11))
    shares = [Shard(i, 4).take(items) for i in range(1, 5)]
    assert sorted(k for s in shares for k, _ in s) == items
    for bad in ("0/4", "5/4", "2", "a/b"):
        with pytest.raises(ValueError, match="--shard"):
            Shard.parse(bad)


def test_four_shares_merged_equal_the_single_run_csv(scans, tmp_path, capsys):
    """The shares run in this process (the CLI's main), the merge as a real subprocess."""
    folders = [str(scans / "day1"), str(scans / "day2")]
    single = tmp_path / "single.csv"
    assert main(["predict", *folders, "--tta", "none", "--out", str(single)]) == 0
    parts = []
    for i in range(1, 5):
        part = tmp_path / f"part{i}.csv"
        assert main(["predict", *folders, "--tta", "none", "--out", str(part), "--shard", f"{i}/4"]) == 0
        parts.append(str(part))
    capsys.readouterr()
    manifest = json.loads(manifest_path(parts[0]).read_text())
    assert manifest["of"] == 4 and manifest["inputs_total"] == 7 and len(manifest["images"]) == 2
    merged = tmp_path / "merged.csv"
    proc = _cli("merge-predictions", str(merged), *parts[::-1])  # any order of parts
    assert proc.returncode == 0, proc.stderr
    assert merged.read_bytes() == single.read_bytes()
    assert "7 of 7 inputs" in proc.stdout


def test_merge_refuses_overlaps_and_mixed_runs_and_reports_gaps(scans, tmp_path, capsys):
    folder = str(scans / "day1")
    parts = {}
    for spec in ("1/2", "2/2"):
        part = tmp_path / f"p{spec[0]}.csv"
        assert main(["predict", folder, "--tta", "none", "--out", str(part), "--shard", spec]) == 0
        parts[spec] = part
    other = tmp_path / "other.csv"  # a share of another split: 3 shares
    assert main(["predict", folder, "--tta", "none", "--out", str(other), "--shard", "1/3"]) == 0
    capsys.readouterr()
    out = tmp_path / "m.csv"
    cases = [
        ([parts["1/2"], parts["1/2"]], "already given"),
        ([parts["1/2"], other], "parts of different runs"),
    ]
    for given, message in cases:
        assert main(["merge-predictions", str(out), *map(str, given)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    # same split, but a part whose images overlap another's
    twin = tmp_path / "twin.csv"
    twin.write_bytes(parts["1/2"].read_bytes())
    data = json.loads(manifest_path(parts["1/2"]).read_text())
    data["shard"] = 2
    manifest_path(twin).write_text(json.dumps(data))
    assert main(["merge-predictions", str(out), str(parts["1/2"]), str(twin)]) == 2
    assert "the parts overlap" in capsys.readouterr().err
    # mixed headers: a part written with the physics 'refined' column
    mixed = tmp_path / "mixed.csv"
    text = parts["2/2"].read_text().splitlines()
    mixed.write_text("\n".join([text[0] + ",refined"] + [row + ",0" for row in text[1:]]) + "\n")
    manifest_path(mixed).write_text(manifest_path(parts["2/2"]).read_text())
    assert main(["merge-predictions", str(out), str(parts["1/2"]), str(mixed)]) == 2
    assert "differs from" in capsys.readouterr().err
    # a missing share: merged what there is, the gap named, exit 1
    assert main(["merge-predictions", str(out), str(parts["1/2"])]) == 1
    assert "share(s) 2 missing" in capsys.readouterr().err
    # a plain CSV without a manifest
    plain = tmp_path / "plain.csv"
    plain.write_text("image,x,y\n")
    assert main(["merge-predictions", str(out), str(plain)]) == 2
    assert "no shard manifest" in capsys.readouterr().err
    # --shard without --out
    assert main(["predict", folder, "--shard", "1/2"]) == 2
    assert "--shard needs --out" in capsys.readouterr().err
