"""The note's training step again, without allocations and on every core: where the speed
tricks live.

:func:`relunet.network.loss_and_grads` is the readable reference.  :class:`Workspace`
computes the same numbers (tests hold the two to float rounding) into buffers allocated once
per fit, and :meth:`Workspace.run_epoch` runs a whole epoch of mini-batch updates.  An epoch's
work is three large GEMMs per batch (``x·w1`` forward, ``xᵀ·dh`` backward; the ``K``-wide
products are small) plus a few passes over the weights, so the rules are:

* **Every product is** ``np.dot(..., out=)`` into a preallocated C-contiguous buffer.  That
  goes straight to BLAS, also for transposed or column-sliced operands (``np.matmul`` with
  ``out=`` and a transposed operand was measured 2.6x slower).
* **One BLAS library per epoch.**  NumPy and SciPy wheels each bundle their own OpenBLAS,
  each with its own spinning thread pool.  Alternating between them (the previous version did
  its ``axpy`` through ``scipy.linalg.blas``) made an epoch 5-20x slower on a 2-core machine.
  The NumPy loop calls NumPy's BLAS only; its weight updates call NumPy's own OpenBLAS
  level-1 routines through ctypes (:class:`_Level1`: ``y += a·x`` in one pass where NumPy
  needs two).  The compiled epoch's GEMMs are numba's ``np.dot``, i.e. SciPy's BLAS only.
* **Our threads, not BLAS's.**  OpenBLAS splits each GEMM over its threads and then has them
  spin-wait for the next call; on a machine whose cores are shared that wait costs whole
  scheduler slices (a 10-column GEMM was seen taking 3 ms).  Instead, during an epoch BLAS is
  limited to one thread (``threadpoolctl``, restored afterwards) and the batch is split into
  ``n_threads`` *parts* run by that many Python threads.  NumPy releases the GIL inside BLAS
  and inside ufuncs on large arrays, so the parts really run in parallel; the threads meet at
  a barrier twice per batch (:class:`_Barrier`: a short spin, then a futex sleep; compiled:
  a spin on memory, :func:`relunet.kernels._meet`).
  Part ``t`` owns a block of rows of ``W1`` (a block of input features), which splits
  each big GEMM in two without any reduction, and lets each part update its own rows of
  ``W1`` and of the optimizer state: contiguous memory, no locks.  See :meth:`Workspace.run_epoch`.
* **With numba, no Python per batch.**  With numba installed (``relunet[fast]``), each
  part's whole epoch is one compiled function that releases the GIL
  (:func:`relunet.kernels._epoch_part`): the same GEMMs, then the per-example middle (the
  parts' sum, ReLU, softmax, ``df``, the ``K``-wide products, the mask) on its share of the
  batch's examples, the gather of its own block of the next batch (``memcpy`` per row), its
  rows of ``dW2`` and ``w2``, and one-pass updates.  Without numba the middle is ~30 small
  NumPy calls, slow to share between threads (every call hands the GIL over), so part 0 does
  them alone while the other parts gather the *next* batch into a second buffer (double
  buffering).
* **No temporaries.**  ``np.take(..., mode="clip", out=)`` gathers a batch straight into its
  buffer (the default ``mode="raise"`` writes to a temporary and copies it: 3x slower); the
  optimizer's ``-lr`` (or Adam's ``1-β1``) is folded into ``df``, so the backward GEMMs yield
  the scaled gradient the update rule wants and no pass is spent scaling it; bias gradients
  are ``ones·dh`` (BLAS gemv, 3x faster than ``np.sum(axis=0)``); all ufuncs write ``out=``.
* **float32 stays float32 end to end.**

Results are deterministic: the parts' shares of the work are fixed by ``n_threads``, and
partial results are combined in a fixed order, so the same seed gives bit-identical weights
run after run.  A different ``n_threads``, or the compiled kernels on or off, orders the sums
differently and so changes results at the level of float rounding.  Fits running at the same
time in threads of one process share one BLAS limit (:func:`_one_blas_thread`) and split
their work as each would alone, so they give the weights the same fits give one after another,
and leave BLAS's thread count as they found it.
"""

from __future__ import annotations

import ctypes
import math
import os
import threading
import time
from contextlib import contextmanager

import numpy as np

from . import kernels as kernels_module
from .network import Params, check_class_indices

__all__ = ["Workspace", "default_threads", "forward_rows", "predict_scores"]

# A part must have at least this many flops of GEMM per batch to be worth a thread: below it
# the barrier hand-offs (~20-40 us each) cost more than the parallel GEMM saves.
MIN_FLOPS_PER_THREAD = 2e7
# By default the compiled kernels are used for batches of at least this many GEMM flops.  On
# small ones they gain less than importing numba costs (~0.3 s; digits: 0.58 vs 0.28 s).
MIN_FLOPS_FOR_KERNELS = 2e7


def default_threads():
    """Threads an epoch uses: as many as NumPy's BLAS would, at most the usable CPUs.

    So the usual knobs apply: ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` or a surrounding
    ``threadpoolctl.threadpool_limits(n)``.  While other fits' epochs hold BLAS at one thread
    (:func:`_one_blas_thread`), the count from before their limit is used.  The count is read
    from the BLAS libraries loaded when this was first called (one ``get_num_threads`` call
    each, ~1 us: ``threadpoolctl.threadpool_info()`` rescans the process's libraries, ~300 us,
    more than a 300-row prediction).
    """
    with _blas_lock:
        blas = _blas_held["threads"] if _blas_held["users"] else None
        if blas is None:
            controller = _process_blas()
            blas = (max((lib.num_threads for lib in controller.lib_controllers), default=1)
                    if controller is not None else os.cpu_count() or 1)
    return max(1, min(blas, _usable_cpus() or 1))


