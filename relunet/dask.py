"""Data-parallel training on a Dask cluster: :class:`DaskReluNetClassifier`.

The data stays where Dask put it: each row-chunk (*partition*) of ``X``, with its labels and
weights, is cast to the model's dtype and persisted on a worker; the client holds the weights
and the optimizer, never the data.  There is no socket or collective of our own: every
exchange is an ordinary Dask task, so a lost worker's partitions are recomputed from their
lineage by the scheduler.

**Full-batch solvers** ``"lbfgs"`` and ``"gd"`` are computed the way Spark MLlib's multilayer
perceptron computes them.  Per evaluation the weights are broadcast (one task holding them,
fetched by the workers from each other), every partition ``p`` returns the *sums*

    Σ_i s_i·L_i,   Σ_i s_i·∂L_i/∂W1,   Σ_i s_i·∂L_i/∂W2,   Σ_i s_i       (i in p)

(``s_i`` the example weights, 1 by default; from :meth:`relunet.fastpath.Workspace.loss_and_grads`,
the same math as on one machine), the sums are added in a tree (fan-in 8) ordered by
partition index (not by completion order), and the client divides by the total weight and adds the
α-term once.  SciPy's L-BFGS-B runs on the client with the options of
:class:`relunet.train.Trainer`, whose loop, stopping rules and history are reused as they are.
So the loss and gradient are those of one machine up to float rounding (the fit agrees with
``ReluNetClassifier(solver="lbfgs")`` to ~1e-10 in float64), and since the order of every sum
is fixed by the partitioning alone, the result is bit-identical whatever the number of
workers or the placement of the partitions.

**Mini-batch solvers** ``"sgd"`` and ``"adam"`` use *local SGD with periodic averaging*: from
the shared weights and optimizer state, each partition runs its own shuffled mini-batches
(the fast compiled epoch where available) for ``1 / syncs_per_epoch`` of a local epoch; then
the client averages the weights and the optimizer's moments, weighted by the examples each
partition processed (Adam's step count: the weighted mean number of steps, rounded).  One
round trip per sync instead of one per mini-batch.  This is **not** single-machine SGD/Adam:
with P partitions each sync averages P independent trajectories, which behaves roughly like
one step of a P-times larger batch.  It reaches comparable accuracy in a similar number of
epochs on well-mixed data (see the README's Dask section for digits), but results depend on
the partitioning (not on the number of workers).
"""

from __future__ import annotations

import inspect
import math
import threading
import time
import warnings
from concurrent.futures import CancelledError
from typing import NamedTuple

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .data import require
from .estimator import ReluNetClassifier, _check_fit_classes, _show
from .fastpath import Workspace
from .network import Params, init_params
from .optim import make_optimizer
from .train import Trainer, TrainingDiverged, auto_batch_size

__all__ = ["DaskReluNetClassifier", "LostPartitionError", "train_from_files"]


class LostPartitionError(RuntimeError):
    """A partition of the training data was lost and cannot be recomputed."""


# ------------------------------------------------------------------ worker side
# Everything in this section runs on the workers, on one partition at a time.


class _Part(NamedTuple):
    """One partition of the training data, as persisted on a worker."""

    index: int  # position of the partition (0-based)
    X: np.ndarray  # (n, D), model dtype, C-contiguous
    y: np.ndarray  # (n,) raw labels, then class indices (intp)
    w: np.ndarray | None  # (n,) float64 example weights; None: all 1
    wsum: float  # Σ w (n when w is None)


def _load_part(X, y, w, index, dtype):
    """Cast and check one partition; the first task of a fit."""
    X = np.ascontiguousarray(X, dtype=dtype)
    y = np.asarray(y)
    for name, v in (("y", y), ("sample_weight", w)):
        if v is not None and np.shape(v) != (X.shape[0],):
            raise ValueError(f"partition {index}: X has {X.shape[0]} rows but {name} has shape "
                             f"{np.shape(v)}: their chunks must hold the same rows")
    if w is not None:
        w = np.asarray(w, dtype=np.float64)
    return _Part(index, X, y, w, float(X.shape[0] if w is None else w.sum()))


class _Stats(NamedTuple):
    """What the client learns about a partition before training."""

    labels: np.ndarray  # its distinct labels, sorted
    counts: np.ndarray  # their weighted counts
    n: int  # rows
    bad_x: int  # first row (0-based, in the partition) with NaN/inf; -1: none
    bad_w: int  # first row with a negative or non-finite weight; -1: none
    bad_w_value: float
    bad_y: int  # first row whose label is missing (None, NaN, pandas NA); -1: none


class _MissingLabel(ValueError):
    """A row without a label; ``row`` is where (1-based, as :meth:`_Cluster.stats` words it)."""

    def __init__(self, where):
        super().__init__(f"y is missing (null/NaN) in {where}; every row needs a label")
        self.where = where


def _missing(y):
    """Boolean mask of the missing labels in ``y`` (None, NaN, NaT, pandas NA)."""
    if y.dtype.kind in "fc":
        return np.isnan(y)
    if y.dtype.kind == "M" or y.dtype.kind == "m":
        return np.isnat(y)
    if y.dtype == object:
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - dask.dataframe brings pandas
            return np.array([v is None or v != v for v in y.ravel()], dtype=bool)
        return np.asarray(pd.isna(y), dtype=bool)
    return np.zeros(y.shape, dtype=bool)


def _first(bad):
    return int(np.flatnonzero(bad)[0]) if bad.any() else -1


def _part_stats(part):
    """The partition's :class:`_Stats`."""
    X, w = part.X, part.w
    bad_x = bad_w = -1
    value = 0.0
    if X.shape[0] and not np.isfinite(np.sum(X, dtype=np.float64)):
        bad_x = _first(~np.isfinite(X).all(axis=1))
    if w is not None and w.size and not (np.isfinite(w).all() and (w >= 0).all()):
        bad_w = _first(~(np.isfinite(w) & (w >= 0)))
        value = float(w[bad_w])
    bad_y = _first(_missing(part.y)) if part.y.size else -1
    if bad_y >= 0:  # np.unique cannot sort them (pandas NA): report before
        return _Stats(np.empty(0, part.y.dtype), np.zeros(0), int(X.shape[0]), bad_x, bad_w,
                      value, bad_y)
    labels, inverse = np.unique(part.y, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=w, minlength=labels.shape[0])
    return _Stats(labels, counts, int(X.shape[0]), bad_x, bad_w, value, -1)


