"""Fuzzing the readers (issue 16, part 6): every input either loads correctly or raises
the package's one-line error (ValueError / FileNotFoundError naming the file), never
another exception."""
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heatmaploc.data.io import read_image, read_points_csv

DTYPES = [np.uint8, np.uint16, np.int32, np.float32, np.float64, np.bool_, np.complex64]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def one_line_error(err: Exception, path: Path) -> bool:
    text = str(err)
    return isinstance(err, (ValueError, FileNotFoundError)) and len(text.splitlines()) == 1 and str(path) in text


@FUZZ
@given(dtype=st.sampled_from(DTYPES), shape=st.lists(st.integers(0, 6), min_size=0, max_size=4),
       special=st.sampled_from([None, np.nan, np.inf, -np.inf]), seed=st.integers(0, 2**16))
def test_npy_images_load_or_fail_in_one_line(dtype, shape, special, seed):
    rng = np.random.default_rng(seed)
    array = (rng.random(shape) * 300).astype(dtype)
    if special is not None and array.size and np.issubdtype(array.dtype, np.floating):
        array.flat[rng.integers(array.size)] = special
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.npy"
        np.save(path, array)
        try:
            image = read_image(path)
        except Exception as err:  # noqa: BLE001 - the point: which exceptions escape
            assert one_line_error(err, path), repr(err)
        else:
            assert image.ndim in (2, 3) and image.shape[0] >= 1 and image.shape[1] >= 1
            assert np.issubdtype(image.dtype, np.number) and np.isfinite(image).all()


@FUZZ
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".png", ".npy", ".tif", ".jpg", ".bmp"]))
def test_random_bytes_as_an_image_fail_in_one_line(data, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"x{suffix}"
        path.write_bytes(data)
        try:
            read_image(path)
        except Exception as err:  # noqa: BLE001
            assert one_line_error(err, path), repr(err)


CELLS = st.one_of(st.text(max_size=8), st.sampled_from(["1.5", "-2", "nan", "inf", "", "1e3", "x", "0"]),
                  st.floats(allow_nan=True, allow_infinity=True).map(str))


@FUZZ
@given(header=st.sampled_from(["image,x,y", "image,x,y,label", "image,x,y,label,score,sigma", "x,y", "",
                               "\ufeffimage,x,y", "image;x;y"]),
       rows=st.lists(st.lists(CELLS, min_size=0, max_size=7), max_size=6),
       newline=st.sampled_from(["\n", "\r\n"]), encoding_bom=st.booleans())
def test_points_csv_loads_or_fails_in_one_line(header, rows, newline, encoding_bom):
    text = newline.join([header] + [",".join(r) for r in rows]) + newline
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "points.csv"
        path.write_text(("\ufeff" if encoding_bom else "") + text, encoding="utf-8")
        try:
            table = read_points_csv(path)
        except Exception as err:  # noqa: BLE001
            assert one_line_error(err, path), repr(err)
        else:
            for name, xy in table.points.items():
                assert name and xy.ndim == 2 and xy.shape[1] == 2 and np.isfinite(xy).all()


def test_a_points_csv_with_bom_and_crlf_loads(tmp_path):
    path = tmp_path / "points.csv"
    path.write_bytes("\ufeffimage,x,y\r\na.png,1.5,2.0\r\n\"b,c.png\",3,4\r\n".encode("utf-8"))
    table = read_points_csv(path)
    assert set(table.points) == {"a.png", "b,c.png"} and table.points["a.png"].tolist() == [[1.5, 2.0]]


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes_as_a_points_csv_load_or_fail_in_one_line(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "points.csv"
        path.write_bytes(b"image,x,y\n" + data)
        try:
            read_points_csv(path)
        except Exception as err:  # noqa: BLE001
            assert one_line_error(err, path), repr(err)
