"""The acoustic benchmark's pieces: suites that carry each map's cross-spectral matrix,
the level error, the acoular peer (skipped with its reason when the extra is absent)
and the report's table."""
from __future__ import annotations

import math

import numpy as np
import pytest

from heatmaploc.bench.acoular_peer import points_of_map, unavailable_reason
from heatmaploc.bench.measures import level_errors
from heatmaploc.bench.report import _point_spread_table
from heatmaploc.bench.suites import SuiteSpec, build_suite
from heatmaploc.points import Points
from heatmaploc.simulate import get_preset, simulate_image

CLEAN = {"snapshots_range": None, "snr_db_range": [20, 20], "count_range": [2, 3], "level_spread_db_range": [0, 6],
         "geometries": ["spiral"], "mic_count_range": [64, 64], "renderings": ["raw"]}


def test_acoustic_suites_are_the_simulator_s_maps_with_their_matrices():
    suite = build_suite(SuiteSpec("ac", preset="acoustic", seed=11, n=3))
    assert suite.is_acoustic and len(suite.csms) == 3
    for i, (image, csm, scene) in enumerate(zip(suite.images, suite.csms, suite.scenes)):
        np.testing.assert_array_equal(image, simulate_image(get_preset("acoustic"), 11, i).image)
        assert csm.shape == (len(scene.mics),) * 2 and np.allclose(csm, csm.conj().T)
    assert not build_suite(SuiteSpec("wave", n=1)).is_acoustic
    with pytest.raises(ValueError, match="generator 'standard'"):
        build_suite(SuiteSpec("ac", preset="acoustic", generator="border", n=1))


def test_level_error_is_relative_to_the_strongest_true_source():
    suite = build_suite(SuiteSpec("ac", preset="acoustic", seed=3, n=1, overrides={"count_range": [3, 3]}))
    truth, powers = suite.truths[0], suite.scenes[0].powers
    ref = int(np.argmax(powers))
    off_db = np.array([0.0, 0.5, -1.5])  # what the estimate gets wrong, per source, relative to the strongest
    off_db = off_db - off_db[ref]
    estimate = 7.0 * powers * 10 ** (off_db / 10)  # any common scale: the levels are relative
    errors = level_errors([Points(truth + 0.3, strength=estimate)], suite)
    expected = sorted(abs(off_db[j]) for j in range(3) if j != ref)
    np.testing.assert_allclose(sorted(errors), expected, atol=1e-9)
    assert level_errors([Points(truth)], suite) == []  # no powers, no levels


def test_points_of_a_deconvolved_map_merge_components_within_the_radius():
    power = np.zeros((20, 30))
    power[5, 6], power[5, 7] = 3.0, 1.0  # one source, two components
    power[15, 20] = 0.5
    power[2, 28] = 1e-4  # 44 dB below the strongest: outside the range
    pts = points_of_map(power, radius_px=1.5, dynamic_range_db=25.0)
    assert pts.count == 2
    np.testing.assert_allclose(pts.xy, [[6.25, 5.0], [20.0, 15.0]])
    np.testing.assert_allclose(pts.strength, [4.0, 0.5])
    assert points_of_map(np.zeros((4, 4)), 1.0).count == 0


@pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
def test_acoular_clean_sc_finds_the_sources_of_an_exact_matrix():
    from heatmaploc.bench.acoular_peer import deconvolved_maps, map_points

    suite = build_suite(SuiteSpec("clean", preset="acoustic", seed=21, n=2, overrides=CLEAN))
    maps, seconds = deconvolved_maps(suite, "clean-sc")
    assert len(maps) == 2 and maps[0].shape == (64, 64) and seconds > 0
    for pts, truth, scene in zip(map_points(maps, suite.scenes, 15.0), suite.truths, suite.scenes):
        assert pts.count == len(truth)
        d = np.hypot(*(pts.xy[:, None, :] - truth[None]).transpose(2, 0, 1)).min(axis=1)
        assert d.max() < 1.0
    assert math.isfinite(np.median(level_errors(map_points(maps, suite.scenes, 15.0), suite)))


def test_the_report_table_names_a_skipped_peer():
    metrics = {"r1": {"f1": 0.5}, "r2": {"f1": 0.6, "rmse": 0.7, "count_accuracy": 0.4}}
    report = {"models": {"net": {"suites": {"ac": metrics}}}, "suites": {"ac": {"n_images": 3}},
              "physics": {"ac": {"psf": {**metrics, "level_error_db_median": 1.25, "seconds": {"median": 0.5}}}},
              "acoustic_peers": {"ac": {"skipped": "acoular is not installed"}}}
    text = "\n".join(_point_spread_table(report))
    assert "| ac | network | 3 | 0.5000 | 0.6000 | 0.700 | 0.4000 |" in text
    assert "+ PSF family" in text and "1.25" in text and "skipped: acoular is not installed" in text
    assert "| + wave family |" not in text  # not measured in this report


def test_the_report_table_shows_a_spots_suite_with_both_refinements_and_no_peer():
    metrics = {"r1": {"f1": 0.5}, "r2": {"f1": 0.6, "rmse": 0.7, "count_accuracy": 0.4}}
    wave = {"r1": {"f1": 0.25}, "r2": {"f1": 0.3, "rmse": 0.8, "count_accuracy": 0.2}, "seconds": {"median": 2.5}}
    report = {"models": {"net": {"suites": {"sp": metrics}}}, "suites": {"sp": {"n_images": 4}},
              "physics": {"sp": {"psf": {**metrics, "seconds": {"median": 0.5}}, "wave": wave,
                                 "blind": {**metrics, "psf_chosen": 0.75, "seconds": {"median": 0.25}}}}}
    text = "\n".join(_point_spread_table(report))
    assert "|  | + wave family | 4 | 0.2500 | 0.3000 | 0.800 | 0.2000 |  | 2.50 |" in text
    assert "|  | + physics (family chosen: PSF on 75 %) | 4 | 0.5000 |" in text
    assert "acoular" not in text
