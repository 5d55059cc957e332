"""Model files: one ``.npz`` holding the weights, the fitted preparation and JSON metadata.

Layout (format version 2)::

    W1              (D+1, H) float32/float64    the note's w1, bias row last
    W2              (H+1, K) float32/float64    the note's w2, bias row last
    metadata        uint8, UTF-8 JSON           see :func:`save`
    prep.<k>.<attr> float64 arrays              only for a Pipeline: the fitted arrays of its
                                                preparation steps (:mod:`relunet.prepio`)

Version 1 files (a Pipeline of one scaler, its arrays as ``scaler.<attr>``) are still read.

Nothing is pickled or executed.  Files are read within budgets (``_MAX_*`` below, README
"Model files"): the zip directory is checked by :mod:`relunet._archive` before any member is
read, every array's ``.npy`` header and every metadata field are checked against each other
before an array's data are read, and anything unexpected raises :class:`ModelFileError`
naming the file.  Writes are atomic (temporary file in the same
folder, fsync, ``os.replace``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import math
import os
import re
import threading

import numpy as np

from . import _archive

__all__ = ["FORMAT_VERSION", "ModelFileError", "save", "load", "read_metadata"]

FORMAT_VERSION = 2
_FORMAT_NAME = "relunet-model"

# Reading budgets (README "Model files"): what a hostile file can make a reader spend.
_MAX_MEMBERS = 1024  # zip members
_MAX_DIRECTORY_BYTES = 2**20  # zip central directory
_MAX_DEFLATE_RATIO = 32  # declared inflated bytes per compressed byte of a deflated member
_MAX_NPY_HEADER = 4096  # bytes of one .npy header (numpy's own limit is 10 000)
_MAX_METADATA_BYTES = 8 * 2**20  # of JSON
_MAX_JSON_VALUES = 200_000  # counted from the text before parsing (save stays within it)
_MAX_JSON_DEPTH = 32
_MAX_JSON_STRING = 4096  # characters of one string (a label, a feature name, a key)
_MAX_DIM = 2**31 - 1  # n_features_in
_MAX_ABS_WEIGHT = 1e10  # |w| of a weight in W1, W2
_CHECK_CHUNK = 1 << 16  # array values checked at a time
_MAX_QUOTED = 100  # characters of file text quoted in an error message
_PREFIXES = ("scaler.", "prep.")  # members beside W1, W2 and metadata

# The scalers a Pipeline may hold, with their fitted array attributes (None allowed where
# the scaler sets them to None) and the JSON-able attributes restored beside them.
_SCALERS = {
    "standard": ("StandardScaler", ("mean_", "var_", "scale_")),
    "minmax": ("MinMaxScaler", ("min_", "scale_", "data_min_", "data_max_", "data_range_")),
}


class ModelFileError(ValueError):
    """The file is not a readable relunet model (damaged, foreign, too new, unsafe)."""


# ---------------------------------------------------------------------------------- save
def save(model, path, *, table=None):
    """Write a fitted model to ``path`` atomically; returns ``path``.

    Parameters
    ----------
    model : ReluNetClassifier or sklearn.pipeline.Pipeline
        A fitted :class:`~relunet.ReluNetClassifier`, or a fitted Pipeline ending in one whose
        other steps are of the documented set of :mod:`relunet.prepio` (scalers,
        ``SimpleImputer``, ``OneHotEncoder``, ``ColumnTransformer``, nested Pipelines,
        ``"passthrough"``); anything else raises ``TypeError`` naming the step.
    path : str or os.PathLike
        Destination, used as given (no ``.npz`` is appended).  An existing file is replaced
        only once the new one is completely written.
    table : dict, optional
        JSON facts about the table the model was trained on (the CLI stores ``label``,
        ``ids``), kept as the metadata's ``table``.

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
    ``validation_scores``, ``history``; non-finite numbers as null), ``preprocessing``
    (``{"kind": "none"}`` or ``{"kind": "pipeline", "step_names": [...], "steps": [[name,
    spec], ...]}`` with :func:`relunet.prepio.dump`'s specs; version 1 wrote ``{"kind":
    "standard"|"minmax", ...}``) and ``table`` (the ``table`` argument, or null).
    """
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    from . import __version__, prepio
    from .arrayapi import to_numpy
    from .estimator import ReluNetClassifier

    if callable(getattr(model, "to_local", None)):  # DaskReluNetClassifier: its plain model
        model = model.to_local()
    clf, prep_steps, step_names = _split(model, Pipeline, ReluNetClassifier)
    check_is_fitted(clf, ("W1_", "W2_", "classes_"))
    clf = to_numpy(clf)  # trained on CuPy/PyTorch arrays: the file holds NumPy arrays all the same
    arrays = {"W1": np.ascontiguousarray(clf.W1_), "W2": np.ascontiguousarray(clf.W2_)}
    preprocessing = {"kind": "none"}
    if prep_steps is not None:
        preprocessing = {"kind": "pipeline", "step_names": list(step_names), "steps": []}
        counter = prepio._Counter()
        for name, step in prep_steps:
            spec, _ = prepio.dump(step, where=name, counter=counter, arrays=arrays)
            preprocessing["steps"].append([name, spec])
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
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "model": "Pipeline" if prep_steps is not None else type(clf).__name__,
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
        "table": _jsonable(table) if table is not None else None,
    }
    raw = _fit_budget(metadata)
    arrays["metadata"] = np.frombuffer(raw, dtype=np.uint8)
    _atomic_savez(path, arrays)
    return path


_PER_EPOCH = ("history", "loss_curve", "validation_loss_curve", "validation_scores")


def _fit_budget(metadata):
    """The metadata as UTF-8 JSON within the reading budgets, so that save never writes a file
    load refuses.  A very long training's per-epoch records (``history`` and the loss and
    score curves) are cut to their last epochs, ``training.epochs_dropped`` saying how many
    went; metadata that is over the budgets even without them raises ValueError."""
    def dump(meta):
        return json.dumps(meta, allow_nan=False, ensure_ascii=False).encode("utf-8")

    raw = dump(metadata)
    if _count_values(raw) <= _MAX_JSON_VALUES and len(raw) <= _MAX_METADATA_BYTES:
        return _loadable(raw)  # also: no string too long, nothing nested too deep
    training = metadata["training"]
    curves = {k: training[k] for k in _PER_EPOCH if isinstance(training.get(k), list)}
    epochs = max((len(v) for v in curves.values()), default=0)
    lo, hi = 0, epochs  # the most epochs kept that fit: binary search
    while lo < hi:
        mid = (lo + hi + 1) // 2
        trial = dict(training, epochs_dropped=epochs - mid,
                     **{k: v[len(v) - min(mid, len(v)):] for k, v in curves.items()})
        text = dump(dict(metadata, training=trial))
        if _count_values(text) <= _MAX_JSON_VALUES and len(text) <= _MAX_METADATA_BYTES:
            lo = mid
        else:
            hi = mid - 1
    trial = dict(training, epochs_dropped=epochs - lo,
                 **{k: v[len(v) - min(lo, len(v)):] for k, v in curves.items()})
    return _loadable(dump(dict(metadata, training=trial)))


def _loadable(raw):
    """``raw`` if the reader's JSON checks accept it, else ValueError saying why."""
    try:
        if len(raw) > _MAX_METADATA_BYTES:
            raise ValueError(f"more than {_MAX_METADATA_BYTES:,} bytes")
        _parse_json(raw)
    except ValueError as exc:
        raise ValueError(
            f"cannot save this model: its metadata (feature names, classes, preparation, "
            f"table) would not load ({exc})"
        ) from None
    return raw


