"""Reading and writing images, point CSVs and meta.json (docs/design.md section 2).

Images come back as loaded from disk: ``(H, W)`` or ``(H, W, C)`` channels-last, RGB
order, dtype unchanged (uint8, uint16, float...); a complex field (a complex ``.npy``,
or a float ``.npy`` of shape ``(H, W, 2)``: real and imaginary parts stacked on the last
axis) comes back as complex128 ``(H, W)``.  Points are ``(N, 2)`` float64
``(x, y)`` pixels.  Every error names the file and the problem.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from heatmaploc.atomic import atomic_write_bytes

IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".npy", ".jpg", ".jpeg", ".bmp")  # JPEG is lossy: it shifts points
POINT_COLUMNS = ("image", "x", "y")
STRENGTH_COLUMNS = ("strength", "phase", "strength_sigma", "phase_sigma")  # optional; empty field: unknown


def read_image(path: str | Path) -> np.ndarray:
    """Load one image; ``(H, W)`` or ``(H, W, C)`` with ``C`` in {1, 3, 4}, RGB(A) order,
    or a complex ``(H, W)`` field (a ``.npy`` that is complex, or real with a last axis
    of 2: the real and imaginary parts).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unsupported extension, corrupt/undecodable file, wrong number of
            dimensions or channels, a non-numeric dtype, or NaN/inf pixels.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image file not found")
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise ValueError(f"{path}: unsupported image extension {ext!r}; expected one of {IMAGE_EXTENSIONS}")
    if ext == ".npy":
        try:
            image = np.load(path, allow_pickle=False)
        except Exception as err:  # numpy raises several types for a corrupt file
            raise ValueError(f"{path}: cannot read .npy array ({err})") from None
        if image.ndim == 3 and image.shape[2] == 2 and np.issubdtype(image.dtype, np.floating):
            image = image[..., 0] + 1j * image[..., 1].astype(np.float64)  # real and imaginary parts
    else:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ValueError(f"{path}: cannot decode image (corrupt or unsupported file)")
        if image.ndim == 3 and image.shape[2] == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        elif image.ndim == 3 and image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return check_image(image, str(path))


