"""ONNX export: :func:`to_onnx` turns a fitted model into an ``onnx.ModelProto``.

The graph is built with ``onnx.helper`` only (no skl2onnx) from standard ``ai.onnx`` operators:
no ``ai.onnx.ml`` domain and no ZipMap, so onnxruntime (Python, C, C#, Java, web, mobile)
and ``onnx.reference`` run it as it is.  The network is the note's, with the biases (the last
rows of ``W1``/``W2``) as Gemm's ``C``::

    X (N, D) ─ Gemm(W1[:-1], W1[-1]) ─ Relu ─ Gemm(W2[:-1], W2[-1]) ─ scores (N, K)
    scores ─ Softmax(axis=1) ─ probabilities (N, K)
    scores ─ ArgMax(axis=1) ─ Gather(classes_) ─ label (N,)

``label`` is the class of the highest *score*, first on ties, exactly as
``ReluNetClassifier.predict``; its element type follows ``classes_``: int64 for integer
labels, string for text, double/float for float labels (never rounded to integers), bool.

Three kinds of model are exported (fitted scikit-learn objects, converted from their fitted
attributes):

* a :class:`~relunet.ReluNetClassifier`: one input ``X`` of shape ``['N', D]`` in the model's
  dtype (float32 or float64);
* a ``Pipeline([(name, StandardScaler() | MinMaxScaler()), (name, ReluNetClassifier())])``:
  the same input ``X``; the scaling runs in float64 (as scikit-learn does) and is cast to the
  model's dtype before the network;
* a ``Pipeline([(name, ColumnTransformer([...])), (name, ReluNetClassifier())])`` fitted on a
  pandas DataFrame, whose transformers are ``"drop"``, ``"passthrough"``, a
  ``SimpleImputer`` / ``StandardScaler`` / ``MinMaxScaler`` or a Pipeline of them, or a
  ``OneHotEncoder`` of text columns; ``remainder="drop"``.  The ONNX model has **one input per
  column the transformers use, named by the column, of shape** ``['N', 1]``: numeric columns
  in the model's dtype, text columns as strings.  A missing number is NaN (imputed as in
  Python; without an imputer it propagates to NaN probabilities).  ONNX string tensors cannot
  hold None or NaN, so **a missing text value is passed as the empty string** ``""``; it then
  behaves as scikit-learn's OneHotEncoder does with None/NaN: the category "missing" when the
  training data had missing values in that column, otherwise an unknown category.  Unknown
  categories give all-zero columns with ``handle_unknown="ignore"`` and go to the
  infrequent column with ``"infrequent_if_exist"``, exactly as in Python.

A model needs opset 13 (Softmax over one axis) and, with text inputs, opset 19 (``Equal`` on
strings); by default :func:`to_onnx` uses opset 17 for numeric models and 19 for those with
text inputs, with the oldest IR version that carries the opset (8 and 9): within what
onnxruntime 1.17, the oldest release the ``relunet[onnx]`` extra allows, reads (IR versions up
to 9, opsets up to 20).  skl2onnx's habit of stamping the newest IR version is what makes its
files fail on older runtimes ("Unsupported model IR version").
"""

from __future__ import annotations

import json

import numpy as np

__all__ = ["to_onnx", "save_onnx", "describe_onnx", "DEFAULT_OPSET", "STRING_OPSET",
           "register_skl2onnx"]

DEFAULT_OPSET = 17  # IR 8; the network needs opset 13 (Softmax over one axis)
STRING_OPSET = 19  # IR 9; Equal on string tensors appeared in opset 19
_MIN_OPSET = 13  # Softmax with axis=1 meaning "over axis 1 only"

# Oldest IR version that carries each opset (onnx.helper.VERSION_TABLE, onnx 1.8 - 1.16).
_IR_FOR_OPSET = {13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10}


def _onnx():
    from .data import require

    return require("onnx", "onnx", "ONNX export")


