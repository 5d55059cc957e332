"""Training and prediction on any array-API library (CuPy, PyTorch, ...), on the data's device.

Under ``sklearn.set_config(array_api_dispatch=True)`` (scikit-learn's convention, which needs
the environment variable ``SCIPY_ARRAY_API=1`` before SciPy is imported),
:class:`~relunet.ReluNetClassifier` hands non-NumPy inputs to this module: its fitted weights
then live in X's library and on X's device, and ``predict`` & co. answer there.

* The math is :mod:`relunet.network`'s, which takes its namespace from its inputs; the update
  rules are :mod:`relunet.optim`'s, written here in the array API (:class:`Rule`; tests hold
  the two to the same bits on NumPy).  The compiled CPU loop (:mod:`relunet.fastpath`,
  :mod:`relunet.kernels`) is NumPy-only and not used.
* Every device sees the same numbers: the initial weights come from the NumPy generator
  (:func:`relunet.network.init_params`, then moved once) and so does the batch order (one
  permutation per epoch, moved once per epoch).  Same seed, same fit as NumPy's, to rounding.
* No per-step host/device copies: a step is gathers, products and in-place updates on the
  device; the epoch's loss is summed there and read once per epoch (the stopping rules need
  it), which is also when a non-finite loss is noticed and the epoch rolled back.
* Labels stay where ``y`` was: string labels on the host (NumPy), as scikit-learn keeps them;
  the class indices used for training are moved to X's device once per call.

Solvers ``"gd"``, ``"sgd"`` and ``"adam"``, ``sample_weight``, ``class_weight``,
``early_stopping`` (the split is drawn on the host from the same generator as NumPy's),
``warm_start`` and ``partial_fit`` are supported; ``"lbfgs"`` (SciPy's L-BFGS-B works on
NumPy vectors) is refused with a ValueError.

:func:`to_device` and :func:`to_numpy` move a fitted model (or :class:`~relunet.Params`)
between libraries and devices; :func:`relunet.save` always writes NumPy arrays.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
from sklearn import get_config
from sklearn.utils._array_api import (
    _max_precision_float_dtype,
    check_same_namespace,
    get_namespace_and_device,
    move_to,
)
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, validate_data

from .network import Params, _data_loss_and_grads, _sum_squares, forward, init_params
from .network import log_softmax as _log_softmax
from .network import softmax as _softmax
from .optim import Coefficients, make_schedule
from .train import (
    EpochInfo,
    History,
    TrainingDiverged,
    apply_stopping_rules,
    auto_batch_size,
    blew_up,
    check_growth,
    stratified_split,
    warn_if_diverged,
)

__all__ = ["ArrayTrainer", "Rule", "to_device", "to_numpy", "handles"]

_PREDICT_CHUNK = 8192  # rows per forward pass at prediction time (as the NumPy path)


# ------------------------------------------------------------------------- namespaces


def _is_numpy(a):
    return isinstance(a, np.ndarray | np.generic)


def _is_array(a):
    """An array of some array-API library (NumPy included), not a list or a scalar."""
    return _is_numpy(a) or hasattr(a, "__array_namespace__") or _is_compat_array(a)


def _is_compat_array(a):
    try:
        from sklearn.externals.array_api_compat import is_array_api_obj
    except ImportError:  # pragma: no cover - vendored by every supported scikit-learn
        return False
    return is_array_api_obj(a)


def handles(estimator, X):
    """Whether a call of ``estimator``'s with data ``X`` belongs here rather than in NumPy.

    True when the estimator's fitted weights are not NumPy arrays, or when scikit-learn's
    ``array_api_dispatch`` is on and ``X`` is a non-NumPy array.
    """
    W1 = estimator.__dict__.get("W1_")
    if W1 is not None and not _is_numpy(W1):
        return True
    return bool(get_config()["array_api_dispatch"]) and _is_array(X) and not _is_numpy(X)


def _namespace_of(xp, device):
    """The array-API-compatible namespace of ``xp`` (a module such as ``torch``) and the
    device arrays get there by default (``device=None``)."""
    probe = xp.zeros(1) if device is None else xp.zeros(1, device=device)
    with _dispatch():
        xp_c, _, dev = get_namespace_and_device(probe)
    return xp_c, dev


class _dispatch:
    """``array_api_dispatch=True`` for scikit-learn's helpers, whatever the caller set."""

    def __enter__(self):
        from sklearn import config_context

        self._ctx = config_context(array_api_dispatch=True)
        self._ctx.__enter__()

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def _to_host(a):
    """A NumPy copy of a (small) array of any library: error paths and label bookkeeping."""
    if _is_numpy(a) or not _is_array(a):
        return np.asarray(a)
    with _dispatch():
        return move_to(a, xp=np, device="cpu")


