"""Checks on tables that guard against silent wrong answers (used by :mod:`relunet.tables`).

Each function raises :class:`relunet.data.DataError` with one sentence naming the file, the
column, the 1-based data row and the value as written, or returns notes for the user:

* :func:`file_kind` -- a file named ``.csv`` that is really gzip, Parquet, a zip (xlsx) or
  UTF-16 (its magic bytes);
* :func:`check_names` -- duplicate column names (pandas would rename the second ``x`` to
  ``x.1`` and use it as a feature) and two columns named like a label;
* :func:`check_quotes` -- a stray quote that swallowed rows into one field;
* :func:`check_nested` -- Parquet list/struct columns;
* :func:`check_onehot_width` -- more one-hot columns than memory should hold;
* :func:`check_prepared` -- prepared inputs that overflow the network's dtype;
* :func:`check_outputs` -- output paths that would overwrite an input or each other.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

from .data import DataError, class_column

__all__ = ["file_kind", "check_names", "check_quotes", "check_nested", "check_onehot_width",
           "check_prepared", "check_outputs", "MAX_ONEHOT"]

# The most one-hot columns a table may produce: the encoder writes a dense float64 column per
# category, so 10 000 categories on 100 000 rows are already 8 GB.
MAX_ONEHOT = 10_000

_MAGIC = ((b"\x1f\x8b", "gzip-compressed data (name it .csv.gz)"),
          (b"PAR1", "a Parquet file (name it .parquet)"),
          (b"PK\x03\x04", "a zip archive (an Excel .xlsx? save it as CSV)"),
          (b"\xff\xfe", "UTF-16 text (save it as UTF-8)"),
          (b"\xfe\xff", "UTF-16 text (save it as UTF-8)"))


def file_kind(path, fmt):
    """Raise DataError when a CSV/TSV file's first bytes say it is something else."""
    if str(path).lower().endswith(".gz"):
        return
    with open(path, "rb") as fh:
        head = fh.read(4)
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise DataError(f"{path}: named .{fmt} but holds {what}")


