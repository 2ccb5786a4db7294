"""Tiled inference of large images (heatmaploc.tiling) and the peak cap."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmaploc.api import Localizer
from heatmaploc.codec import CodecConfig, HeatmapCodec
from heatmaploc.data.preprocess import intensity_bounds, to_unit_range
from heatmaploc.physics.forward import observe
from heatmaploc.simulate.scene import Scene, complex_field
from heatmaploc.inference_config import InferenceConfig
from heatmaploc.tiling import TileConfig, blend_weights, decode_in_blocks, n_tiles, tile_layout


@settings(max_examples=200, deadline=None)
@given(length=st.integers(1, 5000), size=st.integers(32, 1024), overlap=st.integers(0, 200),
       multiple=st.sampled_from([1, 16, 32]))
def test_tile_layout_covers_with_the_overlap_and_no_tile_above_the_size(length, size, overlap, multiple):
    overlap = min(overlap, size // 2 - 1)
    starts, tile = tile_layout(length, size, overlap, multiple)
    assert starts[0] == 0 and starts[-1] + tile == max(length, tile) and tile <= max(size, length if length <= size else 0)
    if length > size:
        assert tile <= size and len(starts) >= 2
        gaps = np.diff(starts)
        assert np.all(gaps > 0) and np.all(tile - gaps >= overlap)  # neighbours overlap by >= overlap
    w = blend_weights(starts[-1], tile, length, overlap)
    assert w.shape == (tile,) and np.all(w > 0) and np.all(w <= 1)


def test_tile_config_checks_and_reads_the_checkpoint_inference():
    assert InferenceConfig.from_dict({"tiling": {"size": 256, "overlap": 16}}).tiling == TileConfig(256, 16)
    assert InferenceConfig.from_dict({}).tiling == TileConfig()
    assert not TileConfig(0).applies((5000, 5000)) and TileConfig(512).applies((100, 513))
    for bad in ({"size": 100, "overlap": 50}, {"size": 16}, {"overlap": -1}):
        with pytest.raises(ValueError, match="tile"):
            TileConfig(**bad)
    assert n_tiles((1000, 300), TileConfig(512, 32)) == 3


def _peaky_maps(n: int, shape=(300, 260), seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Heatmap + regression channels of ``n`` sources on a grid (at least 5 px apart)."""
    rng = np.random.default_rng(seed)
    codec = HeatmapCodec(CodecConfig(sigma=1.0))
    ys, xs = np.mgrid[3 : shape[0] - 3 : 6, 3 : shape[1] - 3 : 6]
    cells = rng.choice(xs.size, n, replace=False)
    pts = np.stack([xs.ravel()[cells], ys.ravel()[cells]], 1) + rng.uniform(-0.4, 0.4, (n, 2))
    heat = codec.encode(pts, shape) * rng.uniform(0.6, 1.0)
    offsets = codec.encode_offsets(pts, shape)
    log_sigma = np.full((1, *shape), -2.0, np.float32)
    return np.concatenate([heat, offsets[:2], log_sigma]).astype(np.float32), pts


@pytest.mark.parametrize("refine", ["softargmax", "offset", "parabola"])
def test_block_decoding_equals_a_whole_map_decode_without_the_cap(refine, caplog):
    maps, pts = _peaky_maps(700)
    codec = HeatmapCodec(CodecConfig(sigma=1.0, refine=refine, max_peaks=100_000))
    whole = codec.decode(torch.from_numpy(maps)[None])[0]
    blocks = decode_in_blocks(codec, maps, block=64)  # 5 x 5 blocks: many peaks on block edges
    assert whole.count == blocks.count >= 690
    order_w, order_b = np.lexsort(whole.xy.T), np.lexsort(blocks.xy.T)
    np.testing.assert_allclose(blocks.xy[order_b], whole.xy[order_w], atol=1e-9)
    np.testing.assert_allclose(blocks.scores[order_b], whole.scores[order_w], atol=1e-7)
    # the cap of a whole-map decode drops peaks, and says so with the option that raises it
    with caplog.at_level(logging.WARNING, logger="heatmaploc.codec"):
        capped = HeatmapCodec(CodecConfig(sigma=1.0, refine=refine)).decode(torch.from_numpy(maps)[None])[0]
    assert capped.count == 256
    assert any("max_peaks=256" in r.getMessage() and "--max-peaks" in r.getMessage() for r in caplog.records)