# ------------------------------------------------------------------------- moving models


def to_device(model, xp, device=None):
    """A copy of a fitted model whose arrays live in namespace ``xp`` on ``device``.

    Parameters
    ----------
    model : ReluNetClassifier or Params
        A fitted estimator (its ``W1_``, ``W2_`` and numeric ``classes_`` are moved; string
        labels stay NumPy, as scikit-learn keeps them), or weights ``(W1, W2)``.
    xp : module
        The target library: ``numpy``, ``torch``, ``cupy``, ``array_api_strict``, ... or an
        ``array_api_compat`` namespace.
    device : device or str, optional
        The target device (``"cuda"``, ``torch.device("cuda:1")``, ...); default: ``xp``'s
        default device.

    Returns
    -------
    A new ReluNetClassifier (the argument is not changed; the optimizer state is not
    carried over, so ``partial_fit`` restarts it) or Params.

    Raises
    ------
    ValueError
        float64 weights to a device without float64 (Apple's MPS).

    Notes
    -----
    ``xp.from_dlpack`` is used where it can be (no copy when nothing moves), NumPy
    otherwise: scikit-learn's ``move_to``.
    """
    if xp is np:
        return to_numpy(model)
    xp_c, dev = _namespace_of(xp, device)
    if _max_precision_float_dtype(xp_c, dev) == xp_c.float32:
        W1 = model[0] if isinstance(model, tuple) else model.W1_
        if str(W1.dtype).endswith("float64"):
            raise ValueError(
                f"device {dev!r} has no float64: the model's float64 weights cannot move there; "
                f"train with dtype='float32'"
            )

    def move(a):
        with _dispatch():
            return move_to(a, xp=xp_c, device=dev)

    return _moved(model, move)


def to_numpy(model):
    """A copy of a fitted model (or Params) with NumPy arrays; the model itself if it has
    them already.  See :func:`to_device`."""
    W1 = model[0] if isinstance(model, tuple) else getattr(model, "W1_", None)
    if W1 is None or _is_numpy(W1):
        return model
    return _moved(model, _to_host)


def _moved(model, move):
    if isinstance(model, tuple):
        return Params(*(move(W) for W in model))
    check_is_fitted(model, ("W1_", "W2_", "classes_"))
    new = copy.copy(model)
    new.__dict__.pop("_trainer", None)
    new.W1_, new.W2_ = move(model.W1_), move(model.W2_)
    classes = model.classes_
    if not (_is_numpy(classes) and classes.dtype.kind not in "biuf"):
        new.classes_ = move(classes)  # numbers follow the weights; strings stay NumPy
    return new


# ------------------------------------------------------------------------- update rules


