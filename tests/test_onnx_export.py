"""relunet.onnx_export: the ONNX graph computes what the Python model computes.

One parity body runs on two independent ONNX engines (onnxruntime and onnx's pure-NumPy
``onnx.reference.ReferenceEvaluator``) and is compared with scikit-learn's ``predict_proba``
and ``predict`` of the fitted model.
"""

import sys
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx (pip install 'relunet[onnx]')")
ort = pytest.importorskip("onnxruntime",
                          reason="parity is checked with onnxruntime (relunet[onnx])")
pd = pytest.importorskip("pandas", reason="the ColumnTransformer models are fitted on DataFrames")

from _problems import small_classifier  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler  # noqa: E402

import relunet  # noqa: E402
from relunet import cli  # noqa: E402
from relunet.data import MissingDependency  # noqa: E402
from relunet.onnx_export import register_skl2onnx, to_onnx  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_blas_thread")

# onnxruntime 1.17 (the oldest release the [onnx] extra allows) reads IR versions <= 9 and
# ai.onnx opsets <= 20 (its release notes: ONNX 1.15 support).
ORT_1_17_MAX_IR, ORT_1_17_MAX_OPSET = 9, 20
TOL = {np.float32: 1e-6, np.float64: 1e-12}
LABELS = {
    "binary-int": np.array([3, 7]),
    "many-int": np.arange(12) * 10 - 30,
    "strings": np.array(["cat", "dog", "émeu"]),
    "floats": np.array([-1.0, 2.0, 4.0]),  # must come out as floats, not as integers
}


def run_onnx(proto, feeds, engine):
    if engine == "onnxruntime":
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(proto.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        return dict(zip(["label", "probabilities"], session.run(["label", "probabilities"],
                                                                 feeds), strict=True))
    label, proba = ReferenceEvaluator(proto).run(["label", "probabilities"], feeds)
    return {"label": label, "probabilities": proba}


def assert_parity(model, X, feeds, engine, dtype):
    out = run_onnx(to_onnx(model), feeds, engine)
    expected = model.predict_proba(X)
    assert out["probabilities"].dtype == dtype
    assert out["probabilities"].shape == expected.shape
    np.testing.assert_allclose(out["probabilities"], expected, rtol=0, atol=TOL[dtype])
    labels = model.predict(X)
    assert out["label"].shape == labels.shape
    assert np.array_equal(np.asarray(out["label"]).astype(labels.dtype), labels)
    assert np.asarray(out["label"]).dtype.kind == labels.dtype.kind or labels.dtype.kind == "U"


def fitted(labels, dtype, scaling, seed=0, n=240, d=6):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, d)) * 3 + 1).astype(dtype)
    y = labels[rng.integers(0, len(labels), n)]
    y[: len(labels)] = labels  # every class present
    clf = small_classifier(hidden_units=10, max_iter=15, dtype=np.dtype(dtype).name)
    model = clf if scaling is None else Pipeline([("scale", scaling), ("net", clf)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, y)


@pytest.mark.parametrize("engine", ["onnxruntime", "reference"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scaling", [None, "standard", "minmax"])
@pytest.mark.parametrize("labels", list(LABELS))
def test_predictions_match_the_python_model(engine, dtype, scaling, labels):
    scaler = {None: None, "standard": StandardScaler(),
              "minmax": MinMaxScaler(feature_range=(-1, 2), clip=True)}[scaling]
    model = fitted(LABELS[labels], dtype, scaler)
    rng = np.random.default_rng(1)
    for n in (1, 10_000):  # dynamic batch: one graph for both
        X = (rng.standard_normal((n, 6)) * 4 + 1).astype(dtype)
        assert_parity(model, X, {"X": X}, engine, dtype)


def test_hand_computed_network():
    """Weights set by hand: the graph's outputs equal the note's formulas written out here."""
    clf = fitted(np.array([0, 1, 2]), np.float64, None, d=2)
    clf.W1_ = np.array([[1.0, -1.0], [2.0, 0.5], [0.0, 1.0]])  # last row: bias
    clf.W2_ = np.array([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0], [0.5, 0.0, 0.0]])
    X = np.array([[1.0, 1.0], [-1.0, 2.0], [0.0, 0.0]])
    h = np.maximum(X @ clf.W1_[:2] + clf.W1_[2], 0)
    f = h @ clf.W2_[:2] + clf.W2_[2]
    p = np.exp(f) / np.exp(f).sum(axis=1, keepdims=True)
    out = run_onnx(to_onnx(clf), {"X": X}, "onnxruntime")
    np.testing.assert_allclose(out["probabilities"], p, rtol=1e-14)
    assert out["label"].tolist() == np.argmax(f, axis=1).tolist()


def test_ties_go_to_the_first_class_as_in_predict():
    clf = fitted(np.array(["b", "a", "c"]), np.float64, None, d=2)
    clf.W2_ = np.zeros_like(clf.W2_)  # all scores equal
    X = np.ones((3, 2))
    out = run_onnx(to_onnx(clf), {"X": X}, "onnxruntime")
    assert out["label"].tolist() == ["a"] * 3 == clf.predict(X).tolist()


# ------------------------------------------------------------------------------ tables
def table(n, seed):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.normal(40, 12, n),
        "income": rng.lognormal(10, 1, n),
        "colour": rng.choice(["red", "green", "blue", "mauve"], n, p=[0.5, 0.3, 0.18, 0.02]),
        "town": rng.choice(["Oslo", "Bergen", "Tromsø"], n),
        "ignored": rng.standard_normal(n),
    })
    frame.loc[frame.index % 7 == 3, "age"] = np.nan
    frame.loc[frame.index % 11 == 5, "colour"] = np.nan
    return frame


