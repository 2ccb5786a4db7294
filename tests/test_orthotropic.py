"""Orthotropic media (issue 22 part 1): the anisotropy metric, its fit, and the blind
refinement's choice of it by BIC."""
import numpy as np
import pytest

from heatmaploc.physics.refine import refine_physics
from heatmaploc.physics.forward import anisotropy_metric, observe, radial_fields
from heatmaploc.physics.kernels import wavenumber
from heatmaploc.physics.wavefit import fit_wave
from heatmaploc.physics.waveproblem import Hypothesis
from heatmaploc.points import Points

TRUTH = np.array([[15.4, 18.3], [36.7, 30.2]])
STRENGTHS = np.array([1.0, 0.7j])
RATIO, ANGLE, WAVELENGTH = 1.3, 0.6, 10.0


def orthotropic_field(kernel="free", observable="snapshot", shape=(48, 52), snr_db=30.0, seed=0):
    h, w = shape
    g = radial_fields(kernel, TRUTH, np.arange(w), np.arange(h), wavenumber(WAVELENGTH, 0.02), 0.8, table_step=None,
                      metric=anisotropy_metric(RATIO, ANGLE))[0]
    clean = observe((STRENGTHS @ g).reshape(h, w), observable, 0.4)
    noise = clean.std() / 10 ** (snr_db / 20)
    return clean + np.random.default_rng(seed).normal(0.0, noise, clean.shape), noise


def test_the_metric_maps_the_axis_to_the_wavelength_and_across_to_ratio_times_it():
    m = anisotropy_metric(RATIO, ANGLE)
    along = np.array([np.cos(ANGLE), np.sin(ANGLE)])
    across = np.array([-np.sin(ANGLE), np.cos(ANGLE)])
    assert np.linalg.norm(m @ along) == pytest.approx(1.0)
    assert np.linalg.norm(m @ across) == pytest.approx(1.0 / RATIO)
    g0 = radial_fields("free", TRUTH, np.arange(8), np.arange(6), 0.5, 1.0, table_step=None)
    g1 = radial_fields("free", TRUTH, np.arange(8), np.arange(6), 0.5, 1.0, table_step=None,
                       metric=anisotropy_metric(1.0, 0.3))
    np.testing.assert_allclose(g1[0], g0[0], rtol=1e-12)  # ratio 1 is isotropic at any angle


@pytest.mark.parametrize("observable", ["snapshot", "amplitude"])
def test_fit_recovers_the_ratio_and_the_axis(observable):
    field, noise = orthotropic_field(observable=observable)
    fit = fit_wave(field, TRUTH + 0.4, Hypothesis("free", observable, 10.4, 0.01, 1.0, (1.2, 0.3)),
                   weights=np.full(field.shape, 1 / noise))
    assert fit.anisotropy[0] == pytest.approx(RATIO, abs=0.01)
    assert fit.anisotropy[1] == pytest.approx(ANGLE, abs=0.02)
    assert fit.wavelength_px == pytest.approx(WAVELENGTH, rel=0.01)
    assert np.abs(fit.xy - TRUTH).max() < 0.05 and fit.residual_std < 1.1
    isotropic = fit_wave(field, TRUTH + 0.4, Hypothesis("free", observable, 10.4, 0.01, 1.0),
                         weights=np.full(field.shape, 1 / noise))
    assert isotropic.residual_std > 2.0 and fit.bic() < isotropic.bic()


def test_blind_refinement_chooses_the_orthotropic_model_where_the_isotropic_one_fails():
    field, _ = orthotropic_field(snr_db=25.0)
    out = refine_physics(field, Points(TRUTH + np.array([[0.4, -0.3], [-0.2, 0.5]]), sigma=np.full(2, 0.4)))
    physics = out.physics
    assert physics["mode"] == "global" and physics["accepted"], physics
    assert physics["anisotropy_ratio"] == pytest.approx(RATIO, abs=0.03)
    assert np.angle(np.exp(2j * (physics["anisotropy_angle"] - ANGLE))) == pytest.approx(0.0, abs=0.06)
    order = np.argsort(out.xy[:, 0])
    assert out.count == 2 and np.abs(out.xy[order] - TRUTH).max() < 0.1


def test_an_isotropic_field_stays_isotropic():
    h, w = 48, 52
    g = radial_fields("free", TRUTH, np.arange(w), np.arange(h), wavenumber(WAVELENGTH, 0.02), 0.8, table_step=None)[0]
    clean = observe((STRENGTHS @ g).reshape(h, w), "snapshot", 0.4)
    field = clean + np.random.default_rng(1).normal(0.0, clean.std() / 10 ** 1.5, clean.shape)
    out = refine_physics(field, Points(TRUTH + 0.3, sigma=np.full(2, 0.4)))
    assert out.physics["accepted"] and out.physics["anisotropy_ratio"] is None