class Rule:
    """:mod:`relunet.optim`'s steepest descent, momentum SGD and Adam in any namespace.

    The same operations in the same order as the rules' NumPy code (their
    ``step(params, grads, lr)``), in place on the parameter and state arrays, so NumPy gives
    the same bits and a GPU array library the same numbers to rounding.

    Parameters
    ----------
    solver : {"gd", "sgd", "adam"}
    params : Params
        Arrays of the namespace; the state is allocated like them, on their device.
    xp : namespace
    momentum, nesterov, beta_1, beta_2, epsilon : float, bool
        As :func:`relunet.optim.make_optimizer`.
    """

    def __init__(self, solver, params, xp, *, momentum=0.9, nesterov=True, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8):
        if solver not in ("gd", "sgd", "adam"):
            raise ValueError(f"solver must be one of 'gd', 'sgd', 'adam', got {solver!r}")
        self.solver, self.xp = solver, xp
        self.momentum, self.nesterov = momentum, nesterov
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.t = 0
        per_param = {"gd": 0, "sgd": 1, "adam": 2}[solver]
        self.state = tuple(xp.zeros_like(W) for _ in range(per_param) for W in params)

    def state_of(self, i):
        """The state of parameter ``i`` (0: W1, 1: W2): ``()``, ``(v,)`` or ``(m, v)``."""
        return self.state[i::2]  # (v_W1, v_W2) or (m_W1, m_W2, v_W1, v_W2)

    def begin(self, lr):
        """The step's coefficients (:class:`relunet.optim.Coefficients`); Adam counts it."""
        if self.solver != "adam":
            return Coefficients(-lr, lr)
        b1, b2 = self.beta_1, self.beta_2
        self.t += 1
        return Coefficients(1 - b1, lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t))

    def update(self, W, g, i, c):
        """Update parameter ``i`` (``W``, in place) from its unscaled gradient ``g``."""
        u = g * c.scale
        if self.solver == "gd":
            W += u  # u = -lr · ∂L/∂W
        elif self.solver == "sgd":
            (v,) = self.state_of(i)
            mu = self.momentum
            v *= mu
            v += u  # v = μ v - lr·g
            if self.nesterov:
                W += u
                W += v * mu  # w + μ v - lr·g
            else:
                W += v
        else:
            m, v = self.state_of(i)
            b1, b2 = self.beta_1, self.beta_2
            m *= b1
            m += u  # m = β1 m + (1-β1) g
            tmp = u * u
            tmp *= (1 - b2) / (1 - b1) ** 2
            v *= b2
            v += tmp  # v = β2 v + (1-β2) g²
            tmp = self.xp.sqrt(v)
            tmp += self.epsilon
            tmp = m / tmp
            tmp *= c.lr
            W -= tmp  # w - lr_t · m / (√v + ε)

    def step(self, params, grads, lr):
        """One update of all ``params`` (in place) from unscaled ``grads``."""
        c = self.begin(lr)
        for i, (W, g) in enumerate(zip(params, grads, strict=True)):
            self.update(W, g, i, c)


# ------------------------------------------------------------------------- training loop


def _copy(xp, arrays):
    return tuple(xp.asarray(a, copy=True) for a in arrays)


def _assign(xp, targets, sources):
    for W, src in zip(targets, sources, strict=True):
        W[...] = src


