"""Inputs: an image given to the API (a path, an array or a PIL image), the image files
a command's paths name, the names they go by in outputs, and the ground truth found
beside them."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from heatmaploc.data.index import list_images
from heatmaploc.data.io import IMAGE_EXTENSIONS, check_image, read_image, read_points_csv

ImageLike = Any  # str | Path | numpy.ndarray | PIL.Image.Image


def load_input(image: ImageLike, name: str | None = None) -> tuple[np.ndarray, str]:
    """A path, a PIL image or an ndarray -> ``(checked ndarray, name for messages)``."""
    if isinstance(image, (str, Path)):
        return read_image(image), str(image)
    if isinstance(image, np.ndarray):
        label = name or f"array{tuple(image.shape)}"
        return check_image(image, label), label
    if hasattr(image, "mode") and hasattr(image, "size"):  # PIL.Image without importing PIL
        array = np.asarray(image)
        label = name or f"PIL image {image.size}"
        return check_image(array, label), label
    raise ValueError(f"unsupported image input of type {type(image).__name__}; give a path, a numpy array or a PIL image")


def expand_inputs(paths: Sequence[str | Path]) -> tuple[list[Path], dict[Path, list[Path]]]:
    """Files as given; a folder gives its images (or those of its images/ subfolder).

    Returns the files and, per folder, the other files it holds (not images: skipped,
    for the caller to mention)."""
    out: list[Path] = []
    skipped: dict[Path, list[Path]] = {}
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            folder = p / "images" if (p / "images").is_dir() else p
            found = list_images(folder)
            if not found:
                raise ValueError(f"{folder}: no {'/'.join(IMAGE_EXTENSIONS)} images")
            out.extend(found)
            images = set(found)
            others = sorted(f for f in folder.iterdir() if f.is_file() and f not in images)
            if others:
                skipped[folder] = others
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out, skipped


def unique_names(files: Sequence[Path]) -> dict[Path, str]:
    """The name each file goes by in outputs: its file name, or, when two inputs share
    one, every file's path relative to the inputs' common folder (POSIX separators)."""
    names = [f.name for f in files]
    if len(set(names)) == len(names):
        return dict(zip(files, names))
    resolved = [f.resolve() for f in files]
    common = Path(os.path.commonpath([str(r.parent) for r in resolved]))
    return {f: r.relative_to(common).as_posix() for f, r in zip(files, resolved)}


def ground_truth_for(path: Path, cache: dict) -> np.ndarray | None:
    """``(N, 2)`` points of ``path`` from a points.csv beside it (or beside its images/
    folder), ``None`` when there is none; ``cache`` keeps each CSV read once."""
    for folder in (path.parent, path.parent.parent if path.parent.name == "images" else None):
        if folder is None:
            continue
        csv_path = folder / "points.csv"
        if csv_path.is_file():
            if csv_path not in cache:
                cache[csv_path] = read_points_csv(csv_path)
            return cache[csv_path].points.get(path.name, np.zeros((0, 2)))
    return None
