"""Shared fixtures (tiny real datasets on disk) and the property tests' deterministic profile."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from heatmaploc.data.io import write_image, write_points_csv

# property tests draw the same examples on every run and machine (no example database)
settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")

if not os.environ.get("DISPLAY"):  # the napari widget tests: Qt without a display (CI)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def make_dataset(root: Path, images: dict[str, np.ndarray], points: dict[str, np.ndarray], meta: str | None = None) -> Path:
    """Write ``images/`` + ``points.csv`` (+ ``meta.json``) and return ``root``."""
    for name, image in images.items():
        write_image(root / "images" / name, image)
    write_points_csv(root / "points.csv", [(n, p, None, None) for n, p in points.items()])
    if meta is not None:
        (root / "meta.json").write_text(meta)
    return root


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    images = {
        "a.png": rng.integers(0, 255, size=(24, 32, 3), dtype=np.uint8),
        "b.png": rng.integers(0, 255, size=(24, 32, 3), dtype=np.uint8),
        "c.png": rng.integers(0, 255, size=(24, 32, 3), dtype=np.uint8),
    }
    points = {"a.png": np.array([[3.25, 4.5], [20.0, 10.75]]), "b.png": np.array([[31.4, 23.4]])}
    return make_dataset(tmp_path / "ds", images, points)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The TrainResult of configs/tiny.yaml (12 steps of a real model on simulated
    data), trained once per session; tests read its files, none writes into them."""
    from heatmaploc.config import load_config
    from heatmaploc.training import train

    root = Path(__file__).resolve().parents[1]
    run = tmp_path_factory.mktemp("tiny_session")
    return train(load_config(root / "configs" / "tiny.yaml"), run, progress=False)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_run) -> Path:
    """The calibrated best.pt of :func:`tiny_run`."""
    return tiny_run.best_checkpoint


@pytest.fixture(scope="session")
def shipped_localizer():
    """The shipped model as users get it (torch, CPU, its default d4 test-time augmentation)."""
    from heatmaploc.api import Localizer

    return Localizer.default(device="cpu")


@pytest.fixture(scope="session")
def shipped_one_pass(shipped_localizer):
    """The shipped model at one forward pass (tta none)."""
    return shipped_localizer.with_tta("none")
