"""Point lists <-> napari Points layer data, and image layers -> frames.

napari orders coordinates ``(row, column)``; heatmaploc's points are ``(x, y)`` with
pixel centres at integers (docs/design.md section 1), which is napari's pixel
convention too, so a point ``(x, y)`` is the layer row ``(y, x)``, and ``(i, y, x)``
in frame ``i`` of a stack.  No napari import: these are arrays and dicts.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from heatmaploc.points import Points

FEATURES = ("score", "sigma", "strength", "refined")
METADATA_KEY = "heatmaploc"  # a layer's metadata[METADATA_KEY]["images"]: the image name of each frame

LayerData = tuple[Any, dict[str, Any], str]  # napari's (data, keyword arguments, layer type)


def image_metadata(images: Sequence[str]) -> dict[str, Any]:
    """A layer's ``metadata`` naming the image of each of its frames."""
    return {METADATA_KEY: {"images": list(images)}}


def images_of(metadata: Any) -> list[str] | None:
    """The frames' image names :func:`image_metadata` put in a layer's metadata."""
    return ((metadata or {}).get(METADATA_KEY) or {}).get("images")


def image_layer(image: np.ndarray, name: str, images: Sequence[str], stacked: bool = False) -> LayerData:
    """An image layer that names its frames' images: ``(H, W[, C])``, or ``(N, H, W[, C])``
    when ``stacked`` (RGB when the channel axis is there)."""
    rgb = image.ndim == (4 if stacked else 3)
    return image, {"name": name, "rgb": rgb, "metadata": image_metadata(images)}, "image"


def points_layer(data: np.ndarray, features: dict[str, np.ndarray], name: str, images: Sequence[str],
                 border_color: str = "cyan") -> LayerData:
    """A Points layer of :func:`layer_data` drawn as rings (read points, ground truth)."""
    return data, {"name": name, "features": features, "size": 5, "face_color": "transparent",
                  "border_color": border_color, "metadata": image_metadata(images)}, "points"


def layer_data(points: Sequence[Points], stacked: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(N, 2)`` ``(y, x)`` rows (``(N, 3)`` ``(frame, y, x)`` when ``stacked``) and
    the features :data:`FEATURES` (``(N,)`` each) of one point list per frame."""
    if not stacked and len(points) != 1:
        raise ValueError(f"an unstacked layer holds one frame, got {len(points)}")
    rows, features = [], {name: [] for name in FEATURES}
    for frame, pts in enumerate(points):
        yx = pts.xy[:, ::-1]
        rows.append(np.column_stack([np.full(pts.count, float(frame)), yx]) if stacked else yx)
        features["score"].append(pts.scores)
        features["sigma"].append(pts.sigma)
        features["strength"].append(pts.strength)
        features["refined"].append(np.full(pts.count, bool(pts.refined)))
    width = 3 if stacked else 2
    data = np.concatenate(rows).reshape(-1, width) if rows else np.zeros((0, width))
    return data, {k: np.concatenate(v) if v else np.zeros(0) for k, v in features.items()}


def points_of_layer(data: np.ndarray, features: Any = None, frames: int | None = None) -> list[Points]:
    """The inverse of :func:`layer_data`: one :class:`Points` per frame of ``(N, 2)``
    ``(y, x)`` or ``(N, 3)`` ``(frame, y, x)`` rows (``frames``: how many, at least one
    more than the largest frame index); ``features`` a mapping or a pandas table with
    any of :data:`FEATURES` (missing ones: score 1, sigma and strength NaN).  A frame
    index is rounded to the nearest integer (napari stores floats)."""
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] not in (2, 3):
        raise ValueError(f"points layer data must be (N, 2) or (N, 3), got shape {data.shape}")
    n = len(data)

    def column(name: str, default: float) -> np.ndarray:
        if features is not None and name in features:
            return np.asarray(features[name], dtype=np.float64).reshape(n)
        return np.full(n, default)

    score, sigma, strength = column("score", 1.0), column("sigma", np.nan), column("strength", np.nan)
    refined = column("refined", 0.0) > 0
    if data.shape[1] == 2:
        return [Points(data[:, ::-1], score, sigma=sigma, strength=strength, refined=bool(refined.any()))]
    index = np.rint(data[:, 0]).astype(np.int64)
    if n and index.min() < 0:
        raise ValueError(f"frame indices must be >= 0, got {index.min()}")
    count = max(int(index.max()) + 1 if n else 0, frames or 0, 1)
    out = []
    for i in range(count):
        sel = index == i
        out.append(Points(data[sel, :0:-1], score[sel], sigma=sigma[sel], strength=strength[sel],
                          refined=bool(refined[sel].any())))
    return out


def frames_of(data: Any, rgb: bool, name: str = "image") -> tuple[list[np.ndarray], bool]:
    """The 2-D frames of an image layer's data: ``(H, W)`` or ``(H, W, C)`` (``rgb``)
    is one frame; a leading axis is a stack, frame by frame.  Returns ``(frames,
    stacked)``; more leading axes are an error naming ``name``."""
    shape = tuple(data.shape)
    spatial = 3 if rgb else 2
    if len(shape) < spatial:
        raise ValueError(f"{name}: a {len(shape)}-D layer is not an image")
    leading = shape[:-spatial]
    if len(leading) > 1:
        raise ValueError(f"{name}: shape {shape} has {len(leading)} axes before the image plane; "
                         "give a 2-D image or a stack of them (one leading axis)")
    if not leading:
        return [np.asarray(data)], False
    return [np.asarray(data[i]) for i in range(leading[0])], True


def frame_names(layer_name: str, count: int, stacked: bool) -> list[str]:
    """The image names a layer's frames get in a predictions CSV."""
    return [f"{layer_name}[{i}]" for i in range(count)] if stacked else [layer_name]
