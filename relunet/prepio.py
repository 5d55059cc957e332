"""Fitted scikit-learn preparation steps as data: a JSON spec plus plain NumPy arrays.

:func:`dump` turns a fitted transformer into ``(spec, arrays)``; :func:`load` rebuilds an
equivalent fitted transformer from them (``transform`` gives bit-identical output).  Nothing
is pickled and nothing from the file is executed; strings go into the JSON spec, numbers into
float64/int64 arrays.  The documented set of transformers:

==================  ==========================================================================
``StandardScaler``  ``mean_``, ``var_``, ``scale_`` (arrays; absent when None),
                    ``n_samples_seen_``
``MinMaxScaler``    ``min_``, ``scale_``, ``data_min_``, ``data_max_``, ``data_range_``
``SimpleImputer``   ``statistics_`` (array, or strings in the spec) and the missing-indicator
                    columns; rebuilt by fitting on two synthetic rows that have exactly these
                    statistics and missing columns
``OneHotEncoder``   ``categories_`` (JSON lists: strings, numbers, null for a missing-value
                    category) and the infrequent categories (indices); rebuilt by fitting on
                    synthetic rows in which they are frequent/infrequent
``Pipeline``        its steps, nested; ``"passthrough"`` or None steps
``ColumnTransformer``  its transformers (``"drop"``, ``"passthrough"`` or any of these), their
                    columns (names or integer positions), ``remainder`` "drop" or
                    "passthrough"; rebuilt by fitting the layout on one synthetic row, then
                    putting the rebuilt transformers in place
==================  ==========================================================================

Anything else raises ``TypeError`` naming the step.  Every spec records the transformer's
parameters (``get_params(deep=False)``, JSON values only), ``n_features_in`` and
``feature_names``.  Arrays are named ``prep.<k>.<attribute>`` (k counts the arrays' owners).
"""

from __future__ import annotations

import math
import re

import numpy as np

__all__ = ["dump", "load", "SUPPORTED"]

SUPPORTED = ("StandardScaler", "MinMaxScaler", "SimpleImputer", "OneHotEncoder", "Pipeline",
             "ColumnTransformer")
_SCALER_ARRAYS = {
    "StandardScaler": ("mean_", "var_", "scale_"),
    "MinMaxScaler": ("min_", "scale_", "data_min_", "data_max_", "data_range_"),
}
_PREFIX = "prep."
# Bounds on stored fitted values (README "Model files"): a fitted value outside them is not
# from a fit on finite data that transform can use; a scale within them keeps x / scale_
# finite for every |x| <= 1e150.
_MAX_ABS_VALUE = 1e150
_MIN_SCALE = 1e-150
_NUMERIC_DTYPE = re.compile(r"[<>|=]?(b1|[iu][1248]|f[248])")
_DTYPE_NAMES = frozenset(["bool", "float16", "float32", "float64"] + [
    f"{u}int{b}" for u in ("", "u") for b in (8, 16, 32, 64)])


class _Counter:
    def __init__(self):
        self.k = 0

    def next(self):
        self.k += 1
        return self.k - 1


# ---------------------------------------------------------------------------------- values