def _encode_part(part, classes, per_class):
    """Labels -> class indices, class weights folded into ``w``; zero-weight rows dropped.

    As :class:`relunet.train.Trainer` does on one machine: a zero weight is a missing row,
    and uniform weights are the unweighted arithmetic (``wsum`` keeps the weight's scale).
    """
    y = np.searchsorted(classes, part.y).astype(np.intp)
    X, w = part.X, part.w
    if per_class is not None:
        w_cls = per_class[y]
        w = w_cls if w is None else w * w_cls
    if w is not None:
        keep = w > 0
        if not keep.all():
            X, y, w = X[keep], y[keep], w[keep]
        wsum = float(w.sum())
        if w.size == 0 or (w == w[0]).all():
            w = None
    else:
        wsum = float(X.shape[0])
    return _Part(part.index, X, y, w, wsum)


_local = threading.local()


def _workspace(D, H, K, n, dtype, *, exact=False):
    """A Workspace for batches of up to ``n`` rows (``exact``: of ``n`` rows, as
    :meth:`~relunet.fastpath.Workspace.run_epoch` batches by its size), kept per thread."""
    ws = getattr(_local, "workspace", None)
    if (ws is None or ws.shape != (D, H, K) or ws.dtype != dtype or ws.batch_size < n
            or (exact and ws.batch_size != n)):
        # One thread: the parallelism is the partitions' (one task per worker thread), and
        # a partition's result must not depend on the threads of the worker it lands on.
        ws = _local.workspace = Workspace(D, H, K, n, dtype, n_threads=1)
    return ws


class _Sums(NamedTuple):
    """Σ s_i·L_i, Σ s_i·∂L_i/∂W (no α-term) and Σ s_i over some partitions, in float64."""

    loss: float
    dW1: np.ndarray
    dW2: np.ndarray
    weight: float


def _part_sums(part, params):
    """The partition's :class:`_Sums` at ``params`` (the Spark-style per-partition result)."""
    W1, W2 = params
    if part.X.shape[0] == 0:  # an empty partition adds nothing
        return _Sums(0.0, np.zeros(W1.shape), np.zeros(W2.shape), 0.0)
    D, H, K = W1.shape[0] - 1, W1.shape[1], W2.shape[1]
    ws = _workspace(D, H, K, part.X.shape[0], part.X.dtype)
    mean = ws.loss_and_grads(Params(W1, W2), part.X, part.y, 0.0, part.w)
    s = part.wsum  # loss_and_grads gives the weighted *mean*: scale it back to the sum
    dW1, dW2 = (g.astype(np.float64) * s for g in ws.grads)
    return _Sums(mean * s, dW1, dW2, s)


def _add(a, b):
    """The sum of two results of the same kind."""
    fields = (_add(x, y) if isinstance(x, tuple) else x + y for x, y in zip(a, b, strict=True))
    return type(a)(*fields) if hasattr(a, "_fields") else tuple(fields)


def _add_in_order(*results):
    """``((r0 + r1) + r2) + ...``: one node of the reduction tree, in a fixed order."""
    total = results[0]
    for r in results[1:]:
        total = _add(total, r)
    return total


class _Round(NamedTuple):
    """A partition's share of a local-SGD round, weighted by ``m`` (examples it processed).

    All fields are sums over partitions once reduced; the client divides by ``m``.
    """

    W1: np.ndarray  # m·W1 after the round
    W2: np.ndarray
    state: tuple  # m·(optimizer state arrays)
    steps: float  # m·(update steps taken)
    loss: float  # Σ over batches of batch loss × batch weight
    loss_weight: float
    m: float


