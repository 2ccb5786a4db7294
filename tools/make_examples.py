"""Write the example images of examples/ (docs/design.md section 2 layout), deterministically.

Usage: python tools/make_examples.py [--out examples]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from heatmaploc.data.io import write_image, write_json, write_points_csv
from heatmaploc.simulate.examples import examples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="examples")
    out = Path(ap.parse_args().out)
    rows, info = [], {}
    for name, sim in examples():  # the recipe: heatmaploc.simulate.examples
        write_image(out / "images" / name, sim.image)
        rows.append((name, sim.points, None, None))
        info[name] = sim.info
    write_points_csv(out / "points.csv", rows)
    write_json(out / "meta.json", {"generator": "tools/make_examples.py", "mixed_channels": True, "images": info})
    print(f"wrote {len(rows)} examples to {out}")


if __name__ == "__main__":
    main()
