"""The regular-field test of a point (heatmaploc.physics.regularfield): a disc that
only plane waves reach needs no source; a source's disc does, whatever else arrives."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmaploc.physics.kernels import wavenumber
from heatmaploc.physics.local import _unneeded, refine_locally
from heatmaploc.physics.regularfield import source_evidence
from heatmaploc.physics.wavefit import WaveFit
from heatmaploc.physics.waveproblem import Hypothesis
from heatmaploc.simulate.scene import Scene, synthesize

WAVELENGTH = 10.0
SOURCE = np.array([[24.4, 22.7]])


def _like(observable: str) -> WaveFit:
    """The wave model of the place (what a window's fit would hand over)."""
    return WaveFit("free", observable, np.zeros((0, 2)), np.zeros(0, np.complex128), 0.0, 0.9, WAVELENGTH, 0.0,
                   0.0, 0, 0, np.zeros((0, 2, 2)), True)


def _diffuse(shape, seed: int, count: int = 12, amplitude: float = 0.4) -> np.ndarray:
    """``(H, W)`` complex regular field: ``count`` plane waves of random directions and
    phases (what reflections of a reverberant plate send through the view)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    k = 2 * np.pi / WAVELENGTH
    out = np.zeros(shape, np.complex128)
    for angle, phase in zip(rng.uniform(0, 2 * np.pi, count), rng.uniform(0, 2 * np.pi, count)):
        out += amplitude * np.exp(1j * (k * (xx * np.cos(angle) + yy * np.sin(angle)) + phase))
    return out


def _source(shape, strength=1.0 + 0.3j) -> np.ndarray:
    scene = Scene(SOURCE, np.array([strength]), wavenumber(WAVELENGTH, 0.0), "free", "complex", time_phase=0.0,
                  source_size=0.9)
    return synthesize(scene, *shape)


def _observe(u: np.ndarray, observable: str, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if observable == "complex":
        return u + noise * (rng.normal(size=u.shape) + 1j * rng.normal(size=u.shape))
    values = np.abs(u) if observable == "amplitude" else u.real
    return values + noise * rng.normal(size=u.shape)


@pytest.mark.parametrize("observable", ["snapshot", "amplitude", "complex"])
def test_a_source_is_needed_where_it_is_and_nowhere_in_a_field_of_plane_waves(observable):
    shape = (48, 50)
    diffuse = _diffuse(shape, seed=4)
    with_source = _observe(_source(shape) + diffuse, observable, 0.01, seed=5)
    weights = np.full(shape, 100.0)
    assert source_evidence(with_source, weights, SOURCE[0] + [0.5, -0.4], _like(observable)).gain > 50.0
    regular = _observe(diffuse, observable, 0.01, seed=6)
    for point in ([24.4, 22.7], [12.3, 30.2], [35.0, 14.6]):
        evidence = source_evidence(regular, weights, np.array(point), _like(observable))
        assert evidence.gain <= 0.0
        assert evidence.residual_ratio < 1.1  # the regular field alone is down to the noise


def test_a_point_beside_a_real_source_is_needed_and_the_source_is_not_explained_away():
    # no other point is assumed in a disc: a false point 4 px from a real source stands
    # in for it (kept), and the source's own point is needed
    shape = (48, 50)
    field = _observe(_source(shape) + _diffuse(shape, seed=7), "snapshot", 0.01, seed=8)
    weights = np.full(shape, 100.0)
    assert source_evidence(field, weights, SOURCE[0] + [4.0, 0.0], _like("snapshot")).gain > 0.0
    assert source_evidence(field, weights, SOURCE[0] + [0.3, 0.2], _like("snapshot")).gain > 50.0


def test_a_disc_with_too_few_pixels_is_not_decided():
    field = np.random.default_rng(0).normal(size=(9, 9))
    assert source_evidence(field, np.ones((9, 9)), np.array([0.0, 0.0]), _like("snapshot")) is None


@settings(max_examples=8, deadline=None)
@given(scale=st.floats(0.05, 20.0), offset=st.floats(-5.0, 5.0), seed=st.integers(0, 1000))
def test_the_evidence_does_not_depend_on_the_fields_units(scale, offset, seed):
    shape = (40, 44)
    field = _observe(_source(shape) + _diffuse(shape, seed=seed), "snapshot", 0.02, seed=seed + 1)
    point = SOURCE[0] + [0.3, 0.3]
    base = source_evidence(field, np.full(shape, 50.0), point, _like("snapshot"))
    scaled = source_evidence(scale * field + offset, np.full(shape, 50.0 / scale), point, _like("snapshot"))
    assert scaled.gain == pytest.approx(base.gain, rel=1e-6, abs=1e-6)
    assert scaled.residual_ratio == pytest.approx(base.residual_ratio, rel=1e-6)


def test_a_reverberant_window_keeps_its_source_and_loses_a_point_on_a_standing_wave_crest():
    # plane waves from every side (a plate's reflections) that no window model of two
    # plane waves explains: the network's point on a crest far from the source is
    # removed by the regular-field test, the source's point stays
    shape = (56, 60)
    diffuse = _diffuse(shape, seed=11, count=16, amplitude=0.35)
    noise = 0.01
    field = _observe(_source(shape) + diffuse, "snapshot", noise, seed=12)
    crest = np.unravel_index(np.argmax(np.abs(diffuse[5:20, 38:55].real)), (15, 17))
    false_point = np.array([38.0 + crest[1], 5.0 + crest[0]])
    network = np.vstack([SOURCE[0] + [0.4, -0.3], false_point])
    sources = refine_locally(field, np.full(shape, 1.0 / noise), network, np.array([0.5, 0.5]),
                             Hypothesis("free", "snapshot", WAVELENGTH, 0.0, 0.9))
    found = np.array([s.xy for s in sources]).reshape(-1, 2)
    assert len(found) == 1 and np.linalg.norm(found[0] - SOURCE[0]) < 1.0


def test_a_disc_the_wave_model_does_not_hold_in_decides_nothing():
    # plane waves of twice the model's wavelength: no regular field of the model's
    # wavenumber explains the disc, so whatever the BIC says, the point is not removed
    shape = (48, 50)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    k = 2 * np.pi / (2.0 * WAVELENGTH)
    field = _observe(np.exp(1j * k * xx) + 0.7 * np.exp(1j * (k * yy + 1.0)), "snapshot", 0.01, seed=3)
    weights = np.full(shape, 100.0)
    point = np.array([[24.0, 22.0]])
    evidence = source_evidence(field, weights, point[0], _like("snapshot"))
    assert evidence.residual_ratio > 2.0
    assert _unneeded(field, weights, point, [0], _like("snapshot")) == set()
    # the same point in a field the model holds in is removed
    regular = _observe(_diffuse(shape, seed=4), "snapshot", 0.01, seed=6)
    assert _unneeded(regular, weights, point, [0], _like("snapshot")) == {0}
