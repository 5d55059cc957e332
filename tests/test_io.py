"""Model files: exact round trips, metadata, atomic writes and hostile files."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
from _problems import small_classifier
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

import relunet
from relunet import ReluNetClassifier
from relunet.io import FORMAT_VERSION, ModelFileError, load, read_metadata, save

pytestmark = [
    pytest.mark.filterwarnings("ignore", category=ConvergenceWarning),
    pytest.mark.usefixtures("one_blas_thread"),
]



@pytest.fixture(scope="module")
def data():
    X, y = make_blobs(n_samples=90, centers=3, n_features=5, random_state=0)
    return X, y


def small(**kw):
    """The model-file tests' model: H=8 (some tests count its weights)."""
    return small_classifier(**{"hidden_units": 8, "max_iter": 20, **kw})


@pytest.fixture(scope="module")
def model_file(data, tmp_path_factory):
    X, y = data
    path = tmp_path_factory.mktemp("model") / "model.npz"
    save(small().fit(X, y), path)
    return path


def _members(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _write(path, members):
    """Write an .npz of ``members`` (arrays may be object arrays: savez pickles them)."""
    np.savez(path, **members)
    return path


def _with_metadata(path, out, **changes):
    members = _members(path)
    meta = json.loads(members["metadata"].tobytes())
    meta.update(changes)
    members["metadata"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    return _write(out, members)


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_classifier_round_trip_is_exact(data, tmp_path, dtype):
    X, y = data
    m = small(dtype=dtype, early_stopping=True).fit(X, y)
    path = tmp_path / "m.npz"
    assert m.save(path) == path
    m2 = load(path)
    assert type(m2) is ReluNetClassifier
    np.testing.assert_array_equal(m2.predict_proba(X), m.predict_proba(X))
    np.testing.assert_array_equal(m2.decision_function(X), m.decision_function(X))
    np.testing.assert_array_equal(m2.predict(X), m.predict(X))
    assert m2.score(X, y) == m.score(X, y)
    assert m2.W1_.dtype == np.dtype(dtype)
    params, params2 = m.get_params(), m2.get_params()
    assert params == params2
    for attr in ("n_features_in_", "loss_curve_", "validation_loss_curve_",
                 "validation_scores_", "best_loss_", "n_iter_", "t_", "history_",
                 "stop_reason_", "fit_seconds_"):
        assert getattr(m2, attr) == getattr(m, attr), attr
    np.testing.assert_array_equal(m2.classes_, m.classes_)


@pytest.mark.parametrize(
    "labels",
    [np.array(["cat", "dog", "emu"]), np.array(["cat", "dog", "emu"], dtype=object),
     np.array([-3, 0, 12]), np.array([3, 0, 12], dtype=np.uint8), np.array([0.0, 1.0, 2.0]),
     np.array([False, True, True])],
    ids=["str", "object-str", "int", "uint8", "float", "bool"],
)
def test_label_types_round_trip(data, tmp_path, labels):
    X, y = data
    yl = labels[y]
    m = small().fit(X, yl)
    path = tmp_path / "m.npz"
    save(m, path)
    m2 = load(path)
    np.testing.assert_array_equal(m2.classes_, m.classes_)
    assert m2.classes_.dtype == m.classes_.dtype
    assert type(m2.classes_[0]) is type(m.classes_[0])  # noqa: E721
    np.testing.assert_array_equal(m2.predict(X), m.predict(X))


def test_string_labels_fit_predict_save_load(data, tmp_path):
    X, y = data
    names = pd.Series(np.array(["setosa", "versicolor", "virginica"])[y])
    m = small().fit(X, names)
    pred = m.predict(X)
    assert set(pred) <= {"setosa", "versicolor", "virginica"}
    save(m, tmp_path / "m.npz")
    m2 = load(tmp_path / "m.npz")
    np.testing.assert_array_equal(m2.predict(X), pred)
    assert all(isinstance(v, str) for v in m2.predict(X))
    assert read_metadata(tmp_path / "m.npz")["classes"] == ["setosa", "versicolor", "virginica"]


@pytest.mark.parametrize(
    "scaler",
    [StandardScaler(), StandardScaler(with_mean=False), StandardScaler(with_std=False),
     MinMaxScaler(), MinMaxScaler(feature_range=(-1, 2), clip=True)],
    ids=["standard", "standard-no-mean", "standard-no-std", "minmax", "minmax-range-clip"],
)
def test_pipeline_round_trip_is_exact(data, tmp_path, scaler):
    X, y = data
    pipe = make_pipeline(scaler, small()).fit(X, y)
    save(pipe, tmp_path / "p.npz")
    pipe2 = load(tmp_path / "p.npz")
    assert isinstance(pipe2, Pipeline)
    assert [n for n, _ in pipe2.steps] == [n for n, _ in pipe.steps]
    assert type(pipe2[0]) is type(scaler)
    assert pipe2[0].get_params() == pipe[0].get_params()
    Xt = X * 1.5 + 1  # also outside the training range (clip)
    np.testing.assert_array_equal(pipe2.predict_proba(Xt), pipe.predict_proba(Xt))
    np.testing.assert_array_equal(pipe2[0].transform(Xt), pipe[0].transform(Xt))
    meta = read_metadata(tmp_path / "p.npz")
    assert meta["model"] == "Pipeline"
    assert meta["preprocessing"]["kind"] == "pipeline"
    assert meta["preprocessing"]["steps"][0][1]["type"] == type(scaler).__name__


def test_pipeline_with_dataframe_keeps_feature_names(data, tmp_path):
    X, y = data
    df = pd.DataFrame(X, columns=list("abcde"))
    pipe = make_pipeline(StandardScaler(), small()).fit(df, y)
    save(pipe, tmp_path / "p.npz")
    pipe2 = load(tmp_path / "p.npz")
    assert list(pipe2.feature_names_in_) == list("abcde")
    np.testing.assert_array_equal(pipe2.predict_proba(df), pipe.predict_proba(df))
    with pytest.raises(ValueError, match="feature names"):
        pipe2.predict(df[list("edcba")])
    m = small().fit(df, y)
    save(m, tmp_path / "m.npz")
    assert list(load(tmp_path / "m.npz").feature_names_in_) == list("abcde")
    assert read_metadata(tmp_path / "m.npz")["feature_names"] == list("abcde")


def test_hyperparameters_round_trip(data, tmp_path):
    X, y = data
    m = small(solver="sgd", class_weight={0: 2.0, 2: 0.5}, batch_size=16, alpha=3e-4,
              learning_rate="invscaling", callback=lambda info: None,
              random_state=np.random.RandomState(0)).fit(X, y)
    save(m, tmp_path / "m.npz")
    m2 = load(tmp_path / "m.npz")
    p, p2 = m.get_params(), m2.get_params()
    assert p2["class_weight"] == {0: 2.0, 2: 0.5}
    assert all(type(k) is int for k in p2["class_weight"])
    assert p2["callback"] is None and p2["random_state"] is None
    for k in ("callback", "random_state"):
        p.pop(k), p2.pop(k)
    assert p == p2


def test_loaded_model_keeps_training(data, tmp_path):
    X, y = data
    m = small().fit(X, y)
    save(m, tmp_path / "m.npz")
    a = load(tmp_path / "m.npz")
    a.partial_fit(X, y)  # no classes needed: they are in the file
    assert a.n_iter_ == m.n_iter_ + 1 and a.t_ == m.t_ + len(y)
    b = load(tmp_path / "m.npz").set_params(warm_start=True, max_iter=3)
    b.fit(X, y)
    assert b.n_iter_ == m.n_iter_ + 3
    assert b.loss_curve_[m.n_iter_] < b.loss_curve_[0]  # it continued, not restarted
    pipe = make_pipeline(MinMaxScaler(), small()).fit(X, y)
    save(pipe, tmp_path / "p.npz")
    p2 = load(tmp_path / "p.npz")
    p2[-1].partial_fit(p2[0].transform(X), y)


def test_metadata_keys(data, tmp_path):
    X, y = data
    m = small().fit(X, y)
    save(m, tmp_path / "m.npz")
    meta = read_metadata(tmp_path / "m.npz")
    assert set(meta) == {
        "format", "format_version", "relunet_version", "created", "model", "hyperparameters",
        "classes", "classes_dtype", "n_features_in", "feature_names", "n_hidden",
        "n_classes", "weights_dtype", "training", "preprocessing", "table",
    }
    assert meta["format"] == "relunet-model" and meta["format_version"] == FORMAT_VERSION
    assert meta["relunet_version"] == relunet.__version__
    assert meta["created"].endswith("+00:00")
    assert meta["model"] == "ReluNetClassifier"
    assert meta["classes"] == [0, 1, 2] and meta["n_features_in"] == 5
    assert meta["n_hidden"] == 8 and meta["n_classes"] == 3
    assert meta["weights_dtype"] == "float32" and meta["feature_names"] is None
    assert "callback" not in meta["hyperparameters"]
    assert meta["hyperparameters"]["hidden_units"] == 8
    t = meta["training"]
    assert set(t) == {"n_iter", "t", "best_loss", "final_loss", "stop_reason", "interrupted",
                      "fit_seconds",
                      "loss_curve", "validation_loss_curve", "validation_scores", "history"}
    assert t["n_iter"] == m.n_iter_ and t["final_loss"] == m.loss_curve_[-1]
    assert t["validation_loss_curve"] is None
    assert meta["preprocessing"] == {"kind": "none"}


def test_file_has_only_plain_arrays(data, model_file):
    with zipfile.ZipFile(model_file) as z:
        assert sorted(z.namelist()) == ["W1.npy", "W2.npy", "metadata.npy"]
    members = _members(model_file)  # allow_pickle=False succeeds
    assert members["metadata"].dtype == np.uint8


def test_path_is_used_as_given(data, tmp_path):
    X, y = data
    save(small().fit(X, y), str(tmp_path / "model.relunet"))
    assert os.listdir(tmp_path) == ["model.relunet"]
    assert load(tmp_path / "model.relunet").n_features_in_ == 5


# ------------------------------------------------------------------ saving refuses
def test_save_refuses_what_it_cannot_store(data, tmp_path):
    X, y = data
    with pytest.raises(NotFittedError):
        save(ReluNetClassifier(), tmp_path / "x.npz")
    with pytest.raises(NotFittedError):
        save(make_pipeline(StandardScaler(), small().fit(X, y)), tmp_path / "x.npz")
    with pytest.raises(TypeError, match="RobustScaler"):
        save(make_pipeline(RobustScaler(), small()).fit(X, y), tmp_path / "x.npz")
    with pytest.raises(TypeError, match="ending in a ReluNetClassifier"):
        from sklearn.linear_model import LogisticRegression

        save(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
             tmp_path / "x.npz")
    with pytest.raises(TypeError, match="LogisticRegression"):
        from sklearn.linear_model import LogisticRegression

        save(LogisticRegression().fit(X, y), tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


def test_save_is_atomic(data, tmp_path, monkeypatch):
    X, y = data
    path = tmp_path / "m.npz"
    m = small().fit(X, y)
    save(m, path)
    before = path.read_bytes()

    def failing_savez(file, **arrays):
        file.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        save(small(random_state=1).fit(X, y), path)
    assert path.read_bytes() == before  # the old file is intact
    assert os.listdir(tmp_path) == ["m.npz"]  # and no temporary file is left behind
    monkeypatch.undo()
    save(small(random_state=1).fit(X, y), path)
    assert path.read_bytes() != before and os.listdir(tmp_path) == ["m.npz"]
    mode = os.stat(path).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


# ------------------------------------------------------------------ hostile files
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.npz")
    with pytest.raises(FileNotFoundError):
        read_metadata(tmp_path / "nope.npz")


def _assert_refused(path, match):
    for reader in (load, read_metadata):
        with pytest.raises(ModelFileError, match=match) as info:
            reader(path)
        assert str(path) in str(info.value)
        assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_file(model_file, tmp_path, keep):
    raw = model_file.read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(raw[: int(len(raw) * keep)])
    _assert_refused(path, "not a readable model file|damaged|truncated")


def test_random_bytes_and_empty_file(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    _assert_refused(path, r"not a relunet model file \(not an .npz archive")
    path.write_bytes(b"")
    _assert_refused(path, "the file is empty")
    path.write_bytes(b"PK\x03\x04" + np.random.default_rng(1).bytes(3000))  # zip magic only
    _assert_refused(path, "not a readable model file")


def test_corrupted_array_data(model_file, tmp_path):
    raw = bytearray(model_file.read_bytes())
    start = raw.find(b"W1.npy") + 200  # inside W1's data: the CRC no longer matches
    raw[start : start + 16] = b"\xff" * 16
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(raw))
    _assert_refused(path, "damaged|NaN")


def test_pickle_file_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(Evil()))
    _assert_refused(path, "pickled data")
    assert not marker.exists()


def test_object_arrays_are_refused_unread(model_file, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    members = _members(model_file)
    members["W1"] = np.array([Evil()], dtype=object)  # np.savez pickles object arrays
    _assert_refused(_write(tmp_path / "obj.npz", members), "Python objects")
    members = _members(model_file)
    members["scaler.mean_"] = np.array([{"a": 1}], dtype=object)  # an extra entry too
    _assert_refused(_write(tmp_path / "obj2.npz", members), "Python objects")
    assert not marker.exists()


def test_npz_without_metadata(model_file, tmp_path):
    members = _members(model_file)
    del members["metadata"]
    _assert_refused(_write(tmp_path / "nometa.npz", members), "no 'metadata'")
    _assert_refused(_write(tmp_path / "other.npz", {"x": np.arange(3)}),
                    "unexpected entry 'x.npy'")
    np.save(tmp_path / "single.npy", np.arange(3))
    _assert_refused(tmp_path / "single.npy", "single .npy")


def test_foreign_or_bad_metadata(model_file, tmp_path):
    members = _members(model_file)
    members["metadata"] = np.frombuffer(b"{not json", np.uint8)
    _assert_refused(_write(tmp_path / "a.npz", members), "not valid JSON")
    members["metadata"] = np.frombuffer(b'{"format": "something-else"}', np.uint8)
    _assert_refused(_write(tmp_path / "b.npz", members), "without format 'relunet-model'")
    members["metadata"] = np.frombuffer(b"[1, 2]", np.uint8)
    _assert_refused(_write(tmp_path / "c.npz", members), "without format")
    members["metadata"] = np.arange(4, dtype=np.int64)
    _assert_refused(_write(tmp_path / "d.npz", members), "dtype int64")
    bad = _with_metadata(model_file, tmp_path / "e.npz", classes="abc")
    _assert_refused(bad, "'classes' is missing or not a list")
    bad = _with_metadata(model_file, tmp_path / "f.npz", hyperparameters={"alpha": -1})
    with pytest.raises(ModelFileError, match="invalid hyper-parameters.*alpha"):
        load(bad)
    bad = _with_metadata(model_file, tmp_path / "g.npz", hyperparameters={"evil": 1})
    with pytest.raises(ModelFileError, match="unknown hyper-parameters"):
        load(bad)
    bad = _with_metadata(model_file, tmp_path / "u.npz", classes=[2, 1, 0])
    with pytest.raises(ModelFileError, match="sorted and distinct"):
        load(bad)
    bad = _with_metadata(model_file, tmp_path / "h.npz", classes_dtype="V8")
    with pytest.raises(ModelFileError, match="inconsistent metadata"):
        load(bad)


def test_future_format_version(model_file, tmp_path):
    path = _with_metadata(model_file, tmp_path / "future.npz", format_version=FORMAT_VERSION + 1)
    _assert_refused(path, f"format version {FORMAT_VERSION + 1}.*upgrade relunet")
    path = _with_metadata(model_file, tmp_path / "zero.npz", format_version="1")
    _assert_refused(path, "invalid format_version")


@pytest.mark.parametrize(
    "name, value, match",
    [
        ("W1", np.zeros((7, 8), np.float32), r"W1 has shape \(7, 8\), expected \(6, H\)"),
        ("W1", np.zeros((6, 8, 1), np.float32), "'W1' has shape"),
        ("W2", np.zeros((9, 4), np.float32), r"'W2' has shape \(9, 4\), expected \(9, 3\)"),
        ("W2", np.zeros((9, 3), np.float64), "'W2' has dtype float64"),
        ("W1", np.zeros((6, 8), np.int64), "'W1' has dtype int64"),
        ("W1", np.full((6, 8), np.nan, np.float32), "NaN or infinite"),
    ],
    ids=["W1-rows", "W1-3d", "W2-cols", "W2-dtype", "W1-int", "W1-nan"],
)
def test_wrong_arrays(model_file, tmp_path, name, value, match):
    members = _members(model_file)
    members[name] = value
    path = _write(tmp_path / "bad.npz", members)
    with pytest.raises(ModelFileError, match=match):
        load(path)


def test_wrong_scaler_arrays(data, tmp_path):
    X, y = data
    save(make_pipeline(StandardScaler(), small()).fit(X, y), tmp_path / "p.npz")
    members = _members(tmp_path / "p.npz")
    members["prep.0.mean_"] = np.zeros(4)
    with pytest.raises(ModelFileError, match=r"'prep.0.mean_' has shape \(4,\)"):
        load(_write(tmp_path / "bad.npz", members))
    members = _members(tmp_path / "p.npz")
    del members["prep.0.scale_"]
    with pytest.raises(ModelFileError, match="'prep.0.scale_' is missing"):
        load(_write(tmp_path / "bad2.npz", members))


def test_huge_declared_shape_is_not_allocated(model_file, tmp_path):
    # A header may claim any shape; it is checked against the stored bytes before reading.
    members = _members(model_file)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (6, 10**12)}
    )
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("W1.npy", header.getvalue() + np.zeros((6, 8), np.float32).tobytes())
        for name in ("W2", "metadata"):
            b = io.BytesIO()
            np.save(b, members[name])
            z.writestr(name + ".npy", b.getvalue())
    _assert_refused(path, "'W1' is truncated")


# ------------------------------------------------------------------ tables (format 2)
def _table():
    rng = np.random.default_rng(0)
    n = 90
    X = pd.DataFrame({
        "mass": rng.normal(size=n),
        "island": rng.choice(["Biscoe", "Dream", "Torgersen"], size=n).astype(object),
    })
    y = np.where((X["mass"] > 0) ^ (X["island"] == "Dream"), "a", "b")
    X.loc[::9, "mass"] = np.nan
    X.loc[::11, "island"] = np.nan
    return X, y


def test_table_pipeline_round_trip_is_exact(tmp_path):
    from relunet.tables import build_preparation

    X, y = _table()
    model = Pipeline([("prepare", build_preparation(["mass"], ["island"], min_frequency=2)),
                      ("classifier", small())]).fit(X, y)
    save(model, tmp_path / "t.npz", table={"label": "species", "ids": ["id"]})
    back = load(tmp_path / "t.npz")
    new = pd.DataFrame({"mass": [np.nan, 0.3], "island": ["Atlantis", np.nan]})
    for rows in (X, new):
        np.testing.assert_array_equal(back.predict_proba(rows), model.predict_proba(rows))
    meta = read_metadata(tmp_path / "t.npz")
    assert meta["table"] == {"label": "species", "ids": ["id"]}
    assert meta["format_version"] == 2 and meta["preprocessing"]["kind"] == "pipeline"
    with zipfile.ZipFile(tmp_path / "t.npz") as z:
        names = z.namelist()
    assert all(n in ("W1.npy", "W2.npy", "metadata.npy") or n.startswith("prep.")
               for n in names)
    assert all(m.dtype != object for m in _members(tmp_path / "t.npz").values())


def test_save_names_a_step_it_cannot_store(data, tmp_path):
    X, y = data
    with pytest.raises(TypeError, match="'robust'.*RobustScaler"):
        save(Pipeline([("robust", RobustScaler()), ("net", small())]).fit(X, y),
             tmp_path / "x.npz")


def test_version_1_files_still_load(data, tmp_path):
    # A format-1 file as relunet 0.1 wrote it: the scaler's arrays as scaler.<attr>.
    X, y = data
    pipe = make_pipeline(StandardScaler(), small()).fit(X, y)
    save(pipe, tmp_path / "v2.npz")
    members = _members(tmp_path / "v2.npz")
    meta = json.loads(members.pop("metadata").tobytes())
    scaler = pipe[0]
    for attr in ("mean_", "var_", "scale_"):
        members["scaler." + attr] = members.pop("prep.0." + attr)
    meta["format_version"] = 1
    meta.pop("table")
    meta["preprocessing"] = {
        "kind": "standard", "step_names": ["standardscaler", "relunetclassifier"],
        "params": scaler.get_params(), "n_features_in": 5, "feature_names": None,
        "n_samples_seen": int(scaler.n_samples_seen_), "arrays": ["mean_", "var_", "scale_"],
    }
    members["metadata"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    back = load(_write(tmp_path / "v1.npz", members))
    np.testing.assert_array_equal(back.predict_proba(X), pipe.predict_proba(X))
    assert [n for n, _ in back.steps] == ["standardscaler", "relunetclassifier"]


def test_a_damaged_preparation_spec_is_a_model_file_error(data, tmp_path):
    X, y = data
    save(make_pipeline(StandardScaler(), small()).fit(X, y), tmp_path / "p.npz")
    meta = read_metadata(tmp_path / "p.npz")
    prep = meta["preprocessing"]
    prep["steps"][0][1]["type"] = "FunctionTransformer"  # would run code: never built
    with pytest.raises(ModelFileError, match="FunctionTransformer"):
        load(_with_metadata(tmp_path / "p.npz", tmp_path / "bad.npz", preprocessing=prep))
    prep["steps"][0][1]["type"] = "StandardScaler"
    prep["steps"][0][1]["arrays"]["mean_"] = "prep.9.mean_"
    with pytest.raises(ModelFileError, match="'prep.9.mean_' is missing"):
        load(_with_metadata(tmp_path / "p.npz", tmp_path / "bad2.npz", preprocessing=prep))


def test_save_keeps_a_very_long_training_within_the_reading_budget(data, tmp_path):
    """Save never writes a file load refuses: 40 000 epochs of history would pass the JSON
    value budget, so the oldest epochs' records are dropped and counted."""
    X, y = data
    clf = small().fit(X, y)
    n = 40_000
    clf.history_ = [{"epoch": i + 1, "train_loss": 1.0 / (i + 1), "learning_rate": 0.001,
                     "seconds": 0.01, "val_loss": None, "val_accuracy": None,
                     "train_accuracy": 0.5, "complete": True} for i in range(n)]
    clf.loss_curve_ = [1.0 / (i + 1) for i in range(n)]
    save(clf, tmp_path / "long.npz")
    back = load(tmp_path / "long.npz")
    training = read_metadata(tmp_path / "long.npz")["training"]
    kept = len(back.history_)
    assert 0 < kept < n and training["epochs_dropped"] == n - kept
    assert back.history_ == clf.history_[-kept:]
    assert back.loss_curve_ == clf.loss_curve_[-kept:]
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))


def test_save_refuses_metadata_that_would_not_load(data, tmp_path):
    X, y = data
    clf = small().fit(X, y)
    clf.feature_names_in_ = np.array(["x" * 5000] + [f"f{i}" for i in range(1, X.shape[1])],
                                     dtype=object)
    with pytest.raises(ValueError, match="would not load .*a string of 5,000 characters"):
        save(clf, tmp_path / "names.npz")
    assert not (tmp_path / "names.npz").exists() and os.listdir(tmp_path) == []