# ------------------------------------------------------------------------------ graph builder
class _Graph:
    """Nodes and initializers of one graph, with unique names under ``prefix``."""

    def __init__(self, onnx, prefix="relunet/"):
        self.onnx, self.prefix = onnx, prefix
        self.nodes, self.initializers, self._used = [], [], set()

    def name(self, hint):
        base = self.prefix + hint
        name, i = base, 1
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._used.add(name)
        return name

    def const(self, array, hint):
        array = np.asarray(array)
        name = self.name(hint)
        if array.dtype.kind in "OUS":
            tensor = self.onnx.helper.make_tensor(
                name, self.onnx.TensorProto.STRING, array.shape,
                [str(v).encode("utf-8") for v in array.ravel()])
        else:
            tensor = self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name)
        self.initializers.append(tensor)
        return name

    def node(self, op, inputs, hint=None, outputs=None, **attrs):
        if outputs is None:
            outputs = [self.name(hint or op.lower())]
        self.nodes.append(self.onnx.helper.make_node(
            op, list(inputs), list(outputs), name=self.name(f"{op}"), **attrs))
        return outputs[0]


def _tensor_type(onnx, dtype):
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


# ------------------------------------------------------------------------------ the network
def _label_tensor(classes):
    """``classes_`` as an array ONNX can hold exactly: int64, float, bool or str."""
    classes = np.asarray(classes)
    kind = classes.dtype.kind
    if kind in "iu":
        if classes.size and (classes.max() > np.iinfo(np.int64).max):
            raise ValueError(f"class labels do not fit in int64: {classes.max()}")
        return classes.astype(np.int64)
    if kind in "fb":
        return classes
    if kind in "US":
        return classes.astype(str)
    if kind == "O":
        values = classes.tolist()
        if all(isinstance(v, str) for v in values):
            return classes.astype(str)
        if all(isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)
               for v in values):
            return _label_tensor(np.array(values, dtype=np.int64))
    raise TypeError(
        f"cannot export class labels of dtype {classes.dtype} to ONNX: the labels must be all "
        f"integers, all floats, all booleans or all strings; got {classes[:5].tolist()}"
    )


def _network(g, x, clf, *, probabilities="probabilities", label="label"):
    """Gemm, Relu, Gemm, then Softmax -> ``probabilities`` and ArgMax + Gather -> ``label``."""
    W1, W2 = np.asarray(clf.W1_), np.asarray(clf.W2_)
    classes = _label_tensor(clf.classes_)
    h = g.node("Gemm", [x, g.const(W1[:-1], "W1"), g.const(W1[-1], "w1_bias")], "hidden_in")
    h = g.node("Relu", [h], "hidden")  # h = ReLU(x·w1)
    f = g.node("Gemm", [h, g.const(W2[:-1], "W2"), g.const(W2[-1], "w2_bias")], "scores")
    g.node("Softmax", [f], outputs=[probabilities], axis=1)
    k = g.node("ArgMax", [f], "class_index", axis=1, keepdims=0)  # first maximum on ties
    g.node("Gather", [g.const(classes, "classes"), k], outputs=[label], axis=0)
    return classes


# ------------------------------------------------------------------------------ preprocessing
def _is_sklearn(obj, *names):
    return type(obj).__name__ in names and type(obj).__module__.startswith("sklearn.")


def _scaler(g, x, scaler):
    """StandardScaler / MinMaxScaler on the float64 block ``x`` (sklearn's formulas, in order)."""
    if _is_sklearn(scaler, "StandardScaler"):
        if scaler.with_mean:  # X -= mean_
            x = g.node("Sub", [x, g.const(np.asarray(scaler.mean_, np.float64), "mean")], "centred")
        if scaler.with_std:  # X /= scale_
            x = g.node("Div", [x, g.const(np.asarray(scaler.scale_, np.float64), "scale")],
                       "standardised")
        return x
    if _is_sklearn(scaler, "MinMaxScaler"):  # X *= scale_; X += min_; clip
        x = g.node("Mul", [x, g.const(np.asarray(scaler.scale_, np.float64), "scale")], "scaled")
        x = g.node("Add", [x, g.const(np.asarray(scaler.min_, np.float64), "min")], "minmaxed")
        if scaler.clip:
            low, high = (np.array(v, np.float64) for v in scaler.feature_range)
            x = g.node("Clip", [x, g.const(low, "clip_low"), g.const(high, "clip_high")], "clipped")
        return x
    raise TypeError(f"cannot export a {type(scaler).__name__} step to ONNX; supported scalers "
                    f"are StandardScaler and MinMaxScaler")


