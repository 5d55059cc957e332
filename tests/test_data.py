"""The data-file readers of relunet.data: every format, and a clear DataError for bad files."""

import gzip
import struct
import sys

import numpy as np
import pandas as pd
import pytest

from relunet.data import (
    DataError,
    MissingDependency,
    atomic_open,
    atomic_path,
    builtin,
    format_of,
    read_data,
    read_idx,
    read_labels,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 3)).round(3)
Y = np.array(["cat", "dog", "eel"] * 4)


def write_idx(path, array, *, compress=False):
    """Write ``array`` in MNIST's IDX format (the same header the reader parses)."""
    codes = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
             np.float32: 0x0D, np.float64: 0x0E}
    array = np.asarray(array)
    header = struct.pack(">BBBB", 0, 0, codes[array.dtype.type], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def frame():
    # a copy: without pandas' copy-on-write (pandas < 3) the frame shares X's memory, and a
    # test that writes a bad value into it would change X for the tests after it
    df = pd.DataFrame(X.copy(), columns=["a", "b", "c"])
    df["label"] = Y
    return df


# ---------------------------------------------------------------------------------- formats


@pytest.mark.parametrize("name", ["d.csv", "d.tsv", "d.csv.gz", "d.parquet"])
def test_tables_read_features_and_last_column_as_labels(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow", reason="writing Parquet needs pyarrow (relunet[parquet])")
        frame().to_parquet(path)
    else:
        frame().to_csv(path, sep="\t" if ".tsv" in name else ",", index=False)
    ds = read_data(path)
    np.testing.assert_allclose(ds.X, X)
    assert ds.y.tolist() == Y.tolist()
    assert ds.feature_names == ["a", "b", "c"]


def test_target_picks_the_label_column_anywhere(tmp_path):
    df = frame()[["label", "a", "b", "c"]]
    df.to_csv(tmp_path / "d.csv", index=False)
    ds = read_data(tmp_path / "d.csv", target="label")
    np.testing.assert_allclose(ds.X, X)
    assert ds.feature_names == ["a", "b", "c"]


def test_integral_float_labels_become_ints(tmp_path):
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.0, 1.0, 1.0]})
    df.to_csv(tmp_path / "d.csv", index=False)
    y = read_data(tmp_path / "d.csv").y
    assert y.dtype.kind == "i" and y.tolist() == [0, 1, 1]


def test_npy_with_labels_file(tmp_path):
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", np.arange(12) % 3)
    ds = read_data(tmp_path / "x.npy", labels=tmp_path / "y.npy")
    np.testing.assert_array_equal(ds.X, X)
    assert ds.y.tolist() == (np.arange(12) % 3).tolist()
    assert ds.feature_names is None


def test_npz_holds_X_and_y(tmp_path):
    np.savez(tmp_path / "d.npz", X=X, y=Y)
    ds = read_data(tmp_path / "d.npz")
    np.testing.assert_array_equal(ds.X, X)
    assert ds.y.tolist() == Y.tolist()


@pytest.mark.parametrize("compress", [False, True])
def test_idx_pair_images_flattened(tmp_path, compress):
    images = RNG.integers(0, 256, size=(7, 4, 4), dtype=np.uint8)
    labels = np.arange(7, dtype=np.uint8) % 2
    suffix = ".gz" if compress else ""
    xi = write_idx(tmp_path / f"imgs-idx3-ubyte{suffix}", images, compress=compress)
    yi = write_idx(tmp_path / f"labels-idx1-ubyte{suffix}", labels, compress=compress)
    ds = read_data(xi, labels=yi)
    assert ds.X.shape == (7, 16)
    np.testing.assert_array_equal(ds.X, images.reshape(7, 16))
    assert ds.y.tolist() == labels.tolist()
    assert ds.image_shape == (4, 4)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
