"""napari writer: a Points layer as a heatmaploc predictions CSV
(``image,x,y,label,score,sigma[,strength...]``, :func:`heatmaploc.data.io.write_points_csv`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from heatmaploc.napari_plugin.layers import frame_names, images_of, points_of_layer


def write_points(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write the layer's points (``(N, 2)`` ``(y, x)`` or ``(N, 3)`` ``(frame, y, x)``)
    with its features; the image names come from the layer's metadata (set by the
    widget and the reader), else from the layer name (``NAME[i]`` per frame)."""
    from heatmaploc.data.io import write_points_csv

    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise ValueError(f"{path}: a predictions CSV must end in .csv")
    data = np.asarray(data, dtype=np.float64)
    names = images_of(meta.get("metadata"))
    frames = len(names) if names else None
    points = points_of_layer(data, meta.get("features"), frames)
    if not names or len(names) != len(points):
        names = frame_names(str(meta.get("name", path.stem)), len(points), data.ndim == 2 and data.shape[1] == 3)
    with_strength = any(p.has_strength for p in points)
    rows = [(name, p.xy, p.labels, p.scores, p.sigma, p.refined,
             (p.strength, p.phase, p.strength_sigma, p.phase_sigma) if with_strength else None)
            for name, p in zip(names, points)]
    write_points_csv(path, rows, with_scores=True, with_refined=True, with_strength=with_strength)
    return [str(path)]