def _imputer(g, x, imputer):
    """SimpleImputer for NaN: ``Where(IsNaN(x), statistics_, x)``, empty columns dropped,
    then the missing-indicator columns (``add_indicator``)."""
    missing = imputer.missing_values
    if not (isinstance(missing, float) and np.isnan(missing)):
        raise ValueError(f"cannot export a SimpleImputer with missing_values={missing!r} to "
                         f"ONNX: only NaN (the default) is supported")
    stats = np.asarray(imputer.statistics_, dtype=np.float64)
    is_nan = g.node("IsNaN", [x], "is_missing")
    keep = ~np.isnan(stats) | bool(getattr(imputer, "keep_empty_features", False))
    fill = np.where(np.isnan(stats), 0.0, stats)  # keep_empty_features: sklearn fills 0
    out = g.node("Where", [is_nan, g.const(fill.reshape(1, -1), "fill"), x], "imputed")
    if not keep.all():  # features all-missing in training are dropped
        out = g.node("Gather", [out, g.const(np.flatnonzero(keep).astype(np.int64), "kept")],
                     "imputed_kept", axis=1)
    indicator = getattr(imputer, "indicator_", None)
    if indicator is not None:
        cols = np.asarray(indicator.features_, dtype=np.int64)
        if cols.size:
            flags = g.node("Gather", [is_nan, g.const(cols, "indicated")], "missing_flags",
                           axis=1)
            flags = g.node("Cast", [flags], "indicator", to=_tensor_type(g.onnx, np.float64))
            out = g.node("Concat", [out, flags], "imputed_with_indicator", axis=1)
    return out


def _numeric_steps(transformer):
    """The steps (SimpleImputer/StandardScaler/MinMaxScaler) of a numeric transformer."""
    if isinstance(transformer, str) and transformer == "passthrough":
        return []
    if _is_sklearn(transformer, "Pipeline"):
        steps = [step for _, step in transformer.steps if step not in (None, "passthrough")]
    else:
        steps = [transformer]
    for step in steps:
        if not _is_sklearn(step, "SimpleImputer", "StandardScaler", "MinMaxScaler"):
            raise TypeError(
                f"cannot export a ColumnTransformer step {type(step).__name__} to ONNX; "
                f"numeric columns may go through SimpleImputer, StandardScaler and "
                f"MinMaxScaler, text columns through OneHotEncoder"
            )
    return steps


def _missing_text(value):
    return value is None or (isinstance(value, float) and np.isnan(value))


