"""Tiled inference on a large, dense field: peak memory, time per megapixel against a
512 x 512 image in the same process, and the count against the truth.

    python tools/large_image.py --data /tmp/large4000 --out docs/benchmark/large

Simulates (once; reused when ``--data`` already holds it) a ``--size`` square uint16
field drawn like the default preset at the density of its most crowded images
(:func:`heatmaploc.simulate.large.simulate_large`), written in the dataset layout.
The measurement runs in a fresh process (so its peak resident memory is the
prediction's own) with the shipped model and its default test-time augmentation:

* time per megapixel of the large image over that of a 512 x 512 crop of it, the crop
  timed between the large image's tiles (the median of one run every 9 tiles, taken
  out of the large image's time): on a shared virtual machine the speed drifts by tens
  of percent within minutes, so a reference timed before or after is not comparable;
  in wall clock and in CPU time of the process; and the process's peak resident memory;
* the count, F1 and RMSE at 2 px against the truth, and, to tell tiling from the
  model, the same on ``--crops`` 1024 x 1024 crops predicted whole (no tiling, no
  peak cap) against the tiled result inside the same crops.

Writes ``large.json``, ``large.md`` and ``large.png`` (a crop across tile seams:
truth, predictions and the seams) to ``--out``.

    python tools/large_image.py --data /tmp/large4000 --refine physics --workers 2 --out docs/benchmark/large_refine

measures the physics refinement instead (docs/design.md section 5b, *windowed*): the
shipped network's points and support (tiled, default test-time augmentation), then
:meth:`~heatmaploc.Localizer.refine` of the whole image with ``--workers`` processes
sharing its windows: wall and CPU seconds (this process and its workers), peak
resident memory of this process and, during the refinement, of this process and its
workers together (sampled), and F1 at 1 and 2 px, RMSE
at 2 px and the count of the network's and the refined points against the truth.
Writes ``refine.json``, ``refine.md`` and ``refine.png`` (a crop: truth, network,
refined) to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CROP = 1024
REFERENCE_EVERY = 9  # tiles between two timed 512 x 512 references


def simulate(data: Path, size: int, seed: int) -> None:
    from heatmaploc.data.io import write_image, write_json, write_points_csv
    from heatmaploc.simulate import get_preset
    from heatmaploc.simulate.large import simulate_large, to_uint16

    sim = simulate_large(get_preset("default"), seed, size, size)
    write_image(data / "images" / "large.npy", to_uint16(sim.image) if sim.image.dtype != "uint8" else sim.image)
    write_points_csv(data / "points.csv", [("large.npy", sim.points, None, None)])
    write_json(data / "meta.json", {"generator": "heatmaploc.simulate.large.simulate_large", "preset": "default",
                                    "seed": seed, "size": size, "images": {"large.npy": sim.info}})


def load_large(data: Path):
    """``(image, truth (n, 2))`` of the large image's dataset folder."""
    from heatmaploc.data.index import load_dataset
    from heatmaploc.data.io import read_image

    return read_image(data / "images" / "large.npy"), load_dataset(data)[0].points


def status_gib(pid: str, key: str) -> float:
    """The memory entry ``key`` (``VmHWM``, ``VmRSS``) of ``/proc/PID/status``, GiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 2**20  # kB -> GiB
    raise OSError(f"no {key} in /proc/{pid}/status")


def peak_rss_gib() -> float:
    """This process's peak resident memory (``VmHWM``, GiB)."""
    return status_gib("self", "VmHWM")


