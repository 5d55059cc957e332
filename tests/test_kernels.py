"""The compiled kernels (relunet.kernels, numba) compute what the NumPy code computes.

The references are network.loss_and_grads (the note's math, checked by hand, by finite
differences and against scikit-learn elsewhere) and the update rules' NumPy code.  The
Workspace on both paths is held to the reference by a property test in test_fastpath.py, and
the whole training loop on both paths to a naive loop in test_speed_equivalence.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from _problems import assert_close, problem, reference, rule_updates

import relunet.fastpath as fastpath
import relunet.kernels as kernels_module
from relunet.fastpath import Workspace
from relunet.network import init_params
from relunet.optim import SGD, make_optimizer

numba = pytest.importorskip("numba", reason="the compiled kernels need numba (relunet[fast])")


@pytest.fixture(autouse=True)
def _kernels_on(monkeypatch):
    monkeypatch.delenv("RELUNET_KERNELS", raising=False)


# ------------------------------------------------------------------ the middle of a batch


@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_float32_stays_float32_and_matches_float64(weighted):
    params, X, y, sw = problem(3, 50, 8, 16, 4, dtype=np.float32)
    sw = sw if weighted else None
    ws = Workspace(8, 16, 4, 64, np.float32, n_threads=2, kernels="numba")
    L = ws.loss_and_grads(params, X, y, 1e-2, sw)
    assert ws.grads.W1.dtype == np.float32 and ws.grads.W2.dtype == np.float32
    assert_close(L, ws.grads, *reference(params, X, y, 1e-2, sw), rtol=1e-5)


def test_compiled_and_numpy_paths_agree_on_an_mnist_sized_batch():
    # The shapes of the benchmark's reference configuration, in float32.
    params, X, y, _ = problem(0, 256, 784, 256, 10, dtype=np.float32)
    X = np.abs(X)
    results = []
    for kernels in ("numpy", "numba"):
        ws = Workspace(784, 256, 10, 256, np.float32, n_threads=2, kernels=kernels)
        L = ws.loss_and_grads(params, X, y, 1e-4)
        results.append((L, [g.copy() for g in ws.grads]))
    (L0, g0), (L1, g1) = results
    assert L1 == pytest.approx(L0, rel=1e-5)
    for a, b in zip(g0, g1, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(a).max())


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_weight_gives_a_non_finite_loss(bad):
    # fastmath is on without the no-NaN/no-inf flags: a diverged network must not be masked
    # (e.g. the ReLU must not turn a NaN or -inf pre-activation into 0).
    params, X, y, _ = problem(1, 8, 3, 4, 3)
    params.W1[0, :] = bad  # every hidden unit of every example with x_0 != 0
    ws = Workspace(3, 4, 3, 8, np.float64, kernels="numba")
    assert not np.isfinite(ws.loss_and_grads(params, X, y, 0.0))
    numpy_ws = Workspace(3, 4, 3, 8, np.float64, kernels="numpy")
    with np.errstate(invalid="ignore"):
        assert not np.isfinite(numpy_ws.loss_and_grads(params, X, y, 0.0))


# ------------------------------------------------------------------ the update rules


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver,nesterov", [("sgd", True), ("sgd", False), ("adam", None),
                                             ("gd", None)])
def test_compiled_updates_equal_the_numpy_rules(solver, nesterov, dtype):
    W_np, s_np = rule_updates(solver, dtype, None, nesterov)
    W_c, s_c = rule_updates(solver, dtype, kernels_module.load().update, nesterov)
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    assert W_c.dtype == dtype
    np.testing.assert_allclose(W_c, W_np, rtol=rtol, atol=rtol)
    for a, b in zip(s_c, s_np, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


# ------------------------------------------------------------------ choosing the path


def test_the_environment_variable_turns_the_kernels_off(monkeypatch):
    monkeypatch.setenv("RELUNET_KERNELS", "numpy")
    assert kernels_module.load() is None
    monkeypatch.setattr(fastpath, "MIN_FLOPS_FOR_KERNELS", 0)
    ws = Workspace(3, 4, 2, 5, np.float64)
    params, X, y, _ = problem(0, 5, 3, 4, 2)
    ws.loss_and_grads(params, X, y, 0.0)
    assert ws._kernels is False


def test_by_default_small_batches_use_numpy_and_big_ones_the_kernels(monkeypatch):
    params, X, y, _ = problem(0, 5, 3, 4, 2)
    small = Workspace(3, 4, 2, 5, np.float64)
    small.loss_and_grads(params, X, y, 0.0)
    assert small._kernels is False  # not worth importing numba for
    monkeypatch.setattr(fastpath, "MIN_FLOPS_FOR_KERNELS", 4 * 5 * 3 * 4)
    big = Workspace(3, 4, 2, 5, np.float64)
    big.loss_and_grads(params, X, y, 0.0)
    assert big._kernels


def test_asking_for_the_kernels_without_numba_says_how_to_get_them(monkeypatch):
    monkeypatch.setattr(kernels_module, "load", lambda: None)
    params, X, y, _ = problem(0, 5, 3, 4, 2)
    ws = Workspace(3, 4, 2, 5, np.float64, kernels="numba")
    with pytest.raises(ImportError, match=r"relunet\[fast\]"):
        ws.loss_and_grads(params, X, y, 0.0)


def test_a_broken_numba_warns_and_leaves_the_numpy_code(monkeypatch):
    def broken():
        raise OSError("libllvmlite.so: cannot open shared object file")

    monkeypatch.setattr(kernels_module, "_KERNELS", None)
    monkeypatch.setattr(kernels_module, "_compile", broken)
    with pytest.warns(RuntimeWarning, match="could not be used.*NumPy code"):
        assert kernels_module.load() is None
    assert kernels_module.load() is None  # said once, remembered


def test_bad_kernels_arguments_are_refused():
    with pytest.raises(ValueError, match="kernels must be"):
        Workspace(3, 4, 2, 5, np.float64, kernels="fortran")
    with pytest.raises(ValueError, match="float32 and float64"):
        Workspace(3, 4, 2, 5, np.float16, kernels="numba")


# ------------------------------------------------------------------ the compiled epoch


def run_epochs(kernels, X, y, solver="sgd", n_threads=2, n_epochs=2, batch=64, opt_class=None):
    """Weights and (total, weight) per epoch of ``run_epoch`` on the path ``kernels``."""
    D, K = X.shape[1], int(y.max()) + 1
    params = init_params(D, 16, K, rng=3, dtype=X.dtype)
    opt = make_optimizer(solver, params) if opt_class is None else opt_class(params)
    ws = Workspace(D, 16, K, batch, X.dtype, n_threads=n_threads, kernels=kernels)
    results = [ws.run_epoch(params, X, y, None, np.random.default_rng(e).permutation(len(y)),
                            1e-3, opt, 0.02) for e in range(n_epochs)]
    return params, results, ws


def test_the_compiled_epoch_equals_the_numpy_loop_in_float32_mnist_shapes():
    # 784 features in two blocks of 392, as in the benchmark; the GEMMs go through numba's
    # np.dot (SciPy's BLAS), the NumPy loop's through NumPy's.
    rng = np.random.default_rng(0)
    X = rng.random((600, 784), dtype=np.float32)
    y = rng.integers(0, 10, 600)
    (p_np, r_np, _), (p_c, r_c, ws) = (run_epochs(k, X, y, "adam") for k in ("numpy", "numba"))
    assert ws._kernels
    for a, b in zip(p_c, p_np, strict=True):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * np.abs(b).max())
    for (t_c, w_c), (t_np, w_np) in zip(r_c, r_np, strict=True):
        assert t_c / w_c == pytest.approx(t_np / w_np, rel=1e-5)


def test_the_compiled_epoch_refuses_a_bad_order():
    X, y = np.zeros((10, 4)), np.zeros(10, np.intp)
    params = init_params(4, 3, 2, rng=0)
    ws = Workspace(4, 3, 2, 4, np.float64, n_threads=2, kernels="numba")
    opt = make_optimizer("sgd", params)
    for order in (np.arange(1, 11), np.arange(-1, 9), np.arange(3, 12)):
        with pytest.raises(ValueError, match="order must be row numbers in 0..9"):
            ws.run_epoch(params, X, y, None, order, 0.0, opt, 0.1)


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
def test_an_epoch_in_slices_of_whole_batches_equals_the_epoch_in_one_call(kernels):
    # The trainer runs an epoch in slices (to report progress between them): the same
    # batches, so the same weights, loss and running accuracy.
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(100, 6)), rng.integers(0, 3, 100)
    order = rng.permutation(100)
    results = []
    for cuts in ([0, 100], [0, 40, 80, 100]):
        params = init_params(6, 5, 3, rng=0)
        ws = Workspace(6, 5, 3, 10, np.float64, n_threads=2, kernels=kernels)
        opt = make_optimizer("adam", params)
        total = weight = hits = 0.0
        for a, b in zip(cuts[:-1], cuts[1:], strict=False):
            t, w = ws.run_epoch(params, X, y, None, order[a:b], 1e-3, opt, 0.05)
            total, weight, hits = total + t, weight + w, hits + ws.epoch_hits
        results.append((params, total / weight, hits / weight))
    (p1, l1, a1), (p2, l2, a2) = results
    assert l1 == pytest.approx(l2, rel=1e-12) and a1 == pytest.approx(a2, rel=1e-12)
    assert 0 < a1 < 1
    for A, B in zip(p1, p2, strict=True):
        np.testing.assert_allclose(A, B, rtol=1e-12)


def test_rules_and_data_the_kernels_dont_cover_take_the_numpy_loop():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((100, 6)), rng.integers(0, 3, 100)
    calls = []

    class MySGD(SGD):
        def update(self, *args, **kw):  # a rule of one's own: only its update knows it
            calls.append(1)
            return super().update(*args, **kw)

    p_mine, r_mine, _ = run_epochs("numba", X, y, opt_class=MySGD, n_epochs=1)
    assert calls  # the loop called the rule's own update
    p_np, r_np, _ = run_epochs("numpy", X, y, n_epochs=1)
    for a, b in zip(p_mine, p_np, strict=True):
        np.testing.assert_array_equal(a, b)
    # Columns of a wider array are not C-contiguous: the NumPy loop takes them as they are.
    wide = np.repeat(X, 2, axis=1)[:, ::2]
    p_strided, _, _ = run_epochs("numba", wide, y, n_epochs=1)
    p_c, _, _ = run_epochs("numba", X, y, n_epochs=1)
    for a, b in zip(p_strided, p_c, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_a_full_batch_epoch_is_not_gathered_into_a_copy_of_x():
    # Full-batch steepest descent: one batch of all N rows.  Gathering it (as the compiled
    # epoch gathers every batch, into two buffers) would hold two more copies of X.
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((300, 6)), rng.integers(0, 3, 300)
    params = init_params(6, 16, 3, rng=3)
    ws = Workspace(6, 16, 3, 300, np.float64, n_threads=2, kernels="numba")
    ws.run_epoch(params, X, y, None, None, 0.0, make_optimizer("gd", params), 0.1)
    assert ws._epoch_buffers is None and ws._gathered is None


@pytest.mark.parametrize("n_threads", [1, 2])
def test_ctrl_c_stops_every_part_of_a_compiled_epoch(n_threads, monkeypatch):
    import threading

    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((100_000, 8)), rng.integers(0, 3, 100_000)
    params = init_params(8, 16, 3, rng=3)
    ws = Workspace(8, 16, 3, 4, np.float64, n_threads=n_threads, kernels="numba")  # 25000 batches
    compiled, returned = ws._use_kernels(), []

    def epoch_part(t, *args):
        returned.append(compiled.epoch_part(t, *args))
        return returned[-1]

    ws._kernels = SimpleNamespace(epoch_part=epoch_part)
    real_join, pressed = threading.Thread.join, []

    def join(self, timeout=None):
        if not pressed and self.name.startswith("relunet-part"):
            pressed.append(True)
            raise KeyboardInterrupt  # as if Ctrl-C arrived while the epoch runs
        return real_join(self, timeout)

    monkeypatch.setattr(threading.Thread, "join", join)
    with pytest.raises(KeyboardInterrupt):
        ws.run_epoch(params, X, y, None, None, 0.0, make_optimizer("sgd", params), 0.01)
    assert returned == [-1] * n_threads  # stopped at a meeting, long before the end
    assert not [t for t in threading.enumerate() if t.name.startswith("relunet-part")]


def test_a_numba_that_cannot_compile_the_epoch_warns_and_leaves_the_numpy_loop(monkeypatch):
    # e.g. a numba release whose compiler API differs from the one the kernels were written
    # for: the error comes from the first call, before any work, so the epoch can still run.
    from numba.core.errors import TypingError

    rng = np.random.default_rng(6)
    X, y = rng.standard_normal((100, 6)), rng.integers(0, 3, 100)
    p_np, r_np, _ = run_epochs("numpy", X, y, "adam", n_epochs=1)
    params = init_params(6, 16, 3, rng=3)
    opt = make_optimizer("adam", params)
    ws = Workspace(6, 16, 3, 64, np.float64, n_threads=2, kernels="numba")
    compiled = ws._use_kernels()

    def epoch_part(t, *args):
        raise TypingError("no implementation for this numba")

    ws._kernels = SimpleNamespace(**{**vars(compiled), "epoch_part": epoch_part})
    monkeypatch.setattr(kernels_module, "_KERNELS", kernels_module._KERNELS)
    with pytest.warns(RuntimeWarning, match="could not compile the training kernels"):
        r = ws.run_epoch(params, X, y, None, np.random.default_rng(0).permutation(100), 1e-3,
                         opt, 0.02)
    assert r == pytest.approx(r_np[0], rel=1e-12) and opt.t == 2  # 2 batches, counted once
    for a, b in zip(params, p_np, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert kernels_module.load() is None  # and no more tries in this process


def test_loss_and_grads_also_falls_back_when_numba_cannot_compile(monkeypatch):
    from numba.core.errors import LoweringError

    params, X, y, _ = problem(2, 20, 5, 6, 3)
    ws = Workspace(5, 6, 3, 20, np.float64, n_threads=2, kernels="numba")

    def middle(*args):
        raise LoweringError("no lowering for this numba")

    ws._kernels = SimpleNamespace(**{**vars(ws._use_kernels()), "middle": middle})
    monkeypatch.setattr(kernels_module, "_KERNELS", kernels_module._KERNELS)
    with pytest.warns(RuntimeWarning, match="could not compile the training kernels"):
        L = ws.loss_and_grads(params, X, y, 0.1)
    assert ws._kernels is False
    assert_close(L, ws.grads, *reference(params, X, y, 0.1, None), rtol=1e-12)
