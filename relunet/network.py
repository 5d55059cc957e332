"""The network of J. Saxon's *Simple neural network math*, written as the note writes it.

    h = ReLU(x · w1)            hidden values        (N, H)
    f = h · w2                  scores               (N, K)
    L = L_d / N + α/2 · Σ w²    loss,  L_i = -log(e^{f_{y_i}} / Σ_j e^{f_j})

Conventions (the same as the note's):

* **Row vectors.** One example is a row of ``X``; a batch is an ``(N, D)`` matrix, so the
  note's ``x · w1`` is ``X @ W1`` and its ``df · w2`` is ``df @ W2.T``.
* **Biases are folded into the weights.** ``W1`` is ``(D+1, H)`` and ``W2`` is ``(H+1, K)``;
  the last row of each multiplies the note's "constant 1".  We never build the column of
  ones (that would copy ``X``); ``X @ W1[:-1] + W1[-1]`` is the same product.
* **The bias rows are weights** and are penalised by ``α/2 Σ w²`` exactly as in the note.
* **Gradients are of the mean loss** ``L``: the data term is divided by ``N`` once, in ``df``.

Every function here is pure (arrays in, arrays out) and takes its array namespace from its
inputs, so the same code can run on any array-API library.  The training loop's
allocation-free version of the same step lives in :mod:`relunet.fastpath`.
"""

from __future__ import annotations

import functools
import numbers
from typing import NamedTuple

import numpy as np

__all__ = [
    "Params",
    "as_generator",
    "check_class_indices",
    "init_params",
    "forward",
    "softmax",
    "log_softmax",
    "loss",
    "loss_and_grads",
]


class Params(NamedTuple):
    """The network's weights, biases folded in as the last row of each matrix.

    Attributes
    ----------
    W1 : array of shape (D+1, H)
        Input → hidden weights; ``W1[-1]`` is the hidden bias.
    W2 : array of shape (H+1, K)
        Hidden → score weights; ``W2[-1]`` is the score bias.
    """

    W1: np.ndarray
    W2: np.ndarray


def _namespace(*arrays):
    """NumPy for NumPy inputs (the fast, common case); otherwise their array-API namespace."""
    if all(isinstance(a, np.ndarray | np.generic | numbers.Number) for a in arrays):
        return np
    return _compat().array_namespace(*arrays)


@functools.cache
def _compat():
    """array-api-compat: the installed package, else scikit-learn's vendored copy (the one
    its ``array_api_dispatch`` uses; scikit-learn >= 1.9, a core dependency, carries it).
    Cached: the hidden layer asks on every step, and a failed import is not cached by
    Python (it would search the path each time)."""
    try:
        import array_api_compat
    except ImportError:
        from sklearn.externals import array_api_compat
    return array_api_compat


def _arange(xp, n, *, like):
    """``arange(n)`` on the device of ``like`` (GPU arrays must not meet host arrays)."""
    if xp is np:
        return np.arange(n)
    return xp.arange(n, device=_compat().device(like))


def _relu(xp, z):
    """``max(z, 0)``.  Off NumPy the 0 is made on z's device: array-api-compat would send a
    host scalar there on every call (a host-to-device copy per training step)."""
    if xp is np:
        return np.maximum(z, 0)
    return xp.maximum(z, xp.zeros((), dtype=z.dtype, device=_compat().device(z)))


