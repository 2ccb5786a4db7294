"""napari reader: a predictions or points CSV (``image,x,y[,label][,score][,sigma]...``)
as Points layers, and a dataset folder (``images/`` + ``points.csv``, docs/design.md
section 2) as its images with their ground truth."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from heatmaploc.napari_plugin.layers import LayerData, image_layer, layer_data, points_layer
from heatmaploc.points import Points


def get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """The reader of ``path`` (napari's ``napari_get_reader``), or ``None`` when it is
    neither a CSV with the columns ``image,x,y`` nor a dataset folder."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(path)
    if p.is_dir() and (p / "images").is_dir():
        return read_dataset
    if p.suffix.lower() == ".csv" and p.is_file() and _has_point_columns(p):
        return read_points
    return None


def _has_point_columns(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8-sig") as fh:
            header = {h.strip() for h in fh.readline().split(",")}
    except (OSError, UnicodeDecodeError):
        return False
    return {"image", "x", "y"} <= header


def read_points(path: str | list[str]) -> list[LayerData]:
    """One Points layer per image named in the CSV, ``(y, x)`` rows with the features
    ``score``, ``sigma``, ``strength`` (where the CSV has them) and ``refined``."""
    from heatmaploc.data.io import read_points_csv

    path = Path(path[0] if isinstance(path, list) else path)
    table = read_points_csv(path)
    layers = []
    for name, xy in table.points.items():
        scores = table.scores[name] if table.scores else None
        sigma = table.sigmas[name] if table.sigmas else None
        strength = table.strengths["strength"][name] if table.strengths and "strength" in table.strengths else None
        data, features = layer_data([Points(xy, scores, table.labels[name], sigma=sigma, strength=strength)], False)
        layers.append(points_layer(data, features, f"{name} ({path.name})", [name]))
    return layers


def read_dataset(path: str | list[str]) -> list[LayerData]:
    """The dataset's images (one stacked layer when they share a shape, else one layer
    each) and their ground-truth points (frame by frame, score 1)."""
    from heatmaploc.data.index import load_dataset
    from heatmaploc.data.io import read_image

    root = Path(path[0] if isinstance(path, list) else path)
    index = load_dataset(root, require_labels=False)
    images = [read_image(r.path) for r in index.records]
    names = [r.name for r in index.records]
    truth = [Points(r.points, labels=r.labels) for r in index.records]
    shapes = {im.shape for im in images}
    if len(shapes) == 1 and len(images) > 1:
        stack = np.stack(images)
        data, features = layer_data(truth, stacked=True)
        return [image_layer(stack, root.name, names, stacked=True), points_layer(data, features, f"{root.name} ground truth", names)]
    layers: list[LayerData] = []
    for name, image, pts in zip(names, images, truth):
        data, features = layer_data([pts], stacked=False)
        layers += [image_layer(image, name, [name]), points_layer(data, features, f"{name} ground truth", [name])]
    return layers
