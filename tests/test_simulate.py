import filecmp
import math
from dataclasses import replace

import numpy as np
import pytest
from matplotlib import colormaps

from heatmaploc.simulate import SimConfig, get_preset, simulate_image, write_dataset
from heatmaploc.physics.kernels import evaluate, free_field, thin_plate
from heatmaploc.physics.colormap import to_uint8
from heatmaploc.simulate.scene import Scene, sample_scene, synthesize

SMALL = replace(get_preset("default"), height=48, width=40)


def test_same_seed_same_image_different_seed_differs():
    a, b = simulate_image(SMALL, 3, 5), simulate_image(SMALL, 3, 5)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.points, b.points) and a.info == b.info
    c = simulate_image(SMALL, 4, 5)
    assert not (a.image.shape == c.image.shape and np.array_equal(a.image, c.image))


def test_write_dataset_is_byte_identical_whatever_the_workers(tmp_path):
    d1 = write_dataset(SMALL, 12, tmp_path / "a", seed=7, workers=1, progress=False)
    d2 = write_dataset(SMALL, 12, tmp_path / "b", seed=7, workers=2, progress=False)
    for name in ("points.csv", "meta.json"):
        assert filecmp.cmp(d1 / name, d2 / name, shallow=False)
    files = sorted(p.name for p in (d1 / "images").iterdir())
    assert len(files) == 12 and {f[-4:] for f in files} <= {".png", ".npy"}
    for f in files:
        assert filecmp.cmp(d1 / "images" / f, d2 / "images" / f, shallow=False)


def test_free_field_far_field_decays_as_inverse_sqrt_r():
    k = 2 * math.pi / 10.0  # undamped, wavelength 10 px
    scene = Scene(points=np.array([[0.0, 0.0]]), strengths=np.array([1.0 + 0j]), wavenumber=complex(k, 0.0),
                  kernel="free", observable="amplitude", time_phase=0.0, source_size=0.0)
    amp = synthesize(scene, 1, 1001)[0]  # along the x axis, r = 0..1000 px
    r1, r2 = 100, 400  # 10 and 40 wavelengths
    ratio = amp[r1] / amp[r2]
    assert ratio == pytest.approx(math.sqrt(r2 / r1), rel=0.05)
    assert amp[r1] == pytest.approx(0.25 * math.sqrt(2 / (math.pi * k * r1)), rel=0.05)


def test_damping_makes_the_field_decay_faster():
    k = 2 * math.pi / 10.0
    r = np.array([100.0, 400.0])
    plain, damped = np.abs(free_field(r, k)), np.abs(free_field(r, complex(k, 0.02 * k)))
    assert damped[1] / damped[0] < 0.5 * plain[1] / plain[0]


def test_plate_kernel_is_finite_at_the_source():
    k = 2 * math.pi / 12.0
    r = np.array([0.0, 1e-9, 1e-3, 0.5])
    g = thin_plate(r, k)
    assert np.all(np.isfinite(g))
    assert g[0] == pytest.approx(1.0 + 0j) and abs(g[2] - g[0]) < 1e-2
    assert abs(free_field(np.array([1e-9]), k)[0]) > 3  # the membrane kernel is log-singular


def test_seed000_reproduces_the_blog_formula():
    cfg = replace(get_preset("seed000"), noise_std=0.0)
    index = 3
    sim = simulate_image(cfg, 11, index)
    assert sim.image.shape == (400, 400, 3) and len(sim.points) == 1  # images 0..99 have n = 1
    assert sim.scene.time_phase == pytest.approx(0.2 * index)
    grid = np.linspace(-10, 10, 400)
    phys = np.array([-10, -10]) + sim.points * cfg.pixel_size
    assert np.all((phys >= 0) & (phys <= 1))
    X, Y = np.meshgrid(grid, grid)
    Z = np.sin(0.2 * np.hypot(X - phys[0, 0], Y - phys[0, 1]) - 0.2 * index)
    field = synthesize(sim.scene, 400, 400)
    assert np.allclose(field, Z, atol=1e-9)
    expected = to_uint8(colormaps["jet"]((Z - Z.min()) / (Z.max() - Z.min()))[..., :3])
    assert np.abs(sim.image.astype(int) - expected.astype(int)).max() <= 1
    assert simulate_image(cfg, 11, 150).points.shape == (2, 2)  # block 1 -> n = 2
    assert simulate_image(cfg, 11, 299).points.shape == (3, 2)


def test_seed000_noise_std():
    cfg = get_preset("seed000")
    noisy = simulate_image(cfg, 2, 0).image.astype(float) / 255
    clean = simulate_image(replace(cfg, noise_std=0.0), 2, 0).image.astype(float) / 255
    resid = (noisy - clean)[(clean > 0.2) & (clean < 0.8)]  # away from the clipping
    assert np.std(resid) == pytest.approx(0.1, rel=0.1)


