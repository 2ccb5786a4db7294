"""What the simulator's own presets (acoustic, spots) share: their config's dict form,
and the placement of sources with a minimum separation."""
from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, ClassVar

import numpy as np


class PresetConfig:
    """A frozen dataclass config written to ``meta.json`` with its ``kind``."""

    KIND: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON/YAML-friendly dict, with ``kind`` (tuples become lists)."""
        return {"kind": self.KIND, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        data = {k: v for k, v in data.items() if k != "kind"}
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls.KIND} simulator option(s): {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def place_points(n: int, height: int, width: int, margin: float, min_sep: float, rng: np.random.Generator,
                 what: str, hint: str) -> np.ndarray:
    """``(n, 2)`` positions ``(x, y)`` drawn uniformly at least ``margin`` px inside the
    outer pixel centres and ``min_sep`` px apart (rejection sampling); a ``ValueError``
    naming ``what`` and ``hint`` (what to lower) when they do not fit."""
    out = np.zeros((0, 2))
    for _ in range(500 * max(n, 1)):
        if len(out) == n:
            break
        p = np.array([rng.uniform(margin, width - 1 - margin), rng.uniform(margin, height - 1 - margin)])
        if not len(out) or np.min(np.hypot(*(out - p).T)) >= min_sep:
            out = np.vstack([out, p])
    if len(out) < n:
        raise ValueError(f"could not place {n} {what} {min_sep:.1f} px apart in a {width}x{height} image; "
                         f"lower {hint}")
    return out
