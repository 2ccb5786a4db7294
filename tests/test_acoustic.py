"""The acoustic-camera simulator (preset ``acoustic``) and its beamforming physics."""
import json
import math
from dataclasses import replace

import numpy as np
import pytest

from heatmaploc.physics import beamform
from heatmaploc.simulate import get_preset, simulate_image, write_dataset
from heatmaploc.simulate.acoustic import AcousticConfig, to_db

SMALL = replace(get_preset("acoustic"), height=24, width=24, mic_count_range=(16, 24), mainlobe_px_range=(3.0, 4.0),
                count_range=(1, 2))


def dirichlet(phi: np.ndarray, n: int) -> np.ndarray:
    """``sin(n phi / 2) / (n sin(phi / 2))``, 1 at ``phi = 0``."""
    den = n * np.sin(phi / 2)
    return np.where(np.abs(den) < 1e-12, 1.0, np.sin(n * phi / 2) / np.where(np.abs(den) < 1e-12, 1.0, den))


def test_grid_array_map_is_the_analytic_array_factor_in_the_far_field():
    mics = beamform.array_positions("grid", 25, 4.0)
    n = 5
    spacing = float(np.ptp(mics[:, 0])) / (n - 1)
    distance = 5000.0
    source = np.array([[0.0, 0.0, distance]])
    csm = beamform.cross_spectral_matrix(mics, source, np.array([2.0]), 0.0, None)
    pixel = 0.1 * distance / (n * spacing)  # ten pixels per lobe of the array factor
    grid = beamform.focus_grid(41, 41, pixel, distance)
    power = beamform.beamform(csm, mics, grid).reshape(41, 41)
    u = grid[:, :2] / np.linalg.norm(grid, axis=1)[:, None]  # direction sines
    phi = 2 * math.pi * spacing * u
    analytic = 2.0 * (dirichlet(phi[:, 0], n) * dirichlet(phi[:, 1], n)).reshape(41, 41) ** 2
    assert np.max(np.abs(power - analytic)) < 2e-3 * 2.0
    assert power.max() == pytest.approx(2.0, rel=1e-9)


@pytest.mark.parametrize("geometry", beamform.GEOMETRIES)
def test_a_lone_source_peaks_at_its_power_near_field_included(geometry):
    mics = beamform.array_positions(geometry, 32, 6.0, np.random.default_rng(1))
    source = np.array([[0.7, -0.4, 3.0]])
    csm = beamform.cross_spectral_matrix(mics, source, np.array([0.25]), 0.0, None)
    assert beamform.beamform(csm, mics, source)[0] == pytest.approx(0.25, rel=1e-9)
    nearby = source + np.array([[0.3, 0.0, 0.0]])
    assert beamform.beamform(csm, mics, nearby)[0] < 0.25


def test_an_estimated_matrix_scatters_the_map_by_one_over_root_snapshots():
    mics = beamform.array_positions("spiral", 48, 8.0)
    source = np.array([[0.0, 0.0, 8.0]])
    values = [beamform.beamform(beamform.cross_spectral_matrix(mics, source, np.array([1.0]), 0.0, 100,
                                                               np.random.default_rng(s)), mics, source)[0]
              for s in range(200)]
    assert np.mean(values) == pytest.approx(1.0, abs=0.03)
    assert np.std(values) == pytest.approx(0.1, rel=0.2)  # a Gamma(K) quadratic form: std 1 / sqrt(K)


def test_removing_the_diagonal_removes_the_microphone_noise_floor():
    mics = beamform.array_positions("spiral", 32, 6.0)
    far = beamform.focus_grid(8, 8, 0.5, 6.0)
    csm = beamform.cross_spectral_matrix(mics, np.zeros((0, 3)), np.zeros(0), 1.0, None)
    gain = np.sum(np.abs(beamform.transfer(mics, far)) ** 2, axis=1)  # M in the far field
    assert np.allclose(beamform.beamform(csm, mics, far), 1.0 / gain, rtol=1e-9)  # true-level steering
    assert np.allclose(beamform.beamform(csm, mics, far, remove_diagonal=True), 0.0, atol=1e-12)


def test_preset_is_deterministic_and_reports_powers_and_levels(tmp_path):
    a, b = simulate_image(SMALL, 3, 2), simulate_image(SMALL, 3, 2)
    assert np.array_equal(a.image, b.image) and a.info == b.info
    assert len(a.info["powers"]) == len(a.points) == a.info["count"]
    assert max(a.info["levels_db"]) == 0.0
    out = write_dataset(SMALL, 4, tmp_path / "ac", seed=5, workers=1, progress=False)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["config"]["kind"] == "acoustic" and len(meta["images"]) == 4


def test_db_maps_are_relative_and_floored():
    cfg = replace(SMALL, scales=("db",), renderings=("raw",), dynamic_range_db_range=(20.0, 20.0))
    sim = simulate_image(cfg, 1, 0)
    assert sim.image.max() == pytest.approx(0.0, abs=1e-5) and sim.image.min() >= -20.0 - 1e-4
    power = np.array([[1.0, 0.1], [0.0, -1.0]])
    assert np.allclose(to_db(power, 20.0), [[0.0, -10.0], [-20.0, -20.0]])


def test_bad_acoustic_options_are_one_clear_error():
    with pytest.raises(ValueError, match="geometries"):
        AcousticConfig(geometries=("hexagon",))
    with pytest.raises(ValueError, match="unknown acoustic simulator option"):
        AcousticConfig.from_dict({"kind": "acoustic", "wavelength": 3})