def _split(model, Pipeline, ReluNetClassifier):
    """(classifier, [(name, step), ...] before it or None, all step names or None)."""
    if isinstance(model, ReluNetClassifier):
        return model, None, None
    if isinstance(model, Pipeline):
        steps = model.steps
        if len(steps) >= 2 and isinstance(steps[-1][1], ReluNetClassifier):
            names = [str(name) for name, _ in steps]
            return steps[-1][1], [(str(n), s) for n, s in steps[:-1]], names
        got = [type(step).__name__ for _, step in steps]
        raise TypeError(
            f"can only save a Pipeline of preparation steps ending in a ReluNetClassifier; "
            f"got steps {got}"
        )
    raise TypeError(
        f"can only save a fitted ReluNetClassifier or a Pipeline ending in one; "
        f"got {type(model).__name__}"
    )


def _atomic_savez(path, arrays):
    """``np.savez`` into :func:`relunet.data.atomic_path` (signals held while the temporary
    file is created), the file fsynced before the rename and the folder after it."""
    from .data import atomic_path

    target = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise FileNotFoundError(2, "No such directory", folder)
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
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
@contextlib.contextmanager
def metadata_cache():
    """Within the block, a model file's metadata is parsed once, however often it is read.

    ``relunet`` runs each command in one: ``info`` loads the model and reads its metadata,
    and the file's JSON is parsed once.  The cache holds the last file read (known by device,
    inode, size and modification times; a rewritten file is read again) and is dropped when
    the block ends.  Callers get their own copy each time.
    """
    with _Reader._cache_lock:
        outer, _Reader._cache = _Reader._cache, _Reader._cache or (None, None)
    try:
        yield
    finally:
        with _Reader._cache_lock:
            _Reader._cache = outer


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
        _build(reader, weights=False)  # the same checks as load, less the weights' values
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
        return _build(reader)