def test_a_tile_of_a_float_image_is_scaled_as_the_whole_image():
    image = np.random.default_rng(1).normal(3.0, 2.0, (50, 70)).astype(np.float32)
    whole = to_unit_range(image, 3)
    part = to_unit_range(image[10:30, 20:61], 3, bounds=intensity_bounds(image))
    np.testing.assert_array_equal(part, whole[:, 10:30, 20:61])
    assert intensity_bounds(image.astype(np.uint16)) is None


def test_sources_on_tile_seams_are_found_once_where_an_untiled_pass_finds_them(shipped_localizer):
    """A 256 x 256 field in tiles of <= 160 px (two per axis: [0, 160) and [96, 256)),
    the shipped model at its default d4: sources on both tile edges and in the middle
    of the overlap, on both axes."""
    size, overlap = 160, 32
    starts, tile = tile_layout(256, size, overlap, 32)
    seams = [starts[1], (starts[1] + tile) // 2 + 0.5, tile - 1]  # 96, 128.5, 159: edges and the middle
    assert starts == [0, 96] and tile == 160
    pts = np.array([[seams[0], 40.0], [seams[1], 90.0], [seams[2], 215.0], [50.0, seams[0]], [200.0, seams[1]],
                    [165.0, seams[2]], [seams[1], seams[1]]])
    k = 2 * np.pi / 14.0
    scene = Scene(points=pts, strengths=np.exp(1j * np.linspace(0, 5, len(pts))), wavenumber=complex(k, 0.03 * k),
                  kernel="free", observable="snapshot", time_phase=0.3, source_size=1.0)
    field = observe(complex_field(scene, 256, 256), "snapshot", 0.3).astype(np.float32)
    untiled = shipped_localizer.with_tiling(0).predict(field)
    tiled = shipped_localizer.with_tiling(size, overlap).predict(field)
    assert untiled.count == tiled.count == len(pts)
    d = np.linalg.norm(tiled.xy[:, None] - untiled.xy[None], axis=2)
    assert np.all((d < 0.05).sum(1) == 1)  # each tiled point has exactly one untiled twin within 0.05 px
    assert np.all(np.linalg.norm(tiled.xy[:, None] - pts[None], axis=2).min(0) < 1.0)  # and each source is found


def test_localizer_tiles_only_above_the_tile_size(shipped_one_pass):
    image = np.random.default_rng(0).random((96, 150)).astype(np.float32)
    small_tiles = shipped_one_pass.with_tiling(64, 16)
    out_tiled = small_tiles.raw_outputs([image])[0]
    out_whole = shipped_one_pass.with_tiling(0).raw_outputs([image])[0]
    assert out_tiled.tiled and not out_whole.tiled
    assert out_tiled.maps.shape == out_whole.maps.shape
    assert not shipped_one_pass.with_tiling(150).raw_outputs([image])[0].tiled
    assert shipped_one_pass.with_tiling(64, 16).with_tta("flip").tiling == TileConfig(64, 16)


def test_training_writes_the_tiling_into_the_checkpoint_and_the_localizer_reads_it(tiny_checkpoint, tmp_path):
    from heatmaploc.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(tiny_checkpoint)
    assert ckpt["inference"]["tiling"] == {"size": TileConfig().size, "overlap": TileConfig().overlap}
    ckpt["inference"]["tiling"] = {"size": 128, "overlap": 24}
    for key in ("format", "format_version", "package_version"):
        ckpt.pop(key, None)
    save_checkpoint(tmp_path / "t.pt", ckpt)
    assert Localizer.from_checkpoint(tmp_path / "t.pt", device="cpu").tiling == TileConfig(128, 24)