class _Level1:
    """``y += a·x``, ``y = a·x + b·y`` and ``x *= a`` from NumPy's own OpenBLAS, via ctypes.

    For the weight updates: one pass each, where NumPy ufuncs need two or three.  Calls
    through ``ctypes.CDLL`` release the GIL, so the parts update their blocks at once (SciPy's
    f2py wrappers hold it: tried, slower).  The same library as NumPy's GEMMs, so no second
    thread pool.  Callers pass C-contiguous arrays of :attr:`dtype` and equal sizes.
    """

    def __init__(self, lib, dtype):
        self.dtype = np.dtype(dtype)
        p, real = ("s", ctypes.c_float) if self.dtype == np.float32 else ("d", ctypes.c_double)
        n, ptr = ctypes.c_int64, ctypes.c_void_p  # the ILP64 ("64_") interface
        self._axpy = getattr(lib, f"scipy_cblas_{p}axpy64_")
        self._axpy.argtypes = [n, real, ptr, n, ptr, n]
        self._axpby = getattr(lib, f"scipy_cblas_{p}axpby64_")
        self._axpby.argtypes = [n, real, ptr, n, real, ptr, n]
        self._scal = getattr(lib, f"scipy_cblas_{p}scal64_")
        self._scal.argtypes = [n, real, ptr, n]
        for f in (self._axpy, self._axpby, self._scal):
            f.restype = None

    def usable(self, *arrays):
        """Whether the arrays are C-contiguous, of :attr:`dtype` and of one size."""
        size = arrays[0].size
        return all(a.dtype == self.dtype and a.flags.c_contiguous and a.size == size
                   for a in arrays)

    def axpy(self, a, x, y):
        self._axpy(y.size, a, x.ctypes.data, 1, y.ctypes.data, 1)

    def axpby(self, a, x, b, y):
        self._axpby(y.size, a, x.ctypes.data, 1, b, y.ctypes.data, 1)

    def scal(self, a, x):
        self._scal(x.size, a, x.ctypes.data, 1)


def _level1_blas(dtype):
    """A :class:`_Level1` for ``dtype`` on NumPy's OpenBLAS, or None where it is not one
    with the ``scipy_cblas_*64_`` symbols of NumPy's wheels (then NumPy ufuncs are used)."""
    if np.dtype(dtype) not in (np.float32, np.float64):
        return None
    try:
        from threadpoolctl import threadpool_info
        for info in threadpool_info():
            path = info.get("filepath", "")
            if (info.get("internal_api") == "openblas" and "numpy" in path
                    and os.path.basename(path).startswith("libscipy_openblas64_")):
                return _Level1(ctypes.CDLL(path), dtype)
    except (ImportError, OSError, AttributeError):  # no threadpoolctl, or other symbols
        pass
    return None


# One BLAS limit for all the epochs running in the process.  threadpoolctl's limit saves the
# count it finds and restores it on exit: two fits in threads overlapping as A-enter, B-enter
# (saving A's 1), A-exit, B-exit would leave the whole process on one BLAS thread, and a fit
# starting in between would see 1 and split its work differently.  Here the first epoch to
# start limits BLAS, the last to end restores it, and default_threads() meanwhile answers with
# the count from before.
_blas_lock = threading.Lock()
_blas_held = {"users": 0, "limiter": None, "threads": None}


@contextmanager
def _one_blas_thread(controller):
    """BLAS on one thread (``controller``: a threadpoolctl controller, or None) while the block
    runs, shared by the epochs of all threads; restored when the last of them ends."""
    with _blas_lock:
        if _blas_held["users"] == 0:
            _blas_held["threads"] = max(
                [lib["num_threads"] for lib in controller.info()] if controller else [], default=1)
            _blas_held["limiter"] = controller.limit(limits=1) if controller else None
        _blas_held["users"] += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_held["users"] -= 1
            if _blas_held["users"] == 0:
                limiter, _blas_held["limiter"] = _blas_held["limiter"], None
                _blas_held["threads"] = None
                if limiter is not None:
                    limiter.restore_original_limits()


def _blas_controller():
    """A ``threadpoolctl`` controller of the BLAS libraries loaded now (None without it)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return None
    return ThreadpoolController().select(user_api="blas")


class _NoBarrier:
    """Stand-in for :class:`threading.Barrier` when one thread does all the parts."""

    def wait(self):
        return 0


class _Barrier:
    """A reusable barrier that spins (yielding the GIL) for up to ``spin`` seconds, then sleeps.

    The parts meet twice per batch, a few hundred microseconds apart.  Sleeping on a futex
    at each meeting lets the virtual CPU halt, and waking it again costs far more than the
    wait (``threading.Barrier``: 2.69 vs 3.19 s/epoch at H=1024, batch 64).  The spin gives
    the GIL away at every turn (``time.sleep(0)``), so it never blocks the other parts.
    """

    def __init__(self, n, spin=1e-3):
        self.n, self.spin = n, spin
        self._count = self._generation = 0
        self._broken = False
        self._cond = threading.Condition(threading.Lock())

    def wait(self):
        with self._cond:
            if self._broken:
                raise threading.BrokenBarrierError
            generation = self._generation
            self._count += 1
            if self._count == self.n:  # the last to arrive releases everyone
                self._count = 0
                self._generation += 1
                self._cond.notify_all()
                return
        deadline = time.perf_counter() + self.spin
        while self._generation == generation and time.perf_counter() < deadline:
            time.sleep(0)
        with self._cond:
            while self._generation == generation:
                self._cond.wait()
            if self._broken:
                raise threading.BrokenBarrierError

    def abort(self):
        """Release every waiter with :class:`threading.BrokenBarrierError`, now and later."""
        with self._cond:
            self._broken = True
            self._generation += 1
            self._cond.notify_all()


def _run_parts(n, work):
    """Run ``work(part, barrier)`` for ``part = 0 .. n-1``, part 0 on this thread.

    The first exception of any part aborts the barrier (so no part waits forever) and is
    re-raised here once every thread has finished.
    """
    if n == 1:
        work(0, _NoBarrier())
        return
    barrier = _Barrier(n)
    errors = []

    def guarded(part):
        try:
            work(part, barrier)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the caller's thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=guarded, args=(p,), name=f"relunet-part-{p}", daemon=True)
               for p in range(1, n)]
    for t in threads:
        t.start()
    guarded(0)
    for t in threads:
        t.join()
    if errors:
        first = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
        raise (first or errors)[0]


def _split(n, parts):
    """Boundaries of ``parts`` near-equal consecutive blocks of ``range(n)``."""
    return [n * p // parts for p in range(parts + 1)]


def _rule_of(optimizer):
    """``(code, hyper)`` of :class:`relunet.kernels.EpochRule` for the optimizer's rule, or
    None for a rule the kernels don't implement (then the loop calls its ``update``)."""
    from . import optim

    kind = type(optimizer)
    zeros = (0.0,) * 6
    if kind is optim.GradientDescent:
        return kernels_module.GD, zeros
    if kind is optim.SGD:
        return kernels_module.SGD, (optimizer.momentum, float(optimizer.nesterov), 0, 0, 0, 0)
    if kind is optim.Adam:
        b1, b2 = optimizer.beta_1, optimizer.beta_2
        return kernels_module.ADAM, (0, 0, b1, b2, (1 - b2) / (1 - b1) ** 2, optimizer.epsilon)
    return None


