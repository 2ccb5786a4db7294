"""The dock widget: find the point sources of an image layer.

The network runs once per run, in a background thread (napari's thread worker) with a
progress bar counted in tiles of large images and frames of stacks, and can be
cancelled between any two tiles; its maps are kept, so the threshold slider decodes
them again (:meth:`heatmaploc.api.Localizer.points_from_outputs`) without running it.
The physics refinement, when asked for, runs after the network in the same thread;
moving the threshold afterwards shows the network's points at that threshold until the
next run.  Results go to a Points layer ``"<image> sources"`` with the features
:data:`heatmaploc.napari_plugin.layers.FEATURES`, coloured by score, on the image
layer's scale and translation.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, FloatSlider, Label, LineEdit, ProgressBar, PushButton

from heatmaploc.api import PHYSICS_REFINE
from heatmaploc.napari_plugin.layers import frame_names, frames_of, image_metadata, layer_data

if TYPE_CHECKING:  # pragma: no cover
    import napari

MODEL_SOURCES = ("shipped model", "checkpoint (.pt)", "ONNX file (.onnx)")
TTA_CHOICES = ("model default", "none", "flip", "d4")


class Cancelled(Exception):
    """Raised from the progress callback when the user cancels a run."""


@dataclass
class Run:
    """What one run of the widget produced: per frame the network's outputs, and the
    refined points when the physics refinement ran; ``shape`` is a frame's ``(H, W)``."""

    layer: str
    localizer: Any
    shape: tuple[int, int]
    names: list[str]
    stacked: bool
    outputs: list[Any]
    refined: list[Any] | None = None
    threshold: float | None = None
    seconds: dict[str, float] = field(default_factory=dict)


