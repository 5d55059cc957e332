"""Central finite differences against the analytic gradient of :func:`relunet.network.loss`."""

from __future__ import annotations

import numpy as np

from .network import Params, as_generator, forward, loss, loss_and_grads

__all__ = ["GradCheck", "check_gradients", "kinked", "numerical_gradients"]


class GradCheck(float):
    """The maximum relative error (a float) carrying the per-matrix detail.

    Attributes
    ----------
    errors : dict
        The error of each block: ``"W1"``, ``"W1 bias"``, ``"W2"``, ``"W2 bias"``.
    n_checked : int
        How many weights were compared.
    n_skipped : int
        Weights left out because their stencil would cross a ReLU kink (see Notes of
        :func:`check_gradients`).
    """

    errors: dict
    n_checked: int
    n_skipped: int

    def __new__(cls, value, errors, n_checked, n_skipped=0):
        obj = super().__new__(cls, value)
        obj.errors = errors
        obj.n_checked = n_checked
        obj.n_skipped = n_skipped
        return obj


def _steps(params, X, eps):
    """One step per row of W1 and W2, so every perturbation moves a pre-activation by ~ε.

    A weight multiplies an input (a column of X, or of h), so a fixed step on the weight
    is a step of ``eps * |input|`` on the score: large inputs (pixels in 0..255, features
    scaled by 1e3) would otherwise make the stencil's truncation error explode.
    """
    _, h = forward(params, X)
    ones = np.ones(1)
    x_scale = np.concatenate([np.abs(X).max(axis=0, initial=0.0), ones])
    h_scale = np.concatenate([np.abs(h).max(axis=0, initial=0.0), ones])
    return eps / np.maximum(x_scale, 1.0), eps / np.maximum(h_scale, 1.0)


def kinked(params, X, eps):
    """Boolean (D+1, H): W1 entries whose stencil moves a pre-activation across 0.

    Changing ``W1[i, j]`` by up to ``2δ_i`` moves unit j's pre-activation ``z_nj`` by up to
    ``2δ_i |x_ni|``; if that reaches 0 for some example, the loss has a corner inside the
    stencil and the finite difference is not the derivative.  (W2 sits after the ReLU:
    its entries never cross a kink.)
    """
    W1 = np.asarray(params[0], dtype=np.float64)
    z = X @ W1[:-1] + W1[-1]
    reach = 2 * _steps(params, X, eps)[0]
    out = np.empty(W1.shape, bool)
    for i in range(W1.shape[0]):
        x = np.abs(X[:, i : i + 1]) if i < X.shape[1] else 1.0
        out[i] = (np.abs(z) < reach[i] * x).any(axis=0)  # x = 0: z does not move
    return out


