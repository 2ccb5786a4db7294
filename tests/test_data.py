import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from heatmaploc.codec import HeatmapCodec
from heatmaploc.data import (AugmentConfig, HeatmapDataset, augment, collate, load_dataset, read_image,
                             read_points_csv, to_unit_range, write_image)
from heatmaploc.data.augment import crop, crop_corner, hflip, rot90, vflip

from conftest import make_dataset


# ---------------------------------------------------------------- readers
@pytest.mark.parametrize("name,image", [
    ("g8.png", np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)),
    ("rgb8.png", np.random.default_rng(0).integers(0, 255, (12, 10, 3), dtype=np.uint8)),
    ("g16.png", (np.arange(120, dtype=np.uint16) * 500).reshape(12, 10)),
    ("g16.tif", (np.arange(120, dtype=np.uint16) * 300).reshape(12, 10)),
    ("f32.tiff", np.linspace(-1, 1, 120, dtype=np.float32).reshape(12, 10)),
    ("f64.npy", np.linspace(-1, 1, 120).reshape(12, 10)),
    ("rgbf.npy", np.random.default_rng(1).random((12, 10, 3)).astype(np.float32)),
])
def test_read_write_roundtrip(tmp_path, name, image):
    write_image(tmp_path / name, image)
    back = read_image(tmp_path / name)
    assert back.dtype == image.dtype and back.shape == image.shape and np.array_equal(back, image)


def test_png_channel_order_is_rgb(tmp_path):
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    write_image(tmp_path / "r.png", red)
    assert read_image(tmp_path / "r.png")[0, 0].tolist() == [255, 0, 0]


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match="bad.png.*corrupt"):
        read_image(tmp_path / "bad.png")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="bad.npy"):
        read_image(tmp_path / "bad.npy")
    np.save(tmp_path / "nan.npy", np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="nan.npy.*NaN"):
        read_image(tmp_path / "nan.npy")
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="cube.npy.*shape"):
        read_image(tmp_path / "cube.npy")
    np.save(tmp_path / "two.npy", np.zeros((4, 4, 2), np.int16))  # a float pair is a complex field; integers are not
    with pytest.raises(ValueError, match="two.npy.*channels"):
        read_image(tmp_path / "two.npy")
    np.save(tmp_path / "cplx.npy", np.zeros((4, 4, 3), complex))
    with pytest.raises(ValueError, match="cplx.npy.*complex field must be"):
        read_image(tmp_path / "cplx.npy")
    np.save(tmp_path / "cnan.npy", np.array([[0.0, np.nan], [1.0, 2.0]]) * 1j)
    with pytest.raises(ValueError, match="cnan.npy.*NaN"):
        read_image(tmp_path / "cnan.npy")
    (tmp_path / "empty.jpg").write_bytes(b"")  # JPEG is read (issue 16); an empty one is not an image
    with pytest.raises(ValueError, match="empty.jpg.*cannot decode"):
        read_image(tmp_path / "empty.jpg")
    (tmp_path / "x.gif").write_bytes(b"")
    with pytest.raises(ValueError, match="x.gif.*extension"):
        read_image(tmp_path / "x.gif")


# ---------------------------------------------------------------- dataset validation
def test_load_valid_dataset(tiny_dataset):
    index = load_dataset(tiny_dataset)
    assert [r.name for r in index.records] == ["a.png", "b.png", "c.png"]
    assert index.counts().tolist() == [2, 1, 0] and index.records[0].shape == (24, 32, 3)
    assert index.frame is None


def test_physical_frame_from_meta(tiny_dataset):
    (tiny_dataset / "meta.json").write_text('{"pixel_size": 0.5, "origin": [10, 20]}')
    frame = load_dataset(tiny_dataset).frame
    assert np.allclose(frame.to_physical(np.array([[2.0, 4.0]])), [[11.0, 22.0]])
    assert np.allclose(frame.to_pixels(frame.to_physical(np.array([[3.3, 1.1]]))), [[3.3, 1.1]])


