"""Compiled kernels of :mod:`relunet.fastpath` (optional: ``pip install "relunet[fast]"``).

With NumPy alone, a batch is ~40 calls from Python: two GEMMs, ~30 small steps in between
(softmax, ``df``, the ``K``-wide products, the ReLU mask), the gathers and the updates.  Each
holds the GIL for a while, so the threads of an epoch take turns at the interpreter (with 2
threads, an MNIST-sized epoch of a network too small to compute anything took 55-65 ms of
Python and barriers, against ~0.3 s for the real one).  Here a whole epoch of one thread is
one numba function, :func:`_epoch_part`, that runs with the GIL released: the same batches,
the same GEMMs (BLAS, through numba's ``np.dot``), the per-example math of the middle as one
loop (:func:`_middle`), the updates as one pass each, and a barrier that spins on memory.

Each function computes the same numbers as the NumPy code of :mod:`relunet.fastpath` and
:mod:`relunet.optim`, up to the order of float sums (tests hold them together).  numba is
imported only by :func:`load`, which returns None where it is not installed.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
import warnings
from collections import namedtuple

import numpy as np

__all__ = ["load", "EpochData", "EpochNet", "EpochRule", "EpochWork"]

# The arguments of _epoch_part, grouped (numba takes named tuples of arrays as they are).
EpochData = namedtuple("EpochData", "X order y sample_weight")
EpochNet = namedtuple("EpochNet", "W1 W2 dW1 dW2 m1 v1 m2 v2")
EpochRule = namedtuple("EpochRule", "code hyper scale step")
EpochWork = namedtuple("EpochWork", "edges w2_edges blocks ys ws batch_weight partials dh dW2T "
                                    "db2 W2T sw ones part_loss losses sync part_hits hits")
GD, SGD, ADAM = 0, 1, 2  # EpochRule.code
SPIN_POLLS = 4000  # barrier: polls of memory before each poll also yields the CPU

_KERNELS = None
_LOADING = threading.Lock()


def load():
    """The compiled kernels as a namespace, or None without numba or when disabled.

    ``RELUNET_KERNELS=numpy`` in the environment disables them (then the NumPy code runs).
    Compilation happens on first call and is cached on disk by numba.
    """
    global _KERNELS
    if os.environ.get("RELUNET_KERNELS", "").strip().lower() == "numpy":
        return None
    with _LOADING:  # fits started at once in several threads compile once
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


def give_up(exc):
    """Stop using the kernels in this process after ``exc``, an error of numba's compiler
    (a numba version whose API differs from the one the kernels were written for); warn
    once.  Returns True if ``exc`` was such an error (else it is the caller's to raise)."""
    global _KERNELS
    if not type(exc).__module__.startswith("numba"):
        return False
    with _LOADING:
        if _KERNELS:
            warnings.warn(f"relunet: numba could not compile the training kernels ({exc!r:.300}); "
                          "training uses the NumPy code", RuntimeWarning, stacklevel=3)
        _KERNELS = False
    return True


def _compile():
    from types import FunctionType, SimpleNamespace

    import numba
    import scipy.linalg.cython_blas  # noqa: F401 - numba's np.dot calls SciPy's BLAS: load it
    # now, so that the loop's thread limit (threadpoolctl) sees it

    # Reassociation lets LLVM vectorise the sums (and fuse multiply-adds); the flags that
    # assume no NaN or inf are left out, so a diverged network still gives a NaN loss.
    flags = {"reassoc", "contract", "nsz"}
    # error_model="numpy": x/0 gives inf or NaN as in NumPy, instead of raising.
    options = dict(nogil=True, fastmath=flags, error_model="numpy")
    _register_primitives()

    def jit(func):
        try:  # machine code cached on disk (next to this file, or in the user's cache)
            return numba.njit(cache=True, **options)(func)
        except RuntimeError:  # nowhere writable to cache: compile in every process
            return numba.njit(**options)(func)

    # Compiled copies of the functions below, in a namespace of their own where each name is
    # the compiled copy (so _epoch_part calls compiled code); the module's functions stay
    # plain Python (tests run them as they are).
    namespace = dict(globals())
    for name in ("_middle", "_reduce_w2", "_gd", "_sgd", "_adam", "_update", "_gather",
                 "_gather_labels", "_copy_w2t", "_meet", "_epoch_part"):
        func = globals()[name]
        copy = FunctionType(func.__code__, namespace, name, func.__defaults__)
        copy.__qualname__, copy.__module__ = func.__qualname__, func.__module__
        namespace[name] = jit(copy)
    return SimpleNamespace(middle=namespace["_middle"], reduce_w2=namespace["_reduce_w2"],
                           update=namespace["_update"], epoch_part=namespace["_epoch_part"])


# ------------------------------------------------------------------ barrier primitives
# The parts of an epoch meet twice per batch.  Each part counts its arrivals in its own slot
# of ``sync`` (``SLOT`` apart); a part waits until every slot has reached its count.
# The loads and stores of those slots are atomic with acquire/release order: whatever a part
# wrote before arriving is seen by the others after they leave.  In plain Python (the
# functions below, run as they are in tests) the GIL gives the same guarantees.

SLOT = 16  # int64s from one part's counter to the next: 128 bytes, never one cache line


def _load(a, i):
    """``a[i]``, with acquire order when compiled."""
    return a[i]


def _store(a, i, v):
    """``a[i] = v``, with release order when compiled."""
    a[i] = v


def _copy(dst, src, i0, n):
    """``dst[:n] = src[i0 : i0 + n]`` for 1-d arrays; compiled: a ``memcpy`` (a plain loop
    gathered a batch 2.4x slower: 134 vs 56 us for 256 rows of 392 floats)."""
    dst[:n] = src[i0 : i0 + n]


def _yield_cpu():
    """Let another thread run (a waiting part must not keep a shared core from the others)."""
    time.sleep(0)


_REGISTERED = []


def _register_primitives():
    """Compiled versions of _copy, _load, _store and _yield_cpu (numba's ``overload``), once."""
    if _REGISTERED:
        return
    _REGISTERED.append(True)
    from llvmlite import ir  # part of numba's install
    from numba.core import cgutils, types
    from numba.extending import intrinsic, overload

    def pointer(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        return cgutils.get_item_pointer(context, builder, signature.args[0], array, [args[1]])

    @intrinsic
    def load_acquire(typingctx, a, i):
        def codegen(context, builder, signature, args):
            return builder.load_atomic(pointer(context, builder, signature, args),
                                       ordering="acquire", align=8)
        return a.dtype(a, types.intp), codegen

    @intrinsic
    def store_release(typingctx, a, i, v):
        def codegen(context, builder, signature, args):
            builder.store_atomic(args[2], pointer(context, builder, signature, args),
                                 ordering="release", align=8)
            return context.get_dummy_value()
        return types.void(a, types.intp, a.dtype), codegen

    @intrinsic
    def sched_yield(typingctx):
        def codegen(context, builder, signature, args):
            if sys.platform != "win32":  # POSIX; on Windows the wait is a pure spin
                function = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
                builder.call(function, [])
            return context.get_dummy_value()
        return types.void(), codegen

    @intrinsic
    def memcpy(typingctx, dst, src, i0, n):
        def codegen(context, builder, signature, args):
            d = context.make_array(signature.args[0])(context, builder, args[0])
            s = context.make_array(signature.args[1])(context, builder, args[1])
            first = cgutils.get_item_pointer(context, builder, signature.args[1], s, [args[2]])
            size = context.get_abi_sizeof(context.get_data_type(signature.args[1].dtype))
            cgutils.raw_memcpy(builder, d.data, first, args[3], size)
            return context.get_dummy_value()
        return types.void(dst, src, types.intp, types.intp), codegen

    overload(_copy)(lambda dst, src, i0, n: lambda dst, src, i0, n: memcpy(dst, src, i0, n))
    overload(_load)(lambda a, i: lambda a, i: load_acquire(a, i))
    overload(_store)(lambda a, i, v: lambda a, i, v: store_release(a, i, v))
    overload(_yield_cpu)(lambda: lambda: sched_yield())


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
    Returns Σ_i sw_i L_i over the range (float64) and Σ_i sw_i over the examples whose first
    highest score is the true class's (the running training accuracy, free from the scores).
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
    hits = 0.0
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
        top = 0
        for k in range(1, K):
            if f[k] > m:  # a NaN score may be skipped here, but it still makes the loss NaN
                m = f[k]
                top = k  # the first highest score: predict's argmax
        y = yb[i]
        fy = f[y] - m
        if top == y:
            hits += sw[i]
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
    return total, hits


def _reduce_w2(dW2T, db2, n, W2, penalty, out, j0, j1):
    """Rows ``j0:j1`` of ``out`` (H+1, K) = Σ_{t<n} of the parts' (dW2T[t]ᵀ; db2[t]) +
    ``penalty`` · W2, summed in part order (row H is the bias row, from ``db2``)."""
    K, H = dW2T.shape[1], dW2T.shape[2]
    for j in range(j0, min(j1, H)):
        for k in range(K):
            acc = dW2T[0, k, j]
            for t in range(1, n):
                acc += dW2T[t, k, j]
            out[j, k] = acc + penalty * W2[j, k]
    if j1 > H:
        for k in range(K):
            acc = db2[0, k]
            for t in range(1, n):
                acc += db2[t, k]
            out[H, k] = acc + penalty * W2[H, k]


def _gd(W, u, penalty):
    """Steepest descent on a block of rows: ``w += g``, ``g = u + penalty·W`` (``= -lr·∂L/∂W``)."""
    for i in range(W.shape[0]):
        w, d = W[i], u[i]
        for j in range(W.shape[1]):
            w[j] += d[j] + penalty * w[j]


def _sgd(W, u, v, penalty, mu, nesterov):
    """Momentum SGD on a block of rows in one pass, from ``g = u + penalty·W`` (``= -lr·∂L/∂W``):
    ``v = μ v + g``, then ``w += g + μ v`` (Nesterov) or ``w += v``."""
    for i in range(W.shape[0]):
        w, d, vel = W[i], u[i], v[i]
        for j in range(W.shape[1]):
            g = d[j] + penalty * w[j]
            vj = mu * vel[j] + g
            vel[j] = vj
            w[j] += (g + mu * vj) if nesterov else vj


def _adam(W, u, m, v, penalty, beta1, beta2, c2, eps, lr):
    """Adam on a block of rows in one pass, from ``g = u + penalty·W`` (``= (1-β1) ∂L/∂W``) and
    ``c2 = (1-β2)/(1-β1)²``: ``m = β1 m + g``, ``v = β2 v + c2 g²``, ``w -= lr · m/(√v + ε)``."""
    for i in range(W.shape[0]):
        w, d, mom, sec = W[i], u[i], m[i], v[i]
        for j in range(W.shape[1]):
            g = d[j] + penalty * w[j]
            mj = beta1 * mom[j] + g
            vj = beta2 * sec[j] + c2 * (g * g)
            mom[j] = mj
            sec[j] = vj
            w[j] -= lr * (mj / (math.sqrt(vj) + eps))


def _update(rule, W, u, m, v, penalty, lr):
    """The rule's update of a block of rows of ``W`` from ``u`` (see :mod:`relunet.optim`);
    ``m``, ``v``: the matching rows of its state (unused ones: anything).  ``rule.hyper`` is
    (μ, nesterov, β1, β2, (1-β2)/(1-β1)², ε) in W's dtype; ``penalty``, ``lr`` too."""
    h = rule.hyper
    if rule.code == GD:
        _gd(W, u, penalty)
    elif rule.code == SGD:
        _sgd(W, u, m, penalty, h[0], h[1] != 0)
    else:
        _adam(W, u, m, v, penalty, h[2], h[3], h[4], h[5], lr)


# ------------------------------------------------------------------ the epoch


def _gather(X, order, start, lo, hi, f0, f1, block):
    """Rows ``lo:hi`` of ``block`` (b, f1-f0) = columns ``f0:f1`` of the rows
    ``order[start + lo : start + hi]`` of ``X``."""
    for j in range(lo, hi):
        _copy(block[j], X[order[start + j]], f0, f1 - f0)


def _gather_labels(data, start, b, ys, ws):
    """The batch's labels (and example weights) into ``ys``, ``ws``; returns its weight: Σ of
    its example weights (b if unweighted)."""
    total = 0.0
    for j in range(b):
        i = data.order[start + j]
        ys[j] = data.y[i]
        if data.sample_weight.shape[0]:
            ws[j] = data.sample_weight[i]
            total += ws[j]
    return total if data.sample_weight.shape[0] else float(b)


def _copy_w2t(W2, j0, j1, W2T):
    """Columns ``j0:j1`` of ``W2T`` (K, H) = rows ``j0:j1`` of ``w2`` (H+1, K), transposed."""
    for j in range(j0, min(j1, W2T.shape[1])):  # not the bias row H
        for k in range(W2T.shape[0]):
            W2T[k, j] = W2[j, k]


def _meet(sync, t, n_parts, count):
    """Barrier: part t arrives for the ``count``-th time and waits until every part has.

    Returns False if the epoch was aborted (``sync[SLOT·n_parts]`` set) instead.
    """
    _store(sync, SLOT * t, count)
    polls = 0
    for s in range(n_parts):
        while _load(sync, SLOT * s) < count:
            if _load(sync, SLOT * n_parts) != 0:
                return False
            polls += 1
            if polls > SPIN_POLLS:
                _yield_cpu()
    return _load(sync, SLOT * n_parts) == 0  # (a lone part never waits: it checks here)


def _epoch_part(t, data, net, rule, work):
    """Part t's share of an epoch of mini-batch updates (every part runs this at once).

    The batches are those of ``data.order`` (``B`` = ``work.dh.shape[0]`` examples each, the
    last one shorter), one per row of ``rule.scale``.  Per batch, as in
    :meth:`relunet.fastpath.Workspace.run_epoch`: (A) the part's forward GEMM on its block of
    input features ``edges[t]:edges[t+1]``; meet; (B) the middle on its share of the
    examples, then gather its block of the next batch; meet; (C) its rows of dW2 and of w2
    (``w2_edges``), its backward GEMM and the update of its rows of W1.  Part 0 writes the
    batch losses to ``work.losses`` (and accuracies to ``work.hits``); the part that owns
    the last block gathers labels and writes ``work.batch_weight``.

    Returns the number of batches done: all of them, or k + 1 if batch k's loss was not
    finite (that batch is not applied), or -1 if the epoch was aborted.
    """
    X, order = data.X, data.order
    W1, W2, dW1, dW2 = net.W1, net.W2, net.dW1, net.dW2
    n_parts, B, n_batches = work.partials.shape[0], work.dh.shape[0], rule.scale.shape[0]
    D, H, n = X.shape[1], W1.shape[1], order.shape[0]
    f0, f1 = work.edges[t], work.edges[t + 1]
    r1 = f1 + 1 if t == n_parts - 1 else f1  # the last part's rows of W1 include the bias row
    j0, j1 = work.w2_edges[t], work.w2_edges[t + 1]
    labels = t == n_parts - 1
    count = 0  # meetings so far

    b = min(B, n)
    _gather(X, order, 0, 0, b, f0, f1, work.blocks[0, t, : b * (f1 - f0)].reshape((b, f1 - f0)))
    if labels:
        work.batch_weight[0] = _gather_labels(data, 0, b, work.ys[0], work.ws[0])
    for k in range(n_batches):
        start, now = k * B, k % 2
        b = min(B, n - start)
        Xt = work.blocks[now, t, : b * (f1 - f0)].reshape((b, f1 - f0))
        # (A) this part's share of x·w1 (the middle adds the bias row)
        np.dot(Xt, W1[f0:f1], work.partials[t, :b])
        _copy_w2t(W2, j0, j1, work.W2T)
        count += 1
        if not _meet(work.sync, t, n_parts, count):
            return -1
        # (B) h, scores, loss, df, dW2, dh for this part's examples; then the next batch
        i0, i1 = b * t // n_parts, b * (t + 1) // n_parts
        sw = work.sw
        for i in range(i0, i1):
            sw[i] = work.ws[now, i] / work.batch_weight[k] if data.sample_weight.shape[0] \
                else 1.0 / b
        work.part_loss[t], work.part_hits[t] = _middle(
            work.partials, W1[D], work.W2T, W2[H], work.ys[now, :b], sw, rule.scale[k], i0, i1,
            work.dh, work.dW2T[t], work.db2[t])
        if k + 1 < n_batches:
            nxt, start1 = 1 - now, start + B
            b1 = min(B, n - start1)
            _gather(X, order, start1, 0, b1, f0, f1,
                    work.blocks[nxt, t, : b1 * (f1 - f0)].reshape((b1, f1 - f0)))
            if labels:
                work.batch_weight[k + 1] = _gather_labels(data, start1, b1, work.ys[nxt],
                                                          work.ws[nxt])
        count += 1
        if not _meet(work.sync, t, n_parts, count):
            return -1
        loss = 0.0
        for s in range(n_parts):  # in part order: every part gets the same number
            loss += work.part_loss[s]
        if t == 0:
            work.losses[k] = loss
            hit = 0.0
            for s in range(n_parts):
                hit += work.part_hits[s]
            work.hits[k] = hit
        if not math.isfinite(loss):
            return k + 1
        # (C) this part's rows of dW2 and w2, then of dW1 and W1
        penalty, lr = rule.step[k, 0], rule.step[k, 1]
        _reduce_w2(work.dW2T, work.db2, n_parts, W2, 0.0, dW2, j0, j1)  # (update adds α-term)
        _update(rule, W2[j0:j1], dW2[j0:j1], net.m2[j0:j1], net.v2[j0:j1], penalty, lr)
        dh = work.dh[:b]
        np.dot(Xt.T, dh, dW1[f0:f1])
        if t == n_parts - 1:
            np.dot(work.ones[:b], dh, dW1[D])  # the bias row: Σ_i dh_i
        _update(rule, W1[f0:r1], dW1[f0:r1], net.m1[f0:r1], net.v1[f0:r1], penalty, lr)
    return n_batches
