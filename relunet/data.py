"""Data files for the command line: one reader per format, chosen by the file's extension.

========================  ==========================================================  ========
Extension                 Layout                                                      Needs
========================  ==========================================================  ========
``.csv`` ``.tsv``         header row; separator and decimal mark sniffed; the label   pandas
(also ``.gz``)            column is ``--target``, else the one named label/target/
                          class/y, else the last; text columns are one-hot encoded,
                          missing numbers imputed (see :mod:`relunet.tables`)
``.parquet`` ``.pq``      the same, as a Parquet table                                pyarrow
``.npy``                  a 2-D float array of features (3-D: images, flattened);     numpy
                          labels from ``--labels``
``.npz``                  arrays named ``X`` (features) and ``y`` (labels)            numpy
``.idx`` ``*-idx3-ubyte``  MNIST's IDX format, optionally gzip'd; images are          numpy
(also ``.gz``)            flattened to rows; labels from an IDX file via ``--labels``
========================  ==========================================================  ========

A ``--labels`` file may be ``.npy``, IDX, ``.txt`` (one label per line) or a one-column
CSV/TSV/Parquet table.  Every reader returns a :class:`Dataset` or raises :class:`DataError`,
whose message names the file and is meant for the user as it is.  Tables are read by
:mod:`relunet.tables`; this module keeps the array formats and atomic writes.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib
import json
import os
import re
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "DataError",
    "MissingDependency",
    "Dataset",
    "FORMATS",
    "read_data",
    "read_labels",
    "read_idx",
    "builtin",
    "format_of",
    "atomic_path",
    "atomic_open",
    "check_destination",
    "PipeGuard",
    "write_json",
    "write_predictions",
    "require",
]


class DataError(ValueError):
    """A data file that cannot be used; the message names the file and says why."""


class MissingDependency(ImportError):
    """An optional package is needed for this; the message says which extra to install."""


@dataclass
class Dataset:
    """Features and (optionally) labels read from a file or a built-in data set.

    Attributes
    ----------
    X : float array of shape (N, D)
    y : array of shape (N,) or None
        Labels as found (ints or strings); None when the file held none.
    feature_names : list of str or None
        Column names of a table; None for arrays.
    source : str
        The file name or ``"digits (built-in)"``, for messages.
    image_shape : tuple or None
        ``(rows, cols)`` when each row is a flattened image (IDX, 3-D ``.npy``, digits).
    numeric, categorical : list of str or None
        Tables only: the numeric and the text feature columns (then ``X`` is a pandas
        DataFrame of the raw columns, see :func:`relunet.tables.read_table`).
    label : str or None
        Tables only: the label column.
    ids : DataFrame or None
        Tables only: the ``--id`` columns, as text.
    notes : list of str
        What the reader decided that the user should be told (columns left out, ...).
    labels_source : str or None
        The separate labels file (``--labels``) the labels came from.
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list | None
    source: str
    image_shape: tuple | None = None
    numeric: list | None = None
    categorical: list | None = None
    label: str | None = None
    label_how: str | None = None
    ids: object = None
    notes: list = field(default_factory=list)
    rows: object = None
    labels_source: str | None = None

    @property
    def is_table(self):
        return self.numeric is not None

    @property
    def n_classes(self):
        return 0 if self.y is None else len(np.unique(self.y))


# Extensions (after stripping ".gz") -> format name.  Checked longest first.
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".npy": "npy",
    ".npz": "npz",
    ".idx": "idx",
    ".txt": "txt",
}
_CANONICAL_INT = re.compile(r"0|-?[1-9][0-9]*")  # str(int(s)) == s
_IDX_NAME = re.compile(r"[.-]idx\d-u?byte$")  # MNIST's "train-images-idx3-ubyte"

FORMATS = (
    ("CSV / TSV", ".csv .tsv (.gz)",
     "header row; label --target, else label/target/class/y, else the last column"),
    ("Parquet", ".parquet .pq", "the same as CSV; needs pyarrow"),
    ("NumPy", ".npy", "2-D features (3-D images are flattened); labels via --labels"),
    ("NumPy archive", ".npz", "arrays named X and y"),
    ("IDX (MNIST)", ".idx, *-idx3-ubyte (.gz)", "images flattened to rows; labels via --labels"),
)


