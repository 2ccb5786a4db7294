"""Local physics (heatmaploc.physics.local): window layout, the per-source decisions on
constructed fields, and fields of media the image-wide model does not describe."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmaploc.physics.fdsolve import Medium, solve_field
from heatmaploc.physics.forward import observe, wave_field
from heatmaploc.physics.kernels import wavenumber
from heatmaploc.physics.local import correlation_area, refine_locally, refine_window
from heatmaploc.physics.windows import window_layout
from heatmaploc.physics.wavefit import fit_wave
from heatmaploc.physics.waveproblem import Hypothesis, PlaneWaves
from heatmaploc.simulate.scene import Scene, synthesize


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 12), st.floats(6.0, 30.0), st.integers(16, 90), st.integers(16, 90), st.integers(0, 2**31 - 1))
def test_window_layout_reports_every_source_once(n, wavelength, h, w, seed):
    xy = np.random.default_rng(seed).uniform([-0.5, -0.5], [w - 0.5, h - 0.5], (n, 2))
    windows = window_layout(xy, (h, w), wavelength)
    members = np.concatenate([win.members for win in windows]) if windows else np.zeros(0, int)
    assert sorted(members.tolist()) == list(range(n))
    for win in windows:
        assert 0 <= win.rows[0] < win.rows[1] <= h and 0 <= win.cols[0] < win.cols[1] <= w
        assert win.contains(xy[win.members]).all()
        assert not set(win.neighbours.tolist()) & set(win.members.tolist())


def test_close_sources_share_a_window():
    xy = np.array([[10.0, 10.0], [17.0, 10.0], [60.0, 60.0]])
    windows = window_layout(xy, (80, 80), 10.0)
    assert sorted(sorted(win.members.tolist()) for win in windows) == [[0, 1], [2]]


def test_correlation_area_is_one_for_white_noise_and_large_for_a_smooth_residual():
    rng = np.random.default_rng(0)
    assert correlation_area(rng.normal(size=(40, 40)), 4.0) < 1.6
    yy, xx = np.mgrid[0:40, 0:40]
    smooth = np.cos(2 * np.pi * xx / 30.0) + 0.05 * rng.normal(size=(40, 40))
    assert correlation_area(smooth, 4.0) > 10.0


def test_plane_waves_fit_what_arrives_from_outside():
    # one source in view and a plane wave from outside: the fit with two plane waves of
    # free direction finds the source and is down to the noise
    k = 2 * np.pi / 10.0
    truth = np.array([[24.3, 21.7]])
    scene = Scene(truth, np.array([1.0 + 0.3j]), complex(k, 0.0), "free", "snapshot", time_phase=0.4, source_size=0.9)
    yy, xx = np.mgrid[0:44, 0:48]
    image = synthesize(scene, 44, 48) + 0.2 * np.cos(k * (xx * np.cos(0.3) + yy * np.sin(0.3)) + 1.0)
    image += np.random.default_rng(1).normal(0.0, 0.005, image.shape)
    without = fit_wave(image, truth + 0.5, Hypothesis("free", "snapshot", 10.0), weights=np.full(image.shape, 200.0))
    with_waves = fit_wave(image, truth + 0.5, Hypothesis("free", "snapshot", 10.0), weights=np.full(image.shape, 200.0),
                          planes=PlaneWaves(2, (24.0, 22.0)))
    assert len(with_waves.background) == 2 and len(with_waves.strengths) == 1
    assert with_waves.residual_std < 1.2 < without.residual_std
    assert np.linalg.norm(with_waves.xy[0] - truth[0]) < 0.05


def _right_and_wrong(seed=0):
    """A free-field source on the left (the model holds) and a Gaussian blob on the
    right (no wave model holds), with noise; the network's points are 0.6 px off."""
    k = 2 * np.pi / 10.0
    wave_source = np.array([[20.3, 30.6]])
    scene = Scene(wave_source, np.array([1.0 + 0.0j]), complex(k, 0.05 * k), "free", "snapshot", time_phase=0.3,
                  source_size=0.9)
    h, w = 60, 110
    field = synthesize(scene, h, w)
    yy, xx = np.mgrid[0:h, 0:w]
    field += 0.3 * np.exp(-((xx - 88.4) ** 2 + (yy - 30.2) ** 2) / (2 * 3.0**2))
    noise = 0.004
    field += np.random.default_rng(seed).normal(0.0, noise, field.shape)
    network = np.array([[20.9, 30.1], [88.0, 30.8]])
    return field, np.full(field.shape, 1.0 / noise), network, wave_source[0]