def one_missing_marker(frame):
    """None -> NaN in text columns.  pandas < 3 keeps both in object columns and scikit-learn's
    OneHotEncoder counts them as two categories; ONNX has one ("", README), as relunet's
    table reader does (pandas 3's string columns hold NaN only: nothing changes there)."""
    return frame.assign(**{c: frame[c].where(frame[c].notna(), np.nan)
                           for c in ("colour", "town")})


def table_model(handle_unknown, strategy, scaler, dtype):
    numeric = Pipeline([("impute", SimpleImputer(strategy=strategy, add_indicator=True)),
                        ("scale", scaler)])
    prepare = ColumnTransformer([
        ("numeric", numeric, ["age", "income"]),
        ("categorical", OneHotEncoder(handle_unknown=handle_unknown, min_frequency=10,
                                      sparse_output=False), ["colour", "town"]),
    ], remainder="drop")
    model = Pipeline([("prepare", prepare),
                      ("classifier", small_classifier(hidden_units=12, max_iter=15,
                                                      dtype=np.dtype(dtype).name))])
    frame = table(300, 0)
    y = np.where(frame["income"] > 25_000, "rich", np.where(frame["town"] == "Oslo", "a", "b"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(frame, y)


def table_feeds(frame, dtype):
    """One ['N', 1] input per column; a missing text value is passed as ''."""
    feeds = {c: frame[[c]].to_numpy(dtype) for c in ("age", "income")}
    for c in ("colour", "town"):
        feeds[c] = np.array([["" if v is None or v != v else v] for v in frame[c]],
                            dtype=object)
    return feeds


@pytest.mark.parametrize("engine", ["onnxruntime", "reference"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("handle_unknown", "strategy", "scaler"), [
    ("infrequent_if_exist", "median", StandardScaler()),
    ("ignore", "mean", MinMaxScaler()),
    ("infrequent_if_exist", "mean", "passthrough"),
    ("warn", "median", StandardScaler()),  # encodes like infrequent_if_exist, warns in Python
])
def test_column_transformer_model_matches_python(engine, dtype, handle_unknown, strategy,
                                                 scaler):
    model = table_model(handle_unknown, strategy, scaler, dtype)
    new = table(10_000, 1)
    # unknown categories, a known-but-infrequent one, missing text and missing numbers
    new.loc[:4, "colour"] = ["purple", "mauve", None, np.nan, "red"]
    new.loc[:4, "town"] = ["Paris", "Oslo", "", "Bergen", "Tromsø"]
    new.loc[:2, "income"] = np.nan
    new = one_missing_marker(new)
    proto = to_onnx(model)
    assert [i.name for i in proto.graph.input] == ["age", "income", "colour", "town"]
    for rows in (slice(0, 1), slice(0, 10_000)):
        part = new.iloc[rows].reset_index(drop=True)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Found unknown categories", UserWarning)
            assert_parity(model, part, table_feeds(part, dtype), engine, dtype)


def test_unknown_category_gives_zero_columns_with_ignore_and_infrequent_otherwise():
    """An unseen colour: scikit-learn's encoding is as documented, and ONNX agrees."""
    # colour columns: blue, green, red, nan (missing is frequent), infrequent (mauve)
    for handle_unknown, expected in (("ignore", [0, 0, 0, 0, 0]),
                                     ("infrequent_if_exist", [0, 0, 0, 0, 1])):
        model = table_model(handle_unknown, "median", StandardScaler(), np.float64)
        row = table(1, 2).assign(colour="purple")
        names = model[0].get_feature_names_out().tolist()
        colour = [i for i, n in enumerate(names) if n.startswith("categorical__colour_")]
        assert [names[i][len("categorical__colour_"):] for i in colour] == [
            "blue", "green", "red", "nan", "infrequent_sklearn"]
        assert model[0].transform(row)[0, colour].tolist() == expected
        assert_parity(model, row, table_feeds(row, np.float64), "onnxruntime", np.float64)


# ------------------------------------------------------------------------------ the file
def test_model_file_is_valid_portable_and_self_describing():
    model = fitted(LABELS["strings"], np.float32, StandardScaler())
    proto = to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    assert proto.ir_version <= ORT_1_17_MAX_IR
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 17)]
    assert proto.opset_import[0].version <= ORT_1_17_MAX_OPSET
    ops = {n.op_type for n in proto.graph.node}
    assert "ZipMap" not in ops and all(n.domain == "" for n in proto.graph.node)
    (x,) = proto.graph.input
    dims = [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim]
    assert (x.name, dims) == ("X", ["N", 6])
    assert [o.name for o in proto.graph.output] == ["label", "probabilities"]
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["relunet_version"] == relunet.__version__
    assert '"n_hidden": 10' in props["summary"] and "StandardScaler" in props["model"]
    assert relunet.__version__ in proto.graph.doc_string and "10 ReLU" in proto.doc_string
    assert proto.producer_name == "relunet"


def test_text_inputs_need_opset_19_and_label_types_follow_the_classes():
    model = table_model("ignore", "median", StandardScaler(), np.float32)
    proto = to_onnx(model)
    assert (proto.opset_import[0].version, proto.ir_version) == (19, 9)
    with pytest.raises(ValueError, match="opset >= 19"):
        to_onnx(model, opset=18)
    label_type = {}
    for name, labels in LABELS.items():
        out = to_onnx(fitted(labels, np.float64, None)).graph.output[0]
        label_type[name] = out.type.tensor_type.elem_type
    T = onnx.TensorProto
    assert label_type == {"binary-int": T.INT64, "many-int": T.INT64, "strings": T.STRING,
                          "floats": T.DOUBLE}


def test_explicit_opset_and_ir_version():
    clf = fitted(LABELS["binary-int"], np.float32, None)
    proto = to_onnx(clf, opset=13)
    assert (proto.opset_import[0].version, proto.ir_version) == (13, 7)
    proto = to_onnx(clf, opset=20, ir_version=10)
    assert (proto.opset_import[0].version, proto.ir_version) == (20, 10)
    with pytest.raises(ValueError, match="opset=12 is too old"):
        to_onnx(clf, opset=12)


def test_refuses_what_it_cannot_export():
    with pytest.raises(NotFittedError):
        to_onnx(relunet.ReluNetClassifier())
    with pytest.raises(TypeError, match=r"Pipeline\(StandardScaler, StandardScaler\)"):
        to_onnx(Pipeline([("a", StandardScaler()), ("b", StandardScaler())]))
    model = table_model("ignore", "median", StandardScaler(), np.float64)
    model[0].named_transformers_["categorical"].handle_unknown = "error"
    with pytest.raises(ValueError, match="handle_unknown='error'"):
        to_onnx(model)


def test_missing_onnx_names_the_extra(monkeypatch):
    clf = fitted(LABELS["binary-int"], np.float32, None)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingDependency, match=r"relunet\[onnx\]"):
        to_onnx(clf)