def _local_round(part, params, state, t, settings, seed, round_index, n_rounds, lr):
    """Run the partition's share of one local-SGD round from ``params`` and ``state``."""
    W1, W2 = params
    n = part.X.shape[0]
    B = min(settings["batch_size"], n) if n else 1
    n_batches = -(-n // B) if n else 0
    lo = round_index * n_batches // n_rounds
    hi = (round_index + 1) * n_batches // n_rounds
    rows_lo, rows_hi = lo * B, min(hi * B, n)
    m = rows_hi - rows_lo if hi > lo else 0
    if m == 0:  # nothing to do in this round: no say in the average
        zero = np.zeros(W1.shape), np.zeros(W2.shape)
        return _Round(*zero, tuple(np.zeros(s.shape) for s in state), 0.0, 0.0, 0.0, 0.0)
    rng = np.random.default_rng([seed, part.index])  # the same on any worker
    order = rng.permutation(n) if settings["shuffle"] and B < n else None
    X, y, w = part.X, part.y, part.w
    if n_rounds > 1 or order is None:
        rows = slice(rows_lo, rows_hi) if order is None else order[rows_lo:rows_hi]
        X, y = X[rows], y[rows]  # a copy of this round's rows only (a view when unshuffled)
        w = None if w is None else w[rows]
        order = None
    # Own copies: the broadcast weights and state are shared by this worker's tasks.
    dtype = part.X.dtype
    params = Params(np.array(W1, dtype=dtype, order="C"), np.array(W2, dtype=dtype, order="C"))
    optimizer = make_optimizer(
        settings["solver"], params, momentum=settings["momentum"],
        nesterov=settings["nesterovs_momentum"], beta_1=settings["beta_1"],
        beta_2=settings["beta_2"], epsilon=settings["epsilon"],
    )
    for s, src in zip(optimizer.state, state, strict=True):
        s[...] = src
    if hasattr(optimizer, "t"):
        optimizer.t = int(t)
    D, H, K = W1.shape[0] - 1, W1.shape[1], W2.shape[1]
    ws = _workspace(D, H, K, B, dtype, exact=True)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        total, weight = ws.run_epoch(params, X, y, w, order, settings["alpha"], optimizer, lr)
    steps = -(-m // B)
    return _Round(params.W1 * float(m), params.W2 * float(m),
                  tuple(s.astype(np.float64) * m for s in optimizer.state),
                  float(steps * m), float(total), float(weight), float(m))


def _predict_block(X, model, method):
    """``model.method(X)`` on one block (prediction maps this over the row chunks).

    An empty block (a 0-row partition, e.g. an empty Parquet file) gives an empty result of
    the right dtype and columns: the model is asked about one row of zeros, and none is kept
    (scikit-learn refuses 0 samples).
    """
    if X.shape[0] == 0:
        return getattr(model, method)(np.zeros((1,) + X.shape[1:], dtype=X.dtype))[:0]
    return getattr(model, method)(X)


# ------------------------------------------------------------------ client side


def _dask_modules():
    require("distributed", "dask", "DaskReluNetClassifier")
    da = require("dask.array", "dask", "DaskReluNetClassifier")
    dd = require("dask.dataframe", "dask", "DaskReluNetClassifier")
    return da, dd


def _is_dask(X):
    return hasattr(X, "__dask_graph__") and X.__dask_graph__() is not None


def _check_numeric(X, what):
    """TypeError naming the first column of the dask DataFrame ``X`` that is not numeric."""
    import pandas as pd

    for name, dt in X.dtypes.items():
        if not (pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt)):
            raise TypeError(
                f"{what} column {name!r} has dtype {dt}: DaskReluNetClassifier takes numeric "
                f"features only; encode text and categorical columns as numbers first"
            )


def _names(X):
    return [str(c) for c in X.columns] if all(isinstance(c, str) for c in X.columns) else None


def _as_rows(X, what, ndim):
    """``X`` as a dask array chunked by rows only (+ column names of a DataFrame)."""
    da, dd = _dask_modules()
    names = None
    if isinstance(X, dd.DataFrame):
        _check_numeric(X, what)
        X, names = X.to_dask_array(), _names(X)
    elif isinstance(X, dd.Series):
        X = X.to_dask_array()
    elif not isinstance(X, da.Array):
        if _is_dask(X):
            raise TypeError(f"{what} must be a dask array or dask DataFrame, got {type(X)}")
        X = np.asarray(X)
        X = da.from_array(X, chunks=(-1,) * X.ndim) if X.ndim else X
    if X.ndim != ndim:
        raise ValueError(f"{what} must be {ndim}-D, got shape {X.shape}")
    if ndim == 2 and len(X.chunks[1]) > 1:
        raise ValueError(
            f"{what} is chunked along its columns (column chunks {X.chunks[1]}); "
            f"DaskReluNetClassifier needs whole rows in every chunk: use "
            f"{what}.rechunk({{1: -1}})"
        )
    return X, names


def _column_block(frame, columns):
    """One partition's ``columns`` as a NumPy array (a single column: 1-D)."""
    return frame[columns].to_numpy()


_Y, _W = "__relunet_y__", "__relunet_sample_weight__"


def _frames_as_rows(X, y, sample_weight):
    """Dask DataFrame ``X`` with dask Series ``y`` (and weights) as arrays of the same rows.

    Converted separately, dask may plan a one-column projection in fewer partitions than
    the whole table (seen with Parquet), so the three are joined into one DataFrame, split
    into partitions once, and each array's chunk is taken from the same partition.
    """
    import dask
    import dask.array as da

    _check_numeric(X, "X")
    columns = list(X.columns)
    joined = X.assign(**{_Y: y}) if sample_weight is None else X.assign(
        **{_Y: y, _W: sample_weight})
    parts = joined.to_delayed()
    y_dtype = np.dtype(y.dtype) if isinstance(y.dtype, np.dtype) else np.dtype(object)

    def array(cols, shape, dtype):
        blocks = [da.from_delayed(dask.delayed(_column_block)(p, cols), shape=shape, dtype=dtype)
                  for p in parts]
        return da.concatenate(blocks)

    D = len(columns)
    Xa = array(columns, (np.nan, D), np.float64)  # nominal: cast to the model's on the worker
    ya = array(_Y, (np.nan,), y_dtype)
    wa = None if sample_weight is None else array(_W, (np.nan,), np.float64)
    return Xa, ya, wa, _names(X)


def _known(chunks):
    return not any(math.isnan(c) for c in chunks)


def _aligned(v, X, what):
    """``v`` (y or sample_weight) as a dask array with the row chunks of ``X``.

    Unknown chunk sizes (e.g. from a DataFrame) are left as they are when the numbers of
    chunks agree; the rows of each pair of chunks are checked on the worker.
    """
    v, _ = _as_rows(v, what, 1)
    if v.chunks[0] == X.chunks[0]:
        return v
    if _known(v.chunks[0]) and _known(X.chunks[0]):
        if v.shape[0] != X.shape[0]:
            raise ValueError(f"{what} has {v.shape[0]} rows but X has {X.shape[0]}")
        return v.rechunk({0: X.chunks[0]})  # labels and weights are small: move them, not X
    if v.numblocks[0] == X.numblocks[0]:
        return v
    raise ValueError(f"{what} has {v.numblocks[0]} chunks of unknown sizes but X has "
                     f"{X.numblocks[0]}: give them the same partitions")


FAN_IN = 8  # results added by one task of the reduction tree


def _tree_sum(client, futures):
    """The sum of ``futures``' results, added in a tree ordered by their position.

    Each node adds up to ``FAN_IN`` consecutive results, left to right.  The order of every
    addition is fixed by the list alone, never by which task finished first or where it ran,
    so the result is bit-identical on any cluster; the depth is log_8 of the partitions
    (one task for up to 8 partitions: fewer round trips than a binary tree).
    """
    level = list(futures)
    while len(level) > 1:
        level = [client.submit(_add_in_order, *level[i:i + FAN_IN], pure=False)
                 for i in range(0, len(level), FAN_IN)]
    return level[0]


def _identity(x):
    return x


class _Cluster:
    """The training data persisted on the workers, and the reductions over it.

    Also stands in for ``X`` and for the Workspace in :class:`relunet.train.Trainer`'s loop
    (``shape``, ``loss_and_grads``, ``grads``).
    """

    def __init__(self, client, X, y, sample_weight, dtype):
        self.client = client
        self.dtype = dtype
        self.shape = (None, X.shape[1])  # rows: counted by stats()
        xs = X.to_delayed().ravel()
        ys = y.to_delayed().ravel()
        ws = [None] * len(xs) if sample_weight is None else sample_weight.to_delayed().ravel()
        from dask import delayed

        raw = [delayed(_load_part, pure=True)(x, yy, w, i, dtype)
               for i, (x, yy, w) in enumerate(zip(xs, ys, ws, strict=True))]
        # client.compute keeps the graph: a lost partition is recomputed from its lineage.
        self.parts = client.compute(raw)
        self.grads = None

    # ---- set-up
    def stats(self):
        """All labels (sorted) and their weighted counts over the whole data.

        Raises ValueError for NaN/inf features and bad weights, naming the first bad row by
        its 1-based position in the whole data and in its partition.
        """
        stats = self._gather([self.client.submit(_part_stats, p, pure=False)
                              for p in self.parts])
        first = np.concatenate([[0], np.cumsum([s.n for s in stats])]).astype(int)
        self.shape = (int(first[-1]), self.shape[1])

        def where(i, row):
            return f"row {first[i] + row + 1} (partition {i}, its row {row + 1})"

        for i, s in enumerate(stats):
            if s.bad_y >= 0:
                raise _MissingLabel(where(i, s.bad_y))
            if s.bad_x >= 0:
                raise ValueError(f"X contains NaN or infinity in {where(i, s.bad_x)}; clean or "
                                 f"impute it before training")
            if s.bad_w >= 0:
                raise ValueError(f"sample_weight is {s.bad_w_value!r} in {where(i, s.bad_w)}; "
                                 f"weights must be finite and non-negative")
        if self.shape[0] == 0:
            raise ValueError("X has 0 rows: cannot train on no examples")
        labels = np.unique(np.concatenate([s.labels for s in stats]))
        counts = np.zeros(labels.shape[0])
        for s in stats:
            np.add.at(counts, np.searchsorted(labels, s.labels), s.counts)
        return labels, counts

    def encode(self, classes, per_class):
        """Replace the parts by their encoded, weighted versions."""
        old = self.parts
        self.parts = [self.client.submit(_encode_part, p, classes, per_class, pure=False)
                      for p in old]
        for future in old:  # not cancel(): that would cancel the encoded parts too
            future.release()  # freed once encoded; the encoded parts share X (no copy)

    def release(self):
        self.client.cancel(self.parts)
        self.parts = []

    # ---- reductions
    def _broadcast(self, value):
        """``value`` as a task result: fetched by the workers from each other, and
        recomputable (unlike scattered data) if the worker holding it is lost."""
        return self.client.submit(_identity, value, pure=False)

    def _gather(self, futures):
        """Results of ``futures``; a clear error if training data was lost for good."""
        try:
            return self.client.gather(futures)
        except CancelledError:
            lost = [i for i, p in enumerate(self.parts) if p.status in ("cancelled", "lost")]
            if not lost:
                raise
            which = f"partition {lost[0]}" if len(lost) == 1 else (
                f"partitions {', '.join(map(str, lost))}")
            raise LostPartitionError(
                f"{which} of the training data was lost with its worker "
                f"and cannot be recomputed: it was scattered by hand (client.scatter) rather "
                f"than built from a recomputable source (files, dask.array.from_array, ...)"
            ) from None

    def sums(self, params):
        """The :class:`_Sums` over all partitions at ``params``."""
        p = self._broadcast(tuple(params))
        parts = [self.client.submit(_part_sums, part, p, pure=False) for part in self.parts]
        return self._gather(_tree_sum(self.client, parts))

    def loss_and_grads(self, params, X, y, alpha, sample_weight):
        """What :meth:`relunet.fastpath.Workspace.loss_and_grads` returns, for all data:
        the mean data loss; :attr:`grads` gets ``∂L/∂W`` (α-term included)."""
        s = self.sums(params)
        self.grads = Params(s.dW1 / s.weight + alpha * params.W1,
                            s.dW2 / s.weight + alpha * params.W2)
        return s.loss / s.weight

    def local_round(self, params, optimizer, settings, seed, round_index, n_rounds, lr):
        """One local-SGD round; averages into ``params`` and ``optimizer`` in place."""
        t = getattr(optimizer, "t", 0)
        shared = self._broadcast((tuple(params), tuple(optimizer.state)))
        rounds = [self.client.submit(_local_round_shared, part, shared, t, settings, seed,
                                     round_index, n_rounds, lr, pure=False)
                  for part in self.parts]
        r = self._gather(_tree_sum(self.client, rounds))
        if not math.isfinite(r.loss):
            return r.loss, 1.0
        if r.m > 0:
            for W, total in zip(params, (r.W1, r.W2), strict=True):
                W[...] = total / r.m
            for s, total in zip(optimizer.state, r.state, strict=True):
                s[...] = total / r.m
            if hasattr(optimizer, "t"):
                optimizer.t = t + int(round(r.steps / r.m))
        return r.loss, r.loss_weight


def _local_round_shared(part, shared, t, settings, seed, round_index, n_rounds, lr):
    params, state = shared
    return _local_round(part, params, state, t, settings, seed, round_index, n_rounds, lr)


class _DaskTrainer(Trainer):
    """:class:`relunet.train.Trainer` whose data is a :class:`_Cluster`.

    The loop, the stopping rules, the history and L-BFGS (with its options) are Trainer's;
    only the arithmetic over the data moves to the cluster.
    """

    def __init__(self, params, config, *, rng, dtype, cluster, syncs_per_epoch):
        super().__init__(params, config, rng=rng, dtype=dtype)
        self._cluster = cluster
        self._syncs = syncs_per_epoch

    def _prepare(self, X, y, sample_weight):
        return X, y, sample_weight  # checked and persisted on the workers already

    def _workspace_for(self, batch_size):
        return self._cluster

    def _run_epoch(self, X, y, sw, progress=None):
        """Trainer's epoch on the cluster: ``(loss, running accuracy, stopped)``.  The running
        accuracy is not gathered (None), and ``progress`` is not called within an epoch."""
        cfg = self.config
        cluster = self._cluster
        lr = self.schedule.rate(self.n_epochs)
        reg = self._reg()
        if cfg.solver == "gd":
            # The note's steepest descent on the full batch: one reduction per epoch.
            mean = cluster.loss_and_grads(self.params, X, y, cfg.alpha, sw)
            if not math.isfinite(mean):
                raise TrainingDiverged(f"loss became {mean}")
            self.optimizer.step(self.params, cluster.grads, lr)
            self.n_samples_seen += X.shape[0]
            return mean + reg, None, False
        batch_size = cfg.batch_size if cfg.batch_size is not None else auto_batch_size(X.shape[0])
        settings = {
            "solver": cfg.solver, "batch_size": batch_size, "shuffle": cfg.shuffle,
            "alpha": cfg.alpha, "momentum": cfg.momentum,
            "nesterovs_momentum": cfg.nesterovs_momentum, "beta_1": cfg.beta_1,
            "beta_2": cfg.beta_2, "epsilon": cfg.epsilon,
        }
        seed = int(self.rng.integers(2**63))  # one draw per epoch: partitions derive theirs
        total = weight = 0.0
        for r in range(self._syncs):
            t, w = cluster.local_round(self.params, self.optimizer, settings, seed, r,
                                       self._syncs, lr)
            if not math.isfinite(t):
                raise TrainingDiverged(f"loss became {t}")
            total, weight = total + t, weight + w
        self.n_samples_seen += X.shape[0]
        return total / weight + reg, None, False


def _no_partial_fit(estimator):
    raise AttributeError(
        "DaskReluNetClassifier has no partial_fit: every epoch of fit already visits all the "
        "partitions in parallel; use ReluNetClassifier (or dask-ml's Incremental) for partial_fit"
    )


_BASE_SIGNATURE = inspect.signature(ReluNetClassifier.__init__)
_BASE_NAMES = tuple(n for n in _BASE_SIGNATURE.parameters if n != "self")


class DaskReluNetClassifier(ReluNetClassifier):
    """:class:`~relunet.ReluNetClassifier` trained data-parallel on a Dask cluster.

    The constructor is ``ReluNetClassifier``'s (same parameters, same defaults, generated
    from it) plus ``client``.  See the module docstring for how each solver is distributed.

    Parameters
    ----------
    client : distributed.Client or None, default=None
        The cluster to train on; None: the current client (``distributed.default_client()``).
        Dropped when the estimator is pickled.
    **params
        Exactly :class:`~relunet.ReluNetClassifier`'s.  ``early_stopping=True`` is not
        supported yet (ValueError).

    Notes
    -----
    ``fit`` accepts ``dask.array`` (chunked by rows only) and ``dask.dataframe`` inputs
    (numeric columns), NumPy/pandas inputs too (sent to the cluster as one partition).  Each
    partition of ``X`` with its labels and weights is cast to ``dtype`` and persisted on a
    worker for the fit, then released; it never passes through the client.  Prediction on a
    dask input returns a dask array (computed block by block on the workers), on anything else
    what ``ReluNetClassifier`` returns.  :meth:`to_local` gives the plain estimator (for
    ``relunet.save``, the CLI, ...).
    """

    _parameter_constraints: dict = {
        **ReluNetClassifier._parameter_constraints,
        "client": "no_validation",
    }

    def __init__(self, *, client=None, **params):
        unknown = sorted(set(params) - set(_BASE_NAMES))
        if unknown:
            raise TypeError(
                f"DaskReluNetClassifier() got an unexpected keyword argument {unknown[0]!r}"
            )
        for name in _BASE_NAMES:
            setattr(self, name, params.get(name, _BASE_SIGNATURE.parameters[name].default))
        self.client = client

    __init__.__signature__ = _BASE_SIGNATURE.replace(parameters=[
        *_BASE_SIGNATURE.parameters.values(),
        inspect.Parameter("client", inspect.Parameter.KEYWORD_ONLY, default=None),
    ])

    def __getstate__(self):
        state = dict(super().__getstate__())  # object's is self.__dict__ itself: copy it
        state["client"] = None  # a connection does not travel; unpickled: the current client
        return state

    def __sklearn_clone__(self):
        # scikit-learn's clone deep-copies parameters, and a Client cannot be copied: the
        # clone shares this estimator's client (a connection, not a hyper-parameter).
        client, self.client = self.client, None
        try:
            new = super().__sklearn_clone__()
        finally:
            self.client = client
        new.client = client
        return new

    # ------------------------------------------------------------------ training
    def _get_client(self):
        require("distributed", "dask", "DaskReluNetClassifier")
        if self.client is not None:
            return self.client
        from distributed import default_client

        try:
            return default_client()
        except ValueError:
            raise ValueError(
                "DaskReluNetClassifier found no Dask client: pass client=distributed.Client(...)"
                " or create one first (distributed.Client(address) or Client(LocalCluster()))"
            ) from None

    def fit(self, X, y, sample_weight=None, *, syncs_per_epoch=1):
        """Train on the cluster until ``max_iter`` or a stopping rule.

        Parameters
        ----------
        X : dask array of shape (n_samples, n_features), chunked by rows, or dask DataFrame
        y : dask array or Series of shape (n_samples,)
            Re-chunked to ``X``'s row chunks if needed (moving labels, not features).
        sample_weight : dask array of shape (n_samples,), optional
        syncs_per_epoch : int, default=1
            ``"sgd"``/``"adam"`` only: how many times per epoch the partitions' weights are
            averaged (1: after every local epoch).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad data (naming the row and partition), column-chunked ``X``, fewer than two
            classes, ``early_stopping=True``, no client.
        LostPartitionError
            A partition that cannot be recomputed (scattered by hand) was lost with a worker.
        """
        self._validate_params()
        if not (isinstance(syncs_per_epoch, int) and not isinstance(syncs_per_epoch, bool)
                and syncs_per_epoch >= 1):
            raise ValueError(f"syncs_per_epoch must be an integer >= 1, got {syncs_per_epoch!r}")
        return self._guarded(self._fit_dask, X, y, sample_weight, syncs_per_epoch)

    @available_if(_no_partial_fit)
    def partial_fit(self, X, y, classes=None, sample_weight=None):  # pragma: no cover
        """Not available (see :func:`_no_partial_fit`)."""

    def _fit_dask(self, X, y, sample_weight, syncs_per_epoch):
        t_start = time.perf_counter()
        if self.early_stopping:
            raise ValueError(
                "early_stopping=True is not supported by DaskReluNetClassifier yet; hold out "
                "a validation set yourself and score the fitted model on it"
            )
        client = self._get_client()
        dtype = np.dtype(self.dtype)
        fitted = hasattr(self, "W1_")
        continuing = fitted and self.warm_start
        _, dd = _dask_modules()
        if isinstance(X, dd.DataFrame) and isinstance(y, dd.Series) and (
                sample_weight is None or isinstance(sample_weight, dd.Series)):
            X, y, sw, names = _frames_as_rows(X, y, sample_weight)
        else:
            X, names = _as_rows(X, "X", 2)
            y = _aligned(y, X, "y")
            sw = None if sample_weight is None else _aligned(sample_weight, X, "sample_weight")
        D = X.shape[1]
        if continuing and D != self.n_features_in_:
            raise ValueError(f"X has {D} features, but the model was fitted with "
                             f"{self.n_features_in_} (warm_start=True)")

        cluster = _Cluster(client, X, y, sw, dtype)
        try:
            labels, counts = cluster.stats()
            check_classification_targets(labels)
            classes_ = labels
            K = classes_.shape[0]
            _check_fit_classes(type(self).__name__, classes_,
                               self.classes_ if continuing else None)
            per_class = self._per_class_weights(classes_, counts)
            weighted = counts * (1.0 if per_class is None else per_class)
            if np.count_nonzero(weighted > 0) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs examples of at least 2 classes with "
                    f"non-zero weight; only {_show(classes_[weighted > 0])} have any"
                )
            cluster.encode(classes_, per_class)

            rng = self._rng()
            if continuing:
                params = Params(self.W1_, self.W2_)
            else:
                params = init_params(D, self.hidden_units, K, rng=rng, dtype=dtype)
            trainer = _DaskTrainer(params, self._config(), rng=rng, dtype=dtype,
                                   cluster=cluster, syncs_per_epoch=syncs_per_epoch)
            trainer.fit(cluster, None, None, callback=self._epoch_callback())
        finally:
            cluster.release()

        epochs = trainer.history.epochs
        prev = continuing
        n_before = self.n_iter_ if prev else 0
        history = [dict(vars(e)) for e in epochs]
        for i, record in enumerate(history):
            record["epoch"] = n_before + i + 1
        self.W1_ = trainer.params.W1.copy()
        self.W2_ = trainer.params.W2.copy()
        self.classes_ = classes_
        self.n_features_in_ = D
        self._n_rows = int(cluster.shape[0])
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.loss_curve_ = (self.loss_curve_ if prev else []) + [e.train_loss for e in epochs]
        self.history_ = (self.history_ if prev else []) + history
        self.validation_loss_curve_ = None
        self.validation_scores_ = None
        self.best_loss_ = min(self.best_loss_, trainer.best_loss) if prev else trainer.best_loss
        self.n_iter_ = n_before + len(epochs)
        self.t_ = (self.t_ if prev else 0) + trainer.n_samples_seen
        self.stop_reason_ = trainer.stop_reason
        self.fit_seconds_ = time.perf_counter() - t_start
        if trainer.stop_reason == "max_iter" and self.learning_rate != "cosine":
            return (
                f"{type(self).__name__} reached max_iter={self.max_iter} epochs before the loss "
                f"stopped improving by tol={self.tol}; raise max_iter or tol if that matters"
            )
        return None

    def _per_class_weights(self, classes, counts):
        """class_weight as one factor per class, or None."""
        cw = self.class_weight
        if cw is None:
            return None
        if isinstance(cw, str):  # "balanced", from the weighted counts of all partitions
            present = counts > 0
            per_class = np.ones(classes.shape[0])
            per_class[present] = counts.sum() / (present.sum() * counts[present])
            return per_class
        return self._class_weight_dict(cw, classes)

    # ------------------------------------------------------------------ the plain model
    def to_local(self):
        """A :class:`~relunet.ReluNetClassifier` with the same parameters and weights.

        Returns
        -------
        ReluNetClassifier
            Fitted (a copy of every fitted attribute); for ``relunet.save``, the CLI, ...
        """
        check_is_fitted(self, ("W1_", "W2_", "classes_"))
        params = {name: getattr(self, name) for name in _BASE_NAMES}
        local = ReluNetClassifier(**params)
        for key, value in vars(self).items():
            if key.endswith("_") and not key.startswith("_"):
                setattr(local, key, value.copy() if hasattr(value, "copy") else value)
        return local

    def save(self, path):
        """Write the fitted model to ``path``, as :meth:`to_local` would (same file format)."""
        return self.to_local().save(path)

    # ------------------------------------------------------------------ prediction
    def _on_blocks(self, X, method, *, drop_axis):
        """``method`` mapped over the row blocks of the dask collection ``X``."""
        check_is_fitted(self, ("W1_", "W2_", "classes_"))
        _, dd = _dask_modules()
        if isinstance(X, dd.DataFrame):
            names = getattr(self, "feature_names_in_", None)
            if names is not None and list(map(str, X.columns)) != list(names):
                raise ValueError(
                    f"X has columns {_show(list(X.columns))}, but the model was fitted with "
                    f"{_show(list(names))}"
                )
        arr, _ = _as_rows(X, "X", 2)
        if arr.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {arr.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input")
        model = self.to_local()
        if hasattr(model, "feature_names_in_"):
            del model.feature_names_in_  # blocks are plain arrays; names were checked above
        if drop_axis:
            return arr.map_blocks(_predict_block, model, method, drop_axis=1,
                                  dtype=self.classes_.dtype, meta=np.empty(0, self.classes_.dtype))
        K = self.classes_.shape[0]
        cols = 1 if (method == "decision_function" and K == 2) else K
        if cols == 1:
            return arr.map_blocks(_predict_block, model, method, drop_axis=1,
                                  dtype=self.W1_.dtype)
        return arr.map_blocks(_predict_block, model, method, chunks=(arr.chunks[0], (K,)),
                              dtype=self.W1_.dtype)

    def predict(self, X):
        """Labels; a dask array for a dask input (see :meth:`ReluNetClassifier.predict`)."""
        if _is_dask(X):
            return self._on_blocks(X, "predict", drop_axis=True)
        return super().predict(X)

    def predict_proba(self, X):
        """Class probabilities; a dask array of shape (n, K) for a dask input."""
        if _is_dask(X):
            return self._on_blocks(X, "predict_proba", drop_axis=False)
        return super().predict_proba(X)

    def predict_log_proba(self, X):
        """``log softmax(f)``; a dask array for a dask input."""
        if _is_dask(X):
            return self._on_blocks(X, "predict_log_proba", drop_axis=False)
        return super().predict_log_proba(X)

    def decision_function(self, X):
        """Scores; a dask array for a dask input."""
        if _is_dask(X):
            return self._on_blocks(X, "decision_function", drop_axis=False)
        return super().decision_function(X)


# ------------------------------------------------------------------ training from files
def _standardize_block(X, shift, scale):
    """``(X - shift) / scale`` on one block (the scaler's transform, without name checks)."""
    return (np.asarray(X, dtype=np.float64) - shift) / scale


def _block_moments(X, kind):
    """One block's ``(n, a, b)``: ``kind="standard"``: row count, column means and sums of
    squared deviations from them; ``"minmax"``: row count, column minima and maxima.  An
    empty block gives ``(0, None, None)`` (dask's own reductions gave NaN or failed on one:
    an empty file in a glob)."""
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if n == 0:
        return 0, None, None
    if kind == "standard":
        mean = X.mean(axis=0)
        return n, mean, ((X - mean) ** 2).sum(axis=0)
    return n, X.min(axis=0), X.max(axis=0)


def _combine_moments(moments, kind, D):
    """All blocks' ``(n, a, b)`` in order -> ``(N, a, b)`` over the whole data.  Means and
    squared deviations merge by Chan, Golub & LeVeque's pairwise update ("Algorithms for
    computing the sample variance", 1983), blocks in their order (deterministic)."""
    N, a, b = 0, np.zeros(D), np.zeros(D)
    if kind != "standard":
        a, b = np.full(D, np.inf), np.full(D, -np.inf)
    for n, a_i, b_i in moments:
        if n == 0:
            continue
        if kind == "standard":
            delta = a_i - a
            a = a + delta * (n / (N + n))
            b = b + b_i + delta**2 * (N * n / (N + n))
        else:
            a, b = np.minimum(a, a_i), np.maximum(b, b_i)
        N += n
    return N, a, b


def _bad_cell(X):
    """``(rows, row, column)`` of the block's first NaN/inf cell (row-major); -1s: none."""
    X = np.asarray(X)
    n = X.shape[0]
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(X.astype(np.float64, copy=False))
    if not bad.any():
        return n, -1, -1
    row, col = np.argwhere(bad)[0]
    return n, int(row), int(col)


def _check_cells(pattern, checks, columns):
    """DataError naming the first NaN/inf cell by column and 1-based row (``checks``: the
    :func:`_bad_cell` of every partition, in order)."""
    from .data import DataError

    first = 0
    for i, (n, row, col) in enumerate(checks):
        if row >= 0:
            raise DataError(
                f"{pattern}: column {columns[col]!r} is NaN or infinite in row {first + row + 1} "
                f"(partition {i}, its row {row + 1}); clean or impute it before training")
        first += n


def _fit_scaler(X, kind, names, also=()):
    """A fitted scikit-learn scaler from statistics computed on the cluster (one pass).

    ``also``: more dask objects computed in the same pass; their values are returned last.
    """
    from dask import compute, delayed
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    D = X.shape[1]
    tiny = 10 * np.finfo(np.float64).eps  # scikit-learn's rule for a constant column
    moments = [delayed(_block_moments)(block, kind) for block in X.to_delayed().ravel()]
    moments, also = compute(moments, list(also))
    N, a, b = _combine_moments(moments, kind, D)
    if kind == "standard":
        mean, var = a, b / max(N, 1)
        scaler = StandardScaler()
        scaler.mean_, scaler.var_ = mean, var
        scaler.scale_ = np.where(np.sqrt(var) < tiny, 1.0, np.sqrt(var))
        shift, scale = mean, scaler.scale_
    else:
        low, high = a, b
        scaler = MinMaxScaler()
        scaler.data_min_, scaler.data_max_ = low, high
        scaler.data_range_ = high - low
        scaler.scale_ = 1.0 / np.where(scaler.data_range_ < tiny, 1.0, scaler.data_range_)
        scaler.min_ = -low * scaler.scale_
        shift, scale = low, 1.0 / scaler.scale_
    scaler.n_samples_seen_ = int(N)
    scaler.n_features_in_ = int(D)
    if names is not None:
        scaler.feature_names_in_ = np.asarray(names, dtype=object)
    return scaler, shift, scale, also


def _read_table(pattern):
    """A dask DataFrame of the files matching ``pattern`` (Parquet or CSV, by extension)."""
    _, dd = _dask_modules()
    from fsspec.core import get_fs_token_paths

    from .data import DataError

    if not get_fs_token_paths(str(pattern))[2]:
        raise DataError(f"no files match {pattern}")
    lower = str(pattern).lower()
    if lower.endswith((".parquet", ".pq")) or lower.endswith("/"):
        return dd.read_parquet(pattern)
    if lower.endswith((".csv", ".csv.gz", ".tsv")):
        return dd.read_csv(pattern, sep="\t" if lower.endswith(".tsv") else ",")
    raise DataError(f"{pattern}: --dask reads Parquet (.parquet, .pq, a directory/) or CSV "
                    f"(.csv, .tsv) files; cannot tell this one's format from its name")


CONNECT_TIMEOUT = 10  # seconds to reach a scheduler given by address


def _connect(address, stack):
    """A Client of the scheduler at ``address``, closed by ``stack``; user errors up front.

    The address is checked and the port tried before a Client is made: a Client whose
    connection failed half-way waits a minute in its ``__del__`` and prints a traceback.

    Raises
    ------
    ValueError
        Not an address (e.g. no port).
    ConnectionError
        Nothing answers there (an OSError: the CLI prints it as one ``error:`` line).
    """
    import socket

    from distributed import Client
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    try:
        scheme, location = parse_address(str(address))
        if scheme in ("tcp", "tls"):
            host, port = parse_host_port(location)
    except ValueError as exc:
        raise ValueError(f"--dask {address!r} is not a scheduler address ({exc}); give "
                         f"tcp://HOST:PORT or local:N") from None
    if scheme in ("tcp", "tls"):
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
        except OSError as exc:
            raise ConnectionError(exc.errno, f"cannot reach the Dask scheduler "
                                  f"({exc.strerror or exc or type(exc).__name__})",
                                  str(address)) from None
    try:
        client = Client(address, set_as_default=False, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(None, f"cannot connect to a Dask scheduler ({exc})",
                              str(address)) from None
    return stack.enter_context(client)


def train_from_files(pattern, *, target, address=None, scale="standard", out=None, **params):
    """Train on tables read by the workers themselves, so the data never passes the client.

    Parameters
    ----------
    pattern : str
        Parquet or CSV file(s), e.g. ``"data/part-*.parquet"`` (anything
        ``dask.dataframe.read_parquet``/``read_csv`` accepts; every worker must see the path).
    target : str
        The label column; every other column is a feature and must be numeric.
    address : str or None
        ``"tcp://HOST:8786"`` (a running scheduler), ``"local:N"`` (a ``LocalCluster`` of N
        worker processes for this call) or None (the current client).
    scale : {"standard", "minmax", "none"}
        Feature scaling, fitted on the cluster in one pass; the result is then a
        ``Pipeline(scaler, ReluNetClassifier)`` like the CLI's single-machine one.
    out : path or None
        Save the model here (:func:`relunet.save`) as soon as it is trained, before the
        training accuracy is computed: a failure after training never loses the model.
    **params
        :class:`~relunet.ReluNetClassifier` parameters.

    Returns
    -------
    model : ReluNetClassifier or sklearn.pipeline.Pipeline
        The local model (for ``relunet.save``).
    info : dict
        ``n_rows``, ``n_features``, ``n_partitions``, ``n_workers``, ``train_accuracy``,
        ``train_loss``, ``epochs``, ``stop_reason``, ``fit_seconds``.

    Raises
    ------
    relunet.data.DataError
        No file matches, unknown file type, no column ``target``, a text (non-numeric)
        feature column, a NaN/inf feature or a missing label (naming column and row).
    ValueError
        A malformed ``address``.
    ConnectionError
        No scheduler answers at ``address``.
    """
    require("distributed", "dask", "relunet train --dask")
    from contextlib import ExitStack

    from distributed import Client, LocalCluster

    from .data import DataError

    with ExitStack() as stack:
        if address is None:
            client = DaskReluNetClassifier()._get_client()
        elif str(address).startswith("local:"):
            n = str(address)[len("local:"):]
            if not n.isdigit() or int(n) < 1:
                raise ValueError(f"--dask local:N needs a number of workers >= 1, got {address!r}")
            cluster = stack.enter_context(LocalCluster(
                n_workers=int(n), threads_per_worker=1, processes=True, dashboard_address=":0"))
            client = stack.enter_context(Client(cluster, set_as_default=False))
        else:
            client = _connect(address, stack)

        table = _read_table(pattern)
        if target not in table.columns:
            raise DataError(f"{pattern}: no column {target!r}; the columns are "
                            f"{_show(list(table.columns), limit=20)}")
        features = table.drop(columns=[target])
        try:
            _check_numeric(features, "feature")
        except TypeError as exc:
            raise DataError(f"{pattern}: {exc}") from None
        X, y, _, names = _frames_as_rows(features, table[target], None)
        columns = [str(c) for c in features.columns]
        # NaN/inf by column and row, on the raw values (the scaled ones would all be NaN),
        # in the same pass over the files as the scaler's statistics
        from dask import compute, delayed

        checks = [delayed(_bad_cell)(b) for b in X.to_delayed().ravel()]
        scaler = None
        if scale != "none":
            scaler, shift, sc, checks = _fit_scaler(X, scale, names, also=checks)
        else:
            checks = compute(checks)[0]
        _check_cells(pattern, checks, columns)
        if scaler is not None:
            X = X.map_blocks(_standardize_block, shift, sc, dtype=np.float64)
        net = DaskReluNetClassifier(**params, client=client)
        try:
            net.fit(X, y)
        except _MissingLabel as exc:
            raise DataError(f"{pattern}: column {target!r} has no value (null/NaN) in "
                            f"{exc.where}; every row needs a label") from None
        local = net.to_local()
        if names is not None and scaler is None:
            local.feature_names_in_ = np.asarray(names, dtype=object)
        if scaler is not None:
            from sklearn.pipeline import Pipeline

            model = Pipeline([("scale", scaler), ("net", local)])
        else:
            model = local
        if out is not None:  # first: the report below must not lose the trained model
            from .io import save

            save(model, out)
        accuracy = float((net.predict(X) == y).mean().compute())
        info = {
            "n_rows": int(net._n_rows), "n_features": int(X.shape[1]),
            "n_partitions": int(X.numblocks[0]),
            "n_workers": len(client.scheduler_info()["workers"]),
            "train_accuracy": accuracy, "train_loss": float(net.loss_curve_[-1]),
            "epochs": int(net.n_iter_), "stop_reason": net.stop_reason_,
            "fit_seconds": float(net.fit_seconds_),
        }
    return model, info


_NOT_WITH_DASK = ("labels", "dataset", "test_data", "test_labels", "plots", "ids", "drop",
                  "sep", "decimal", "class_weight")


def run_cli(args):
    """``relunet train DATA --dask ADDRESS``: the CLI's flags mapped onto :func:`train_from_files`.

    Trains on every row of DATA (no held-out split: evaluate on other files with
    ``relunet evaluate``); writes ``--out`` in the usual model-file format.
    """
    import json

    from .data import atomic_path

    flag = {"ids": "--id"}
    used = [flag.get(name, f"--{name.replace('_', '-')}") for name in _NOT_WITH_DASK
            if getattr(args, name, None)]
    if getattr(args, "early_stopping", False):
        used.append("--early-stopping")
    if used:
        raise ValueError(f"--dask does not support {', '.join(used)}")
    if not args.data or not args.target:
        raise ValueError("--dask needs DATA (a file pattern) and --target COLUMN")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter: the stop reason says it
        model, info = train_from_files(
            args.data, target=args.target, address=args.dask, scale=args.scale,
            hidden_units=args.hidden, max_iter=args.epochs, batch_size=args.batch_size,
            learning_rate_init=args.learning_rate, learning_rate=args.schedule,
            momentum=args.momentum, alpha=args.alpha, solver=args.solver, dtype=args.dtype,
            random_state=args.seed, out=args.out,
        )
    if not args.quiet:
        print(f"{args.data}: {info['n_rows']} rows, {info['n_features']} features, "
              f"{info['n_partitions']} partitions on {info['n_workers']} Dask workers")
        print(f"training accuracy {info['train_accuracy']:.4f}, loss {info['train_loss']:.4f} "
              f"after {info['epochs']} epochs ({info['stop_reason']}), "
              f"{info['fit_seconds']:.1f}s")
    if args.out is not None and not args.quiet:  # saved by train_from_files, right after training
        print(f"model saved to {args.out}")
    if args.metrics is not None:
        with atomic_path(args.metrics) as tmp, open(tmp, "w") as f:
            json.dump({"data": args.data, **info}, f, indent=2)
    return 0
