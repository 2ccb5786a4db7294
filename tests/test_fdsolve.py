"""The finite-difference solver against the analytic kernels, and the simulator's
finite-difference media."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmaploc.physics import kernels
from heatmaploc.physics.fdsolve import SIDES, Medium, _sources, make_grid, solve_field
from heatmaploc.physics.forward import wave_field
from heatmaploc.simulate import get_preset, simulate_image

H, W = 48, 56
SOURCES = np.array([[20.3, 22.6], [38.8, 14.2]])
STRENGTHS = np.array([1.0, 0.7 * np.exp(1.0j)])
# Stated tolerance: relative L2 error of the complex field over the pixels more than 3 px
# from every source, with at least 10 nodes per wavelength.  The second-order stencil's
# remaining dispersion and the absorbing layers' reflections keep it a few per cent.
TOLERANCE = 0.05
# An edge adds a mirror-image source whose longer path gathers more of that dispersion.
EDGE_TOLERANCE = 0.08


def relative_error(u: np.ndarray, ref: np.ndarray, points: np.ndarray = SOURCES) -> float:
    yy, xx = np.mgrid[:H, :W]
    far = np.min([np.hypot(xx - x, yy - y) for x, y in points], axis=0) > 3.0
    return float(np.linalg.norm((u - ref)[far]) / np.linalg.norm(ref[far]))


def analytic(kernel: str, k: complex, points: np.ndarray = SOURCES, strengths: np.ndarray = STRENGTHS) -> np.ndarray:
    return wave_field(kernel, points, strengths, np.arange(W, dtype=float), np.arange(H, dtype=float), k, 0.0)


@pytest.mark.parametrize("kernel", ["free", "plate"])
@pytest.mark.parametrize("wavelength", [6.0, 13.0])
def test_a_homogeneous_medium_gives_the_analytic_kernel(kernel, wavelength):
    k = 2 * math.pi / wavelength * (1 + 0.01j)
    u = solve_field(Medium(k, kernel), SOURCES, STRENGTHS, H, W)
    assert relative_error(u, analytic(kernel, k)) < TOLERANCE


def test_an_orthotropic_medium_is_the_kernel_at_the_stretched_distance():
    k, ratio, angle = 2 * math.pi / 9.0 * (1 + 0.01j), 1.4, 0.6
    u = solve_field(Medium(k, "free", ratio=ratio, angle=angle), SOURCES[:1], STRENGTHS[:1], H, W)
    yy, xx = np.mgrid[:H, :W]
    dx, dy = xx - SOURCES[0, 0], yy - SOURCES[0, 1]
    along = dx * math.cos(angle) + dy * math.sin(angle)
    across = -dx * math.sin(angle) + dy * math.cos(angle)
    stretched = np.hypot(along, across / ratio)
    ref = kernels.free_field(np.maximum(stretched, 1e-9), k) / ratio
    assert relative_error(u, ref, SOURCES[:1]) < TOLERANCE


@pytest.mark.parametrize("condition, sign", [("dirichlet", -1.0), ("neumann", 1.0)])
def test_a_reflecting_edge_is_its_mirror_image_source(condition, sign):
    k, gap = 2 * math.pi / 10.0 * (1 + 0.01j), 4.0
    medium = Medium(k, "free", edges={**dict.fromkeys(SIDES, "absorb"), "left": condition},
                    distances={**dict.fromkeys(SIDES, 8.0), "left": gap})
    u = solve_field(medium, SOURCES[:1], STRENGTHS[:1], H, W)
    # where the grid put the edge: on a node (dirichlet) or half a node beyond the last
    grid = make_grid(medium, H, W)
    edge = grid.x0 - (1.0 if condition == "dirichlet" else 0.5) / grid.refine
    mirrored = SOURCES[:1] * [-1, 1] + [2 * edge, 0]
    ref = analytic("free", k, np.vstack([SOURCES[:1], mirrored]), np.array([1.0, sign]))
    assert relative_error(u, ref, SOURCES[:1]) < EDGE_TOLERANCE
    # without the edge the field differs by much more than the tolerance
    assert relative_error(analytic("free", k, SOURCES[:1], STRENGTHS[:1]), ref, SOURCES[:1]) > 4 * EDGE_TOLERANCE


def test_a_slower_medium_shortens_the_wavelength():
    k = 2 * math.pi / 12.0 * (1 + 0.01j)
    u = solve_field(Medium(k, "free", speed=np.full((H, W), 0.8)), SOURCES[:1], STRENGTHS[:1], H, W)
    assert relative_error(u, analytic("free", k / 0.8, SOURCES[:1], STRENGTHS[:1]), SOURCES[:1]) < TOLERANCE


@settings(max_examples=60, deadline=None)
@given(st.floats(-3.0, 60.0), st.floats(-3.0, 50.0), st.sampled_from([0.0, 0.4, 1.3]))
def test_a_spread_source_keeps_its_strength_and_its_centroid(x, y, size):
    medium = Medium(2 * math.pi / 7.0, "free", source_size=size)
    grid = make_grid(medium, H, W)
    f = _sources(grid, np.array([[x, y]]), np.array([2.0 + 1.0j]), size).reshape(grid.shape)
    rows = grid.y0 + np.arange(grid.shape[0]) / grid.refine
    cols = grid.x0 + np.arange(grid.shape[1]) / grid.refine
    weight = f.real / 2.0
    assert weight.sum() == pytest.approx(1.0, abs=1e-9)
    assert (weight * cols[None, :]).sum() == pytest.approx(x, abs=1e-6)
    assert (weight * rows[:, None]).sum() == pytest.approx(y, abs=1e-6)
    assert np.allclose(f.imag, f.real / 2.0)


def test_a_medium_out_of_range_is_refused():
    with pytest.raises(ValueError, match="'free' and 'plate' kernels"):
        Medium(1.0, "seed")
    with pytest.raises(ValueError, match="edge 'left' must be one of"):
        Medium(1.0, edges={**dict.fromkeys(SIDES, "absorb"), "left": "clamped"})
    with pytest.raises(ValueError, match="remove 'seed' from kernels"):
        get_preset("default", medium_speed_variation=0.1)
    with pytest.raises(ValueError, match="analytic stand-ins"):
        get_preset("default", kernels=["free"], orthotropy_range=[1.1, 1.5], reflection=0.5)


def test_the_simulator_draws_finite_difference_media_reproducibly():
    cfg = get_preset("default", height=40, width=40, kernels=["free", "plate"], medium_speed_variation=0.2,
                     orthotropy_range=[1.1, 1.5], edge_count_range=[1, 2], wavelength_range=[10, 14])
    a, b = simulate_image(cfg, 3, 5), simulate_image(cfg, 3, 5)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.points, b.points)
    assert a.info["medium"] == "finite-difference" and 1.1 <= a.info["orthotropy_ratio"] <= 1.5
    assert 0.8 <= a.info["speed_min"] < 1.0 < a.info["speed_max"] <= 1.2
    assert 1 <= len(a.info["edges"]) <= 2
    assert all(condition in ("dirichlet", "neumann") for condition, _ in a.info["edges"].values())
    # the default preset's images keep their bytes: nothing of the media is drawn there
    plain = get_preset("default", height=40, width=40)
    assert not plain.finite_difference and "medium" not in simulate_image(plain, 3, 5).info