class ArrayTrainer:
    """:class:`relunet.train.Trainer`'s epochs and stopping rules, in X's namespace.

    Parameters
    ----------
    params : Params
        Starting weights, arrays of namespace ``xp`` on the training device (not copied:
        they are updated in place).
    config : TrainConfig
        ``solver`` must be ``"gd"``, ``"sgd"`` or ``"adam"``.
    rng : numpy.random.Generator
        Batch order and validation split: the same draws as :class:`~relunet.train.Trainer`.
    xp : namespace

    Attributes
    ----------
    params, history, n_epochs, n_samples_seen, best_loss, stop_reason
        As :class:`~relunet.train.Trainer`'s.
    """

    def __init__(self, params, config, *, rng, xp):
        if config.solver not in ("gd", "sgd", "adam"):
            raise ValueError(
                f"solver={config.solver!r} cannot train on non-NumPy arrays; "
                f"use 'gd', 'sgd' or 'adam'"
            )
        self.config, self.rng, self.xp = config, rng, xp
        self.params = Params(*params)
        self.dtype = self.params.W1.dtype
        self.rule = Rule(config.solver, self.params, xp, momentum=config.momentum,
                         nesterov=config.nesterovs_momentum, beta_1=config.beta_1,
                         beta_2=config.beta_2, epsilon=config.epsilon)
        self.schedule = make_schedule(config.learning_rate, config.learning_rate_init,
                                      n_epochs=config.max_iter, power_t=config.power_t)
        self.history = History()
        self.n_epochs = self.n_samples_seen = 0
        self.best_loss = math.inf
        self.best_score = self.best_epoch = None
        self.interrupted = False
        self.stop_reason = ""
        self._stall = 0
        self._best_params = None

    def _reg(self):
        a = self.config.alpha
        if not a:
            return 0.0
        return a / 2 * float(_sum_squares(self.params.W1) + _sum_squares(self.params.W2))

    def _batch_size(self, n):
        cfg = self.config
        if cfg.solver == "gd":
            return n
        return min(cfg.batch_size if cfg.batch_size is not None else auto_batch_size(n), n)

    def _run_epoch(self, X, y, sw):
        """One pass of mini-batch updates; the epoch's training loss (one host read)."""
        xp, cfg = self.xp, self.config
        n = X.shape[0]
        B = self._batch_size(n)
        lr = self.schedule.rate(self.n_epochs)
        reg = self._reg()
        order = None
        if cfg.shuffle and B < n:  # the NumPy generator's permutation, moved once per epoch
            with _dispatch():
                _, _, dev = get_namespace_and_device(X)
            order = xp.asarray(self.rng.permutation(n), device=dev)
        total = weight = correct = 0.0
        for start in range(0, n, B):
            stop = min(start + B, n)
            if order is None:
                Xb, yb = X[start:stop, ...], y[start:stop]
                wb = None if sw is None else sw[start:stop]
            else:
                idx = order[start:stop]
                Xb, yb = xp.take(X, idx, axis=0), xp.take(y, idx, axis=0)
                wb = None if sw is None else xp.take(sw, idx, axis=0)
            c = self.rule.begin(lr)
            L_b, grads, hits = _data_loss_and_grads(self.params, Xb, yb, cfg.alpha, wb,
                                                    hits=True)
            w = stop - start if wb is None else xp.sum(wb)
            total = total + L_b * w  # stays on the device: no per-step read
            correct = correct + hits
            weight = weight + w
            for i, (W, g) in enumerate(zip(self.params, grads, strict=True)):
                self.rule.update(W, g, i, c)
        weight = float(weight)
        total, self.epoch_accuracy = float(total) / weight, float(correct) / weight
        self.n_samples_seen += n
        return total + reg

    def _epoch(self, X, y, sw, val, callback):
        xp = self.xp
        t0 = time.perf_counter()
        snapshot = _copy(xp, self.params), _copy(xp, self.rule.state), self.rule.t
        lr = self.schedule.rate(self.n_epochs)
        loss = self._run_epoch(X, y, sw)
        try:  # noticed once per epoch: roll the whole epoch back
            if not math.isfinite(loss):
                raise blew_up(loss, self.config.learning_rate_init)
            check_growth(self, loss, self.params.W2.shape[1],
                         lambda: self._evaluate(X, y, sw, params=snapshot[0])[0])
        except TrainingDiverged as exc:
            _assign(xp, self.params, snapshot[0])
            _assign(xp, self.rule.state, snapshot[1])
            self.rule.t = snapshot[2]
            self.n_samples_seen -= X.shape[0]
            raise TrainingDiverged(f"training diverged in epoch {self.n_epochs + 1}: {exc}") \
                from None
        return self._end_epoch(loss, lr, time.perf_counter() - t0, val, callback)

    def _evaluate(self, X, y, sw, params=None):
        """Mean data loss and accuracy on ``(X, y)`` with ``params`` (default: the current
        weights), weighted like training."""
        xp = self.xp
        params = self.params if params is None else params
        total = correct = 0.0
        n = X.shape[0]
        for start in range(0, n, _PREDICT_CHUNK):
            stop = min(start + _PREDICT_CHUNK, n)  # the standard has no out-of-bounds stops
            Xc, yc = X[start:stop, ...], y[start:stop]
            f, _ = forward(params, Xc)
            is_y = yc[:, None] == xp.arange(f.shape[1], device=_device(f))
            L = -xp.sum(xp.where(is_y, _log_softmax(f), 0), axis=1)
            hit = xp.astype(xp.argmax(f, axis=1) == yc, f.dtype)
            if sw is None:
                total, correct = total + xp.sum(L), correct + xp.sum(hit)
            else:
                w = sw[start:stop]
                total, correct = total + xp.sum(w * L), correct + xp.sum(w * hit)
        norm = X.shape[0] if sw is None else float(xp.sum(sw))
        return float(total) / norm, float(correct) / norm

    def _end_epoch(self, loss, lr, seconds, val, callback):
        """Record the epoch and apply the stopping rules: Trainer's, to the letter."""
        xp = self.xp
        self.n_epochs += 1
        val_loss = val_acc = None
        if val is not None:
            val_loss, val_acc = self._evaluate(*val)
            val_loss += self._reg()
        info = EpochInfo(self.n_epochs, loss, lr, seconds, val_loss, val_acc,
                         self.epoch_accuracy)
        self.history.epochs.append(info)
        stop = apply_stopping_rules(self, info, lambda: _copy(xp, self.params))
        if callback is not None and callback(info):
            self.stop_reason, stop = "stopped by callback", True
        return info, stop

    def partial_fit(self, X, y, sample_weight=None, *, callback=None):
        """One epoch over ``(X, y)`` (class indices on X's device); no stopping rules."""
        return self._epoch(X, y, sample_weight, None, callback)[0]

    def fit(self, X, y, sample_weight=None, *, callback=None, y_host=None):
        """Epochs until ``max_iter`` or a stopping rule (as :meth:`Trainer.fit`).

        ``y_host``, the class indices as a NumPy array, is needed with ``early_stopping``:
        the stratified split is drawn on the host, from the same generator as NumPy's.
        """
        xp, cfg = self.xp, self.config
        sw, val = sample_weight, None
        if cfg.early_stopping:
            tr, va = stratified_split(y_host, cfg.validation_fraction, self.rng)
            with _dispatch():
                _, _, dev = get_namespace_and_device(X)
            tr, va = xp.asarray(tr, device=dev), xp.asarray(va, device=dev)
            val = tuple(None if a is None else xp.take(a, va, axis=0) for a in (X, y, sw))
            X, y = xp.take(X, tr, axis=0), xp.take(y, tr, axis=0)
            sw = None if sw is None else xp.take(sw, tr, axis=0)
        self.stop_reason, self._best_params, self._stall = "max_iter", None, 0
        self.best_loss = math.inf
        self.best_score = self.best_epoch = None
        for _ in range(cfg.max_iter):
            _, stop = self._epoch(X, y, sw, val, callback)
            if stop:
                break
        if self._best_params is not None:
            _assign(xp, self.params, self._best_params)
        self._best_params = None
        warn_if_diverged(self, self.params.W2.shape[1])
        return self