def test_right_model_refined_wrong_model_kept_nothing_added_in_empty_space():
    field, weights, network, truth = _right_and_wrong()
    hypothesis = Hypothesis("free", "snapshot", 10.0, 0.05, 1.0)
    empty = np.array([[55.0, 8.0]])  # a candidate (heatmap peak below the threshold) in empty space
    sources = refine_locally(field, weights, network, np.array([0.5, 0.5]), hypothesis, empty)
    assert [s.decision for s in sources] == ["refined", "kept"]
    assert np.linalg.norm(sources[0].xy - truth) < 0.1
    assert sources[0].wavelength_px == pytest.approx(10.0, rel=0.03)
    np.testing.assert_array_equal(sources[1].xy, network[1])  # the blob keeps the network's point
    assert sources[1].sigma == 0.5


def test_a_supported_candidate_the_window_needs_is_added_and_a_needless_point_removed():
    k = 2 * np.pi / 9.0
    truth = np.array([[18.2, 20.7], [40.6, 24.4]])
    scene = Scene(truth, np.array([1.0, 0.8j]), complex(k, 0.04 * k), "free", "snapshot", time_phase=0.0,
                  source_size=0.9)
    noise = 0.004
    field = synthesize(scene, 44, 60) + np.random.default_rng(3).normal(0.0, noise, (44, 60))
    weights = np.full(field.shape, 1.0 / noise)
    hypothesis = Hypothesis("free", "snapshot", 9.0, 0.04, 1.0)
    # the network found only the first source; the second is a candidate below its threshold
    sources = refine_locally(field, weights, truth[:1] + 0.4, np.array([0.5]), hypothesis, truth[1:] + 0.5)
    assert sorted(s.decision for s in sources) == ["added", "refined"]
    found = np.array([s.xy for s in sources])
    assert np.all(np.min(np.linalg.norm(found[:, None] - truth[None], axis=2), axis=0) < 0.1)
    # a network point in empty space far from both: the window does not need it
    extra = np.vstack([truth + 0.3, [[8.0, 38.0]]])
    sources = refine_locally(field, weights, extra, np.full(3, 0.5), hypothesis)
    assert len(sources) == 2 and all(s.decision == "refined" for s in sources)


@pytest.mark.parametrize("variation", [0.1, 0.2])
def test_heterogeneous_medium_source_found_by_its_window(variation):
    # finite-difference field of a medium whose wave speed varies smoothly by
    # +-variation: the window's local wavelength and the source within 0.25 px
    rng = np.random.default_rng(11)
    h = w = 72
    yy, xx = np.mgrid[0:h, 0:w]
    speed = 1.0 + variation * np.sin(2 * np.pi * xx / 50.0 + 0.5) * np.cos(2 * np.pi * yy / 60.0)
    truth = np.array([[35.4, 37.2]])
    medium = Medium(2 * np.pi / 10.0 * (1 + 0.03j), "free", speed=speed, source_size=0.8)
    u = solve_field(medium, truth, np.array([1.0]), h, w)
    field = np.real(u * np.exp(-0.6j))
    noise = 0.01 * field.std()
    field = field + rng.normal(0.0, noise, field.shape)
    hypothesis = Hypothesis("free", "snapshot", 10.0, 0.03, 1.0)
    sources = refine_locally(field / field.std(), np.full(field.shape, field.std() / noise), truth + [0.6, -0.5],
                             np.array([0.5]), hypothesis)
    assert len(sources) == 1 and sources[0].decision == "refined"
    assert np.linalg.norm(sources[0].xy - truth[0]) < 0.25


