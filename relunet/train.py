"""The training loop: batches, epochs, stopping rules, history and a per-epoch callback.

:class:`Trainer` owns the weights being trained, the optimizer state and one
:class:`~relunet.fastpath.Workspace`; ``fit`` runs epochs until a stopping rule fires,
``partial_fit`` runs exactly one.  :func:`train` is the one-call functional version.

Solvers: ``"gd"`` (the note's full-batch steepest descent), ``"sgd"`` (mini-batch, momentum,
optional Nesterov), ``"adam"`` and ``"lbfgs"`` (SciPy's L-BFGS-B on the full-batch loss,
one "epoch" per L-BFGS iteration).
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from dataclasses import dataclass, field, fields

import numpy as np

from .fastpath import Workspace
from .network import Params, as_generator, check_class_indices, forward, init_params, log_softmax
from .optim import SCHEDULES, SOLVERS, make_optimizer, make_schedule

__all__ = ["TrainConfig", "EpochInfo", "Progress", "History", "Trainer", "TrainingDiverged",
           "DivergenceWarning", "apply_stopping_rules", "auto_batch_size", "blew_up",
           "check_growth", "check_input_range", "evaluate", "train", "warn_if_diverged"]

# An epoch is run in slices of about this many flops (6·D·H per example: the forward and the
# backward GEMM, and the update), so that a slow epoch still reports progress a few times a
# second.  The slices are whole batches fixed by the shapes alone, never by the clock: the
# same seed still gives the same weights (tests hold an epoch in slices to the epoch in one).
FLOPS_PER_SLICE = 5e9
# A training loss this many times log K (the loss of guessing every class equally likely)
# means the network is far worse than guessing: diverged, or oscillating wildly.
CHANCE_FACTOR = 10.0
# An epoch whose training loss (without the penalty) is this many times the larger of the
# first epoch's and log K has diverged ("loss up by orders of magnitude"): fit stops there.
DIVERGED_FACTOR = 1e3


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite, or the optimizer's state overflowed; the weights were
    left as they were before the epoch in which it happened."""


class DivergenceWarning(RuntimeWarning):
    """Training ran to its end, but its loss says it diverged or oscillates (see
    :data:`CHANCE_FACTOR`); the message names the cause and the fix."""


def _fix(lr):
    return (f"try a smaller learning rate (it was {lr:g}; e.g. {lr / 10:g}) or scale the "
            f"inputs (e.g. StandardScaler; `relunet train` does unless --scale none)")


