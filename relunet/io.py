"""Model files: one ``.npz`` holding the weights, optional input scaling and JSON metadata.

Layout (format version 1)::

    W1              (D+1, H) float32/float64    the note's w1, bias row last
    W2              (H+1, K) float32/float64    the note's w2, bias row last
    metadata        uint8, UTF-8 JSON           see :func:`save`
    scaler.<attr>   (D,) float64                only for a Pipeline: the scaler's fitted arrays

Nothing is pickled: files are read with ``np.load(..., allow_pickle=False)`` and JSON, every
array's header is checked before its data is read, and anything unexpected raises
:class:`ModelFileError` naming the file.  Writes are atomic (temporary file in the same
folder, fsync, ``os.replace``).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import tempfile

import numpy as np

__all__ = ["FORMAT_VERSION", "ModelFileError", "save", "load", "read_metadata"]

FORMAT_VERSION = 1
_FORMAT_NAME = "relunet-model"
_MAX_METADATA_BYTES = 64 * 2**20

# The scalers a Pipeline may hold, with their fitted array attributes (None allowed where
# the scaler sets them to None) and the JSON-able attributes restored beside them.
_SCALERS = {
    "standard": ("StandardScaler", ("mean_", "var_", "scale_")),
    "minmax": ("MinMaxScaler", ("min_", "scale_", "data_min_", "data_max_", "data_range_")),
}


class ModelFileError(ValueError):
    """The file is not a readable relunet model (damaged, foreign, too new, unsafe)."""


# ---------------------------------------------------------------------------------- save
def save(model, path):
    """Write a fitted model to ``path`` atomically; returns ``path``.

    Parameters
    ----------
    model : ReluNetClassifier or sklearn.pipeline.Pipeline
        A fitted :class:`~relunet.ReluNetClassifier`, or a fitted Pipeline of exactly two
        steps: a ``StandardScaler`` or ``MinMaxScaler``, then a ``ReluNetClassifier``.
    path : str or os.PathLike
        Destination, used as given (no ``.npz`` is appended).  An existing file is replaced
        only once the new one is completely written.

    Returns
    -------
    path : the ``path`` argument

    The ``metadata`` JSON object has the keys ``format`` (``"relunet-model"``),
    ``format_version``, ``relunet_version``, ``created`` (ISO 8601, UTC), ``model``
    (``"ReluNetClassifier"`` or ``"Pipeline"``), ``hyperparameters`` (``get_params()`` less
    ``callback``; a ``RandomState`` is stored as null, a ``class_weight`` dict as
    ``{"dict": [[label, weight], ...]}``), ``classes``, ``classes_dtype`` (NumPy dtype string),
    ``n_features_in``, ``feature_names`` (list or null), ``n_hidden``, ``n_classes``,
    ``weights_dtype``, ``training`` (``n_iter``, ``t``, ``best_loss``, ``final_loss``,
    ``stop_reason``, ``fit_seconds``, ``loss_curve``, ``validation_loss_curve``,
    ``validation_scores``, ``history``; non-finite numbers as null) and ``preprocessing``
    (``{"kind": "none"}`` or ``{"kind": "standard"|"minmax", "step_names": [...],
    "params": {...}, "n_features_in", "feature_names", "n_samples_seen", "arrays": [...]}``).
    """
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    from . import __version__
    from .estimator import ReluNetClassifier

    clf, scaler, step_names = _split(model, Pipeline, ReluNetClassifier)
    check_is_fitted(clf, ("W1_", "W2_", "classes_"))
    arrays = {"W1": np.ascontiguousarray(clf.W1_), "W2": np.ascontiguousarray(clf.W2_)}
    preprocessing = {"kind": "none"}
    if scaler is not None:
        check_is_fitted(scaler)
        kind = next(k for k, (cls, _) in _SCALERS.items() if type(scaler).__name__ == cls)
        present = []
        for attr in _SCALERS[kind][1]:
            value = getattr(scaler, attr, None)
            if value is not None:
                arrays["scaler." + attr] = np.ascontiguousarray(value, dtype=np.float64)
                present.append(attr)
        seen = scaler.n_samples_seen_
        preprocessing = {
            "kind": kind,
            "step_names": list(step_names),
            "params": _jsonable(scaler.get_params()),
            "n_features_in": int(scaler.n_features_in_),
            "feature_names": _names(scaler),
            "n_samples_seen": seen.tolist() if isinstance(seen, np.ndarray) else int(seen),
            "arrays": present,
        }
    classes = np.asarray(clf.classes_)
    params = clf.get_params()
    params.pop("callback", None)
    if isinstance(params.get("random_state"), np.random.RandomState):
        params["random_state"] = None
    if isinstance(params.get("class_weight"), dict):
        params["class_weight"] = {"dict": [[_scalar(k), float(v)]
                                           for k, v in params["class_weight"].items()]}
    loss_curve = [float(v) for v in clf.loss_curve_]
    metadata = {
        "format": _FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "relunet_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": "Pipeline" if scaler is not None else type(clf).__name__,
        "hyperparameters": _jsonable(params),
        "classes": [_scalar(c) for c in classes.tolist()],
        "classes_dtype": classes.dtype.str,
        "n_features_in": int(clf.n_features_in_),
        "feature_names": _names(clf),
        "n_hidden": int(clf.W1_.shape[1]),
        "n_classes": int(clf.W2_.shape[1]),
        "weights_dtype": clf.W1_.dtype.name,
        "training": _jsonable({
            "n_iter": int(clf.n_iter_),
            "t": int(clf.t_),
            "best_loss": clf.best_loss_,
            "final_loss": loss_curve[-1] if loss_curve else None,
            "stop_reason": clf.stop_reason_,
            "interrupted": bool(getattr(clf, "interrupted_", False)),
            "fit_seconds": clf.fit_seconds_,
            "loss_curve": loss_curve,
            "validation_loss_curve": clf.validation_loss_curve_,
            "validation_scores": clf.validation_scores_,
            "history": clf.history_,
        }),
        "preprocessing": preprocessing,
    }
    text = json.dumps(metadata, allow_nan=False, ensure_ascii=False)
    arrays["metadata"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _atomic_savez(path, arrays)
    return path


def _split(model, Pipeline, ReluNetClassifier):
    if isinstance(model, ReluNetClassifier):
        return model, None, None
    if isinstance(model, Pipeline):
        steps = model.steps
        scaler_names = " or ".join(cls for cls, _ in _SCALERS.values())
        if (
            len(steps) == 2
            and type(steps[0][1]).__name__ in {cls for cls, _ in _SCALERS.values()}
            and type(steps[0][1]).__module__.startswith("sklearn.preprocessing")
            and isinstance(steps[1][1], ReluNetClassifier)
        ):
            return steps[1][1], steps[0][1], [name for name, _ in steps]
        got = [type(step).__name__ for _, step in steps]
        raise TypeError(
            f"can only save a Pipeline of exactly ({scaler_names}, ReluNetClassifier); "
            f"got steps {got}"
        )
    raise TypeError(
        f"can only save a fitted ReluNetClassifier or a Pipeline (scaler, ReluNetClassifier); "
        f"got {type(model).__name__}"
    )


def _atomic_savez(path, arrays):
    target = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(target)
    tmp = tempfile.NamedTemporaryFile(
        dir=folder, prefix="." + os.path.basename(target) + ".", suffix=".tmp", delete=False
    )
    try:
        with tmp:
            np.savez(tmp, **arrays)
            tmp.flush()
            os.fsync(tmp.fileno())
        # NamedTemporaryFile is private (0600); give the file the usual umask permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp.name, 0o666 & ~umask)
        os.replace(tmp.name, target)
    except BaseException:
        try:
            os.unlink(tmp.name)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _scalar(v):
    """A label or key as a JSON value (NumPy scalars become Python ones)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bool | int | str) or v is None:
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"cannot save the non-finite label {v!r}")
        return v
    raise TypeError(f"cannot save a label of type {type(v).__name__}: {v!r}")


