"""Sub-pixel offsets and per-point sigma: codec targets and decoding, TTA of vector
maps, the regression losses, calibration, and sigma through points, CSVs and the API."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmaploc import Localizer, Points
from heatmaploc.checkpoint import adapt_state_dict
from heatmaploc.codec import HeatmapCodec
from heatmaploc.data.augment import hflip, rot90
from heatmaploc.data.io import read_points_csv, write_points_csv
from heatmaploc.losses import offset_losses
from heatmaploc.metrics import sigma_calibration
from heatmaploc.models import build_model
from heatmaploc.points import PhysicalFrame
from heatmaploc.tta import apply, averaged_maps, invert, invert_vectors, transforms


def ideal_maps(codec: HeatmapCodec, points: np.ndarray, shape, sigma: float = 0.3) -> torch.Tensor:
    """What a perfect regression model outputs: target heatmap (as probabilities), the
    offset targets and a constant log sigma; ``(1, 4, H, W)``."""
    heat = codec.encode(points, shape)
    off = codec.encode_offsets(points, shape)[:2]
    log_sigma = np.full((1, *shape), math.log(sigma), np.float32)
    return torch.from_numpy(np.concatenate([heat, off, log_sigma]))[None]


@st.composite
def separated_points(draw):
    h, w = draw(st.integers(12, 40)), draw(st.integers(12, 40))
    n = draw(st.integers(0, 5))
    coord = st.tuples(st.floats(-0.5, w - 0.5 - 1e-3), st.floats(-0.5, h - 0.5 - 1e-3))
    pts: list = []
    for _ in range(n):
        p = draw(coord)
        if all(math.dist(p, q) >= 3.0 for q in pts):
            pts.append(p)
    return np.array(pts, dtype=np.float64).reshape(-1, 2), (h, w)


@settings(max_examples=60, deadline=None)
@given(separated_points())
def test_offset_decode_of_ideal_maps_is_exact(data):
    """Sub-pixel positions anywhere (borders and half-pixel ties included), pairs down to
    3 px apart: the peak pixel plus its offset recovers each point to 1e-3 px."""
    points, shape = data
    codec = HeatmapCodec(sigma=2.0, refine="offset", threshold=0.5)
    decoded = codec.decode(ideal_maps(codec, points, shape))[0]
    assert decoded.count == len(points)
    if len(points):
        order = [int(np.argmin(np.linalg.norm(decoded.xy - p, axis=1))) for p in points]
        assert sorted(order) == list(range(len(points)))
        assert np.abs(decoded.xy[order] - points).max() < 1e-3
        assert np.allclose(decoded.sigma, 0.3, rtol=1e-5)


def test_encode_offsets_block_and_nearest_source():
    codec = HeatmapCodec(offset_reach=1)
    t = codec.encode_offsets(np.array([[2.2, 3.6], [3.9, 3.0]]), (8, 9))
    assert t.shape == (3, 8, 9) and t.dtype == np.float32
    assert t[2].sum() == 16  # 3x3 blocks centred on pixels (x, y) = (2, 4) and (4, 3) share (3, 3) and (3, 4)
    assert t[0, 4, 2] == pytest.approx(0.2) and t[1, 4, 2] == pytest.approx(-0.4)
    # shared pixel (3, 3): 1.0 px from the first source, 0.9 px from the second, which wins
    assert t[0, 3, 3] == pytest.approx(0.9) and t[1, 3, 3] == pytest.approx(0.0)
    # shared pixel (3, 4): 0.89 px from the first, 1.35 px from the second
    assert t[0, 4, 3] == pytest.approx(-0.8) and t[1, 4, 3] == pytest.approx(-0.4)
    assert HeatmapCodec(offset_reach=0).encode_offsets(np.array([[2.2, 3.6]]), (8, 9))[2].sum() == 1
    assert codec.encode_offsets(np.zeros((0, 2)), (4, 5)).sum() == 0


def test_decode_modes_and_channel_layout_errors():
    codec = HeatmapCodec(sigma=2.0, refine="offset")
    plain = torch.from_numpy(codec.encode(np.array([[5.3, 6.6]]), (16, 16)))[None]
    with pytest.raises(ValueError, match="regression head"):
        codec.decode(plain)
    with pytest.raises(ValueError, match="channels"):
        codec.decode(torch.zeros(1, 2, 8, 8))
    soft = HeatmapCodec(sigma=2.0).decode(ideal_maps(codec, np.array([[5.3, 6.6]]), (16, 16)))[0]
    assert np.isnan(soft.sigma).all() and np.abs(soft.xy - [5.3, 6.6]).max() < 0.05  # soft-argmax still works
    logits = ideal_maps(codec, np.array([[5.3, 6.6]]), (16, 16)).clone()
    logits[:, 0] = torch.logit(logits[:, 0].clamp(1e-6, 1 - 1e-6))
    d = codec.decode(logits, logits=True)[0]  # logits apply to the heatmap channel only
    assert d.count == 1 and np.abs(d.xy - [5.3, 6.6]).max() < 1e-4


@pytest.mark.parametrize("t", transforms("d4"))
def test_vector_maps_map_back_under_every_transform(t):
    """Offsets encoded in a transformed image, mapped back pixel for pixel and vector
    for vector, equal the offsets encoded in the original image."""
    codec = HeatmapCodec()
    points, shape = np.array([[2.3, 4.8], [7.6, 1.1]]), (7, 10)
    image = np.zeros((1, *shape), np.float32)
    k, flip = t
    img_t, pts_t = (hflip(image, points) if flip else (image, points))
    img_t, pts_t = rot90(img_t, pts_t, k)
    assert torch.equal(apply(torch.from_numpy(image.copy()), t), torch.from_numpy(img_t.copy()))
    target_t = torch.from_numpy(codec.encode_offsets(pts_t, img_t.shape[-2:]))
    back = invert(target_t, t)
    dx, dy = invert_vectors(back[0], back[1], t)
    expected = torch.from_numpy(codec.encode_offsets(points, shape))
    assert torch.equal(back[2], expected[2])
    assert torch.allclose(dx, expected[0], atol=1e-6) and torch.allclose(dy, expected[1], atol=1e-6)


class IdealModel(nn.Module):
    """Returns the ideal maps of fixed points whatever the input; under a transform the
    points move with the image, so averaged_maps must reproduce the untransformed maps."""

    classes = 1

    def __init__(self, points: np.ndarray, shape) -> None:
        super().__init__()
        self.points, self.shape, self.codec = points, shape, HeatmapCodec(sigma=2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        image = np.zeros((1, *self.shape), np.float32)
        for t in transforms("d4"):
            if apply(torch.from_numpy(image), t).shape == x.shape[1:] and self._seen(x, t):
                k, flip = t
                img, pts = (hflip(image, self.points) if flip else (image, self.points))
                img, pts = rot90(img, pts, k)
                maps = ideal_maps(self.codec, pts, img.shape[-2:], sigma=0.2 + 0.05 * k)
                maps[:, 0] = torch.logit(maps[:, 0].clamp(1e-6, 1 - 1e-6))
                return maps
        raise AssertionError("unexpected input")

    def _seen(self, x, t):
        return torch.equal(x, apply(self.marker, t))


def test_averaged_maps_of_regression_outputs():
    points, shape = np.array([[3.3, 4.6], [8.8, 2.2]]), (9, 12)
    model = IdealModel(points, shape)
    model.marker = torch.arange(np.prod(shape), dtype=torch.float32).reshape(1, 1, *shape)
    single = averaged_maps(model, model.marker, "none")
    both = averaged_maps(model, model.marker, "d4")
    assert single.shape == both.shape == (1, 4, *shape)
    codec = HeatmapCodec(sigma=2.0, refine="offset")
    for maps in (single, both):
        d = codec.decode(maps)[0]
        order = np.argsort(d.xy[:, 0])
        assert np.abs(d.xy[order] - points).max() < 1e-4
    sig = [0.2 + 0.05 * k for k, _ in transforms("d4")]
    assert np.allclose(codec.decode(both)[0].sigma, math.sqrt(np.mean(np.square(sig))), rtol=1e-4)  # rms


def test_offset_losses_values_and_gradients():
    pred = torch.zeros(1, 3, 2, 2, requires_grad=True)
    with torch.no_grad():
        pred[0, 0, 0, 0], pred[0, 1, 0, 0], pred[0, 2, 0, 0] = 0.5, -0.25, math.log(0.5)
        pred[0, 0, 1, 1] = 9.0  # not weighted: no loss, no gradient
    target = torch.zeros(1, 3, 2, 2)
    target[0, 0, 0, 0], target[0, 1, 0, 0], target[0, 2, 0, 0] = 0.25, 0.25, 1.0
    target[0, 2, 0, 1] = 1.0  # a second weighted pixel with zero residual and sigma 1
    offset, sigma = offset_losses(pred, target)
    # residuals (0.25, -0.5) and (0, 0); two weighted pixels
    assert offset.item() == pytest.approx((0.25 + 0.5) / 2)
    expected_nll = (0.5 * (0.25**2 + 0.5**2) / 0.25 + 2 * math.log(0.5)) / 2
    assert sigma.item() == pytest.approx(expected_nll, rel=1e-6)
    (offset + sigma).backward()
    g = pred.grad[0]
    assert g[0, 0, 0].item() == pytest.approx(0.5) and g[1, 0, 0].item() == pytest.approx(-0.5)  # sign(r) / n
    # d/ds of (r^2 exp(-2s) / 2 + 2 s) / n = (-r^2 exp(-2s) + 2) / n
    assert g[2, 0, 0].item() == pytest.approx((-(0.25**2 + 0.5**2) / 0.25 + 2) / 2, rel=1e-6)
    assert g[2, 0, 1].item() == pytest.approx(1.0) and torch.all(g[:, 1, 1] == 0)


def test_sigma_calibration_hand_computed():
    truths = [np.array([[10.0, 10.0], [20.0, 5.0]]), np.zeros((0, 2))]
    preds = [np.array([[10.5, 9.0], [20.125, 5.0], [30.0, 30.0]]), np.array([[1.0, 1.0]])]
    sigmas = [np.array([1.0, 0.0625, 0.2]), np.array([0.3])]
    c = sigma_calibration(preds, sigmas, truths, radius=2.0)
    # |z|: (0.5, 1.0) for the first pair, (2.0, 0.0) for the second; FPs are not counted
    assert c.n_coordinates == 4 and c.n_unknown == 0
    assert c.within_1sigma == pytest.approx(0.75) and c.within_2sigma == pytest.approx(1.0)
    assert c.rms_error == pytest.approx(math.sqrt((0.25 + 1.0 + 0.125**2 + 0.0) / 4))
    unknown = sigma_calibration(preds, [np.array([np.nan, 0.0625, 0.2]), np.array([0.3])], truths)
    assert unknown.n_coordinates == 2 and unknown.n_unknown == 1 and unknown.within_2sigma == 1.0
    assert math.isnan(sigma_calibration([np.zeros((0, 2))], [np.zeros(0)], [np.ones((1, 2))]).within_1sigma)


def test_points_sigma_physical_units_and_list():
    pts = Points(np.array([[1.0, 2.0], [3.0, 4.0]]), scores=[0.2, 0.9], sigma=[0.1, 0.4])
    framed = pts.with_frame(PhysicalFrame(0.5, (10.0, 0.0)))
    assert np.allclose(framed.sigma_physical, [0.05, 0.2]) and np.array_equal(framed.sigma, pts.sigma)
    rows = framed.to_list()
    assert [r["sigma"] for r in rows] == [0.4, 0.1] and rows[0]["sigma_phys"] == pytest.approx(0.2)
    assert list(rows[0])[:4] == ["x", "y", "score", "sigma"]
    assert np.isnan(Points(np.zeros((1, 2))).sigma).all()


@settings(max_examples=30, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(lambda s: s.strip() == s))
def test_csv_sigma_roundtrip_any_name(tmp_path_factory, name):
    path = tmp_path_factory.mktemp("csv") / "p.csv"
    xy = np.array([[1.25, 2.5], [3.0, 4.0]])
    write_points_csv(path, [(name, xy, None, np.array([0.9, 0.8]), np.array([0.125, np.nan]))])
    table = read_points_csv(path)
    assert list(table.points) == [name] and np.allclose(table.points[name], xy)
    assert table.sigmas[name][0] == pytest.approx(0.125) and np.isnan(table.sigmas[name][1])
    assert np.allclose(table.scores[name], [0.9, 0.8])


def test_csv_without_sigma_and_bad_sigma(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("image,x,y,label,score\na.png,1,2,0,0.5\n")
    table = read_points_csv(old)
    assert table.sigmas is None and np.allclose(table.scores["a.png"], [0.5])
    bad = tmp_path / "bad.csv"
    bad.write_text("image,x,y,sigma\na.png,1,2,wide\n")
    with pytest.raises(ValueError, match=r"line 2: sigma='wide'"):
        read_points_csv(bad)
    bad.write_text("image,x,y,sigma\na.png,1,2,-1\n")
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        read_points_csv(bad)


def test_warm_start_adds_a_neutral_regression_head():
    torch.manual_seed(0)
    plain = build_model("heatmapnet", aspp_channels=32, decoder_channels=16, refine_channels=16).eval()
    with_head = build_model("heatmapnet", aspp_channels=32, decoder_channels=16, refine_channels=16, regression=True)
    with_head.load_state_dict(adapt_state_dict(plain.state_dict(), with_head))
    x = torch.randn(1, 3, 40, 36)
    with torch.no_grad():
        out = with_head.eval()(x)
        assert torch.equal(out[:, :1], plain(x))
    assert torch.all(out[:, 1:] == 0)  # offsets 0 and log sigma 0 (sigma 1 px) until trained


def test_api_points_carry_sigma(tiny_checkpoint, tmp_path):
    loc = Localizer.from_checkpoint(tiny_checkpoint, device="cpu").with_threshold(0.0)
    assert loc.has_regression and loc.codec.config.refine == "offset"
    image = np.random.default_rng(1).random((40, 44)).astype(np.float32)
    pts = loc.predict(image, pixel_size=2.0)
    assert pts.count > 0 and np.all(np.isfinite(pts.sigma)) and np.all(pts.sigma > 0)
    assert np.allclose(pts.sigma_physical, 2.0 * pts.sigma)
    assert np.isnan(loc.with_codec(refine="softargmax").predict(image).sigma).all()
    assert loc.heatmap(image).shape == (1, 40, 44)


def test_sigma_scale_makes_one_sigma_coverage_gaussian():
    from heatmaploc.evaluation import sigma_scale

    rng = np.random.default_rng(0)
    truths = [rng.uniform(5, 95, size=(3, 2)) for _ in range(400)]
    preds = [Points(t + rng.normal(0, 0.2, t.shape), sigma=np.full(len(t), 0.1)) for t in truths]  # claims 2x too small
    scale = sigma_scale(preds, truths)
    assert scale == pytest.approx(2.0, rel=0.08)
    fixed = sigma_calibration([p.xy for p in preds], [p.sigma * scale for p in preds], truths)
    assert fixed.within_1sigma == pytest.approx(0.6827, abs=0.01) and fixed.within_2sigma == pytest.approx(0.9545, abs=0.02)
    assert sigma_scale([Points(t) for t in truths], truths) == 1.0  # no sigma: nothing to scale
