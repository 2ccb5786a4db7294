"""The spot-image simulator (preset ``spots``): photons where the PSF puts them,
reproducible images, a validated config, and benchmark suites built from it."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from heatmaploc.bench.suites import SuiteSpec, build_suite
from heatmaploc.simulate import get_preset, simulate_image
from heatmaploc.simulate.spots import SpotsConfig, SpotsScene, expected_photons
from heatmaploc.physics.psf import PSF

SMALL = replace(get_preset("spots"), height=24, width=24, count_range=(1, 3))


@pytest.mark.parametrize("shape", ["gaussian", "airy"])
def test_a_spot_puts_its_photons_around_its_position(shape):
    scene = SpotsScene(np.array([[20.3, 18.6]]), np.array([1000.0]), PSF(shape, 3.0), background=5.0, read_noise=1.0)
    image = expected_photons(scene, 40, 40)
    spot = image - 5.0
    # all photons in the image (the Airy rings beyond its reach are cut), centred on the position
    assert spot.sum() == pytest.approx(1000.0, rel=0.03 if shape == "airy" else 1e-3)
    ys, xs = np.mgrid[0:40, 0:40]
    centre = np.array([(spot * xs).sum(), (spot * ys).sum()]) / spot.sum()
    np.testing.assert_allclose(centre, [20.3, 18.6], atol=0.02)
    # the FWHM of the pixel-integrated spot is the PSF's, widened a little by the pixel
    row = spot[19]
    above = np.flatnonzero(row >= 0.5 * row.max())
    assert 2.0 <= above.size <= 4.0


def test_images_are_reproducible_and_their_truth_is_in_the_info():
    a, b = simulate_image(SMALL, 3, 5), simulate_image(SMALL, 3, 5)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.info["kind"] == "spots" and a.info["count"] == len(a.points) == len(a.info["photons"])
    assert max(a.info["levels_db"]) == 0.0
    assert not np.array_equal(a.image, simulate_image(SMALL, 3, 6).image)


def test_raw_images_are_noisy_photon_counts_on_the_background():
    cfg = replace(SMALL, count_range=(0, 0), renderings=("raw",), background_range=(100.0, 100.0),
                  read_noise_range=(0.0, 0.0))
    image = simulate_image(cfg, 1, 0).image
    assert image.dtype == np.float32
    # Poisson noise of 100 photons: mean 100, std 10
    assert abs(float(image.mean()) - 100.0) < 2.0 and abs(float(image.std()) - 10.0) < 1.5


def test_colormap_renderings_are_rgb():
    image = simulate_image(replace(SMALL, renderings=("colormap",)), 2, 0).image
    assert image.dtype == np.uint8 and image.shape == (24, 24, 3)


def test_the_config_is_validated_and_round_trips():
    assert SpotsConfig.from_dict(SMALL.to_dict()) == SMALL
    with pytest.raises(ValueError, match="shapes"):
        SpotsConfig(shapes=("disc",))
    with pytest.raises(ValueError, match="photons_range"):
        SpotsConfig(photons_range=(10.0, 1.0))
    with pytest.raises(ValueError, match="unknown spots simulator option"):
        SpotsConfig.from_dict({"kind": "spots", "wavelength": 3})
    with pytest.raises(ValueError, match="could not place"):
        simulate_image(replace(SMALL, count_range=(40, 40)), 0, 0)


def test_spots_suites_are_point_spread_suites_of_the_simulator_s_images():
    suite = build_suite(SuiteSpec("sp", preset="spots", seed=4, n=2, overrides={"height": 24, "width": 24}))
    assert suite.is_point_spread and not suite.is_acoustic
    for i, image in enumerate(suite.images):
        np.testing.assert_array_equal(image, simulate_image(replace(get_preset("spots"), height=24, width=24), 4, i).image)
    assert build_suite(SuiteSpec("ac", preset="acoustic", seed=1, n=1)).is_point_spread
    assert not build_suite(SuiteSpec("wave", n=1)).is_point_spread
