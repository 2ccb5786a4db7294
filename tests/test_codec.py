import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmaploc.codec import CodecConfig, HeatmapCodec


def decode_one(codec, points, shape):
    return codec.decode(torch.from_numpy(codec.encode(points, shape))[None])[0]


def test_encode_shape_dtype_and_peak():
    codec = HeatmapCodec(sigma=2.0, num_classes=2)
    hm = codec.encode(np.array([[5.0, 7.0], [20.0, 3.0]]), (16, 24), labels=np.array([0, 1]))
    assert hm.shape == (2, 16, 24) and hm.dtype == np.float32
    assert hm[0, 7, 5] == pytest.approx(1.0) and hm[1, 3, 20] == pytest.approx(1.0)
    assert hm[0, 3, 20] < 1e-6  # class 1 source absent from channel 0
    assert hm[0, 7, 7] == pytest.approx(math.exp(-4 / 8), rel=1e-6)


def test_encode_overlap_is_max_not_sum():
    codec = HeatmapCodec(sigma=2.0)
    hm = codec.encode(np.array([[10.0, 10.0], [11.0, 10.0]]), (20, 20))
    assert hm.max() == pytest.approx(1.0)


def test_encode_rejects_bad_labels():
    with pytest.raises(ValueError, match="labels"):
        HeatmapCodec().encode(np.array([[1.0, 1.0]]), (8, 8), labels=np.array([3]))


def test_decode_empty_and_batch_shapes():
    codec = HeatmapCodec()
    out = codec.decode(torch.zeros(3, 1, 16, 16))
    assert len(out) == 3 and all(p.count == 0 and p.xy.shape == (0, 2) for p in out)


def test_subpixel_self_test_interior_and_border():
    """Sweep sub-pixel phases of ideal Gaussians: bias < 0.01, max < 0.05 px inside;
    < 0.1 px within 1 px of the border."""
    codec = HeatmapCodec(sigma=2.0)
    phases = np.linspace(0.0, 1.0, 11)[:-1]
    pts = np.array([[30 + fx, 20 + fy] for fx in phases for fy in phases])
    errors = []
    for p in pts:
        d = decode_one(codec, p[None], (48, 64))
        assert d.count == 1
        errors.append(d.xy[0] - p)
    errors = np.array(errors)
    assert np.abs(errors.mean(axis=0)).max() < 0.01
    assert np.hypot(*errors.T).max() < 0.05
    border = [(-0.5 + 1.49 * t, 12.3) for t in np.linspace(0, 1, 9)] + [(40.2, 47.49 - 1.49 * t) for t in np.linspace(0, 1, 9)]
    for p in np.array(border):
        d = decode_one(codec, p[None], (48, 64))
        assert d.count == 1 and np.hypot(*(d.xy[0] - p)) < 0.1, (p, d.xy)


def test_debias_matters_at_border():
    plain = HeatmapCodec(debias=False)
    p = np.array([[0.2, 20.0]])
    assert abs(decode_one(plain, p, (40, 40)).xy[0, 0] - 0.2) > 0.2


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-0.5, 63.49), st.floats(-0.5, 47.49)), min_size=0, max_size=8),
       st.sampled_from([1.5, 2.0, 3.0]))
def test_roundtrip_decode_encode_property(raw, sigma):
    """decode(encode(points)) recovers well-separated points to < 0.05 px."""
    codec = HeatmapCodec(sigma=sigma)
    pts = []
    # well separated: 5 sigma + the window (at 4 sigma + the window a corner point's
    # decode is still pulled 0.053 px by its neighbour's tail: (0, -0.375), (9.75, 9.75), sigma 2)
    for p in raw:
        if all(math.dist(p, q) > 5 * sigma + codec.radius for q in pts):
            pts.append(p)
    pts = np.array(pts, dtype=np.float64).reshape(-1, 2)
    d = decode_one(codec, pts, (48, 64))
    assert d.count == len(pts)
    if len(pts):
        dist = np.linalg.norm(d.xy[:, None] - pts[None], axis=-1)
        assert dist.min(axis=0).max() < 0.05


def test_roundtrip_encode_decode_heatmap():
    codec = HeatmapCodec(sigma=2.0)
    hm = codec.encode(np.array([[10.3, 12.7], [40.6, 30.1]]), (48, 64))
    again = codec.encode(decode_one(codec, np.array([[10.3, 12.7], [40.6, 30.1]]), (48, 64)).xy, (48, 64))
    assert np.abs(again - hm).max() < 0.02


