"""Complex-valued fields (issue 22 part 5): read, seen by the network as their amplitude,
fitted as complex data, and every refined source's strength and phase with their sigmas
through the API, the CSV and the JSON."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmaploc.cli import main
from heatmaploc.data.io import read_image, read_points_csv, write_points_csv
from heatmaploc.data.preprocess import to_unit_range
from heatmaploc.physics.refine import refine_physics
from heatmaploc.physics.crlb import WaveModel, crlb
from heatmaploc.physics.forward import wave_field
from heatmaploc.physics.kernels import wavenumber
from heatmaploc.physics.wavefit import fit_wave
from heatmaploc.physics.waveproblem import Hypothesis
from heatmaploc.points import Points

SOURCES = np.array([[14.3, 17.6], [41.8, 22.1], [27.4, 44.9]])
STRENGTHS = np.array([0.9 * np.exp(0.4j), 0.7 * np.exp(-2.0j), 0.8 * np.exp(1.3j)])
WAVELENGTH, DAMPING, SIZE = 11.0, 0.01, 0.9


def complex_field(shape=(56, 60), noise=0.02, seed=0):
    h, w = shape
    u = wave_field("free", SOURCES, STRENGTHS, np.arange(w), np.arange(h), wavenumber(WAVELENGTH, DAMPING), SIZE)
    rng = np.random.default_rng(seed)
    return u + 0.1 - 0.05j + noise * (rng.standard_normal(u.shape) + 1j * rng.standard_normal(u.shape))


def test_the_fit_of_complex_data_recovers_positions_strengths_and_phases_within_their_sigmas():
    noise = 0.02
    data = complex_field(noise=noise)
    start = SOURCES + np.random.default_rng(3).normal(0.0, 0.5, SOURCES.shape)
    fit = fit_wave(data, start, Hypothesis("free", "complex", 10.0, 0.0, 1.0), weights=np.full(data.shape, 1.0 / noise))
    assert fit.observable == "complex" and fit.n_pixels == 2 * data.size  # real and imaginary parts
    assert fit.residual_std == pytest.approx(1.0, abs=0.05)
    assert fit.offset == pytest.approx(0.1 - 0.05j, abs=0.01)
    assert fit.wavelength_px == pytest.approx(WAVELENGTH, rel=2e-3)
    assert np.all(np.abs(fit.xy - SOURCES) < 4 * fit.sigma[:, None])
    assert np.all(np.abs(np.abs(fit.strengths) - np.abs(STRENGTHS)) < 4 * fit.strength_sigma + 0.01)
    phase_error = np.angle(fit.strengths * np.conj(STRENGTHS))
    assert np.all(np.abs(phase_error) < 4 * fit.phase_sigma + 0.01)
    # both parts carry the position: the complex fit's sigma is below the snapshot's
    snapshot = fit_wave(data.real, start, Hypothesis("free", "snapshot", 10.0, 0.0, 1.0), weights=np.full(data.shape, 1.0 / noise))
    assert np.all(fit.sigma < snapshot.sigma)


def test_a_complex_field_cannot_be_fitted_as_a_real_observable():
    with pytest.raises(ValueError, match="complex observable"):
        fit_wave(complex_field(), SOURCES, Hypothesis("free", "snapshot", WAVELENGTH))


def test_crlb_of_a_complex_field_is_below_that_of_its_snapshot():
    k = wavenumber(WAVELENGTH, DAMPING)
    params = np.array([[30.2, 28.7, 1.0, 0.3]])
    snapshot = crlb(WaveModel("free", k, 0.0, SIZE, 56, 60), params, 0.05, with_amplitude=True)
    both = crlb(WaveModel("free", k, 0.0, SIZE, 56, 60, "complex"), params, 0.05, with_amplitude=True)
    assert snapshot.shape == both.shape == (1, 3)
    assert np.all(both < snapshot) and np.all(both > snapshot / 2)
    # a fit that estimates the globals too cannot beat the bound that knows them
    unknown = crlb(WaveModel("free", k, 0.0, SIZE, 56, 60, "complex"), params, 0.05, with_amplitude=True,
                   unknown_globals=True)
    assert np.all(unknown >= both * (1 - 1e-6)) and unknown[0, 2] > 1.2 * both[0, 2]


def test_blind_refinement_of_a_complex_image_reports_strength_and_phase():
    data = complex_field(noise=0.03)
    start = Points(SOURCES + np.random.default_rng(1).normal(0.0, 0.4, SOURCES.shape), sigma=np.full(3, 0.4))
    out = refine_physics(data, start)
    assert out.refined and out.physics["mode"] == "global" and out.physics["observable"] == "complex"
    order = np.argsort(out.xy[:, 0])
    truth = np.argsort(SOURCES[:, 0])
    assert np.abs(out.xy[order] - SOURCES[truth]).max() < 0.1
    assert np.all(out.strength_sigma > 0) and np.all(out.phase_sigma > 0)
    assert np.abs(out.strength[order] / np.abs(STRENGTHS[truth]) - 1).max() < 0.05
    assert np.abs(np.angle(np.exp(1j * (out.phase[order] - np.angle(STRENGTHS[truth]))))).max() < 0.05
    rows = out.to_list()
    assert {"strength", "strength_sigma", "phase", "phase_sigma"} <= set(rows[0])


def test_an_amplitude_map_reports_strength_but_no_phase():
    clean = complex_field(noise=0.0) - (0.1 - 0.05j)
    data = np.abs(clean) + np.random.default_rng(2).normal(0.0, 0.02, clean.shape)
    out = refine_physics(data, Points(SOURCES + 0.3, sigma=np.full(3, 0.4)))
    assert out.physics["observable"] == "amplitude"
    refined = np.isfinite(out.strength)
    assert refined.any() and np.all(np.isnan(out.phase)) and np.all(np.isnan(out.phase_sigma))


def test_known_observable_must_match_the_images_kind():
    with pytest.raises(ValueError, match="img: observable 'snapshot' given for a complex-valued image"):
        refine_physics(complex_field(), Points(SOURCES), {"observable": "snapshot"}, name="img")
    with pytest.raises(ValueError, match="img: observable 'complex' given for a real-valued image"):
        refine_physics(complex_field().real, Points(SOURCES), {"observable": "complex"}, name="img")


def test_complex_npy_and_real_imaginary_pair_read_alike(tmp_path):
    data = complex_field().astype(np.complex64)
    np.save(tmp_path / "c.npy", data)
    np.save(tmp_path / "pair.npy", np.stack([data.real, data.imag], axis=-1))
    a, b = read_image(tmp_path / "c.npy"), read_image(tmp_path / "pair.npy")
    assert np.iscomplexobj(a) and np.iscomplexobj(b) and a.shape == b.shape == data.shape
    np.testing.assert_allclose(a, b, rtol=1e-6)
    # the network sees the amplitude
    np.testing.assert_array_equal(to_unit_range(a, 1), to_unit_range(np.abs(a), 1))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1e6) | st.just(float("nan")), st.floats(-np.pi, np.pi),
                          st.floats(0.0, 10.0) | st.just(float("nan")), st.floats(0.0, 3.0)), min_size=0, max_size=5))
def test_strength_columns_round_trip_through_the_csv(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("csv") / "p.csv"
    n = len(rows)
    values = np.array(rows, dtype=np.float64).reshape(n, 4).T
    strength = (values[0], values[1], values[2], values[3])  # strength, phase, strength_sigma, phase_sigma
    xy = np.arange(2 * n, dtype=np.float64).reshape(n, 2)
    write_points_csv(path, [("a b.npy", xy, None, np.ones(n), np.full(n, 0.1), True, strength)])
    table = read_points_csv(path)
    assert table.strengths is not None and set(table.strengths) == {"strength", "phase", "strength_sigma", "phase_sigma"}
    for column, expected in zip(("strength", "phase", "strength_sigma", "phase_sigma"), strength):
        got = table.strengths[column].get("a b.npy", np.zeros(0))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-300, equal_nan=True)


def test_cli_predicts_a_complex_field_with_strength_columns(tmp_path, capsys):
    path = tmp_path / "field.npy"
    np.save(path, np.stack([complex_field().real, complex_field().imag], axis=-1).astype(np.float32))
    csv_path = tmp_path / "preds.csv"
    assert main(["predict", str(path), "--refine", "physics", "--tta", "none", "--workers", "1", "--json",
                 "--out", str(csv_path)]) == 0
    printed = json.loads(capsys.readouterr().out.split("predictions:")[0])[str(path)]
    assert printed["physics"]["observable"] == "complex"
    assert all(np.isfinite(r["strength"]) and np.isfinite(r["phase"]) for r in printed["points"])
    header = csv_path.read_text().splitlines()[0].split(",")
    assert header[header.index("sigma") + 1:header.index("sigma") + 3] == ["strength", "phase"]
    table = read_points_csv(csv_path)
    assert np.all(table.strengths["strength"]["field.npy"] > 0)