def numerical_gradients(params, X, y, alpha=0.0, *, eps=1e-3, sample_weight=None, index=None):
    """Finite-difference estimate of ``∂L/∂W`` for every weight (or those in ``index``).

    Uses the fourth-order central stencil
    ``(-L(w+2δ) + 8L(w+δ) - 8L(w-δ) + L(w-2δ)) / 12δ`` with a step δ per row of each matrix
    (``eps`` divided by the largest magnitude of the input that row multiplies, at least 1).

    Parameters
    ----------
    params : Params or tuple (W1, W2)
    X : array of shape (N, D)
    y : int array of shape (N,)
    alpha : float
    eps : float
        Largest step; the estimate's error is O(δ⁴) from truncation plus O(u/δ) from rounding.
    sample_weight : array of shape (N,), optional
    index : tuple (idx1, idx2) of flat-index arrays, optional
        Only estimate these entries of W1 and W2 (the rest are NaN).

    Returns
    -------
    Params
        Arrays shaped like W1 and W2.
    """
    work = Params(*(np.array(W, dtype=np.float64) for W in params))
    X = np.asarray(X, dtype=np.float64)
    row_steps = _steps(work, X, eps)

    def at(W, j, value):
        W[j] = value
        return loss(work, X, y, alpha, sample_weight=sample_weight)

    out = []
    for k, W in enumerate(work):
        G = np.full(W.shape, np.nan)
        flat, gflat = W.reshape(-1), G.reshape(-1)
        for j in range(flat.size) if index is None else index[k]:
            d, w = row_steps[k][j // W.shape[1]], flat[j]
            num = -at(flat, j, w + 2 * d) + 8 * at(flat, j, w + d)
            num += -8 * at(flat, j, w - d) + at(flat, j, w - 2 * d)
            flat[j] = w
            gflat[j] = num / (12 * d)
        out.append(G)
    return Params(*out)


def check_gradients(
    params, X, y, alpha=0.0, *, eps=1e-3, floor=1e-4, atol=1e-10, sample_weight=None,
    max_checks=None, rng=None,
):
    """Compare the back-propagated gradient with finite differences.

    The comparison runs in float64 whatever the dtype of ``params``.  The gradient is split
    into four blocks (the weight rows and the bias row of W1 and of W2: they live on
    different scales) and each block's error is normwise,
    ``max|analytic - numeric| / max(max|analytic|, max|numeric|, floor * G)`` where ``G``
    is the largest gradient entry of all.  A per-entry ratio would be dominated by entries
    that are pure rounding noise (a softmax saturated to 1 - 1e-12, a ReLU off for all but
    one example), which no finite difference resolves; ``floor`` does the same for a whole
    block that is ~1e-8 of the rest.

    Parameters
    ----------
    params : Params or tuple (W1, W2)
        W1 of shape (D+1, H), W2 of shape (H+1, K).
    X : array of shape (N, D)
    y : int array of shape (N,)
        Class indices in ``0 .. K-1``.
    alpha : float
    eps : float
        Finite-difference step (scaled down per row for large inputs).
    floor : float
        A block whose gradient is below ``floor`` times the largest entry is measured on
        that scale instead of its own.
    atol : float
        Absolute floor of that scale: a gradient that is all below it is zero for float64.
    sample_weight : array of shape (N,), optional
    max_checks : int, optional
        Check at most this many weights per matrix, chosen at random (large networks).
    rng : numpy.random.Generator or int, optional
        Chooses the weights when ``max_checks`` is set.

    Returns
    -------
    GradCheck
        A float, the largest relative error, with ``.errors`` per block.

    Notes
    -----
    The loss has corners where a hidden pre-activation is 0 (the ReLU's kink). A W1 entry
    whose stencil would move some example's pre-activation across 0 has no finite-difference
    derivative; such entries are left out and counted in ``n_skipped`` (:func:`kinked`).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    params = Params(*(np.asarray(W, dtype=np.float64) for W in params))
    _, analytic = loss_and_grads(params, X, y, alpha, sample_weight=sample_weight)
    index = None
    if max_checks is not None:
        gen = as_generator(rng)
        index = tuple(
            np.sort(gen.choice(W.size, size=min(max_checks, W.size), replace=False))
            for W in params
        )
    numeric = numerical_gradients(
        params, X, y, alpha, eps=eps, sample_weight=sample_weight, index=index
    )
    corner = kinked(params, X, eps)
    n_skipped = int((corner & ~np.isnan(numeric.W1)).sum())
    numeric.W1[corner] = np.nan  # not a derivative there: leave it out
    errors, n_checked = {}, 0
    G = max(np.abs(a).max() for a in analytic)
    for name, a, n in zip(("W1", "W2"), analytic, numeric, strict=True):
        for block, rows in ((name, slice(None, -1)), (f"{name} bias", slice(-1, None))):
            a_b, n_b = a[rows], n[rows]
            mask = ~np.isnan(n_b)
            if not mask.any():
                continue
            a_b, n_b = a_b[mask], n_b[mask]
            scale = max(np.abs(a_b).max(), np.abs(n_b).max(), floor * G, atol)
            errors[block] = float(np.abs(a_b - n_b).max() / scale)
            n_checked += int(mask.sum())
    if not errors:
        raise ValueError(
            "every checked weight sits within a step of a ReLU kink; use a smaller eps"
        )
    return GradCheck(max(errors.values()), errors, n_checked, n_skipped)