def test_batch_decoding_matches_single_images():
    codec = HeatmapCodec()
    rng = np.random.default_rng(1)
    maps, singles = [], []
    for _ in range(4):
        pts = rng.uniform(2, 28, size=(int(rng.integers(0, 4)), 2))
        hm = codec.encode(pts, (32, 32))
        maps.append(hm)
        singles.append(codec.decode(torch.from_numpy(hm)[None])[0])
    batch = codec.decode(torch.from_numpy(np.stack(maps)))
    for a, b in zip(batch, singles):
        assert a.count == b.count and np.allclose(a.xy, b.xy, atol=1e-9)


def test_logits_threshold_and_scores():
    codec = HeatmapCodec(threshold=0.5)
    hm = codec.encode(np.array([[8.0, 8.0], [24.0, 8.0]]), (16, 32))
    hm[0] *= np.where(np.arange(32) < 16, 1.0, 0.4)[None, :]  # second peak only 0.4
    probs = torch.from_numpy(hm)[None]
    assert codec.decode(probs)[0].count == 1
    assert codec.decode(probs, threshold=0.3)[0].count == 2
    logits = torch.logit(probs.clamp(1e-6, 1 - 1e-6))
    d = codec.decode(logits, logits=True)[0]
    assert d.count == 1 and d.scores[0] == pytest.approx(1.0, abs=1e-5)


def test_close_peaks_stay_apart_with_basins():
    codec = HeatmapCodec(sigma=1.5)
    pts = np.array([[20.0, 20.0], [25.5, 20.0]])  # 5.5 px apart, windows overlap
    d = decode_one(codec, pts, (40, 40))
    assert d.count == 2
    xs = np.sort(d.xy[:, 0])
    assert abs(xs[0] - 20.0) < 0.3 and abs(xs[1] - 25.5) < 0.3


def test_max_peaks_cap_and_plateau_gives_one_peak():
    codec = HeatmapCodec(max_peaks=2, threshold=0.1)
    hm = np.zeros((1, 1, 32, 32), np.float32)
    for x in (4, 12, 20, 28):
        hm[0, 0, 16, x] = 0.9
    assert codec.decode(torch.from_numpy(hm))[0].count == 2
    flat = np.zeros((1, 1, 16, 16), np.float32)
    flat[0, 0, 5:8, 5:8] = 0.8
    d = HeatmapCodec().decode(torch.from_numpy(flat))[0]
    # one peak, near the plateau centre (debias assumes a Gaussian, not a box)
    assert d.count == 1 and np.allclose(d.xy[0], [6.0, 6.0], atol=0.1)


@pytest.mark.parametrize("mode", ["argmax", "parabola"])
def test_other_refine_modes(mode):
    codec = HeatmapCodec(refine=mode)
    d = decode_one(codec, np.array([[10.3, 7.8]]), (20, 20))
    tol = 0.71 if mode == "argmax" else 1e-3
    assert d.count == 1 and np.hypot(*(d.xy[0] - [10.3, 7.8])) < tol


def test_masks_are_disks():
    codec = HeatmapCodec(mask_radius=2.0)
    m = codec.masks(np.array([[5.0, 5.0]]), (12, 12))
    assert m.sum() == 9 + 4  # d <= 2 on the integer grid: 13 pixel centres
    assert m[5, 5] and m[5, 7] and not m[5, 8] and not m[7, 7]


def test_config_validation():
    with pytest.raises(ValueError, match="sigma"):
        CodecConfig(sigma=0)
    with pytest.raises(ValueError, match="refine"):
        HeatmapCodec(refine="magic")
    with pytest.raises(ValueError, match="nms_kernel"):
        CodecConfig(nms_kernel=4)


def test_decoded_points_stay_inside_the_image_on_flat_maps():
    codec = HeatmapCodec(threshold=0.01005)  # above the plateau, below the two bumps
    flat = torch.full((1, 1, 12, 20), 0.01)
    flat[0, 0, 0, 7] = 0.0101  # a barely-there peak on the top edge of a flat map
    flat[0, 0, 11, 19] = 0.0102  # and one in the bottom-right corner
    d = codec.decode(flat)[0]
    assert d.count == 2
    assert np.all(d.xy >= -0.5) and np.all(d.xy[:, 0] < 19.5) and np.all(d.xy[:, 1] < 11.5)
    assert np.all(np.abs(d.xy - np.round(d.xy)) <= 1.0)
