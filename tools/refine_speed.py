"""Seconds per image and accuracy of the physics refinement, for one or more source trees
on the same network starts (an A/B of a change to ``heatmaploc.physics``).

    python tools/refine_speed.py DATA --n 60 --tree /path/to/baseline --tree . --out OUT

The shipped model's points and support candidates (``--tta``, default d4) of the first
``--n`` images of the labelled folder ``DATA`` (``images/`` and ``points.csv``,
docs/design.md section 2) are computed once, with this checkout.  Each ``--tree`` (a
folder holding a ``heatmaploc`` package; default: this checkout) then refines them in a
subprocess of its own with single-threaded BLAS, one image after another, timed in CPU
seconds (``time.process_time``: what one process spends, less sensitive than wall time
to other work on the machine).  Writes ``refine_speed.json`` (per tree and image: count,
mode, seconds) and ``refine_speed.md`` (total, median and 90th-percentile seconds, the
median ratio of each image's time to the first tree's, how many images' refined points
are identical to the first tree's, how many have as many points and the largest
coordinate change among those, and F1 at 1 and 2 px, RMSE at 2 px and count
accuracy, with the network's beside them).
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def network_starts(data: Path, n: int, tta: str) -> list[dict]:
    """The first ``n`` images' names, truths, network points (xy, scores, sigma) and
    support candidates, as plain arrays (any tree can read them)."""
    import torch

    from heatmaploc import Localizer
    from heatmaploc.data.index import list_images
    from heatmaploc.data.io import read_image, read_points_csv

    torch.set_num_threads(1)
    table = read_points_csv(data / "points.csv")
    paths = list_images(data / "images")[:n]
    loc = Localizer.default(device="cpu", tta=tta)
    starts = []
    for path in paths:
        points, candidates = loc.predict_with_support(read_image(path))
        starts.append({"name": path.name, "path": str(path), "truth": table.points.get(path.name, np.zeros((0, 2))),
                       "xy": points.xy, "scores": points.scores, "sigma": points.sigma,
                       "candidates": (candidates.peaks, candidates.trace)})
    return starts


def refine_all(starts_file: Path, result_file: Path) -> None:
    """Worker: refine every start of ``starts_file`` with the ``heatmaploc`` on
    ``sys.path`` (its tree), writing the tree it imported, then ``(name, xy, mode,
    seconds)`` rows."""
    import threadpoolctl

    threadpoolctl.threadpool_limits(1)
    import time

    import heatmaploc
    from heatmaploc.data.io import read_image
    from heatmaploc.physics.refine import refine_physics
    from heatmaploc.points import Points

    try:
        from heatmaploc.physics.support import Support
    except ImportError:  # a tree from before the support's trace map: it takes the peaks alone
        Support = None

    rows = [str(Path(heatmaploc.__file__).resolve().parent.parent)]
    for start in pickle.loads(starts_file.read_bytes()):
        image = read_image(start["path"])
        points = Points(start["xy"], start["scores"], sigma=start["sigma"])
        peaks, trace = start["candidates"]
        began = time.process_time()
        out = refine_physics(image, points, None, start["name"], 3.0, peaks if Support is None else Support(peaks, trace))
        rows.append((start["name"], out.xy, (out.physics or {}).get("mode"), time.process_time() - began))
    result_file.write_bytes(pickle.dumps(rows))


def summary(preds: list[np.ndarray], truths: list[np.ndarray]) -> dict:
    from heatmaploc.metrics import point_metrics

    one, two = point_metrics(preds, truths, 1.0), point_metrics(preds, truths, 2.0)
    return {"f1_1px": round(one.f1, 4), "f1_2px": round(two.f1, 4), "rmse_2px": round(two.rmse, 4),
            "count_accuracy": round(two.count_accuracy, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="labelled folder: images/ and points.csv")
    parser.add_argument("--n", type=int, default=60, help="the first N images (sorted names)")
    parser.add_argument("--tree", action="append", type=Path, help="a folder holding a heatmaploc package "
                        "(repeat; the first is the reference; default: this checkout)")
    parser.add_argument("--tta", default="d4")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        refine_all(*args.worker)
        return
    trees = [t.resolve() for t in (args.tree or [ROOT])]
    for tree in trees:
        if not (tree / "heatmaploc" / "__init__.py").is_file():
            sys.exit(f"--tree {tree}: no heatmaploc package in it")
    if not (args.data / "points.csv").is_file():
        sys.exit(f"{args.data}: no points.csv (a labelled folder: images/ and points.csv)")
    from heatmaploc.atomic import atomic_write_text

    starts = network_starts(args.data, args.n, args.tta)
    truths = [s["truth"] for s in starts]
    report = {"data": str(args.data), "images": len(starts), "tta": args.tta,
              "network": summary([s["xy"] for s in starts], truths), "trees": []}
    with tempfile.TemporaryDirectory() as tmp:
        starts_file = Path(tmp) / "starts.pkl"
        starts_file.write_bytes(pickle.dumps(starts))
        for i, tree in enumerate(trees):
            result_file = Path(tmp) / f"tree{i}.pkl"
            env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
            # run from the tree, so that its own package (not this checkout's) is imported
            subprocess.run([sys.executable, str(Path(__file__).resolve()), str(args.data), "--out", str(args.out),
                            "--worker", str(starts_file), str(result_file)], env=env, cwd=tmp, check=True)
            imported, *rows = pickle.loads(result_file.read_bytes())
            if Path(imported) != tree:
                sys.exit(f"--tree {tree}: the worker imported heatmaploc from {imported} instead")
            report["trees"].append({"tree": str(tree), "rows": rows})
    first = report["trees"][0]["rows"]
    for entry in report["trees"]:
        rows = entry.pop("rows")
        seconds = np.array([r[3] for r in rows])
        ratio = np.array([r[3] / max(f[3], 1e-9) for r, f in zip(rows, first)])
        # per image with the first tree's count: the largest coordinate change (0: identical)
        moves = [float(np.abs(r[1] - f[1]).max()) if r[1].size else 0.0
                 for r, f in zip(rows, first) if r[1].shape == f[1].shape]
        entry.update(total_s=round(float(seconds.sum()), 2), median_s=round(float(np.median(seconds)), 4),
                     p90_s=round(float(np.percentile(seconds, 90)), 4),
                     median_ratio=round(float(np.median(ratio[seconds > 0.01])) if np.any(seconds > 0.01) else 1.0, 4),
                     identical=sum(m == 0.0 for m in moves), same_count=len(moves),
                     max_move_px=max(moves, default=0.0),
                     **summary([r[1] for r in rows], truths),
                     images=[{"name": r[0], "count": len(r[1]), "mode": r[2], "seconds": round(r[3], 4)}
                             for r in rows])
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "refine_speed.json", json.dumps(report, indent=1))
    lines = [f"# Physics refinement: CPU seconds per image and accuracy ({args.data.name}, {len(starts)} images)", "",
             f"The shipped model's points ({args.tta}) computed once; each tree refines them in its own process "
             "with single-threaded BLAS (`python tools/refine_speed.py`). Ratio: median over images of the time "
             "over the first tree's; identical: images whose refined points equal the first tree's; same count: "
             "images with as many points as the first tree's, and max move: the largest change of a coordinate "
             "(rows in order) over those.", "",
             "| tree | total s | median s | p90 s | median ratio | identical | same count | max move (px) | F1@1 | "
             "F1@2 | RMSE@2 (px) | count acc |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    net = report["network"]
    lines.append(f"| network ({args.tta}) | | | | | | | | {net['f1_1px']} | {net['f1_2px']} | {net['rmse_2px']} | "
                 f"{net['count_accuracy']} |")
    for e in report["trees"]:
        lines.append(f"| `{e['tree']}` | {e['total_s']} | {e['median_s']} | {e['p90_s']} | {e['median_ratio']} | "
                     f"{e['identical']}/{len(starts)} | {e['same_count']}/{len(starts)} | {e['max_move_px']:.2g} | "
                     f"{e['f1_1px']} | {e['f1_2px']} | {e['rmse_2px']} | "
                     f"{e['count_accuracy']} |")
    atomic_write_text(args.out / "refine_speed.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
