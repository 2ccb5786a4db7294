"""Figure of the point-spread refinement on one beamforming map: the map, the true
sources with their levels, the network's points and the refined points with the levels
the refinement estimated (dB relative to the strongest).

    heatmaploc simulate --preset acoustic --n 20 --out /tmp/ac20 --seed 99
    python tools/psf_example.py /tmp/ac20 --out docs/figures/psf_example.png

Takes the first map of the dataset (sorted by name) with at least ``--min-sources``
true sources and a raw (not colormapped) rendering, so the choice does not depend on
the result.  Prints the points and levels.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="a folder written by heatmaploc simulate --preset acoustic")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--min-sources", type=int, default=3)
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from heatmaploc import Localizer
    from heatmaploc.data.io import read_image, read_points_csv
    from heatmaploc.metrics import point_metrics

    root = Path(args.dataset)
    meta = json.loads((root / "meta.json").read_text())["images"]
    truth = read_points_csv(root / "points.csv").points
    name = next(n for n in sorted(meta) if meta[n]["count"] >= args.min_sources and meta[n]["rendering"] == "raw")
    info, image = meta[name], read_image(root / "images" / name)
    loc = Localizer.default()
    network = loc.predict(image)
    refined = loc.predict(image, refine="physics", physics={"family": "psf"})
    t = truth[name]
    levels = np.asarray(info["levels_db"])
    est = 10 * np.log10(refined.strength / np.nanmax(refined.strength)) if refined.has_strength else None

    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    shown = ax.imshow(image, cmap="magma")
    fig.colorbar(shown, ax=ax, label="dB re max" if info["scale"] == "db" else "power")
    ax.scatter(t[:, 0], t[:, 1], s=160, facecolors="none", edgecolors="white", linewidths=1.5, label="true")
    for (x, y), lv in zip(t, levels):
        ax.annotate(f"{lv:.1f}", (x, y), xytext=(8, 8), textcoords="offset points", color="white", fontsize=8)
    ax.scatter(network.xy[:, 0], network.xy[:, 1], marker="x", s=70, color="red", label="network")
    ax.scatter(refined.xy[:, 0], refined.xy[:, 1], marker="+", s=110, color="cyan", label="PSF refined")
    if est is not None:
        for (x, y), lv in zip(refined.xy, est):
            ax.annotate(f"{lv:.1f}", (x, y), xytext=(8, -12), textcoords="offset points", color="cyan", fontsize=8)
    r = lambda p: point_metrics([p.xy], [t], 2.0)  # noqa: E731
    ax.set_title(f"{name}: {len(t)} sources ({info['scale']} map, {info['geometry']} array)\n"
                 f"network {network.count} (F1@2 {r(network).f1:.2f}), refined {refined.count} "
                 f"(F1@2 {r(refined).f1:.2f}); levels dB re strongest", fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    print(f"{name}: true levels {np.round(levels, 1).tolist()}, estimated "
          f"{np.round(est, 1).tolist() if est is not None else None}; physics: {refined.physics.get('reason') or 'used'}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