def _one_hot(g, inputs, encoder):
    """OneHotEncoder on string columns: ``Equal`` against each category, then a 0/1 matrix
    mapping categories to output columns (frequent ones, then the infrequent one)."""
    if encoder.drop_idx_ is not None:
        raise ValueError("cannot export a OneHotEncoder with drop=... to ONNX (not supported)")
    if encoder.handle_unknown not in ("ignore", "infrequent_if_exist", "warn"):
        raise ValueError(
            f"cannot export a OneHotEncoder with handle_unknown={encoder.handle_unknown!r} to "
            f"ONNX: the ONNX model cannot raise on an unknown category; refit it with "
            f"handle_unknown='ignore' or 'infrequent_if_exist'"
        )
    # "warn" encodes as "infrequent_if_exist" (it only adds a Python warning)
    to_infrequent = encoder.handle_unknown in ("infrequent_if_exist", "warn")
    infrequent = getattr(encoder, "infrequent_categories_", None) or [None] * len(inputs)
    double = _tensor_type(g.onnx, np.float64)
    blocks = []
    for x, categories, rare in zip(inputs, encoder.categories_, infrequent, strict=True):
        values = list(categories)
        if not all(isinstance(v, str) or _missing_text(v) for v in values):
            raise TypeError(f"cannot export a OneHotEncoder of non-text categories "
                            f"({values[:5]}) to ONNX: only text columns are supported")
        texts = ["" if _missing_text(v) else v for v in values]
        if len(set(texts)) < len(texts):
            raise ValueError("cannot export a OneHotEncoder whose categories hold both a "
                             "missing value and the empty string: the ONNX model passes a "
                             "missing text value as ''")
        rare = [] if rare is None else list(rare)
        is_rare = [any(_same_category(v, r) for r in rare) for v in values]
        frequent = [i for i, r in enumerate(is_rare) if not r]
        n_out = len(frequent) + (1 if rare else 0)
        mapping = np.zeros((len(values), n_out))
        for col, i in enumerate(frequent):
            mapping[i, col] = 1.0
        for i, r in enumerate(is_rare):
            if r:
                mapping[i, -1] = 1.0
        if rare and to_infrequent:
            # unknown categories join the infrequent ones: 1 - (sum of the frequent columns)
            mapping = mapping[frequent]
            cats = g.const(np.array(texts, dtype=object)[frequent].reshape(1, -1), "categories")
            hits = g.node("Cast", [g.node("Equal", [x, cats], "is_category")], "hits", to=double)
            known = g.node("MatMul", [hits, g.const(mapping[:, :-1], "one_hot")], "frequent")
            rest = g.node("Sub", [g.const(np.ones((1, 1)), "one"),
                                  g.node("ReduceSum", [hits, g.const(np.array([1], np.int64),
                                                                     "axis")],
                                         "n_frequent", keepdims=1)], "infrequent")
            blocks.append(g.node("Concat", [known, rest], "one_hot", axis=1))
        else:
            cats = g.const(np.array(texts, dtype=object).reshape(1, -1), "categories")
            hits = g.node("Cast", [g.node("Equal", [x, cats], "is_category")], "hits", to=double)
            blocks.append(g.node("MatMul", [hits, g.const(mapping, "one_hot")], "one_hot"))
    return blocks


def _same_category(a, b):
    return (_missing_text(a) and _missing_text(b)) or a == b


def _column_transformer(g, ct, model_dtype):
    """Inputs (one per used column) and the float64 feature block of a fitted ColumnTransformer."""
    onnx = g.onnx
    inputs, blocks = {}, []
    double = _tensor_type(onnx, np.float64)

    def column(name, text):
        if not isinstance(name, str):
            raise TypeError(f"cannot export a ColumnTransformer that selects columns by "
                            f"{type(name).__name__} ({name!r}) to ONNX: select them by name")
        kind = "string" if text else "number"
        if name in inputs and inputs[name][0] != kind:
            raise ValueError(f"column {name!r} is used both as text and as a number")
        inputs.setdefault(name, (kind, onnx.helper.make_tensor_value_info(
            name, onnx.TensorProto.STRING if text else _tensor_type(onnx, model_dtype),
            ["N", 1])))
        return name

    for tname, transformer, columns in ct.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        if tname == "remainder":
            if len(columns) == 0:
                continue
            raise ValueError(
                f"cannot export a ColumnTransformer with remainder={ct.remainder!r} that "
                f"receives columns ({list(columns)[:5]}) to ONNX: use remainder='drop' or "
                f"name every column in a transformer"
            )
        columns = [columns] if isinstance(columns, str) else list(columns)
        if _is_sklearn(transformer, "OneHotEncoder"):
            blocks += _one_hot(g, [column(c, True) for c in columns], transformer)
            continue
        steps = _numeric_steps(transformer)
        xs = [column(c, False) for c in columns]
        if model_dtype != np.float64:
            xs = [g.node("Cast", [x], f"{x}_double", to=double) for x in xs]
        block = xs[0] if len(xs) == 1 else g.node("Concat", xs, f"{tname}_in", axis=1)
        for step in steps:
            block = (_imputer(g, block, step) if _is_sklearn(step, "SimpleImputer")
                     else _scaler(g, block, step))
        blocks.append(block)
    if not blocks:
        raise ValueError("the ColumnTransformer produces no columns")
    features = blocks[0] if len(blocks) == 1 else g.node("Concat", blocks, "features", axis=1)
    return [info for _, info in inputs.values()], features, [k for k, _ in inputs.values()]


