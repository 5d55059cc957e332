"""relunet.prepio: fitted preparation steps saved as JSON + plain arrays, rebuilt exactly."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    RobustScaler,
    StandardScaler,
)

from relunet import prepio


def round_trip(est):
    """dump -> JSON text -> load, fetching arrays as the model reader would."""
    spec, arrays = prepio.dump(est)
    assert all(k.startswith("prep.") for k in arrays)
    assert all(a.dtype in (np.float64, np.int64) for a in arrays.values())  # never objects
    spec = json.loads(json.dumps(spec, allow_nan=False))

    def fetch(name, *, dtypes, ndim, shape=None):
        a = arrays[name]
        assert a.dtype.name in dtypes and a.ndim == ndim
        assert shape is None or a.shape == tuple(shape)
        assert np.all(np.isfinite(a))  # the reader refuses NaN and inf
        return a

    return prepio.load(spec, fetch)


def frame(n=120, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "a": rng.normal(size=n),
        "b": rng.uniform(0, 10, n),
        "c": rng.choice(["x", "y", "z", "rare1", "rare2"], p=[.4, .3, .26, .02, .02],
                        size=n).astype(object),
        "d": rng.integers(0, 3, n),
    })
    df.loc[rng.random(n) < 0.1, "a"] = np.nan
    df.loc[rng.random(n) < 0.1, "c"] = np.nan
    return df


def new_rows():
    return pd.DataFrame({"a": [np.nan, 1e6, 0.0], "b": [0.0, -5, 3],
                         "c": ["never seen", np.nan, "rare2"], "d": [7, 1, 2]})


def assert_same_transform(a, b, *frames):
    for X in frames:
        np.testing.assert_array_equal(a.transform(X), b.transform(X))


@pytest.mark.parametrize("impute", ["median", "mean", "most_frequent", "constant"])
@pytest.mark.parametrize("handle_unknown", ["infrequent_if_exist", "ignore"])
def test_the_table_preparation_round_trips_exactly(impute, handle_unknown):
    numeric = Pipeline([("impute", SimpleImputer(strategy=impute, add_indicator=True,
                                                 fill_value=-1.0)),
                        ("scale", StandardScaler())])
    ct = ColumnTransformer([
        ("numeric", numeric, ["a", "b"]),
        ("categorical", OneHotEncoder(handle_unknown=handle_unknown, min_frequency=5,
                                      sparse_output=False), ["c", "d"]),
    ], remainder="drop").fit(frame())
    back = round_trip(ct)
    assert_same_transform(ct, back, frame(), frame(seed=1), new_rows())
    np.testing.assert_array_equal(back.get_feature_names_out(), ct.get_feature_names_out())
    cats = back.named_transformers_["categorical"].categories_
    assert cats[0].tolist()[:5] == ["rare1", "rare2", "x", "y", "z"] and cats[1].dtype.kind == "i"


@pytest.mark.parametrize("scaler", [StandardScaler(with_mean=False), MinMaxScaler((-1, 2)),
                                    "passthrough"])
def test_scalers_and_passthrough(scaler):
    X = frame()[["a", "b"]].fillna(0.0)
    pipe = Pipeline([("scale", scaler)]).fit(X) if scaler == "passthrough" else scaler.fit(X)
    assert_same_transform(pipe, round_trip(pipe), X, X * 3 - 1)


def test_remainder_passthrough_and_integer_columns():
    X = frame()[["a", "b", "d"]].fillna(0.0).to_numpy()
    ct = ColumnTransformer([("s", StandardScaler(), [0]), ("drop", "drop", [1])],
                           remainder="passthrough").fit(X)
    assert_same_transform(ct, round_trip(ct), X)


def test_all_infrequent_and_missing_category():
    X = pd.DataFrame({"c": np.array(["p", "q", "r", np.nan, "p"], dtype=object)})
    enc = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=3,
                        sparse_output=False).fit(X)
    back = round_trip(enc)
    test = pd.DataFrame({"c": np.array(["p", "q", "zz", np.nan], dtype=object)})
    np.testing.assert_array_equal(back.transform(test), enc.transform(test))
    assert [c.tolist() for c in back.infrequent_categories_] == \
        [c.tolist() for c in enc.infrequent_categories_]


@pytest.mark.filterwarnings("ignore:Skipping features without any observed values")
def test_imputer_with_an_all_missing_column():
    X = np.array([[1.0, np.nan], [3.0, np.nan], [np.nan, np.nan]])
    imp = SimpleImputer(add_indicator=True).fit(X)
    back = round_trip(imp)
    np.testing.assert_array_equal(back.transform(X), imp.transform(X))


def test_anything_else_is_a_type_error_naming_the_step():
    X = frame()[["a", "b"]].fillna(0.0)
    pipe = Pipeline([("robust", RobustScaler())]).fit(X)
    with pytest.raises(TypeError, match=r"'preparation/robust'.*RobustScaler"):
        prepio.dump(pipe)
    ct = ColumnTransformer([("s", StandardScaler(), ["a"])], remainder=RobustScaler()).fit(X)
    with pytest.raises(TypeError, match="remainder"):
        prepio.dump(ct)


def test_a_malformed_spec_is_a_value_error():
    with pytest.raises(ValueError, match="unknown preparation step type"):
        prepio.load({"type": "FunctionTransformer"}, None)
    spec, arrays = prepio.dump(StandardScaler().fit(np.ones((3, 2))))
    spec["params"]["evil"] = 1
    with pytest.raises(ValueError, match="unknown StandardScaler parameters"):
        prepio.load(spec, lambda name, **kw: arrays[name])
