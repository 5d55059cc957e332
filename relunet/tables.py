"""Tables (CSV, TSV, Parquet): reading them as people write them, and preparing their columns.

Reading (:func:`read_table`)
    * the separator (``,`` ``;`` tab ``|``) and the decimal mark are sniffed from the first
      lines unless given (``.tsv`` means tab); a UTF-8 byte-order mark is ignored and a file
      that is not UTF-8 is read as Windows-1252;
    * the label column is ``target`` when given, else the one column named ``label``,
      ``target``, ``class`` or ``y`` (any case), else the last column; a guessed label that
      looks continuous is refused (:func:`check_guessed_label`).  Labels are read as text as
      written: ``007``, ``01`` and ``True`` stay distinct; labels that are all plain integers
      (``str(int(s)) == s``) become integers so that they sort numerically;
    * identifier columns never become features (:func:`identifier_columns`): a column without
      a header name (pandas' ``Unnamed: 0``, R's ``""``), R-style row names, an integer column
      holding ``0..n-1`` or ``1..n`` (in any order), a text column with a different value in
      every row;
    * a feature column is *numeric* (numbers, booleans, Parquet DECIMAL; blanks and ``NA`` are
      missing) or *categorical* (text).  A column of numbers with a few stray words is an
      error naming the first word and its row, never silently a category.

Preparing (:func:`make_model`)
    The features of a table go through scikit-learn's ``ColumnTransformer``: numeric columns
    are imputed (``SimpleImputer``, median by default, with a missing-indicator column) and
    scaled; categorical columns are one-hot encoded (``OneHotEncoder``; categories unseen in
    training are ignored, rare ones grouped as "infrequent").  Everything is fitted on the
    training rows only, as the first step of the model's Pipeline, and saved with it
    (:mod:`relunet.prepio`).

Every problem is a :class:`relunet.data.DataError` naming the file, the column, the 1-based
data row counted by position and the value as the file has it.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import re
import zlib

import numpy as np

from . import tablechecks as checks
from .data import DataError, Dataset, require

__all__ = [
    "LABEL_NAMES",
    "read_table",
    "read_frame",
    "sniff",
    "choose_label",
    "label_values",
    "check_guessed_label",
    "check_label_choice",
    "identifier_columns",
    "looks_like_id_name",
    "make_model",
    "build_preparation",
    "table_columns",
    "quote",
]

LABEL_NAMES = ("label", "target", "class", "y")
SEPARATORS = (",", ";", "\t", "|")
IMPUTE_CHOICES = ("median", "mean", "drop-rows", "none")
_SEP_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
_CANONICAL_INT = re.compile(r"0|-?[1-9][0-9]*")
_INTEGRAL = re.compile(r"(0|-?[1-9][0-9]*)(\.0*)?")  # 7 or 7.0 (pandas writes float labels so)
_COMMA_DECIMAL = re.compile(r"[-+]?[0-9]*,[0-9]+([eE][-+]?[0-9]+)?")
_DOT_DECIMAL = re.compile(r"[-+]?[0-9]*\.[0-9]+([eE][-+]?[0-9]+)?")
_DOT_THOUSANDS = re.compile(r"[-+]?[0-9]{1,3}(\.[0-9]{3})+(,[0-9]+)?")  # German 1.018,73
_NUMBERLIKE = re.compile(r"[-+]?[0-9][0-9.,' ]*([eE][-+]?[0-9]+)?%?")
_UNNAMED = re.compile(r"Unnamed: \d+(_level_\d+)?")


def quote(value):
    """``repr`` of a value as the file had it: NumPy scalars unwrapped, no ``np.str_(...)``."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def _count(n, one, many=None):
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _rows(n):
    return _count(n, "row")


