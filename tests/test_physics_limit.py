import math

import numpy as np
import pytest

from heatmaploc.bench.least_squares import initial_guesses
from heatmaploc.physics.crlb import (WaveModel, crlb, efficient_share_within, fewer_source_distance, render_sources,
                                     scene_position_bounds)
from heatmaploc.physics.fieldfit import FieldModel, fit_field
from heatmaploc.simulate.scene import Scene, synthesize

MODEL = WaveModel(kernel="free", wavenumber=complex(2 * math.pi / 10.0, 0.0), time_phase=0.7, source_size=1.0, height=32, width=32)
TRUTH = np.array([[15.3, 16.8, 1.0, 0.4]])
# the true forward model as a fit: positions, amplitudes and phases free, nothing else
TRUE_FIT = FieldModel("free", 10.0, source_size_px=1.0, fit_source_size=False, fit_offset=False)


def test_forward_model_matches_the_simulator():
    scene = Scene(points=TRUTH[:, :2], strengths=np.array([np.exp(0.4j)]), wavenumber=MODEL.wavenumber, kernel="free",
                  observable="snapshot", time_phase=0.7, source_size=1.0)
    assert np.allclose(render_sources(MODEL, TRUTH), synthesize(scene, 32, 32), atol=1e-5)


def test_crlb_scales_with_noise():
    a, b = crlb(MODEL, TRUTH, 0.01), crlb(MODEL, TRUTH, 0.02)
    assert a.shape == (1, 2) and np.all(a > 0)
    assert np.allclose(b, 2 * a, rtol=1e-6)
    known = crlb(MODEL, TRUTH, 0.01, known_strengths=True)
    assert np.all(known <= a + 1e-12)  # knowing the nuisance parameters can only help
    with pytest.raises(ValueError, match="noise_std"):
        crlb(MODEL, TRUTH, 0.0)


def test_least_squares_fit_reaches_the_crlb():
    """The efficient estimator's RMSE is within 25 % of the bound over 100 draws."""
    clean = render_sources(MODEL, TRUTH)
    sigma = float(np.std(clean)) / 10 ** (5 / 20)  # SNR 5 dB
    bound = crlb(MODEL, TRUTH, sigma)[0]
    rng = np.random.default_rng(0)
    errors = []
    for _ in range(100):
        noisy = clean + rng.normal(0, sigma, clean.shape)
        fit = fit_field(noisy, TRUTH[:, :2], TRUE_FIT)
        errors.append(fit.xy[0] - TRUTH[0, :2])
    rmse = np.sqrt(np.mean(np.square(errors), axis=0))
    assert np.all(np.abs(rmse / bound - 1) < 0.25), (rmse, bound)


def test_initial_guesses_find_two_sources():
    truth = np.array([[8.2, 9.1, 1.0, 0.3], [23.7, 20.4, 0.8, 2.0]])
    image = render_sources(MODEL, truth)
    init = initial_guesses(image, MODEL, 2, grid=12)
    fit = fit_field(image, init[:, :2], TRUE_FIT, max_shift=6.0)
    d = np.linalg.norm(fit.xy[:, None] - truth[None, :, :2], axis=-1)
    assert d.min(axis=1).max() < 1e-3


def test_classical_baseline_finds_bright_spots_and_tunes():
    from heatmaploc.bench.classical import ClassicalDetector, tune_classical
    from heatmaploc.codec import HeatmapCodec

    codec = HeatmapCodec(sigma=2.0)
    rng = np.random.default_rng(0)
    images, truths = [], []
    for _ in range(4):
        pts = rng.uniform(6, 34, size=(2, 2))
        if np.linalg.norm(pts[0] - pts[1]) < 8:
            pts = pts[:1]
        images.append(codec.encode(pts, (40, 40))[0] + rng.normal(0, 0.02, (40, 40)))
        truths.append(pts)
    det, f1 = tune_classical(images, truths, sigmas=(1.0, 2.0), thresholds=(0.3, 0.6), min_distances=(3,))
    assert isinstance(det, ClassicalDetector) and f1 == 1.0
    from heatmaploc.bench.classical import TrackpyDetector, tune_trackpy

    tp_det, tp_f1 = tune_trackpy(images, truths, diameters=(5, 9), mass_rels=(0.3, 0.6))
    assert isinstance(tp_det, TrackpyDetector) and tp_f1 == 1.0
    pts = tp_det.detect(images[0])  # trackpy's centroids are sub-pixel
    d = np.linalg.norm(pts.xy[:, None] - truths[0][None], axis=-1).min(axis=0)
    assert d.max() < 0.5


