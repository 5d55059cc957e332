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
from dataclasses import dataclass, field, fields

import numpy as np

from .fastpath import Workspace
from .network import Params, as_generator, check_class_indices, forward, init_params, log_softmax
from .optim import SCHEDULES, SOLVERS, make_optimizer, make_schedule

__all__ = ["TrainConfig", "EpochInfo", "History", "Trainer", "TrainingDiverged", "train"]


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the weights were left as they were before."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a fit (scikit-learn's names where the idea is the same).

    ``batch_size=None`` means ``min(200, n_samples)``; ``"gd"`` and ``"lbfgs"`` always use
    the full batch.  ``tol`` and ``n_iter_no_change`` watch the training loss, or the
    validation loss when ``early_stopping`` holds out a stratified ``validation_fraction``
    (the best weights on it are restored at the end).
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

    def as_dicts(self):
        """The records as plain dicts (JSON-ready)."""
        return [dict(vars(e)) for e in self.epochs]


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


def _evaluate(params, X, y, sample_weight=None, chunk=4096):
    """Mean data loss and accuracy of ``params`` on ``(X, y)`` (weighted by ``sample_weight``,
    as the training loss is), in chunks (bounded memory)."""
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
        The lowest monitored loss (validation loss when early stopping, else training).
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
        return min(cfg.batch_size if cfg.batch_size is not None else 200, n)

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

    def _run_epoch(self, X, y, sw):
        """One pass of mini-batch updates over (X, y); returns the epoch's training loss.

        The batch loop itself is :meth:`relunet.fastpath.Workspace.run_epoch`.
        """
        cfg = self.config
        n = X.shape[0]
        B = self._batch_size(n)
        ws = self._workspace_for(B)
        lr = self.schedule.rate(self.n_epochs)
        reg = self._reg()
        order = self.rng.permutation(n) if cfg.shuffle and B < n else None
        total, weight = ws.run_epoch(self.params, X, y, sw, order, cfg.alpha, self.optimizer, lr)
        if not math.isfinite(total):
            raise TrainingDiverged(f"loss became {total}")
        self.n_samples_seen += n
        return total / weight + reg

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
        return self._epoch(X, y, sw, None, callback)[0]

    def fit(self, X, y, sample_weight=None, *, callback=None):
        """Run epochs until ``max_iter`` or a stopping rule; returns ``self``.

        Parameters
        ----------
        X : array of shape (N, D)
        y : int array of shape (N,)
            Class indices in ``0 .. K-1``.
        sample_weight : array of shape (N,), optional
        callback : callable, optional
            ``callback(info: EpochInfo)`` after every epoch; returning True stops training.

        Raises
        ------
        TrainingDiverged
            The loss became NaN/inf; ``params`` are left at their values before that epoch.
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
        if cfg.solver == "lbfgs":
            self._fit_lbfgs(X, y, sw, val, callback)
        else:
            for _ in range(cfg.max_iter):
                info, stop = self._epoch(X, y, sw, val, callback)
                if stop:
                    break
        if self._best_params is not None:  # early stopping: keep the best validated weights
            for W, best in zip(self.params, self._best_params, strict=True):
                W[...] = best
        self._best_params = None
        return self

    # ------------------------------------------------------------------ bookkeeping
    def _epoch(self, X, y, sw, val, callback):
        t0 = time.perf_counter()
        snapshot = _copy(self.params), [s.copy() for s in self.optimizer.state]
        steps_taken = getattr(self.optimizer, "t", None)  # Adam's step count, outside .state
        lr = self.schedule.rate(self.n_epochs)
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                loss = self._run_epoch(X, y, sw)
            if not math.isfinite(loss):
                raise TrainingDiverged(f"loss became {loss}")
        except TrainingDiverged as exc:
            for W, old in zip(self.params, snapshot[0], strict=True):
                W[...] = old
            for s, old in zip(self.optimizer.state, snapshot[1], strict=True):
                s[...] = old
            if steps_taken is not None:
                self.optimizer.t = steps_taken
            raise TrainingDiverged(
                f"training diverged in epoch {self.n_epochs + 1}: {exc}; "
                f"try a smaller learning rate (it was {lr:g})"
            ) from None
        return self._end_epoch(loss, lr, time.perf_counter() - t0, val, callback)

    def _end_epoch(self, loss, lr, seconds, val, callback):
        """Record the epoch, apply the stopping rules; returns ``(info, stop)``."""
        cfg = self.config
        self.n_epochs += 1
        val_loss = val_acc = None
        if val is not None:
            val_loss, val_acc = _evaluate(self.params, *val)
            val_loss += self._reg()
        info = EpochInfo(self.n_epochs, loss, lr, seconds, val_loss, val_acc)
        self.history.epochs.append(info)

        monitored = loss if val is None else val_loss
        if monitored > self.best_loss - cfg.tol:
            self._stall += 1
        else:
            self._stall = 0
        if monitored < self.best_loss:
            self.best_loss = monitored
            if val is not None:
                self._best_params = _copy(self.params)
        stop = False
        if self._stall >= cfg.n_iter_no_change:
            self._stall = 0
            if not self.schedule.plateau():
                self.stop_reason = (
                    f"{'validation' if val is not None else 'training'} loss did not improve "
                    f"by tol={cfg.tol} for {cfg.n_iter_no_change} epochs"
                )
                stop = True
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
        try:
            result = minimize(
                fun, theta0, jac=True, method="L-BFGS-B", callback=on_iteration,
                options={"maxiter": cfg.max_iter, "maxfun": cfg.max_fun, "gtol": cfg.tol},
            )
        except TrainingDiverged as exc:
            for W, old in zip(self.params, start, strict=True):
                W[...] = old
            raise TrainingDiverged(f"L-BFGS diverged: {exc}") from None
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