def check_image(image: np.ndarray, source: str = "image") -> np.ndarray:
    """Validate an in-memory image (see :func:`read_image`; a complex array is a complex
    field, ``(H, W)`` or ``(H, W, 1)``) and return it unchanged."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{source}: expected a numpy array, got {type(image).__name__}")
    if image.dtype == bool:
        image = image.astype(np.uint8)
    if np.iscomplexobj(image):
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 1):
            raise ValueError(f"{source}: a complex field must be (H, W), got shape {image.shape}")
        if image.shape[0] < 1 or image.shape[1] < 1:
            raise ValueError(f"{source}: empty image of shape {image.shape}")
        if not np.all(np.isfinite(image)):
            raise ValueError(f"{source}: {int(np.size(image) - np.count_nonzero(np.isfinite(image)))} NaN/inf pixel value(s)")
        return image
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ValueError(f"{source}: unsupported pixel dtype {image.dtype}; expected integer or float")
    if image.ndim not in (2, 3):
        raise ValueError(f"{source}: expected (H, W) or (H, W, C) array, got shape {image.shape}")
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        hint = " (a real/imaginary pair of 2 is read from .npy files only)" if image.shape[2] == 2 else ""
        raise ValueError(f"{source}: expected 1, 3 or 4 channels (channels last), got shape {image.shape}{hint}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{source}: empty image of shape {image.shape}")
    if np.issubdtype(image.dtype, np.floating) and not np.all(np.isfinite(image)):
        bad = int(np.size(image) - np.count_nonzero(np.isfinite(image)))
        raise ValueError(f"{source}: {bad} NaN/inf pixel value(s)")
    return image


def channels_of(image: np.ndarray) -> int:
    """Number of channels of an ``(H, W)`` / ``(H, W, C)`` image."""
    return 1 if image.ndim == 2 else int(image.shape[2])


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write ``.png``/``.tif`` (RGB order in, uint8/uint16) or ``.npy`` (any array)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".npy":
        import io as _io

        buf = _io.BytesIO()
        np.save(buf, image, allow_pickle=False)
        atomic_write_bytes(path, buf.getvalue())
        return
    if ext not in IMAGE_EXTENSIONS:
        raise ValueError(f"{path}: unsupported image extension {ext!r}")
    data = image
    if data.ndim == 3 and data.shape[2] == 3:
        data = cv2.cvtColor(data, cv2.COLOR_RGB2BGR)
    elif data.ndim == 3 and data.shape[2] == 4:
        data = cv2.cvtColor(data, cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode(ext, data)
    if not ok:
        raise ValueError(f"{path}: could not encode a {image.dtype} image of shape {image.shape}")
    atomic_write_bytes(path, encoded.tobytes())


@dataclass(frozen=True)
class PointTable:
    """Rows of a points CSV grouped by image name.

    Attributes:
        points: image name -> ``(N, 2)`` float64 ``(x, y)``.
        labels: image name -> ``(N,)`` int64 (0 when the CSV has no label column).
        scores: image name -> ``(N,)`` float64 (only when the CSV has a score column).
        sigmas: image name -> ``(N,)`` float64 (only when the CSV has a sigma column;
            an empty field is NaN, unknown).
        strengths: column of ``STRENGTH_COLUMNS`` the CSV has -> image name -> ``(N,)``
            float64 (an empty field is NaN).
    """

    points: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    scores: dict[str, np.ndarray] | None = None
    sigmas: dict[str, np.ndarray] | None = None
    strengths: dict[str, dict[str, np.ndarray]] | None = None


def read_points_csv(path: str | Path) -> PointTable:
    """Parse ``image,x,y[,label][,score][,sigma][,strength,phase,strength_sigma,phase_sigma]``
    rows (any column order, quoted as the csv module does; other columns are ignored);
    every problem names the line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: points CSV not found")
    pts: dict[str, list] = {}
    labs: dict[str, list] = {}
    scs: dict[str, list] = {}
    sig: dict[str, list] = {}
    extra: dict[str, dict[str, list]] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # a BOM (Excel) is not part of the header
            reader = csv.reader(fh)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                raise ValueError(f"{path}: empty file; expected a header 'image,x,y'") from None
            except csv.Error as err:
                raise ValueError(f"{path}: line 1: {err}") from None
            missing = [c for c in POINT_COLUMNS if c not in header]
            if missing:
                raise ValueError(f"{path}: header {','.join(header)!r} lacks column(s) {missing}; expected 'image,x,y[,label]'")
            col = {name: header.index(name) for name in header}
            has_label, has_score, has_sigma = "label" in col, "score" in col, "sigma" in col
            optional = [c for c in STRENGTH_COLUMNS if c in col]
            extra = {c: {} for c in optional}
            try:
                for row in reader:
                    line = reader.line_num
                    if not row or all(not c.strip() for c in row):
                        continue
                    if len(row) != len(header):
                        raise ValueError(f"{path}: line {line}: {len(row)} fields, header has {len(header)}")
                    name = row[col["image"]].strip()
                    if not name:
                        raise ValueError(f"{path}: line {line}: empty image name")
                    try:
                        x, y = float(row[col["x"]]), float(row[col["y"]])
                    except ValueError:
                        raise ValueError(f"{path}: line {line}: x={row[col['x']]!r}, y={row[col['y']]!r} are not both numbers") from None
                    if not (np.isfinite(x) and np.isfinite(y)):
                        raise ValueError(f"{path}: line {line}: non-finite coordinate x={x}, y={y}")
                    label = 0
                    if has_label:
                        try:
                            label = int(row[col["label"]])
                        except ValueError:
                            raise ValueError(f"{path}: line {line}: label={row[col['label']]!r} is not an integer") from None
                        if label < 0:
                            raise ValueError(f"{path}: line {line}: label must be >= 0, got {label}")
                    pts.setdefault(name, []).append((x, y))
                    labs.setdefault(name, []).append(label)
                    if has_score:
                        try:
                            scs.setdefault(name, []).append(float(row[col["score"]]))
                        except ValueError:
                            raise ValueError(f"{path}: line {line}: score={row[col['score']]!r} is not a number") from None
                    if has_sigma:
                        text = row[col["sigma"]].strip()
                        try:
                            value = float(text) if text else float("nan")
                        except ValueError:
                            raise ValueError(f"{path}: line {line}: sigma={text!r} is not a number") from None
                        if value < 0:
                            raise ValueError(f"{path}: line {line}: sigma must be >= 0, got {value}")
                        sig.setdefault(name, []).append(value)
                    for column in optional:
                        text = row[col[column]].strip()
                        try:
                            extra[column].setdefault(name, []).append(float(text) if text else float("nan"))
                        except ValueError:
                            raise ValueError(f"{path}: line {line}: {column}={text!r} is not a number") from None
            except csv.Error as err:
                raise ValueError(f"{path}: line {reader.line_num}: {err}") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    return PointTable(
        points={k: np.asarray(v, dtype=np.float64).reshape(-1, 2) for k, v in pts.items()},
        labels={k: np.asarray(v, dtype=np.int64) for k, v in labs.items()},
        scores={k: np.asarray(v, dtype=np.float64) for k, v in scs.items()} if has_score else None,
        sigmas={k: np.asarray(v, dtype=np.float64) for k, v in sig.items()} if has_sigma else None,
        strengths={c: {k: np.asarray(v, dtype=np.float64) for k, v in by_name.items()} for c, by_name in extra.items()}
        or None,
    )