def _build(reader, weights=True):
    """The model of ``reader``'s file; without reading W1 and W2 (and returning a classifier
    without them) when ``weights`` is false, for :func:`read_metadata`'s checks."""
    meta = reader.metadata
    try:
        clf = _build_classifier(reader, meta, weights=weights)
        prep = meta["preprocessing"]
        if prep["kind"] == "none":
            return clf
        return _build_pipeline(reader, prep, clf)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise reader.error(f"inconsistent metadata ({type(exc).__name__}: {exc})") from None


class _Reader:
    """Opens a model file within the budgets and hands out validated arrays; every failure is
    a ModelFileError naming the file.

    The zip directory is checked first (:class:`relunet._archive.Archive`), then every member's
    ``.npy`` header (at most ``_MAX_NPY_HEADER`` bytes read), then the metadata (size checked
    before reading, JSON budgets while parsing, every field against the arrays' headers).  An
    array's data are read only when asked for, into one buffer of the size its header declares.
    """

    _cache = None  # inside metadata_cache(): (file identity, metadata) of the last file read
    _cache_lock = threading.Lock()

    def __init__(self, path):
        self.path = os.fspath(path)
        self.archive = None
        self.headers = {}  # name -> (shape, dtype) of every array, from its .npy header
        self._layout = {}  # name -> (fortran_order, header_size)

    def error(self, what):
        # text quoted from the file (a name, a header, a value) never makes a message long
        return ModelFileError(f"{self.path}: {_clip(what, 3 * _MAX_QUOTED)}")

    def __enter__(self):
        try:  # FileNotFoundError, PermissionError, IsADirectoryError pass through unchanged
            self.archive = _archive.Archive(
                self.path, max_members=_MAX_MEMBERS, max_directory=_MAX_DIRECTORY_BYTES,
                max_ratio=_MAX_DEFLATE_RATIO,
            )
        except _archive.ArchiveError as exc:
            raise self.error(f"not a readable model file: it {exc}") from None
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.archive is not None:
            self.archive.close()
            self.archive = None

    def has(self, name):
        return name in self.headers

    def _open(self):
        magic = self.archive.head(6)
        if not magic:
            raise self.error("not a relunet model file (the file is empty)")
        if magic.startswith(b"\x93NUMPY"):
            raise self.error("not a relunet model file (a single .npy array, not an .npz)")
        if not magic.startswith(b"PK"):
            raise self.error(
                "not a relunet model file (not an .npz archive; pickled data is never loaded)"
            )
        try:
            self.archive.read_directory()
        except _archive.ArchiveError as exc:
            raise self.error(f"not a readable model file: it {exc}") from None
        self._scan()
        self.metadata = self._metadata()

    def _scan(self):
        """Read every member's ``.npy`` header: refuse foreign members, object arrays, odd
        dtypes, and a header whose shape disagrees with the member's size, before any data."""
        for member in self.archive.members.values():
            if not member.name.endswith(".npy"):
                raise self.error(f"unexpected entry {member.name!r}")
            name = member.name[:-4]
            if name not in ("W1", "W2", "metadata") and not name.startswith(_PREFIXES):
                raise self.error(f"unexpected entry {member.name!r}")
            try:
                fh = io.BytesIO(self.archive.prefix(member.name, _MAX_NPY_HEADER))
                version = np.lib.format.read_magic(fh)
                if version not in ((1, 0), (2, 0)):
                    raise ValueError(f"unsupported .npy format version {version}")
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read(fh, max_header_size=_MAX_NPY_HEADER)
                header_size = fh.tell()
            except _archive.ArchiveError as exc:
                raise self.error(f"the array {name!r} is damaged (the file {exc})") from None
            except Exception as exc:  # bad magic, bad header, too long a header, ...
                raise self.error(
                    f"the array {name!r} is damaged ({type(exc).__name__}: {_clip(str(exc))})"
                ) from None
            if dtype.hasobject:
                raise self.error(
                    f"the array {name!r} holds Python objects (pickled data); refusing to load it"
                )
            if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in "biufU":
                raise self.error(f"the array {name!r} has the unsupported dtype {dtype}")
            if any(n < 0 for n in shape):
                raise self.error(f"the array {name!r} has the invalid shape {shape}")
            need = header_size + math.prod(shape) * dtype.itemsize
            if member.size < need:
                raise self.error(f"the array {name!r} is truncated")
            if member.size > need:
                raise self.error(f"the array {name!r} is damaged (bytes after its data)")
            self.headers[name] = (tuple(shape), dtype)
            self._layout[name] = (bool(fortran), header_size)

    def array(self, name, *, dtypes, ndim, shape=None):
        """The array ``name``, after checking its header (dtype, shape) and its values.

        Read into one buffer of the size its header declares (checked against the zip
        directory), in native byte order; floating arrays must be finite, weights ``W1``/``W2``
        at most ``_MAX_ABS_WEIGHT`` in size, and arrays named ``*scale_`` non-zero (checked
        chunk-wise, :meth:`_check_values`; a preparation's values are checked further by
        :func:`relunet.prepio.checked_values`, by their role).
        """
        if name not in self.headers:
            raise self.error(f"the array {name!r} is missing")
        (a_shape, a_dtype), (fortran, header_size) = self.headers[name], self._layout[name]
        if a_dtype.name not in dtypes:
            raise self.error(f"the array {name!r} has dtype {a_dtype}, expected one of {dtypes}")
        if len(a_shape) != ndim or (shape is not None and a_shape != tuple(shape)):
            want = tuple(shape) if shape is not None else f"{ndim} dimension(s)"
            raise self.error(f"the array {name!r} has shape {a_shape}, expected {want}")
        if fortran:
            value = np.empty(a_shape[::-1], dtype=a_dtype).T
            buffer = value.T
        else:
            value = buffer = np.empty(a_shape, dtype=a_dtype)
        try:
            self.archive.read_into(name + ".npy", memoryview(buffer).cast("B"), skip=header_size)
        except _archive.ArchiveError as exc:
            raise self.error(f"the array {name!r} is damaged (the file {exc})") from None
        if not a_dtype.isnative:  # big-endian data: the same values, in this machine's order
            value = value.byteswap().view(a_dtype.newbyteorder("="))
        if value.dtype.kind == "f":
            self._check_values(name, value)
        return value

    def _check_values(self, name, value):
        """Finite; W1, W2 at most ``_MAX_ABS_WEIGHT`` in size; ``*scale_`` non-zero.  Checked
        ``_CHECK_CHUNK`` values at a time, so that no temporary grows with the array."""
        flat = value.ravel(order="K")  # a view: the array was read contiguous
        weights = name in ("W1", "W2")
        biggest = 0.0
        for start in range(0, flat.size, _CHECK_CHUNK):
            chunk = flat[start:start + _CHECK_CHUNK]
            if not np.all(np.isfinite(chunk)):
                raise self.error(f"the array {name!r} holds NaN or infinite values")
            if weights:
                biggest = max(biggest, -float(np.min(chunk)), float(np.max(chunk)))
            if name.endswith("scale_") and np.any(chunk == 0):
                raise self.error(
                    f"the array {name!r} holds a zero scale (a scaler never fits one; "
                    "transforming would divide by zero)"
                )
        if biggest > _MAX_ABS_WEIGHT:
            raise self.error(
                f"the array {name!r} holds a weight of size {biggest:.3g}; trained "
                f"weights are far below {_MAX_ABS_WEIGHT:.0e} and larger ones make "
                "every prediction overflow"
            )

    def _metadata(self):
        if not self.has("metadata"):
            raise self.error("not a relunet model file (no 'metadata' entry)")
        shape, dtype = self.headers["metadata"]
        if dtype.name != "uint8" or len(shape) != 1:
            raise self.error(f"the array 'metadata' has dtype {dtype}, expected one of "
                             "('uint8',)" if dtype.name != "uint8" else
                             f"the array 'metadata' has shape {shape}, expected 1 dimension(s)")
        if shape[0] > _MAX_METADATA_BYTES:
            raise self.error(f"the metadata is implausibly large ({shape[0]:,} bytes; at most "
                             f"{_MAX_METADATA_BYTES:,} are read)")
        identity = self.archive.identity
        with _Reader._cache_lock:
            cached_identity, cached = _Reader._cache or (None, None)
        if cached_identity == identity:
            return _copy_json(cached)
        raw = self.array("metadata", dtypes=("uint8",), ndim=1).tobytes()
        try:
            meta = _parse_json(raw)
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
        self._check_fields(meta)
        with _Reader._cache_lock:
            if _Reader._cache is not None:  # the cache keeps this one; the caller gets a copy
                _Reader._cache = (identity, meta)
                return _copy_json(meta)
        return meta

    def _check_fields(self, meta):
        """Every metadata field that describes the arrays, against their headers."""
        D = meta["n_features_in"]
        if isinstance(D, bool) or not 1 <= D <= _MAX_DIM:
            raise self.error(f"the metadata's n_features_in {D!r} is not in 1..{_MAX_DIM}")
        for name in ("W1", "W2"):
            if not self.has(name):
                raise self.error(f"the array {name!r} is missing")
        (w1_shape, w1_dtype), (w2_shape, w2_dtype) = self.headers["W1"], self.headers["W2"]
        for name, dtype, want in (("W1", w1_dtype, ("float32", "float64")),
                                  ("W2", w2_dtype, (w1_dtype.name,))):
            if dtype.name not in want:
                raise self.error(f"the array {name!r} has dtype {dtype}, expected one of {want}")
        if len(w1_shape) != 2:
            raise self.error(f"the array 'W1' has shape {w1_shape}, expected 2 dimension(s)")
        H = w1_shape[1]
        if w1_shape[0] != D + 1 or H < 1:
            raise self.error(f"W1 has shape {w1_shape}, expected ({D + 1}, H) for {D} features")
        K = len(meta["classes"])
        if w2_shape != (H + 1, K):
            raise self.error(f"the array 'W2' has shape {w2_shape}, expected {(H + 1, K)}")
        hidden_units = meta["hyperparameters"].get("hidden_units", H)
        for key, value, want in (("n_hidden", meta.get("n_hidden", H), H),
                                 ("n_classes", meta.get("n_classes", K), K),
                                 ("hyperparameters.hidden_units", hidden_units, H)):
            if not isinstance(value, int) or isinstance(value, bool) or value != want:
                raise self.error(f"the metadata's {key} is {value!r} but the weights have {want}")
        wd = meta.get("weights_dtype", w1_dtype.name)
        if wd != w1_dtype.name:
            raise self.error(f"the metadata's weights_dtype is {wd!r} but W1 is {w1_dtype.name}")
        names = meta.get("feature_names")
        if names is not None and not (isinstance(names, list) and len(names) == D
                                      and all(isinstance(n, str) for n in names)):
            raise self.error("feature_names must be a list of n_features_in strings")
        try:
            _labels(meta["classes"], meta["classes_dtype"])
        except ValueError as exc:
            raise self.error(f"inconsistent metadata (ValueError: {exc})") from None
        tr = meta["training"]
        for key in ("n_iter", "t"):
            v = tr.get(key, 0)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise self.error(f"the metadata's training.{key} must be an integer >= 0, "
                                 f"got {v!r}")
        if not isinstance(meta["preprocessing"].get("kind"), str):
            raise self.error("the metadata's preprocessing.kind must be a string")
        if not isinstance(meta.get("table"), dict | None):
            raise self.error("the metadata's table must be an object or null")