def _json_value(v, where):
    """A parameter or category as JSON: NumPy scalars unwrapped, NaN as None."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return None if math.isnan(v) else (v if math.isfinite(v) else None)
    if isinstance(v, list | tuple):
        return [_json_value(x, where) for x in v]
    if isinstance(v, dict):
        return {str(k): _json_value(x, where) for k, x in v.items()}
    if isinstance(v, type) and issubclass(v, np.generic):
        return {"dtype": np.dtype(v).name}
    raise TypeError(f"{where}: cannot save the parameter value {v!r} "
                    f"({type(v).__name__}) as data")


def _params(est, where, skip=()):
    out = {}
    for key, value in est.get_params(deep=False).items():
        if key in skip:
            continue
        if key == "missing_values" and isinstance(value, float) and math.isnan(value):
            out[key] = {"nan": True}
            continue
        out[key] = _json_value(value, f"{where} parameter {key!r}")
    return out


def _restore_params(params):
    out = {}
    for key, value in params.items():
        if isinstance(value, dict) and value == {"nan": True}:
            value = np.nan
        elif isinstance(value, dict) and set(value) == {"dtype"}:
            if value["dtype"] not in _DTYPE_NAMES:
                raise ValueError(f"unsupported dtype parameter {value['dtype']!r}")
            value = np.dtype(value["dtype"]).type
        elif key == "feature_range" and isinstance(value, list):
            value = tuple(value)
        out[key] = value
    return out


def checked_values(what, values):
    """``values`` (a float array of fitted values named ``what``) if transform can use them:
    finite, at most ``_MAX_ABS_VALUE`` in size; a ``scale_`` at least ``_MIN_SCALE``; a
    ``var_`` or ``data_range_`` not negative.  Otherwise ValueError naming ``what``."""
    values = np.asarray(values)
    if values.dtype.kind != "f" or not values.size:
        return values
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what} holds NaN or infinite values")
    lo, hi = float(np.min(values)), float(np.max(values))
    if max(-lo, hi) > _MAX_ABS_VALUE:
        raise ValueError(f"{what} holds the value {lo if -lo > hi else hi:.3g}; fitted values "
                         f"are at most {_MAX_ABS_VALUE:.0e} in size")
    attr = what.rsplit(" ", 1)[-1]
    if attr == "scale_" and lo < _MIN_SCALE:
        raise ValueError(f"{what} holds the scale {lo:.3g}; a fitted scale is positive and at "
                         f"least {_MIN_SCALE:.0e} (transforming divides by it)")
    if attr in ("var_", "data_range_") and lo < 0:
        raise ValueError(f"{what} holds the negative value {lo:.3g}")
    return values


def scaler_arrays(est):
    """The fitted array attributes a scaler with ``est``'s parameters has (not None)."""
    if type(est).__name__ == "MinMaxScaler":
        return set(_SCALER_ARRAYS["MinMaxScaler"])
    need = set()
    if est.with_mean or est.with_std:
        need.add("mean_")
    if est.with_std:
        need |= {"var_", "scale_"}
    return need


def _validated(est):
    """``est`` after scikit-learn's own check of its parameters (InvalidParameterError, a
    ValueError, for ``with_mean="yes"``)."""
    est._validate_params()
    return est