# ------------------------------------------------------------------------------ to_onnx
def _split(model):
    """(preprocessing step or None, ReluNetClassifier)."""
    from .estimator import ReluNetClassifier

    if isinstance(model, ReluNetClassifier):
        return None, model
    if _is_sklearn(model, "Pipeline") and len(model.steps) == 2:
        (_, prep), (_, clf) = model.steps
        if isinstance(clf, ReluNetClassifier) and (
            _is_sklearn(prep, "StandardScaler", "MinMaxScaler", "ColumnTransformer")
        ):
            return prep, clf
    raise TypeError(
        f"can export a fitted ReluNetClassifier, or a Pipeline of (StandardScaler | "
        f"MinMaxScaler | ColumnTransformer, ReluNetClassifier); got {_describe_model(model)}"
    )


def _describe_model(model):
    steps = getattr(model, "steps", None)
    if steps is None:
        return type(model).__name__
    return f"Pipeline({', '.join(type(s).__name__ for _, s in steps)})"


def to_onnx(model, *, opset=None, ir_version=None):
    """Convert a fitted model to an ONNX model (``onnx.ModelProto``).

    Parameters
    ----------
    model : ReluNetClassifier or sklearn.pipeline.Pipeline
        Fitted; a bare classifier, a Pipeline (StandardScaler | MinMaxScaler,
        ReluNetClassifier) or a Pipeline (ColumnTransformer, ReluNetClassifier): see the
        module docstring for what the ColumnTransformer may hold.
    opset : int, optional
        The ``ai.onnx`` opset (13 or later; 19 or later with text inputs).  Default 17, or
        19 when the model has text inputs.
    ir_version : int, optional
        Default: the oldest IR version that carries ``opset`` (8 for opset 15-18, 9 for
        19-20), so older onnxruntime releases read the file.

    Returns
    -------
    onnx.ModelProto
        Inputs: ``X`` (``['N', D]``, the model's dtype), or for a ColumnTransformer one
        ``['N', 1]`` input per column, named by the column (numbers in the model's dtype,
        text as strings, a missing text value as ``""``).  Outputs: ``label`` (``['N']``,
        int64, string, float or bool as ``classes_``) and ``probabilities`` (``['N', K]``,
        the model's dtype, column ``k`` for ``classes_[k]``).  The doc string and
        ``metadata_props`` carry relunet's version and the model's summary.

    Raises
    ------
    relunet.data.MissingDependency
        The ``onnx`` package is not installed (``pip install 'relunet[onnx]'``).
    sklearn.exceptions.NotFittedError
        The model is not fitted.
    TypeError
        A model, step or label type that cannot be exported.
    ValueError
        An unsupported setting (e.g. ``OneHotEncoder(handle_unknown="error")``) or an
        ``opset`` too old for the model.
    """
    onnx = _onnx()
    from sklearn.utils.validation import check_is_fitted

    from . import __version__
    from .arrayapi import to_numpy

    prep, clf = _split(model)
    check_is_fitted(clf, ("W1_", "W2_", "classes_"))
    clf = to_numpy(clf)  # trained on PyTorch/CuPy arrays: the graph holds NumPy constants
    if prep is not None:
        check_is_fitted(prep)
    dtype = np.dtype(clf.W1_.dtype)
    T = _tensor_type(onnx, dtype)
    D, H, K = clf.W1_.shape[0] - 1, clf.W1_.shape[1], clf.W2_.shape[1]
    g = _Graph(onnx)

    if _is_sklearn(prep, "ColumnTransformer"):
        inputs, features, columns = _column_transformer(g, prep, dtype)
        x = features if dtype == np.float64 else g.node(
            "Cast", [features], "features_cast", to=T)
        text = any(i.type.tensor_type.elem_type == onnx.TensorProto.STRING for i in inputs)
        how = (f"ColumnTransformer over {len(columns)} columns, one ['N', 1] input each "
               f"(numbers as {dtype.name} with NaN for missing, text as string with '' for "
               f"missing)")
    else:
        inputs = [onnx.helper.make_tensor_value_info("X", T, ["N", D])]
        x, text = "X", False
        if prep is not None:
            if dtype != np.float64:
                x = g.node("Cast", [x], "X_double", to=_tensor_type(onnx, np.float64))
            x = _scaler(g, x, prep)
            if dtype != np.float64:
                x = g.node("Cast", [x], "X_scaled", to=T)
            how = f"{type(prep).__name__} then the network; input X ['N', {D}] {dtype.name}"
        else:
            how = f"input X ['N', {D}] {dtype.name}"

    classes = _network(g, x, clf)
    needed = STRING_OPSET if text else _MIN_OPSET
    if opset is None:
        opset = STRING_OPSET if text else DEFAULT_OPSET
    opset = int(opset)
    if opset < needed:
        raise ValueError(f"opset={opset} is too old for this model: it needs opset >= {needed}"
                         + (" (Equal on text inputs)" if text else ""))
    if opset > onnx.defs.onnx_opset_version():
        raise ValueError(f"opset={opset} is newer than this onnx package knows "
                         f"({onnx.defs.onnx_opset_version()})")
    if ir_version is None:
        ir_version = _IR_FOR_OPSET.get(opset, onnx.IR_VERSION)

    outputs = [
        onnx.helper.make_tensor_value_info("label", _tensor_type(onnx, classes.dtype)
                                           if classes.dtype.kind != "U"
                                           else onnx.TensorProto.STRING, ["N"]),
        onnx.helper.make_tensor_value_info("probabilities", T, ["N", K]),
    ]
    summary = {
        "model": _describe_model(model),
        "n_features_in": D, "n_hidden": H, "n_classes": K, "dtype": dtype.name,
        "classes": classes.tolist(), "inputs": how,
    }
    doc = (f"relunet {__version__}: one-hidden-layer ReLU network ({D} inputs -> {H} ReLU -> "
           f"{K} softmax scores), {dtype.name}; {how}. Outputs: label (class of the highest "
           f"score) and probabilities (column k for classes[k]). Classes: "
           f"{_short_list(classes.tolist())}.")
    graph = onnx.helper.make_graph(g.nodes, "relunet", inputs, outputs, g.initializers,
                                   doc_string=doc)
    proto = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
        producer_name="relunet", producer_version=__version__, doc_string=doc)
    proto.ir_version = int(ir_version)
    onnx.helper.set_model_props(proto, {
        "relunet_version": __version__,
        "model": summary["model"],
        "summary": json.dumps(summary, default=str),
        "classes": json.dumps(classes.tolist()),
    })
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _short_list(values, limit=20):
    text = ", ".join(map(str, values[:limit]))
    return text + (", ..." if len(values) > limit else "")


