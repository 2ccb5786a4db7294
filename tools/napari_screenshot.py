"""The README's screenshot of the napari widget, taken headless on a virtual display.

    xvfb-run -a -s "-screen 0 1600x1000x24" python tools/napari_screenshot.py --out docs/napari_widget.png

Opens the plate example (the plugin's sample data), docks the widget, finds the
sources with the shipped model and the physics refinement and saves the whole window (canvas, layer list and
widget) as a PNG.  Needs the napari extra, a Qt binding and an OpenGL display (Xvfb
with Mesa gives one).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/napari_widget.png")
    parser.add_argument("--sample", default="plate", choices=("plate", "amplitude", "large"))
    args = parser.parse_args()

    # The model first: torch's compiler stack (triton) links its own LLVM, which crashes
    # when Mesa's software OpenGL (llvmpipe, Xvfb's) has loaded another one before it.
    from heatmaploc import Localizer

    Localizer.default()
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=True, title="heatmaploc")
    viewer.window.resize(1500, 900)
    viewer.open_sample("heatmaploc", args.sample)
    _, widget = viewer.window.add_plugin_dock_widget("heatmaploc", "Find point sources")
    image = next(layer.name for layer in viewer.layers if layer.__class__.__name__ == "Image")
    widget.image.value = image
    widget.physics.value = True
    widget.start()
    deadline = time.monotonic() + 600
    while widget.worker is not None and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.05)
    if widget.result is None:
        raise SystemExit(f"the widget did not finish: {widget.info.value}")
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.05)
    viewer.reset_view()
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.05)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(out), canvas_only=False)
    print(f"wrote {out}: {widget.info.value.splitlines()[0]}")
    viewer.close()


if __name__ == "__main__":
    main()