def as_generator(rng=None) -> np.random.Generator:
    """Turn ``rng`` (None, an int seed or a Generator) into a ``numpy.random.Generator``."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {rng!r}")


def init_params(n_features, n_hidden, n_classes, *, rng=None, dtype=np.float64) -> Params:
    """Random initial weights: He-normal for the ReLU layer, LeCun-normal for the scores.

    Parameters
    ----------
    n_features, n_hidden, n_classes : int
        D, H and K of the note.
    rng : numpy.random.Generator or int or None
        Source of randomness; an int is a seed.
    dtype : float dtype
        ``float64`` or ``float32``. The random numbers are drawn in float64 and rounded, so
        both dtypes start from the same weights.

    Returns
    -------
    Params
        ``W1`` of shape (D+1, H) and ``W2`` of shape (H+1, K), with zero bias rows.
    """
    for name, value, low in (
        ("n_features", n_features, 1),
        ("n_hidden", n_hidden, 1),
        ("n_classes", n_classes, 2),
    ):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    rng = as_generator(rng)
    W1 = np.zeros((n_features + 1, n_hidden), dtype=dtype)
    W2 = np.zeros((n_hidden + 1, n_classes), dtype=dtype)
    # ReLU halves the variance it passes on, hence He's 2/fan_in; the identity output keeps it.
    W1[:-1] = rng.standard_normal((n_features, n_hidden)) * np.sqrt(2.0 / n_features)
    W2[:-1] = rng.standard_normal((n_hidden, n_classes)) * np.sqrt(1.0 / n_hidden)
    return Params(W1, W2)


def forward(params, X):
    """The note's forward pass: hidden values and scores.

    Parameters
    ----------
    params : Params or tuple (W1, W2)
        W1 of shape (D+1, H), W2 of shape (H+1, K).
    X : array of shape (N, D)

    Returns
    -------
    f : array of shape (N, K)
        Scores ``f = h · w2`` (identity output activation).
    h : array of shape (N, H)
        Hidden values ``h = ReLU(x · w1)``, kept because back-propagation needs them.
    """
    W1, W2 = params
    xp = _namespace(X, W1, W2)
    h = _relu(xp, X @ W1[:-1, :] + W1[-1, :])  # g_j = ReLU; "+ W1[-1]": the constant-1 input
    f = h @ W2[:-1, :] + W2[-1, :]  # g_k = identity
    return f, h


def log_softmax(f):
    """``log p`` with ``p_k = e^{f_k} / Σ_j e^{f_j}``, stable for any finite scores.

    Parameters
    ----------
    f : array of shape (N, K)

    Returns
    -------
    array of shape (N, K)
    """
    xp = _namespace(f)
    shifted = f - xp.max(f, axis=1, keepdims=True)  # largest score becomes 0: no overflow
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))


def softmax(f):
    """Class probabilities ``p_k = e^{f_k} / Σ_j e^{f_j}`` for scores ``f`` of shape (N, K)."""
    xp = _namespace(f)
    e = xp.exp(f - xp.max(f, axis=1, keepdims=True))
    return e / xp.sum(e, axis=1, keepdims=True)


def _data_weights(sample_weight, n, xp, dtype):
    """Per-example weights of the data term, summing to 1 (uniform: 1/N, the note's L_d/N)."""
    if sample_weight is None:
        return None
    s = xp.asarray(sample_weight, dtype=dtype)
    return s / xp.sum(s)


def _check(params, X, y):
    W1, W2 = params
    if W1.ndim != 2 or W2.ndim != 2 or W2.shape[0] != W1.shape[1] + 1:
        raise ValueError(
            f"params must be W1 of shape (D+1, H) and W2 of shape (H+1, K); "
            f"got {tuple(W1.shape)} and {tuple(W2.shape)}"
        )
    if X.ndim != 2 or X.shape[1] != W1.shape[0] - 1:
        raise ValueError(f"X must have shape (N, {W1.shape[0] - 1}), got {tuple(X.shape)}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have shape ({X.shape[0]},), got {tuple(y.shape)}")
    if X.shape[0] == 0:
        raise ValueError("X has no rows: the mean loss of zero examples is undefined")
    check_class_indices(y, W2.shape[1])


def loss(params, X, y, alpha=0.0, *, sample_weight=None):
    """The note's total loss ``L = L_d / N + α/2 Σ w²``.

    Parameters
    ----------
    params : Params or tuple (W1, W2)
    X : array of shape (N, D)
    y : int array of shape (N,)
        Class indices in ``0 .. K-1``.
    alpha : float
        L2 strength; every weight, bias rows included, is penalised.
    sample_weight : array of shape (N,), optional
        Weights of the examples; ``L_d / N`` becomes the weighted mean ``Σ s_i L_i / Σ s_i``.

    Returns
    -------
    float
    """
    return loss_and_grads(params, X, y, alpha, sample_weight=sample_weight, grads=False)


def loss_and_grads(params, X, y, alpha=0.0, *, sample_weight=None, grads=True):
    """The loss and its gradients by back-propagation, under the note's names.

    Parameters
    ----------
    params : Params or tuple (W1, W2)
        W1 of shape (D+1, H), W2 of shape (H+1, K).
    X : array of shape (N, D)
    y : int array of shape (N,)
        Class indices in ``0 .. K-1``.
    alpha : float
        L2 strength (``L_r = α/2 Σ w²``, bias rows included).
    sample_weight : array of shape (N,), optional
        Weights of the examples in the data term (normalised to sum to 1).
    grads : bool
        False returns the loss alone (that is :func:`loss`).

    Returns
    -------
    L : float
        ``L_d / N + α/2 Σ w²``.
    (dW1, dW2) : Params
        ``∂L/∂W1`` of shape (D+1, H) and ``∂L/∂W2`` of shape (H+1, K).
    """
    W1, W2 = params
    _check(params, X, y)
    L_d_over_N, dW = _data_loss_and_grads(params, X, y, alpha, sample_weight, grads=grads)
    L = float(L_d_over_N + alpha / 2 * (_sum_squares(W1) + _sum_squares(W2)))
    return (L, dW) if grads else L


def _sum_squares(W):
    """``Σ w²`` of one weight matrix, as a 0-d array of its namespace (no host copy)."""
    xp = _namespace(W)
    return xp.sum(W * W)


def _data_loss_and_grads(params, X, y, alpha=0.0, sample_weight=None, *, grads=True,
                         hits=False):
    """:func:`loss_and_grads` without the one host copy: ``(L_d / N, (dW1, dW2))``.

    With ``hits=True`` a third value: the (weighted) count of examples whose first top score
    is their class, a 0-d array as well (the running training accuracy, for free from ``f``).

    The data loss is a 0-d array of the inputs' namespace, on their device (turning it into
    a Python float waits for the device); the gradients include the α-term, like
    :func:`loss_and_grads`'s.  :mod:`relunet.arrayapi` trains with this, one step per batch.
    The caller checks the shapes and class indices (:func:`_check`) once, not per step:
    reading ``min(y)`` back from a device would cost a host copy per batch.
    """
    W1, W2 = params
    xp = _namespace(X, W1, W2)
    N, K = X.shape[0], W2.shape[1]

    f, h = forward(params, X)
    log_p = log_softmax(f)
    is_y = y[:, None] == _arange(xp, K, like=y)  # 1(y_i = k), shape (N, K)
    L_i = -xp.sum(xp.where(is_y, log_p, 0), axis=1)  # -log(e^{f_y} / Σ_j e^{f_j})
    s = _data_weights(sample_weight, N, xp, f.dtype)
    L_d_over_N = xp.mean(L_i) if s is None else xp.sum(s * L_i)
    extra = ()
    if hits:
        hit = xp.astype(xp.argmax(f, axis=1) == y, f.dtype)
        w = sample_weight
        extra = (xp.sum(hit) if w is None else xp.sum(xp.asarray(w, dtype=f.dtype) * hit),)
    if not grads:
        return (L_d_over_N, None, *extra)

    # df = p - 1(y = k), here already divided by N (or weighted) because L holds L_d / N.
    df = xp.where(is_y, xp.exp(log_p) - 1, xp.exp(log_p))
    df = df / N if s is None else df * s[:, None]
    # dW2 = h · df + α w2; the bias row's "input" is the constant 1, so its row is Σ_i df_i.
    dW2 = _stack_bias(xp, h.T @ df, xp.sum(df, axis=0)) + alpha * W2
    # dh = df · w2 (transposed: row vectors), through the ReLU's Heaviside Θ(h).
    dh = df @ W2[:-1, :].T
    dh = xp.where(h > 0, dh, 0)
    # dW1 = x · dh + α w1, the same way.
    dW1 = _stack_bias(xp, X.T @ dh, xp.sum(dh, axis=0)) + alpha * W1
    return (L_d_over_N, Params(dW1, dW2), *extra)


def _stack_bias(xp, weight_rows, bias_row):
    """Put the bias gradient under the weight gradient: (A, B) + (B,) -> (A+1, B)."""
    return xp.concat([weight_rows, bias_row[None, :]], axis=0)


def check_class_indices(y, n_classes):
    """Raise ``ValueError`` naming the values of ``y`` that are not class indices ``0..K-1``.

    An index outside the range matches no score: its example would add 0 to the loss and its
    gradient would no longer be the loss's (1-based labels, -1 for "unknown"...).

    Parameters
    ----------
    y : integer array of shape (N,), any array-API namespace
    n_classes : int
        K.
    """
    xp = _namespace(y)
    if not xp.isdtype(y.dtype, "integral"):
        raise ValueError(f"y must hold integer class indices 0..{n_classes - 1}, "
                         f"got dtype {y.dtype}")
    if y.shape[0] == 0 or (int(xp.min(y)) >= 0 and int(xp.max(y)) < n_classes):
        return  # the common case, without temporaries the size of y
    bad = y[(y < 0) | (y >= n_classes)]
    if bad.shape[0]:
        values = xp.sort(xp.unique_values(bad))
        shown = ", ".join(str(int(values[i])) for i in range(min(5, values.shape[0])))
        more = ", ..." if values.shape[0] > 5 else ""
        raise ValueError(f"y must hold class indices 0..{n_classes - 1}; it holds {shown}{more} "
                         f"({bad.shape[0]} of {y.shape[0]} values)")

