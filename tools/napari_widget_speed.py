"""The napari widget's targets: live re-decoding, and a large image that does not block.

    python tools/napari_widget_speed.py --out docs/benchmark/napari

Headless (Qt offscreen, napari's viewer model, the real widget and its thread worker).
A simulated 512 x 512 image (default preset, 20-30 sources) runs once with the shipped model at its
default test-time augmentation; then the threshold slider is moved over 19 values, and
each change's time (decode of the kept maps + layer update, in the GUI thread) is
recorded.  A 4000 x 4000 image (that field tiled) runs in tiles (``--large-tta``) while a
20 ms GUI timer records how long the event loop was ever kept from running (the longest
gap between two ticks): the viewer stays responsive when the gaps stay near the
timer's period.  Writes ``widget_speed.json`` and ``widget_speed.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="report folder")
    parser.add_argument("--large", type=int, default=4000, help="side of the large image (px)")
    parser.add_argument("--large-tta", default="none", help="test-time augmentation of the large run")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    import numpy as np
    from napari.components import ViewerModel
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from heatmaploc.data.io import write_json
    from heatmaploc.napari_plugin.widget import LocalizerWidget
    from heatmaploc.simulate import get_preset, simulate_image

    app = QApplication.instance() or QApplication([])
    image = simulate_image(get_preset("default", height=512, width=512, count_range=(20, 30)), 2026, 0).image
    viewer = ViewerModel()
    viewer.add_image(image, name="field512", rgb=image.ndim == 3)
    widget = LocalizerWidget(viewer)
    widget.image.value = "field512"

    def run(w: LocalizerWidget) -> float:
        begin = time.perf_counter()
        w.start()
        while w.worker is not None:
            app.processEvents()
            time.sleep(0.002)
        if w.result is None:
            raise SystemExit(f"the widget did not finish: {w.info.value}")
        return time.perf_counter() - begin

    run_512 = run(widget)
    counts_512 = len(viewer.layers["field512 sources"].data)
    decode_ms = []
    for threshold in np.linspace(0.05, 0.95, 19):
        widget.threshold.value = float(threshold)
        decode_ms.append(widget.last_decode_seconds * 1e3)

    reps = -(-args.large // image.shape[0])
    large = np.tile(image, (reps, reps) + (1,) * (image.ndim - 2))[: args.large, : args.large]
    viewer.add_image(large, name="large", rgb=large.ndim == 3)
    big = LocalizerWidget(viewer)
    big.image.value, big.tta.value = "large", args.large_tta
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    run_large = run(big)
    timer.stop()
    gaps = np.diff(ticks) * 1e3
    big_decode_ms = []
    for threshold in (0.3, 0.5, 0.7):
        big.threshold.value = threshold
        big_decode_ms.append(big.last_decode_seconds * 1e3)
    loc = big.result.localizer
    result = {
        "image_512": {"tta": widget.result.localizer.tta, "run_seconds": run_512, "sources": counts_512,
                      "redecode_ms_median": statistics.median(decode_ms), "redecode_ms_max": max(decode_ms),
                      "thresholds": 19},
        "image_large": {"side": args.large, "tta": args.large_tta, "tiles": loc.work_units(large.shape),
                        "run_seconds": run_large, "sources": len(viewer.layers["large sources"].data),
                        "gui_timer_ms": 20, "gui_ticks": len(ticks), "gui_gap_ms_median": float(np.median(gaps)),
                        "gui_gap_ms_p99": float(np.percentile(gaps, 99)), "gui_gap_ms_max": float(gaps.max()),
                        "redecode_ms_max": max(big_decode_ms)},
    }
    print(json.dumps(result, indent=1))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "widget_speed.json", result)
        a, b = result["image_512"], result["image_large"]
        lines = [
            "# The napari widget: live threshold and a large image",
            "",
            "`python tools/napari_widget_speed.py` (headless: Qt offscreen, napari's viewer model, the widget and its "
            "thread worker; the shipped model on the CPU; one run).",
            "",
            "| measure | value |",
            "|---|---|",
            f"| 512 x 512: network run (tta {a['tta']}) | {a['run_seconds']:.1f} s, {a['sources']} sources |",
            f"| 512 x 512: threshold change, decode + layer update (median / max of {a['thresholds']}) | "
            f"{a['redecode_ms_median']:.1f} / {a['redecode_ms_max']:.1f} ms |",
            f"| {b['side']} x {b['side']}: tiled run (tta {b['tta']}, {b['tiles']} tiles) | {b['run_seconds']:.1f} s, "
            f"{b['sources']} sources |",
            f"| {b['side']} x {b['side']}: GUI event loop during the run, gap between {b['gui_timer_ms']} ms timer ticks "
            f"(median / 99th percentile / max) | {b['gui_gap_ms_median']:.1f} / {b['gui_gap_ms_p99']:.1f} / "
            f"{b['gui_gap_ms_max']:.1f} ms |",
            f"| {b['side']} x {b['side']}: threshold change (max of 3) | {b['redecode_ms_max']:.0f} ms |",
            "",
        ]
        (out / "widget_speed.md").write_text("\n".join(lines))
        print(f"report: {out}/widget_speed.md")


if __name__ == "__main__":
    main()