def describe_onnx(proto, limit=5):
    """One line about an exported model: opset, IR version, inputs (the first ``limit`` names
    and their count) and outputs."""
    names = [i.name for i in proto.graph.input]
    shown = ", ".join(names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names)} inputs in all)"
    return (f"ONNX opset {proto.opset_import[0].version}, IR version {proto.ir_version}; "
            f"input{'s' if len(names) != 1 else ''} {shown}; outputs "
            + ", ".join(o.name for o in proto.graph.output))


def save_onnx(model, path, **kwargs):
    """:func:`to_onnx`, written atomically to ``path``; returns the ``ModelProto``."""
    import os

    from .data import atomic_path

    proto = to_onnx(model, **kwargs)
    if os.path.isdir(path):
        raise IsADirectoryError(21, "is a directory, not a file name", os.fspath(path))
    with atomic_path(path, suffix=".tmp.onnx") as tmp:
        with open(tmp, "wb") as fh:
            fh.write(proto.SerializeToString())
    return proto


# ------------------------------------------------------------------------------ skl2onnx
class _Skl2OnnxGraph:
    """The :class:`_Graph` interface on top of skl2onnx's scope and container."""

    def __init__(self, onnx, scope, container, opset):
        self.onnx, self.scope, self.container, self.opset = onnx, scope, container, opset

    def name(self, hint):
        return self.scope.get_unique_variable_name(hint)

    def const(self, array, hint):
        array = np.asarray(array)
        name = self.name(hint)
        if array.dtype.kind in "OUS":
            self.container.add_initializer(name, self.onnx.TensorProto.STRING,
                                           list(array.shape), [str(v) for v in array.ravel()])
        else:
            self.container.add_initializer(name, _tensor_type(self.onnx, array.dtype),
                                           list(array.shape), array.ravel().tolist())
        return name

    def node(self, op, inputs, hint=None, outputs=None, **attrs):
        if outputs is None:
            outputs = [self.name(hint or op.lower())]
        self.container.add_node(op, list(inputs), list(outputs),
                                name=self.scope.get_unique_operator_name(op),
                                op_version=self.opset, **attrs)
        return outputs[0]