# ------------------------------------------------------------------------------ skl2onnx
def test_skl2onnx_converts_a_pipeline_holding_the_classifier():
    skl2onnx = pytest.importorskip("skl2onnx", reason="the interop converter needs skl2onnx")
    from sklearn.decomposition import PCA

    register_skl2onnx()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 6)).astype(np.float32)
    y = np.array(["x", "y", "z"])[rng.integers(0, 3, 200)]
    for dtype in ("float32", "float64"):
        model = Pipeline([("scale", StandardScaler()), ("pca", PCA(4)),
                          ("net", small_classifier(hidden_units=8, max_iter=10, dtype=dtype))])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, y)
        proto = skl2onnx.to_onnx(model, X[:1], options={"zipmap": False}, target_opset=17)
        out = run_onnx(proto, {"X": X}, "onnxruntime")
        np.testing.assert_allclose(out["probabilities"], model.predict_proba(X), atol=1e-6)
        assert out["label"].tolist() == model.predict(X).tolist()


# ------------------------------------------------------------------------------ CLI
def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def model_path(tmp_path):
    model = fitted(LABELS["strings"], np.float32, MinMaxScaler())
    return model, relunet.save(model, tmp_path / "model.npz")


def test_cli_export_writes_a_model_onnxruntime_runs(capsys, tmp_path, model_path):
    model, path = model_path
    out_path = tmp_path / "model.onnx"
    code, out, err = run_cli(capsys, "export", path, out_path)
    assert (code, err) == (0, "")
    assert "opset 17" in out and "; input X;" in out
    X = np.random.default_rng(3).standard_normal((50, 6)).astype(np.float32)
    session = ort.InferenceSession(str(out_path), providers=["CPUExecutionProvider"])
    label, proba = session.run(["label", "probabilities"], {"X": X})
    np.testing.assert_allclose(proba, model.predict_proba(X), atol=1e-6)
    assert label.tolist() == model.predict(X).tolist()
    code, out, err = run_cli(capsys, "export", path, out_path, "--opset", "19")
    assert (code, err) == (0, "") and onnx.load(str(out_path)).opset_import[0].version == 19
    code, out, err = run_cli(capsys, "export", path, out_path, "--opset", "12")
    assert code == 1 and err == "error: opset=12 is too old for this model: it needs opset >= 13\n"