@pytest.mark.slow  # the image-wide search runs first: about a minute on a quiet 2-core machine
def test_refine_physics_decides_per_source_when_the_image_wide_fit_fails():
    # two sources in a medium whose speed varies by +-20 %: the image-wide model is
    # rejected, the windows refine both; the estimate is JSON-friendly and lists one
    # decision per reported point
    import json

    from heatmaploc.physics.refine import refine_physics
    from heatmaploc.points import Points

    h = w = 80
    yy, xx = np.mgrid[0:h, 0:w]
    speed = 1.0 + 0.2 * np.sin(2 * np.pi * xx / 45.0 + 0.4) * np.cos(2 * np.pi * yy / 55.0)
    truth = np.array([[24.4, 30.2], [55.7, 47.1]])
    medium = Medium(2 * np.pi / 11.0 * (1 + 0.03j), "free", speed=speed, source_size=0.8)
    u = solve_field(medium, truth, np.array([1.0, 0.7j]), h, w)
    field = np.real(u)
    field = field + np.random.default_rng(5).normal(0.0, 0.01 * field.std(), field.shape)
    network = Points(truth + [[0.5, -0.4], [-0.45, 0.5]], scores=np.full(2, 0.9), sigma=np.full(2, 0.4))
    refined = refine_physics(field, network)
    assert refined.physics["mode"] == "local" and not refined.physics["accepted"]
    assert [s["decision"] for s in refined.physics["sources"]] == ["refined", "refined"]
    assert np.linalg.norm(refined.xy - truth, axis=1).max() < 0.25
    assert np.all(refined.sigma > 0) and np.all(refined.scores == 0.9)
    json.dumps(refined.physics)


PATCH_SOURCE, PATCH = np.array([[30.4, 33.2]]), np.array([[44.0, 25.0]])  # a source, and a point beside it


def _one_source_medium(variation):
    """A 64 x 64 snapshot of one source (``PATCH_SOURCE``, wavelength 10 px) in a medium
    whose speed varies by +-``variation``, at unit std with noise 0.03 (seed 4), its
    weights and the homogeneous hypothesis."""
    rng = np.random.default_rng(4)
    h = w = 64
    yy, xx = np.mgrid[0:h, 0:w]
    speed = 1.0 + variation * np.sin(2 * np.pi * xx / 45.0 + 0.4) * np.cos(2 * np.pi * yy / 55.0)
    medium = Medium(2 * np.pi / 10.0 * (1 + 0.03j), "free", speed=speed, source_size=0.8)
    field = np.real(solve_field(medium, PATCH_SOURCE, np.array([1.0]), h, w))
    field = (field + rng.normal(0.0, 0.03 * field.std(), field.shape)) / field.std()
    return field, np.full(field.shape, 1.0 / 0.03), Hypothesis("free", "snapshot", 10.0, 0.03, 1.0)


def test_a_window_needs_a_real_source_but_not_a_patch_of_the_image_wide_mismatch():
    # one source in a medium whose speed varies by +-20 %: a second point beside it
    # patches the homogeneous model's mismatch, which the window's own wavelength and
    # plane waves absorb; the source itself is needed
    from heatmaploc.physics.local import window_needs

    field, weights, hypothesis = _one_source_medium(0.2)
    xy = np.vstack([PATCH_SOURCE, PATCH])
    assert window_needs(field, weights, xy, 0, hypothesis)
    assert not window_needs(field, weights, xy, 1, hypothesis)


def test_a_patch_that_lowers_the_bic_is_not_needed_where_the_window_is_explained_without_it():
    # +-10 % speed variation: the point beside the source lowers its window's BIC from a
    # warm and a cold start, but the window without it is explained within the model
    # tolerance (what it leaves beyond the noise is under 10 % of its signal), so the
    # local rule for an addition does not take it; the source itself is still needed
    from heatmaploc.physics.local import _WindowFitter, window_needs
    from heatmaploc.physics.windows import Window, box, window_radius

    field, weights, hypothesis = _one_source_medium(0.1)
    xy = np.vstack([PATCH, PATCH_SOURCE])
    rows, cols = box(xy[:1], window_radius(10.0), field.shape)
    fitter = _WindowFitter(field, weights, Window(np.array([0]), np.array([1]), rows, cols), hypothesis, 3.0, 20)
    with_patch, without = fitter.fit(xy), fitter.fit(xy[1:])
    assert with_patch.bic() < without.bic() and fitter.ok(without)  # the case the explained-without rule decides
    assert not window_needs(field, weights, xy, 0, hypothesis)
    assert window_needs(field, weights, xy, 1, hypothesis)