def test_scene_bounds_use_the_noise_relative_to_the_field_range():
    scene = Scene(points=TRUTH[:, :2], strengths=np.array([np.exp(0.4j)]), wavenumber=MODEL.wavenumber, kernel="free",
                  observable="snapshot", time_phase=0.7, source_size=1.0)
    field = synthesize(scene, 32, 32)
    expected = crlb(MODEL, TRUTH, 0.05 * (field.max() - field.min()), known_strengths=True)
    assert np.allclose(scene_position_bounds(scene, 32, 32, 0.05, known_strengths=True, relative_to_range=True), expected)
    assert np.allclose(scene_position_bounds(scene, 32, 32, 0.01), crlb(MODEL, TRUTH, 0.01))
    twin = Scene(points=np.repeat(TRUTH[:, :2], 2, axis=0), strengths=np.array([1.0, 1.0]), wavenumber=MODEL.wavenumber,
                 kernel="free", observable="snapshot", time_phase=0.7, source_size=1.0)
    bounds = scene_position_bounds(twin, 32, 32, 0.05, known_strengths=True)  # coincident sources: singular Fisher matrix
    assert bounds.shape == (2, 2) and not np.all(np.isfinite(bounds))


@pytest.mark.parametrize("sigma,radius", [(0.5, 0.5), (1.0, 2.0), (0.2, 0.1)])
def test_efficient_share_is_the_rayleigh_probability(sigma, radius):
    expected = 1.0 - math.exp(-(radius**2) / (2 * sigma**2))  # isotropic 2-D normal error
    assert efficient_share_within(np.array([[sigma, sigma]] * 3), radius, draws=20000) == pytest.approx(expected, abs=0.01)
    mixed = efficient_share_within(np.array([[sigma, sigma], [np.inf, np.inf]]), radius, draws=20000)
    assert mixed == pytest.approx(expected / 2, abs=0.01)
    assert math.isnan(efficient_share_within(np.zeros((0, 2)), radius))


def seed_scene(points: list[list[float]]) -> Scene:
    return Scene(points=np.array(points, dtype=float), strengths=np.ones(len(points), dtype=complex),
                 wavenumber=complex(2 * math.pi / 12.0, 0.0), kernel="seed", observable="snapshot", time_phase=0.3,
                 source_size=0.0)


def test_render_stride_samples_the_full_grid():
    params = np.array([[10.2, 20.7, 1.0, 0.0], [22.0, 8.5, 0.8, 1.0]])
    assert np.allclose(render_sources(MODEL, params, stride=4), render_sources(MODEL, params)[::4, ::4])


def test_fewer_source_distance_separates_identifiable_from_coincident_counts():
    # Two coincident unit sources render as one source of twice the strength; after
    # min-max normalization (colormap) that is exactly the one-source image.
    d_same, twin = fewer_source_distance(seed_scene([[15.0, 16.0], [15.0, 16.0]]), 32, 32, 0.1, colormap="jet")
    assert d_same < 1e-3 and np.allclose(twin, [[15.0, 16.0]], atol=1e-3)
    # Well-separated sources: no one-source scene comes within many noise units.
    d_far, twin = fewer_source_distance(seed_scene([[8.0, 9.0], [24.0, 22.0]]), 32, 32, 0.1, colormap="jet")
    assert d_far > 10.0 and twin.shape == (1, 2)
    # Without the colormap's normalization, the doubled amplitude is visible.
    d_raw, _ = fewer_source_distance(seed_scene([[15.0, 16.0], [15.0, 16.0]]), 32, 32, 0.1)
    assert d_raw > 10.0
    with pytest.raises(ValueError, match="known strength"):
        fewer_source_distance(Scene(points=np.zeros((2, 2)), strengths=np.array([1.0, 0.5]), wavenumber=1.0, kernel="seed",
                                    observable="snapshot", time_phase=0.0, source_size=0.0), 32, 32, 0.1)