def test_sampling_constraints_hold():
    cfg = replace(SMALL, count_range=(5, 5), min_separation_px=6.0, min_separation_wavelengths=0.0, border_margin_px=3.0)
    for i in range(20):
        scene = sample_scene(cfg, i, np.random.default_rng(i))
        p = scene.points
        assert len(p) == 5
        assert np.all(p >= 3.0) and np.all(p[:, 0] <= 40 - 1 - 3) and np.all(p[:, 1] <= 48 - 1 - 3)
        d = np.linalg.norm(p[:, None] - p[None], axis=-1) + np.eye(5) * 99
        assert d.min() >= 6.0
        for h in scene.hidden_points:  # unlabelled sources stay outside the image
            assert h[0] < -0.5 or h[0] > 39.5 or h[1] < -0.5 or h[1] > 47.5


def test_snr_sets_the_noise_level():
    cfg = replace(SMALL, renderings=("raw",), snr_db_range=(20.0, 20.0), count_range=(2, 2))
    sim = simulate_image(cfg, 0, 0)
    clean = synthesize(sim.scene, 48, 40)
    noise = sim.image.astype(np.float64) - clean
    assert np.std(clean) / np.std(noise) == pytest.approx(10.0, rel=0.15)


def test_zero_sources_allowed_and_noisy():
    cfg = replace(SMALL, count_range=(0, 0), outside_count_range=(0, 0))
    sim = simulate_image(cfg, 0, 0)
    assert sim.points.shape == (0, 2) and np.std(sim.image.astype(float)) > 0


def test_config_errors():
    with pytest.raises(ValueError, match="preset"):
        get_preset("nope")
    with pytest.raises(ValueError, match="kernel"):
        SimConfig(kernels=("laser",))
    with pytest.raises(ValueError, match="count_range"):
        SimConfig(count_range=(3, 1))
    with pytest.raises(ValueError, match="could not place"):
        sample_scene(replace(SMALL, count_range=(50, 50), min_separation_px=20.0), 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown simulator option"):
        SimConfig.from_dict({"colour": 1})
    assert SimConfig.from_dict(SMALL.to_dict()) == SMALL


def test_kernels_dispatch():
    with pytest.raises(ValueError, match="unknown kernel"):
        evaluate("nope", np.ones(2), 1.0)
    r = np.linspace(1, 5, 5)
    assert np.allclose(np.real(evaluate("seed", r, 0.3) * np.exp(-1j * 0.7)), np.sin(0.3 * r - 0.7))


def test_mismatch_options_change_only_their_own_physics():
    from dataclasses import replace

    from heatmaploc.simulate.scene import Scene, complex_field

    k = 2 * np.pi / 10.0
    base = Scene(np.array([[20.0, 16.0]]), np.array([1.0 + 0j]), complex(k, 0.0), "free", "snapshot", 0.0, 0.8)
    plain = complex_field(base, 32, 40, exact=True)
    # a wall at x = -3.5 reflecting with 0.8 adds the mirror source at x = -27
    walled = complex_field(replace(base, mirror_x=-3.5, reflection=0.8), 32, 40, exact=True)
    mirror = complex_field(replace(base, points=np.array([[-27.0, 16.0]]), strengths=np.array([0.8 + 0j])), 32, 40,
                           exact=True)
    assert np.allclose(walled, plain + mirror)
    # a speed gradient stretches the phase away from the centre column, not along it
    graded = complex_field(replace(base, slowness_slope=0.005, centre_x=20.0), 32, 40, exact=True)
    assert np.allclose(graded[:, 20], plain[:, 20]) and not np.allclose(graded[:, 35], plain[:, 35], atol=1e-3)
    # a disc source: a flatter field near the centre; far away the point source's field
    # times the disc's form factor (one complex number)
    disc = complex_field(replace(base, source_radius=2.0), 32, 40, exact=True)
    assert abs(disc[16, 20]) < abs(plain[16, 20])
    ratio = disc[:, 38] / plain[:, 38]
    assert np.abs(ratio - ratio.mean()).max() < 0.05 * abs(ratio.mean()) and abs(ratio.mean()) < 0.9


def test_mismatch_draws_leave_other_datasets_unchanged():
    plain = simulate_image(get_preset("default"), 11, 3)
    assert np.array_equal(plain.image, simulate_image(get_preset("default", reflection=0.0), 11, 3).image)
    stressed = simulate_image(get_preset("default", speed_variation=0.1, source_radius_range=[1.5, 3.0],
                                         reflection=0.8), 11, 3)
    assert {"slowness_slope", "source_radius_px", "reflection"} <= set(stressed.info)
    assert abs(stressed.scene.slowness_slope) <= 2 * 0.1 / 128 and 1.5 <= stressed.scene.source_radius <= 3.0
