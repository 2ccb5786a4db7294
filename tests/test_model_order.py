"""The count search's linear screen (heatmaploc.physics.model_order): the price of one
more source in the BIC's terms, and the matched-filter energy it is compared with."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmaploc.physics.model_order import addition_price, model_image, scored_candidates
from heatmaploc.physics.wavefit import fit_wave
from heatmaploc.physics.waveproblem import FitOptions, Hypothesis
from heatmaploc.simulate.scene import Scene, synthesize

WAVELENGTH = 11.0
SOURCES = np.array([[16.3, 18.6], [40.8, 35.1]])
STRENGTHS = np.array([0.9 * np.exp(0.4j), 0.6 * np.exp(-1.1j)])


def snapshot(sources=SOURCES, strengths=STRENGTHS, shape=(48, 52), noise=0.05, seed=0):
    k = 2 * np.pi / WAVELENGTH
    scene = Scene(sources, strengths, complex(k, 0.01 * k), "free", "snapshot", time_phase=0.3, source_size=0.9)
    clean = synthesize(scene, *shape)
    return clean + np.random.default_rng(seed).normal(0.0, noise, shape)


def fitted(image, xy, stride):
    return fit_wave(image, xy, Hypothesis("free", "snapshot", WAVELENGTH, 0.01, 0.9),
                    FitOptions(stride=stride, robust=False, max_nfev=30), weights=np.full(image.shape, 1 / 0.05))


@settings(max_examples=25, deadline=None)
@given(rss=st.floats(10.0, 1e6), n_values=st.integers(20, 100_000), stride=st.sampled_from([1, 2, 3]))
def test_the_price_is_the_energy_one_more_source_must_explain_for_the_bic_to_fall(rss, n_values, stride):
    fit = replace(fitted(snapshot(), SOURCES, 1), rss=rss, n_pixels=n_values)
    shape = (1, n_values * stride**2)  # the field has stride^2 values per fitted one
    price = addition_price(fit, np.zeros(shape))
    per_fitted_value = price / stride**2
    with_source = replace(fit, rss=rss - per_fitted_value, n_params=fit.n_params + 4)
    assert with_source.bic() == pytest.approx(fit.bic(), abs=1e-6 * abs(fit.bic()) + 1e-6)


def test_a_missed_source_is_far_above_the_price_and_noise_far_below():
    image = snapshot()
    weights = np.full(image.shape, 1 / 0.05)
    missed = fitted(image, SOURCES[:1], 2)  # the second source not in the fit
    (xy, energy), = scored_candidates(image - model_image(missed, image.shape), missed, 16, weights, count=1)
    assert np.linalg.norm(xy - SOURCES[1]) <= 1.5
    assert energy > 2 * addition_price(missed, image)  # the screen needs half the price
    complete = fitted(image, SOURCES, 2)  # both fitted: what is left is the noise
    (_, energy), = scored_candidates(image - model_image(complete, image.shape), complete, 16, weights, count=1)
    assert energy < 0.5 * addition_price(complete, image)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 30), st.floats(0, 30)), min_size=0, max_size=6),
       st.lists(st.tuples(st.floats(0, 30), st.floats(0, 30)), min_size=0, max_size=6))
def test_a_refined_point_inherits_the_score_of_the_network_point_it_is_paired_with_and_no_other(fit, network):
    """Scores go by the one-to-one pairing that combines positions: each network score
    is given at most once, a split's second half or an addition gets 0."""
    from heatmaploc.physics.model_order import pairs
    from heatmaploc.physics.refine import _inherited
    from heatmaploc.points import Points

    fit_xy, net_xy = np.array(fit, float).reshape(-1, 2), np.array(network, float).reshape(-1, 2)
    points = Points(net_xy, scores=0.1 + np.arange(len(net_xy)) / 10.0, labels=np.arange(len(net_xy)) + 1)
    scores, labels = _inherited(points, fit_xy, 3.0)
    rows, cols = pairs(fit_xy, net_xy, 3.0)
    expected = np.zeros(len(fit_xy))
    expected[rows] = points.scores[cols]
    np.testing.assert_array_equal(scores, expected)
    given_labels = labels[labels > 0]
    assert len(np.unique(given_labels)) == len(given_labels) == len(rows)  # no network point twice


def test_of_a_split_in_two_only_one_half_inherits_the_network_score():
    from heatmaploc.physics.refine import _inherited
    from heatmaploc.points import Points

    network = Points(np.array([[10.0, 10.0], [20.0, 10.0]]), scores=np.array([0.9, 0.7]))
    # network point 0 split in two: both halves are near it, only one stands for it
    fit_xy = np.array([[11.5, 10.0], [10.2, 10.0], [19.0, 10.0]])
    scores, _ = _inherited(network, fit_xy, 3.0)
    assert sorted(scores) == [0.0, 0.7, 0.9] and scores[2] == 0.7


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 25), st.integers(0, 25), st.floats(4.0, 60.0), st.integers(0, 2**31 - 1))
def test_the_pairing_by_groups_is_a_least_distance_assignment_of_the_most_pairs(m, n, side, seed):
    """pairs() solves the assignment per connected group of the within-reach graph; the
    dense assignment of all points at once (far pairs at a prohibitive cost) finds as
    many pairs with the same total distance."""
    from scipy.optimize import linear_sum_assignment

    from heatmaploc.physics.model_order import fit_reach, pairs

    rng = np.random.default_rng(seed)
    fit_xy, net_xy = rng.uniform(0, side, (m, 2)), rng.uniform(0, side, (n, 2))
    rows, cols = pairs(fit_xy, net_xy, 3.0)
    assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
    distance = np.linalg.norm(fit_xy[rows] - net_xy[cols], axis=1)
    assert np.all(distance <= fit_reach(3.0))
    expected = np.zeros(0)
    if m and n:
        dense = np.linalg.norm(fit_xy[:, None] - net_xy[None], axis=2)
        r, c = linear_sum_assignment(np.where(dense <= fit_reach(3.0), dense, 1e9))
        expected = dense[r, c][dense[r, c] <= fit_reach(3.0)]
    assert len(distance) == len(expected)
    assert abs(distance.sum() - expected.sum()) < 1e-9