def format_of(path):
    """The format name of ``path`` from its extension, or raise :class:`DataError`."""
    name = os.path.basename(str(path)).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if _IDX_NAME.search(name):
        return "idx"
    for ext, fmt in _EXTENSIONS.items():
        if name.endswith(ext):
            return fmt
    known = ", ".join(sorted(set(_EXTENSIONS) - {".txt"})) + ", *-idx3-ubyte"
    raise DataError(f"{path}: unknown file type; use one of {known} (optionally .gz for text/IDX)")


def require(module, extra, what):
    """Import ``module`` or raise :class:`MissingDependency` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(
            f"{what} needs the '{module}' package: pip install 'relunet[{extra}]'"
        ) from None


def _check_file(path):
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory, not a data file")
    if os.path.getsize(path) == 0:
        raise DataError(f"{path}: the file is empty")


# ---------------------------------------------------------------------------------- writing


def check_destination(path, what, *, directory=False):
    """Raise :class:`DataError` now if ``path`` cannot be written later (before a long run).

    A file destination needs an existing, writable folder and must not be a folder itself;
    a ``directory`` destination may not exist yet (it is created) but its parent must, and
    it must not be a file.
    """
    path = os.fspath(path)
    if directory:
        if os.path.exists(path) and not os.path.isdir(path):
            raise DataError(f"{what} {path}: is a file, not a directory")
        parent = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    else:
        if os.path.isdir(path):
            raise DataError(f"{what} {path}: is a directory; give a file name")
        parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise DataError(f"{what} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"{what} {path}: directory {parent} is not writable")


@contextlib.contextmanager
def atomic_path(path, *, suffix=".tmp"):
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    A crash or an error inside the block removes the temporary file, so ``path`` is either
    untouched or complete, never half-written.  The file gets the usual permissions
    (0666 less the umask), not ``mkstemp``'s 0600.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise DataError(f"{path}: directory {directory} does not exist")
    from . import _signals

    tmp = None
    held = _signals.hold()  # no Ctrl-C/SIGTERM/SIGHUP between creating tmp and this try
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix,
                                   dir=directory)
        os.close(fd)
        _signals.release(held)  # a signal that came meanwhile raises here, inside the try
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        ours = exc.filename is None or os.path.basename(str(exc.filename)).startswith(
            f".{os.path.basename(path)}.")  # the temporary file, or mkstemp's try at one
        if not ours or not exc.errno:
            raise
        # a write into the temporary file (a full disk...): name the file being written
        raise type(exc)(exc.errno, exc.strerror, path) from exc
    finally:
        _signals.release(held)  # mkstemp failed: the handlers back (a no-op after release)
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


@contextlib.contextmanager
def atomic_open(path, mode="w"):
    """Open a temporary file for writing that becomes ``path`` only when the block succeeds."""
    with atomic_path(path) as tmp:
        text = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with open(tmp, mode, **text) as fh:
            yield fh


class PipeGuard:
    """stdout that survives a reader going away (``relunet train ... | head -2``).

    After a broken pipe the rest of the output goes nowhere, and the command carries on:
    the model, metrics and plots asked for are still written, and the exit status says
    whether *they* succeeded.
    """

    def __init__(self, stream):
        self.stream = stream
        self.broken = False

    def _silence(self):
        self.broken = True
        with contextlib.suppress(OSError, AttributeError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())  # also silences the flush at exit
            os.close(devnull)

    def write(self, text):
        if self.broken:
            return len(text)
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self._silence()
            return len(text)

    def flush(self):
        if self.broken:
            with contextlib.suppress(OSError, ValueError):
                self.stream.flush()
            return
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._silence()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def write_json(path, obj):
    """Write ``obj`` as indented JSON to ``path`` atomically (NumPy values unpacked)."""
    with atomic_open(path) as fh:
        json.dump(_jsonable(obj), fh, indent=2, allow_nan=False)
        fh.write("\n")


def _jsonable(obj):
    """Plain JSON values: numpy scalars and arrays unpacked, NaN/inf as null."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    return str(obj)


