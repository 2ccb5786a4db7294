"""Discovery and validation of a dataset folder (docs/design.md section 2).

``load_dataset(root)`` checks the layout and the CSV; ``validate=True`` (default) also
reads every image once to catch corrupt files, NaN/inf pixels, points outside the
image and mixed channel counts.
"""
from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from heatmaploc.data.io import IMAGE_EXTENSIONS, channels_of, read_image, read_meta, read_points_csv
from heatmaploc.points import PhysicalFrame


@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset: file, ``(N, 2)`` points (pixels), ``(N,)`` labels."""

    name: str
    path: Path
    points: np.ndarray
    labels: np.ndarray
    shape: tuple[int, ...] | None = None


@dataclass
class DatasetIndex:
    """The images of a dataset folder with their labels and metadata."""

    root: Path
    records: list[ImageRecord]
    meta: dict = field(default_factory=dict)
    labelled: bool = True

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> ImageRecord:
        return self.records[i]

    @property
    def frame(self) -> PhysicalFrame | None:
        return PhysicalFrame.from_meta(self.meta, str(self.root / "meta.json"))

    @property
    def num_classes(self) -> int:
        labels = [r.labels.max() for r in self.records if len(r.labels)]
        return int(max(labels)) + 1 if labels else 1

    def counts(self) -> np.ndarray:
        """``(n_images,)`` number of points per image."""
        return np.array([len(r.points) for r in self.records], dtype=np.int64)


def list_images(folder: Path) -> list[Path]:
    """Image files of ``folder`` (non-recursive), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def load_dataset(
    root: str | Path,
    *,
    require_labels: bool = True,
    validate: bool = True,
    allow_mixed_channels: bool | None = None,
    progress: bool = False,
) -> DatasetIndex:
    """Index ``root`` = ``images/`` + ``points.csv`` (+ optional ``meta.json``).

    Args:
        require_labels: a missing ``points.csv`` is an error (else: all images empty
            and ``labelled=False``).
        validate: read every image and check pixels, sizes and points.
        allow_mixed_channels: accept gray and colour images in one dataset; ``None``
            reads ``meta.json``'s ``"mixed_channels"`` (default false).

    Raises:
        FileNotFoundError: missing root, ``images/`` or ``points.csv``.
        ValueError: empty dataset, a bad CSV row, a CSV image that is missing, a
            corrupt image, NaN/inf pixels, a point outside its image, mixed channels.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    images_dir = root / "images"
    if not images_dir.is_dir():
        raise FileNotFoundError(f"{images_dir}: missing 'images' folder (expected <root>/images/<name>{'|'.join(IMAGE_EXTENSIONS)})")
    files = list_images(images_dir)
    if not files:
        raise ValueError(f"{images_dir}: empty dataset, no {'/'.join(IMAGE_EXTENSIONS)} images")
    csv_path = root / "points.csv"
    labelled = csv_path.is_file()
    if not labelled and require_labels:
        raise FileNotFoundError(f"{csv_path}: missing points CSV (header image,x,y)")
    meta = read_meta(root / "meta.json")
    table = read_points_csv(csv_path) if labelled else None
    by_name = {p.name: p for p in files}
    if table is not None:
        unknown = sorted(set(table.points) - set(by_name))
        if unknown:
            more = f" (and {len(unknown) - 3} more)" if len(unknown) > 3 else ""
            raise ValueError(f"{csv_path}: image(s) {unknown[:3]}{more} listed in the CSV but missing from {images_dir}")
    records = []
    for path in files:
        pts = table.points.get(path.name, np.zeros((0, 2))) if table else np.zeros((0, 2))
        labs = table.labels.get(path.name, np.zeros(0, np.int64)) if table else np.zeros(0, np.int64)
        records.append(ImageRecord(path.name, path, pts, labs))
    index = DatasetIndex(root, records, meta, labelled)
    if validate:
        mixed = bool(meta.get("mixed_channels", False)) if allow_mixed_channels is None else allow_mixed_channels
        index.records = _validate_images(index, mixed, progress)
    return index


def _validate_images(index: DatasetIndex, allow_mixed: bool, progress: bool) -> list[ImageRecord]:
    checked = []
    channel_counts: Counter = Counter()
    first_of: dict[int, str] = {}
    for rec in tqdm(index.records, desc="validating", disable=not progress, unit="img"):
        image = read_image(rec.path)
        h, w = image.shape[:2]
        c = channels_of(image)
        channel_counts[c] += 1
        first_of.setdefault(c, rec.name)
        if len(rec.points):
            x, y = rec.points[:, 0], rec.points[:, 1]
            bad = (x < -0.5) | (x >= w - 0.5) | (y < -0.5) | (y >= h - 0.5)
            if np.any(bad):
                bx, by = rec.points[np.argmax(bad)]
                raise ValueError(
                    f"{index.root / 'points.csv'}: point ({bx:g}, {by:g}) of {rec.name} is outside the "
                    f"{w}x{h} image (valid: -0.5 <= x < {w - 0.5}, -0.5 <= y < {h - 0.5})"
                )
        checked.append(ImageRecord(rec.name, rec.path, rec.points, rec.labels, tuple(image.shape)))
    if len(channel_counts) > 1 and not allow_mixed:
        parts = ", ".join(f"{n} image(s) with {c} channel(s), e.g. {first_of[c]}" for c, n in sorted(channel_counts.items()))
        raise ValueError(
            f"{index.root / 'images'}: mixed channel counts ({parts}); convert them, or set "
            f'"mixed_channels": true in meta.json to let gray images be replicated to RGB'
        )
    return checked


MIN_VALIDATION_IMAGES = 5
MIN_VALIDATION_POINTS = 10


def split_dataset(index: DatasetIndex, share: float) -> tuple[DatasetIndex, DatasetIndex]:
    """``(train, validation)`` parts of ``index``: the validation part holds
    ``ceil(share * n)`` of its ``n`` images, those first in the order of the SHA-1 of
    their file names (so the split depends on the names alone, and an image keeps its
    side when others are added, unless it sits at the boundary); the rest train.

    Raises:
        ValueError: ``share`` outside (0, 1); a validation part with fewer than
            ``MIN_VALIDATION_IMAGES`` images or ``MIN_VALIDATION_POINTS`` sources (the
            decode threshold and the sigma factor are calibrated on it), or no image
            left to train on.
    """
    if not 0.0 < share < 1.0:
        raise ValueError(f"validation share must be in (0, 1), got {share!r}")
    n = len(index)
    n_val = math.ceil(share * n)
    order = sorted(range(n), key=lambda i: hashlib.sha1(index[i].name.encode()).hexdigest())
    held = set(order[:n_val])
    val = [r for i, r in enumerate(index.records) if i in held]
    train = [r for i, r in enumerate(index.records) if i not in held]
    n_points = sum(len(r.points) for r in val)
    if len(val) < MIN_VALIDATION_IMAGES or n_points < MIN_VALIDATION_POINTS or not train:
        raise ValueError(
            f"{index.root}: a {share:.0%} validation share of its {n} images holds {len(val)} image(s) with "
            f"{n_points} source(s); calibrating the threshold and sigma needs at least {MIN_VALIDATION_IMAGES} "
            f"images and {MIN_VALIDATION_POINTS} sources there, and training at least one image left over: "
            "label more images, or give a validation folder"
        )
    return replace(index, records=train), replace(index, records=val)