def reset_peak_rss() -> None:
    """Start the peak count afresh: a child inherits its parent's high-water mark
    through fork, and ``ru_maxrss`` keeps it across exec (Linux >= 4.0: clear_refs 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def measure(data: Path, crops: int) -> dict:
    """Runs in the child process: everything the report states."""
    import time

    import numpy as np

    from heatmaploc import Localizer
    from heatmaploc.metrics import point_metrics

    reset_peak_rss()
    image, truth = load_large(data)
    loc = Localizer.default(device="cpu")
    small = image[:512, :512]
    loc.predict(small)  # warm-up

    def timed(img):
        """(wall seconds, CPU seconds of this process, points) of one prediction."""
        wall, cpu = time.perf_counter(), time.process_time()
        pts = loc.predict(img)
        return time.perf_counter() - wall, time.process_time() - cpu, pts

    def best_of_two(img):
        runs = [timed(img) for _ in range(2)]
        return min(r[0] for r in runs), min(r[1] for r in runs)

    t_before, c_before = best_of_two(small)
    rss_small = peak_rss_gib()
    # The machine's speed drifts by tens of percent within minutes (a shared virtual
    # machine), so the reference is also timed *between* tiles of the large image, at
    # the same moments: every REFERENCE_EVERY tiles one 512 x 512 prediction, whose time
    # is taken out of the large image's.
    import heatmaploc.api as api

    references: list[tuple[float, float]] = []
    plain_tiled_maps = api.tiled_maps

    def tiled_maps_with_references(run, tile_input, shape, tiling, multiple=1, progress=None):
        done = [0]

        def step(n):
            if progress is not None:
                progress(n)
            done[0] += n
            if done[0] % REFERENCE_EVERY == 0:
                references.append(timed(small)[:2])

        return plain_tiled_maps(run, tile_input, shape, tiling, multiple, step)

    api.tiled_maps = tiled_maps_with_references
    t_large, c_large, pts = timed(image)
    api.tiled_maps = plain_tiled_maps
    t_large -= sum(t for t, _ in references)
    c_large -= sum(c for _, c in references)
    rss = peak_rss_gib()
    t_after, c_after = best_of_two(small)
    t_small, c_small = min(t_before, t_after), min(c_before, c_after)
    t_inside, c_inside = (float(np.median([r[i] for r in references])) for i in (0, 1))
    h, w = image.shape[:2]
    whole = point_metrics([pts.xy], [truth], 2.0)
    rng = np.random.default_rng(0)
    untiled = loc.with_tiling(0).with_codec(max_peaks=CROP * CROP)
    crop_rows = []
    for _ in range(crops):
        y0, x0 = (int(v) for v in rng.integers(0, [h - CROP + 1, w - CROP + 1]))

        def inside(xy):
            return xy[(xy[:, 0] >= x0 - 0.5) & (xy[:, 0] < x0 + CROP - 0.5) & (xy[:, 1] >= y0 - 0.5)
                      & (xy[:, 1] < y0 + CROP - 0.5)] - [x0, y0]

        alone = untiled.predict(image[y0 : y0 + CROP, x0 : x0 + CROP]).xy
        crop_rows.append({"y0": y0, "x0": x0, "truth": len(inside(truth)), "untiled": len(alone),
                          "tiled": len(inside(pts.xy)), "untiled_xy": alone.tolist(),
                          "tiled_xy": inside(pts.xy).tolist(), "truth_xy": inside(truth).tolist()})
    m_untiled = point_metrics([np.asarray(c["untiled_xy"]).reshape(-1, 2) for c in crop_rows],
                              [np.asarray(c["truth_xy"]).reshape(-1, 2) for c in crop_rows], 2.0)
    m_tiled = point_metrics([np.asarray(c["tiled_xy"]).reshape(-1, 2) for c in crop_rows],
                            [np.asarray(c["truth_xy"]).reshape(-1, 2) for c in crop_rows], 2.0)
    return {
        "image": {"shape": [h, w], "dtype": str(image.dtype), "megapixels": h * w / 1e6},
        "tiling": {"size": loc.tiling.size, "overlap": loc.tiling.overlap, "tta": loc.tta},
        "seconds_512": t_small, "seconds_512_before": t_before, "seconds_512_after": t_after, "seconds_large": t_large,
        "s_per_mp_512": t_small / (512 * 512 / 1e6), "s_per_mp_large": t_large / (h * w / 1e6),
        "time_per_mp_ratio_fastest_reference": (t_large / (h * w)) / (t_small / (512 * 512)),
        "cpu_seconds_512": c_small, "cpu_seconds_large": c_large,
        "references_between_tiles": len(references), "seconds_512_between_tiles_median": t_inside,
        "cpu_seconds_512_between_tiles_median": c_inside,
        "time_per_mp_ratio": (t_large / (h * w)) / (t_inside / (512 * 512)),
        "cpu_time_per_mp_ratio": (c_large / (h * w)) / (c_inside / (512 * 512)),
        "peak_rss_gib_after_512": rss_small, "peak_rss_gib": rss,
        "count": pts.count, "truth": len(truth), "count_error": (pts.count - len(truth)) / len(truth),
        "f1_r2": whole.f1, "rmse_r2": whole.rmse,
        "crops": {"n": crops, "size": CROP, "truth": sum(c["truth"] for c in crop_rows),
                  "untiled": sum(c["untiled"] for c in crop_rows), "tiled": sum(c["tiled"] for c in crop_rows),
                  "f1_r2_untiled": m_untiled.f1, "f1_r2_tiled": m_tiled.f1,
                  "rmse_r2_untiled": m_untiled.rmse, "rmse_r2_tiled": m_tiled.rmse},
        "points": pts.xy.tolist(),
    }


def process_tree_rss_gib() -> float:
    """Resident memory of this process and its children now (``VmRSS``, GiB)."""
    total = 0.0
    pids = ["self"] + [c for t in Path("/proc/self/task").iterdir()
                       for c in (t / "children").read_text().split()]
    for pid in pids:
        try:
            total += status_gib(pid, "VmRSS")
        except OSError:  # the child ended meanwhile
            pass
    return total


class TreePeak:
    """The largest :func:`process_tree_rss_gib` seen while the ``with`` block runs,
    sampled every ``every`` seconds by a thread (a spike between samples is missed)."""

    def __init__(self, every: float = 0.2) -> None:
        import threading

        self.every, self.peak, self._stop = every, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, process_tree_rss_gib())
            self._stop.wait(self.every)

    def __enter__(self) -> "TreePeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def measure_refinement(data: Path, workers: int) -> dict:
    """Runs in the child process: the network, then the physics refinement of the whole
    image (module docstring)."""
    import collections
    import resource
    import time

    from heatmaploc import Localizer
    from heatmaploc.metrics import point_metrics

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    reset_peak_rss()
    image, truth = load_large(data)
    loc = Localizer.default(device="cpu")
    wall, cpu = time.perf_counter(), time.process_time()
    points, support = loc.predict_with_support(image)
    t_net, c_net = time.perf_counter() - wall, time.process_time() - cpu
    rss_net = peak_rss_gib()
    wall, cpu, cpu_children = time.perf_counter(), time.process_time(), children_cpu()
    with TreePeak() as tree:
        refined = loc.refine([image], [points], [support], workers=workers)[0]
    t_ref = time.perf_counter() - wall
    c_ref, c_workers = time.process_time() - cpu, children_cpu() - cpu_children
    physics = refined.physics or {}

    def scores(xy):
        one, two = point_metrics([xy], [truth], 1.0), point_metrics([xy], [truth], 2.0)
        return {"count": int(len(xy)), "f1_r1": one.f1, "f1_r2": two.f1, "rmse_r2": two.rmse}

    h, w = image.shape[:2]
    return {
        "image": {"shape": [h, w], "dtype": str(image.dtype), "megapixels": h * w / 1e6},
        "tiling": {"size": loc.tiling.size, "overlap": loc.tiling.overlap, "tta": loc.tta},
        "truth": len(truth), "workers": workers,
        "seconds_network": t_net, "cpu_seconds_network": c_net,
        "seconds_refine": t_ref, "cpu_seconds_refine_parent": c_ref, "cpu_seconds_refine_workers": c_workers,
        "peak_rss_gib_network": rss_net, "peak_rss_gib": peak_rss_gib(),
        "peak_rss_gib_refine_all_processes": tree.peak,
        "network": scores(points.xy), "refined": scores(refined.xy),
        "mode": physics.get("mode"), "reason": physics.get("reason"),
        "model": {k: physics.get(k) for k in ("kernel", "observable", "wavelength_px", "damping", "source_size_px",
                                              "colormap")},
        "decisions": dict(collections.Counter(s["decision"] for s in physics.get("sources", []))),
        "points": points.xy.tolist(), "refined_points": refined.xy.tolist(),
    }


def report_refinement(result: dict, data: Path, out: Path) -> None:
    import numpy as np

    from heatmaploc.data.io import write_json

    out.mkdir(parents=True, exist_ok=True)
    network = np.asarray(result.pop("points")).reshape(-1, 2)
    refined = np.asarray(result.pop("refined_points")).reshape(-1, 2)
    write_json(out / "refine.json", result)
    net, ref, model = result["network"], result["refined"], result["model"]
    total = result["seconds_network"] + result["seconds_refine"]
    cpu = result["cpu_seconds_refine_parent"] + result["cpu_seconds_refine_workers"]
    lines = [
        "# Physics refinement of a large dense field",
        "",
        f"Image: {result['image']['shape'][1]} x {result['image']['shape'][0]} {result['image']['dtype']}, "
        f"{result['truth']} sources (`tools/large_image.py`, default preset drawn at its highest density). "
        f"Shipped model, tta {result['tiling']['tta']}, tiles of at most {result['tiling']['size']} px; then "
        f"`Localizer.refine` with {result['workers']} worker processes sharing the windows; CPU.",
        "",
        f"Path: {result['mode']} ({result['reason']}). Model: {model['kernel']} kernel, {model['observable']}, "
        f"wavelength {model['wavelength_px']} px, damping {model['damping']}, colormap {model['colormap']}. "
        f"Decisions: {', '.join(f'{k} {v}' for k, v in sorted(result['decisions'].items()))}.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| network (tiled) | {result['seconds_network']:.1f} s |",
        f"| refinement, wall clock | {result['seconds_refine']:.1f} s |",
        f"| refinement, CPU seconds (this process + workers) | {result['cpu_seconds_refine_parent']:.1f} + "
        f"{result['cpu_seconds_refine_workers']:.1f} = {cpu:.1f} s |",
        f"| network and refinement, wall clock | {total:.1f} s ({total / 60:.1f} min) |",
        f"| peak resident memory of this process: after the network / at the end | "
        f"{result['peak_rss_gib_network']:.2f} / {result['peak_rss_gib']:.2f} GiB |",
        f"| during the refinement, this process and its workers together (sampled every 0.2 s) | "
        f"{result['peak_rss_gib_refine_all_processes']:.2f} GiB |",
        "",
        "| points | count (truth " + str(result["truth"]) + ") | F1 at 1 px | F1 at 2 px | RMSE at 2 px |",
        "|---|---|---|---|---|",
        f"| network | {net['count']} | {net['f1_r1']:.4f} | {net['f1_r2']:.4f} | {net['rmse_r2']:.4f} px |",
        f"| refined | {ref['count']} | {ref['f1_r1']:.4f} | {ref['f1_r2']:.4f} | {ref['rmse_r2']:.4f} px |",
        "",
        "![a crop: truth, network, refined](refine.png)",
        "",
    ]
    (out / "refine.md").write_text("\n".join(lines))
    image, truth = load_large(data)
    x0 = max(min(image.shape[:2]) // 2 - 128, 0)
    crop_figure(image, x0, [(truth, dict(marker="o", mfc="none", mec="white", ms=9, label="truth")),
                            (network, dict(marker="+", color="cyan", ms=8, label="network")),
                            (refined, dict(marker="x", color="red", ms=7, label="refined"))],
                f"crop at ({x0}, {x0}) of the {image.shape[1]} px field", out / "refine.png")


def crop_figure(image, x0: int, layers: list, title: str, path: Path, lines: tuple = ()) -> None:
    """A PNG of the 256 px crop of ``image`` from row and column ``x0``: each layer's
    ``(n, 2)`` points inside it with its marker style, and a cyan line at each of
    ``lines`` (pixel positions, both axes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    view = image[x0 : x0 + 256, x0 : x0 + 256]
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.imshow(view if view.ndim == 3 else view.astype(float), cmap="gray")
    for pts, style in layers:
        sel = pts[(pts[:, 0] >= x0) & (pts[:, 0] < x0 + 256) & (pts[:, 1] >= x0) & (pts[:, 1] < x0 + 256)]
        ax.plot(sel[:, 0] - x0, sel[:, 1] - x0, ls="none", **style)
    for edge in lines:
        ax.axvline(edge - x0 - 0.5, color="cyan", lw=0.8)
        ax.axhline(edge - x0 - 0.5, color="cyan", lw=0.8)
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(result: dict, data: Path, out: Path) -> None:
    import numpy as np

    from heatmaploc.data.io import write_json
    from heatmaploc.tiling import tile_layout

    out.mkdir(parents=True, exist_ok=True)
    pts = np.asarray(result.pop("points")).reshape(-1, 2)
    write_json(out / "large.json", result)
    c = result["crops"]
    lines = [
        "# Tiled inference on a large dense field",
        "",
        f"Image: {result['image']['shape'][1]} x {result['image']['shape'][0]} {result['image']['dtype']}, "
        f"{result['truth']} sources (`tools/large_image.py`, default preset drawn at its highest density). "
        f"Shipped model, tta {result['tiling']['tta']}, tiles of at most {result['tiling']['size']} px overlapping "
        f"by >= {result['tiling']['overlap']} px; CPU, one process.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| peak resident memory | {result['peak_rss_gib']:.2f} GiB (after the 512 x 512 runs: "
        f"{result['peak_rss_gib_after_512']:.2f} GiB) |",
        f"| time, large image (the references between its tiles taken out) | {result['seconds_large']:.1f} s "
        f"({result['s_per_mp_large']:.2f} s/MP) |",
        f"| time, 512 x 512 crop: median of {result['references_between_tiles']} runs between the large image's "
        f"tiles | {result['seconds_512_between_tiles_median']:.2f} s |",
        f"| time per MP, large / 512 x 512 (references between tiles): wall clock | "
        f"{result['time_per_mp_ratio']:.3f} |",
        f"| the same in CPU time of the process | {result['cpu_time_per_mp_ratio']:.3f} |",
        f"| for comparison: 512 x 512 fastest of 2 before / 2 after the large image | "
        f"{result['seconds_512_before']:.2f} s / {result['seconds_512_after']:.2f} s (ratio to the fastest: "
        f"{result['time_per_mp_ratio_fastest_reference']:.3f}) |",
        f"| count (truth {result['truth']}) | {result['count']} ({100 * result['count_error']:+.2f} %) |",
        f"| F1 / RMSE at 2 px | {result['f1_r2']:.4f} / {result['rmse_r2']:.4f} px |",
        f"| {c['n']} crops of {c['size']} px: truth / untiled / tiled count | {c['truth']} / {c['untiled']} / "
        f"{c['tiled']} |",
        f"| same crops: F1 at 2 px untiled / tiled | {c['f1_r2_untiled']:.4f} / {c['f1_r2_tiled']:.4f} |",
        f"| same crops: RMSE at 2 px untiled / tiled | {c['rmse_r2_untiled']:.4f} / {c['rmse_r2_tiled']:.4f} px |",
        "",
        "The crops are predicted whole (no tiling, no peak cap) and compared with the tiled result inside the same "
        "crops: the difference is what tiling costs, the rest of the count gap is the model's own at this density.",
        "",
        "![a crop across tile seams](large.png)",
        "",
    ]
    (out / "large.md").write_text("\n".join(lines))
    image, truth = load_large(data)
    starts, tile = tile_layout(image.shape[1], result["tiling"]["size"], result["tiling"]["overlap"], 32)
    x0 = max(starts[1] - 128, 0)  # a crop of 256 px centred on the first seams
    crop_figure(image, x0, [(truth, dict(marker="o", mfc="none", mec="white", ms=8, label="truth")),
                            (pts, dict(marker="x", color="red", ms=7, label="predicted"))],
                f"crop at ({x0}, {x0}) of the {image.shape[1]} px field; cyan: tile overlap bands", out / "large.png",
                lines=(starts[1], starts[0] + tile))  # the overlap band of the first two tiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder of the large image (made when missing)")
    parser.add_argument("--out", help="report folder (large.json, large.md, large.png)")
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--crops", type=int, default=4, help="1024 px crops predicted whole for comparison")
    parser.add_argument("--refine", choices=["physics"], help="measure the physics refinement instead")
    parser.add_argument("--workers", type=int, default=2, help="processes sharing the refinement's windows")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = Path(args.data)
    if args.workers < 1:
        parser.error(f"--workers {args.workers}: at least 1")
    if args.child:
        print(json.dumps(measure_refinement(data, args.workers) if args.refine else measure(data, args.crops)))
        return
    if not (data / "points.csv").is_file():
        simulate(data, args.size, args.seed)
    extra = ["--refine", args.refine, "--workers", str(args.workers)] if args.refine else []
    child = subprocess.run([sys.executable, __file__, "--data", str(data), "--crops", str(args.crops), "--child",
                            *extra], capture_output=True, text=True)
    if child.returncode != 0:
        sys.exit(f"measurement failed:\n{child.stderr[-2000:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    summary = {k: v for k, v in result.items() if k not in ("points", "refined_points")}
    print(json.dumps(summary, indent=1))
    if args.out:
        (report_refinement if args.refine else report)(result, data, Path(args.out))
        print(f"report: {args.out}/{'refine' if args.refine else 'large'}.md")


if __name__ == "__main__":
    main()
