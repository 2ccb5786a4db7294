"""Physics refinement (heatmaploc.physics.fieldfit) on fields rendered by the simulator."""
import numpy as np
import pytest

from heatmaploc.physics.fieldfit import FieldModel, fit_field, model_from_meta, refine_points
from heatmaploc.physics.wavelinear import retrieve_strengths
from heatmaploc.points import Points
from heatmaploc.simulate.scene import Scene, synthesize

from fields import STRENGTHS, TRUTH, render


def test_fit_recovers_positions_strengths_and_size_from_a_start_off_by_a_pixel():
    image = 0.25 + render("free", 11.0)
    start = TRUTH + np.array([[0.8, -0.6], [-0.7, 0.9]])
    fit = fit_field(image, start, FieldModel("free", 11.0))
    assert fit.converged
    assert np.abs(fit.xy - TRUTH).max() < 1e-3
    # the fitted strengths absorb the snapshot's time phase: q_j exp(-i wt)
    assert np.allclose(fit.strengths, STRENGTHS * np.exp(-1.1j), atol=1e-3)
    assert fit.offset == pytest.approx(0.25, abs=1e-3) and fit.source_size_px == pytest.approx(0.8, abs=1e-2)
    assert fit.residual_std < 1e-3


def test_fit_on_a_damped_plate_also_fits_the_wavelength():
    image = render("plate", 13.0, damping=0.02, size=0.5)
    fit = fit_field(image, TRUTH + 0.5, FieldModel("plate", 12.0, damping=0.02, fit_wavelength=True))
    assert fit.wavelength_px == pytest.approx(13.0, rel=1e-3)
    assert np.abs(fit.xy - TRUTH).max() < 1e-2


def test_noisy_fit_beats_its_start_and_keeps_inside_the_shift_box():
    rng = np.random.default_rng(3)
    clean = render("free", 11.0)
    image = clean + rng.normal(0.0, 0.1 * clean.std(), clean.shape)
    start = TRUTH + np.array([[0.4, 0.3], [-0.3, 0.4]])
    fit = fit_field(image, start, FieldModel("free", 11.0), max_shift=1.0)
    assert np.abs(fit.xy - start).max() <= 1.0 + 1e-9
    assert np.hypot(*(fit.xy - TRUTH).T).max() < 0.1 < np.hypot(*(start - TRUTH).T).min()


def test_from_scene_reads_the_physics_and_without_offset_the_model_is_exact():
    k = 2 * np.pi / 11.0
    scene = Scene(TRUTH, STRENGTHS, complex(k, 0.01 * k), "free", "snapshot", time_phase=1.1, source_size=0.8)
    model = FieldModel.from_scene(scene, fit_source_size=False, fit_offset=False)
    assert (model.kernel, model.source_size_px, model.fit_offset) == ("free", 0.8, False)
    assert model.wavelength_px == pytest.approx(11.0) and model.damping == pytest.approx(0.01)
    image = synthesize(scene, 32, 36)
    fit = fit_field(image, TRUTH + 0.7, model)
    assert fit.offset == 0.0 and fit.source_size_px == 0.8
    assert np.abs(fit.xy - TRUTH).max() < 1e-3 and fit.residual_std < 1e-6
    # a constant the model may not fit stays in the residual; with the offset it is fitted
    assert fit_field(image + 0.3, TRUTH, model).residual_std > 0.1
    with_offset = fit_field(image + 0.3, TRUTH, FieldModel.from_scene(scene, fit_source_size=False))
    assert with_offset.offset == pytest.approx(0.3, abs=1e-6)


@pytest.mark.parametrize("colormap", ["jet", "turbo", "gray", "hot", "coolwarm", "seismic"])
def test_colormap_inversion_recovers_the_min_max_scaled_field(colormap):
    from heatmaploc.physics.colormap import apply_colormap, get_colormap, invert_colormap, minmax

    field = render("plate", 9.0)
    back = invert_colormap(apply_colormap(field, colormap), colormap)
    entries = get_colormap(colormap).N  # matplotlib quantizes to this many colours
    assert back.shape == field.shape and np.abs(back - minmax(field)).max() <= 0.5 / entries + 1e-12


def test_fit_of_an_8_bit_colormap_rendering_recovers_the_positions(tmp_path):
    from heatmaploc.data.io import read_image, write_image
    from heatmaploc.physics.colormap import apply_colormap, get_colormap, minmax
    from heatmaploc.physics.colormap import to_uint8

    path = tmp_path / "jet.png"
    write_image(path, to_uint8(apply_colormap(render("free", 11.0), "jet")))
    start = TRUTH + np.array([[0.8, -0.6], [-0.7, 0.9]])
    fit = fit_field(read_image(path), start, FieldModel("free", 11.0, colormap="jet"))
    assert np.abs(fit.xy - TRUTH).max() < 0.02  # 256 colours, 8 bits each
    # float colours are used as they are: a colour scale wider than the data (colours from
    # 0.12 to 0.79 here) stays exact, where stretching them to [0, 1] would be off by 0.05 px
    partial = get_colormap("viridis")(0.25 + 0.5 * minmax(render("free", 11.0)))[..., :3]
    fit = fit_field(partial, start, FieldModel("free", 11.0, colormap="viridis"))
    assert np.abs(fit.xy - TRUTH).max() < 0.02
    with pytest.raises(ValueError, match=r"c.npy: float RGB values must lie in \[0, 1\]"):
        fit_field(2 * partial, start, FieldModel("free", 11.0, colormap="viridis"), name="c.npy")
    with pytest.raises(ValueError, match="x.npy: a colormap \\(jet\\) field fit needs an RGB image"):
        fit_field(render("free", 11.0), start, FieldModel("free", 11.0, colormap="jet"), name="x.npy")
    with pytest.raises(ValueError, match="unknown matplotlib colormap 'jett'"):
        FieldModel("free", 11.0, colormap="jett")
    with pytest.raises(ValueError, match="fit_offset=True"):
        FieldModel("free", 11.0, colormap="jet", fit_offset=False)