class LocalizerWidget(Container):
    """Find sources in the selected image layer (napari injects ``viewer``)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        self.image = ComboBox(label="image", choices=self._image_layers, tooltip="2-D gray or RGB, or a stack")
        self.model_source = ComboBox(label="model", choices=MODEL_SOURCES, value=MODEL_SOURCES[0])
        self.model_file = FileEdit(label="file", mode="r", filter="*.pt *.onnx", visible=False)
        self.tta = ComboBox(label="TTA", choices=TTA_CHOICES, value=TTA_CHOICES[0],
                            tooltip="test-time augmentation: flips and quarter turns averaged")
        self.physics = CheckBox(text="physics refinement", value=False)
        self.known = LineEdit(label="known", value="", visible=False,
                              tooltip="what is known, KEY=VALUE separated by spaces, e.g. kernel=plate colormap=none "
                                      "(as heatmaploc predict --known)")
        self.run_button = PushButton(text="Find sources")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="progress", value=0, min=0, max=1)
        self.threshold = FloatSlider(label="threshold", min=0.01, max=0.99, step=0.01, value=0.5, enabled=False)
        self.info = Label(value="")
        self.info.native.setWordWrap(True)  # the physics summary is a long line
        self.extend([self.image, self.model_source, self.model_file, self.tta, self.physics, self.known,
                     self.run_button, self.cancel_button, self.progress, self.threshold, self.info])
        self.model_source.changed.connect(lambda v: setattr(self.model_file, "visible", v != MODEL_SOURCES[0]))
        self.physics.changed.connect(lambda v: setattr(self.known, "visible", bool(v)))
        self.run_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)
        self.threshold.changed.connect(self.redecode)
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(lambda _: self.image.reset_choices())
        self.result: Run | None = None
        self.worker = None
        self._cancel = threading.Event()
        self._localizers: dict[tuple, Any] = {}
        self.last_decode_seconds: float | None = None

    # -- inputs
    def _image_layers(self, _widget=None) -> list[str]:
        from napari.layers import Image

        return [layer.name for layer in self.viewer.layers if isinstance(layer, Image)]

    def model_choice(self) -> tuple[str, str, str]:
        """``(source, file, tta)`` as chosen in the widget (read in the GUI thread)."""
        source = self.model_source.value
        return source, str(self.model_file.value) if source != MODEL_SOURCES[0] else "", self.tta.value

    def localizer(self, choice: tuple[str, str, str] | None = None):
        """The :class:`~heatmaploc.api.Localizer` of a :meth:`model_choice` (default:
        the current one), loaded once and kept."""
        from heatmaploc.api import Localizer

        key = choice or self.model_choice()
        source, path, tta = key
        if key not in self._localizers:
            mode = None if tta == TTA_CHOICES[0] else tta
            if source == MODEL_SOURCES[0]:
                loc = Localizer.default("auto", mode)
            elif not path or path == ".":
                raise ValueError(f"choose the {source} to use")
            elif source == MODEL_SOURCES[1]:
                loc = Localizer.from_checkpoint(path, "auto", mode)
            else:
                loc = Localizer.from_onnx(path, mode)
            self._localizers[key] = loc
        return self._localizers[key]

    def known_physics(self) -> dict[str, Any] | None:
        """The known values of the physics refinement (``None`` when it is off)."""
        if not self.physics.value:
            return None
        from heatmaploc.physics.known import parse_known

        return parse_known(self.known.value.replace(",", " ").split(), "known")

    # -- running
    def start(self, _=None) -> None:
        """Run the network (and the refinement) on the chosen layer in a thread."""
        from napari.qt.threading import create_worker

        if self.worker is not None:
            return
        try:
            name = self.image.value
            if name is None:
                raise ValueError("no image layer to run on")
            layer = self.viewer.layers[name]
            frames, stacked = frames_of(layer.data[0] if layer.multiscale else layer.data, layer.rgb, name)
            physics = self.known_physics()
            choice = self.model_choice()
            threshold = float(self.threshold.value) if self.result is not None else None
        except (ValueError, KeyError) as err:
            self.info.value = f"error: {err}"
            return
        self._cancel.clear()
        self.progress.value, self.progress.max = 0, 1
        self.info.value = "loading the model ..."
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.worker = create_worker(self._work, name, frames, stacked, physics, choice, threshold, _start_thread=False)
        self.worker.yielded.connect(self._on_progress)
        self.worker.returned.connect(self._on_done)
        self.worker.errored.connect(self._on_error)
        self.worker.aborted.connect(lambda: self._on_done(None))  # quit() between two yields
        self.worker.finished.connect(self._on_finished)
        self.worker.start()

    def _work(self, name: str, frames: list[np.ndarray], stacked: bool, physics: dict[str, Any] | None,
              choice: tuple[str, str, str], threshold: float | None):
        """Generator run in the worker thread (touches no widget): yields ``(done,
        total, message)``, returns the :class:`Run` (``None`` when cancelled)."""
        import queue

        begin = time.perf_counter()
        loc = self.localizer(choice)
        total = sum(loc.work_units(f.shape) for f in frames) + (len(frames) if physics is not None else 0)
        done = 0
        updates: queue.SimpleQueue = queue.SimpleQueue()

        def progress(n: int) -> None:
            if self._cancel.is_set():
                raise Cancelled
            updates.put(n)

        outputs = []
        yield done, total, f"network on {len(frames)} frame(s)"
        for i, frame in enumerate(frames):
            try:
                outputs.extend(loc.raw_outputs([frame], progress=progress))
            except Cancelled:
                return None
            while not updates.empty():
                done += updates.get()
            yield done, total, f"network: frame {i + 1} of {len(frames)}"
        seconds = {"network": time.perf_counter() - begin}
        run = Run(name, loc, frames[0].shape[:2], frame_names(name, len(frames), stacked), stacked, outputs,
                  threshold=threshold)
        if physics is not None:
            begin, run.refined = time.perf_counter(), []
            for i, frame in enumerate(frames):
                if self._cancel.is_set():
                    return None
                run.refined.extend(loc.points_from_outputs([outputs[i]], [frame], [run.names[i]], run.threshold,
                                                           PHYSICS_REFINE, physics))
                done += 1
                yield done, total, f"physics: frame {i + 1} of {len(frames)}"
            seconds["physics"] = time.perf_counter() - begin
        run.seconds = seconds
        return run

    def cancel(self, _=None) -> None:
        """Stop the running work after the current tile (or refinement)."""
        self._cancel.set()
        if self.worker is not None:
            self.worker.quit()
        self.info.value = "cancelling ..."

    def _on_progress(self, update: tuple[int, int, str]) -> None:
        done, total, message = update
        self.progress.max = max(total, 1)
        self.progress.value = min(done, total)
        self.info.value = message

    def _on_done(self, run: Run | None) -> None:
        if run is None:
            self.info.value = "cancelled"
            return
        if run.threshold is None:  # the first run decodes at the model's own (calibrated) threshold
            run.threshold = run.localizer.threshold
        self.result = run
        self.threshold.enabled = True
        with self.threshold.changed.blocked():
            self.threshold.value = round(run.threshold, 2)
        self._show(run.refined if run.refined is not None else self._decode(run))
        self.progress.value = self.progress.max

    def _on_error(self, err: Exception) -> None:
        self.info.value = f"error: {err}"

    def _on_finished(self) -> None:
        self.worker = None
        self.run_button.enabled, self.cancel_button.enabled = True, False

    # -- results
    def _decode(self, run: Run) -> list[Any]:
        return run.localizer.points_from_outputs(run.outputs, threshold=run.threshold)

    def redecode(self, _=None) -> None:
        """Decode the kept maps at the slider's threshold (no network run)."""
        if self.result is None or self.worker is not None:
            return
        begin = time.perf_counter()
        self.result.threshold = float(self.threshold.value)
        self._show(self._decode(self.result))
        self.last_decode_seconds = time.perf_counter() - begin

    def _show(self, points: list[Any]) -> None:
        """Put one point list per frame into the sources layer (created on first use)."""
        from heatmaploc.physics.summary import physics_summary

        run = self.result
        image = self.viewer.layers[run.layer] if run.layer in self.viewer.layers else None
        data, features = layer_data(points, run.stacked)
        name = f"{run.layer} sources"
        metadata = image_metadata(run.names)
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            layer.data = data
            layer.features = features
            layer.metadata = metadata
            layer.face_color = "score"
        else:
            h, w = run.shape
            kwargs = {"scale": image.scale, "translate": image.translate} if image is not None else {}
            self.viewer.add_points(data, name=name, features=features, face_color="score", face_colormap="viridis",
                                   border_color="white", size=max(4.0, min(h, w) / 25), metadata=metadata, **kwargs)
        lines = [f"{sum(p.count for p in points)} source(s) in {len(points)} frame(s) at threshold "
                 f"{run.threshold:.3g}; network {run.seconds.get('network', 0):.1f} s"]
        refined = [f"{name}: {physics_summary(p.physics)}" for name, p in zip(run.names, points)
                   if p.physics is not None]
        if refined:
            lines[0] += f", physics {run.seconds.get('physics', 0):.1f} s"
            lines += refined[:4]
        elif run.refined is not None:
            lines.append("threshold changed: the network's points (run again to refine)")
        self.info.value = "\n".join(lines)