def test_idx_every_type_code_round_trips(tmp_path, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == np.uint8:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    out = read_idx(write_idx(tmp_path / "a.idx", array))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_labels_txt_one_per_line(tmp_path):
    (tmp_path / "y.txt").write_text("1\n2\n\n3\n")
    assert read_labels(tmp_path / "y.txt").tolist() == [1, 2, 3]
    (tmp_path / "s.txt").write_text("a\nb\n")
    assert read_labels(tmp_path / "s.txt").tolist() == ["a", "b"]


def test_prediction_drops_the_extra_label_column(tmp_path):
    frame().to_csv(tmp_path / "d.csv", index=False)
    ds = read_data(tmp_path / "d.csv", need_labels=False, n_features=3)
    assert ds.X.shape == (12, 3)
    ds = read_data(tmp_path / "d.csv", need_labels=False, features=["c", "a"])
    np.testing.assert_allclose(ds.X, X[:, [2, 0]])
    assert ds.y is None


def test_builtin_datasets():
    digits = builtin("digits")
    assert digits.X.shape == (1797, 64) and digits.image_shape == (8, 8)
    spiral = builtin("spiral")
    assert spiral.X.shape[1] == 2 and spiral.n_classes == 3


def test_format_of_names():
    assert format_of("a/train-images-idx3-ubyte.gz") == "idx"
    assert format_of("t10k-labels.idx1-ubyte") == "idx"
    assert format_of("X.CSV") == "csv"
    assert format_of("d.tsv.gz") == "tsv"


# ---------------------------------------------------------------------------------- errors


def error_of(call):
    with pytest.raises(DataError) as info:
        call()
    return str(info.value)


def test_missing_and_unknown_and_empty_files(tmp_path):
    assert "no such file" in error_of(lambda: read_data(tmp_path / "nope.csv"))
    (tmp_path / "d.xlsx").write_text("x")
    assert "unknown file type" in error_of(lambda: read_data(tmp_path / "d.xlsx"))
    (tmp_path / "e.csv").write_text("")
    assert "empty" in error_of(lambda: read_data(tmp_path / "e.csv"))
    (tmp_path / "h.csv").write_text("a,b,label\n")
    assert "no data rows" in error_of(lambda: read_data(tmp_path / "h.csv"))


def test_unknown_target_lists_the_columns(tmp_path):
    frame().to_csv(tmp_path / "d.csv", index=False)
    msg = error_of(lambda: read_data(tmp_path / "d.csv", target="species"))
    assert "'species'" in msg and "'label'" in msg


def test_non_numeric_feature_is_named(tmp_path):
    df = frame()
    df["b"] = df["b"].astype(object)
    df.loc[4, "b"] = "oops"
    df.to_csv(tmp_path / "d.csv", index=False)
    msg = error_of(lambda: read_data(tmp_path / "d.csv"))
    assert "'b'" in msg and "not numeric" in msg and "'oops'" in msg and "row 5" in msg


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_are_located(tmp_path, bad):
    df = frame()
    df.loc[2, "c"] = bad
    df.to_csv(tmp_path / "d.csv", index=False)
    if np.isnan(bad):  # a table's missing value is imputed by the model, not an error
        assert np.isnan(read_data(tmp_path / "d.csv").X["c"][2])
    else:
        msg = error_of(lambda: read_data(tmp_path / "d.csv"))
        assert "'c'" in msg and "row 3" in msg
    Xb = X.copy()
    Xb[5, 1] = bad
    np.save(tmp_path / "x.npy", Xb)
    np.save(tmp_path / "y.npy", np.zeros(12))
    assert "row 6" in error_of(lambda: read_data(tmp_path / "x.npy", labels=tmp_path / "y.npy"))


def test_label_length_mismatch(tmp_path):
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", np.zeros(11))
    msg = error_of(lambda: read_data(tmp_path / "x.npy", labels=tmp_path / "y.npy"))
    assert "11 labels for 12 rows" in msg


def test_arrays_without_labels(tmp_path):
    np.save(tmp_path / "x.npy", X)
    assert "--labels" in error_of(lambda: read_data(tmp_path / "x.npy"))
    assert read_data(tmp_path / "x.npy", need_labels=False).y is None
    np.savez(tmp_path / "d.npz", features=X)
    assert "named X and y" in error_of(lambda: read_data(tmp_path / "d.npz"))


def test_corrupt_idx_files(tmp_path):
    good = write_idx(tmp_path / "a-idx3-ubyte", np.zeros((3, 2, 2), np.uint8)).read_bytes()
    (tmp_path / "magic.idx").write_bytes(b"\x01\x02" + good[2:])
    assert "magic" in error_of(lambda: read_idx(tmp_path / "magic.idx"))
    (tmp_path / "short.idx").write_bytes(good[:-3])
    assert "truncated" in error_of(lambda: read_idx(tmp_path / "short.idx"))
    (tmp_path / "head.idx").write_bytes(good[:6])
    assert "truncated" in error_of(lambda: read_idx(tmp_path / "head.idx"))
    (tmp_path / "cut.idx.gz").write_bytes(gzip.compress(good)[:-10])
    assert "gzip" in error_of(lambda: read_idx(tmp_path / "cut.idx.gz"))


def test_one_column_table_only_for_labels(tmp_path):
    frame().to_csv(tmp_path / "two.csv", index=False)
    assert "exactly one column" in error_of(lambda: read_labels(tmp_path / "two.csv"))


def test_missing_optional_packages_name_the_extra(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow", reason="writing Parquet needs pyarrow (relunet[parquet])")
    frame().to_parquet(tmp_path / "d.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingDependency, match=r"relunet\[parquet\]"):
        read_data(tmp_path / "d.parquet")


# ---------------------------------------------------------------------------------- writing


def test_atomic_open_replaces_only_on_success(tmp_path):
    path = tmp_path / "out.txt"
    with atomic_open(path) as fh:
        fh.write("one")
    assert path.read_text() == "one"
    with pytest.raises(RuntimeError), atomic_open(path) as fh:
        fh.write("two")
        raise RuntimeError("boom")
    assert path.read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(ValueError), atomic_path(tmp_path / "m.npz") as tmp:
        open(tmp, "wb").write(b"partial")
        raise ValueError
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match="does not exist"), atomic_path(tmp_path / "no/m.npz"):
        pass


def test_labels_that_are_not_whole_numbers_are_refused_as_a_measurement(tmp_path):
    # The review: a float .npy of 60 distinct values as --labels went on to sklearn's
    # "Unknown label type: continuous".
    X = np.zeros((6, 2))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", np.array([0.5, 1.25, 2.0, 3.0, 4.0, 5.0]))
    with pytest.raises(DataError, match=r"y.npy.*not whole \(e.g. 0.5 in row 1\).*not classes"):
        read_data(tmp_path / "X.npy", labels=tmp_path / "y.npy")
    np.save(tmp_path / "y.npy", np.array([0.0, 1.0, 2.0, 0.0, 1.0, 2.0]))  # whole: classes
    assert read_data(tmp_path / "X.npy", labels=tmp_path / "y.npy").y.dtype.kind == "i"
