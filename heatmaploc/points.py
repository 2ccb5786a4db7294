"""Point lists as returned to users, and the pixel <-> physical-units frame.

Coordinates follow docs/design.md section 1: ``(x, y)`` in pixels, ``x`` along columns,
pixel centres at integers, the top-left pixel spanning ``[-0.5, 0.5]^2``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PhysicalFrame:
    """Affine map ``physical = origin + pixel_size * pixel`` (same scale on both axes).

    Attributes:
        pixel_size: physical units per pixel (> 0).
        origin: physical ``(x, y)`` of the centre of pixel ``(0, 0)``.
        unit: a free-text unit name for reports.
    """

    pixel_size: float
    origin: tuple[float, float] = (0.0, 0.0)
    unit: str = ""

    def __post_init__(self) -> None:
        if not (np.isfinite(self.pixel_size) and self.pixel_size > 0):
            raise ValueError(f"pixel_size must be a positive number, got {self.pixel_size!r}")

    def to_physical(self, xy: np.ndarray) -> np.ndarray:
        """``(N, 2)`` pixels -> ``(N, 2)`` physical units."""
        return np.asarray(self.origin, dtype=np.float64) + self.pixel_size * np.asarray(xy, dtype=np.float64)

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """``(N, 2)`` physical units -> ``(N, 2)`` pixels."""
        return (np.asarray(xy, dtype=np.float64) - np.asarray(self.origin, dtype=np.float64)) / self.pixel_size

    @classmethod
    def from_meta(cls, meta: dict[str, Any], source: str = "meta.json") -> "PhysicalFrame | None":
        """Build from a ``meta.json`` dict; ``None`` when it gives no ``pixel_size``."""
        if meta.get("pixel_size") is None:
            return None
        try:
            origin = tuple(float(v) for v in meta.get("origin", (0.0, 0.0)))
            if len(origin) != 2:
                raise ValueError
            return cls(float(meta["pixel_size"]), origin, str(meta.get("unit", "")))
        except (TypeError, ValueError):
            raise ValueError(
                f"{source}: pixel_size must be a positive number and origin a pair [x0, y0], "
                f"got pixel_size={meta.get('pixel_size')!r}, origin={meta.get('origin')!r}"
            ) from None

    @classmethod
    def from_meta_file(cls, path: str | Path) -> "PhysicalFrame | None":
        path = Path(path)
        try:
            meta = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        return cls.from_meta(meta, str(path))


STRENGTH_FIELDS = ("strength", "strength_sigma", "phase", "phase_sigma")


@dataclass(frozen=True)
class Points:
    """Detected (or ground-truth) points of one image.

    Attributes:
        xy: ``(N, 2)`` float64 ``(x, y)`` pixel coordinates.
        scores: ``(N,)`` float64 heatmap peak values in [0, 1] (1 for ground truth).
        labels: ``(N,)`` int64 source class indices.
        frame: optional :class:`PhysicalFrame` for :attr:`xy_physical`.
        sigma: ``(N,)`` float64 predicted standard deviation of the error of each
            coordinate (pixels, the same on ``x`` and ``y``); NaN where the model gives
            none (no regression head, or a refinement that does not estimate it).
        refined: the points come from the blind physics refinement
            (:func:`heatmaploc.physics.refine.refine_physics`), not the network alone.
        physics: what that refinement estimated for the image (kernel, observable,
            colormap, wavelength, ...; ``accepted`` and ``reason`` say whether its fit
            was used), or ``None`` when it did not run.
        strength, strength_sigma: ``(N,)`` float64 amplitude ``|q|`` of each source's
            fitted complex strength (field units: the image's values per unit of the
            kernel) and its standard deviation; NaN where no fit estimated it (the
            network's points, a point the refinement kept).
        phase, phase_sigma: ``(N,)`` float64 ``arg q`` (radians) and its standard
            deviation: absolute for a complex field, relative to the snapshot's time
            for a snapshot (a common shift of all phases), NaN for an amplitude map
            (whose phases are not observed) and wherever ``strength`` is NaN.
    """

    xy: np.ndarray
    scores: np.ndarray = field(default=None)  # type: ignore[assignment]
    labels: np.ndarray = field(default=None)  # type: ignore[assignment]
    frame: PhysicalFrame | None = None
    sigma: np.ndarray = field(default=None)  # type: ignore[assignment]
    refined: bool = False
    physics: dict[str, Any] | None = field(default=None, compare=False)
    strength: np.ndarray = field(default=None, compare=False)  # type: ignore[assignment]
    strength_sigma: np.ndarray = field(default=None, compare=False)  # type: ignore[assignment]
    phase: np.ndarray = field(default=None, compare=False)  # type: ignore[assignment]
    phase_sigma: np.ndarray = field(default=None, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        xy = np.asarray(self.xy, dtype=np.float64).reshape(-1, 2)
        n = len(xy)
        for name in STRENGTH_FIELDS:
            value = getattr(self, name)
            object.__setattr__(self, name, np.full(n, np.nan) if value is None
                               else np.asarray(value, dtype=np.float64).reshape(n))
        scores = np.ones(n) if self.scores is None else np.asarray(self.scores, dtype=np.float64).reshape(n)
        labels = np.zeros(n, np.int64) if self.labels is None else np.asarray(self.labels, dtype=np.int64).reshape(n)
        sigma = np.full(n, np.nan) if self.sigma is None else np.asarray(self.sigma, dtype=np.float64).reshape(n)
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "xy", xy)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "labels", labels)

    @property
    def has_strength(self) -> bool:
        """Some point carries a fitted strength."""
        return bool(np.isfinite(self.strength).any())

    @property
    def count(self) -> int:
        return len(self.xy)

    def __len__(self) -> int:
        return self.count

    @property
    def xy_physical(self) -> np.ndarray:
        """``(N, 2)`` in physical units; needs a :attr:`frame`."""
        if self.frame is None:
            raise ValueError("no physical frame: pass pixel_size (or a dataset with meta.json pixel_size)")
        return self.frame.to_physical(self.xy)

    @property
    def sigma_physical(self) -> np.ndarray:
        """``(N,)`` :attr:`sigma` in physical units; needs a :attr:`frame`."""
        if self.frame is None:
            raise ValueError("no physical frame: pass pixel_size (or a dataset with meta.json pixel_size)")
        return self.sigma * self.frame.pixel_size

    def with_frame(self, frame: PhysicalFrame | None) -> "Points":
        return replace(self, frame=frame)

    def to_list(self) -> list[dict[str, float]]:
        """``[{"x", "y", "score", "sigma"[, "label"][, "strength", "strength_sigma",
        "phase", "phase_sigma"][, "x_phys", "y_phys", "sigma_phys"]}]`` in score order
        (``sigma`` NaN where unknown; the strength keys on every row when any point has
        a strength, NaN where it has none)."""
        with_strength = self.has_strength
        order = np.argsort(-self.scores, kind="stable")
        phys = self.xy_physical if self.frame is not None else None
        out = []
        for i in order:
            row: dict[str, float] = {"x": float(self.xy[i, 0]), "y": float(self.xy[i, 1]), "score": float(self.scores[i]),
                                     "sigma": float(self.sigma[i])}
            if self.labels[i] != 0:
                row["label"] = int(self.labels[i])
            if with_strength:
                for name in STRENGTH_FIELDS:
                    row[name] = float(getattr(self, name)[i])
            if phys is not None:
                row["x_phys"], row["y_phys"] = float(phys[i, 0]), float(phys[i, 1])
                row["sigma_phys"] = float(self.sigma[i] * self.frame.pixel_size)  # type: ignore[union-attr]
            out.append(row)
        return out