def _names(items, limit=8):
    shown = ", ".join(repr(n) for n in items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def check_names(path, raw_names, *, label_names, target=None, labels=None, hint=None,
                features=None, ids=(), drop=(), need_labels=True):
    """Refuse duplicate column names and an ambiguous label column.

    Parameters
    ----------
    raw_names : list of str
        The header as written (before pandas renames duplicates to ``x.1``).
    label_names : tuple of str
        Names that mark a label column (any case).

    Raises
    ------
    DataError
        Two columns with the same name; two columns named like a label with neither
        ``target`` nor the model's label column to choose; a label-named column in a table
        whose labels come from ``--labels`` (it would become a feature).
    """
    names = [str(n).strip() for n in raw_names]
    seen, dups = set(), []
    for n in names:
        if n and n in seen and n not in dups:
            dups.append(n)
        seen.add(n)
    if dups:
        raise DataError(f"{path}: duplicate column name(s) {_names(dups)}; every column needs "
                        "its own name: rename them")
    named = [n for n in names if n.lower() in label_names]
    if labels is not None:
        stray = [n for n in named if n not in (features or ()) and n not in ids
                 and n not in drop]
        if stray:
            raise DataError(
                f"{path}: the labels come from --labels {labels}, but the table has a column "
                f"named like a label ({_names(stray)}); leave it out with --drop "
                f"{stray[0]}, or use it with --target {stray[0]} instead of --labels")
        return
    if target is not None or (hint is not None and hint in names) or not need_labels:
        return
    if len(named) > 1:
        raise DataError(f"{path}: {len(named)} columns are named like a label ({_names(named)});"
                        f" choose one with --target COLUMN (or rename the others)")


def _open_text(path, encoding):
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    if gz:
        return gzip.open(path, "rt", encoding=encoding, errors="replace", newline="")
    return open(path, encoding=encoding, errors="replace", newline="")  # noqa: SIM115


def _count_lines(path):
    """Lines of a (possibly gzipped) text file, counted in blocks (blank ones included)."""
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    n, last = 0, b"\n"
    with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
        while block := fh.read(1 << 20):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def check_quotes(path, n_rows, *, sep, encoding, header=True):
    """Refuse a stray quote that made the parser swallow lines into one field.

    Cheap test first: a table with fewer parsed rows than data lines has quoted fields
    spanning lines (or blank lines).  Then the first quoted field that holds both a line break and
    the separator (a field that ran on over whole rows) is reported with its 1-based data row.
    """
    import csv

    lines = _count_lines(path) - (1 if header else 0)
    if n_rows >= lines:
        return
    with _open_text(path, encoding) as fh:
        reader = csv.reader(fh, delimiter=sep)
        row, start = 0, 0
        for i, record in enumerate(reader):
            if i == 0 and header:
                start = reader.line_num
                continue
            if record:
                row += 1
            for field in record:
                if "\n" in field and sep in field:
                    spans = field.count("\n") + 1
                    raise DataError(
                        f"{path}: a quoted field starting in data row {row} (line {start + 1}) "
                        f"runs over {spans} lines and holds separators: a stray quote (\") "
                        f"swallowed rows ({n_rows} rows read from {lines} data lines); fix or "
                        "remove the quote")
            start = reader.line_num


def check_nested(path, frame):
    """Refuse Parquet columns of lists, structs or maps (not one value per cell)."""
    for col in frame.columns:
        s = frame[col]
        if s.dtype != object:
            continue
        present = s[s.notna()]
        if len(present) and isinstance(present.iloc[0], list | tuple | dict | np.ndarray):
            raise DataError(f"{path}: column {str(col)!r} holds {type(present.iloc[0]).__name__}"
                            " values (a list/struct column), not one value per cell; leave it "
                            f"out with --drop {col}")


def check_onehot_width(ds, min_frequency=5, limit=MAX_ONEHOT):
    """Refuse a table whose text columns would one-hot encode into more than ``limit`` columns.

    Counts what ``OneHotEncoder(min_frequency=min_frequency)`` would make: one column per
    category seen at least ``min_frequency`` times, plus one "infrequent" column when any is
    rarer.  Raises DataError naming the widest column and the fixes.
    """
    import pandas as pd

    widths = {}
    for col in getattr(ds, "categorical", None) or []:
        counts = pd.Series(ds.X[col]).value_counts(dropna=False)
        if min_frequency is None:
            frequent, rare = len(counts), 0
        else:
            m = min_frequency if min_frequency >= 1 else min_frequency * len(ds.X)
            frequent = int((counts >= m).sum())
            rare = int((counts < m).any())
        widths[col] = frequent + rare
    total = sum(widths.values())
    if total > limit:
        widest = max(widths, key=widths.get)
        raise DataError(
            f"{ds.source}: the text columns would one-hot encode into {total} columns (more "
            f"than {limit}); column {widest!r} alone has {widths[widest]} categories: raise "
            f"--min-frequency or leave the column out with --drop {widest}")


def check_prepared(model, X, ds=None):
    """Raise DataError when the prepared input of ``model`` overflows the network's dtype.

    ``model`` is a Pipeline (preparation then network) or a bare network; ``X`` its input.
    Names the input column (from the output column's name) and the 1-based data row.
    """
    steps = getattr(model, "steps", None)
    net = steps[-1][1] if steps else model
    dtype = np.dtype(getattr(net, "dtype", np.float64) or np.float64)
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
    with np.errstate(all="ignore"):
        Z = model[:-1].transform(X) if steps and len(steps) > 1 else X
        Z = np.asarray(Z, dtype=np.float64) if not hasattr(Z, "toarray") else Z.toarray()
        bad = ~(np.abs(Z) <= np.finfo(dtype).max)  # inf, too large, or NaN (overflowed)
        if not steps:
            bad &= ~np.isnan(Z)
    if not bad.any():
        return
    i, j = (int(k) for k in np.argwhere(bad)[0])
    column = None
    try:
        out = [str(n) for n in model[:-1].get_feature_names_out()] if steps else None
        column = out[j] if out else None
    except Exception:  # a preparation without names: say the position
        column = None
    names = [str(c) for c in getattr(X, "columns", [])]
    if column is not None:
        column = column.split("__", 1)[-1]
        for name in names:
            if column == name or column.endswith("_" + name):
                column = name
                break
    elif names:
        column = names[j] if j < len(names) else None
    rows = getattr(ds, "rows", None)
    row = int(rows[i]) + 1 if rows is not None and i < len(rows) else i + 1
    value = ""
    if names and column in names:
        v = X[column].iloc[i]
        value = f" (value {(v.item() if isinstance(v, np.generic) else v)!r})"
    where = f"column {column!r}" if column is not None else f"input column {j + 1}"
    source = getattr(ds, "source", None) or "the data"
    raise DataError(f"{source}: {where} in data row {row}{value} is too large for the model: "
                    f"prepared, it overflows {dtype.name} (largest {np.finfo(dtype).max:.3g})")


def check_id_columns(ids, classes, *, proba):
    """Refuse a predictions header that would name a column twice: an ``--id`` column named
    like a column predict writes, an ``--id`` given twice, or two classes whose probability
    columns share a name.  ``ids``: column names; ``proba``: whether the class columns are
    written (at training: True, since any later ``predict --proba`` would clash)."""
    ids = [str(c) for c in ids]
    twice = [c for k, c in enumerate(ids) if c in ids[:k]]
    if twice:
        raise DataError(f"--id column {twice[0]!r} is given twice; give it once")
    by_name = {}
    for c in classes if proba else ():
        by_name.setdefault(class_column(c), []).append(str(c))
    shared = [(name, owners) for name, owners in by_name.items() if len(owners) > 1]
    if shared:
        name, owners = shared[0]
        raise DataError(f"classes {owners[0]!r} and {owners[1]!r} would both be named {name!r} "
                        "in the probability columns of predict --proba; rename one of them "
                        "in the data")
    for c in ids:
        if c == "prediction":
            what = "its predicted labels"
        elif c in by_name:
            what = f"the probabilities of class {by_name[c][0]!r}, written by predict --proba"
        else:
            continue
        raise DataError(f"--id column {c!r} has the name of an output column of predict "
                        f"({what}); rename it in the data")


def check_outputs(inputs, outputs):
    """Refuse output paths equal to an input or to each other (before any work).

    Parameters
    ----------
    inputs, outputs : dict of {flag: path or None}
    """
    def same(a, b):
        if os.path.realpath(a) == os.path.realpath(b):
            return True
        try:
            return os.path.samefile(a, b)
        except OSError:
            return False

    outs = [(f, p) for f, p in outputs.items() if p is not None]
    for k, (flag, path) in enumerate(outs):
        for what, src in inputs.items():
            if src is not None and same(path, src):
                raise DataError(f"{flag} {path} is the {what} file: it would be overwritten; "
                                "write to another file")
        for flag2, path2 in outs[k + 1:]:
            if same(path, path2):
                raise DataError(f"{flag} and {flag2} are the same file ({path}); give "
                                "different files")
