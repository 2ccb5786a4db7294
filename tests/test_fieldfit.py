"""Physics refinement (heatmaploc.fieldfit) on fields rendered by the simulator."""
import numpy as np
import pytest

from heatmaploc.fieldfit import FieldModel, fit_field, refine_points
from heatmaploc.points import Points
from heatmaploc.simulate.scene import Scene, synthesize

TRUTH = np.array([[9.3, 12.6], [22.8, 19.1]])
STRENGTHS = np.array([0.9 * np.exp(0.4j), 0.6 * np.exp(-2.0j)])


def render(kernel: str, wavelength: float, damping: float = 0.0, size: float = 0.8, shape=(32, 36)) -> np.ndarray:
    k = 2 * np.pi / wavelength
    scene = Scene(TRUTH, STRENGTHS, complex(k, k * damping), kernel, "snapshot", time_phase=1.1, source_size=size)
    return synthesize(scene, *shape)


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


def test_cli_predict_field_fit_refines_the_models_points(tmp_path, capsys):
    import json

    from heatmaploc import Localizer
    from heatmaploc.cli import main

    image = render("free", 11.0, shape=(48, 48))
    path = tmp_path / "field.npy"
    np.save(path, image.astype(np.float32))
    assert main(["predict", str(path), "--field-fit", "free:11", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)[str(path)]
    found = Localizer.default().predict(path)
    assert len(printed) == found.count > 0
    expected = refine_points(image.astype(np.float32), found, FieldModel("free", 11.0)).to_list()
    got = np.array([(r["x"], r["y"]) for r in printed])
    assert np.allclose(got, [(r["x"], r["y"]) for r in expected], atol=1e-6)
    assert np.abs(got[np.lexsort(got.T[::-1])] - TRUTH).max() < 1e-3  # both sources, on the true positions


def test_cli_field_fit_errors(tmp_path, capsys):
    from heatmaploc.cli import main
    from heatmaploc.data.io import write_image

    with pytest.raises(SystemExit) as exc:
        main(["predict", str(tmp_path), "--field-fit", "drum:10"])
    assert exc.value.code == 2 and "unknown kernel 'drum'" in capsys.readouterr().err
    rgb = tmp_path / "rgb.png"
    write_image(rgb, np.zeros((16, 16, 3), np.uint8))
    assert main(["predict", str(rgb), "--field-fit", "free:10"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{rgb}: the field fit needs a single-channel raw field" in err[0]