def _device(a):
    with _dispatch():
        return get_namespace_and_device(a)[2]


# ------------------------------------------------------------------------- the estimator


def _labels(y, classes=None):
    """``(classes_, y_enc)``: the sorted labels (in y's namespace) and y's indices in them.

    Boolean labels are taken to the host, like string labels: libraries need not sort or
    search booleans (PyTorch cannot), and two classes cost nothing to move.
    """
    with _dispatch():
        xp_y, _, _ = get_namespace_and_device(y)
    if not _is_numpy(y) and xp_y.isdtype(y.dtype, "bool"):
        y = _to_host(y)
        xp_y = np
    if classes is None:
        classes = xp_y.sort(xp_y.unique_values(y)) if not _is_numpy(y) else np.unique(y)
    elif not _is_numpy(y):
        with _dispatch():
            classes = move_to(classes, xp=xp_y, device=_device(y))
    if _is_numpy(y):
        classes = _to_host(classes)  # y's labels on the host: so are the classes
        y_enc = np.searchsorted(classes, y)
        known = (y_enc < classes.shape[0]) & (classes[np.minimum(y_enc, classes.shape[0] - 1)]
                                               == y)
        ok = bool(np.all(known))
    else:
        K = classes.shape[0]
        y_enc = xp_y.searchsorted(classes, y)
        clipped = xp_y.minimum(y_enc, xp_y.asarray(K - 1, dtype=y_enc.dtype, device=_device(y)))
        ok = bool(xp_y.all(xp_y.take(classes, clipped, axis=0) == y))
    if not ok:
        from .estimator import _show

        known = set(_to_host(classes).tolist())
        unseen = sorted({v for v in _to_host(y).tolist() if v not in known}, key=repr)
        raise ValueError(
            f"y contains labels that are not among the model's classes: {_show(unseen)}; "
            f"the classes are {_show(_to_host(classes))} (fixed by the first fit/partial_fit)"
        )
    return classes, y_enc


