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
