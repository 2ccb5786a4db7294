"""What a user may state about an image's physics (``known``, ``--known KEY=VALUE``):
the keys, their checks and their parsing, for every refinement family."""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from heatmaploc.physics.colormap import get_colormap
from heatmaploc.physics.forward import ALL_OBSERVABLES
from heatmaploc.physics.kernels import KERNELS
from heatmaploc.physics.psf import from_array

KNOWN_KEYS = ("kernel", "observable", "wavelength_px", "damping", "colormap", "family", "scale", "psf")
FAMILIES = ("wave", "psf")  # refinement families: wave fields, point-spread (power) maps


WAVE_KEYS = ("kernel", "observable", "wavelength_px", "damping")  # keys that only a wave field has


def stated_family(known: Mapping) -> str | None:
    """The family ``known`` states: its ``family``, else ``wave`` where it gives a key
    only a wave field has (:data:`WAVE_KEYS`), else None (the refinement chooses,
    :mod:`heatmaploc.physics.family`)."""
    if known.get("family") is not None:
        return str(known["family"])
    return "wave" if any(known.get(key) is not None for key in WAVE_KEYS) else None


def parse_known(items: Sequence[str], name: str = "--known") -> dict[str, Any]:
    """``["kernel=plate", "colormap=none", ...]`` (values read as YAML; ``colormap=none``:
    a raw field) -> :func:`validate_known`'s dict; errors name ``name``."""
    from heatmaploc.keyvalues import parse_overrides

    known = parse_overrides(items, name)
    if "colormap" in known and str(known["colormap"]).lower() == "none":
        known["colormap"] = None
    return validate_known(known, name)


def validate_known(known: Mapping | None, name: str = "physics") -> dict[str, Any]:
    """``known`` as a dict after checking its keys and values (``ValueError`` naming
    ``name`` and the problem)."""
    known = dict(known or {})
    unknown = set(known) - set(KNOWN_KEYS)
    if unknown:
        raise ValueError(f"{name}: unknown physics key(s) {sorted(unknown)}; expected some of {KNOWN_KEYS}")
    if known.get("kernel") is not None and known["kernel"] not in KERNELS:
        raise ValueError(f"{name}: unknown kernel {known['kernel']!r}; expected one of {KERNELS}")
    if known.get("observable") is not None and known["observable"] not in ALL_OBSERVABLES:
        raise ValueError(f"{name}: unknown observable {known['observable']!r}; expected one of {ALL_OBSERVABLES}")
    if known.get("colormap") is not None:
        get_colormap(str(known["colormap"]))
    if known.get("family", "wave") not in FAMILIES:
        raise ValueError(f"{name}: unknown family {known['family']!r}; expected one of {FAMILIES}")
    if known.get("scale") is not None and known["scale"] not in ("linear", "db"):
        raise ValueError(f"{name}: scale must be 'linear' or 'db', got {known['scale']!r}")
    if (known.get("scale") is not None or known.get("psf") is not None) and known.get("family") != "psf":
        raise ValueError(f"{name}: scale and psf describe a point-spread map; give family=psf with them")
    if isinstance(known.get("psf"), (str, Path)):
        path = Path(known["psf"])
        try:
            known["psf"] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{name}: psf={path}: cannot read a .npy array ({exc})") from None
    if known.get("psf") is not None:
        from_array(known["psf"], f"{name}: psf")
    for key in ("wavelength_px", "damping"):
        value = known.get(key)
        if key in known and not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                                 and (value >= 0 if key == "damping" else value > 0)):
            raise ValueError(f"{name}: {key} must be a {'non-negative' if key == 'damping' else 'positive'} number, "
                             f"got {value!r}")
    return known