def fit(estimator, X, y, sample_weight, classes, *, incremental):
    """``estimator.fit``/``partial_fit`` on X's namespace and device (see the module notes).

    Returns the ConvergenceWarning text, or None (as ``ReluNetClassifier._fit``).
    """
    from .estimator import (
        _check_continuing_shapes,
        _check_fit_classes,
        _check_weighted_classes,
        _same_labels,
        _show,
    )

    est = estimator
    name = type(est).__name__
    if est.solver == "lbfgs":
        raise ValueError(
            f"{name}(solver='lbfgs') cannot train on non-NumPy arrays (array_api_dispatch=True): "
            f"SciPy's L-BFGS-B works on NumPy vectors; use solver='gd', 'sgd' or 'adam', or "
            f"pass NumPy arrays"
        )
    fitted = "W1_" in est.__dict__
    continuing = fitted and (incremental or est.warm_start)
    if not get_config()["array_api_dispatch"]:
        if not continuing:  # new weights: NumPy's own loop (weights on a device are replaced)
            return est._fit(X, y, sample_weight, classes, incremental=incremental)
        raise ValueError(
            f"this {name}'s weights are {type(est.W1_).__module__} arrays: continue training "
            f"under sklearn.config_context(array_api_dispatch=True) with X of that library, "
            f"or move the model with relunet.arrayapi.to_numpy(model)"
        )
    if continuing:
        check_same_namespace(X, est, attribute="W1_",
                             method="partial_fit" if incremental else "fit")
    with _dispatch():
        xp, _, device = get_namespace_and_device(X)
    wide = _max_precision_float_dtype(xp, device)
    if est.dtype == "float64" and wide == xp.float32:
        raise ValueError(
            f"{name}(dtype='float64') cannot train on device {device!r}, which has no float64; "
            f"use dtype='float32'"
        )
    dtype = getattr(xp, est.dtype)
    X = validate_data(est, X, reset=not continuing, dtype=dtype)
    check_consistent_length(X, y)
    if not _is_array(y):
        y = np.asarray(y)
    check_classification_targets(y)

    if incremental:
        if classes is not None:
            classes_host = np.unique(_to_host(classes))
            if classes_host.shape[0] < 2:
                raise ValueError(f"classes must hold at least 2 labels, got {_show(classes_host)}")
        if not fitted:
            if classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit: the network's "
                    "output layer needs every label that will ever occur"
                )
            classes_, y_enc = _labels(y, _sorted(classes, y))
        else:
            if classes is not None and not _same_labels(classes_host, _to_host(est.classes_)):
                raise ValueError(
                    f"classes={_show(classes_host)} is not the same as the model's classes "
                    f"{_show(_to_host(est.classes_))} (set by the first call to fit or "
                    f"partial_fit)"
                )
            classes_, y_enc = _labels(y, est.classes_)
    else:
        classes_, y_enc = _labels(y)
        _check_fit_classes(name, _to_host(classes_),
                           _to_host(est.classes_) if continuing else None)
    K = classes_.shape[0]
    with _dispatch():
        y_enc = move_to(y_enc, xp=xp, device=device)  # the one move of the labels
    y_enc = xp.astype(y_enc, xp.int64)

    weights = _example_weights(est, X, y_enc, classes_, sample_weight, incremental, xp, device,
                               wide)
    y_host = None
    if weights is not None or est.early_stopping and not incremental:
        y_host = _to_host(y_enc)  # class bookkeeping on the host, once per call
    if weights is not None and not incremental:
        _check_weighted_classes(name, _to_host(classes_),
                                np.unique(y_host[_to_host(weights) > 0]))

    config = est._config()
    D = X.shape[1]
    if continuing:
        _check_continuing_shapes(est, D, K)
    trainer = est.__dict__.get("_trainer") if incremental else None
    if not (
        isinstance(trainer, ArrayTrainer)
        and trainer.config == config
        and trainer.dtype == dtype
        and _device(trainer.params.W1) == device
        and bool(xp.all(trainer.params.W1 == est.W1_))
        and bool(xp.all(trainer.params.W2 == est.W2_))
    ):
        rng = est._rng()
        if continuing:
            params = Params(*_copy(xp, (xp.astype(est.W1_, dtype), xp.astype(est.W2_, dtype))))
        else:  # the NumPy generator's weights (same seed, same start everywhere), moved once
            start = init_params(D, est.hidden_units, K, rng=rng, dtype=est.dtype)
            params = Params(*(xp.asarray(W, device=device) for W in start))
        trainer = ArrayTrainer(params, config, rng=rng, xp=xp)

    # the rows and weights Trainer._prepare would keep: zero weights dropped, uniform = none
    X_t, y_t, w_t = X, y_enc, weights
    if weights is not None:
        keep = np.flatnonzero(_to_host(weights) > 0)  # rows by position: boolean indexing
        if keep.shape[0] < weights.shape[0]:  # beside other indices is not in the standard
            rows = xp.asarray(keep, device=device)
            X_t, y_t, w_t = (xp.take(a, rows, axis=0) for a in (X, y_enc, weights))
            if y_host is not None:
                y_host = y_host[keep]
        if bool(xp.all(w_t == w_t[0])):
            w_t = None

    t_start = time.perf_counter()
    seen_before, epochs_before = trainer.n_samples_seen, len(trainer.history)
    callback = est._epoch_callback()
    if incremental:
        trainer.stop_reason = "partial_fit (one epoch)"
        trainer.partial_fit(X_t, y_t, w_t, callback=callback)
    else:
        trainer.fit(X_t, y_t, w_t, callback=callback, y_host=y_host)
    return est._record_fit(trainer, epochs_before, seen_before, classes_,
                           _copy(xp, trainer.params), continuing=continuing,
                           incremental=incremental, t_start=t_start)


