"""The family test (heatmaploc.physics.family): wave fields, point-spread maps and images
with nothing beyond the noise, told apart from the profile around the network's points;
and the refinement taking the chosen path."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmaploc.physics.colormap import apply_colormap, to_uint8
from heatmaploc.physics.family import PSF_TAIL, choose_family, nothing_to_refine, tail_ratio
from heatmaploc.physics.psf import PSF
from heatmaploc.physics.refine import refine_physics
from heatmaploc.points import Points
from heatmaploc.simulate.scene import Scene, synthesize

SPOTS = np.array([[14.3, 17.6], [41.8, 22.1], [27.4, 44.9]])
SHAPE = (60, 64)


def spots(shape: str = "gaussian", width: float = 3.0) -> np.ndarray:
    ys, xs = np.mgrid[0:SHAPE[0], 0:SHAPE[1]].astype(float)
    psf = PSF(shape, width)
    return 5.0 + sum(p * psf(xs - x, ys - y) for (x, y), p in zip(SPOTS, (100.0, 60.0, 30.0)))


def wave(observable: str, damping: float = 0.01) -> np.ndarray:
    k = 2 * np.pi / 12.0
    scene = Scene(SPOTS, np.array([1.0, 0.7j, -0.8]), complex(k, k * damping), "free", observable, time_phase=0.3,
                  source_size=0.8)
    return synthesize(scene, *SHAPE)


def noisy(image: np.ndarray, std: float, seed: int = 0) -> tuple[np.ndarray, float]:
    return image + np.random.default_rng(seed).normal(0.0, std, image.shape), std


@pytest.mark.parametrize("shape", ["gaussian", "airy"])
def test_spots_are_point_spread_maps(shape):
    image, noise = noisy(spots(shape), 0.5)
    evidence = choose_family(image, noise, SPOTS + 0.3)
    assert evidence.family == "psf" and evidence.points == 3 and evidence.tail < PSF_TAIL


@pytest.mark.parametrize("observable", ["snapshot", "amplitude"])
def test_wave_fields_are_waves_even_one_source_s_amplitude_which_looks_like_a_blob(observable):
    image, noise = noisy(wave(observable), 0.01)
    evidence = choose_family(image, noise, SPOTS)
    assert evidence.family == "wave" and evidence.points >= 1 and evidence.tail > 2 * PSF_TAIL
    one = Scene(SPOTS[:1], np.array([1.0]), complex(2 * np.pi / 12.0, 0.005), "free", "amplitude", time_phase=0.0, source_size=0.8)
    single, noise = noisy(synthesize(one, *SHAPE), 0.01)
    assert choose_family(single, noise, SPOTS[:1]).family == "wave"


def test_a_map_in_db_is_read_as_its_power():
    power = spots()
    db = 10 * np.log10(np.maximum(power / power.max(), 1e-4))  # peaks at 0 dB, nowhere positive
    assert choose_family(db, 0.05, SPOTS).family == "psf"


def test_noise_alone_is_nothing_unless_the_network_saw_something():
    image, _ = noisy(np.zeros(SHAPE), 1.0)
    none = np.zeros((0, 2))
    assert nothing_to_refine(image, none).family == "none"
    # rendered through a colormap, noise is still noise: read before any inversion
    rgb = to_uint8(apply_colormap(image, "hot"))
    assert nothing_to_refine(rgb, none).family == "none"
    # a point, a support candidate or structure beyond the noise leave it to the families
    assert nothing_to_refine(image, SPOTS[:1]) is None
    assert nothing_to_refine(image, none, candidates=np.array([[3.0, 4.0]])) is None
    assert nothing_to_refine(image + wave("snapshot") * 10, none) is None
    assert nothing_to_refine(to_uint8(apply_colormap(noisy(spots(), 0.5)[0], "hot")), none) is None


def test_unreadable_profiles_and_complex_fields_are_left_to_the_wave_family():
    image, noise = noisy(spots(), 50.0)  # every peak below 5 noise std
    evidence = choose_family(image, noise, SPOTS)
    assert evidence.family == "wave" and evidence.points == 0 and "could be read" in evidence.reason
    complex_field = synthesize(Scene(SPOTS, np.ones(3), complex(0.5, 0.0), "free", "complex", 0.0, 0.8), *SHAPE)
    assert choose_family(complex_field, 0.01, SPOTS).family == "wave"


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(1e-3, 1e3), offset=st.floats(-100, 100), dx=st.floats(-0.4, 0.4))
def test_the_tail_ratio_is_blind_to_the_map_s_units(scale, offset, dx):
    image, noise = noisy(spots(), 0.5)
    values = image - np.median(image)
    reference = tail_ratio(values, noise, *SPOTS[0] + dx)
    moved = scale * (image + offset)
    assert tail_ratio(moved - np.median(moved), scale * noise, *SPOTS[0] + dx) == pytest.approx(reference, rel=1e-6)


def test_the_refinement_takes_the_chosen_family_and_records_why():
    start = Points(SPOTS + 0.3, scores=np.full(3, 0.8), sigma=np.full(3, 0.4))
    image, _ = noisy(spots(), 0.5)
    refined = refine_physics(image, start)
    assert refined.physics["family"] == "psf" and refined.physics["family_evidence"]["family"] == "psf"
    assert refined.count == 3 and refined.has_strength
    empty, _ = noisy(np.zeros(SHAPE), 1.0)
    nothing = refine_physics(empty, Points(np.zeros((0, 2))), candidates=np.zeros((0, 2)))
    assert nothing.physics["family"] == "none" and nothing.physics["mode"] == "network" and nothing.count == 0
    json.dumps(nothing.physics)
    # a stated family is not tested
    stated = refine_physics(empty, Points(np.zeros((0, 2))), {"family": "wave"}, candidates=np.zeros((0, 2)))
    assert stated.physics["family"] == "wave" and stated.physics["family_evidence"] is None
