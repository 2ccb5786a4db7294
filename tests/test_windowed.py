"""Large images refined window by window (issue 22 part 4): the model of one crop, the
decisions in windows over the whole image."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmaploc.physics.forward import observe, wave_field
from heatmaploc.physics.kernels import wavenumber
from heatmaploc.physics.refine import estimation_crop, refine_windowed
from heatmaploc.physics.summary import physics_summary
from heatmaploc.points import Points


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 40), st.integers(20, 200), st.integers(20, 200), st.integers(8, 120), st.integers(0, 10 ** 6))
def test_the_estimation_crop_lies_in_the_image_and_holds_the_densest_points(n, h, w, side, seed):
    rng = np.random.default_rng(seed)
    xy = rng.uniform([-0.5, -0.5], [w - 0.5, h - 0.5], size=(n, 2)) if n else np.zeros((0, 2))
    rows, cols = estimation_crop(xy, (h, w), side)
    assert 0 <= rows.start < rows.stop <= h and 0 <= cols.start < cols.stop <= w
    assert rows.stop - rows.start == min(side, h) and cols.stop - cols.start == min(side, w)
    if n:  # at least as many points as a crop centred on the first point holds
        inside = lambda r, c: np.sum((xy[:, 0] >= c.start - 0.5) & (xy[:, 0] < c.stop - 0.5)
                                     & (xy[:, 1] >= r.start - 0.5) & (xy[:, 1] < r.stop - 0.5))
        r0 = int(np.clip(np.round(xy[0, 1] - min(side, h) / 2), 0, h - min(side, h)))
        c0 = int(np.clip(np.round(xy[0, 0] - min(side, w) / 2), 0, w - min(side, w)))
        assert inside(rows, cols) >= inside(slice(r0, r0 + min(side, h)), slice(c0, c0 + min(side, w)))


def test_windowed_refinement_uses_one_crops_model_for_every_source():
    h, w = 60, 150
    truth = np.array([[18.3, 25.6], [40.7, 38.2], [112.4, 22.9], [131.6, 41.3]])
    q = np.array([1.0, 0.8j, -0.9, 0.7 + 0.3j])
    u = wave_field("free", truth, q, np.arange(w), np.arange(h), wavenumber(10.0, 0.03), 0.8)
    clean = observe(u, "snapshot", 0.3)
    field = clean + np.random.default_rng(0).normal(0.0, clean.std() / 10 ** 1.5, clean.shape)
    start = Points(truth + np.random.default_rng(1).normal(0.0, 0.4, truth.shape), sigma=np.full(4, 0.4))
    out = refine_windowed(field, start, crop_side=64)
    physics = out.physics
    assert physics["mode"] == "windowed" and "rows 0:60, cols" in physics["reason"]
    assert physics["kernel"] == "free" and abs(physics["wavelength_px"] / 10.0 - 1) < 0.02
    assert [s["decision"] for s in physics["sources"]].count("refined") >= 3
    line = physics_summary(physics)
    assert line.startswith("physics decided per window (windowed: 60x150 pixels")
    assert f"refined {[s['decision'] for s in physics['sources']].count('refined')}" in line
    order = np.argsort(out.xy[:, 0])
    refined = np.array([s["decision"] == "refined" for s in physics["sources"]])[order]
    assert out.count == 4
    errors = np.linalg.norm(out.xy[order] - truth, axis=1)
    assert np.all(errors[refined] < 0.15) and np.all(np.isfinite(out.strength[np.argsort(order)][refined]))


def test_windowed_refinement_keeps_the_points_where_the_crop_shows_no_wave():
    rng = np.random.default_rng(3)
    noise = rng.normal(0.0, 1.0, (60, 150))
    start = Points(np.array([[30.0, 30.0], [100.0, 20.0]]))
    out = refine_windowed(noise, start, crop_side=64)
    assert not out.refined and out.physics["mode"] == "network"
    np.testing.assert_array_equal(out.xy, start.xy)