def output_columns(classes, proba):
    """The columns :func:`write_predictions` writes after the ids: ``prediction`` and, with
    ``proba``, one per class named by the class (``p_prediction`` for a class so named)."""
    names = ["prediction"]
    if proba:
        names += [class_column(c) for c in classes]
    return names


def class_column(c):
    """The name of class ``c``'s probability column in predictions."""
    return str(c) if str(c) != "prediction" else "p_prediction"


def write_predictions(fh, pred, *, ids=None, proba=None, classes=None, text=None):
    """Predictions as CSV to an open text file: the id columns, ``prediction`` and, with
    ``proba`` of shape (N, K), one column per class named by the class (``p_prediction``
    for a class named "prediction"); probabilities with 6 significant digits.

    ``text`` (optional) maps every text cell and class name before writing (e.g. escaping
    control characters for a terminal).  A row with a carriage return in a cell is written
    fully quoted: Python's csv module quotes only the line terminator's characters, and a
    bare ``\r`` would split the row when read back.
    """
    import csv

    show = (lambda v: v) if text is None else text
    plain = csv.writer(fh, lineterminator="\n")
    quoted = csv.writer(fh, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def write(row):
        row = [show(v) if isinstance(v, str) else v for v in row]
        cr = any(isinstance(v, str) and "\r" in v for v in row)
        (quoted if cr else plain).writerow(row)

    header = [] if ids is None else [str(c) for c in ids.columns]
    write(header + output_columns(classes, proba is not None))
    id_rows = None if ids is None else ids.to_numpy(dtype=object)
    for i in range(len(pred)):
        row = [] if id_rows is None else ["" if v is None or v != v else v for v in id_rows[i]]
        row.append(pred[i].item() if hasattr(pred[i], "item") else pred[i])
        if proba is not None:
            row += [f"{p:.6g}" for p in proba[i]]
        write(row)


# ---------------------------------------------------------------------------------- IDX

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path):
    """The file's bytes, gunzipped when it starts with the gzip magic number."""
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from None


