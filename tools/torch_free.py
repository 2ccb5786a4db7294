"""The torch-free install against the full one: size, identical points, speed.

    heatmaploc simulate --preset default --n 50 --out /tmp/test50 --seed 2026
    python tools/torch_free.py --data /tmp/test50 --out docs/benchmark/deploy

Installs this checkout twice into fresh venvs under ``--work``: ``heatmaploc[onnx-runtime]``
(no torch) and ``heatmaploc[torch]``, and reports each venv's site-packages size.  In
each venv the shipped model (``Localizer.default()``: onnxruntime on the CPU in the first,
torch in the second) predicts the example images and the ``--data`` images; the point
lists are compared (same count, largest position difference), and images per second are
measured in alternating rounds (median), each engine with this machine's CPU threads.
The physics refinement runs on the examples in both venvs and its points are compared
too.  Writes ``torch_free.json`` and ``torch_free.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXTRAS = {"torch-free": "onnx-runtime", "torch": "torch"}


def worker(images_dir: list[str], refine: bool) -> None:
    """Run inside a venv: points (and seconds) of every image, as JSON on stdout."""
    from heatmaploc import Localizer
    from heatmaploc.data.index import list_images
    from heatmaploc.data.io import read_image

    paths = [p for d in images_dir for p in list_images(Path(d))]
    images = [read_image(p) for p in paths]
    names = [f"{p.parent.parent.name}/{p.name}" for p in paths]
    loc = Localizer.default("cpu")
    loc.predict_batch(images[:2])  # warm-up
    begin = time.perf_counter()
    points = loc.predict_batch(images)
    seconds = time.perf_counter() - begin
    out = {"engine": "onnxruntime" if loc.is_onnx else "torch", "seconds": seconds, "images": len(images),
           "torch_imported": any(m.split(".")[0] == "torch" for m in sys.modules),
           "points": {n: p.xy.tolist() for n, p in zip(names, points)}}
    if refine:
        examples = [i for i, n in enumerate(names) if n.startswith("examples/")]
        refined = loc.predict_batch([images[i] for i in examples], refine="physics")
        out["refined"] = {names[i]: {"xy": p.xy.tolist(), "used": bool(p.refined)} for i, p in zip(examples, refined)}
    print(json.dumps(out))


def site_packages_bytes(venv: Path) -> int:
    site = next(venv.glob("lib/python3*/site-packages"))
    return sum(f.stat().st_size for f in site.rglob("*") if f.is_file() and not f.is_symlink())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a dataset folder of test images (images/)")
    parser.add_argument("--out", help="report folder")
    parser.add_argument("--work", default="/tmp/heatmaploc_torch_free", help="where the two venvs are made")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="keep existing venvs in --work")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--refine", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.refine)
        return

    work = Path(args.work)
    venvs, install_s = {}, {}
    for name, extra in EXTRAS.items():
        venv = work / name
        if not (args.reuse and (venv / "bin" / "python").is_file()):
            shutil.rmtree(venv, ignore_errors=True)
            begin = time.perf_counter()
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"{REPO}[{extra}]"], check=True)
            install_s[name] = time.perf_counter() - begin
        venvs[name] = venv
    sizes = {name: site_packages_bytes(v) for name, v in venvs.items()}
    data = Path(args.data)
    folders = [str(REPO / "examples" / "images"), str(data / "images" if (data / "images").is_dir() else data)]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    results: dict[str, list[dict]] = {name: [] for name in venvs}
    for r in range(args.rounds):
        for name, venv in venvs.items():
            cmd = [str(venv / "bin" / "python"), str(Path(__file__).resolve()), "--data", "-", "--worker", *folders]
            if r == 0:
                cmd.append("--refine")
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/", env=env, check=True)
            results[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1}: {name} ({results[name][-1]['engine']}) {results[name][-1]['seconds']:.1f} s")
    free, full = results["torch-free"][0], results["torch"][0]
    names = sorted(full["points"])
    same_count = sum(len(free["points"][n]) == len(full["points"][n]) for n in names)
    shifts = [abs(a - b) for n in names if len(free["points"][n]) == len(full["points"][n])
              for pa, pb in zip(free["points"][n], full["points"][n]) for a, b in zip(pa, pb)]
    refined_same = sum(len(free["refined"][n]["xy"]) == len(full["refined"][n]["xy"])
                       and free["refined"][n]["used"] == full["refined"][n]["used"] for n in full["refined"])
    refined_shift = max((abs(a - b) for n in full["refined"]
                         if len(free["refined"][n]["xy"]) == len(full["refined"][n]["xy"])
                         for pa, pb in zip(free["refined"][n]["xy"], full["refined"][n]["xy"]) for a, b in zip(pa, pb)),
                        default=0.0)
    rate = {name: statistics.median(r["images"] / r["seconds"] for r in rs) for name, rs in results.items()}
    report = {
        "images": len(names), "examples": sum(n.startswith("examples/") for n in names), "data": str(args.data),
        "points_torch": sum(len(full["points"][n]) for n in names),
        "engines": {name: rs[0]["engine"] for name, rs in results.items()},
        "torch_imported_in_torch_free": free["torch_imported"],
        "site_packages_mb": {name: sizes[name] / 1e6 for name in sizes},
        "install_seconds": install_s,
        "images_same_count": same_count, "max_position_diff_px": max(shifts, default=0.0),
        "refined_examples": len(full["refined"]), "refined_same_count_and_decision": refined_same,
        "refined_max_position_diff_px": refined_shift,
        "images_per_s": rate, "torch_free_over_torch": rate["torch-free"] / rate["torch"], "rounds": args.rounds,
    }
    print(json.dumps(report, indent=1))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        from heatmaploc.data.io import write_json

        write_json(out / "torch_free.json", report)
        mb = report["site_packages_mb"]
        lines = [
            "# Torch-free install (onnxruntime) against the full one (torch)",
            "",
            f"`python tools/torch_free.py --data {args.data}`: fresh venvs of this checkout, "
            f"`heatmaploc[onnx-runtime]` and `heatmaploc[torch]`; the shipped model on the {report['examples']} "
            f"examples and {len(names) - report['examples']} images of `{args.data}` "
            f"({report['points_torch']} points by torch), default test-time augmentation; "
            f"speed: median of {args.rounds} alternating rounds, one process per engine and round.",
            "",
            "| measure | value |",
            "|---|---|",
            f"| site-packages, torch-free | {mb['torch-free']:.0f} MB |",
            f"| site-packages, torch | {mb['torch']:.0f} MB |",
            f"| torch-free / torch size | {mb['torch-free'] / mb['torch']:.3f} |",
            f"| torch imported in the torch-free venv | {'yes' if free['torch_imported'] else 'no'} |",
            f"| images with the same count | {same_count} / {len(names)} |",
            f"| max position difference | {report['max_position_diff_px']:.2e} px |",
            f"| physics refinement, examples with the same count and decision | {refined_same} / {len(full['refined'])} |",
            f"| physics refinement, max position difference | {refined_shift:.2e} px |",
            f"| torch-free (onnxruntime), images/s | {rate['torch-free']:.2f} |",
            f"| torch, images/s | {rate['torch']:.2f} |",
            f"| torch-free / torch speed | {report['torch_free_over_torch']:.3f} |",
            "",
        ]
        (out / "torch_free.md").write_text("\n".join(lines))
        print(f"report: {out}/torch_free.md")


if __name__ == "__main__":
    main()