def _copy_json(obj):
    """A copy of parsed JSON: new dicts and lists, the (immutable) strings and numbers shared;
    no ``deepcopy`` memo, so the copy costs only its containers."""
    if isinstance(obj, dict):
        return {k: _copy_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_copy_json(v) for v in obj]
    return obj


def _count_values(raw):
    """An upper bound on the number of values in the JSON text ``raw`` (bytes)."""
    return raw.count(b",") + raw.count(b"[") + raw.count(b"{") + 1


def _parse_json(raw):
    """JSON within the budgets: ``_MAX_JSON_VALUES`` values (counted before parsing, so that
    the parse cannot take more than ~100 bytes of memory per byte of text... in all), depth
    ``_MAX_JSON_DEPTH``, strings of ``_MAX_JSON_STRING`` characters; no NaN/Infinity (also
    none from a number too large for a float, such as ``1e999``), no key twice in one object."""
    values = _count_values(raw)
    if values > _MAX_JSON_VALUES:
        raise ValueError(f"more than {_MAX_JSON_VALUES:,} values")

    def constant(word):
        raise ValueError(f"{word} is not a JSON number")

    def pairs(items):
        obj = dict(items)
        if len(obj) != len(items):
            seen = set()
            dup = next(k for k, _ in items if k in seen or seen.add(k))
            raise ValueError(f"the key {dup!r} appears twice in one object")
        return obj

    meta = json.loads(raw.decode("utf-8"), parse_constant=constant, object_pairs_hook=pairs)
    stack = [(meta, 1)]
    while stack:
        obj, depth = stack.pop()
        if depth > _MAX_JSON_DEPTH:
            raise ValueError(f"nested deeper than {_MAX_JSON_DEPTH} levels")
        if isinstance(obj, dict):
            stack.extend((k, depth + 1) for k in obj)
            stack.extend((v, depth + 1) for v in obj.values())
        elif isinstance(obj, list):
            stack.extend((v, depth + 1) for v in obj)
        elif isinstance(obj, str) and len(obj) > _MAX_JSON_STRING:
            raise ValueError(f"a string of {len(obj):,} characters (at most "
                             f"{_MAX_JSON_STRING:,})")
        elif isinstance(obj, float) and not math.isfinite(obj):  # "1e999" parses as inf
            raise ValueError("a number too large for a float (it would be infinite)")
    return meta


