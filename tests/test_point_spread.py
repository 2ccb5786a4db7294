"""The point-spread family of the physics refinement (power maps: PSF sum with powers)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmaploc.physics.known import validate_known
from heatmaploc.physics.psf import PSF, from_array
from heatmaploc.physics.psfrefine import combined_positions, refine_psf
from heatmaploc.physics.refine import refine_physics
from heatmaploc.points import Points

SHAPE = (40, 40)


def power_map(psf: PSF, xy, powers, noise: float, seed: int = 0, background: float = 0.01) -> np.ndarray:
    rows, cols = np.mgrid[0:SHAPE[0], 0:SHAPE[1]].astype(float)
    out = np.full(SHAPE, background)
    for (x, y), p in zip(xy, powers):
        out += p * psf(cols - x, rows - y)
    return out + np.random.default_rng(seed).normal(0.0, noise, SHAPE)


def matched(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.linalg.norm(found[:, None] - truth[None], axis=2).min(axis=0)


@pytest.mark.parametrize("shape", ["gaussian", "airy"])
def test_a_parametric_psf_is_recovered_from_the_map(shape):
    truth = np.array([[12.3, 14.6], [27.8, 25.1]])
    image = power_map(PSF(shape, 4.0), truth, [1.0, 0.4], 0.002)
    result = refine_psf(image, truth + [[0.6, -0.5], [-0.4, 0.7]], {"scale": "linear"})
    fit = result.fit
    assert fit.count == 2 and np.all(matched(fit.xy, truth) < 0.05)
    assert fit.psf.width == pytest.approx(4.0, rel=0.05)
    order = np.argsort(-fit.powers)
    assert fit.powers[order] == pytest.approx([1.0, 0.4], rel=0.03)


def test_a_faint_source_in_a_strong_ones_sidelobe_is_added():
    psf = PSF("airy", 4.0)
    truth = np.array([[20.2, 19.7], [20.2 + 1.6 * 4.0, 19.7]])  # on the first sidelobe ring, 15 dB down
    image = power_map(psf, truth, [1.0, 10 ** -1.5], 0.001)
    result = refine_psf(image, truth[:1], {"scale": "linear"})
    assert result.fit.count == 2 and result.added == 1
    assert np.all(matched(result.fit.xy, truth) < 0.3)
    assert sorted(result.levels_db)[0] == pytest.approx(-15.0, abs=1.0)


def test_an_addition_needs_a_support_candidate_when_candidates_are_given():
    psf = PSF("airy", 4.0)
    truth = np.array([[20.2, 19.7], [20.2 + 1.6 * 4.0, 19.7]])
    image = power_map(psf, truth, [1.0, 10 ** -1.5], 0.001)
    elsewhere = np.array([[5.0, 35.0]])  # a heatmap peak far from the faint source
    blocked = refine_psf(image, truth[:1], {"scale": "linear"}, support=np.vstack([truth[:1], elsewhere]))
    assert blocked.fit.count == 1 and blocked.added == 0
    near = refine_psf(image, truth[:1], {"scale": "linear"}, support=truth + [[0.0, 0.0], [0.8, -0.6]])
    assert near.fit.count == 2 and np.all(matched(near.fit.xy, truth) < 0.3)


def test_no_source_is_added_on_noise_and_a_point_in_empty_space_is_removed():
    truth = np.array([[15.0, 22.0]])
    image = power_map(PSF("gaussian", 5.0), truth, [1.0], 0.01, seed=3)
    kept = refine_psf(image, truth, {"scale": "linear"})
    assert kept.fit.count == 1 and kept.added == 0
    spurious = refine_psf(image, np.vstack([truth, [[32.0, 8.0]]]), {"scale": "linear"})
    assert spurious.fit.count == 1 and spurious.removed == 1


def test_powers_lie_within_their_sigmas():
    truth = np.array([[10.4, 11.2], [29.1, 28.3], [10.0, 30.0]])
    powers = np.array([1.0, 0.5, 0.25])
    errors = []
    for seed in range(6):
        image = power_map(PSF("gaussian", 4.0), truth, powers, 0.01, seed=seed)
        fit = refine_psf(image, truth, {"scale": "linear"}).fit
        order = np.argmin(np.linalg.norm(fit.xy[:, None] - truth[None], axis=2), axis=0)
        errors.extend((fit.powers[order] - powers) / fit.power_sigma[order])
    assert np.mean(np.abs(errors) <= 2.0) >= 0.8


def test_a_raw_db_map_is_fitted_in_linear_power():
    truth = np.array([[14.2, 13.7], [26.5, 27.1]])
    power = power_map(PSF("gaussian", 4.0), truth, [1.0, 0.1], 0.0005, background=0.002)
    db = 10 * np.log10(np.maximum(power, 1e-3) / power.max())
    points = Points(truth + 0.4, np.ones(2), np.zeros(2, np.int64))
    refined = refine_physics(db, points, {"family": "psf"})
    assert refined.physics["scale"] == "db" and refined.count == 2
    assert np.all(matched(refined.xy, truth) < 0.1)
    assert sorted(refined.physics["levels_db"]) == pytest.approx([-10.0, 0.0], abs=0.5)
    assert np.all(np.isnan(refined.phase)) and np.all(refined.strength > 0)


def test_a_given_psf_is_used_and_bad_ones_are_one_clear_error(tmp_path):
    psf = PSF("airy", 5.0)
    grid = np.arange(-10, 11, dtype=float)
    array = psf(*np.meshgrid(grid, grid)) * 3.0
    given = from_array(array)
    assert given.shape == "template" and given.width == pytest.approx(5.0, rel=0.1)
    truth = np.array([[19.3, 18.6]])
    image = power_map(psf, truth, [1.0], 0.002)
    np.save(tmp_path / "psf.npy", array)
    known = validate_known({"family": "psf", "psf": str(tmp_path / "psf.npy"), "scale": "linear"})
    fit = refine_psf(image, truth + 0.5, known).fit
    assert fit.psf.shape == "template" and np.all(matched(fit.xy, truth) < 0.05)
    with pytest.raises(ValueError, match="psf=.*cannot read"):
        validate_known({"family": "psf", "psf": str(tmp_path / "missing.npy")})
    with pytest.raises(ValueError, match="give family=psf"):
        validate_known({"scale": "db"})
    with pytest.raises(ValueError, match="unknown family"):
        validate_known({"family": "spots"})


def test_the_cli_refines_a_simulated_beamforming_map(tmp_path):
    import subprocess
    import sys
    from dataclasses import replace as dc_replace

    from heatmaploc.simulate import get_preset, write_dataset

    cfg = dc_replace(get_preset("acoustic"), height=32, width=32, count_range=(2, 2), renderings=("raw",),
                     scales=("linear",), mainlobe_px_range=(3.0, 4.0), mic_count_range=(32, 48))
    out = write_dataset(cfg, 1, tmp_path / "maps", seed=11, workers=1, progress=False)
    image = next((out / "images").iterdir())
    done = subprocess.run([sys.executable, "-m", "heatmaploc", "predict", str(image), "--refine", "physics",
                           "--known", "family=psf", "--tta", "none", "--out", str(tmp_path / "p.csv")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "point-spread fit: linear map" in done.stdout
    header = (tmp_path / "p.csv").read_text().splitlines()[0]
    assert "strength" in header


def test_a_template_without_a_positive_centre_falls_back_to_the_parametric_psf():
    from heatmaploc.physics.psf import symmetric_template

    fallback = PSF("gaussian", 3.0)
    values = -np.ones((5, 5))
    assert symmetric_template(values, np.ones((5, 5), bool), fallback) is fallback


def test_cached_design_columns_are_the_computed_ones_and_the_cache_stays_small():
    from collections import OrderedDict

    from heatmaploc.physics.psffit import design

    psf, xy = PSF("airy", 3.0), np.array([[5.2, 6.1], [9.7, 3.3], [2.0, 8.8]])
    cache = OrderedDict()
    first = design(psf, xy, (12, 14), cache)
    for j in range(3):  # one source moved at a time, as a finite-difference Jacobian does
        moved = xy.copy()
        moved[j, 0] += 1e-4
        np.testing.assert_array_equal(design(psf, moved, (12, 14), cache), design(psf, moved, (12, 14)))
        assert len(cache) <= 2 * len(xy) + 2
    np.testing.assert_array_equal(design(psf, xy, (12, 14), cache), first)


@pytest.mark.parametrize("shape", ["gaussian", "airy", "sinc2", "template"])
def test_a_psf_gradient_is_its_derivative(shape):
    psf = PSF(shape, 3.3) if shape != "template" else from_array(PSF("airy", 3.3)(*np.mgrid[-9:10, -9:10][::-1].astype(float)))
    rng = np.random.default_rng(1)
    dx, dy = rng.uniform(-7, 7, 300), rng.uniform(-7, 7, 300)
    dx[:3], dy[:3] = [0.0, 1e-6, 0.3], [0.0, 0.0, 1e-6]  # the centre and next to it
    gx, gy = psf.gradient(dx, dy)
    h = 1e-5
    np.testing.assert_allclose(gx, (psf(dx + h, dy) - psf(dx - h, dy)) / (2 * h), atol=1e-6)
    np.testing.assert_allclose(gy, (psf(dx, dy + h) - psf(dx, dy - h)) / (2 * h), atol=1e-6)


@pytest.mark.parametrize("scale, noise", [("linear", 0.0), ("linear", 0.01), ("db", 0.0), ("db", 0.3)])
def test_the_reduced_jacobian_is_the_derivative_of_the_solved_residual(scale, noise):
    """The residual's derivative with the powers and background solved again as the fit
    solves them (central differences), noisy or not, away from the truth: a linear map's
    variable projection (Golub-Pereyra; Kaufman's approximation alone misses the term in
    the residual), and a dB map's, whose powers are solved in power in two passes."""
    from heatmaploc.physics import psffit

    psf, truth = PSF("airy", 4.0), np.array([[12.3, 14.6], [27.8, 25.1]])
    power = power_map(psf, truth, [1.0, 0.3], 0.0 if scale == "db" else noise, background=0.02)
    if scale == "db":
        values = 10.0 * np.log10(power) + np.random.default_rng(3).normal(0.0, noise, SHAPE)
        data = psffit.Data(values, "db", noise=np.full(SHAPE, 0.5))
    else:
        data = psffit.Data(power, "linear", noise=np.full(SHAPE, 0.01))
    theta = np.concatenate([(truth + [[0.2, -0.1], [-0.1, 0.15]]).ravel(), [4.1]])

    def solved(theta):
        p = PSF("airy", theta[4])
        cols = psffit.design(p, theta[:4].reshape(2, 2), SHAPE)
        first = psffit.solve_linear(data, cols)
        final = psffit.solve_linear(data, cols, first[2]) if scale == "db" else first
        return p, cols, first, final

    def residual(theta):
        return (psffit.residual_of(data, solved(theta)[3][2]) / data.noise).ravel()

    at_truth = np.concatenate([truth.ravel(), [4.0]])
    assert (np.abs(residual(at_truth)).max() < 1e-8) == (noise == 0)  # the solve itself is exact
    p, cols, first, (powers, background, fitted) = solved(theta)
    assert np.abs(residual(theta)).max() > 0.1  # away from the fit: the residual's own terms count
    analytic = psffit.reduced_jacobian(data, p, theta[:4].reshape(2, 2), cols, powers, background, fitted, True,
                                       first if scale == "db" else None)
    h = 1e-6
    numeric = np.stack([(residual(theta + h * e) - residual(theta - h * e)) / (2 * h) for e in np.eye(5)], axis=1)
    np.testing.assert_allclose(analytic, numeric, atol=1e-5 * np.abs(numeric).max())


