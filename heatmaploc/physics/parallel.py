"""Blind physics refinement of many images across processes (one image per task).

Each worker runs single-threaded BLAS (:func:`heatmaploc.processes.single_threaded_pool`;
the refinement is many small least-squares problems), and a failure on one image leaves
that image's network points in place with the error as the reason.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
from tqdm import tqdm

from heatmaploc.physics.refine import refine_physics
from heatmaploc.physics.summary import PhysicsEstimate
from heatmaploc.physics.support import Support
from heatmaploc.points import Points
from heatmaploc.processes import single_threaded, single_threaded_pool

log = logging.getLogger(__name__)


def _refine_one(args: tuple, window_workers: int = 1, window_progress: bool = False) -> Points:
    image, points, known, name, candidates = args
    try:
        return refine_physics(image, points, known, name, candidates=candidates, workers=window_workers,
                              progress=window_progress)
    except (ValueError, np.linalg.LinAlgError, FloatingPointError) as err:
        log.warning("%s: physics refinement failed (%s); keeping the network's points", name, err)
        return replace(points, refined=False, physics=PhysicsEstimate(False, f"error: {err}", count=points.count,
                                                                       count_network=points.count).to_dict())


def refine_many(images: Sequence[np.ndarray], points: Sequence[Points], known: Mapping | None = None,
                names: Sequence[str] | None = None, workers: int | None = None, progress: bool = False,
                candidates: Sequence[Support | Points | np.ndarray] | None = None) -> list[Points]:
    """:func:`~heatmaploc.physics.refine.refine_physics` of each image, in order, on
    ``workers`` processes (default: the CPU count; 1 runs here); ``candidates[i]``: the
    :class:`~heatmaploc.physics.support.Support` of image ``i``, or its heatmap peaks
    above the support floor (points or ``(c, 2)``).  Images share the processes; a
    single image (or ``workers`` above the images' count) runs here and its windows
    share them instead (:func:`~heatmaploc.physics.local.refine_locally`); ``progress``
    shows a bar over the images, or over a single image's windows."""
    names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
    cands = [None] * len(images) if candidates is None else [getattr(c, "xy", c) for c in candidates]
    jobs = [(np.asarray(im), pts, dict(known or {}), nm, c) for im, pts, nm, c in zip(images, points, names, cands)]
    asked = max(1, workers or os.cpu_count() or 1)
    workers = min(asked, len(jobs))
    bar = dict(total=len(jobs), desc="physics", unit="img", disable=not progress or len(jobs) == 1)
    if workers <= 1:
        with single_threaded():
            return [_refine_one(job, asked, progress and len(jobs) == 1) for job in tqdm(jobs, **bar)]
    with single_threaded_pool(workers) as pool:
        return list(tqdm(pool.map(_refine_one, jobs), **bar))


def refinement_seconds(refined: Sequence[Points]) -> dict[str, float]:
    """Per-image wall time of the refinement (``physics["seconds"]``, one process each):
    median, 90th percentile and max over ``refined`` (0 for an empty list)."""
    seconds = np.array([(p.physics or {}).get("seconds", 0.0) for p in refined]) if len(refined) else np.zeros(1)
    return {"median": float(np.median(seconds)), "p90": float(np.percentile(seconds, 90)), "max": float(seconds.max())}