# The class dtypes save() writes: bool, integers, floats, str (as "<U<n>", n characters), or
# Python objects (str labels of an object array).  Nothing else is parsed as a dtype.
_CLASSES_DTYPE = re.compile(r"[<>|=]?(b1|[iu][1248]|f[248]|U([0-9]{1,6})|O)")


def _labels(values, dtype_str):
    """The classes array of ``dtype_str``, without allocating more than the labels need."""
    match = _CLASSES_DTYPE.fullmatch(dtype_str)
    if match is None:
        raise ValueError(f"unsupported classes dtype {dtype_str!r}")
    for v in values:
        if not isinstance(v, bool | int | float | str):
            raise ValueError(f"unsupported class label {v!r}")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"the class label {v!r} is not finite")
    dtype = np.dtype(dtype_str)
    if match.group(2) is not None:  # a fixed-width string: no wider than its longest label
        longest = max((len(str(v)) for v in values), default=0)
        if int(match.group(2)) > max(longest, 64):
            raise ValueError(f"the classes dtype {dtype_str!r} is wider than the longest "
                             f"label ({longest} characters)")
    if dtype.kind == "O":
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    try:  # NumPy raises OverflowError for 300 as int8, -1 as uint8, 2**70 as int64
        with np.errstate(all="ignore"):
            out = np.array(values, dtype=dtype)
    except (OverflowError, ValueError, TypeError):
        raise ValueError(f"the class labels do not fit the classes dtype {dtype_str!r}") from None
    if out.ndim != 1:
        raise ValueError("classes must be a flat list")
    for v, back in zip(values, out.tolist(), strict=True):  # the cast must change nothing
        if back != v or isinstance(back, bool) != isinstance(v, bool):
            raise ValueError(f"the class label {v!r} does not survive the classes dtype "
                             f"{dtype_str!r} (it would become {back!r})")
    return out.astype(dtype.newbyteorder("="), copy=False)