def _skl2onnx_convert(scope, operator, container):
    """skl2onnx converter: the same Gemm/Relu/Gemm/Softmax/ArgMax/Gather graph."""
    import onnx

    clf = operator.raw_operator
    g = _Skl2OnnxGraph(onnx, scope, container, min(container.target_opset, 13))
    x = operator.inputs[0].full_name
    dtype = np.dtype(clf.W1_.dtype)
    if operator.inputs[0].type.to_onnx_type().tensor_type.elem_type != _tensor_type(onnx, dtype):
        x = g.node("Cast", [x], "X_cast", to=_tensor_type(onnx, dtype))
    label, proba = (v.full_name for v in operator.outputs[:2])
    classes = _label_tensor(clf.classes_)
    if classes.dtype.kind not in "iU":  # skl2onnx's label output is int64 or string
        raise TypeError(f"skl2onnx's classifier outputs need int or str labels; "
                        f"got {classes.dtype} (use relunet.to_onnx instead)")
    tmp_proba = g.name("proba_model_dtype")
    _network(g, x, clf, probabilities=tmp_proba if dtype != np.float32 else proba, label=label)
    if dtype != np.float32:  # skl2onnx declares float probabilities
        g.node("Cast", [tmp_proba], outputs=[proba], to=onnx.TensorProto.FLOAT)


def register_skl2onnx():
    """Teach skl2onnx to convert :class:`~relunet.ReluNetClassifier` (inside any pipeline).

    After this, ``skl2onnx.to_onnx(pipeline, X[:1])`` works on a scikit-learn pipeline that
    ends in (or contains) a ReluNetClassifier, with skl2onnx's usual classifier outputs
    (``label`` and ``probabilities``, a ZipMap unless ``options={"zipmap": False}``).
    Probabilities come out as float32, as skl2onnx declares them.

    Raises
    ------
    relunet.data.MissingDependency
        skl2onnx is not installed.
    """
    from .data import require
    from .estimator import ReluNetClassifier

    require("skl2onnx", "onnx", "registering the skl2onnx converter")
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    update_registered_converter(
        ReluNetClassifier, "RelunetReluNetClassifier",
        calculate_linear_classifier_output_shapes, _skl2onnx_convert,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False]},
    )