def _jsonable(obj):
    """Plain JSON: NumPy scalars/arrays to Python, tuples to lists, non-finite floats to None."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [_jsonable(v) for v in (obj.tolist() if isinstance(obj, np.ndarray) else obj)]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _names(estimator):
    names = getattr(estimator, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


# ---------------------------------------------------------------------------------- load
def read_metadata(path):
    """The metadata dict of the model file ``path`` (checked, without loading the weights).

    Raises
    ------
    FileNotFoundError
        No such file.
    ModelFileError
        Not a readable relunet model file.
    """
    with _Reader(path) as reader:
        return reader.metadata


def load(path):
    """Read a model written by :func:`save`.

    Returns
    -------
    ReluNetClassifier or sklearn.pipeline.Pipeline
        The same kind of object that was saved, fitted: predictions are bit-identical, and
        ``partial_fit`` / ``warm_start`` continue from the stored weights (the optimizer
        state restarts).

    Raises
    ------
    FileNotFoundError
        No such file.
    ModelFileError
        The file is truncated or damaged, not a relunet model, from a newer format version,
        holds wrongly shaped or object arrays, or inconsistent metadata.  Nothing in the
        file is ever executed.
    """
    with _Reader(path) as reader:
        meta = reader.metadata
        try:
            clf = _build_classifier(reader, meta)
            prep = meta["preprocessing"]
            if prep["kind"] == "none":
                return clf
            return _build_pipeline(reader, prep, clf)
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise reader.error(f"inconsistent metadata ({type(exc).__name__}: {exc})") from None


class _Reader:
    """Opens a model file and hands out validated arrays; every failure is a ModelFileError."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.npz = None

    def error(self, what):
        return ModelFileError(f"{self.path}: {what}")

    def __enter__(self):
        with open(self.path, "rb") as fh:  # FileNotFoundError etc. pass through unchanged
            magic = fh.read(6)
        if not magic:
            raise self.error("not a relunet model file (the file is empty)")
        if magic.startswith(b"\x93NUMPY"):
            raise self.error("not a relunet model file (a single .npy array, not an .npz)")
        if not magic.startswith(b"PK"):
            raise self.error(
                "not a relunet model file (not an .npz archive; pickled data is never loaded)"
            )
        try:
            npz = np.load(self.path, allow_pickle=False)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except Exception as exc:  # truncated zips, random bytes, ... : never fatal
            raise self.error(f"not a readable model file ({type(exc).__name__}: {exc})") from None
        if not isinstance(npz, np.lib.npyio.NpzFile):  # pragma: no cover - magic checked
            raise self.error("not a relunet model file (not an .npz archive)")
        self.npz = npz
        try:
            self._scan()
            self.metadata = self._metadata()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.npz is not None:
            self.npz.close()
            self.npz = None

    def has(self, name):
        return name in self.headers

    def _scan(self):
        """Read every entry's header: refuse object arrays and foreign entries up front."""
        self.headers = {}
        for info in self.npz.zip.infolist():
            if not info.filename.endswith(".npy"):
                raise self.error(f"unexpected entry {info.filename!r}")
            name = info.filename[:-4]
            if name not in ("W1", "W2", "metadata") and not name.startswith("scaler."):
                raise self.error(f"unexpected entry {info.filename!r}")
            try:
                with self.npz.zip.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                    header_size = fh.tell()
            except Exception as exc:  # bad magic, bad header, truncated, bad CRC, ...
                raise self.error(
                    f"the array {name!r} is damaged ({type(exc).__name__}: {exc})"
                ) from None
            if dtype.hasobject:
                raise self.error(
                    f"the array {name!r} holds Python objects (pickled data); refusing to load it"
                )
            if info.file_size < header_size + math.prod(shape) * dtype.itemsize:
                raise self.error(f"the array {name!r} is truncated")
            self.headers[name] = (tuple(shape), dtype)

    def array(self, name, *, dtypes, ndim, shape=None):
        """The array ``name``, after checking its header (dtype, shape) and its values."""
        if name not in self.headers:
            raise self.error(f"the array {name!r} is missing")
        a_shape, a_dtype = self.headers[name]
        if a_dtype.name not in dtypes:
            raise self.error(f"the array {name!r} has dtype {a_dtype}, expected one of {dtypes}")
        if len(a_shape) != ndim or (shape is not None and a_shape != tuple(shape)):
            want = tuple(shape) if shape is not None else f"{ndim} dimension(s)"
            raise self.error(f"the array {name!r} has shape {a_shape}, expected {want}")
        try:
            value = self.npz[name]
        except Exception as exc:
            raise self.error(
                f"the array {name!r} is damaged ({type(exc).__name__}: {exc})"
            ) from None
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise self.error(f"the array {name!r} holds NaN or infinite values")
        return value

    def _metadata(self):
        if not self.has("metadata"):
            raise self.error("not a relunet model file (no 'metadata' entry)")
        raw = self.array("metadata", dtypes=("uint8",), ndim=1)
        if raw.size > _MAX_METADATA_BYTES:
            raise self.error("the metadata is implausibly large")
        try:
            meta = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise self.error(f"the metadata is not valid JSON ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT_NAME:
            raise self.error("not a relunet model file (metadata without format 'relunet-model')")
        version = meta.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise self.error(f"invalid format_version {version!r}")
        if version > FORMAT_VERSION:
            raise self.error(
                f"written in model format version {version} by relunet "
                f"{meta.get('relunet_version', '?')}; this relunet reads up to version "
                f"{FORMAT_VERSION}: upgrade relunet to load it"
            )
        for key, kind in (
            ("hyperparameters", dict), ("classes", list), ("classes_dtype", str),
            ("n_features_in", int), ("training", dict), ("preprocessing", dict),
        ):
            if not isinstance(meta.get(key), kind):
                raise self.error(f"the metadata's {key!r} is missing or not a {kind.__name__}")
        return meta


def _labels(values, dtype_str):
    dtype = np.dtype(dtype_str)  # a plain dtype string; "O" for Python objects (str labels)
    if dtype.kind not in "biufUO":
        raise ValueError(f"unsupported classes dtype {dtype_str!r}")
    for v in values:
        if not isinstance(v, bool | int | float | str):
            raise ValueError(f"unsupported class label {v!r}")
    if dtype.kind == "O":
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    out = np.array(values, dtype=dtype)
    if out.ndim != 1:
        raise ValueError("classes must be a flat list")
    return out


def _same(a, b):
    return a.shape == b.shape and bool(np.all(a == b))


def _build_classifier(reader, meta):
    from sklearn.utils._param_validation import InvalidParameterError

    from .estimator import ReluNetClassifier

    hyper = dict(meta["hyperparameters"])
    cw = hyper.get("class_weight")
    if isinstance(cw, dict):
        if set(cw) != {"dict"} or not all(isinstance(p, list) and len(p) == 2 for p in cw["dict"]):
            raise ValueError("class_weight must be stored as {'dict': [[label, weight], ...]}")
        hyper["class_weight"] = {k: v for k, v in cw["dict"]}
    clf = ReluNetClassifier()
    unknown = set(hyper) - set(clf.get_params())
    if unknown:
        raise reader.error(f"unknown hyper-parameters {sorted(unknown)}")
    try:
        clf.set_params(**hyper)
        clf._validate_params()
    except InvalidParameterError as exc:
        raise reader.error(f"invalid hyper-parameters: {exc}") from None

    classes = _labels(meta["classes"], meta["classes_dtype"])
    if not _same(np.unique(classes), classes):
        raise reader.error("the classes must be sorted and distinct")
    K, D = classes.shape[0], meta["n_features_in"]
    if K < 2 or D < 1:
        raise reader.error(f"needs >= 2 classes and >= 1 feature, got {K} and {D}")
    W1 = reader.array("W1", dtypes=("float32", "float64"), ndim=2)
    H = W1.shape[1]
    if W1.shape != (D + 1, H) or H < 1:
        raise reader.error(f"W1 has shape {W1.shape}, expected ({D + 1}, H) for {D} features")
    W2 = reader.array("W2", dtypes=(W1.dtype.name,), ndim=2, shape=(H + 1, K))
    names = meta.get("feature_names")
    if names is not None:
        if not (isinstance(names, list) and len(names) == D and all(isinstance(n, str)
                                                                     for n in names)):
            raise reader.error("feature_names must be a list of n_features_in strings")
        clf.feature_names_in_ = np.asarray(names, dtype=object)

    tr = meta["training"]

    def floats(key, allow_none=False):
        v = tr.get(key)
        if v is None and allow_none:
            return None
        if not isinstance(v, list) or not all(isinstance(x, int | float) for x in v):
            raise ValueError(f"training.{key} must be a list of numbers")
        return [float(x) for x in v]

    history = tr.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise ValueError("training.history must be a list of objects")
    best = tr.get("best_loss")
    clf.W1_ = np.array(W1, order="C")
    clf.W2_ = np.array(W2, order="C")
    clf.classes_ = classes
    clf.n_features_in_ = int(D)
    clf.loss_curve_ = floats("loss_curve")
    clf.validation_loss_curve_ = floats("validation_loss_curve", allow_none=True)
    clf.validation_scores_ = floats("validation_scores", allow_none=True)
    clf.best_loss_ = math.inf if best is None else float(best)
    clf.n_iter_ = int(tr["n_iter"])
    clf.t_ = int(tr["t"])
    clf.history_ = history
    clf.stop_reason_ = str(tr.get("stop_reason", ""))
    clf.interrupted_ = tr.get("interrupted") is True
    clf.fit_seconds_ = float(tr.get("fit_seconds") or 0.0)
    return clf


def _build_pipeline(reader, prep, clf):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    kind = prep["kind"]
    if kind not in _SCALERS:
        raise reader.error(f"unknown preprocessing kind {kind!r}")
    scaler = {"standard": StandardScaler, "minmax": MinMaxScaler}[kind]()
    params = dict(prep["params"])
    if "feature_range" in params:
        params["feature_range"] = tuple(params["feature_range"])
    unknown = set(params) - set(scaler.get_params())
    if unknown:
        raise reader.error(f"unknown {type(scaler).__name__} parameters {sorted(unknown)}")
    scaler.set_params(**params)
    D = clf.n_features_in_
    if prep["n_features_in"] != D:
        raise reader.error(f"the scaler has {prep['n_features_in']} features, the model {D}")
    present = prep["arrays"]
    allowed = _SCALERS[kind][1]
    if not isinstance(present, list) or not set(present) <= set(allowed):
        raise reader.error(f"unexpected scaler arrays {present!r}")
    for attr in allowed:
        value = None
        if attr in present:
            value = reader.array("scaler." + attr, dtypes=("float64",), ndim=1, shape=(D,))
        setattr(scaler, attr, value)
    seen = prep["n_samples_seen"]
    if isinstance(seen, list):
        seen = np.asarray(seen, dtype=np.int64)
        if seen.shape != (D,):
            raise reader.error("n_samples_seen must be an int or one int per feature")
    else:
        seen = int(seen)
    scaler.n_samples_seen_ = seen
    scaler.n_features_in_ = D
    names = prep.get("feature_names")
    if names is not None:
        if not (isinstance(names, list) and len(names) == D):
            raise reader.error("the scaler's feature_names must list n_features_in names")
        scaler.feature_names_in_ = np.asarray([str(n) for n in names], dtype=object)
    step_names = prep.get("step_names") or ["scaler", "classifier"]
    if not (isinstance(step_names, list) and len(step_names) == 2
            and all(isinstance(n, str) for n in step_names)):
        raise reader.error("step_names must be two strings")
    return Pipeline([(step_names[0], scaler), (step_names[1], clf)])

