"""Write the example images of examples/ (docs/design.md section 2 layout), deterministically.

Usage: python tools/make_examples.py [--out examples]
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from heatmaploc.data.io import write_image, write_json, write_points_csv
from heatmaploc.simulate import get_preset, simulate_image

BASE = get_preset("default")
KINDS = {
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="examples")
    out = Path(ap.parse_args().out)
    rows, info = [], {}
    for kind, (cfg, seed, n) in KINDS.items():
        for i in range(n):
            sim = simulate_image(cfg, seed, i)
            name = f"{kind}_{i}{sim.extension}"
            write_image(out / "images" / name, sim.image)
            rows.append((name, sim.points, None, None))
            info[name] = sim.info
    write_points_csv(out / "points.csv", rows)
    write_json(out / "meta.json", {"generator": "tools/make_examples.py", "mixed_channels": True, "images": info})
    print(f"wrote {len(rows)} examples to {out}")


if __name__ == "__main__":
    main()
