"""Data files for the command line: one reader per format, chosen by the file's extension.

========================  ==========================================================  ========
Extension                 Layout                                                      Needs
========================  ==========================================================  ========
``.csv`` ``.tsv``         header row; the label column is ``--target`` (default the   pandas
(also ``.gz``)            last column); every other column is a numeric feature
``.parquet`` ``.pq``      the same, as a Parquet table                                pyarrow
``.npy``                  a 2-D float array of features (3-D: images, flattened);     numpy
                          labels from ``--labels``
``.npz``                  arrays named ``X`` (features) and ``y`` (labels)            numpy
``.idx`` ``*-idx3-ubyte``  MNIST's IDX format, optionally gzip'd; images are          numpy
(also ``.gz``)            flattened to rows; labels from an IDX file via ``--labels``
========================  ==========================================================  ========

A ``--labels`` file may be ``.npy``, IDX, ``.txt`` (one label per line) or a one-column
CSV/TSV/Parquet table.  Every reader returns a :class:`Dataset` (float features, labels
as they were: integers or strings) or raises :class:`DataError`, whose message names the
file and is meant for the user as it is.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib
import os
import re
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass

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
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list | None
    source: str
    image_shape: tuple | None = None

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
_IDX_NAME = re.compile(r"[.-]idx\d-u?byte$")  # MNIST's "train-images-idx3-ubyte"

FORMATS = (
    ("CSV / TSV", ".csv .tsv (.gz)", "header row; label column --target (default: last)"),
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
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix,
                               dir=directory)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is not None or not exc.errno:
            raise
        # a write into the temporary file (a full disk...): name the file being written
        raise type(exc)(exc.errno, exc.strerror, path) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_open(path, mode="w"):
    """Open a temporary file for writing that becomes ``path`` only when the block succeeds."""
    with atomic_path(path) as tmp:
        text = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with open(tmp, mode, **text) as fh:
            yield fh


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


# ---------------------------------------------------------------------------------- tables


def _read_frame(path, fmt):
    """A pandas DataFrame from a CSV/TSV/Parquet file, with user-facing errors."""
    if fmt == "parquet":
        require("pandas", "parquet", "reading Parquet files")
        require("pyarrow", "parquet", "reading Parquet files")
    else:
        require("pandas", "cli", f"reading {fmt.upper()} files")
    import pandas as pd

    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep="\t" if fmt == "tsv" else ",")
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot parse as {fmt.upper()}: {_first_line(exc)}") from None
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DataError(f"{path}: cannot read as {fmt.upper()}: {_first_line(exc)}") from None
    except Exception as exc:  # pyarrow's ArrowInvalid and friends
        if type(exc).__module__.startswith("pyarrow"):
            raise DataError(f"{path}: not a valid Parquet file: {_first_line(exc)}") from None
        raise
    if frame.shape[1] == 0:
        raise DataError(f"{path}: the file has no columns")
    if frame.shape[0] == 0:
        raise DataError(f"{path}: the file has a header but no data rows")
    return frame


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _numeric_features(frame, columns, path):
    """The columns as a float64 matrix, or a DataError naming the first non-numeric one."""
    import pandas as pd

    for col in columns:
        series = frame[col]
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            continue
        coerced = pd.to_numeric(series, errors="coerce")
        bad = series[coerced.isna() & series.notna()]
        example = f" (e.g. {bad.iloc[0]!r} in data row {bad.index[0] + 1})" if len(bad) else ""
        raise DataError(
            f"{path}: feature column {col!r} is not numeric{example}; only the label column "
            f"(--target) may hold text"
        )
    return frame[list(columns)].to_numpy(dtype=np.float64)


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


def _read_table(path, fmt, *, labels, target, need_labels, features, n_features):
    frame = _read_frame(path, fmt)
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    label_col = None
    if target is not None:
        if target not in columns:
            raise DataError(
                f"{path}: no column named {target!r}; columns are {_show(columns)}"
            )
        label_col = target
    elif labels is None:
        others = columns if features is None else [c for c in columns if c not in features]
        if need_labels:
            label_col = others[-1] if others else None
        elif features is None and n_features is not None and len(columns) == n_features + 1:
            label_col = columns[-1]  # the model's features plus a label column
    if features is not None:
        missing = [c for c in features if c not in columns]
        if missing:
            raise DataError(f"{path}: missing feature column(s) {_show(missing)}")
        feature_cols = list(features)
    else:
        feature_cols = [c for c in columns if c != label_col]
    if not feature_cols:
        raise DataError(f"{path}: no feature columns (only the label column {label_col!r})")
    X = _numeric_features(frame, feature_cols, path)
    _check_finite(X, path, feature_cols)
    y = None
    if label_col is not None:
        y = frame[label_col].to_numpy()
        y = _clean_labels(y, f"{path} (column {label_col!r})")
    return X, y, feature_cols


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
        with open(path, encoding="utf-8") as fh:
            y = np.array([line.strip() for line in fh if line.strip()])
        if y.size and all(re.fullmatch(r"[-+]?\d+", v) for v in y):
            y = y.astype(np.int64)
    else:
        frame = _read_frame(path, fmt)
        if frame.shape[1] != 1:
            raise DataError(
                f"{path}: a labels table must have exactly one column, found {frame.shape[1]}"
            )
        y = frame.iloc[:, 0].to_numpy()
    if np.asarray(y).size == 0:
        raise DataError(f"{path}: no labels")
    return _clean_labels(y, path)


# ---------------------------------------------------------------------------------- entry


def read_data(path, *, labels=None, target=None, need_labels=True, features=None,
              n_features=None):
    """Read a data file (and optionally a separate labels file) into a :class:`Dataset`.

    Parameters
    ----------
    path : str
        The data file; its format comes from its extension (see the module docstring).
    labels : str, optional
        A separate labels file (required for ``.npy`` and IDX data when labels are needed).
    target : str, optional
        The label column of a table; default its last column.
    need_labels : bool
        Raise :class:`DataError` when no labels can be found.  When False (prediction),
        a table's label column is dropped only if ``target`` names it, or ``features``
        does not list it, or the table has exactly ``n_features + 1`` columns.
    features : list of str, optional
        The feature columns a model was trained on (tables only).
    n_features : int, optional
        The number of features a model expects.

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
        X, y, names = _read_table(
            path, fmt, labels=labels, target=target, need_labels=need_labels,
            features=features, n_features=n_features,
        )
        image_shape = None
    else:
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
    if image_shape is None:
        image_shape = _square(X.shape[1])
    return Dataset(X, y, names, path, image_shape)


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