def _names(est):
    names = getattr(est, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def _synthetic(spec, values):
    """Rows for a synthetic fit: a DataFrame when the original had column names."""
    names = spec.get("feature_names")
    if names is None:
        return values
    import pandas as pd

    return pd.DataFrame({n: values[:, j] for j, n in enumerate(names)}, columns=names)


# ---------------------------------------------------------------------------------- dump


def dump(est, *, where="preparation", counter=None, arrays=None):
    """``(spec, arrays)`` for a fitted transformer of the documented set.

    Parameters
    ----------
    est : fitted transformer, ``"passthrough"``, ``"drop"`` or None
    where : str
        The step's name, for messages.

    Returns
    -------
    spec : dict (JSON values only)
    arrays : dict of str -> ndarray (float64 or int64), names starting with ``prep.``

    Raises
    ------
    TypeError
        A transformer outside the documented set, or a parameter that is not plain data,
        naming the step.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

    counter = counter if counter is not None else _Counter()
    arrays = arrays if arrays is not None else {}
    if est is None or (isinstance(est, str) and est in ("passthrough", "drop")):
        return {"type": est or "passthrough"}, arrays
    kind = type(est).__name__
    exact = {StandardScaler, MinMaxScaler, SimpleImputer, OneHotEncoder, Pipeline,
             ColumnTransformer}
    if type(est) not in exact:
        raise TypeError(
            f"cannot save the step {where!r}: {kind} is not one of the transformers a model "
            f"file can hold ({', '.join(SUPPORTED)}, 'passthrough', 'drop')"
        )
    spec = {"type": kind}
    if kind == "Pipeline":
        spec["params"] = _params(est, where, skip=("steps", "memory"))
        spec["steps"] = []
        for name, step in est.steps:
            sub, _ = dump(step, where=f"{where}/{name}", counter=counter, arrays=arrays)
            spec["steps"].append([str(name), sub])
        return spec, arrays
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est)
    spec["n_features_in"] = int(est.n_features_in_)
    spec["feature_names"] = _names(est)
    k = counter.next()

    def put(attr, value, dtype=np.float64):
        name = f"{_PREFIX}{k}.{attr}"
        arrays[name] = np.ascontiguousarray(value, dtype=dtype)
        return name

    if kind in _SCALER_ARRAYS:
        spec["params"] = _params(est, where)
        spec["arrays"] = {}
        for attr in _SCALER_ARRAYS[kind]:
            value = getattr(est, attr, None)
            if value is not None:
                spec["arrays"][attr] = put(attr, value)
        seen = est.n_samples_seen_
        spec["n_samples_seen"] = (seen.tolist() if isinstance(seen, np.ndarray) else int(seen))
    elif kind == "SimpleImputer":
        spec["params"] = _params(est, where)
        stats = np.asarray(est.statistics_)
        if stats.dtype.kind in "biuf":
            stats = stats.astype(np.float64)
            nan = np.isnan(stats)  # an all-missing column (dropped by transform)
            spec["statistics"] = put("statistics_", np.where(nan, 0.0, stats))
            spec["statistics_nan"] = [int(i) for i in np.flatnonzero(nan)]
        else:
            spec["statistics_text"] = [_json_value(v, where) for v in stats.tolist()]
        indicator = est.indicator_
        spec["indicator_features"] = (None if indicator is None
                                      else [int(i) for i in indicator.features_])
        if indicator is not None:
            spec["indicator_params"] = _params(indicator, where)
    elif kind == "OneHotEncoder":
        if callable(est.feature_name_combiner):
            raise TypeError(f"cannot save the step {where!r}: its feature_name_combiner is a "
                            "function")
        if not isinstance(est.categories, str):
            raise TypeError(f"cannot save the step {where!r}: only categories='auto'")
        spec["params"] = _params(est, where)
        cats = []
        for j, c in enumerate(est.categories_):
            c = np.asarray(c)
            if c.dtype.kind in "biuf":
                f = c.astype(np.float64)
                nan = bool(f.size and np.isnan(f[-1]))  # a missing-value category is last
                cats.append({"numbers": put(f"categories_{j}", f[:-1] if nan else f),
                             "nan_last": nan, "dtype": c.dtype.str})
            else:
                cats.append({"text": [_json_value(v, where) for v in c.tolist()]})
        spec["categories"] = cats
        infrequent = getattr(est, "_infrequent_indices", None)
        if getattr(est, "_infrequent_enabled", False) and infrequent is None:
            raise TypeError(f"cannot save the step {where!r}: this scikit-learn's "
                            "OneHotEncoder does not expose its infrequent categories")
        spec["infrequent"] = (None if infrequent is None else
                              [None if i is None else [int(x) for x in i] for i in infrequent])
    else:  # ColumnTransformer
        if not (isinstance(est.remainder, str) and est.remainder in ("drop", "passthrough")):
            raise TypeError(f"cannot save the step {where!r}: remainder must be 'drop' or "
                            "'passthrough'")
        spec["params"] = _params(est, where, skip=("transformers", "remainder"))
        spec["remainder"] = est.remainder
        originals = {name: trans for name, trans, _ in est.transformers}
        spec["transformers"] = []
        for name, trans, cols in est.transformers_:
            if name == "remainder":
                continue
            original = originals.get(name)
            if isinstance(original, str):
                sub = {"type": original}
            else:
                sub, _ = dump(trans, where=f"{where}/{name}", counter=counter, arrays=arrays)
            spec["transformers"].append([str(name), sub, _columns(cols, f"{where}/{name}")])
        spec["sparse_output"] = bool(est.sparse_output_)
        spec["output_indices"] = {name: [int(s.start), int(s.stop)]
                                  for name, s in est.output_indices_.items()}
    return spec, arrays


def _columns(cols, where):
    if isinstance(cols, str | int | np.integer):
        return _json_value(cols, where)
    values = list(np.asarray(cols).tolist()) if not isinstance(cols, list) else cols
    if all(isinstance(c, str) for c in values) or all(
        isinstance(c, int) and not isinstance(c, bool) for c in values
    ):
        return values
    raise TypeError(f"cannot save the step {where!r}: its columns must be names or integer "
                    f"positions, got {cols!r}")


# ---------------------------------------------------------------------------------- load


def load(spec, fetch):
    """Rebuild a fitted transformer from :func:`dump`'s spec.

    Parameters
    ----------
    spec : dict
    fetch : callable
        ``fetch(name, dtypes=..., ndim=..., shape=...) -> ndarray``: the stored array
        ``name``, checked (the model reader's :meth:`_Reader.array`).

    Raises
    ------
    ValueError
        A spec that does not describe a supported, consistent transformer.
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise ValueError("a preparation step must be an object with a 'type'")
    kind = spec["type"]
    if kind in ("passthrough", "drop"):
        return kind
    if kind not in SUPPORTED:
        raise ValueError(f"unknown preparation step type {kind!r}")
    return globals()["_load_" + kind](spec, fetch)


def _new(cls, spec):
    est = cls()
    params = _restore_params(spec.get("params") or {})
    unknown = set(params) - set(est.get_params(deep=False))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} parameters {sorted(unknown)}")
    est.set_params(**params)
    return _validated(est)


def _features(est, spec):
    D = int(spec["n_features_in"])
    if D < 1:
        raise ValueError("n_features_in must be at least 1")
    est.n_features_in_ = D
    names = spec.get("feature_names")
    if names is not None:
        if not (isinstance(names, list) and len(names) == D
                and all(isinstance(n, str) for n in names)):
            raise ValueError("feature_names must be n_features_in strings")
        est.feature_names_in_ = np.asarray(names, dtype=object)
    return D


def _scaler(cls, spec, fetch):
    est = _new(cls, spec)
    D = _features(est, spec)
    present = spec.get("arrays") or {}
    allowed = _SCALER_ARRAYS[cls.__name__]
    if not isinstance(present, dict) or not set(present) <= set(allowed):
        raise ValueError(f"unexpected {cls.__name__} arrays {present!r}")
    if set(present) != scaler_arrays(est):
        raise ValueError(f"a {cls.__name__} with these parameters has the arrays "
                         f"{sorted(scaler_arrays(est))}, not {sorted(present)}")
    for attr in allowed:
        value = None
        if attr in present:
            value = checked_values(f"{cls.__name__} {attr}", fetch(
                present[attr], dtypes=("float64",), ndim=1, shape=(D,)))
        setattr(est, attr, value)
    seen = spec["n_samples_seen"]
    if isinstance(seen, list):
        seen = np.asarray(seen, dtype=np.int64)
        if seen.shape != (D,):
            raise ValueError("n_samples_seen must be an int or one int per feature")
    else:
        seen = int(seen)
    est.n_samples_seen_ = seen
    return est


def _load_StandardScaler(spec, fetch):
    from sklearn.preprocessing import StandardScaler

    return _scaler(StandardScaler, spec, fetch)


def _load_MinMaxScaler(spec, fetch):
    from sklearn.preprocessing import MinMaxScaler

    return _scaler(MinMaxScaler, spec, fetch)


def _load_SimpleImputer(spec, fetch):
    from sklearn.impute import SimpleImputer

    est = _new(SimpleImputer, spec)
    D = int(spec["n_features_in"])
    if "statistics" in spec:
        stats = checked_values("SimpleImputer statistics_", fetch(
            spec["statistics"], dtypes=("float64",), ndim=1, shape=(D,))).copy()
        nan = spec.get("statistics_nan") or []
        if not all(isinstance(i, int) and 0 <= i < D for i in nan):
            raise ValueError("statistics_nan must be feature positions")
        stats[nan] = np.nan
        rows = np.vstack([stats, stats]).astype(np.float64)
        missing = np.nan
    else:
        text = spec["statistics_text"]
        if not (isinstance(text, list) and len(text) == D):
            raise ValueError("statistics_text must list n_features_in values")
        rows = np.array([text, text], dtype=object)
        rows[rows == None] = np.nan  # noqa: E711 - element-wise
        missing = np.nan
    mv = est.missing_values
    if not (isinstance(mv, float) and math.isnan(mv)):
        missing = mv
    features = spec.get("indicator_features")
    if features is not None:
        if not (isinstance(features, list) and all(isinstance(i, int) and 0 <= i < D
                                                   for i in features)):
            raise ValueError("indicator_features must be feature positions")
        rows[1, features] = missing
    est.fit(_synthetic(spec, rows))
    if features is not None and est.indicator_ is not None:
        ind_params = _restore_params(spec.get("indicator_params") or {})
        est.indicator_.set_params(**{k: v for k, v in ind_params.items()
                                     if k in est.indicator_.get_params()})
        if est.indicator_.features_.tolist() != features:
            raise ValueError("the imputer's missing-indicator columns do not rebuild")
    return est


def _load_OneHotEncoder(spec, fetch):
    from sklearn.preprocessing import OneHotEncoder

    est = _new(OneHotEncoder, spec)
    D = int(spec["n_features_in"])
    cats_spec = spec["categories"]
    if not (isinstance(cats_spec, list) and len(cats_spec) == D):
        raise ValueError("categories must list one entry per feature")
    categories = []
    for c in cats_spec:
        if "text" in c:
            values = [np.nan if v is None else v for v in c["text"]]
            if not all(isinstance(v, str) for v in values if v is not np.nan):
                raise ValueError("text categories must be strings")
            categories.append(np.array(values, dtype=object))
        else:
            values = checked_values("OneHotEncoder categories_", fetch(
                c["numbers"], dtypes=("float64",), ndim=1))
            dtype_str = c.get("dtype", "<f8")
            if not (isinstance(dtype_str, str) and _NUMERIC_DTYPE.fullmatch(dtype_str)):
                raise ValueError(f"unsupported category dtype {dtype_str!r}")
            dtype = np.dtype(dtype_str)
            with np.errstate(all="ignore"):
                cast = values.astype(dtype)
            if not np.array_equal(cast.astype(np.float64), values):
                raise ValueError(f"categories that the dtype {dtype_str!r} would change")
            if c.get("nan_last"):
                if dtype.kind != "f":
                    raise ValueError("a missing-value category in integer categories")
                cast = np.append(cast, np.nan).astype(dtype)
            categories.append(cast)
        if len(categories[-1]) == 0:
            raise ValueError("a feature without categories")
    infrequent = spec.get("infrequent")
    if infrequent is not None and not (isinstance(infrequent, list) and len(infrequent) == D):
        raise ValueError("infrequent must list one entry per feature")
    # Synthetic rows: frequent categories twice, infrequent ones once, padded with a value
    # outside the categories (ignored while fitting), fitted with min_frequency=2.
    columns = []
    for j, cats in enumerate(categories):
        rare = set((infrequent[j] or []) if infrequent is not None else [])
        col = []
        for i, v in enumerate(cats):
            col += [v] if i in rare else [v, v]
        columns.append(col)
    n = max(len(c) for c in columns)
    rows = np.empty((n, D), dtype=object)
    numeric = all(c.dtype.kind in "biuf" for c in categories)
    for j, (col, cats) in enumerate(zip(columns, categories, strict=True)):
        if cats.dtype.kind in "biuf":
            finite = cats[~np.isnan(cats.astype(np.float64))]
            pad = (float(np.max(finite)) + 1) if finite.size else 0.0
        else:
            pad = "\x00relunet-padding"
        rows[:, j] = col + [pad] * (n - len(col))
    if numeric:
        rows = rows.astype(np.float64)
    fit = _new(OneHotEncoder, spec)
    fit.set_params(categories=[list(c) for c in categories], handle_unknown="ignore",
                   min_frequency=2 if infrequent is not None else None, max_categories=None)
    fit.fit(_synthetic(spec, rows))
    fit.set_params(**{k: v for k, v in est.get_params(deep=False).items()})
    for j, cats in enumerate(categories):  # the fit's categories_ keep the stored dtype
        fit.categories_[j] = cats
    return fit


def _distinct(names, kind):
    """Step names as scikit-learn requires them (``_validate_names``): distinct, no ``__``."""
    seen = set()
    for name in names:
        if name in seen:
            raise ValueError(f"the {kind} has two steps named {name!r}")
        if "__" in name or not name:
            raise ValueError(f"the {kind} step name {name!r} is empty or contains '__'")
        seen.add(name)


def _load_Pipeline(spec, fetch):
    from sklearn.pipeline import Pipeline

    steps = spec.get("steps")
    if not (isinstance(steps, list) and steps and all(
            isinstance(s, list) and len(s) == 2 and isinstance(s[0], str) for s in steps)):
        raise ValueError("a Pipeline needs a list of [name, step] pairs")
    _distinct([name for name, _ in steps], "Pipeline")
    built = [(name, load(sub, fetch)) for name, sub in steps]
    pipe = Pipeline(built)
    params = _restore_params(spec.get("params") or {})
    pipe.set_params(**{k: v for k, v in params.items() if k in ("verbose", "transform_input")})
    return pipe


def _load_ColumnTransformer(spec, fetch):
    from sklearn.base import clone
    from sklearn.compose import ColumnTransformer

    entries = spec.get("transformers")
    if not (isinstance(entries, list) and all(isinstance(e, list) and len(e) == 3
                                              and isinstance(e[0], str) for e in entries)):
        raise ValueError("a ColumnTransformer needs [name, step, columns] triples")
    _distinct([e[0] for e in entries] + ["remainder"], "ColumnTransformer")
    remainder = spec.get("remainder")
    if remainder not in ("drop", "passthrough"):
        raise ValueError("remainder must be 'drop' or 'passthrough'")
    built = []
    for name, sub, cols in entries:
        if not (isinstance(cols, str | int) or (isinstance(cols, list) and all(
                isinstance(c, str | int) and not isinstance(c, bool) for c in cols))):
            raise ValueError(f"bad columns for {name!r}")
        built.append((name, load(sub, fetch), cols))
    params = _restore_params(spec.get("params") or {})
    # Fit the layout with stand-ins on one synthetic row, then put the rebuilt steps in place.
    layout = ColumnTransformer(
        [(name, trans if isinstance(trans, str) else "passthrough", cols)
         for name, trans, cols in built],
        remainder=remainder,
    )
    layout.set_params(**{k: v for k, v in params.items() if k in layout.get_params(deep=False)
                         and k not in ("transformers", "n_jobs", "verbose")})  # no processes
    D = int(spec["n_features_in"])
    layout.fit(_synthetic(spec, np.zeros((1, D))))
    rebuilt = dict((name, trans) for name, trans, _ in built)
    fitted = []
    for name, trans, cols in layout.transformers_:
        if name in rebuilt and not isinstance(rebuilt[name], str):
            trans = rebuilt[name]
        fitted.append((name, trans, cols))
    layout.transformers_ = fitted
    layout.transformers = [(name, trans if isinstance(trans, str) else clone(trans), cols)
                           for name, trans, cols in built]
    layout.sparse_output_ = bool(spec.get("sparse_output", False))
    indices = spec.get("output_indices") or {}
    layout.output_indices_ = {name: slice(int(a), int(b)) for name, (a, b) in indices.items()}
    return layout