def test_model_from_meta_reads_a_simulated_record():
    raw = {"kernel": "plate", "wavelength_px": 12.5, "damping": 0.02, "observable": "snapshot", "rendering": "raw"}
    model = model_from_meta(raw)
    assert (model.kernel, model.wavelength_px, model.damping, model.colormap) == ("plate", 12.5, 0.02, None)
    assert model_from_meta({**raw, "rendering": "colormap", "colormap": "hot"}).colormap == "hot"
    assert model_from_meta({**raw, "observable": "amplitude"}).observable == "amplitude"
    assert model_from_meta({"count": 2}) is None


@pytest.mark.parametrize("kernel", ["free", "plate"])
def test_amplitude_map_fit_recovers_positions_and_relative_strengths(kernel):
    image = 0.2 + render(kernel, 11.0, damping=0.01, observable="amplitude")
    start = TRUTH + np.array([[0.8, -0.6], [-0.7, 0.9]])
    fit = fit_field(image, start, FieldModel(kernel, 11.0, damping=0.01, observable="amplitude"))
    assert fit.converged and np.abs(fit.xy - TRUTH).max() < 1e-3
    # |u| hides the strengths' common phase, not their magnitudes or relative phase
    assert np.allclose(np.abs(fit.strengths), np.abs(STRENGTHS), atol=1e-3)
    assert np.angle(fit.strengths[1] / fit.strengths[0]) == pytest.approx(np.angle(STRENGTHS[1] / STRENGTHS[0]), abs=1e-3)
    assert fit.offset == pytest.approx(0.2, abs=1e-3) and fit.source_size_px == pytest.approx(0.8, abs=1e-2)


def test_amplitude_fit_of_a_noisy_colormap_rendering_beats_its_start(tmp_path):
    from heatmaploc.physics.colormap import apply_colormap
    from heatmaploc.physics.colormap import to_uint8

    rng = np.random.default_rng(4)
    rgb = apply_colormap(render("free", 11.0, observable="amplitude"), "hot")
    image = to_uint8(np.clip(rgb + rng.normal(0, 0.01, rgb.shape), 0, 1))
    start = TRUTH + np.array([[0.5, -0.4], [-0.4, 0.5]])
    fit = fit_field(image, start, FieldModel("free", 11.0, colormap="hot", observable="amplitude"))
    assert np.hypot(*(fit.xy - TRUTH).T).max() < 0.1 < np.hypot(*(start - TRUTH).T).min()


def test_retrieve_strengths_finds_magnitudes_and_relative_phase_from_amplitudes():
    from heatmaploc.physics.forward import unit_fields

    fields = unit_fields("free", TRUTH, np.arange(36), np.arange(32), complex(2 * np.pi / 11.0, 0.0), 0.8)
    fields = fields.reshape(2, -1).T
    q, c = retrieve_strengths(fields, np.abs(fields @ STRENGTHS) + 0.1)
    assert c == pytest.approx(0.1, abs=1e-3) and np.allclose(np.abs(q), np.abs(STRENGTHS), atol=1e-3)
    assert np.angle(q[1] / q[0]) == pytest.approx(np.angle(STRENGTHS[1] / STRENGTHS[0]), abs=1e-3)


def test_refine_points_keeps_scores_labels_and_frame():
    pts = Points(TRUTH + 0.3, scores=[0.9, 0.4], labels=[0, 2])
    out = refine_points(render("free", 11.0), pts, FieldModel("free", 11.0))
    assert out.count == 2 and np.allclose(out.scores, [0.9, 0.4]) and list(out.labels) == [0, 2]
    assert np.abs(out.xy - TRUTH).max() < 1e-3


def test_no_start_points_give_an_empty_fit():
    fit = fit_field(np.ones((8, 8)), np.zeros((0, 2)), FieldModel("free", 10.0))
    assert fit.xy.shape == (0, 2) and fit.strengths.shape == (0,) and fit.offset == 1.0


def test_bad_inputs_are_named():
    model = FieldModel("free", 10.0)
    with pytest.raises(ValueError, match=r"plate.png: the field fit needs a single-channel raw field"):
        fit_field(np.zeros((8, 8, 3)), [[1.0, 1.0]], model, name="plate.png")
    field = np.zeros((8, 8))
    field[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"a.npy: 1 NaN/inf pixel value"):
        fit_field(field, [[1.0, 1.0]], model, name="a.npy")
    with pytest.raises(ValueError, match="unknown kernel 'drum'"):
        FieldModel("drum", 10.0)
    with pytest.raises(ValueError, match="wavelength_px must be a positive number"):
        FieldModel("free", 0.0)
    with pytest.raises(ValueError, match="unknown observable 'phase'"):
        FieldModel("free", 10.0, observable="phase")