def _err(root, exc, pattern):
    with pytest.raises(exc, match=pattern):
        load_dataset(root)


def test_missing_images_dir_and_csv(tmp_path):
    _err(tmp_path / "none", FileNotFoundError, "dataset folder not found")
    (tmp_path / "ds").mkdir()
    _err(tmp_path / "ds", FileNotFoundError, "images")
    write_image(tmp_path / "ds" / "images" / "a.png", np.zeros((8, 8), np.uint8))
    _err(tmp_path / "ds", FileNotFoundError, "points.csv")
    assert load_dataset(tmp_path / "ds", require_labels=False).labelled is False


def test_empty_dataset(tmp_path):
    (tmp_path / "ds" / "images").mkdir(parents=True)
    (tmp_path / "ds" / "points.csv").write_text("image,x,y\n")
    _err(tmp_path / "ds", ValueError, "empty dataset")


@pytest.mark.parametrize("csv,pattern", [
    ("", "empty file"),
    ("name,x,y\na.png,1,2\n", "lacks column"),
    ("image,x,y\na.png,1,abc\n", "line 2.*not both numbers"),
    ("image,x,y\na.png,1,2\na.png,1\n", "line 3.*2 fields"),
    ("image,x,y\na.png,nan,2\n", "line 2.*non-finite"),
    ("image,x,y,label\na.png,1,2,cat\n", "line 2.*label"),
    ("image,x,y\n,1,2\n", "line 2.*empty image name"),
])
def test_csv_errors(tmp_path, csv, pattern):
    write_image(tmp_path / "images" / "a.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "points.csv").write_text(csv)
    _err(tmp_path, ValueError, "points.csv.*" + pattern)


def test_csv_image_missing_point_outside_corrupt_nan_mixed(tmp_path):
    img = np.zeros((10, 12), np.uint8)
    root = make_dataset(tmp_path / "m", {"a.png": img}, {"a.png": np.array([[1.0, 1.0]]), "ghost.png": np.array([[1.0, 1.0]])})
    _err(root, ValueError, "ghost.png.*missing")
    root = make_dataset(tmp_path / "o", {"a.png": img}, {"a.png": np.array([[11.5, 3.0]])})
    _err(root, ValueError, r"point \(11.5, 3\) of a.png is outside the 12x10 image")
    root = make_dataset(tmp_path / "o2", {"a.png": img}, {"a.png": np.array([[11.49, -0.5]])})
    assert load_dataset(root).counts().tolist() == [1]  # the contract's inclusive edge
    root = make_dataset(tmp_path / "c", {"a.png": img}, {})
    (root / "images" / "b.png").write_bytes(b"corrupt")
    _err(root, ValueError, "b.png.*corrupt")
    root = make_dataset(tmp_path / "n", {"a.npy": np.full((4, 4), np.inf)}, {})
    _err(root, ValueError, "a.npy.*NaN/inf")
    root = make_dataset(tmp_path / "x", {"a.png": img, "b.png": np.zeros((10, 12, 3), np.uint8)}, {})
    _err(root, ValueError, "mixed channel counts")
    (root / "meta.json").write_text('{"mixed_channels": true}')
    assert len(load_dataset(root)) == 2
    (root / "meta.json").write_text("{broken")
    _err(root, ValueError, "meta.json.*JSON")


def test_read_points_csv_with_labels_and_scores(tmp_path):
    (tmp_path / "p.csv").write_text("image,x,y,label,score\na.png,1.5,2.5,1,0.9\na.png,3,4,0,0.5\n\nb.png,0,0,2,1\n")
    t = read_points_csv(tmp_path / "p.csv")
    assert t.points["a.png"].tolist() == [[1.5, 2.5], [3.0, 4.0]] and t.labels["b.png"].tolist() == [2]
    assert t.scores["a.png"].tolist() == [0.9, 0.5]


# ---------------------------------------------------------------- preprocessing
def test_to_unit_range_rules():
    g8 = np.array([[0, 255]], np.uint8)
    assert to_unit_range(g8, 3).shape == (3, 1, 2) and to_unit_range(g8, 3).max() == 1.0
    assert to_unit_range(np.array([[0, 65535]], np.uint16), 1)[0, 0].tolist() == [0.0, 1.0]
    assert to_unit_range(np.array([[-5.0, 5.0, 0.0]]), 1)[0, 0].tolist() == [0.0, 1.0, 0.5]
    assert to_unit_range(np.full((2, 2), 7.0), 1).max() == 0.5
    rgb = np.zeros((1, 1, 3), np.uint8)
    rgb[..., 1] = 255
    assert to_unit_range(rgb, 1)[0, 0, 0] == pytest.approx(0.587)
    assert to_unit_range(np.zeros((2, 2, 4), np.uint8), 3).shape == (3, 2, 2)
    with pytest.raises(ValueError, match="in_channels"):
        to_unit_range(g8, 2)


# ---------------------------------------------------------------- augmentations move points
def _peak(image2d):
    y, x = np.unravel_index(np.argmax(image2d), image2d.shape)
    return np.array([x, y], dtype=float)


@pytest.mark.parametrize("op", ["hflip", "vflip", "rot1", "rot2", "rot3", "crop"])
def test_geometric_ops_move_points_with_pixels(op):
    image = np.zeros((1, 20, 30), np.float32)
    pts = np.array([[7.0, 4.0], [22.0, 15.0]])
    for x, y in pts.astype(int):
        image[0, y, x] = 1.0 + x / 100  # distinct peaks
    if op == "hflip":
        out, moved = hflip(image, pts)
    elif op == "vflip":
        out, moved = vflip(image, pts)
    elif op.startswith("rot"):
        out, moved = rot90(image, pts, int(op[-1]))
    else:
        out, moved, _ = crop(image, pts, np.zeros(2, np.int64), top=2, left=5, size=(16, 20))
    for p in moved:
        x, y = np.round(p).astype(int)
        assert out[0, y, x] > 0.5, (op, p)
    assert np.isclose(out.sum(), image.sum()) or op == "crop"


def test_crop_drops_points_outside_and_pads():
    image = np.ones((1, 10, 10), np.float32)
    out, pts, labels = crop(image, np.array([[1.0, 1.0], [8.0, 8.0]]), np.array([0, 1]), top=5, left=5, size=(8, 8))
    assert pts.tolist() == [[3.0, 3.0]] and labels.tolist() == [1]
    assert out.shape == (1, 8, 8) and out[0, :5, :5].min() == 1.0 and out[0, 6:, 6:].max() == 0.0


def test_augment_is_deterministic_and_consistent():
    codec = HeatmapCodec(sigma=1.5)
    pts = np.array([[5.3, 6.1], [20.7, 12.2]])
    image = codec.encode(pts, (24, 24))  # an image whose bright spots are the points
    cfg = AugmentConfig(crop_size=(20, 20), contrast=0.0, brightness=0.0, gamma=0.0, noise_std=0.0)
    for seed in range(8):
        a = augment(image, pts, np.zeros(2), cfg, np.random.default_rng(seed))
        b = augment(image, pts, np.zeros(2), cfg, np.random.default_rng(seed))
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        decoded = codec.decode(torch.from_numpy(a[0])[None])[0].xy
        inside = [p for p in a[1] if 2 <= p[0] <= 17 and 2 <= p[1] <= 17]  # away from crop edges
        for p in inside:
            assert np.min(np.linalg.norm(decoded - p, axis=1)) < 0.05


def test_point_crop_keeps_a_source_inside_with_its_margin():
    image = np.zeros((1, 300, 400), np.float32)
    pts = np.array([[200.0, 150.0], [205.5, 160.25]])  # a small cluster in a large frame
    cfg = AugmentConfig(crop_size=(32, 32), point_crop=1.0, point_crop_margin=6, flips=False, rot90=False,
                        contrast=0.0, brightness=0.0, gamma=0.0, noise_std=0.0)
    shifts = set()
    for seed in range(60):
        _, moved, _ = augment(image, pts, np.zeros(2), cfg, np.random.default_rng(seed))
        assert any(np.all((m >= 6) & (m <= 25)) for m in moved)
        shifts.add(tuple(pts[0] - moved[0]) if len(moved) == 2 else None)
    assert len(shifts) > 5  # the crop is placed at random, not centred
    uniform = AugmentConfig(crop_size=(32, 32), flips=False, rot90=False)
    empty = sum(len(augment(image, pts, np.zeros(2), uniform, np.random.default_rng(s))[1]) == 0 for s in range(60))
    assert empty > 50  # what point_crop is for


@pytest.mark.parametrize("extent,size,around,margin", [(400, 128, 210.0, 8), (400, 128, 2.0, 8), (400, 128, 398.0, 8),
                                                       (100, 128, 50.0, 8), (128, 128, 5.0, 8), (50, 20, 10.5, 30)])
def test_crop_corner_ranges(extent, size, around, margin):
    corners = {crop_corner(extent, size, np.random.default_rng(s), around, margin) for s in range(200)}
    assert min(corners) >= 0 and max(corners) <= max(extent - size, 0)
    for c in corners:
        assert c <= around <= c + size - 1  # the point is inside every crop
    m = min(margin, (size - 1) // 2)
    if m <= around <= extent - 1 - m and extent > size:
        assert all(c + m <= around <= c + size - 1 - m for c in corners)


def test_point_crop_off_draws_the_same_crops_as_before():
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    assert [crop_corner(400, 128, rng_a) for _ in range(20)] == [int(rng_b.integers(0, 273)) for _ in range(20)]
    with pytest.raises(ValueError, match="point_crop"):
        AugmentConfig(point_crop=1.5)


# ---------------------------------------------------------------- torch dataset + collate
def test_heatmap_dataset_and_collate(tiny_dataset):
    codec = HeatmapCodec(sigma=1.5)
    ds = HeatmapDataset(load_dataset(tiny_dataset), codec, in_channels=1)
    s = ds[0]
    assert s["image"].shape == (1, 24, 32) and s["heatmap"].shape == (1, 24, 32)
    expected = codec.encode(np.array([[3.25, 4.5], [20.0, 10.75]]), (24, 32))
    assert s["points"].shape == (2, 2) and np.allclose(s["heatmap"].numpy(), expected)
    batch = next(iter(DataLoader(ds, batch_size=3, collate_fn=collate)))
    assert batch["image"].shape == (3, 1, 24, 32) and [len(p) for p in batch["points"]] == [2, 1, 0]
    assert batch["names"] == ["a.png", "b.png", "c.png"]
    aug = HeatmapDataset(load_dataset(tiny_dataset), codec, augment=AugmentConfig(crop_size=(16, 16)), seed=3)
    assert aug[0]["image"].shape == (3, 16, 16)
    assert torch.equal(aug[1]["image"], aug[1]["image"])
    aug.set_epoch(1)
    first = aug[1]["image"]
    aug.set_epoch(2)
    assert not torch.equal(first, aug[1]["image"])


def test_collate_refuses_mixed_sizes():
    a = {"image": torch.zeros(1, 4, 4), "heatmap": torch.zeros(1, 4, 4), "points": torch.zeros(0, 2), "labels": torch.zeros(0), "name": "a"}
    b = dict(a, image=torch.zeros(1, 5, 4))
    with pytest.raises(ValueError, match="different sizes"):
        collate([a, b])