def _sorted(classes, y):
    """``classes`` (partial_fit's argument) as sorted unique labels in y's namespace."""
    if _is_numpy(y):
        return np.unique(_to_host(classes))
    with _dispatch():
        xp_y, _, dev = get_namespace_and_device(y)
        if not _is_array(classes) or _is_numpy(classes):
            classes = xp_y.asarray(np.unique(np.asarray(classes)), device=dev)
        else:
            classes = move_to(classes, xp=xp_y, device=dev)
    return xp_y.sort(xp_y.unique_values(classes))


def _example_weights(est, X, y_enc, classes, sample_weight, incremental, xp, device, wide):
    """``sample_weight × class_weight`` on X's device (as ``ReluNetClassifier._example_weights``),
    in the widest float the device has; None when neither is given."""
    weights = None
    if sample_weight is not None:
        from sklearn.utils.validation import _check_sample_weight

        with _dispatch():
            sample_weight = move_to(sample_weight, xp=xp, device=device)
            weights = _check_sample_weight(sample_weight, X, dtype=wide,
                                           ensure_non_negative=True)
    cw = est.class_weight
    if cw is not None:
        K = classes.shape[0]
        if isinstance(cw, str):  # "balanced"
            if incremental:
                raise ValueError(
                    "class_weight='balanced' is not supported by partial_fit, which never "
                    "sees all the data: compute the weights once with "
                    "sklearn.utils.class_weight.compute_class_weight('balanced', "
                    "classes=classes, y=y_sample) on a large enough sample of y and pass "
                    "them as a dict"
                )
            one_hot = xp.astype(y_enc[:, None] == xp.arange(K, device=device), wide)
            w = one_hot if weights is None else one_hot * weights[:, None]
            counts = _to_host(xp.sum(w, axis=0)).astype(np.float64)  # K numbers, once
            present = counts > 0
            per_class = np.ones(K)
            per_class[present] = counts.sum() / (present.sum() * counts[present])
        else:
            per_class = est._class_weight_dict(cw, _to_host(classes))
        w_cls = xp.take(xp.asarray(per_class, dtype=wide, device=device), y_enc, axis=0)
        weights = w_cls if weights is None else weights * w_cls
    if weights is not None and not bool(xp.any(weights > 0)):
        raise ValueError(
            "Sample weights must contain at least one non-zero number (after "
            "multiplying by class_weight)"
        )
    return weights