def check_input_range(X, dtype, feature_names=None, *, what="training dtype", n_terms=1):
    """Refuse inputs whose squares overflow ``dtype`` (ValueError naming the column).

    A square of an input enters every gradient of ``W1`` and Adam's squared-gradient average;
    once it is infinite every step is zero or NaN.  Float32 holds squares of values up to
    ~1.8e19, float64 up to ~1.3e154.

    Parameters
    ----------
    X : float array of shape (N, D)
    dtype : float dtype whose range applies
    feature_names : sequence of str, optional
        Names of the columns, for the message.
    what : str
        What uses ``dtype``, for the message.
    n_terms : int
        The squares are summed over this many rows (a scaler's variance): the limit is
        ``sqrt(max / n_terms)``.

    Raises
    ------
    ValueError
        Naming the first column (and its 1-based position) with such a value.
    """
    X = np.asarray(X)
    if X.ndim != 2 or X.size == 0 or X.dtype.kind not in "fiu":
        return
    limit = math.sqrt(float(np.finfo(dtype).max) / max(int(n_terms), 1))
    with np.errstate(invalid="ignore"):
        big = np.maximum(X.max(axis=0), -X.min(axis=0)).astype(np.float64)
    bad = np.flatnonzero(big > limit)  # (NaN compares False: NaN has its own message)
    if bad.size:
        j = int(bad[0])
        value = X[:, j].max() if X[:, j].max() > limit else X[:, j].min()
        name = (f"column {feature_names[j]!r} (column {j + 1})" if feature_names is not None
                else f"column {j + 1}")
        more = f" (and {bad.size - 1} more columns)" if bad.size > 1 else ""
        raise ValueError(
            f"{name}{more} holds {float(value):.3g}, whose square"
            f"{'' if n_terms <= 1 else f' summed over {n_terms} rows'} overflows "
            f"{np.dtype(dtype).name} (the {what}; its largest number is "
            f"{float(np.finfo(dtype).max):.3g}): training could not compute finite gradients. "
            f"Scale the inputs (e.g. StandardScaler) or express that column in larger units"
        )


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a fit (scikit-learn's names where the idea is the same).

    ``batch_size=None`` means :func:`auto_batch_size`; ``"gd"`` and ``"lbfgs"`` always use
    the full batch.  ``tol`` and ``n_iter_no_change`` watch the training loss, which stalls
    when it has not fallen by ``tol · max(1, |best loss|)`` (relative above 1, so the rule
    works at any loss scale), or, when ``early_stopping`` holds out a stratified
    ``validation_fraction``, the validation *accuracy*, which stalls when it has not risen by
    ``tol`` (scikit-learn's MLP monitors the validation score too: the loss often rises while
    the accuracy still improves).  The weights of the best validation accuracy are restored
    at the end.
    """

    solver: str = "adam"
    alpha: float = 1e-4
    batch_size: int | None = None
    learning_rate: str = "constant"
    learning_rate_init: float = 1e-3
    power_t: float = 0.5
    momentum: float = 0.9
    nesterovs_momentum: bool = True
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    max_iter: int = 200
    tol: float = 1e-4
    n_iter_no_change: int = 10
    early_stopping: bool = False
    validation_fraction: float = 0.1
    shuffle: bool = True
    max_fun: int = 15000

    def __post_init__(self):
        def need(ok, name, what):
            if not ok:
                raise ValueError(f"{name} must be {what}, got {getattr(self, name)!r}")

        def real(name, low, high=math.inf, low_open=False, high_open=False):
            v = getattr(self, name)
            ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
            ok = ok and (v > low if low_open else v >= low)
            ok = ok and (v < high if high_open else v <= high)
            lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
            need(ok, name, f"a finite number in {lo}{low}, {high}{hi}")

        def integer(name, low):
            v = getattr(self, name)
            ok = isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= low
            need(ok, name, f"an integer >= {low}")

        need(self.solver in SOLVERS, "solver", f"one of {', '.join(map(repr, SOLVERS))}")
        need(self.learning_rate in SCHEDULES, "learning_rate",
             f"one of {', '.join(map(repr, SCHEDULES))}")
        real("alpha", 0)
        real("learning_rate_init", 0, low_open=True)
        real("power_t", 0)
        real("momentum", 0, 1)
        real("beta_1", 0, 1, high_open=True)
        real("beta_2", 0, 1, high_open=True)
        real("epsilon", 0, low_open=True)
        real("tol", 0)
        real("validation_fraction", 0, 1, low_open=True, high_open=True)
        integer("max_iter", 1)
        integer("n_iter_no_change", 1)
        integer("max_fun", 1)
        if self.batch_size is not None:
            integer("batch_size", 1)
        for name in ("nesterovs_momentum", "early_stopping", "shuffle"):
            need(isinstance(getattr(self, name), bool | np.bool_), name, "True or False")

    @classmethod
    def names(cls):
        """The names of all hyper-parameters."""
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class EpochInfo:
    """What one epoch did; passed to the callback and kept in :class:`History`."""

    epoch: int  # 1-based
    train_loss: float  # mean data loss over the epoch's batches + α/2 Σ w² at its start
    learning_rate: float
    seconds: float
    val_loss: float | None = None
    val_accuracy: float | None = None
    # fraction of the epoch's examples whose true class had the top score in their batch (as
    # the weights were then: a running accuracy, free from the scores the batches computed)
    train_accuracy: float | None = None
    complete: bool = True  # False: interrupted part-way (the weights are those at the stop)


@dataclass(frozen=True)
class Progress:
    """Where an epoch is, passed to ``progress`` callbacks after each slice of it.

    ``train_loss`` and ``train_accuracy`` are running values over the epoch's batches so far
    (as in :class:`EpochInfo`).  ``params`` are the live weights: read them, never write them.
    """

    epoch: int  # 1-based, the epoch under way
    rows_done: int
    rows_total: int
    train_loss: float
    train_accuracy: float
    seconds: float  # since the epoch started
    params: Params


@dataclass
class History:
    """Per-epoch records of a fit, oldest first."""

    epochs: list = field(default_factory=list)

    def __len__(self):
        return len(self.epochs)

    @property
    def train_loss(self):
        return [e.train_loss for e in self.epochs]

    @property
    def val_loss(self):
        return [e.val_loss for e in self.epochs if e.val_loss is not None]

    @property
    def val_accuracy(self):
        return [e.val_accuracy for e in self.epochs if e.val_accuracy is not None]

    @property
    def train_accuracy(self):
        return [e.train_accuracy for e in self.epochs if e.train_accuracy is not None]

    def as_dicts(self):
        """The records as plain dicts (JSON-ready)."""
        return [dict(vars(e)) for e in self.epochs]


def auto_batch_size(n):
    """The default mini-batch size for ``n`` examples: ``min(128, max(32, ceil(n / 50)))``.

    128 on large data (Fashion-MNIST: the batch of the measured recipe, Adam 1e-3 + cosine,
    test accuracy 0.898 at H=256 in 30 epochs); 32 on small tables, so that they still get
    at least ~50 steps per epoch (scikit-learn's ``min(200, n)`` gives iris one step per epoch:
    with a cosine schedule over 200 epochs that under-fits, 0.83 against 0.95).  Measured
    in README ("Defaults").
    """
    return min(128, max(32, math.ceil(n / 50)))


def stratified_split(y, fraction, rng):
    """Indices ``(train, val)`` holding out ``fraction`` of each class (at least one each).

    Parameters
    ----------
    y : int array of shape (N,)
    fraction : float in (0, 1)
    rng : numpy.random.Generator

    Returns
    -------
    train, val : sorted int arrays
    """
    val = []
    for k in np.unique(y):
        members = np.flatnonzero(y == k)
        n_val = int(round(fraction * members.size))
        n_val = min(max(n_val, 1), members.size - 1)
        if n_val > 0:
            val.append(rng.choice(members, size=n_val, replace=False))
    val = np.sort(np.concatenate(val)) if val else np.empty(0, np.intp)
    train = np.setdiff1d(np.arange(y.shape[0]), val, assume_unique=True)
    if val.size == 0 or train.size == 0:
        raise ValueError(
            f"early_stopping needs at least 2 examples of some class to hold out "
            f"validation_fraction={fraction}; got {y.shape[0]} examples"
        )
    return train, val


def _copy(params):
    return Params(*(W.copy() for W in params))


def _all_finite(X, chunk=4096):
    """Whether ``X`` holds no NaN or inf, without an X-sized temporary.

    ``np.isfinite(X).all()`` allocates a boolean array as large as X (45 MiB for MNIST).  A
    float64 sum is finite exactly when every entry is, unless finite entries overflow it
    (possible for float64 data only); then the rows are checked in chunks.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # inf - inf, or an overflowing sum
        if np.isfinite(np.sum(X, dtype=np.float64)):
            return True
    return all(np.isfinite(X[i : i + chunk]).all() for i in range(0, X.shape[0], chunk))


def evaluate(params, X, y, sample_weight=None, chunk=4096):
    """Mean data loss and accuracy of ``params`` on ``(X, y)`` (weighted by ``sample_weight``,
    as the training loss is), in chunks (bounded memory).

    Parameters
    ----------
    params : Params
    X : array of shape (N, D)
    y : int array of shape (N,), class indices
    sample_weight : array of shape (N,), optional

    Returns
    -------
    (loss, accuracy) : (float, float)
    """
    total = correct = 0.0
    for start in range(0, X.shape[0], chunk):
        f, _ = forward(params, X[start : start + chunk])
        yc = y[start : start + chunk]
        L = -np.take_along_axis(log_softmax(f), yc[:, None], axis=1)[:, 0]  # L_i
        hit = f.argmax(axis=1) == yc
        if sample_weight is None:
            total += float(np.sum(L, dtype=np.float64))
            correct += int(np.sum(hit))
        else:
            w = sample_weight[start : start + chunk]
            total += float(np.dot(w, L.astype(np.float64)))
            correct += float(np.sum(w[hit]))
    norm = X.shape[0] if sample_weight is None else float(np.sum(sample_weight))
    return total / norm, correct / norm


_evaluate = evaluate


def apply_stopping_rules(trainer, info, snapshot):
    """The stopping rules, shared by :class:`Trainer` and :class:`relunet.arrayapi.ArrayTrainer`.

    Without validation data the training loss must fall by ``tol`` (relative once above 1,
    so the rule works at any loss scale); with it, the validation *accuracy* must rise by
    ``tol`` (scikit-learn's rule), and the best validated weights are kept (``snapshot()``
    copies them).  ``n_iter_no_change`` epochs in a row without improvement stop training,
    unless the schedule lowers the rate instead (``adaptive``).  Updates ``trainer``'s
    ``best_loss``, ``best_score``, ``best_epoch``, ``_best_params``, ``_stall`` and
    ``stop_reason``; returns whether to stop.
    """
    cfg = trainer.config
    loss, val_loss, val_acc = info.train_loss, info.val_loss, info.val_accuracy
    validated = val_acc is not None
    if not validated:  # the training loss must fall by tol, relative once above 1
        stalled = loss > trainer.best_loss - cfg.tol * max(1.0, abs(trainer.best_loss)) \
            if math.isfinite(trainer.best_loss) else False
        trainer.best_loss = min(trainer.best_loss, loss)
    else:  # the validation accuracy must rise by tol (scikit-learn's rule)
        best = -math.inf if trainer.best_score is None else trainer.best_score
        stalled = val_acc < best + cfg.tol
        trainer.best_loss = min(trainer.best_loss, val_loss)
        if val_acc > best:
            trainer.best_score, trainer.best_epoch = val_acc, trainer.n_epochs
            trainer._best_params = snapshot()
    trainer._stall = trainer._stall + 1 if stalled else 0
    stop = False
    if trainer._stall >= cfg.n_iter_no_change:
        trainer._stall = 0
        if not trainer.schedule.plateau():
            trainer.stop_reason = (
                f"validation accuracy did not improve by tol={cfg.tol} for "
                f"{cfg.n_iter_no_change} epochs" if validated else
                f"training loss did not improve by tol={cfg.tol} (relative above 1) for "
                f"{cfg.n_iter_no_change} epochs"
            )
            stop = True
    return stop


def blew_up(loss, learning_rate_init):
    """The TrainingDiverged for a non-finite training ``loss`` (cause and fix named)."""
    return TrainingDiverged(f"the loss became {loss} (the weights blew up: each step "
                            f"overshot further than the last); {_fix(learning_rate_init)}")


def warn_if_diverged(trainer, n_classes, stacklevel=3):
    """DivergenceWarning when training ended far worse than guessing.

    The last epoch's training loss without the penalty (``trainer._reg()``) above
    :data:`CHANCE_FACTOR` times log K, the loss of guessing every class equally likely, and
    no validated best epoch.  Shared by :class:`Trainer` and
    :class:`relunet.arrayapi.ArrayTrainer` (``history``, ``best_epoch``, ``config``).
    """
    if not trainer.history.epochs:
        return
    last = trainer.history.epochs[-1]
    chance = math.log(max(n_classes, 2))
    data_loss = last.train_loss - trainer._reg()  # a strong L2 penalty is no divergence
    if trainer.best_epoch is None and data_loss > CHANCE_FACTOR * chance:
        warnings.warn(
            f"training diverged or oscillates: the training loss ended at "
            f"{data_loss:.4g}, more than {CHANCE_FACTOR:g}x log K = {chance:.3g} (the "
            f"loss of guessing every class equally likely); "
            f"{_fix(trainer.config.learning_rate_init)}",
            DivergenceWarning, stacklevel=stacklevel,
        )


def check_growth(trainer, loss, n_classes, starting_loss):
    """TrainingDiverged when an epoch's training ``loss`` is more than
    :data:`DIVERGED_FACTOR` times the larger of log K (the loss of guessing) and the first
    epoch's loss -- in the first epoch, ``starting_loss()``, the loss of the weights it
    started from (computed only then).  Shared by :class:`Trainer` and
    :class:`relunet.arrayapi.ArrayTrainer`."""
    chance = math.log(max(n_classes, 2))
    if loss <= DIVERGED_FACTOR * chance:
        return
    if trainer.history.epochs:
        start, what = trainer.history.epochs[0].train_loss, "first epoch's"
    else:  # a huge loss from the start (unscaled inputs) is no divergence
        start, what = float(starting_loss()), "starting"
    reference = max(start, chance)
    if loss > DIVERGED_FACTOR * reference:
        raise TrainingDiverged(
            f"the training loss rose to {loss:.4g}, more than {DIVERGED_FACTOR:g}x "
            f"the {what} loss or log K ({reference:.3g}); the weights from before this "
            f"epoch are kept; {_fix(trainer.config.learning_rate_init)}")


class Trainer:
    """Trains one network; keeps its weights, optimizer state and history between calls.

    Parameters
    ----------
    params : Params or tuple (W1, W2)
        Starting weights, (D+1, H) and (H+1, K).  They are copied (and cast to ``dtype``):
        the caller's arrays are never modified.
    config : TrainConfig, optional
    rng : numpy.random.Generator or int, optional
        Drives shuffling and the validation split: the same seed gives the same weights.
    dtype : float dtype, optional
        Training precision; defaults to the dtype of ``params``.

    Attributes
    ----------
    params : Params
        The current weights.
    history : History
    n_epochs : int
    n_samples_seen : int
        Training examples processed so far (scikit-learn's ``t_``).
    best_loss : float
        The lowest training loss of the last ``fit`` (validation loss when early stopping).
    best_score : float or None
        The best validation accuracy of the last ``fit`` when early stopping, else None.
    best_epoch : int or None
        The epoch (1-based, of this trainer) whose weights early stopping restored.
    interrupted : bool
        The last ``fit`` was stopped by Ctrl-C (KeyboardInterrupt) or by a ``progress``
        callback returning True; it kept the weights reached (see :meth:`fit`).
    stop_reason : str
    """

    def __init__(self, params, config=None, *, rng=None, dtype=None):
        self.config = config if config is not None else TrainConfig()
        self.rng = as_generator(rng)
        self.dtype = np.dtype(dtype if dtype is not None else params[0].dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.params = Params(*(np.array(W, dtype=self.dtype, order="C") for W in params))
        if self.params.W1.shape[1] + 1 != self.params.W2.shape[0]:
            raise ValueError("W1 must be (D+1, H) and W2 (H+1, K)")
        cfg = self.config
        self.optimizer = None
        if cfg.solver != "lbfgs":
            self.optimizer = make_optimizer(
                cfg.solver, self.params, momentum=cfg.momentum, nesterov=cfg.nesterovs_momentum,
                beta_1=cfg.beta_1, beta_2=cfg.beta_2, epsilon=cfg.epsilon,
            )
        self.schedule = make_schedule(
            cfg.learning_rate, cfg.learning_rate_init, n_epochs=cfg.max_iter, power_t=cfg.power_t
        )
        self.history = History()
        self.n_epochs = 0
        self.n_samples_seen = 0
        self.best_loss = math.inf
        self.best_score = self.best_epoch = None
        self.interrupted = False
        self.stop_reason = ""
        self._stall = 0  # epochs in a row without improvement by tol
        self._best_params = None  # best weights on the validation set (early stopping)
        self._workspace = None

    # ------------------------------------------------------------------ data plumbing
    @property
    def shape(self):
        """(D, H, K)."""
        return self.params.W1.shape[0] - 1, self.params.W1.shape[1], self.params.W2.shape[1]

    def _prepare(self, X, y, sample_weight):
        D, _, K = self.shape
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != D:
            raise ValueError(f"X must have shape (N, {D}), got {X.shape}")
        X = np.ascontiguousarray(X, dtype=self.dtype)  # the one copy, if any
        if not _all_finite(X):
            raise ValueError("X contains NaN or infinity; clean or impute it before training")
        check_input_range(X, self.dtype)
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
        if X.shape[0] == 0:
            raise ValueError("cannot train on 0 examples")
        check_class_indices(y, K)
        y = y.astype(np.intp, copy=False)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
            if sample_weight.shape != y.shape:
                raise ValueError(f"sample_weight must have shape {y.shape}")
            if not (np.isfinite(sample_weight).all() and (sample_weight >= 0).all()):
                raise ValueError("sample_weight must be finite and non-negative")
            keep = sample_weight > 0
            if not keep.any():
                raise ValueError("sample_weight is zero for every example")
            if not keep.all():  # a zero weight is a missing row (and no batch is all zeros)
                X, y, sample_weight = X[keep], y[keep], sample_weight[keep]
            if (sample_weight == sample_weight[0]).all():  # uniform: the unweighted arithmetic
                sample_weight = None
        return X, y, sample_weight

    def _batch_size(self, n):
        cfg = self.config
        if cfg.solver in ("gd", "lbfgs"):
            return n
        return min(cfg.batch_size if cfg.batch_size is not None else auto_batch_size(n), n)

    def _workspace_for(self, batch_size):
        D, H, K = self.shape
        ws = self._workspace
        if ws is None or ws.batch_size < batch_size:
            ws = self._workspace = Workspace(D, H, K, batch_size, self.dtype)
        return ws

    def __getstate__(self):  # buffers are scratch: do not pickle them
        state = self.__dict__.copy()
        state["_workspace"] = None
        return state

    # ------------------------------------------------------------------ one epoch
    def _reg(self):
        a = self.config.alpha
        if not a:
            return 0.0
        return a / 2 * sum(float(np.vdot(W, W)) for W in self.params)

    def _run_epoch(self, X, y, sw, progress=None):
        """One pass of mini-batch updates over (X, y); returns the epoch's training loss,
        running accuracy and whether ``progress`` asked to stop (then the epoch is partial).

        The batch loop itself is :meth:`relunet.fastpath.Workspace.run_epoch`, run on slices
        of whole batches (:data:`FLOPS_PER_SLICE`) with ``progress`` called after each.
        """
        cfg = self.config
        n = X.shape[0]
        B = self._batch_size(n)
        ws = self._workspace_for(B)
        lr = self.schedule.rate(self.n_epochs)
        reg = self._reg()
        order = self.rng.permutation(n) if cfg.shuffle and B < n else None
        D, H, _ = self.shape
        step = B * max(1, int(FLOPS_PER_SLICE // (6.0 * (D + 1) * H * B)))
        total = weight = hits = 0.0
        t0, stop, done = time.perf_counter(), False, 0
        for start in range(0, n, step):
            end = min(start + step, n)
            if order is not None:
                t, w = ws.run_epoch(self.params, X, y, sw, order[start:end], cfg.alpha,
                                    self.optimizer, lr)
            else:  # in order: the slice's rows are a view, batches too
                t, w = ws.run_epoch(self.params, X[start:end], y[start:end],
                                    None if sw is None else sw[start:end], None, cfg.alpha,
                                    self.optimizer, lr)
            if not math.isfinite(t):
                raise blew_up(t, cfg.learning_rate_init)
            total, weight, hits, done = total + t, weight + w, hits + ws.epoch_hits, end
            self.n_samples_seen += end - start
            if progress is not None and progress(Progress(
                    self.n_epochs + 1, done, n, total / weight + reg, hits / weight,
                    time.perf_counter() - t0, self.params)):
                stop = True
                break
        return total / weight + reg, hits / weight, stop

    def _check_optimizer(self, lr):
        """TrainingDiverged if Adam's squared-gradient average overflowed: from then on every
        step is m/√inf = 0 (or NaN) and the loss can only stand still."""
        v = getattr(self.optimizer, "state", ())[len(self.params):] if self.config.solver == \
            "adam" else ()
        for part in v:
            if not _all_finite(part):
                raise TrainingDiverged(
                    f"Adam's average of squared gradients overflowed {self.dtype.name} (a "
                    f"gradient above ~{math.sqrt(float(np.finfo(self.dtype).max)):.2g}): every "
                    f"step from here on would be zero; {_fix(self.config.learning_rate_init)}"
                )

    # ------------------------------------------------------------------ public API
    def partial_fit(self, X, y, sample_weight=None, *, callback=None):
        """One epoch over ``(X, y)``; no stopping rules, no validation split.

        Returns
        -------
        EpochInfo
        """
        X, y, sw = self._prepare(X, y, sample_weight)
        if self.config.solver == "lbfgs":
            raise ValueError("partial_fit needs an incremental solver: 'gd', 'sgd' or 'adam'")
        return self._epoch(X, y, sw, None, callback, None)[0]

    def fit(self, X, y, sample_weight=None, *, callback=None, progress=None):
        """Run epochs until ``max_iter`` or a stopping rule; returns ``self``.

        Parameters
        ----------
        X : array of shape (N, D)
        y : int array of shape (N,)
            Class indices in ``0 .. K-1``.
        sample_weight : array of shape (N,), optional
        callback : callable, optional
            ``callback(info: EpochInfo)`` after every epoch; returning True stops training.
        progress : callable, optional
            ``progress(p: Progress)`` within epochs, after each slice of whole batches (a
            few times a second on large data; once per epoch on small); returning True
            stops training after that slice (``interrupted``, the epoch recorded as partial).

        Ctrl-C (KeyboardInterrupt) during an epoch stops training too, as scikit-learn's
        MLP does: the weights of the last complete epoch are kept (the interrupted epoch is
        undone), ``stop_reason`` is ``"interrupted"``, ``interrupted`` is True, and ``fit``
        returns normally.

        Raises
        ------
        TrainingDiverged
            The loss became NaN/inf, or Adam's state overflowed; ``params`` are left at
            their values before that epoch.  The message names the cause and the fix.

        Warns
        -----
        DivergenceWarning
            The final training loss is more than :data:`CHANCE_FACTOR` times log K, the
            loss of guessing (weights blown up but still finite).
        """
        cfg = self.config
        X, y, sw = self._prepare(X, y, sample_weight)
        val = None
        if cfg.early_stopping:
            tr, va = stratified_split(y, cfg.validation_fraction, self.rng)
            val = (X[va], y[va], None if sw is None else sw[va])
            X, y = X[tr], y[tr]
            sw = None if sw is None else sw[tr]
        self.stop_reason = "max_iter"
        self._best_params = None
        self._stall = 0
        self.best_loss = math.inf  # this fit's best: early stopping restores this fit's weights
        self.best_score = self.best_epoch = None
        self.interrupted = False
        try:
            if cfg.solver == "lbfgs":
                self._fit_lbfgs(X, y, sw, val, callback)
            else:
                for _ in range(cfg.max_iter):
                    info, stop = self._epoch(X, y, sw, val, callback, progress)
                    if stop:
                        break
        except KeyboardInterrupt:  # the epoch under way was undone (_epoch, _fit_lbfgs)
            self.interrupted, self.stop_reason = True, "interrupted"
        if self._best_params is not None:  # early stopping: keep the best validated weights
            for W, best in zip(self.params, self._best_params, strict=True):
                W[...] = best
        self._best_params = None
        warn_if_diverged(self, self.shape[2])
        return self

    # ------------------------------------------------------------------ bookkeeping
    def _epoch(self, X, y, sw, val, callback, progress):
        t0 = time.perf_counter()
        snapshot = _copy(self.params), [s.copy() for s in self.optimizer.state]
        steps_taken = getattr(self.optimizer, "t", None)  # Adam's step count, outside .state
        seen = self.n_samples_seen
        lr = self.schedule.rate(self.n_epochs)

        def undo():
            for W, old in zip(self.params, snapshot[0], strict=True):
                W[...] = old
            for s, old in zip(self.optimizer.state, snapshot[1], strict=True):
                s[...] = old
            if steps_taken is not None:
                self.optimizer.t = steps_taken
            self.n_samples_seen = seen

        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                loss, accuracy, stopped = self._run_epoch(X, y, sw, progress)
            if not math.isfinite(loss):
                raise blew_up(loss, self.config.learning_rate_init)
            self._check_optimizer(lr)
            check_growth(self, loss, self.shape[2], lambda: _evaluate(snapshot[0], X, y, sw)[0])
        except TrainingDiverged as exc:
            undo()
            raise TrainingDiverged(f"training diverged in epoch {self.n_epochs + 1}: {exc}") \
                from None
        except KeyboardInterrupt:
            undo()
            raise
        info, stop = self._end_epoch(loss, lr, time.perf_counter() - t0, val, callback,
                                     accuracy, complete=not stopped)
        if stopped:
            self.interrupted, self.stop_reason = True, "interrupted"
        return info, stop or stopped

    def _end_epoch(self, loss, lr, seconds, val, callback, accuracy=None, complete=True):
        """Record the epoch, apply the stopping rules; returns ``(info, stop)``."""
        self.n_epochs += 1
        val_loss = val_acc = None
        if val is not None:
            val_loss, val_acc = _evaluate(self.params, *val)
            val_loss += self._reg()
        info = EpochInfo(self.n_epochs, loss, lr, seconds, val_loss, val_acc, accuracy, complete)
        self.history.epochs.append(info)

        stop = apply_stopping_rules(self, info, lambda: _copy(self.params))
        if callback is not None and callback(info):
            self.stop_reason, stop = "stopped by callback", True
        return info, stop

    def _fit_lbfgs(self, X, y, sw, val, callback):
        from scipy.optimize import minimize

        cfg = self.config
        ws = self._workspace_for(X.shape[0])
        sizes = [W.size for W in self.params]
        state = {"loss": None, "t": time.perf_counter()}

        def unpack(theta):
            W1 = theta[: sizes[0]].reshape(self.params.W1.shape)
            W2 = theta[sizes[0] :].reshape(self.params.W2.shape)
            return W1, W2

        def fun(theta):
            for W, src in zip(self.params, unpack(theta), strict=True):
                W[...] = src
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                L = ws.loss_and_grads(self.params, X, y, cfg.alpha, sw) + self._reg()
            if not math.isfinite(L):
                raise TrainingDiverged(f"loss became {L}")
            grad = np.concatenate([g.ravel() for g in ws.grads]).astype(np.float64)
            state["loss"] = L
            return L, grad

        def on_iteration(intermediate_result):
            for W, src in zip(self.params, unpack(intermediate_result.x), strict=True):
                W[...] = src
            state["last"] = _copy(self.params)
            now = time.perf_counter()
            _, stop = self._end_epoch(
                float(intermediate_result.fun), cfg.learning_rate_init, now - state["t"], val,
                callback,
            )
            state["t"] = now
            if stop:
                raise StopIteration

        theta0 = np.concatenate([W.ravel() for W in self.params]).astype(np.float64)
        start = _copy(self.params)
        state["last"] = start
        try:
            result = minimize(
                fun, theta0, jac=True, method="L-BFGS-B", callback=on_iteration,
                options={"maxiter": cfg.max_iter, "maxfun": cfg.max_fun, "gtol": cfg.tol},
            )
        except TrainingDiverged as exc:
            for W, old in zip(self.params, start, strict=True):
                W[...] = old
            raise TrainingDiverged(
                f"L-BFGS diverged: {exc}; scale the inputs (e.g. StandardScaler)") from None
        except KeyboardInterrupt:  # back to the last accepted iterate
            for W, old in zip(self.params, state["last"], strict=True):
                W[...] = old
            raise
        if self.stop_reason == "max_iter" and result.status != 1:
            self.stop_reason = f"L-BFGS: {result.message}"
        for W, src in zip(self.params, unpack(result.x), strict=True):
            W[...] = src
        self.n_samples_seen += X.shape[0] * max(self.n_epochs, 1)


def train(X, y, n_hidden=100, *, config=None, rng=None, params=None, dtype=None,
          sample_weight=None, callback=None, **hyper):
    """Train the note's network on ``(X, y)`` in one call.

    Parameters
    ----------
    X : array of shape (N, D)
    y : int array of shape (N,)
        Class indices ``0 .. K-1`` (K is ``y.max() + 1`` unless ``params`` says otherwise).
    n_hidden : int
        H, when ``params`` is not given.
    config : TrainConfig, optional
        Hyper-parameters; keyword arguments (``solver="sgd"``, ...) override its fields.
    rng : numpy.random.Generator or int, optional
        Initial weights (when ``params`` is None), shuffling, validation split.
    params : Params, optional
        Starting weights; default :func:`relunet.network.init_params`.
    dtype : float dtype, optional
        Default: ``params``' dtype, else X's if it is float32/float64, else float64.
    sample_weight : array of shape (N,), optional
    callback : callable, optional
        ``callback(info: EpochInfo)`` after each epoch; returning True stops.

    Returns
    -------
    params : Params
        The trained weights.
    history : History
    """
    cfg = config if config is not None else TrainConfig()
    if hyper:
        unknown = set(hyper) - set(TrainConfig.names())
        if unknown:
            raise TypeError(f"unknown hyper-parameter(s): {', '.join(sorted(unknown))}")
        cfg = TrainConfig(**{**{n: getattr(cfg, n) for n in cfg.names()}, **hyper})
    rng = as_generator(rng)
    X = np.asarray(X)
    y = np.asarray(y)
    if params is None:
        if dtype is None:
            dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D, got shape {X.shape}")
        K = int(y.max()) + 1 if y.size else 0
        params = init_params(X.shape[1], n_hidden, max(K, 2), rng=rng, dtype=dtype)
    trainer = Trainer(params, cfg, rng=rng, dtype=dtype)
    trainer.fit(X, y, sample_weight, callback=callback)
    return trainer.params, trainer.history