def _clip(text, n=_MAX_QUOTED):
    """``text`` cut to ``n`` characters (NumPy's header errors quote the whole header)."""
    return text if len(text) <= n else text[:n] + f"... ({len(text) - n:,} more characters)"


def _same(a, b):
    return a.shape == b.shape and bool(np.all(a == b))


def _build_classifier(reader, meta, weights=True):
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
    H = reader.headers["W1"][0][1]  # checked against n_hidden and the other arrays already
    if weights:
        W1 = reader.array("W1", dtypes=("float32", "float64"), ndim=2, shape=(D + 1, H))
        W2 = reader.array("W2", dtypes=(W1.dtype.name,), ndim=2, shape=(H + 1, K))
        clf.W1_ = np.ascontiguousarray(W1)  # no copy: read in C order already
        clf.W2_ = np.ascontiguousarray(W2)
    names = meta.get("feature_names")
    if names is not None:
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
    clf.classes_ = classes
    clf.n_features_in_ = int(D)
    clf.loss_curve_ = floats("loss_curve")
    clf.validation_loss_curve_ = floats("validation_loss_curve", allow_none=True)
    clf.validation_scores_ = floats("validation_scores", allow_none=True)
    clf.best_loss_ = math.inf if best is None else float(best)
    clf.n_iter_ = int(tr["n_iter"])
    clf.t_ = int(tr["t"])
    clf.history_ = [dict(h) for h in history]
    clf.stop_reason_ = str(tr.get("stop_reason", ""))
    clf.interrupted_ = tr.get("interrupted") is True
    clf.fit_seconds_ = float(tr.get("fit_seconds") or 0.0)
    return clf