def _scores(estimator, X, method):
    """The network's scores of X, in X's namespace and on its device, in bounded memory."""
    est = estimator
    check_is_fitted(est, ("W1_", "W2_", "classes_"))
    if not get_config()["array_api_dispatch"]:
        raise ValueError(
            f"this {type(est).__name__}'s weights are {type(est.W1_).__module__} arrays: call "
            f"{method} under sklearn.config_context(array_api_dispatch=True) with X of that "
            f"library, or move the model with relunet.arrayapi.to_numpy(model)"
        )
    check_same_namespace(X, est, attribute="W1_", method=method)
    with _dispatch():
        xp, _, _ = get_namespace_and_device(X)
    X = validate_data(est, X, reset=False, dtype=est.W1_.dtype)
    params = Params(est.W1_, est.W2_)
    n = X.shape[0]
    if n <= _PREDICT_CHUNK:
        return xp, forward(params, X)[0]
    parts = [forward(params, X[s : min(s + _PREDICT_CHUNK, n), ...])[0]  # no stops past
             for s in range(0, n, _PREDICT_CHUNK)]  # the end: not in the standard
    return xp, xp.concat(parts, axis=0)


def decision_function(estimator, X):
    """``ReluNetClassifier.decision_function`` on X's namespace and device."""
    _, f = _scores(estimator, X, "decision_function")
    return f[:, 1] - f[:, 0] if f.shape[1] == 2 else f


def predict_proba(estimator, X):
    """``ReluNetClassifier.predict_proba`` on X's namespace and device."""
    return _softmax(_scores(estimator, X, "predict_proba")[1])


def predict_log_proba(estimator, X):
    """``ReluNetClassifier.predict_log_proba`` on X's namespace and device."""
    return _log_softmax(_scores(estimator, X, "predict_log_proba")[1])


def predict(estimator, X):
    """``ReluNetClassifier.predict``: labels in X's namespace (strings: NumPy, on the host)."""
    xp, f = _scores(estimator, X, "predict")
    index = xp.argmax(f, axis=1)
    classes = estimator.classes_
    with _dispatch():
        xp_c, _, dev_c = get_namespace_and_device(classes)
        labels = xp_c.take(classes, move_to(index, xp=xp_c, device=dev_c), axis=0)
        if _is_numpy(labels) and labels.dtype.kind not in "biuf":
            return labels  # strings stay on the host, as scikit-learn's classifiers do
        return move_to(labels, xp=xp, device=_device(f))