def test_cli_export_missing_extra(capsys, tmp_path, model_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    code, out, err = run_cli(capsys, "export", model_path[1], tmp_path / "m.onnx")
    assert code == 1 and out == ""
    assert err.startswith("error: ") and "relunet[onnx]" in err and err.count("\n") == 1
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("problem", ["missing", "not-a-model"])
def test_cli_export_unreadable_model(capsys, tmp_path, problem):
    path = tmp_path / "model.npz"
    if problem == "not-a-model":
        path.write_text("hello")
    code, out, err = run_cli(capsys, "export", path, tmp_path / "m.onnx")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: {path}")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("where", ["no-such-dir/m.onnx", "."])
def test_cli_export_unwritable_path(capsys, tmp_path, model_path, where):
    target = tmp_path / where
    code, out, err = run_cli(capsys, "export", model_path[1], target)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("error: ") and str(target.parent if where != "." else tmp_path) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]  # no temporary left


def test_refuses_a_remainder_that_receives_columns():
    frame = table(60, 0)
    prepare = ColumnTransformer([("numeric", StandardScaler(), ["age"])],
                                remainder="passthrough")
    model = Pipeline([("prepare", prepare),
                      ("classifier", small_classifier(hidden_units=4, max_iter=2))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(frame[["age", "income"]].fillna(0), np.arange(60) % 2)
    with pytest.raises(ValueError, match="remainder='passthrough'"):
        to_onnx(model)


def test_export_summary_shows_a_few_inputs_and_their_count():
    from onnx import TensorProto, helper

    from relunet.onnx_export import describe_onnx

    inputs = [helper.make_tensor_value_info(f"pixel{i}", TensorProto.FLOAT, ["N", 1])
              for i in range(300)]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N"])
               for n in ("label", "probabilities")]
    proto = helper.make_model(helper.make_graph([], "g", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 17)])
    line = describe_onnx(proto)
    assert "inputs pixel0, pixel1, pixel2, pixel3, pixel4, ... (300 inputs in all)" in line
    assert "pixel5" not in line and line.endswith("outputs label, probabilities")


def test_a_model_trained_on_torch_tensors_exports_like_its_numpy_copy():
    torch = pytest.importorskip("torch", reason="PyTorch tensors are what is exported here")
    import sklearn

    from relunet.arrayapi import to_numpy

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    model = relunet.ReluNetClassifier(hidden_units=8, max_iter=5, dtype="float64",
                                      random_state=0)
    try:
        with sklearn.config_context(array_api_dispatch=True):
            model.fit(torch.asarray(X), torch.asarray(y))
    except (ValueError, RuntimeError) as exc:  # scikit-learn's dispatch needs SCIPY_ARRAY_API
        pytest.skip(f"array-API dispatch unavailable here: {exc}")
    assert type(model.W1_) is torch.Tensor
    assert (relunet.to_onnx(model).SerializeToString()
            == relunet.to_onnx(to_numpy(model)).SerializeToString())