def _build_pipeline(reader, prep, clf):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    from . import prepio

    kind = prep["kind"]
    if kind == "pipeline":
        steps = prep["steps"]
        names = prep["step_names"]
        if not (isinstance(steps, list) and steps and isinstance(names, list)
                and len(names) == len(steps) + 1 and all(isinstance(n, str) for n in names)
                and all(isinstance(s, list) and len(s) == 2 and s[0] == n
                        for s, n in zip(steps, names, strict=False))):
            raise reader.error("the preprocessing steps are malformed")
        prepio._distinct(names, "Pipeline")
        built = [(name, prepio.load(spec, reader.array)) for name, spec in steps]
        return Pipeline([*built, (names[-1], clf)])
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
    scaler._validate_params()  # InvalidParameterError (a ValueError) for with_mean="yes"
    D = clf.n_features_in_
    if prep["n_features_in"] != D:
        raise reader.error(f"the scaler has {prep['n_features_in']} features, the model {D}")
    present = prep["arrays"]
    allowed = _SCALERS[kind][1]
    if not isinstance(present, list) or not set(present) <= set(allowed):
        raise reader.error(f"unexpected scaler arrays {present!r}")
    if set(present) != prepio.scaler_arrays(scaler):
        raise reader.error(f"a {type(scaler).__name__} with these parameters has the arrays "
                           f"{sorted(prepio.scaler_arrays(scaler))}, not {sorted(present)}")
    for attr in allowed:
        value = None
        if attr in present:
            value = prepio.checked_values(f"the scaler's {attr}", reader.array(
                "scaler." + attr, dtypes=("float64",), ndim=1, shape=(D,)))
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
    prepio._distinct(step_names, "Pipeline")
    return Pipeline([(step_names[0], scaler), (step_names[1], clf)])