def test_an_addition_within_one_fwhm_of_a_source_is_not_taken():
    psf = PSF("gaussian", 4.0)
    pair = np.array([[18.0, 20.0], [18.0 + 0.7 * 4.0, 20.0]])  # two equal sources 0.7 FWHM apart
    image = power_map(psf, pair, [1.0, 1.0], 0.001)
    result = refine_psf(image, pair.mean(axis=0, keepdims=True), {"scale": "linear"})
    assert result.fit.count == 1 and result.added == 0
    apart = pair + [[0.0, 0.0], [1.2 * 4.0, 0.0]]  # 1.9 FWHM apart: resolved, the second is added
    result = refine_psf(power_map(psf, apart, [1.0, 1.0], 0.001), apart[:1], {"scale": "linear"})
    assert result.fit.count == 2 and result.added == 1 and np.all(matched(result.fit.xy, apart) < 0.1)


@settings(max_examples=60, deadline=None)
@given(st.floats(-2.0, 2.0), st.floats(-2.0, 2.0), st.floats(0.01, 3.0), st.floats(0.01, 3.0))
def test_a_fitted_position_and_its_start_combine_by_their_sigmas(dx, dy, fit_sigma, start_sigma):
    fit_xy, start = np.array([[10.0, 12.0], [30.0, 5.0]]), np.array([[10.0 + dx, 12.0 + dy]])
    xy, sigma = combined_positions(fit_xy, np.array([fit_sigma, 0.5]), start, np.array([start_sigma]), 3.0)
    share = fit_sigma**2 / (fit_sigma**2 + start_sigma**2)  # the start's weight
    assert xy[0] == pytest.approx(fit_xy[0] + share * (start[0] - fit_xy[0]), abs=1e-9)
    assert sigma[0] <= min(fit_sigma, start_sigma) + 1e-12
    assert sigma[0] == pytest.approx((fit_sigma**-2 + start_sigma**-2) ** -0.5)
    assert np.array_equal(xy[1], fit_xy[1]) and sigma[1] == 0.5  # unpaired: the fit's
    unknown, unknown_sigma = combined_positions(fit_xy, np.array([fit_sigma, 0.5]), start, np.array([np.nan]), 3.0)
    assert np.array_equal(unknown, fit_xy) and unknown_sigma[0] == fit_sigma


def test_the_refined_points_of_a_map_weigh_the_fit_against_the_network_by_their_sigmas():
    truth = np.array([[14.2, 13.7], [26.5, 27.1]])
    image = power_map(PSF("gaussian", 4.0), truth, [1.0, 0.5], 0.002)
    start = truth + [[0.5, -0.4], [-0.3, 0.6]]
    sure = refine_physics(image, Points(start, np.ones(2), np.zeros(2, np.int64), sigma=np.full(2, 1e-5)),
                          {"family": "psf", "scale": "linear"})
    assert np.allclose(sure.xy, start, atol=1e-3) and np.all(sure.sigma <= 1e-5)
    vague = refine_physics(image, Points(start, np.ones(2), np.zeros(2, np.int64), sigma=np.full(2, 100.0)),
                           {"family": "psf", "scale": "linear"})
    assert np.all(matched(vague.xy, truth) < 0.05)
