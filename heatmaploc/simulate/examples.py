"""The example images (``examples/`` in the repository; the napari plugin's sample
data): one recipe, deterministic, so the package regenerates them without shipping
the files.  ``tools/make_examples.py`` writes them as a dataset folder."""
from __future__ import annotations

from dataclasses import replace
from typing import Iterator

from heatmaploc.simulate.config import SimConfig, get_preset
from heatmaploc.simulate.generate import SimulatedImage, simulate_image

BASE = get_preset("default")
KINDS: dict[str, tuple[SimConfig, int, int]] = {
    # name: (config, seed, how many)
    "seed_jet": (replace(BASE, kernels=("seed",), renderings=("colormap",), colormaps=("jet",), snr_db_range=(15.0, 25.0),
                         count_range=(1, 4)), 11, 2),
    "amplitude_raw": (replace(BASE, kernels=("free",), observables=("amplitude",), renderings=("raw",),
                              snr_db_range=(15.0, 25.0), count_range=(1, 5)), 12, 2),
    "plate": (replace(BASE, kernels=("plate",), observables=("snapshot",), renderings=("colormap",),
                      colormaps=("coolwarm",), snr_db_range=(15.0, 25.0), count_range=(2, 5)), 13, 2),
    "empty": (replace(BASE, count_range=(0, 0), outside_count_range=(1, 1), renderings=("colormap",),
                      colormaps=("turbo",), snr_db_range=(20.0, 20.0)), 14, 1),
    "large_free": (replace(BASE, height=160, width=224, kernels=("free",), observables=("snapshot",),
                           renderings=("colormap",), colormaps=("jet",), count_range=(6, 8), snr_db_range=(20.0, 20.0)), 15, 1),
}


def example(kind: str, index: int = 0) -> tuple[str, SimulatedImage]:
    """``(file name, simulated image)`` of one example, e.g. ``example("plate", 0)``."""
    if kind not in KINDS:
        raise ValueError(f"unknown example {kind!r}; expected one of {sorted(KINDS)}")
    cfg, seed, n = KINDS[kind]
    if not 0 <= index < n:
        raise ValueError(f"example {kind!r} has indices 0..{n - 1}, got {index}")
    sim = simulate_image(cfg, seed, index)
    return f"{kind}_{index}{sim.extension}", sim


def examples() -> Iterator[tuple[str, SimulatedImage]]:
    """Every example, in the order of :data:`KINDS`."""
    for kind, (_, _, n) in KINDS.items():
        for i in range(n):
            yield example(kind, i)
