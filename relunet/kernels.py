"""Compiled kernels of :mod:`relunet.fastpath` (optional: ``pip install "relunet[fast]"``).

NumPy runs each small step of a batch (softmax, ``df``, the ``K``-wide products, the ReLU
mask) as its own call holding the GIL, so on a batch of 256 those ~30 calls can neither share
cores nor overlap the data gather.  Here the same per-example math is one numba function that
releases the GIL, so every thread of an epoch runs it on its own share of the examples at once,
and the optimizer's update is one pass over the weights instead of three to seven.

Each function computes the same numbers as the NumPy code of :mod:`relunet.fastpath` and
:mod:`relunet.optim`, up to the order of float sums (tests hold them together).  numba is
imported only by :func:`load`, which returns None where it is not installed.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np

__all__ = ["load"]

_KERNELS = None


def load():
    """The compiled kernels as a namespace, or None without numba or when disabled.

    ``RELUNET_KERNELS=numpy`` in the environment disables them (then the NumPy code runs).
    Compilation happens on first call and is cached on disk by numba.
    """
    global _KERNELS
    if os.environ.get("RELUNET_KERNELS", "").strip().lower() == "numpy":
        return None
    if _KERNELS is None:
        try:
            _KERNELS = _compile()
        except ImportError:  # numba is not installed: the NumPy code runs
            _KERNELS = False
        except Exception as exc:  # noqa: BLE001 - installed but broken: say so, don't fail
            warnings.warn(f"relunet: numba is installed but could not be used ({exc!r}); "
                          "training uses the NumPy code", RuntimeWarning, stacklevel=2)
            _KERNELS = False
    return _KERNELS or None


def _compile():
    from types import SimpleNamespace

    import numba

    # Reassociation lets LLVM vectorise the sums (and fuse multiply-adds); the flags that
    # assume no NaN or inf are left out, so a diverged network still gives a NaN loss.
    flags = {"reassoc", "contract", "nsz"}
    # error_model="numpy": x/0 gives inf or NaN as in NumPy, instead of raising.
    options = dict(nogil=True, fastmath=flags, error_model="numpy")

    def jit(func):
        try:  # machine code cached on disk (next to this file, or in the user's cache)
            return numba.njit(cache=True, **options)(func)
        except RuntimeError:  # nowhere writable to cache: compile in every process
            return numba.njit(**options)(func)

    return SimpleNamespace(middle=jit(_middle), reduce_w2=jit(_reduce_w2), sgd=jit(_sgd),
                           adam=jit(_adam))


# The kernels are plain Python below (compiled by _compile), so their logic can be read, and
# stepped through, like any other function.  Arrays are C-contiguous, of one float dtype,
# except ``yb`` (intp) and ``sw`` (float64).  Scalars that enter the long loops are passed
# as (or stored into arrays of) that dtype, so float32 data is worked on in float32.


def _middle(P, b1, W2T, b2, yb, sw, scale, i0, i1, dh, dW2T, db2):
    """The note's forward and backward pass from ``x·w1`` to ``dh``, for examples i0:i1.

    ``P`` (T, B, H): the parts' partial sums of ``x·w1`` without the bias row ``b1`` (H,);
    ``Σ_t P[t] + b1``, through the ReLU, is written to ``P[0]`` (that is ``h``).  ``W2T``
    (K, H), ``b2`` (K,): ``w2`` without and its bias row.  ``sw`` (B,): the examples'
    normalised weights (1/b each, or w_i/Σw).  ``scale``: the optimizer's factor (fastpath).
    Writes ``dh[i0:i1]`` = ``scale · ∂L_d/∂h`` through the mask, ``dW2T`` (K, H) and ``db2``
    (K,) = this range's share of ``scale · ∂L_d/∂w2`` (transposed, and its bias row).
    Returns Σ_i sw_i L_i over the range (float64).
    """
    T = P.shape[0]
    H = P.shape[2]
    K = W2T.shape[0]
    # Scratch of this call: the threads' calls run at once, and small arrays of theirs next to
    # each other in memory would share cache lines that both cores write (false sharing).
    f = np.empty(K, W2T.dtype)
    g = np.empty(K, W2T.dtype)
    db = np.zeros(K, W2T.dtype)
    dW2T[:] = 0
    total = 0.0
    for i in range(i0, i1):
        h = P[0, i]
        for t in range(1, T):
            p = P[t, i]
            for j in range(H):
                h[j] += p[j]
        for j in range(H):
            z = h[j] + b1[j]  # the bias row: the note's constant-1 input
            # ReLU as z·Θ(z), as in fastpath: NaN and -inf give NaN, so a diverged network
            # shows up as a non-finite loss.  (``z if z > 0 else z - z`` was compiled to 0
            # for NaN under these fastmath flags; a test holds this.)
            h[j] = z * (z > 0)
        for k in range(K):
            w = W2T[k]
            acc = b2[k]
            for j in range(H):
                acc += h[j] * w[j]
            f[k] = acc  # f = h·w2
        m = f[0]
        for k in range(1, K):
            m = max(m, f[k])  # a NaN score may be skipped here, but it still makes the loss NaN
        y = yb[i]
        fy = f[y] - m
        s = f[0] - f[0]  # 0, in the scores' dtype (float32 exp and sum for float32 data)
        for k in range(K):
            f[k] = math.exp(f[k] - m)
            s += f[k]
        total += sw[i] * (math.log(s) - fy)  # L_i = log Σ_k e^{f_k - m} - (f_{y_i} - m)
        c = scale * sw[i]
        for k in range(K):
            g[k] = f[k] * (c / s)  # df = (p - 1(y = k)) · scale · sw_i
        g[y] -= c
        d = dh[i]
        for k in range(K):
            gk = g[k]
            db[k] += gk  # the bias row's input is the constant 1
            w = W2T[k]
            row = dW2T[k]
            if k == 0:  # (one pass less than zeroing d first)
                for j in range(H):
                    d[j] = gk * w[j]
                    row[j] += gk * h[j]
            else:
                for j in range(H):
                    d[j] += gk * w[j]  # dh = df·w2ᵀ
                    row[j] += gk * h[j]  # dw2 = hᵀ·df
        for j in range(H):
            d[j] = d[j] if h[j] > 0 else 0  # through the ReLU's Heaviside Θ(h)
    db2[:] = db
    return total


def _reduce_w2(dW2T, db2, n, W2, penalty, out):
    """``out`` (H+1, K) = Σ_{t<n} of the parts' (dW2T[t]ᵀ; db2[t]) + ``penalty`` · W2, summed
    in part order."""
    K, H = dW2T.shape[1], dW2T.shape[2]
    for j in range(H):
        for k in range(K):
            acc = dW2T[0, k, j]
            for t in range(1, n):
                acc += dW2T[t, k, j]
            out[j, k] = acc + penalty * W2[j, k]
    for k in range(K):
        acc = db2[0, k]
        for t in range(1, n):
            acc += db2[t, k]
        out[H, k] = acc + penalty * W2[H, k]


def _sgd(W, u, v, penalty, mu, nesterov):
    """Momentum SGD on flat arrays in one pass, from ``g = u + penalty·W`` (``= -lr·∂L/∂W``):
    ``v = μ v + g``, then ``w += g + μ v`` (Nesterov) or ``w += v``."""
    for i in range(W.shape[0]):
        g = u[i] + penalty * W[i]
        vi = mu * v[i] + g
        v[i] = vi
        W[i] += (g + mu * vi) if nesterov else vi


def _adam(W, u, m, v, penalty, beta1, beta2, c2, eps, lr):
    """Adam on flat arrays in one pass, from ``g = u + penalty·W`` (``= (1-β1) ∂L/∂W``) and
    ``c2 = (1-β2)/(1-β1)²``: ``m = β1 m + g``, ``v = β2 v + c2 g²``, ``w -= lr · m/(√v + ε)``."""
    for i in range(W.shape[0]):
        g = u[i] + penalty * W[i]
        mi = beta1 * m[i] + g
        vi = beta2 * v[i] + c2 * (g * g)
        m[i] = mi
        v[i] = vi
        W[i] -= lr * (mi / (math.sqrt(vi) + eps))