def _show(names, limit=8):
    shown = ", ".join(quote(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


# ---------------------------------------------------------------------------------- sniffing


def _head_bytes(path, limit=1 << 16):
    with open(path, "rb") as fh:
        raw = fh.read(limit)
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                raw = fh.read(limit)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    return raw


def _encoding(raw):
    """'utf-8-sig' when the sample decodes as UTF-8 (BOM or not), else 'cp1252'."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(raw, final=False)
        return "utf-8-sig"
    except UnicodeDecodeError:
        return "cp1252"


def _split_lines(text, sep, n=30):
    lines = [line for line in text.splitlines() if line.strip()][:n]
    if len(lines) > 2 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # the sample may end mid-line
    return list(csv.reader(lines, delimiter=sep))


def sniff(path, fmt, *, sep=None, decimal=None):
    """The separator, decimal mark and encoding of a text table, from its first 64 KiB.

    Parameters
    ----------
    path : str
    fmt : {"csv", "tsv"}
        ``"tsv"`` settles the separator (tab) unless ``sep`` is given.
    sep, decimal : str, optional
        Given by the user (``--sep``, ``--decimal``); they win over the sniffed ones.

    Returns
    -------
    dict with ``sep``, ``decimal``, ``encoding`` ('utf-8-sig' or 'cp1252'), ``trailing``
    (True when every data line ends with an extra separator), ``looks_like`` (the separator
    the sample suggests, or None) and ``notes`` (sentences for the user).

    The separator is the candidate among ``,`` ``;`` tab ``|`` that splits the header and the
    first data lines into the same number (at least two) of fields, the most fields winning
    and ``;`` tab ``|`` winning ties over ``,`` (``1,5;2,0`` is two decimal-comma numbers).
    The decimal mark is ``,`` when the separator is not ``,`` and the sample has numbers like
    ``1,5`` or ``1.018,73`` but none like ``1.5`` (``1.018`` could be a thousands mark);
    with a decimal comma, ``.`` is read as a thousands mark.
    """
    raw = _head_bytes(path)
    encoding = _encoding(raw)
    text = raw.decode(encoding, errors="replace")
    notes = []
    if encoding == "cp1252":
        notes.append(f"{path}: not UTF-8; read as Windows-1252 (Excel's encoding)")
    best, best_fields = None, 1
    for cand in (";", "\t", "|", ","):
        rows = _split_lines(text, cand)
        if len(rows) < 1:
            continue
        counts = {len(r) for r in rows[1:]} or {len(rows[0])}
        header = len(rows[0])
        if len(counts) != 1:
            continue
        fields = counts.pop()
        if fields < 2 or header not in (fields, fields - 1):
            continue
        if fields > best_fields:
            best, best_fields = cand, fields
    looks_like = best
    if sep is None:
        sep = "\t" if fmt == "tsv" else (best or ",")
    rows = _split_lines(text, sep)
    trailing = (len(rows) > 1 and len(rows[0]) == len(rows[1]) - 1
                and all(len(r) == len(rows[1]) and r[-1] == "" for r in rows[1:]))
    if decimal is None:
        decimal = "."
        if sep != ",":
            cells = [c.strip() for r in rows[1:] for c in r]
            thousands = [c for c in cells if _DOT_THOUSANDS.fullmatch(c)]
            if ((any(_COMMA_DECIMAL.fullmatch(c) for c in cells)
                 or any("," in c for c in thousands))
                    and not any(_DOT_DECIMAL.fullmatch(c) and not _DOT_THOUSANDS.fullmatch(c)
                                for c in cells)):
                decimal = ","  # then '.' is a thousands mark: 1.018,73
    return {"sep": sep, "decimal": decimal, "encoding": encoding, "trailing": trailing,
            "looks_like": looks_like, "notes": notes}


# ---------------------------------------------------------------------------------- reading


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def read_frame(path, fmt, *, sep=None, decimal=None, text_columns=None, pick_text=None,
               notes=None, check_header=None):
    """A table as a pandas DataFrame with positional rows, with user-facing errors.

    Parameters
    ----------
    path : str
    fmt : {"csv", "tsv", "parquet"}
    sep, decimal : str, optional
        CSV separator and decimal mark (default: sniffed, see :func:`sniff`).
    text_columns : iterable of str, optional
        Columns read as text exactly as written (no number inference).
    pick_text : callable, optional
        ``pick_text(columns) -> iterable of str``: more text columns, chosen from the header.
    notes : list, optional
        Receives sentences for the user (row names dropped, encoding, ...).
    check_header : callable, optional
        ``check_header(names)``: called with the header as written (duplicates not renamed).

    Returns
    -------
    DataFrame with string column names and a RangeIndex (row i is data row i + 1).
    """
    notes = [] if notes is None else notes
    if fmt == "parquet":
        require("pandas", "parquet", "reading Parquet files")
        require("pyarrow", "parquet", "reading Parquet files")
    else:
        require("pandas", "cli", f"reading {fmt.upper()} files")
    import pandas as pd

    dialect = None
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
            checks.check_nested(path, frame)
            if check_header is not None:
                check_header([str(c) for c in frame.columns])
        else:
            checks.file_kind(path, fmt)
            dialect = sniff(path, fmt, sep=sep, decimal=decimal)
            notes.extend(dialect["notes"])
            options = {"sep": dialect["sep"], "decimal": dialect["decimal"],
                       "encoding": dialect["encoding"]}
            if dialect["decimal"] == ",":  # 1.018,73 (',' as thousands mark is never assumed)
                options["thousands"] = "."
            if dialect["trailing"]:
                options["index_col"] = False
            header = _read_csv(pd, path, options, notes, nrows=0)
            columns = [str(c) for c in header.columns]
            if check_header is not None:  # the names as written, before pandas' renaming
                check_header(list(_read_csv(pd, path, options, [], header=None, nrows=1,
                                            dtype=str).iloc[0].fillna("")))
            text = set(text_columns or ())
            if pick_text is not None:
                text |= set(pick_text(columns))
            dtype = {c: str for c in header.columns if str(c) in text}
            frame = _read_csv(pd, path, options, notes, dtype=dtype or None)
            checks.check_quotes(path, len(frame), sep=options["sep"],
                                encoding=options["encoding"])
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, zlib.error) as exc:
        m = re.search(r"EOF inside string starting at row (\d+)", str(exc))
        if m:  # pandas counts from 0 with the header: row n is data row n
            raise DataError(f"{path}: a quoted field starting in data row {m.group(1)} never "
                            "ends: a stray quote (\")? fix or remove it") from None
        raise DataError(f"{path}: cannot parse as {fmt.upper()}: {_first_line(exc)}") from None
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DataError(f"{path}: cannot read as {fmt.upper()}: {_first_line(exc)}") from None
    except Exception as exc:  # pyarrow's ArrowInvalid and friends
        dup = re.search(r"Multiple matches for FieldRef.Name\((.*?)\)", str(exc))
        if dup:
            raise DataError(f"{path}: duplicate column name(s) {dup.group(1)!r}; every column "
                            "needs its own name: rename them") from None
        if type(exc).__module__.startswith("pyarrow"):
            raise DataError(f"{path}: not a valid Parquet file: {_first_line(exc)}") from None
        raise
    if frame.shape[1] == 0:
        raise DataError(f"{path}: the file has no columns")
    if frame.shape[0] == 0:
        raise DataError(f"{path}: the file has a header but no data rows")
    if dialect is not None and frame.shape[1] == 1:
        looks = dialect["looks_like"]
        if looks is None:  # no consistent split: the separator most used in the header
            header = str(frame.columns[0])
            counts = {c: header.count(c) for c in SEPARATORS if c != dialect["sep"]}
            best = max(counts, key=counts.get)
            looks = best if counts[best] else None
        if looks is not None and looks != dialect["sep"]:
            raise DataError(
                f"{path}: read as one column with separator {_sep_name(dialect['sep'])}, but "
                f"it looks {_sep_name(looks)}-separated: try --sep "
                + ("tab" if looks == "\t" else f"'{looks}'")
            )
    index_columns = []
    if (not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0
            or any(n is not None for n in frame.index.names)):
        names = [str(n) for n in frame.index.names if n is not None]
        if (fmt == "parquet" and len(names) == frame.index.nlevels
                and not set(names) & {str(c) for c in frame.columns}):
            # a named index (penguin_id): a column for --id/--drop/--target, else left out
            frame, index_columns = frame.reset_index(), names
        elif fmt == "parquet":
            notes.append(f"{path}: the file's index ({_show([str(n) for n in frame.index.names])})"
                         " is not used as a feature")
        else:
            notes.append(f"{path}: the first column has no header name: read as row names and "
                         "not used as a feature")
        frame = frame.reset_index(drop=True)
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    frame.attrs["decimal"] = dialect["decimal"] if dialect else "."
    frame.attrs["index_columns"] = index_columns
    return frame


def _sep_name(sep):
    return _SEP_NAMES.get(sep, repr(sep))


def _read_csv(pd, path, options, notes, **more):
    """``pd.read_csv`` with spaces after separators skipped (``a, b``) and, when a byte past
    the sniffed sample is not UTF-8, the whole file read again as Windows-1252."""
    if isinstance(more.get("dtype"), dict):  # keys as stripped below: map to names as written
        raw = [str(c) for c in pd.read_csv(path, nrows=0, skipinitialspace=True,
                                           **options).columns]
        by_name = {n.strip(): n for n in raw}
        more["dtype"] = {by_name.get(str(k), k): v for k, v in more["dtype"].items()}
    try:
        frame = pd.read_csv(path, skipinitialspace=True, **options, **more)
    except UnicodeDecodeError:
        if options.get("encoding") != "utf-8-sig":
            raise
        options["encoding"] = "cp1252"
        notes.append(f"{path}: not UTF-8 (past its first 64 KiB); read as Windows-1252 "
                     "(Excel's encoding)")
        frame = pd.read_csv(path, skipinitialspace=True, **options, **more)
    if more.get("nrows") is None and more.get("header", 0) is not None \
            and options["sep"] != " ":  # the main read: say when spaces were skipped
        sample = _head_bytes(path).decode(options["encoding"], errors="replace")
        if any(f[:1] == " " and f.strip() for r in _split_lines(sample, options["sep"])
               for f in r[1:]):
            notes.append(f"{path}: spaces after the separator skipped ('a, b' is 'a,b')")
    if more.get("header", 0) is not None:
        names = [str(c) for c in frame.columns]
        stripped = [n.strip() for n in names]
        if stripped != names:
            notes.append(f"{path}: spaces around column names stripped")
            frame.columns = stripped
    return frame


# ---------------------------------------------------------------------------------- labels


def choose_label(columns, *, target=None, hint=None, path="", exclude=()):
    """The label column and how it was chosen.

    ``target`` (``--target``) wins; then ``hint`` (the label column a model was trained
    with), which must then be in the file; then the one column named like a label
    (:data:`LABEL_NAMES`, any case); else the last column.  A column in ``exclude`` (a
    model's feature columns) is never the label.

    Returns
    -------
    (name, how) : how is "--target", "model", "named" or "last"

    Raises
    ------
    DataError
        ``target`` is not a column or is in ``exclude``; ``hint`` is given and not a column;
        no column is left to be the label.
    """
    exclude = set(exclude or ())
    if target is not None:
        if target not in columns:
            raise DataError(f"{path}: no column named {target!r}; columns are {_show(columns)}")
        if target in exclude:
            raise DataError(f"{path}: --target {target!r} is one of the model's feature "
                            "columns, so it cannot be the label")
        return target, "--target"
    if hint is not None:
        if hint in columns:
            return hint, "model"
        raise DataError(f"{path}: no label column {hint!r} (the model was trained with "
                        f"{hint!r} as the label); columns are {_show(columns)}; give "
                        "--target COLUMN to use another column, or --labels FILE")
    rest = [c for c in columns if c not in exclude]
    named = [c for c in rest if c.strip().lower() in LABEL_NAMES]
    if len(named) == 1:
        return named[0], "named"
    if not rest:
        raise DataError(f"{path}: no column left for the label (all are the model's "
                        "features); give --labels FILE")
    return rest[-1], "last"


def label_values(series, source):
    """Labels from a table column: text as written, plain integers as integers.

    Parameters
    ----------
    series : pandas Series
        Read with ``dtype=str`` from a CSV, or as typed from Parquet.
    source : str
        For messages, e.g. ``"d.csv (column 'label')"``.

    Returns
    -------
    ndarray of int64 (every label a canonical integer: ``str(int(s)) == s``) or of str.

    Raises
    ------
    DataError
        A missing label (blank, NA, pandas.NA, NaN), naming its 1-based row.
    """
    import pandas as pd

    missing = np.flatnonzero(series.isna().to_numpy())
    if missing.size:
        raise DataError(f"{source}: label missing in data row {missing[0] + 1}"
                        + (f" ({missing.size} rows in all)" if missing.size > 1 else ""))
    if pd.api.types.is_bool_dtype(series):
        return np.array([str(bool(v)) for v in series], dtype=str)
    if pd.api.types.is_integer_dtype(series):
        return series.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(series):
        values = series.to_numpy(dtype=np.float64)
        if np.all(values == np.round(values)):
            return values.astype(np.int64)
        return values
    texts = np.array([_as_text(v) for v in series], dtype=str)
    if texts.size and all(_CANONICAL_INT.fullmatch(t) for t in texts):
        return texts.astype(np.int64)
    if texts.size and all(_INTEGRAL.fullmatch(t) for t in texts):
        distinct = np.unique(texts)
        numbers = np.array([int(t.split(".")[0]) for t in distinct])
        if len(np.unique(numbers)) == len(distinct):  # "1" and "1.0" would merge: keep text
            return np.array([int(t.split(".")[0]) for t in texts], dtype=np.int64)
    return texts


def _as_text(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v == int(v):
        return str(int(v))
    return str(v)


def check_guessed_label(y, column, how, path):
    """Refuse a guessed label column that looks like a measurement, not classes.

    Continuous means: numbers that are not all integers, or more than ten classes with a
    median of fewer than five rows per class (a measurement such as body mass in grams).
    """
    if how in ("--target", "model"):
        return
    why = None
    values = y[:5000]
    if y.dtype.kind == "f" or (y.dtype.kind in "UO" and all(_is_number(v) for v in values)):
        numbers = np.array([_number(v) for v in values])
        if not np.all(numbers[np.isfinite(numbers)] == np.round(numbers[np.isfinite(numbers)])):
            why = "holds numbers that are not whole: a measurement, not classes"
    if why is None:
        _, counts = np.unique(y, return_counts=True)
        if len(counts) > 10 and np.median(counts) < 5:
            median = float(np.median(counts))
            why = (f"has {len(counts)} distinct values for {len(y)} rows (median "
                   f"{median:g} row{'' if median == 1 else 's'} per class): a measurement or "
                   "an identifier, not classes")
    if why is not None:
        raise DataError(
            f"{path}: the label column {column!r} ({_HOW[how]}) {why}; name the label column "
            f"with --target COLUMN (or --target {column} if this really is it)"
        )


def check_label_choice(frame, column, y, how, path):
    """Refuse a last-column label guess when another column could as well be the label.

    The guess is ambiguous when the last column holds integers and either they look like
    years (all in 1800..2100: palmerpenguins ends with ``year``), or they are not class codes
    (``0..K-1`` or ``1..K``) while the table has a text column with few distinct values
    (2..50, at most a fifth of the rows), such as ``species``.

    Raises
    ------
    DataError
        Naming the candidate columns and asking for ``--target``.
    """
    if how != "last" or y.dtype.kind not in "iu" or len(y) == 0:
        return
    values = np.unique(y)
    k = len(values)
    codes = np.array_equal(values, np.arange(k)) or np.array_equal(values, np.arange(1, k + 1))
    yearlike = bool(values.min() >= 1800 and values.max() <= 2100)
    limit = max(2, min(50, len(frame) // 5))
    text = [c for c in frame.columns if c != column and _is_text(frame[c])
            and 2 <= frame[c].nunique() <= limit]
    if not (yearlike or (text and not codes)):
        return
    shown = _show([int(v) for v in values], 5)
    what = "look like years" if yearlike else "are not class codes 0..K-1 or 1..K"
    also = (f"; {_show(text, 5)} {'is a text column' if len(text) == 1 else 'are text columns'}"
            " with few values") if text else ""
    raise DataError(
        f"{path}: which column is the label? The last column {column!r} holds integers that "
        f"{what} ({shown}){also}; candidates: {_show([column, *text], 6)}; name the label "
        f"with --target COLUMN"
    )


_HOW = {"named": "the column named like a label", "last": "the last column",
        "--target": "--target", "model": "the model's label column"}


def _number(v):
    """``float(v)``, also for a decimal comma (``1018,73``, ``1.018,73``) as labels are text."""
    try:
        return float(v)
    except (TypeError, ValueError):
        text = str(v).strip()
        if _COMMA_DECIMAL.fullmatch(text) or _DOT_THOUSANDS.fullmatch(text):
            return float(text.replace(".", "").replace(",", "."))
        raise


def _is_number(v):
    try:
        _number(v)
    except (TypeError, ValueError):
        return False
    return True


# ---------------------------------------------------------------------------------- columns


def looks_like_id_name(name):
    """Whether a column name reads as a row identifier: ``id``, ``rowid``, ``index``, ``key``,
    ``*_id`` (also ``* id``, ``*-id``, ``*.id``), camel-case ``*Id``/``*ID``, ``Unnamed: 0``."""
    text = name.strip()
    low = text.lower()
    return bool(
        low in ("id", "rowid", "row_id", "row id", "rownum", "row_number", "index", "idx",
                "key", "no", "nr")
        or re.search(r"[_ .\-]id$", low) or re.search(r"[a-z0-9](Id|ID)$", text)
        or _UNNAMED.fullmatch(text)
    )


def identifier_columns(frame, candidates, notes=None):
    """Columns among ``candidates`` that identify rows rather than describe them.

    Left out: a column without a header name; an integer column holding ``0..n-1`` or
    ``1..n``; an integer column named like an identifier (:func:`looks_like_id_name`) with a
    different non-negative integer in every row (row ids after a split); a text column with a
    different text in every row (20 rows or more).  An integer column with a different value
    in every row that is not named like an identifier stays a feature; ``notes`` then gets a
    sentence suggesting ``--id``/``--drop``.

    Returns
    -------
    list of (column, reason)
    """
    import pandas as pd

    n = len(frame)
    found = []
    for col in candidates:
        s = frame[col]
        if col.strip() == "" or _UNNAMED.fullmatch(col):
            found.append((col, "it has no header name (an index written with the data)"))
            continue
        if (pd.api.types.is_integer_dtype(s) and not pd.api.types.is_bool_dtype(s)
                and not s.isna().any() and n > 2):
            v = np.sort(s.to_numpy(dtype=np.int64))
            if np.array_equal(v, np.arange(n)) or np.array_equal(v, np.arange(1, n + 1)):
                found.append((col, f"it numbers the rows ({v[0]}..{v[-1]})"))
                continue
            if v[0] >= 0 and np.all(np.diff(v) > 0):  # a different integer in every row
                if looks_like_id_name(col):
                    found.append((col, "it is named like an identifier and has a different "
                                       f"integer in every row ({v[0]}..{v[-1]})"))
                    continue
                if notes is not None and n >= 20:
                    notes.append(f"column {col!r} has a different integer in every row; if it "
                                 f"identifies rows, give --id {col} or --drop {col}")
        if (_is_text(s) and n >= 20 and s.notna().all() and s.nunique() == n
                and pd.to_numeric(s, errors="coerce").notna().mean() < 0.5  # not numbers
                and s.astype(str).str.strip().str.fullmatch(_NUMBERLIKE.pattern).mean() < 0.9):
            found.append((col, "it has a different text in every row"))
    return found


def _is_text(series):
    import pandas as pd

    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def _numeric_column(series, col, path, *, decimal=".", required=False):
    """A column as float64 (NaN missing), or None when it is text (a categorical column).

    ``required``: the model takes this column as numeric; text in it is an error.
    """
    import pandas as pd

    s = series
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return s.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
    values = s.astype(object)
    present = values.notna().to_numpy()
    converted = np.full(len(values), np.nan)
    bad = []
    words = {"true": 1.0, "false": 0.0}
    for i, v in enumerate(values.to_numpy()):
        if not present[i]:
            continue
        if isinstance(v, bool | np.bool_):
            converted[i] = float(v)
            continue
        if not isinstance(v, str):
            try:  # Decimal (Parquet DECIMAL), int, float
                converted[i] = float(v)
                continue
            except (TypeError, ValueError):
                bad.append(i)
                continue
        text = v.strip()
        if decimal == "," and _DOT_THOUSANDS.fullmatch(text):
            text = text.replace(".", "")
        if decimal != ".":
            text = text.replace(decimal, ".")
        if text.lower() in words:
            converted[i] = words[text.lower()]
            continue
        try:
            converted[i] = float(text)
        except ValueError:
            bad.append(i)
    n_present = int(present.sum())
    if not bad:
        return converted
    if not required:
        if len(bad) > 0.1 * n_present:
            if decimal == "." and sum(bool(_COMMA_DECIMAL.fullmatch(str(values.iloc[i]).strip()))
                                     for i in bad) > 0.5 * len(bad):
                raise DataError(
                    f"{path}: column {col!r} holds numbers with a decimal comma (e.g. "
                    f"{quote(values.iloc[bad[0]])} in data row {bad[0] + 1}); give "
                    "--decimal ',' (and --sep if needed)"
                )
            return None  # text: a categorical column
    i = bad[0]
    raise DataError(
        f"{path}: column {col!r} is not numeric in {_rows(len(bad))} "
        f"(e.g. {quote(values.iloc[i])} in data row {i + 1})"
        + ("; the model takes it as a number" if required else
           "; fix or blank those cells (blanks are missing values), or leave the column out "
           f"with --drop {col}")
    )


def _check_text_column(series, col, path, decimal, notes):
    """A new text feature column with very many distinct values: refused when its values look
    like numbers (a number format not understood, e.g. thousands marks), else a note.

    Many distinct means more than half of at least 20 present values.
    """
    present = series.dropna().astype(str).str.strip()
    n, distinct = len(present), present.nunique()
    if n < 20 or distinct <= n / 2:
        return
    numberlike = present.str.fullmatch(_NUMBERLIKE.pattern)
    if numberlike.mean() >= 0.9:
        example = present[~present.str.fullmatch(r"[-+]?[0-9]+")].head(1)
        example = example.iloc[0] if len(example) else present.iloc[0]
        raise DataError(
            f"{path}: column {col!r} looks like numbers (e.g. {quote(example)}) but could not "
            f"be read as numbers with decimal mark {decimal!r}; as text it would be "
            f"{distinct} categories for {_rows(n)}: give --decimal (and --sep), fix the "
            f"column, or leave it out with --drop {col}"
        )
    notes.append(f"{path}: text column {col!r} has {distinct} distinct values in {_rows(n)}: "
                 f"one-hot encoded (values in few rows grouped); if it identifies rows, "
                 f"give --id {col} or --drop {col}")


def _categorical_column(series):
    """A text column as an object array of str with np.nan for missing values."""
    out = np.empty(len(series), dtype=object)
    missing = series.isna().to_numpy()
    for i, v in enumerate(series.to_numpy(dtype=object)):
        out[i] = np.nan if missing[i] else _as_text(v)
    return out


def table_columns(model):
    """(numeric, categorical) input columns of a table model's ColumnTransformer, or None."""
    from sklearn.compose import ColumnTransformer

    steps = getattr(model, "steps", None)
    if not steps or not isinstance(steps[0][1], ColumnTransformer):
        return None
    kinds = {"numeric": [], "categorical": []}
    for name, _, cols in steps[0][1].transformers_:
        if name in kinds:
            kinds[name] = [str(c) for c in cols]
    return kinds["numeric"], kinds["categorical"]


# ---------------------------------------------------------------------------------- entry


def read_table(path, fmt, *, labels=None, target=None, need_labels=True, features=None,
               n_features=None, kinds=None, label_hint=None, ids=(), drop=(), sep=None,
               decimal=None, optional_ids=()):
    """Read a CSV/TSV/Parquet table into a :class:`relunet.data.Dataset` of raw columns.

    Parameters
    ----------
    path : str
    fmt : {"csv", "tsv", "parquet"}
    labels : str, optional
        A separate labels file: then the table holds no label column.
    target : str, optional
        The label column (``--target``).
    need_labels : bool
        When False (prediction) a label column is dropped if found, never required.
    features : list of str, optional
        The feature columns of a trained model (selected by name; others are ignored).
    n_features : int, optional
        Unused for tables (kept for :func:`relunet.data.read_data`'s signature).
    kinds : (numeric, categorical), optional
        The model's column kinds: numeric columns must hold numbers, categorical ones are
        read as text as written.
    label_hint : str, optional
        The label column a model was trained with (used when present and no ``target``).
    ids : sequence of str
        Identifier columns (``--id``): never features, read as text, kept in ``Dataset.ids``.
    optional_ids : sequence of str
        More identifier columns, used only where the file has them (a model's ``--id``).
    drop : sequence of str
        Columns to leave out (``--drop``).
    sep, decimal : str, optional
        Separator and decimal mark (default: sniffed).

    Returns
    -------
    Dataset
        ``X`` is a DataFrame of the feature columns (numeric ones float64 with NaN for
        missing, categorical ones object: str or NaN), ``numeric``/``categorical`` list them,
        ``label`` names the label column, ``ids`` holds the id columns, ``notes`` what the
        user should be told.
    """
    import pandas as pd

    notes = []
    ids, drop = list(ids or ()), list(drop or ())
    numeric_kind, categorical_kind = (list(kinds[0]), list(kinds[1])) if kinds else ([], [])
    chosen = {}

    def pick_text(columns):
        label = None
        if labels is None:
            if target is not None or need_labels or label_hint in columns:
                label, chosen["how"] = choose_label(columns, target=target, hint=label_hint,
                                                    path=path, exclude=features or ())
            else:  # prediction: drop a label column if there is one
                rest = [c for c in columns if c not in (features or ()) and c not in ids]
                named = [c for c in rest if c.strip().lower() in LABEL_NAMES]
                if len(named) == 1:
                    label, chosen["how"] = named[0], "named"
                elif features is None and n_features is not None and len(rest) == n_features + 1:
                    label, chosen["how"] = rest[-1], "last"
        chosen["label"] = label
        ids.extend(c for c in optional_ids if c in columns and c not in ids and c != label)
        return [c for c in [label, *ids, *categorical_kind] if c is not None]

    def check_header(names):
        checks.check_names(path, names, label_names=LABEL_NAMES, target=target, labels=labels,
                           hint=label_hint, features=features, ids=ids, drop=drop,
                           need_labels=need_labels)

    frame = read_frame(path, fmt, sep=sep, decimal=decimal, pick_text=pick_text, notes=notes,
                       check_header=check_header)
    dec = decimal or frame.attrs.get("decimal", ".")
    index_columns = frame.attrs.get("index_columns", [])
    frame.attrs = {}
    columns = list(frame.columns)
    if fmt == "parquet":
        pick_text(columns)
    label = chosen.get("label")
    if label is not None and need_labels and chosen.get("how") != "last" \
            and frame[label].isna().all():
        raise DataError(f"{path}: the label column {label!r} has no values")
    unused = [c for c in index_columns if c != label and c not in ids and c not in drop
              and c not in (features or ())]
    if unused:  # a Parquet file's named index, not asked for: not a feature
        notes.append(f"{path}: the file's index ({_show(unused)}) is not used as a feature "
                     f"(give --id {unused[0]} to keep it for predictions)")
        frame = frame.drop(columns=unused)
        columns = list(frame.columns)
    empty_tail = []
    while columns and frame[columns[-1]].isna().all() and len(columns) > 1:
        empty_tail.insert(0, columns.pop())  # Excel writes separators past the last column
    if empty_tail:
        frame = frame.drop(columns=empty_tail)
        notes.append(f"{path}: {_show(empty_tail)}: empty column(s) at the end left out")
        if label in empty_tail:
            label, chosen["how"] = choose_label(columns, hint=label_hint, path=path,
                                                exclude=features or ())
            chosen["label"] = label
            if fmt != "parquet":  # read it again as text as written
                again = read_frame(path, fmt, sep=sep, decimal=decimal, text_columns=[label])
                frame[label] = again[label].reindex(frame.index)
    for what, names in (("--id", ids), ("--drop", drop)):
        missing = [c for c in names if c not in columns]
        if missing:
            raise DataError(f"{path}: {what}: no column named {_show(missing)}; columns are "
                            f"{_show(columns)}")
    if label is not None and (label in ids or label in drop):
        raise DataError(f"{path}: the label column {label!r} cannot also be --id or --drop")

    blank = frame.isna().all(axis=1).to_numpy()
    positions = np.arange(len(frame))
    if blank.any() and not blank.all() and need_labels:  # predict: one output row per row
        notes.append(f"{path}: {_rows(int(blank.sum()))} with no values left out "
                     f"(data row {int(np.flatnonzero(blank)[0]) + 1}"
                     + (", ..." if blank.sum() > 1 else "") + ")")
        frame = frame.loc[~blank].reset_index(drop=True)
        positions = positions[~blank]

    y = None
    if label is not None and (need_labels or target is not None):
        how = chosen.get("how")
        source = f"{path} (label column {label!r}, {_HOW.get(how, how)})"
        series = frame[label]
        if need_labels:
            present = series[series.notna()]
            if len(present):
                guessed = label_values(present, source)
                check_guessed_label(guessed, label, how, path)
                check_label_choice(frame, label, guessed, how, path)
        try:
            y = label_values(series, source)
        except DataError as exc:  # say the data row by position in the file
            m = re.search(r"data row (\d+)", str(exc))
            if m is None:
                raise
            row = int(positions[int(m.group(1)) - 1]) + 1
            hint = "" if how in ("--target", "model") else "; choose the label with --target"
            raise DataError(str(exc).replace(f"data row {m.group(1)}", f"data row {row}")
                            + hint) from None

    id_frame = frame[ids].astype(object) if ids else None
    if features is not None:
        missing = [c for c in features if c not in columns]
        if missing:
            raise DataError(f"{path}: missing feature column(s) {_show(missing)}; the model "
                            f"was trained on {_show(list(features))}")
        feature_cols = list(features)
    else:
        candidates = [c for c in columns if c != label and c not in ids and c not in drop]
        empty = [c for c in candidates if frame[c].isna().all()]
        if empty:
            notes.append(f"{path}: {_show(empty)}: no values at all; not used")
        candidates = [c for c in candidates if c not in empty]
        unique_notes = []
        found = identifier_columns(frame, candidates, unique_notes)
        notes.extend(f"{path}: {note}" for note in unique_notes)
        for col, reason in found:
            notes.append(f"{path}: column {col!r} is not used as a feature: {reason} "
                         "(give --id to keep it for predictions)")
        found = {c for c, _ in found}
        feature_cols = [c for c in candidates if c not in found]
    if not feature_cols:
        raise DataError(f"{path}: no feature columns"
                        + (f" (only the label column {label!r})" if label else ""))

    numeric, categorical, data = [], [], {}
    plain = [c for c in feature_cols if c not in categorical_kind
             and (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
             and not pd.api.types.is_extension_array_dtype(frame[c])]
    if len(plain) == len(feature_cols):  # all plain numbers (image CSVs): one conversion
        block = frame[plain].to_numpy(dtype=np.float64)
        bad = np.isinf(block)
        if bad.any():
            i, j = (int(k) for k in np.argwhere(bad)[0])
            raise DataError(f"{path}: column {plain[j]!r} is infinite in data row "
                            f"{positions[i] + 1}")
        X = pd.DataFrame(block, columns=plain, copy=False)
        ds = Dataset(X, y, plain, path, None)
        ds.rows, ds.label, ds.ids, ds.notes = positions, label, id_frame, notes
        ds.numeric, ds.categorical, ds.label_how = plain, [], chosen.get("how")
        return ds
    for col in feature_cols:
        if col in categorical_kind:
            data[col] = _categorical_column(frame[col])
            categorical.append(col)
            continue
        try:
            values = _numeric_column(frame[col], col, path, decimal=dec,
                                     required=col in numeric_kind)
        except DataError as exc:
            m = re.search(r"data row (\d+)", str(exc))
            if m is None:
                raise
            row = int(positions[int(m.group(1)) - 1]) + 1
            raise DataError(str(exc).replace(f"data row {m.group(1)}", f"data row {row}")) \
                from None
        if values is None:
            _check_text_column(frame[col], col, path, dec, notes)
            data[col] = _categorical_column(frame[col])
            categorical.append(col)
        else:
            if np.isinf(values).any():
                i = int(np.flatnonzero(np.isinf(values))[0])
                raise DataError(f"{path}: column {col!r} is infinite in data row "
                                f"{positions[i] + 1}")
            data[col] = values
            numeric.append(col)
    X = pd.DataFrame(data, columns=feature_cols)
    ds = Dataset(X, y, feature_cols, path, None)
    ds.rows = positions  # 0-based positions in the file, for messages
    ds.label, ds.ids, ds.notes = label, id_frame, notes
    ds.numeric, ds.categorical = numeric, categorical
    ds.label_how = chosen.get("how")
    return ds


def read_for_model(path, model, names, table=None, *, labels=None, target=None,
                   need_labels=True, **options):
    """Read a file for a fitted model (evaluate, predict): its columns, read as in training.

    Parameters
    ----------
    path : str
    model : fitted estimator or Pipeline
    names : list of str or None
        The model's input columns (``feature_names_in_``), None for a model of arrays.
    table : dict, optional
        The model file's ``table`` metadata: ``label`` (found by name when no ``target``)
        and ``ids`` (copied to predictions when the file has them).
    labels, target, need_labels, **options
        As for :func:`relunet.data.read_data` (``sep``, ``decimal``, ``ids``).

    Raises
    ------
    DataError
        A table model given an array file, a numeric column holding text, a missing value
        for a model without an imputer, a text column for a model of numbers.
    """
    from .data import read_data

    table = table or {}
    kinds = table_columns(model)
    net = model.steps[-1][1] if getattr(model, "steps", None) else model
    if kinds is not None:
        options.update(kinds=kinds, label_hint=table.get("label"))
        if not need_labels and not options.get("ids"):
            options["optional_ids"] = table.get("ids") or []
    elif names is not None:  # a model trained on a table of numbers (format 1)
        options.update(kinds=(names, []))
    ds = read_data(path, labels=labels, target=target, need_labels=need_labels,
                   features=names, n_features=int(net.n_features_in_), **options)
    if kinds is not None and not ds.is_table:
        raise DataError(f"{path}: the model was trained on a table of {len(names)} columns "
                        f"({_show(names, 6)}); give the data as a CSV/TSV/Parquet table with "
                        "those columns")
    if ds.is_table:
        if ds.categorical and kinds is None:
            raise DataError(f"{path}: column {ds.categorical[0]!r} holds text, but the model "
                            "takes only numbers")
        if not has_imputer(model):
            check_no_missing(ds, model=True)
        ds.notes = [n for n in ds.notes if "not used as a feature" not in n]
        ds.notes += prediction_notes(model, ds, path,
                                     [] if need_labels else table.get("ids") or [],
                                     ids_given=bool(options.get("ids")))
    return ds


def prediction_notes(model, ds, path, saved_ids=(), *, ids_given=False):
    """Notes on what a table model does with rows it was not trained to expect.

    Text values no category of the training had (the encoder's ``handle_unknown``: no known
    category, or the infrequent one), rows with no values at all (predicted from the
    imputed values alone), and the model's ``--id`` columns missing from the file (the
    predictions then have no id columns).  Rows are 1-based data rows of ``path``.
    """
    import pandas as pd

    notes = []
    steps = getattr(model, "steps", None)
    prepare = steps[0][1] if steps else None
    encoder = getattr(prepare, "named_transformers_", {}).get("categorical")
    X, rows = ds.X, getattr(ds, "rows", None)

    def where(mask):
        at = np.flatnonzero(mask)
        numbers = (np.asarray(rows)[at] if rows is not None else at) + 1
        shown = ", ".join(str(int(r)) for r in numbers[:5])
        plural = "s" if len(at) != 1 else ""
        return f"{len(at)} row{plural} (data row{plural} {shown}{', ...' if len(at) > 5 else ''})"

    if encoder is not None and hasattr(encoder, "categories_"):
        rare = getattr(encoder, "infrequent_categories_", None) or [None] * len(
            encoder.categories_)
        for col, known, few in zip(encoder.feature_names_in_, encoder.categories_, rare,
                                   strict=True):
            values = X[col]
            present = values.notna().to_numpy()
            unseen = present & ~values.isin([k for k in known if not pd.isna(k)]).to_numpy()
            if unseen.any():
                first = values[unseen].iloc[0]
                how = ("as the training's rare values" if few is not None
                       else "as no known category")
                notes.append(f"column {str(col)!r}: {where(unseen)} with a value the training "
                             f"never had (e.g. {str(first)!r}); encoded {how}")
    if len(X) and X.shape[1]:
        empty = X.isna().all(axis=1).to_numpy()
        if empty.any():
            notes.append(f"{where(empty)} with no values: predicted from the training's "
                         "imputed values alone")
    missing = [c for c in saved_ids if c not in (ds.ids.columns if ds.ids is not None else [])]
    if missing and not ids_given:
        notes.append(f"{path}: no column {_show(missing, 4)} (the model's --id): the "
                     "predictions have no id column")
    return notes


def align_labels(y, classes):
    """Read labels in the type of the model's classes (CSV '3' vs trained 3, and back)."""
    y, classes = np.asarray(y), np.asarray(classes)
    if (classes.dtype.kind in "iu" and y.dtype.kind in "UO"
            and all(_CANONICAL_INT.fullmatch(str(v)) for v in y)):  # "7" is 7; "007" is not
        return y.astype(np.int64)
    if classes.dtype.kind in "UO" and y.dtype.kind in "iub":
        return y.astype(str)
    return y


def read_test(path, train, *, labels=None, target=None, impute="median", **options):
    """Test data for a training set (``--test-data``): a table's columns by name, read as in
    training; the labels in the training's type.

    Raises
    ------
    DataError
        Missing columns, or a different number of features than the training data.
    """
    from .data import read_data

    if train.is_table:
        options.update(kinds=(train.numeric, train.categorical), label_hint=train.label)
    test = read_data(path, labels=labels, target=None if labels is not None else target,
                     features=train.feature_names, **options)
    test, _ = complete_rows(test, impute)
    if test.X.shape[1] != train.X.shape[1]:
        raise DataError(f"{path}: {test.X.shape[1]} features, but the training data has "
                        f"{train.X.shape[1]}")
    return test


def complete_rows(ds, impute):
    """Apply ``--impute drop-rows`` or ``none`` to a table: ``(ds, notes)``.

    ``--impute`` is about numbers only: drop-rows leaves out the rows with a missing number
    (and says how many); none raises :class:`DataError` at the first one; median and mean
    leave them to the model.  A missing text value is always a category of its own.
    """
    if not ds.is_table or impute in ("median", "mean"):
        return ds, []
    if impute == "drop-rows":
        ds, dropped = drop_missing_rows(ds)
        return ds, ([f"{ds.source}: {dropped} of {dropped + len(ds.X)} rows with missing "
                     "numbers left out (--impute drop-rows)"] if dropped else [])
    check_no_missing(ds)
    return ds, []


def separator(text):
    """``--sep``: one character, or the names tab, comma, semicolon, pipe."""
    import argparse

    names = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    text = names.get(text, text)
    if text in ('"', "\n", "\r"):
        raise argparse.ArgumentTypeError(f"{text!r} cannot separate fields (it quotes or ends "
                                         "them)")
    if len(text) != 1:
        raise argparse.ArgumentTypeError(f"must be one character or 'tab', got {text!r}")
    return text


def has_imputer(model):
    """Whether a model fills missing values itself (a SimpleImputer in its preparation)."""
    from sklearn.impute import SimpleImputer

    def walk(est):
        if isinstance(est, SimpleImputer):
            return True
        for _, sub, *_ in getattr(est, "steps", None) or getattr(est, "transformers_", None) \
                or []:
            if walk(sub):
                return True
        return False

    return walk(model)


def describe_preparation(model):
    """Lines saying what a table model's preparation does (empty for other models)."""
    from sklearn.compose import ColumnTransformer

    steps = getattr(model, "steps", None)
    if not steps or not isinstance(steps[0][1], ColumnTransformer):
        return []
    lines = []
    for name, trans, cols in steps[0][1].transformers_:
        if name == "numeric":
            parts = [type(s).__name__ if not isinstance(s, str) else s
                     for _, s in trans.steps]
            imputer = dict(trans.steps).get("impute")
            if imputer is not None:
                n_ind = len(imputer.indicator_.features_) if imputer.indicator_ else 0
                parts[0] = (f"missing values: {imputer.strategy} "
                            f"(+ {_count(n_ind, 'missing-indicator column')})")
            lines.append(f"{_count(len(cols), 'numeric column')}: " + ", ".join(parts))
        elif name == "categorical":
            n_cat = sum(len(c) for c in trans.categories_)
            lines.append(f"{_count(len(cols), 'text column')} one-hot encoded: "
                         f"{_count(n_cat, 'category', 'categories')} "
                         f"({_show([str(c) for c in cols], 4)}); unseen ones ignored")
    return lines


def _numeric_part(ds):
    """The numeric feature columns of a table Dataset (missing text is a category)."""
    numeric = getattr(ds, "numeric", None)
    return ds.X if numeric is None else ds.X[list(numeric)]


def check_no_missing(ds, model=False):
    """Raise DataError at the first missing *number* of a table (``--impute none``, or a
    model without an imputer).  Missing text is not checked: it is a category of its own.

    ``model``: the check is for a trained model's input (the message says so).
    """
    X = _numeric_part(ds)
    missing = X.isna().to_numpy()
    if missing.any():
        row, col = (int(i) for i in np.argwhere(missing)[0])
        pos = getattr(ds, "rows", None)
        pos = np.arange(len(X)) if pos is None else pos
        count = int(missing.sum())
        where = (f"{ds.source}: numeric column {X.columns[col]!r} is missing (blank or NA) in "
                 f"data row {int(pos[row]) + 1} ({count} missing "
                 f"{'number' if count == 1 else 'numbers'} in all)")
        if model:
            raise DataError(f"{where}; this model was trained without imputing numbers "
                            "(--impute none or drop-rows): fill them first")
        raise DataError(f"{where}; --impute none refuses missing numbers: fill them, or "
                        "choose --impute median, mean or drop-rows")


def drop_missing_rows(ds):
    """The rows of a table with no missing number (``--impute drop-rows``); missing text is
    kept (a category of its own).  Returns ``(ds, number of rows dropped)``."""
    X = ds.X
    keep = ~_numeric_part(ds).isna().any(axis=1).to_numpy()
    if keep.all():
        return ds, 0
    pos = getattr(ds, "rows", None)
    ds.rows = (np.arange(len(X)) if pos is None else pos)[keep]
    ds.X = X.loc[keep].reset_index(drop=True)
    ds.y = None if ds.y is None else ds.y[keep]
    if ds.ids is not None:
        ds.ids = ds.ids.loc[keep].reset_index(drop=True)
    return ds, int((~keep).sum())


# ---------------------------------------------------------------------------------- preparation


def build_preparation(numeric, categorical, *, impute="median", scale="standard",
                      min_frequency=5):
    """The (unfitted) ColumnTransformer for a table's feature columns.

    ``("numeric", Pipeline([("impute", SimpleImputer(strategy=impute, add_indicator=True)),
    ("scale", StandardScaler() | MinMaxScaler() | "passthrough")]), numeric)`` and
    ``("categorical", OneHotEncoder(handle_unknown="infrequent_if_exist",
    min_frequency=min_frequency, sparse_output=False), categorical)``; other columns dropped.
    With ``impute`` "none" or "drop-rows" the numeric pipeline has no imputer.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

    if impute not in IMPUTE_CHOICES:
        raise ValueError(f"impute must be one of {IMPUTE_CHOICES}, got {impute!r}")
    scaler = {"standard": StandardScaler, "minmax": MinMaxScaler}.get(scale)
    steps = []
    if impute in ("median", "mean"):
        steps.append(("impute", SimpleImputer(strategy=impute, add_indicator=True)))
    steps.append(("scale", scaler() if scaler is not None else "passthrough"))
    transformers = []
    if numeric:
        transformers.append(("numeric", Pipeline(steps), list(numeric)))
    if categorical:
        transformers.append((
            "categorical",
            OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=min_frequency,
                          sparse_output=False),
            list(categorical),
        ))
    return ColumnTransformer(transformers, remainder="drop")


def make_model(classifier, ds=None, *, numeric=None, categorical=None, scale="standard",
               impute="median", min_frequency=5):
    """The model to fit: the classifier behind the preparation its data needs.

    A table (``ds.numeric`` is set, or ``numeric``/``categorical`` column names are given)
    gets ``Pipeline([("prepare", ColumnTransformer), ("classifier", classifier)])`` (see
    :func:`build_preparation`), to be fitted on a DataFrame of the raw columns; an array
    gets ``Pipeline([("scale", scaler), ("net", classifier)])``, or the classifier alone
    with ``scale="none"``.
    """
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    if ds is not None and getattr(ds, "numeric", None) is not None:
        numeric, categorical = ds.numeric, ds.categorical
    if numeric is not None or categorical is not None:
        prepare = build_preparation(numeric or [], categorical or [], impute=impute,
                                    scale=scale, min_frequency=min_frequency)
        return Pipeline([("prepare", prepare), ("classifier", classifier)])
    if scale == "none":
        return classifier
    scaler = StandardScaler() if scale == "standard" else MinMaxScaler()
    return Pipeline([("scale", scaler), ("net", classifier)])


def label_line(ds):
    """The line saying which column is the label and why (None when there is none).

    Labels from a separate file (``--labels FILE``) are named as such.
    """
    label = getattr(ds, "label", None)
    if label is None:
        source = getattr(ds, "labels_source", None)
        return None if source is None else f"labels: from {source} (--labels)"
    how = {"--target": "--target", "model": "as the model was trained",
           "named": "named like a label", "last": "the last column; choose another with "
                                                   "--target"}.get(ds.label_how, "")
    return f"label: column {label!r} ({how})"


def describe(ds):
    """Lines telling the user what was read: notes, label column, feature kinds."""
    lines = list(getattr(ds, "notes", None) or [])
    label = label_line(ds)
    if label is not None:
        lines.append(label)
    if getattr(ds, "numeric", None) is not None:
        parts = [f"{len(ds.numeric)} numeric"]
        if ds.categorical:
            parts.append(f"{len(ds.categorical)} text (one-hot encoded: "
                         f"{_show(ds.categorical, 4)})")
        n_missing = int(ds.X.isna().to_numpy().sum())
        if n_missing:
            parts.append(f"{n_missing} missing values")
        lines.append("features: " + ", ".join(parts))
    return lines

