"""relunet.tablechecks: tables that would otherwise give a silent wrong answer (an adversarial
review's findings).  Every file is written here, in the test."""

import gzip

import numpy as np
import pandas as pd
import pytest

from relunet.data import DataError, Dataset, read_data
from relunet.tablechecks import check_onehot_width, check_outputs, check_prepared


def error_of(fn):
    with pytest.raises(DataError) as info:
        fn()
    return str(info.value)


def rows(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return [(f"{a:.3f}", f"{b:.3f}", "ab"[i % 2])
            for i, (a, b) in enumerate(rng.normal(size=(n, 2)))]


def write(path, header, body, sep=","):
    path.write_text("\n".join([header] + [sep.join(r) for r in body]) + "\n")
    return path


# ------------------------------------------------------------------------- names (H2)


@pytest.mark.parametrize("header", ["Label,x1,label", "y,x1,target", "label,x2,class"])
def test_two_columns_named_like_a_label_are_refused_naming_both(tmp_path, header):
    path = write(tmp_path / "d.csv", header, [(a, b, c) for a, b, c in rows()])
    msg = error_of(lambda: read_data(path))
    first, _, last = header.split(",")
    assert "2 columns are named like a label" in msg
    assert repr(first) in msg and repr(last) in msg and "--target" in msg
    ds = read_data(path, target=last)  # --target settles it: the other is a feature
    assert ds.label == last and first in ds.feature_names


@pytest.mark.parametrize("header,dup", [("x1,label,label", "label"), ("x,x,label", "x")])
def test_duplicate_column_names_are_refused_not_renamed_to_dot_1(tmp_path, header, dup):
    path = write(tmp_path / "d.csv", header, rows())
    msg = error_of(lambda: read_data(path))
    assert f"duplicate column name(s) {dup!r}" in msg and "rename" in msg


def test_duplicate_names_in_parquet_are_refused(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="Parquet needs pyarrow")
    import pyarrow.parquet as pq

    table = pa.table([pa.array([1.0, 2.0, 3.0]), pa.array([4.0, 5.0, 6.0]),
                      pa.array(["a", "b", "a"])], names=["x", "x", "label"])
    pq.write_table(table, tmp_path / "d.parquet")
    assert "duplicate column name(s) 'x'" in error_of(lambda: read_data(tmp_path / "d.parquet"))


def test_a_label_named_column_with_a_labels_file_is_refused_never_a_feature(tmp_path):
    path = write(tmp_path / "d.csv", "x1,x2,label", rows())
    labels = tmp_path / "y.txt"
    labels.write_text("\n".join("ab"[i % 2] for i in range(40)) + "\n")
    msg = error_of(lambda: read_data(path, labels=str(labels)))
    assert "column named like a label ('label')" in msg and "--drop label" in msg
    ds = read_data(path, labels=str(labels), drop=["label"])
    assert ds.feature_names == ["x1", "x2"]


# ------------------------------------------------------------------------- empty label (H3)


def test_an_empty_label_column_is_an_error_not_a_fall_back_to_another_column(tmp_path):
    body = [(a, "red" if i % 2 else "blue", "") for i, (a, _, _) in enumerate(rows())]
    path = write(tmp_path / "d.csv", "x1,color,label", body)
    assert error_of(lambda: read_data(path)) == \
        f"{path}: the label column 'label' has no values"


# ------------------------------------------------------------------------- stray quotes (H6)


def test_a_stray_quote_that_swallows_rows_names_the_data_row_where_it_starts(tmp_path):
    body = [",".join(r) for r in rows()]
    body[10] = '"' + body[10]  # data row 11 opens a quote ...
    body[20] = body[20].replace(",", '",', 1)  # ... that a later row closes
    path = tmp_path / "d.csv"
    path.write_text("x1,x2,label\n" + "\n".join(body) + "\n")
    msg = error_of(lambda: read_data(path))
    assert "quoted field starting in data row 11" in msg and "stray quote" in msg


def test_an_unclosed_quote_names_the_data_row(tmp_path):
    body = [",".join(r) for r in rows()]
    body[10] = '"' + body[10]
    path = tmp_path / "d.csv"
    path.write_text("x1,x2,label\n" + "\n".join(body) + "\n")
    msg = error_of(lambda: read_data(path))
    assert "quoted field starting in data row 11 never ends" in msg


def test_a_quoted_line_break_without_separators_is_fine(tmp_path):
    body = [(a, f'"line {i}\nmore"', c) for i, (a, _, c) in enumerate(rows())]
    path = write(tmp_path / "d.csv", "x1,note,label", body)
    ds = read_data(path)
    assert len(ds.y) == 40


# ------------------------------------------------------------------------- reading (M3, M10, M12)


@pytest.mark.parametrize("sep", [":", " "])
def test_any_single_character_separator_gives_a_data_error_not_a_key_error(tmp_path, sep):
    path = write(tmp_path / "d.csv", "x1,x2,label", rows())
    with pytest.raises(DataError):  # one column: the label guess is refused, no KeyError
        read_data(path, sep=sep)
    ok = write(tmp_path / "c.csv", "x1:x2:label", rows(), sep=":")
    assert read_data(ok, sep=":").feature_names == ["x1", "x2"] if sep == ":" else True


def test_a_parquet_list_column_is_refused_naming_it(tmp_path):
    pytest.importorskip("pyarrow", reason="Parquet needs pyarrow")
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "lst": [[1, 2], [3], []], "label": list("aba")})
    df.to_parquet(tmp_path / "d.parquet")
    msg = error_of(lambda: read_data(tmp_path / "d.parquet"))
    assert "column 'lst'" in msg and "list/struct" in msg and "--drop lst" in msg


