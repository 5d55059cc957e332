"""relunet.tables: tables as people write them.  Every file is written here, in the test."""

import gzip

import numpy as np
import pandas as pd
import pytest

from relunet.data import DataError, read_data, read_labels
from relunet.tables import (
    build_preparation,
    check_guessed_label,
    choose_label,
    identifier_columns,
    label_values,
    make_model,
    sniff,
    table_columns,
)


def error_of(fn):
    with pytest.raises(DataError) as info:
        fn()
    return str(info.value)


def measurements(n=60, seed=0):
    """Two numeric columns that separate two classes."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return rng.normal(size=(n, 2)) + 3 * y[:, None], y


# ---------------------------------------------------------------------------------- the label


def test_label_named_like_a_label_beats_the_last_column(tmp_path):
    # Kaggle's image layout: label first, then the pixels; the last pixel is not the label.
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.integers(0, 256, size=(40, 5)),
                         columns=[f"pixel{i}" for i in range(5)])
    frame.insert(0, "Label", np.arange(40) % 4)
    frame.to_csv(tmp_path / "train.csv", index=False)
    ds = read_data(tmp_path / "train.csv")
    assert ds.label == "Label" and ds.label_how == "named"
    assert ds.y.tolist() == (np.arange(40) % 4).tolist() and ds.y.dtype.kind == "i"
    assert ds.feature_names == [f"pixel{i}" for i in range(5)]


def test_choose_label_rules():
    assert choose_label(["a", "b", "c"]) == ("c", "last")
    assert choose_label(["Target", "a", "b"]) == ("Target", "named")
    assert choose_label(["y", "class", "a"]) == ("a", "last")  # two label-like names: none wins
    assert choose_label(["a", "b"], target="a") == ("a", "--target")
    assert choose_label(["a", "b", "c"], hint="b") == ("b", "model")
    with pytest.raises(DataError, match="no column named 'z'"):
        choose_label(["a", "b"], target="z")


def test_a_guessed_measurement_is_refused_with_a_hint(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"flipper": rng.normal(200, 10, 120).round(),
                          "species": np.repeat(["a", "b", "c"], 40),
                          "body_mass_g": rng.normal(4000, 600, 120).round(-1)})
    frame.to_csv(tmp_path / "p.csv", index=False)
    msg = error_of(lambda: read_data(tmp_path / "p.csv"))
    assert "'body_mass_g'" in msg and "the last column" in msg and "--target" in msg
    frame["body_mass_g"] += 0.5  # non-integer numbers
    frame.to_csv(tmp_path / "q.csv", index=False)
    assert "not whole" in error_of(lambda: read_data(tmp_path / "q.csv"))
    ds = read_data(tmp_path / "q.csv", target="species")  # named: no guessing, no refusal
    assert sorted(set(ds.y)) == ["a", "b", "c"]


def test_check_guessed_label_accepts_classes_and_codes():
    check_guessed_label(np.array(["007", "07", "7"] * 10), "code", "last", "f")
    check_guessed_label(np.arange(100) % 10, "digit", "last", "f")
    with pytest.raises(DataError, match="not whole"):
        check_guessed_label(np.array([0.5, 1.0, 2.0]), "x", "named", "f")
    check_guessed_label(np.array([0.5, 1.0, 2.0]), "x", "--target", "f")  # the user said so


def test_labels_are_read_as_written(tmp_path):
    X, _ = measurements(6)
    frame = pd.DataFrame(X, columns=["a", "b"])
    frame["code"] = ["007", "7", "01", "1", "True", "False"]
    frame.to_csv(tmp_path / "d.csv", index=False)
    y = read_data(tmp_path / "d.csv", target="code").y
    assert y.tolist() == ["007", "7", "01", "1", "True", "False"]
    assert len(set(y)) == 6


def test_plain_integer_labels_sort_numerically():
    y = label_values(pd.Series(["10", "9", "-2", "0"], dtype=str), "f")
    assert y.dtype.kind == "i" and sorted(y) == [-2, 0, 9, 10]
    y = label_values(pd.Series(["1.0", "2.0", "10.0"], dtype=str), "f")  # pandas' float labels
    assert y.dtype.kind == "i" and y.tolist() == [1, 2, 10]
    y = label_values(pd.Series(["1", "1.0"], dtype=str), "f")  # would merge: stay text
    assert y.tolist() == ["1", "1.0"]
    y = label_values(pd.Series([True, False]), "f")
    assert y.tolist() == ["True", "False"]


def test_missing_label_names_the_row_by_position(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2, 3, 4], "label": ["x", "y", None, "x"]},
                         index=[10, 20, 30, 40])
    pytest.importorskip("pyarrow", reason="writing Parquet needs pyarrow (relunet[parquet])")
    frame.to_parquet(tmp_path / "d.parquet")  # keeps its index: row 3 is not "30"
    msg = error_of(lambda: read_data(tmp_path / "d.parquet"))
    assert "data row 3" in msg and "30" not in msg.split("data row")[1]


def test_parquet_pd_na_label_and_decimal_feature(tmp_path):
    import decimal

    pa = pytest.importorskip("pyarrow", reason="Parquet needs pyarrow")
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet needs pyarrow")
    table = pa.table({
        "price": pa.array([decimal.Decimal("1.25"), decimal.Decimal("2.50"), None,
                           decimal.Decimal("4.00")], pa.decimal128(5, 2)),
        "flag": pa.array([True, False, True, None]),
        "label": pa.array(["a", "b", None, "b"], pa.string()),
    })
    pq.write_table(table, tmp_path / "d.parquet")
    msg = error_of(lambda: read_data(tmp_path / "d.parquet"))
    assert "label missing in data row 3" in msg and "ambiguous" not in msg
    pq.write_table(table.filter(pa.compute.is_valid(table["label"])), tmp_path / "e.parquet")
    ds = read_data(tmp_path / "e.parquet")
    assert ds.numeric == ["price", "flag"] and ds.categorical == []
    np.testing.assert_array_equal(ds.X["price"], [1.25, 2.5, 4.0])
    np.testing.assert_array_equal(ds.X["flag"], [1.0, 0.0, np.nan])
    assert ds.y.tolist() == ["a", "b", "b"]


def test_labels_txt_with_a_bom_and_leading_zeros(tmp_path):
    (tmp_path / "y.txt").write_bytes("\ufeff1\n2\n1\n".encode())
    assert read_labels(tmp_path / "y.txt").tolist() == [1, 2, 1]
    (tmp_path / "z.txt").write_bytes("\ufeff007\n7\n".encode())
    assert read_labels(tmp_path / "z.txt").tolist() == ["007", "7"]


# ---------------------------------------------------------------------------------- ids


def test_pandas_index_and_row_numbers_never_become_features(tmp_path):
    X, y = measurements(30)
    frame = pd.DataFrame(X, columns=["a", "b"])
    frame["PassengerId"] = np.arange(1, 31)
    frame["label"] = y
    frame = frame.sort_values("label")  # sorted by class: an index would leak it
    frame.to_csv(tmp_path / "d.csv")  # writes the index as an unnamed first column
    ds = read_data(tmp_path / "d.csv")
    assert ds.feature_names == ["a", "b"]
    assert any("'Unnamed: 0'" in n for n in ds.notes)
    assert any("'PassengerId'" in n and "numbers the rows" in n for n in ds.notes)


def test_r_style_row_names(tmp_path):
    # write.csv: an empty header cell; write.table: one header name fewer than the fields.
    (tmp_path / "csv.csv").write_text(
        '"","x","label"\n' + "".join(f'"{i}",{i % 3}.5,"{"ab"[i % 2]}"\n' for i in range(1, 9)))
    (tmp_path / "table.csv").write_text(
        '"x","label"\n' + "".join(f'"r{i}",{i % 3}.5,"{"ab"[i % 2]}"\n' for i in range(1, 9)))
    for name in ("csv.csv", "table.csv"):
        ds = read_data(tmp_path / name)
        assert ds.feature_names == ["x"] and ds.label == "label"
        assert ds.y.tolist() == ["b", "a"] * 4
        assert ds.notes


def test_identifier_columns():
    n = 25
    frame = pd.DataFrame({
        "row": np.arange(n), "count": np.arange(1, n + 1), "name": [f"p{i}" for i in range(n)],
        "x": np.random.default_rng(0).normal(size=n), "k": np.arange(n) % 3,
        "code": [str(i * 7) for i in range(n)],  # distinct, but numbers
        "Unnamed: 0": np.arange(n) * 2, "": np.zeros(n),
    })
    found = dict(identifier_columns(frame, list(frame.columns)))
    assert set(found) == {"row", "count", "name", "Unnamed: 0", ""}


def test_id_and_drop_options(tmp_path):
    X, y = measurements(30)
    frame = pd.DataFrame(X, columns=["a", "b"])
    frame["key"] = [f"{i:03d}" for i in range(30)]
    frame["noise"] = 1.0
    frame["label"] = y
    frame.to_csv(tmp_path / "d.csv", index=False)
    ds = read_data(tmp_path / "d.csv", ids=["key"], drop=["noise"])
    assert ds.feature_names == ["a", "b"]
    assert ds.ids["key"].tolist()[:2] == ["000", "001"]  # as written
    assert "--drop: no column named 'nope'" in error_of(
        lambda: read_data(tmp_path / "d.csv", drop=["nope"]))
    assert "cannot also be" in error_of(lambda: read_data(tmp_path / "d.csv", ids=["label"]))


# ---------------------------------------------------------------------------------- columns


def test_text_and_missing_values_make_a_mixed_table(tmp_path):
    (tmp_path / "d.csv").write_text(
        "island,mass,sex,species\n"
        "Biscoe,3750,male,Adelie\nDream,NA,,Gentoo\nBiscoe,3250,female,Adelie\n")
    ds = read_data(tmp_path / "d.csv")
    assert ds.numeric == ["mass"] and ds.categorical == ["island", "sex"]
    assert np.isnan(ds.X["mass"][1]) and ds.X["sex"][1] is np.nan
    assert ds.X["island"].tolist() == ["Biscoe", "Dream", "Biscoe"]


def test_a_stray_word_in_a_numeric_column_is_an_error(tmp_path):
    X, y = measurements(30)
    frame = pd.DataFrame(X, columns=["a", "b"]).astype(object)
    frame.loc[6, "b"] = "n/a?"
    frame["label"] = y
    frame.to_csv(tmp_path / "d.csv", index=False)
    msg = error_of(lambda: read_data(tmp_path / "d.csv"))
    assert "'b'" in msg and "not numeric in 1 row" in msg and "'n/a?'" in msg
    assert "data row 7" in msg and "np." not in msg


def test_sniffed_semicolon_and_decimal_comma(tmp_path):
    text = "Länge;Breite;Art\n" + "".join(
        f"{i % 5},{i % 7};{i % 3},25;{'xy'[i % 2]}\n" for i in range(20))
    (tmp_path / "de.csv").write_text(text, encoding="utf-8")
    found = sniff(tmp_path / "de.csv", "csv")
    assert (found["sep"], found["decimal"]) == (";", ",")
    ds = read_data(tmp_path / "de.csv")
    assert ds.feature_names == ["Länge", "Breite"] and ds.numeric == ["Länge", "Breite"]
    np.testing.assert_allclose(ds.X["Länge"][:3], [0.0, 1.1, 2.2])
    # with the wrong separator forced, the message says which one it looks like
    msg = error_of(lambda: read_data(tmp_path / "de.csv", sep=","))
    assert "';'" in msg


@pytest.mark.parametrize("sep", ["\t", "|", ";", ","])
def test_sniffed_separators(tmp_path, sep):
    X, y = measurements(20)
    frame = pd.DataFrame(X.round(3), columns=["a", "b"])
    frame["label"] = np.array(["u", "v"])[y]
    frame.to_csv(tmp_path / "d.csv.gz", sep=sep, index=False)
    ds = read_data(tmp_path / "d.csv.gz")
    assert ds.feature_names == ["a", "b"]
    np.testing.assert_allclose(ds.X.to_numpy(), X.round(3))


def test_excel_export_bom_cp1252_and_trailing_separators(tmp_path):
    rows = ["Région;Umsatz;Kündigung;;"] + [
        f"{['Nord', 'Süd'][i % 2]};{i},5;{['ja', 'nein'][i % 2]};;" for i in range(12)
    ] + [";;;;"]
    (tmp_path / "cp.csv").write_bytes(("\r\n".join(rows) + "\r\n").encode("cp1252"))
    ds = read_data(tmp_path / "cp.csv")
    assert ds.label == "Kündigung" and ds.feature_names == ["Région", "Umsatz"]
    assert ds.X.shape == (12, 2) and ds.X["Région"][1] == "Süd"
    assert any("Windows-1252" in n for n in ds.notes)
    (tmp_path / "bom.csv").write_bytes(("\ufeffa,label\n" + "".join(
        f"{i % 3}.5,{'xy'[i % 2]}\n" for i in range(6))).encode("utf-8"))
    ds = read_data(tmp_path / "bom.csv")
    assert ds.feature_names == ["a"] and ds.label == "label"


def test_trailing_delimiter_keeps_columns_and_row_numbers(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,label\n" + "".join(
        f"{i % 4}.5,{'oops' if i == 4 else i % 3},{'xy'[i % 2]},\n" for i in range(30)))
    msg = error_of(lambda: read_data(tmp_path / "d.csv"))
    assert "'b'" in msg and "data row 5" in msg and "1." not in msg.split("row")[-1]


# ---------------------------------------------------------------------------------- preparation


def test_preparation_fits_on_training_rows_only():
    train = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
                          "c": ["a", "a", "b", "b", "a", "b"]})
    test = pd.DataFrame({"x": [np.nan, 100.0], "c": ["zzz", np.nan]})
    prep = build_preparation(["x"], ["c"], min_frequency=1).fit(train)
    out = prep.transform(test)
    # median of the training x (4.0), standardised by the training mean/std of the imputed x
    imputed = np.array([1, 2, 4, 4, 5, 6.0])
    z = (4.0 - imputed.mean()) / imputed.std()
    np.testing.assert_allclose(out[0, 0], z)
    assert out[0, 1] > 0 > out[1, 1]  # the missing indicator (scaled with the numbers)
    np.testing.assert_array_equal(out[:, 2:], 0)  # unseen / missing categories: all zeros


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_make_model_shapes(tmp_path):
    from relunet import ReluNetClassifier

    (tmp_path / "d.csv").write_text("x,c,label\n" + "".join(
        f"{i},{'pq'[i % 2]},{'ab'[i % 2]}\n" for i in range(3, 40)))
    ds = read_data(tmp_path / "d.csv")
    model = make_model(ReluNetClassifier(max_iter=2), ds)
    assert [n for n, _ in model.steps] == ["prepare", "classifier"]
    model.fit(ds.X, ds.y)
    assert table_columns(model) == (["x"], ["c"])
    assert model.n_features_in_ == 2  # raw columns in, no id column among them
    array_model = make_model(ReluNetClassifier(), None, scale="minmax")
    assert [n for n, _ in array_model.steps] == ["scale", "net"]


def test_gzip_detected_by_content(tmp_path):
    (tmp_path / "d.csv.gz").write_bytes(gzip.compress(b"a;b;label\n1;2;x\n3;4;y\n"))
    assert read_data(tmp_path / "d.csv.gz").feature_names == ["a", "b"]


# ---------------------------------------------------------------------------------- review fixes


def survey(n=60, seed=0):
    """A palmerpenguins-like table in its real column order: ... sex, year (2007..2009)."""
    rng = np.random.default_rng(seed)
    species = np.array(["Adelie", "Gentoo", "Chinstrap"])[np.arange(n) % 3]
    return pd.DataFrame({
        "species": species,
        "island": np.where(species == "Gentoo", "Biscoe", "Dream"),
        "bill_length_mm": rng.normal(44, 5, n).round(1),
        "sex": rng.choice(["male", "female"], size=n),
        "year": 2007 + np.arange(n) % 3,
    })


def test_a_year_as_the_last_column_is_not_guessed_as_the_label(tmp_path):
    survey().to_csv(tmp_path / "p.csv", index=False)
    message = error_of(lambda: read_data(tmp_path / "p.csv"))
    assert "'year'" in message and "look like years" in message and "--target" in message
    assert "candidates: 'year', 'species', 'island', 'sex'" in message
    assert read_data(tmp_path / "p.csv", target="species").label == "species"


def test_count_like_last_column_next_to_a_text_column_is_ambiguous(tmp_path):
    frame = survey().drop(columns="year")
    frame["n_eggs"] = 2 + np.arange(60) % 3  # 2, 3, 4: not class codes
    frame.to_csv(tmp_path / "p.csv", index=False)
    message = error_of(lambda: read_data(tmp_path / "p.csv"))
    assert "'n_eggs'" in message and "not class codes" in message and "'species'" in message


@pytest.mark.parametrize("first", [0, 1])
def test_class_codes_or_text_as_the_last_column_are_still_guessed(tmp_path, first):
    X, y = measurements()
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "cls": y + first}).to_csv(
        tmp_path / "codes.csv", index=False)
    ds = read_data(tmp_path / "codes.csv")
    assert ds.label == "cls" and sorted(set(ds.y.tolist())) == [first, first + 1]
    frame = survey().drop(columns="year")
    frame[["island", "bill_length_mm", "sex", "species"]].to_csv(tmp_path / "iris_like.csv",
                                                                  index=False)
    ds = read_data(tmp_path / "iris_like.csv")
    assert ds.label == "species" and ds.label_how == "last"


def test_choose_label_requires_the_models_label_and_never_a_feature():
    with pytest.raises(DataError, match="no label column 'species'.*--target"):
        choose_label(["island", "mass"], hint="species", path="new.csv")
    with pytest.raises(DataError, match="'mass' is one of the model's feature columns"):
        choose_label(["island", "mass"], target="mass", exclude=["island", "mass"])
    assert choose_label(["a", "b", "c"], exclude=["c"]) == ("b", "last")


def test_german_thousands_marks_are_numbers(tmp_path):
    lines = ["Region;Alkohol;Preis;Note"] + [
        f"{'AB'[i % 2]};{11 + i % 3},{i % 10};{1 + i % 2}.{i:03d},{i % 100:02d};{'xy'[i % 2]}"
        for i in range(40)]
    (tmp_path / "wein.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ds = read_data(tmp_path / "wein.csv")
    assert ds.numeric == ["Alkohol", "Preis"] and ds.categorical == ["Region"]
    assert ds.X["Preis"].iloc[:2].tolist() == [1000.0, 2001.01]  # "1.000,00", "2.001,01"
    assert ds.X["Alkohol"].iloc[1] == 12.1
    message = error_of(lambda: read_data(tmp_path / "wein.csv", sep=";", decimal="."))
    assert "'Alkohol'" in message  # a decimal comma under --decimal '.': named as before
    # ',' is never a thousands mark when the decimal mark is '.': "1,018.73" stays text, and
    # a text column of number-like values, different in most rows, is refused, not encoded
    lines = ["Region,Preis,Note"] + [f'{"AB"[i % 2]},"1,{i:03d}.5",{"xy"[i % 2]}'
                                     for i in range(40)]
    (tmp_path / "us.csv").write_text("\n".join(lines) + "\n")
    message = error_of(lambda: read_data(tmp_path / "us.csv"))
    assert "column 'Preis' looks like numbers" in message and "--drop Preis" in message


def test_text_with_a_different_value_in_most_rows_gets_a_note(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"cabin": [f"C{i}" if i % 4 else "" for i in range(40)],
                          "x": rng.normal(size=40), "label": np.arange(40) % 2})
    frame.loc[frame.cabin == "", "cabin"] = "B" + pd.Series(range(40)).astype(str)
    frame.loc[::9, "cabin"] = "shared"
    frame.to_csv(tmp_path / "t.csv", index=False)
    ds = read_data(tmp_path / "t.csv")
    assert ds.categorical == ["cabin"]
    assert any("text column 'cabin' has" in n and "--drop cabin" in n for n in ds.notes)


def test_parquet_named_index_is_a_column_for_id_drop_and_target(tmp_path):
    X, y = measurements()
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "kind": np.array(["p", "q"])[y]},
                         index=pd.Index(np.arange(100, 160), name="penguin_id"))
    pytest.importorskip("pyarrow", reason="writing Parquet needs pyarrow (relunet[parquet])")
    frame.to_parquet(tmp_path / "p.parquet")
    ds = read_data(tmp_path / "p.parquet", ids=["penguin_id"])
    assert ds.feature_names == ["a", "b"] and ds.ids["penguin_id"].tolist()[:2] == [100, 101]
    ds = read_data(tmp_path / "p.parquet")
    assert ds.feature_names == ["a", "b"]
    assert any("index ('penguin_id') is not used as a feature" in n for n in ds.notes)
    ds = read_data(tmp_path / "p.parquet", drop=["penguin_id"])
    assert ds.feature_names == ["a", "b"]
    ds = read_data(tmp_path / "p.parquet", target="penguin_id", drop=["kind"])
    assert ds.label == "penguin_id" and ds.y.tolist()[:2] == [100, 101]


@pytest.mark.parametrize("name", ["id", "penguin_id", "PassengerId", "rowid", "index",
                                  "Unnamed: 0"])
def test_id_named_unique_integers_after_a_split_are_left_out(tmp_path, name):
    X, y = measurements()
    rows = np.random.default_rng(1).permutation(np.arange(1, 101))[:60]  # a split's row ids
    frame = pd.DataFrame({name: rows, "a": X[:, 0], "b": X[:, 1], "label": y})
    frame.to_csv(tmp_path / "t.csv", index=False)
    ds = read_data(tmp_path / "t.csv")
    assert ds.feature_names == ["a", "b"]
    assert any(repr(name) in n and "not used as a feature" in n for n in ds.notes)


def test_unique_integers_not_named_like_an_id_stay_a_feature_with_a_note(tmp_path):
    X, y = measurements()
    frame = pd.DataFrame({"mass": 3000 + 7 * np.arange(60), "a": X[:, 0], "label": y})
    frame.to_csv(tmp_path / "t.csv", index=False)
    ds = read_data(tmp_path / "t.csv")
    assert ds.feature_names == ["mass", "a"]
    assert any("'mass' has a different integer in every row" in n and "--id mass" in n
               for n in ds.notes)


def test_a_guessed_label_of_decimal_comma_prices_is_a_measurement(tmp_path):
    lines = ["Region;Preis"] + [f"{'AB'[i % 2]};10{i % 3}{i % 7},{i % 10}3" for i in range(30)]
    (tmp_path / "w.csv").write_text("\n".join(lines) + "\n")
    message = error_of(lambda: read_data(tmp_path / "w.csv"))
    assert "'Preis'" in message and "not whole" in message