def test_local_points_report_strengths_in_the_images_units_however_small():
    # a field in metres (a vibrometer's displacement): strengths of 1e-9 must not round away
    from heatmaploc.physics.summary import PhysicsEstimate
    from heatmaploc.physics.local import LocalSource
    from heatmaploc.physics.refine import local_points
    from heatmaploc.points import Points

    network = Points(np.array([[10.0, 12.0], [30.0, 8.0]]), scores=np.array([0.9, 0.8]))
    sources = [LocalSource(np.array([10.2, 11.9]), 0.05, "refined", 1.0, 10.0, 0.01, 1.0, 0.8 * np.exp(0.3j), 0.02, 0.01),
               LocalSource(np.array([30.0, 8.0]), 0.5, "kept", 1.5)]
    est = PhysicsEstimate(False, "", kernel="free", observable="snapshot", count_network=2, count=2, mode="local")
    out = local_points(network, est, sources, 2e-9)
    assert out.strength[0] == pytest.approx(1.6e-9) and out.strength_sigma[0] == pytest.approx(4e-11)
    assert out.phase[0] == pytest.approx(0.3) and out.phase_sigma[0] == pytest.approx(0.01)
    assert np.isnan(out.strength[1]) and np.isnan(out.phase[1])
    assert out.refined and list(out.scores) == [0.9, 0.8]


def test_windows_fitted_on_their_own_pixels_and_in_worker_processes_give_the_same_sources(capsys):
    # eight sources a few wavelengths apart: eight windows, each fitted on the whole field,
    # on its crop in this process, and on its crop in two worker processes
    truth = np.array([[12.3 + 23.0 * i, 12.0 + 14.6 * (i % 2)] for i in range(8)])
    q = np.exp(1j * np.arange(8)) * (1.0 + 0.1 * np.arange(8))
    u = wave_field("free", truth, q, np.arange(190), np.arange(40), wavenumber(7.0, 0.05), 0.8)
    clean = observe(u, "snapshot", 0.2)
    noise = clean.std() / 30.0
    field = clean + np.random.default_rng(4).normal(0.0, noise, clean.shape)
    weights = np.full(field.shape, 1.0 / noise)
    start = truth + np.random.default_rng(5).normal(0.0, 0.4, truth.shape)
    sigma = np.full(8, 0.4)
    hypothesis = Hypothesis("free", "snapshot", 7.0, 0.05, 0.8)
    windows = window_layout(start, field.shape, 7.0)
    assert len(windows) == 8
    whole = [s for win in windows
             for s in refine_window(field, weights, win, start, sigma, np.zeros(8, bool), hypothesis)]
    serial = refine_locally(field, weights, start, sigma, hypothesis, workers=1)
    pooled = refine_locally(field, weights, start, sigma, hypothesis, workers=2, progress=True)
    bar = capsys.readouterr().err  # the progress bar over the windows
    assert "windows" in bar and "8/8" in bar
    assert [s.decision for s in whole] == [s.decision for s in serial] == [s.decision for s in pooled]
    assert sum(s.decision == "refined" for s in serial) >= 6
    np.testing.assert_allclose([s.xy for s in serial], [s.xy for s in whole], atol=1e-4)  # rounding only
    np.testing.assert_array_equal([s.xy for s in pooled], [s.xy for s in serial])
    np.testing.assert_array_equal([s.sigma for s in pooled], [s.sigma for s in serial])
    assert np.max(np.linalg.norm(np.array([s.xy for s in serial]) - truth, axis=1)) < 0.2