def _run_compiled_parts(n, run_part, sync):
    """Run ``run_part(t)`` for ``t = 0 .. n-1``, each on a thread of its own; returns part
    0's result.

    This thread only waits, in short joins, so Ctrl-C still reaches it: then, as when a part
    raises, the abort flag in ``sync`` stops the other parts at their next meeting, and the
    exception is re-raised here once every thread has finished.
    """
    results, errors = [None] * n, []
    abort = kernels_module.SLOT * n

    def guarded(part):
        try:
            results[part] = run_part(part)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the caller's thread
            errors.append(exc)
            sync[abort] = 1

    threads = [threading.Thread(target=guarded, args=(p,), name=f"relunet-part-{p}",
                                daemon=True) for p in range(n)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.05)
    except BaseException:
        sync[abort] = 1
        for t in threads:
            t.join()
        raise
    if errors:
        raise errors[0]
    return results[0]


class Workspace:
    """Preallocated buffers (and a thread plan) for mini-batches of at most ``batch_size``.

    Parameters
    ----------
    n_features, n_hidden, n_classes : int
        D, H and K.
    batch_size : int
        The largest batch that will be passed.
    dtype : float dtype
        The dtype of the data and the parameters.
    n_threads : int, optional
        Parts the work of a batch is split into, each run by its own thread.  Default:
        :func:`default_threads`, reduced for small networks (see ``MIN_FLOPS_PER_THREAD``).
    kernels : {None, "numba", "numpy"}, optional
        Compiled code (:mod:`relunet.kernels`, needs numba: in :meth:`run_epoch` each
        thread's whole epoch, in :meth:`loss_and_grads` the per-example middle) or NumPy
        calls.  Default None: compiled if numba can be imported, the environment variable
        ``RELUNET_KERNELS`` is not ``numpy``, and a batch is big enough to gain
        (``MIN_FLOPS_FOR_KERNELS``).  The two agree to float rounding.  The compiled epoch
        takes the update rules of :mod:`relunet.optim` (not subclasses of them: those, an X
        that is not C-contiguous and an epoch of one batch take the NumPy loop).

    Attributes
    ----------
    grads : Params
        ``(dW1, dW2)`` of the last :meth:`loss_and_grads`, shapes (D+1, H) and (H+1, K).
        Overwritten by the next call: copy them if you need to keep them.
    n_parts : int
        The number of parts (threads) actually used.
    """

    def __init__(self, n_features, n_hidden, n_classes, batch_size, dtype, n_threads=None,
                 kernels=None):
        if kernels not in (None, "numba", "numpy"):
            raise ValueError(f"kernels must be None, 'numba' or 'numpy', got {kernels!r}")
        B, D, H, K = int(batch_size), int(n_features), int(n_hidden), int(n_classes)
        dtype = np.dtype(dtype)
        if kernels == "numba" and dtype not in (np.float32, np.float64):
            raise ValueError(f"the compiled kernels are for float32 and float64, not {dtype}")
        self.batch_size, self.dtype = B, dtype
        self.shape = (D, H, K)
        if n_threads is None:
            flops = 4 * B * D * H  # of the big GEMMs, per batch
            n_threads = default_threads()
            if MIN_FLOPS_PER_THREAD > 0:
                n_threads = min(n_threads, max(1, int(flops // MIN_FLOPS_PER_THREAD)))
        T = self.n_parts = max(1, min(int(n_threads), D))
        # Part t owns rows edges[t]:edges[t+1] of W1; the last part also owns the bias row D.
        # Row blocks (input features) rather than column blocks (hidden units): the forward
        # GEMM of a part is then X[:, rows]·W1[rows], the backward one writes dW1[rows], and
        # both, like the optimizer's update of W1[rows], touch contiguous memory only.
        edges = _split(D, T)
        self._features = [slice(edges[t], edges[t + 1]) for t in range(T)]
        self._rows = [slice(edges[t], edges[t + 1] + (t == T - 1)) for t in range(T)]

        # Forward partial sums: part t's X[:, rows]·W1[rows].  Part 0's goes straight into h.
        self._partials = np.empty((T, B, H), dtype)
        self._h = self._partials[0]  # hidden values (sum of the parts, then ReLU)
        self._dh = np.empty((B, H), dtype)
        # Θ(h) as 0/1 in ``dtype``: ReLU and mask are then same-dtype multiplies (13 us each at
        # 256x256), where np.maximum took 27 us and a float-by-bool multiply 35 us.
        self._on = np.empty((B, H), dtype)
        # w2ᵀ without its bias row, copied C-contiguous each batch (2.5k numbers): dh = df·w2ᵀ
        # from it took 27 us instead of 49 us from the transposed view.
        self._W2T = np.empty((K, H), dtype)
        # Scores are kept transposed, (K, b): the softmax's reductions over the K classes
        # then run along the long axis (np.max(axis=1) of a (256, 10) array took 8x longer).
        # A flat buffer, so that a short last batch still gets a contiguous (K, b) view.
        self._fT = np.empty(K * B, dtype)
        self._row = np.empty(B, dtype)  # per-example max, then Σ_k e^f, then L_i
        self._fy = np.empty(B, dtype)
        self._flat_y = np.empty(B, np.intp)  # flat index of (y_i, i) in the (K, b) scores
        self._arange = np.arange(B, dtype=np.intp)
        self._ones = np.ones(B, dtype)
        self._s = np.empty(B, dtype)  # normalised example weights of a weighted batch
        self.grads = Params(np.empty((D + 1, H), dtype), np.empty((H + 1, K), dtype))
        # Scratch for the updates: one block per part (parts run at once), one for W2.
        self._scratch = [np.empty((r.stop - r.start, H), dtype) for r in self._rows]
        self._scratch2 = np.empty((H + 1, K), dtype)
        # Shuffled batches are gathered into a double buffer (_batch_buffers).  When the
        # parts' feature blocks have equal widths, each part gets its own contiguous block
        # (a GEMM on a column slice of a wider array measured ~20% slower).
        self._equal_widths = D % T == 0
        self._gathered = None
        self._index = np.empty((T, B), np.intp)
        self._blas = None  # threadpoolctl controller, found on first use (scanning takes ms)
        self._level1 = None  # _Level1 of NumPy's OpenBLAS (False: none), found on first use
        # The compiled middle (relunet.kernels) splits the batch's examples over the parts:
        # each part gets its own share of dW2 (transposed), summed in part order afterwards.
        self._kernels_wanted = kernels
        self._kernels = None  # the kernels namespace (False: NumPy code), found on first use
        self._dW2T = np.empty((T, K, H), dtype)
        self._db2 = np.empty((T, K), dtype)
        self._sw = np.empty(B, np.float64)  # normalised example weights
        self._part_loss = [0.0] * T
        self._part_hits = [0.0] * T
        self._hit = np.empty(B, bool)
        self._pred = np.empty(B, np.intp)
        self._batch_hits = 0.0  # weighted fraction of the last batch whose top score was right
        #: Σ over the last :meth:`run_epoch`'s batches of (fraction right × batch weight): the
        #: running training accuracy, from the scores the batches computed anyway.
        self.epoch_hits = 0.0
        self._epoch_buffers = None  # the compiled epoch's gather buffers, on first use

    # ------------------------------------------------------------------ batches
    def gather(self, X, y, index):
        """The batch ``X[index], y[index]``: a view for a slice, else a copy into buffers."""
        if isinstance(index, slice):
            return X[index], y[index]
        b = len(index)
        rows, _, ys, _ = self._batch_buffers(blocks=False)[0]
        np.take(X, index, axis=0, out=rows[:b], mode="clip")
        np.take(y, index, out=ys[:b], mode="clip")
        return rows[:b], ys[:b]

    def _batch_buffers(self, blocks):
        """Two sets (a double buffer) of ``(X rows, [X block of each part], y, weights)``,
        with either the rows or the blocks None; allocated on first use."""
        if self._gathered is None or (self._gathered[0][1] is not None) != blocks:
            B, (D, _, _), T = self.batch_size, self.shape, self.n_parts
            self._gathered = [
                (None if blocks else np.empty((B, D), self.dtype),
                 [np.empty((B, D // T), self.dtype) for _ in range(T)] if blocks else None,
                 np.empty(B, np.intp), np.empty(B, np.float64))
                for _ in range(2)
            ]
        return self._gathered

    # ------------------------------------------------------------------ the three phases
    # A batch is: phase A (each part: its forward GEMM), barrier, phase B (everything small:
    # part 0 alone while the other parts gather the next batch; compiled, each part its share
    # of the examples, then its block of the next batch), barrier, phase C (each part: its
    # backward GEMM and the update of its rows; part 0 also updates W2, compiled each part
    # its rows of W2).

    def _forward_part(self, t, W1, Xt, bias=True):
        """Phase A: part t's share ``X[:, rows]·W1[rows]`` of x·w1 (the last part adds the
        bias row, unless ``bias`` is false: the compiled middle adds it in its own pass).
        ``Xt`` is the part's block of columns of the batch."""
        out, rows = self._partials[t, : Xt.shape[0]], self._features[t]
        np.dot(Xt, W1[rows], out=out)
        if bias and t == self.n_parts - 1:
            out += W1[-1]  # the note's constant-1 input, without building a column of ones

    def _middle(self, W2, yb, weights, scale, alpha, grad_W2):
        """Phase B: h, scores, loss, ``df`` (times ``scale``), dW2 and dh.  Returns the loss.

        ``grad_W2`` receives ``scale · ∂L/∂W2`` (α-term included).
        """
        b, K = yb.shape[0], self.shape[2]
        h, dh, on = self._h[:b], self._dh[:b], self._on[:b]
        fT = self._fT[: K * b].reshape(K, b)
        row, fy, flat = self._row[:b], self._fy[:b], self._flat_y[:b]
        for partial in self._partials[1:]:
            np.add(h, partial[:b], out=h)
        # h = ReLU(x·w1) = Θ(h)·h.  (Negatives become -0.0, which changes no sum.  A -inf
        # pre-activation, only possible once training has diverged, gives NaN, not 0.)
        np.greater(h, 0, out=on, casting="unsafe")
        np.multiply(h, on, out=h)
        np.dot(W2[:-1].T, h.T, out=fT)
        fT += W2[-1][:, None]  # fᵀ = (h·w2)ᵀ

        # L_i = log Σ_k e^{f_k - m} - (f_{y_i} - m), with m the example's max (stable)
        np.max(fT, axis=0, out=row)
        fT -= row
        np.multiply(yb, b, out=flat)
        flat += self._arange[:b]  # fT.flat[flat] is f[i, y_i]: no fancy-index temporaries
        fT_flat = fT.reshape(-1)
        np.take(fT_flat, flat, out=fy, mode="clip")
        pred = np.argmax(fT, axis=0, out=self._pred[:b])  # as predict: the first top score
        hit = np.equal(pred, yb, out=self._hit[:b])
        self._batch_hits = (float(np.count_nonzero(hit)) / b if weights is None
                            else float(np.sum(weights[hit])) / float(np.sum(weights)))
        np.exp(fT, out=fT)
        np.sum(fT, axis=0, out=row)
        fT /= row  # fT is now pᵀ
        np.log(row, out=row)
        row -= fy  # L_i
        # df = p - 1(y = k), times scale/b (or scale × the normalised weights)
        np.take(fT_flat, flat, out=fy, mode="clip")
        fy -= 1
        np.put(fT_flat, flat, fy, mode="clip")
        if weights is None:
            data_loss = float(np.sum(row, dtype=np.float64)) / b
            fT *= scale / b
        else:
            s = self._s[:b]
            s[:] = weights / weights.sum()
            data_loss = float(np.dot(row.astype(np.float64), s))
            s *= scale
            fT *= s

        # dW2 = h·df + α w2 ; the bias row's input is the constant 1: Σ_i df_i = dfᵀ·ones
        np.dot(h.T, fT.T, out=grad_W2[:-1])
        np.dot(fT, self._ones[:b], out=grad_W2[-1])
        if alpha:
            np.multiply(W2, scale * alpha, out=self._scratch2)
            grad_W2 += self._scratch2
        # dh = df·w2ᵀ through the ReLU's Heaviside Θ(h)
        W2T = self._W2T
        np.copyto(W2T, W2[:-1].T)
        np.dot(fT.T, W2T, out=dh)
        np.multiply(dh, on, out=dh)
        return data_loss

    def _use_kernels(self):
        """The :mod:`relunet.kernels` namespace if the compiled middle is to be used, else None."""
        if self._kernels is None:
            wanted = self._kernels_wanted
            (D, H, _), kernels = self.shape, None
            big = 4 * self.batch_size * D * H >= MIN_FLOPS_FOR_KERNELS
            floats = self.dtype in (np.float32, np.float64)
            if floats and (wanted == "numba" or (wanted is None and big)):
                from . import kernels as _kernels_module

                kernels = _kernels_module.load()
            if wanted == "numba" and kernels is None:
                raise ImportError(
                    "kernels='numba' needs numba: pip install 'relunet[fast]' "
                    "(and RELUNET_KERNELS not set to 'numpy')")
            self._kernels = kernels or False
        return self._kernels or None

    def _middle_part(self, kernels, t, W1, W2, yb, weights, scale):
        """Phase B with the compiled kernel: part t's share of the examples (all of them when
        one thread runs the parts in turn).  Stores its Σ sw_i L_i in ``_part_loss[t]``.

        ``self._W2T`` must hold ``w2ᵀ`` (without the bias row) of this batch.
        """
        b = yb.shape[0]
        cut = _split(b, self.n_parts)
        i0, i1 = cut[t], cut[t + 1]
        sw = self._sw
        if weights is None:
            sw[i0:i1] = 1.0 / b
        else:
            np.divide(weights[i0:i1], weights.sum(), out=sw[i0:i1])  # same Σ in every part
        # h, softmax, df, dh and this part's share of dW2, GIL released (relunet.kernels)
        self._part_loss[t], self._part_hits[t] = kernels.middle(
            self._partials, W1[-1], self._W2T, W2[-1], yb, sw, scale, i0, i1, self._dh,
            self._dW2T[t], self._db2[t])

    def _batch_loss(self):
        """The batch's mean (or weighted) data loss, from the parts' shares (fixed order)."""
        return math.fsum(self._part_loss)

    def _backward_part(self, t, Xt, grad):
        """Phase C: part t's rows of ``scale · ∂L_d/∂W1`` (without the α-term: the update
        adds it) into ``grad``, from ``dh`` (which already carries ``scale``)."""
        b, features = Xt.shape[0], self._features[t]
        dh = self._dh[:b]
        np.dot(Xt.T, dh, out=grad[features])
        if t == self.n_parts - 1:
            np.dot(self._ones[:b], dh, out=grad[-1])  # Σ_i dh_i, BLAS gemv: 3x np.sum's

    # ------------------------------------------------------------------ public entry points
    def loss_and_grads(self, params, Xb, yb, alpha, weights=None):
        """Mean data loss of the batch; fills :attr:`grads` with ``∂L/∂W`` (α-term included).

        The parts run one after another on this thread; the numbers are the same as in
        :meth:`run_epoch`.

        Parameters
        ----------
        params : Params
            W1 of shape (D+1, H) and W2 of shape (H+1, K), C-contiguous, of ``dtype``.
        Xb : array of shape (b, D), b <= batch_size, rows contiguous, of ``dtype``
        yb : int array of shape (b,)
        alpha : float
        weights : array of shape (b,), optional
            Example weights of the batch; they are normalised to sum to 1 here.

        Returns
        -------
        float
            ``L_d / b`` (or the weighted mean), without the α/2 Σ w² term.
        """
        check_class_indices(yb, self.shape[2])
        W1, W2 = params
        dW1, dW2 = self.grads
        blocks = [Xb[:, features] for features in self._features]
        kernels = self._use_kernels()
        for t in range(self.n_parts):
            self._forward_part(t, W1, blocks[t], bias=kernels is None)
        if kernels is None:
            loss = self._middle(W2, yb, weights, 1.0, alpha, dW2)
        else:
            np.copyto(self._W2T, W2[:-1].T)
            try:
                for t in range(self.n_parts):
                    self._middle_part(kernels, t, W1, W2, yb, weights, 1.0)
                kernels.reduce_w2(self._dW2T, self._db2, self.n_parts, W2, alpha, dW2, 0,
                                  W2.shape[0])
            except Exception as exc:  # numba could not compile them (see run_epoch)
                if not kernels_module.give_up(exc):
                    raise
                self._kernels = False
                return self.loss_and_grads(params, Xb, yb, alpha, weights)
            loss = self._batch_loss()
            self._batch_hits = math.fsum(self._part_hits)
        for t in range(self.n_parts):
            self._backward_part(t, blocks[t], dW1)
        if alpha:  # the α-term, through the per-part scratch (no temporary)
            for t, rows in enumerate(self._rows):
                np.multiply(W1[rows], alpha, out=self._scratch[t])
                dW1[rows] += self._scratch[t]
        return loss

    def run_epoch(self, params, X, y, sample_weight, order, alpha, optimizer, lr):
        """One pass of mini-batch updates of ``params`` (in place) over ``(X, y)``.

        Parameters
        ----------
        params : Params
            Updated in place.
        X : array of shape (n, D), C-contiguous, of ``dtype``
        y : int array of shape (n,)
        sample_weight : float array of shape (n,) or None
        order : int array of shape (m,) or None
            The examples, in order, that make up the batches: a permutation of ``range(n)``,
            or part of one (the trainer runs an epoch in a few such slices, to report
            progress between them); None: ``X`` in order, batches are views.
        alpha : float
        optimizer : an optimizer of :mod:`relunet.optim`
        lr : float
            Learning rate of this epoch.

        Returns
        -------
        (total, weight) : (float, float)
            Σ over batches of the batch's mean data loss times its weight (its size, or its
            sum of example weights), and Σ of those weights.  If a batch's loss is not
            finite, the epoch stops before that batch's update and ``total`` is that loss.
            :attr:`epoch_hits` gets the matching Σ of (fraction of the batch whose true class
            had the top score) × weight: ``epoch_hits / weight`` is the running accuracy.
        """
        check_class_indices(y, self.shape[2])  # once per epoch, for both loops
        self.epoch_hits = 0.0
        kernels = self._use_kernels()
        rule = _rule_of(optimizer) if kernels is not None else None
        # One batch per epoch (full-batch "gd") has no per-batch Python to save, and the
        # compiled epoch would gather it, i.e. copy X: the NumPy loop takes X as it is.
        n_rows = X.shape[0] if order is None else len(order)
        if rule is not None and X.flags.c_contiguous and n_rows > self.batch_size:
            return self._run_epoch_compiled(kernels, rule, params, X, y, sample_weight, order,
                                            alpha, optimizer, lr)
        W1, W2 = params
        dW1, dW2 = self.grads
        T, B, n = self.n_parts, self.batch_size, n_rows
        starts = range(0, n, B)
        shared = {"total": 0.0, "weight": 0.0, "hits": 0.0, "stop": False, "coeffs": None}
        state1 = [optimizer.state_of(0, rows) for rows in self._rows]
        state2 = optimizer.state_of(1)

        use_blocks = self._equal_widths and X.flags.c_contiguous
        if order is not None:
            buffers = self._batch_buffers(use_blocks)
        if order is not None and use_blocks:
            # Row i of X is rows i*T .. i*T+T-1 of this view, one per part: np.take gathers
            # a part's block of columns of the batch straight into its own buffer.
            X_blocks = X.reshape(X.shape[0] * T, X.shape[1] // T)
        n_chunks = 2 * T  # the next batch is gathered in chunks, taken by whoever is free

        def batch(k):
            """Batch k: each part's block of columns of X, y and the example weights."""
            start = starts[k]
            stop = min(start + B, n)
            if order is None:
                wb = None if sample_weight is None else sample_weight[start:stop]
                Xb = X[start:stop]
                return [Xb[:, f] for f in self._features], y[start:stop], wb
            b = stop - start
            rows, blocks, ys, ws = buffers[k % 2]
            xs = ([rows[:b, f] for f in self._features] if blocks is None
                  else [block[:b] for block in blocks])
            return xs, ys[:b], (None if sample_weight is None else ws[:b])

        def take_x(rows, blocks, index, lo, hi, t, block_index):
            """``X[index]`` into rows lo:hi of the buffer: whole rows, or part t's block of
            columns (``block_index``: scratch of len(index))."""
            if blocks is None:
                np.take(X, index, axis=0, out=rows[lo:hi], mode="clip")
                return
            np.multiply(index, T, out=block_index)
            block_index += t
            np.take(X_blocks, block_index, axis=0, out=blocks[t][lo:hi], mode="clip")

        def take_labels(ys, ws, index, lo, hi):
            np.take(y, index, out=ys[lo:hi], mode="clip")
            if sample_weight is not None:
                np.take(sample_weight, index, out=ws[lo:hi], mode="clip")

        def gather(k, chunks):
            """Gather the chunks handed out by ``chunks`` (shared iterator) of batch k."""
            if order is None or k >= len(starts):
                return
            start = starts[k]
            rows, blocks, ys, ws = buffers[k % 2]
            cut = _split(min(start + B, n) - start, n_chunks)
            for c in chunks:  # next() on a shared iterator: each chunk goes to one thread
                lo, hi = cut[c], cut[c + 1]
                index = order[start + lo : start + hi]
                take_labels(ys, ws, index, lo, hi)
                for t in range(1 if blocks is None else T):
                    take_x(rows, blocks, index, lo, hi, t, self._index[0, lo:hi])

        errors = np.geterr()  # NumPy's error state is per thread: hand the caller's on
        if self._level1 is None:
            self._level1 = _level1_blas(self.dtype) or False
        level1 = self._level1 or None

        def account(loss, yb, wb):
            """Add the batch's loss to the totals; False (and stop) if it is not finite."""
            if not math.isfinite(loss):
                shared["total"], shared["stop"] = loss, True
                return False
            w = yb.shape[0] if wb is None else float(wb.sum())
            shared["total"] += loss * w
            shared["weight"] += w
            shared["hits"] += self._batch_hits * w
            return True

        def work(t, barrier):
            with np.errstate(**errors):
                for k in range(len(starts)):
                    xs, yb, wb = batch(k)
                    self._forward_part(t, W1, xs[t])
                    if t == 0:
                        shared["chunks"] = iter(range(n_chunks))
                    barrier.wait()
                    if t == 0:
                        c = shared["coeffs"] = optimizer.begin(lr)
                        loss = self._middle(W2, yb, wb, c.scale, alpha, dW2)
                        if account(loss, yb, wb):
                            optimizer.update(W2, dW2, state2, self._scratch2, c)
                    gather(k + 1, shared["chunks"])
                    barrier.wait()
                    if shared["stop"]:
                        return
                    c, rows = shared["coeffs"], self._rows[t]
                    self._backward_part(t, xs[t], dW1)
                    optimizer.update(W1[rows], dW1[rows], state1[t], self._scratch[t], c,
                                     c.scale * alpha)

        gather(0, iter(range(n_chunks)))
        if self._blas is None:
            self._blas = _blas_controller() or False
        # our threads split the work, not BLAS's; also with one part, so that a fit gives the
        # same numbers whether or not another fit holds BLAS at one thread meanwhile
        with _one_blas_thread(self._blas or None):
            optimizer.blas = level1
            try:
                _run_parts(T, work)
            finally:
                optimizer.blas = None
        if shared["stop"]:
            return shared["total"], 1.0
        self.epoch_hits = shared["hits"]
        return shared["total"], shared["weight"]

    def _run_epoch_compiled(self, kernels, rule, params, X, y, sample_weight, order, alpha,
                            optimizer, lr):
        """:meth:`run_epoch` with every part's whole epoch one compiled call (GIL released):
        :func:`relunet.kernels._epoch_part`, which does what ``work`` does above, batch by batch.

        The rule's coefficients of all the epoch's steps are taken up front (``begin``), so
        after a non-finite loss Adam's step count is ahead: the trainer restores it.
        """
        W1, W2 = params
        dW1, dW2 = self.grads
        T, B, (D, H, _) = self.n_parts, self.batch_size, self.shape
        N = X.shape[0]
        n = N if order is None else len(order)
        n_batches = -(-n // B)
        given_order, steps_before = order, getattr(optimizer, "t", None)
        if order is None:
            order = np.arange(n)
        elif order.ndim != 1 or (n and (order.min() < 0 or order.max() >= N)):
            raise ValueError(f"order must be row numbers in 0..{N - 1}")
        scale, steps = np.empty(n_batches), np.empty((n_batches, 2), self.dtype)
        for k in range(n_batches):  # the rule's coefficients of each step (its t for Adam)
            c = optimizer.begin(lr)
            scale[k], steps[k] = c.scale, (c.scale * alpha, c.lr)
        code, hyper = rule

        def state(i):  # the rule's state of parameter i as (m, v), unused slots empty
            empty = np.empty((0, 0), self.dtype)
            return (*optimizer.state_of(i), empty, empty)[:2]

        if self._epoch_buffers is None:
            width = max(r.stop - r.start for r in self._features)
            self._epoch_buffers = (np.empty((2, T, B * width), self.dtype),
                                   np.empty((2, B), np.intp), np.empty((2, B), np.float64))
        blocks, ys, ws = self._epoch_buffers
        edges = np.array(_split(D, T), np.intp)  # part t's input features (rows of W1)
        # Part t also sums and applies rows w2_edges[t]:w2_edges[t+1] of dW2 (the last: the
        # bias row too), so that no part waits at the next barrier for another's W2 work.
        w2_edges = np.array(_split(H + 1, T), np.intp)
        sync = np.zeros(kernels_module.SLOT * (T + 1), np.int64)
        work = kernels_module.EpochWork(
            edges, w2_edges, blocks, ys, ws, np.empty(n_batches), self._partials, self._dh,
            self._dW2T, self._db2, self._W2T, self._sw, self._ones, np.zeros(T),
            np.empty(n_batches), sync, np.zeros(T), np.empty(n_batches))
        data = kernels_module.EpochData(
            X, np.ascontiguousarray(order, np.intp), np.ascontiguousarray(y, np.intp),
            np.empty(0) if sample_weight is None
            else np.ascontiguousarray(sample_weight, np.float64))
        net = kernels_module.EpochNet(W1, W2, dW1, dW2, *state(0), *state(1))
        rule = kernels_module.EpochRule(code, np.array(hyper, self.dtype), scale, steps)
        if self._blas is None:
            self._blas = _blas_controller() or False
        try:
            with _one_blas_thread(self._blas or None):  # as in run_epoch
                done = _run_compiled_parts(
                    T, lambda t: kernels.epoch_part(t, data, net, rule, work), sync)
        except Exception as exc:
            # numba compiles on the first call, before any work: if it cannot, nothing has
            # changed yet, and the NumPy loop runs the epoch instead.
            if not kernels_module.give_up(exc):
                raise
            if steps_before is not None:  # hand back Adam's steps taken up front
                optimizer.t = steps_before
            self._kernels = False
            return self.run_epoch(params, X, y, sample_weight, given_order, alpha, optimizer,
                                  lr)
        if done < n_batches:  # batch done-1 gave a non-finite loss and was not applied
            return float(work.losses[done - 1]), 1.0
        total = weight = hits = 0.0
        for k in range(n_batches):  # in batch order, as the NumPy loop adds them up
            w = float(work.batch_weight[k])
            total += float(work.losses[k]) * w
            hits += float(work.hits[k]) * w
            weight += w
        self.epoch_hits = hits
        return total, weight


# ------------------------------------------------------------------------------ prediction
# Rows per forward pass: the (chunk, H) hidden block (1 MiB at H=256, float32) stays in a
# core's L2 cache (2 MiB here) between the first GEMM, the bias, the ReLU and the second GEMM.
# Measured on 8192 rows of 784 -> 256 -> 10 float32, one BLAS thread, best of 18 calls:
# 256 rows 30.9 ms, 512 28.1, 1024 26.9, 2048 27.1, all 8192 at once 26.8 (OpenBLAS packs
# W1 once per call, so smaller blocks pay that more often).
PREDICT_CHUNK = 1024
# A prediction is split over threads only when each part gets at least this many flops
# (~1.5 ms of one core's GEMM; ~1,000 rows of a 784 -> 256 -> 10 network on two threads).
# Below it the call runs on this thread with BLAS as configured.  Measured on 2 cores
# (forward_rows, 784 -> 256 -> 10, float32, median us, 2026-11-30):
#
#     rows   quiet: split / OpenBLAS threads   4 busy processes: split / OpenBLAS threads
#      300            949 / 673                               3,917 / 7,824
#    1,024          2,109 / 1,952                             7,977 / 17,099
#    2,000          3,913 / 3,788                            11,960 / 47,875
#
# On a quiet machine handing rows to a pool thread costs ~95 us (waking a sleeping thread;
# OpenBLAS's own threads spin and wake at once), so OpenBLAS's threads win below ~1,500
# rows; on a busy one its spinning threads lose their cores and our split wins by 2-4x.
# The threshold follows the quiet machine up to where the two are within ~10 %.
MIN_FLOPS_PER_PREDICT_THREAD = 2e8

_pool = None
_pool_lock = threading.Lock()


_process_controller = None


def _process_blas():
    """The BLAS controller of the libraries loaded at the first call (made once: building one
    lists the process's libraries); None without threadpoolctl."""
    global _process_controller
    if _process_controller is None:
        _process_controller = _blas_controller() or False
    return _process_controller or None


def _after_fork_in_child():
    """A forked child has none of the parent's threads: fresh pool, locks and BLAS count
    (a lock held by a parent's thread at the fork would never be released)."""
    global _pool, _pool_lock, _blas_lock, _blas_held
    _pool, _pool_lock = None, threading.Lock()
    _blas_lock = threading.Lock()
    _blas_held = {"users": 0, "limiter": None, "threads": None}


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _usable_cpus():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _executor():
    global _pool
    with _pool_lock:
        if _pool is None:
            from concurrent.futures import ThreadPoolExecutor

            _pool = ThreadPoolExecutor(max_workers=max(1, (_usable_cpus() or 1) - 1),
                                       thread_name_prefix="relunet-predict")
        return _pool


def _softmax_rows(f):
    """``f`` (n, K) replaced by ``softmax(f)`` row by row, in place (largest score 0 first).

    NumPy reduces a short last axis slowly (``f.max(axis=1)``: 27 us for 512 x 10), so the
    row maxima come from the transposed copy, reduced along its long axis (3 us), and the row
    sums from a BLAS ``f·1`` (2 us): 14 us in all instead of 52.
    """
    if f.shape[0] == 1:  # one row (single-row latency): whole-array reductions are fastest
        f -= f.max()
        np.exp(f, out=f)
        f /= f.sum()
        return
    f -= f.T.copy().max(axis=0)[:, None]
    np.exp(f, out=f)
    f /= np.dot(f, np.ones(f.shape[1], dtype=f.dtype))[:, None]


def _block(W1, W2, Xb, hb, fb, proba):
    """Scores (or probabilities) of the rows ``Xb`` into ``fb`` (a new array if None), with
    ``hb`` (or a new array) for the hidden layer; and whether every ``x·w1`` was finite.

    A NaN or infinity in a row of X makes every pre-activation of that row non-finite (NaN
    propagates; ±inf times a weight is ±inf or NaN), so one sum per block -- cheap, the block
    is in cache -- tells whether X needs the full check.  (After the ReLU it could not:
    ``max(-inf, 0) = 0``.)  Callers ignore "invalid" floating-point errors (``np.errstate``).
    """
    hb = np.dot(Xb, W1[:-1], out=hb)
    hb += W1[-1]
    finite = math.isfinite(hb.sum())
    np.maximum(hb, 0, out=hb)  # h = ReLU(x·w1)
    fb = np.dot(hb, W2[:-1], out=fb)
    fb += W2[-1]  # f = h·w2
    if proba:
        _softmax_rows(fb)
    return fb, finite


def _forward_rows(W1, W2, X, out, lo, hi, chunk, proba):
    """Scores (or probabilities) of rows ``lo:hi`` of X into ``out``, ``chunk`` rows at a time
    through one reused hidden buffer; True if every pre-activation ``x·w1`` was finite."""
    h = np.empty((min(hi - lo, chunk), W1.shape[1]), dtype=W1.dtype)
    finite = True
    # inf·0 and inf-inf from a non-finite X are reported by the caller's check, not as a
    # RuntimeWarning first (errstate is per thread: set here, in every part)
    with np.errstate(invalid="ignore"):
        for start in range(lo, hi, chunk):
            stop = min(start + chunk, hi)
            finite &= _block(W1, W2, X[start:stop], h[: stop - start], out[start:stop],
                             proba)[1]
    return finite


def forward_rows(params, X, *, proba=False, chunk=PREDICT_CHUNK, n_threads=None):
    """Scores ``f`` or probabilities ``softmax(f)`` (N, K) of X, and whether X looked finite.

    The prediction fast path: ``chunk`` rows at a time through both layers (and the softmax)
    while they are in cache, into one preallocated output; on large inputs the rows are split
    into ``n_threads`` consecutive parts run by a thread pool with BLAS on one thread each (the
    same reason as in training: OpenBLAS's own threads spin-wait between small GEMMs).

    Parameters
    ----------
    params : Params
        W1 (D+1, H) and W2 (H+1, K).
    X : array of shape (N, D)
        Converted to a C-contiguous array of W1's dtype if it is not one.
    proba : bool
        Return ``softmax(f)`` instead of ``f`` (computed in place, block by block).
    chunk : int
        Rows per forward pass.
    n_threads : int, optional
        Threads to split the rows over.  Default: as many as BLAS would use now (so
        ``threadpoolctl.threadpool_limits(1)`` keeps prediction on one thread), at most the
        usable CPUs, and only as many as give each part ``MIN_FLOPS_PER_PREDICT_THREAD``.

    Returns
    -------
    out : array of shape (N, K), W1's dtype
    finite : bool
        False if some pre-activation was not finite: X holds NaN or ±inf -- or, with
        finite X, a pre-activation overflowed -- and the caller should check X itself.
    """
    W1, W2 = params
    if X.dtype != W1.dtype or not X.flags.c_contiguous:  # one answer dtype at every size
        X = np.ascontiguousarray(X, dtype=W1.dtype)
    n = X.shape[0]
    flops = 2.0 * n * W1.shape[1] * (W1.shape[0] + W2.shape[1])
    parts = 1
    if n > 1 and flops >= 2 * MIN_FLOPS_PER_PREDICT_THREAD:
        if n_threads is None:
            n_threads = default_threads()
        parts = int(min(n_threads, flops // MIN_FLOPS_PER_PREDICT_THREAD, n))
    if parts <= 1 and n <= chunk:  # one block: no buffers to set up (single-row latency)
        with np.errstate(invalid="ignore"):
            return _block(W1, W2, X, None, None, proba)
    out = np.empty((n, W2.shape[1]), dtype=W1.dtype)
    if parts <= 1:
        return out, _forward_rows(W1, W2, X, out, 0, n, chunk, proba)
    edges = _split(n, parts)
    with _one_blas_thread(_process_blas()):  # shared with training's epochs
        pool = _executor()
        futures = [pool.submit(_forward_rows, W1, W2, X, out, edges[p], edges[p + 1], chunk,
                               proba) for p in range(1, parts)]
        try:
            finite = _forward_rows(W1, W2, X, out, edges[0], edges[1], chunk, proba)
        finally:
            results = [f.result() for f in futures]  # wait for all, re-raise the first error
    return out, finite and all(results)


def predict_scores(params, X, *, chunk=PREDICT_CHUNK, n_threads=None):
    """Scores ``f`` (N, K) of :func:`relunet.network.forward`, in bounded memory.

    Works through ``X`` ``chunk`` rows at a time with a reused (chunk, H) hidden buffer per
    thread, so predicting a million rows needs no million-by-H temporary (see
    :func:`forward_rows`, which this calls).

    Parameters
    ----------
    params : Params
        W1 (D+1, H) and W2 (H+1, K), of X's dtype.
    X : array of shape (N, D), C-contiguous
    chunk : int
        Rows per forward pass.
    n_threads : int, optional
        See :func:`forward_rows`.
    """
    return forward_rows(params, X, chunk=chunk, n_threads=n_threads)[0]
