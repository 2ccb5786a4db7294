"""The napari plugin, headless: the dock widget end to end on a real viewer model with
real Qt widgets and threads (offscreen), the reader and writer round trip in napari's
(row, column) order, the sample data and the manifest."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("napari", reason="the napari extra is not installed: pip install -e '.[napari]'")
pytest.importorskip("pytestqt", reason="pytest-qt is not installed")

from heatmaploc.napari_plugin import layers, reader, sample, writer  # noqa: E402
from heatmaploc.points import Points  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_MS = 240_000


@pytest.fixture
def viewer(qtbot):
    """napari's viewer model (layers, events, add_points) without a canvas: the CI has
    no OpenGL display; the widget only talks to the model."""
    from napari.components import ViewerModel

    return ViewerModel()


def make_widget(viewer, qtbot, image_name: str, tta: str = "none"):
    from heatmaploc.napari_plugin.widget import LocalizerWidget

    widget = LocalizerWidget(viewer)
    qtbot.addWidget(widget.native)
    widget.image.value = image_name
    widget.tta.value = tta
    return widget


def run_and_wait(widget, qtbot) -> None:
    widget.start()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)


def test_widget_finds_the_sources_and_the_slider_redecodes_without_the_network(viewer, qtbot):
    from heatmaploc import Localizer

    for data, kwargs, kind in sample.plate():
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    widget = make_widget(viewer, qtbot, "plate_0")
    run_and_wait(widget, qtbot)
    layer = viewer.layers["plate_0 sources"]
    expected = Localizer.default("cpu").with_tta("none").predict(viewer.layers["plate_0"].data)
    assert expected.count >= 2 and len(layer.data) == expected.count
    np.testing.assert_allclose(layer.data, expected.xy[:, ::-1], atol=1e-6)  # napari rows are (y, x)
    assert set(layers.FEATURES) <= set(layer.features.columns)
    np.testing.assert_allclose(layer.features["score"], expected.scores)
    assert not layer.features["refined"].any()
    outputs = widget.result.outputs
    counts = []
    for threshold in (0.05, 0.2, 0.4, 0.6, 0.8, 0.95):
        widget.threshold.value = threshold
        counts.append(len(layer.data))
        assert widget.result.outputs is outputs and widget.worker is None  # decoded again, not run again
        assert (layer.features["score"] > widget.result.threshold - 1e-6).all()
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    assert "source(s)" in widget.info.value


def test_widget_on_a_stack_with_the_physics_refinement(viewer, qtbot):
    from heatmaploc.simulate import get_preset, simulate_image

    cfg = get_preset("default", height=64, width=64, kernels=("free",), observables=("amplitude",),
                     renderings=("raw",), count_range=(1, 2))
    frames = np.stack([simulate_image(cfg, 7, i).image for i in range(2)])
    viewer.add_image(frames, name="stack", scale=(1.0, 0.5, 0.5))
    widget = make_widget(viewer, qtbot, "stack")
    widget.physics.value = True
    widget.known.value = "colormap=none, observable=amplitude"
    run_and_wait(widget, qtbot)
    layer = viewer.layers["stack sources"]
    assert layer.data.shape[1] == 3 and set(np.unique(layer.data[:, 0])) <= {0.0, 1.0}
    assert tuple(layer.scale) == (1.0, 0.5, 0.5)
    assert len(widget.result.refined) == 2 and all(p.physics is not None for p in widget.result.refined)
    assert "physics" in widget.info.value and layer.metadata["heatmaploc"]["images"] == ["stack[0]", "stack[1]"]


def test_a_bad_known_value_is_one_line_in_the_widget(viewer, qtbot):
    viewer.add_image(np.zeros((32, 32), np.float32), name="blank")
    widget = make_widget(viewer, qtbot, "blank")
    widget.physics.value = True
    widget.known.value = "kernel=membrane"
    widget.start()
    assert widget.worker is None and widget.info.value.startswith("error: known") and "kernel" in widget.info.value


def test_a_tiled_run_can_be_cancelled(viewer, qtbot):
    viewer.add_image(np.random.default_rng(0).random((1500, 1500), dtype=np.float32), name="large")
    widget = make_widget(viewer, qtbot, "large")
    widget.start()
    widget.cancel()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)
    assert widget.result is None and widget.info.value == "cancelled"
    assert "large sources" not in viewer.layers and widget.run_button.enabled


@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="a napari window needs an OpenGL display (CI has none): "
                    "xvfb-run -a python -m pytest tests/test_napari.py")
def test_the_widget_docks_in_a_napari_window(make_napari_viewer, qtbot):
    from heatmaploc import Localizer

    Localizer.default()  # torch's LLVM before Mesa's (tools/napari_screenshot.py)
    viewer = make_napari_viewer()
    viewer.open_sample("heatmaploc", "plate")
    _, widget = viewer.window.add_plugin_dock_widget("heatmaploc", "Find point sources")
    widget.image.value, widget.tta.value = "plate_0", "none"
    run_and_wait(widget, qtbot)
    assert len(viewer.layers["plate_0 sources"].data) >= 2
    assert viewer.screenshot(canvas_only=False).shape[-1] == 4


def test_predictions_csv_round_trips_through_the_reader_and_writer(tmp_path):
    from heatmaploc.data.io import read_points_csv, write_points_csv

    a = Points(np.array([[3.25, 4.5], [20.0, 10.75]]), np.array([0.9, 0.4]), sigma=np.array([0.2, np.nan]))
    b = Points(np.array([[31.4, 23.4]]), np.array([0.7]), sigma=np.array([0.1]))
    source = tmp_path / "preds.csv"
    write_points_csv(source, [("a.png", a.xy, a.labels, a.scores, a.sigma), ("b.png", b.xy, b.labels, b.scores, b.sigma)])
    read = reader.get_reader(str(source))
    assert read is not None
    out = read(str(source))
    assert [kw["name"] for _, kw, _ in out] == ["a.png (preds.csv)", "b.png (preds.csv)"]
    data, kwargs, kind = out[0]
    assert kind == "points"
    np.testing.assert_allclose(data, [[4.5, 3.25], [10.75, 20.0]])  # (row, column)
    np.testing.assert_allclose(kwargs["features"]["score"], [0.9, 0.4])
    target = tmp_path / "back.csv"
    assert writer.write_points(str(target), data, kwargs) == [str(target)]
    table = read_points_csv(target)
    np.testing.assert_allclose(table.points["a.png"], a.xy)
    np.testing.assert_allclose(table.sigmas["a.png"], a.sigma, equal_nan=True)
    assert reader.get_reader(str(tmp_path / "nothing.txt")) is None


def test_the_dataset_reader_gives_images_and_ground_truth(tmp_path):
    from heatmaploc.data.io import read_points_csv

    out = reader.get_reader(str(REPO / "examples"))(str(REPO / "examples"))
    kinds = [kind for _, _, kind in out]
    assert kinds.count("image") == 8 and kinds.count("points") == 8  # the examples differ in shape: a layer each
    truth = read_points_csv(REPO / "examples" / "points.csv").points
    for data, kwargs, kind in out:
        if kind == "points":
            name = kwargs["metadata"]["heatmaploc"]["images"][0]
            np.testing.assert_allclose(data, truth.get(name, np.zeros((0, 2)))[:, ::-1])


def test_the_dataset_reader_stacks_images_of_one_shape(tiny_dataset):
    out = reader.read_dataset(str(tiny_dataset))
    (stack, image_kwargs, _), (data, points_kwargs, _) = out
    assert stack.shape == (3, 24, 32, 3) and image_kwargs["rgb"]
    np.testing.assert_allclose(data, [[0, 4.5, 3.25], [0, 10.75, 20.0], [1, 23.4, 31.4]])
    assert points_kwargs["metadata"]["heatmaploc"]["images"] == ["a.png", "b.png", "c.png"]


@pytest.mark.parametrize("make", [sample.plate, sample.amplitude, sample.large])
def test_sample_data_is_the_examples_with_their_ground_truth(make):
    from heatmaploc.data.io import read_image, read_points_csv

    (image, image_kwargs, _), (points, points_kwargs, _) = make()
    name = image_kwargs["metadata"]["heatmaploc"]["images"][0]
    np.testing.assert_array_equal(image, read_image(REPO / "examples" / "images" / name))
    np.testing.assert_allclose(points, read_points_csv(REPO / "examples" / "points.csv").points[name][:, ::-1],
                               atol=1e-4)  # the CSV keeps 4 decimals


def test_the_manifest_is_valid_and_its_commands_import():
    import importlib

    import npe2

    manifest = npe2.PluginManifest.from_file(REPO / "heatmaploc" / "napari_plugin" / "napari.yaml")
    for command in manifest.contributions.commands:
        module, _, attr = command.python_name.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), command.id
    pm = npe2.PluginManager.instance()
    pm.discover()
    assert pm.get_manifest("heatmaploc").name == "heatmaploc"  # found through the napari.manifest entry point


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.tuples(st.floats(-0.5, 99.4), st.floats(-0.5, 59.4), st.floats(0, 1)), max_size=5),
                min_size=1, max_size=4))
def test_layer_data_round_trips(frames):
    points = [Points(np.array([(x, y) for x, y, _ in f]).reshape(-1, 2), np.array([s for _, _, s in f]))
              for f in frames]
    data, features = layers.layer_data(points, stacked=True)
    back = layers.points_of_layer(data, features, frames=len(points))
    assert len(back) == len(points)
    for p, q in zip(points, back):
        np.testing.assert_allclose(q.xy, p.xy)
        np.testing.assert_allclose(q.scores, p.scores)
    if len(points) == 1:
        data, features = layers.layer_data(points, stacked=False)
        np.testing.assert_allclose(layers.points_of_layer(data, features)[0].xy, points[0].xy)