def write_points_csv(path: str | Path, rows: Iterable[tuple], with_scores: bool | None = None,
                     with_refined: bool | None = None, with_strength: bool | None = None) -> None:
    """Write ``image,x,y,label[,score,sigma][,strength,phase,strength_sigma,phase_sigma][,refined]``;
    ``rows`` yields ``(name, xy, labels, scores[, sigma[, refined[, strength]]])``
    (labels, scores, sigma, refined, strength may be ``None``; ``strength`` is a tuple
    of four ``(N,)`` arrays in the order of ``STRENGTH_COLUMNS``, NaN: unknown).

    The score and sigma columns are written when any row has scores (or
    ``with_scores``); an unknown sigma (NaN or ``None``) is an empty field.  The
    ``refined`` column (1: the image's points come from the blind physics refinement,
    0: the network's) is written when any row gives it (or ``with_refined``): fix both
    when the header must not depend on the rows, e.g. for parts of one run.  The
    strength columns likewise (``with_strength``), after ``sigma``; they keep 6
    significant digits.  Coordinates keep 4 decimals (0.1 milli-pixel).
    Fields are quoted by the csv module where needed, so any image name round-trips
    through :func:`read_points_csv`.  The file is replaced atomically.
    """
    rows = [tuple(r) + (None,) * (7 - len(r)) for r in rows]
    with_scores = any(r[3] is not None for r in rows) if with_scores is None else with_scores
    with_refined = any(r[5] is not None for r in rows) if with_refined is None else with_refined
    with_strength = any(r[6] is not None for r in rows) if with_strength is None else with_strength
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", "x", "y", "label"] + (["score", "sigma"] if with_scores else [])
                    + (list(STRENGTH_COLUMNS) if with_strength else []) + (["refined"] if with_refined else []))
    for name, xy, labels, scores, sigma, refined, strength in rows:
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        labels = np.zeros(len(xy), np.int64) if labels is None else np.asarray(labels)
        for i, (x, y) in enumerate(xy):
            fields = [name, f"{x:.4f}", f"{y:.4f}", str(int(labels[i]))]
            if with_scores:
                fields.append(f"{float(scores[i]):.4f}" if scores is not None else "")
                known = sigma is not None and np.isfinite(sigma[i])
                fields.append(f"{float(sigma[i]):.4f}" if known else "")
            if with_strength:
                for column in range(len(STRENGTH_COLUMNS)):
                    value = float(strength[column][i]) if strength is not None else float("nan")
                    fields.append(f"{value:.6g}" if np.isfinite(value) else "")
            if with_refined:
                fields.append("" if refined is None else str(int(bool(refined))))
            writer.writerow(fields)
    atomic_write_bytes(Path(path), buffer.getvalue().encode())


def write_dataset(root: str | Path, images: dict[str, np.ndarray], points: dict[str, np.ndarray],
                  meta: dict | None = None) -> Path:
    """Write a labelled dataset folder (docs/design.md section 2): ``images/<name>``
    for each item of ``images`` (:func:`write_image`, by the name's extension),
    ``points.csv`` with the ``(N, 2)`` points (pixels) of ``points[name]`` (an image
    without an entry has none) and, when given, ``meta.json``.  Returns ``root``."""
    root = Path(root)
    for name, image in images.items():
        write_image(root / "images" / name, image)
    write_points_csv(root / "points.csv", [(name, points.get(name, np.zeros((0, 2))), None, None) for name in images])
    if meta is not None:
        write_json(root / "meta.json", meta)
    return root


def read_meta(path: str | Path) -> dict:
    """``meta.json`` as a dict; ``{}`` when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    return meta


def write_json(path: str | Path, data: dict) -> None:
    """Deterministic, atomic JSON write (sorted keys, 2-space indent)."""
    atomic_write_bytes(Path(path), (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