def read_idx(path):
    """An IDX array (MNIST's format), gzip'd or not.

    The header is two zero bytes, a type code (0x08 ubyte, 0x09 byte, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, then each dimension as a
    big-endian uint32; the data follow in C order, big-endian.

    Returns
    -------
    ndarray with the file's shape, in native byte order.
    """
    _check_file(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - 4 - 4 * ndim
    if found != expected:
        what = "truncated" if found < expected else "has trailing bytes"
        raise DataError(
            f"{path}: IDX file {what}: header says shape {dims} ({expected} bytes of data), "
            f"found {found} bytes"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


# ---------------------------------------------------------------------------------- labels


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _clean_labels(y, source):
    """Labels as a 1-D array: integral floats become ints, text stays text."""
    y = np.asarray(y)
    if y.ndim == 2 and 1 in y.shape:
        y = y.ravel()
    if y.ndim != 1:
        raise DataError(f"{source}: labels must be one column, got shape {y.shape}")
    if y.dtype == object:
        missing = [i for i, v in enumerate(y) if v is None or (isinstance(v, float) and v != v)]
        if missing:
            raise DataError(f"{source}: label missing in row {missing[0] + 1}")
        if all(isinstance(v, str) for v in y):
            y = y.astype(str)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            row = int(np.flatnonzero(~np.isfinite(y))[0]) + 1
            raise DataError(f"{source}: label missing or not finite in row {row}")
        if np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:  # a measurement (a regression target), not classes
            row = int(np.flatnonzero(y != np.round(y))[0]) + 1
            raise DataError(f"{source}: the labels are numbers that are not whole (e.g. "
                            f"{y[row - 1].item()!r} in row {row}): a measurement, not classes; "
                            "relunet classifies, so give class labels")
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    return y


def _check_finite(X, source, names=None):
    if X.size == 0:
        raise DataError(f"{source}: no data (shape {X.shape})")
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        where = f"column {names[col]!r}" if names is not None else f"feature {col}"
        what = "missing (NaN)" if np.isnan(X[row, col]) else "infinite"
        raise DataError(
            f"{source}: {where} is {what} in data row {row + 1} "
            f"({int(bad.sum())} such values); remove or fill them first"
        )


def _show(names, limit=8):
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


# ---------------------------------------------------------------------------------- arrays


def _load_npy(path):
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{path}: not a plain numeric .npy array ({_first_line(exc)})") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a valid .npy file ({_first_line(exc)})") from None


def _features_from_array(X, source):
    """A float feature matrix and the image shape (for 3-D arrays) from a raw array."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise DataError(f"{source}: features must be numbers, got dtype {X.dtype}")
    image_shape = None
    if X.ndim == 1:
        X = X[:, None]
    elif X.ndim >= 3:
        image_shape = X.shape[1:] if X.ndim == 3 else None
        X = X.reshape(X.shape[0], -1)
    if X.dtype.kind in "biu" and X.dtype.itemsize <= 2:
        X = X.astype(np.float32)  # pixels: MNIST in float64 would be 376 MB for nothing
    elif X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    _check_finite(X, source)
    return X, image_shape


def _read_npz(path):
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.keys())
            x_key = next((k for k in ("X", "x") if k in keys), None)
            y_key = next((k for k in ("y", "Y") if k in keys), None)
            if x_key is None:
                raise DataError(
                    f"{path}: expected arrays named X and y, found {_show(keys) or 'none'}"
                )
            return archive[x_key], (archive[y_key] if y_key else None)
    except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: not a valid .npz archive ({_first_line(exc)})") from None


def read_labels(path):
    """Labels from a file: ``.npy``, IDX, ``.txt`` (one per line) or a one-column table."""
    _check_file(path)
    fmt = format_of(path)
    if fmt == "npy":
        y = _load_npy(path)
    elif fmt == "npz":
        _, y = _read_npz(path)
        if y is None:
            raise DataError(f"{path}: no array named y")
    elif fmt == "idx":
        y = read_idx(path)
    elif fmt == "txt":
        with open(path, encoding="utf-8-sig") as fh:  # Windows editors write a BOM
            y = np.array([line.strip() for line in fh if line.strip()], dtype=str)
        if y.size and all(_CANONICAL_INT.fullmatch(v) for v in y):
            y = y.astype(np.int64)  # "7" is 7; "007" stays text
        if y.size == 0:
            raise DataError(f"{path}: no labels")
        return y
    else:
        from .tables import label_values, read_frame

        frame = read_frame(path, fmt, pick_text=lambda columns: columns)
        if frame.shape[1] != 1:
            raise DataError(
                f"{path}: a labels table must have exactly one column, found {frame.shape[1]}"
            )
        return label_values(frame.iloc[:, 0], path)
    if np.asarray(y).size == 0:
        raise DataError(f"{path}: no labels")
    return _clean_labels(y, path)


# ---------------------------------------------------------------------------------- entry


def read_data(path, *, labels=None, target=None, need_labels=True, features=None,
              n_features=None, **table_options):
    """Read a data file (and optionally a separate labels file) into a :class:`Dataset`.

    Parameters
    ----------
    path : str
        The data file; its format comes from its extension (see the module docstring).
    labels : str, optional
        A separate labels file (required for ``.npy`` and IDX data when labels are needed).
    target : str, optional
        The label column of a table; default the one named like a label, else the last.
    need_labels : bool
        Raise :class:`DataError` when no labels can be found.  When False (prediction),
        a table's label column is dropped only if ``target`` names it, or ``features``
        does not list it, or the table has exactly ``n_features + 1`` columns.
    features : list of str, optional
        The feature columns a model was trained on (tables only).
    n_features : int, optional
        The number of features a model expects.
    **table_options
        For tables: ``kinds``, ``label_hint``, ``ids``, ``drop``, ``sep``, ``decimal`` (see
        :func:`relunet.tables.read_table`); refused for arrays.

    Returns
    -------
    Dataset
    """
    path = os.fspath(path)
    fmt = format_of(path)
    _check_file(path)
    if labels is not None and target is not None:
        raise DataError("give the labels either as a file (--labels) or a column (--target)")
    if fmt in ("csv", "tsv", "parquet"):
        from .tables import read_table

        ds = read_table(path, fmt, labels=labels, target=target, need_labels=need_labels,
                        features=features, n_features=n_features, **table_options)
        X, y, names, image_shape = ds.X, ds.y, ds.feature_names, None
    else:
        ds = None
        flags = [{"ids": "--id"}.get(k, "--" + k) for k in ("sep", "decimal", "ids", "drop")
                 if table_options.get(k)]
        if flags:
            raise DataError(f"{path}: {', '.join(flags)} "
                            f"{'applies' if len(flags) == 1 else 'apply'} to tables "
                            f"(CSV/TSV/Parquet); this is a {fmt} file")
        if target is not None:
            raise DataError(f"{path}: --target names a column of a table; this is a {fmt} file")
        if fmt == "npy":
            raw, y = _load_npy(path), None
        elif fmt == "npz":
            raw, y = _read_npz(path)
        elif fmt == "idx":
            raw, y = read_idx(path), None
        else:
            raise DataError(f"{path}: a .txt file can hold labels (--labels), not features")
        X, image_shape = _features_from_array(raw, path)
        if y is not None:
            y = _clean_labels(y, f"{path} (array y)")
        names = None
    if labels is not None:
        y = read_labels(labels)
    if y is None and need_labels:
        raise DataError(
            f"{path}: no labels; give them with --labels FILE"
            + (" (or put an array y in the .npz)" if fmt == "npz" else "")
        )
    if y is not None and y.shape[0] != X.shape[0]:
        where = labels if labels is not None else path
        raise DataError(
            f"{where}: {y.shape[0]} labels for {X.shape[0]} rows of {path}; they must match"
        )
    source = None if labels is None else str(labels)
    if ds is not None:
        ds.y, ds.labels_source = y, source
        if not ds.categorical:  # a Kaggle-style image CSV: pixel columns
            ds.image_shape = _square(ds.X.shape[1])
        return ds
    if image_shape is None:
        image_shape = _square(X.shape[1])
    ds = Dataset(X, y, names, path, image_shape)
    ds.labels_source = source
    return ds


def split_rows(ds, fraction, seed):
    """Hold out a stratified ``fraction`` of a Dataset's rows (at random when a class is too
    small to stratify).

    Returns
    -------
    (X_train, X_test, y_train, y_test, stratified)

    Raises
    ------
    DataError
        Too few rows to hold out ``fraction``.
    """
    import math

    from sklearn.model_selection import train_test_split

    n = ds.X.shape[0]
    n_test = math.ceil(fraction * n)
    if n_test < 1 or n - n_test < 2:
        raise DataError(f"{n} rows are too few to hold out --test-fraction {fraction}")
    try:
        return (*train_test_split(ds.X, ds.y, test_size=fraction, stratify=ds.y,
                                  random_state=seed), True)
    except ValueError:  # a class with a single row, or fewer test rows than classes
        return (*train_test_split(ds.X, ds.y, test_size=fraction, random_state=seed), False)


def _square(d):
    side = int(round(np.sqrt(d)))
    return (side, side) if side * side == d and side >= 4 else None


def builtin(name, *, seed=0):
    """A built-in data set (``"digits"`` or ``"spiral"``) as a :class:`Dataset`."""
    from .datasets import DATASETS, load_dataset

    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    X, y = load_dataset(name, rng=seed)
    shape = (8, 8) if name == "digits" else None
    return Dataset(np.asarray(X, dtype=np.float64), np.asarray(y), None,
                   f"{name} (built-in)", shape)