def test_a_non_utf8_byte_past_the_sniffed_sample_reads_the_file_as_cp1252(tmp_path):
    lines = ["x1,town,label"] + [f"{i % 7}.5,Basel,{'ab'[i % 2]}" for i in range(8000)]
    lines.append("1.5,Z\xfcrich,a")
    path = tmp_path / "d.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    assert path.stat().st_size > 1 << 16
    ds = read_data(path)
    assert ds.X["town"].iloc[-1] == "Z\xfcrich"
    assert any("Windows-1252" in n for n in ds.notes)


def test_spaces_after_the_separator_are_skipped_in_names_and_cells(tmp_path):
    path = write(tmp_path / "d.csv", "x1, x2, label", [(a, " " + b, " " + c)
                                                       for a, b, c in rows()], sep=",")
    ds = read_data(path)
    assert ds.label == "label" and ds.feature_names == ["x1", "x2"]
    assert set(ds.y) == {"a", "b"} and ds.numeric == ["x1", "x2"]
    assert any("spaces after the separator skipped" in n for n in ds.notes)


@pytest.mark.parametrize("head,what", [(b"PAR1", "Parquet"), (b"\xff\xfex\x00", "UTF-16"),
                                       (b"PK\x03\x04", "zip")])
def test_a_csv_name_on_other_bytes_says_what_they_are(tmp_path, head, what):
    path = tmp_path / "d.csv"
    path.write_bytes(head + b"\x00" * 20)
    assert what in error_of(lambda: read_data(path))


def test_gzip_bytes_named_csv_say_so(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(gzip.compress(b"x,label\n1,a\n"))
    assert "gzip" in error_of(lambda: read_data(path))


# ------------------------------------------------------------------------- predict (M1)


def test_prediction_keeps_rows_with_no_values(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("x1,x2\n1.5,0.5\n,\n-1.5,-0.5\n")
    ds = read_data(path, need_labels=False, features=["x1", "x2"])
    assert len(ds.X) == 3 and ds.X.iloc[1].isna().all()
    train = read_data(write(tmp_path / "t.csv", "x1,x2,label", [("1", "2", "a"), ("", "", ""),
                                                              ("3", "4", "a")]))
    assert len(train.X) == 2  # training leaves such rows out (and says so)


# ------------------------------------------------------------------------- width, overflow, paths


def test_the_one_hot_width_is_capped_naming_the_widest_column():
    n = 30
    X = pd.DataFrame({"city": [f"c{i // 2}" for i in range(n)], "k": ["a"] * n})
    ds = Dataset(X, np.zeros(n), ["city", "k"], "d.csv", None)
    ds.categorical = ["city", "k"]
    check_onehot_width(ds, min_frequency=1, limit=16)  # 15 cities + 1 = 16: allowed
    msg = error_of(lambda: check_onehot_width(ds, min_frequency=1, limit=15))
    assert "16 columns" in msg and "column 'city' alone has 15 categories" in msg
    assert "--min-frequency" in msg and "--drop city" in msg
    check_onehot_width(ds, min_frequency=3, limit=2)  # all cities rare: 1 + 1 columns


def test_prepared_values_that_overflow_the_network_dtype_name_column_and_row():
    from relunet import ReluNetClassifier
    from relunet.tables import make_model

    X = pd.DataFrame({"a": np.linspace(-1, 1, 40), "b": np.linspace(1, 2, 40)})
    y = np.arange(40) % 2
    model = make_model(ReluNetClassifier(hidden_units=4, max_iter=2, dtype="float32",
                                         random_state=0), numeric=["a", "b"])
    model.fit(X, y)
    check_prepared(model, X)
    big = X.copy()
    big.loc[3, "b"] = 1e39  # fits float64, overflows float32 once scaled
    ds = Dataset(big, None, ["a", "b"], "p.csv", None)
    msg = error_of(lambda: check_prepared(model, big, ds))
    assert msg.startswith("p.csv: column 'b' in data row 4 (value 1e+39)")
    assert "overflows float32" in msg


def test_outputs_may_not_be_inputs_or_each_other(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("x\n")
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    msg = error_of(lambda: check_outputs({"data": str(data)}, {"--out": str(link)}))
    assert "--out" in msg and "data file" in msg
    msg = error_of(lambda: check_outputs({}, {"--out": "m.npz", "--metrics": "./m.npz"}))
    assert "--out and --metrics are the same file" in msg
    check_outputs({"data": str(data)}, {"--out": str(tmp_path / "m.npz"), "--metrics": None})
