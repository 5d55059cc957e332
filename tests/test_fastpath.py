"""The allocation-free Workspace computes what relunet.network.loss_and_grads computes.

The reference is the readable network.loss_and_grads (itself checked by hand, against
sklearn and against finite differences in test_network.py and test_gradcheck.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from _problems import assert_close, problem, reference, rule_updates
from hypothesis import given, settings
from hypothesis import strategies as st

from relunet.fastpath import Workspace, predict_scores
from relunet.network import Params, forward, init_params

try:
    import numba  # noqa: F401
except ImportError:  # the compiled path is then tested as plain Python only (end of file)
    KERNELS = ["numpy"]
else:
    KERNELS = ["numpy", "numba"]


@settings(max_examples=120, deadline=None)
@given(
    N=st.integers(1, 12),
    extra=st.integers(0, 5),
    D=st.integers(1, 6),
    H=st.integers(1, 9),
    K=st.integers(2, 5),
    threads=st.integers(1, 4),
    kernels=st.sampled_from(KERNELS),
    alpha=st.sampled_from([0.0, 1e-3, 0.5]),
    weighted=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_workspace_equals_reference_in_float64(N, extra, D, H, K, threads, kernels, alpha,
                                               weighted, seed):
    # Both paths (NumPy calls, compiled kernels), 1-4 parts: also batches with fewer
    # examples than parts, and buffers larger than the batch.
    params, X, y, sw = problem(seed, N, D, H, K)
    sw = sw if weighted else None
    ws = Workspace(D, H, K, N + extra, np.float64, n_threads=threads, kernels=kernels)
    L = ws.loss_and_grads(params, X, y, alpha, sw)
    assert ws.grads.W1.dtype == np.float64
    assert bool(ws._kernels) == (kernels == "numba")
    assert_close(L, ws.grads, *reference(params, X, y, alpha, sw), rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 1e-2])
def test_workspace_float32_stays_float32_and_matches_float64(weighted, alpha):
    params, X, y, sw = problem(3, 50, 8, 16, 4, dtype=np.float32)
    sw = sw if weighted else None
    ws = Workspace(8, 16, 4, 64, np.float32)
    L = ws.loss_and_grads(params, X, y, alpha, sw)
    assert ws.grads.W1.dtype == np.float32 and ws.grads.W2.dtype == np.float32
    assert_close(L, ws.grads, *reference(params, X, y, alpha, sw), rtol=1e-5)


@pytest.mark.parametrize("weighted", [False, True])
def test_gather_by_index_array_gives_the_batch_of_those_rows(weighted):
    params, X, y, sw = problem(4, 30, 5, 6, 3)
    ws = Workspace(5, 6, 3, 12, np.float64)
    index = np.array([29, 0, 7, 7, 13, 2, 21])  # unsorted, with a repeat
    Xb, yb = ws.gather(X, y, index)
    np.testing.assert_array_equal(Xb, X[index])
    np.testing.assert_array_equal(yb, y[index])
    wb = sw[index] if weighted else None
    L = ws.loss_and_grads(params, Xb, yb, 0.1, wb)
    assert_close(L, ws.grads, *reference(params, X[index], y[index], 0.1, wb), rtol=1e-12)


def test_gather_by_slice_is_a_view_and_gives_the_same_gradients():
    params, X, y, _ = problem(5, 30, 5, 6, 3)
    ws = Workspace(5, 6, 3, 10, np.float64)
    Xb, yb = ws.gather(X, y, slice(10, 20))
    assert np.shares_memory(Xb, X)  # zero-copy
    L = ws.loss_and_grads(params, Xb, yb, 0.0)
    assert_close(L, ws.grads, *reference(params, X[10:20], y[10:20], 0.0, None), rtol=1e-12)


def test_index_gather_and_slice_gather_agree_bitwise():
    params, X, y, _ = problem(6, 30, 5, 6, 3)
    ws_a = Workspace(5, 6, 3, 10, np.float64)
    ws_b = Workspace(5, 6, 3, 10, np.float64)
    La = ws_a.loss_and_grads(params, *ws_a.gather(X, y, slice(5, 15)), 0.1)
    Lb = ws_b.loss_and_grads(params, *ws_b.gather(X, y, np.arange(5, 15)), 0.1)
    assert La == Lb
    for a, b in zip(ws_a.grads, ws_b.grads, strict=True):
        np.testing.assert_array_equal(a, b)


def test_shrinking_batches_reuse_buffers_without_stale_rows():
    # A full batch, then a short last batch: nothing of the first may leak into the second.
    params, X, y, _ = problem(7, 23, 4, 5, 3)
    ws = Workspace(4, 5, 3, 10, np.float64)
    for start in range(0, 23, 10):
        index = np.arange(start, min(start + 10, 23))[::-1]
        Xb, yb = ws.gather(X, y, index)
        L = ws.loss_and_grads(params, Xb, yb, 0.01)
        assert_close(L, ws.grads, *reference(params, X[index], y[index], 0.01, None), 1e-12)


def test_workspace_does_not_modify_params_or_data():
    params, X, y, sw = problem(8, 20, 4, 5, 3)
    before = [A.copy() for A in (*params, X, y, sw)]
    ws = Workspace(4, 5, 3, 20, np.float64)
    ws.loss_and_grads(params, X, y, 0.3, sw)
    for A, A0 in zip((*params, X, y, sw), before, strict=True):
        np.testing.assert_array_equal(A, A0)


def test_workspace_loss_stays_finite_for_huge_scores():
    # Same construction as test_network's: scores (1e5, 1e5 - 3); L_d/N = mean of
    # log(1 + e^-3) and log(1 + e^3), worked out by hand.
    W1 = np.array([[100.0], [0.0]])
    W2 = np.array([[1.0, 1.0], [0.0, -3.0]])
    X = np.array([[1000.0], [1000.0]])
    ws = Workspace(1, 1, 2, 2, np.float64)
    L = ws.loss_and_grads(Params(W1, W2), X, np.array([0, 1]), 0.0)
    assert L == pytest.approx((np.log1p(np.exp(-3.0)) + np.log1p(np.exp(3.0))) / 2, rel=1e-14)
    assert all(np.isfinite(g).all() for g in ws.grads)


@pytest.mark.parametrize("chunk", [1, 7, 100, 10_000])
def test_predict_scores_equal_forward_in_any_chunking(chunk):
    rng = np.random.default_rng(11)
    X = rng.standard_normal((100, 6))
    params = init_params(6, 9, 4, rng=rng)
    f, _ = forward(params, X)
    np.testing.assert_allclose(predict_scores(params, X, chunk=chunk), f, rtol=1e-13, atol=1e-15)


# ------------------------------------------------------------------ the kernels' logic


def _plain_python_kernels():
    """relunet.kernels' functions as plain Python: their logic, without numba."""
    from types import SimpleNamespace

    import relunet.kernels as k

    return SimpleNamespace(middle=k._middle, reduce_w2=k._reduce_w2, update=k._update,
                           epoch_part=k._epoch_part)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_kernels_logic_in_plain_python_equals_the_reference(n_threads, weighted):
    # Runs without numba: the Workspace's compiled path with the uncompiled kernel functions.
    params, X, y, sw = problem(11, 7, 5, 6, 3)
    sw = sw if weighted else None
    ws = Workspace(5, 6, 3, 8, np.float64, n_threads=n_threads)
    ws._kernels = _plain_python_kernels()
    L = ws.loss_and_grads(params, X, y, 0.1, sw)
    assert_close(L, ws.grads, *reference(params, X, y, 0.1, sw), rtol=1e-12)


@pytest.mark.parametrize("solver,nesterov", [("sgd", True), ("sgd", False), ("adam", None),
                                             ("gd", None)])
def test_the_update_kernels_logic_in_plain_python_equals_the_numpy_rules(solver, nesterov):
    import relunet.kernels as k

    W_np, s_np = rule_updates(solver, np.float64, None, nesterov)
    W_k, s_k = rule_updates(solver, np.float64, k._update, nesterov)
    np.testing.assert_allclose(W_k, W_np, rtol=1e-13, atol=1e-15)
    for a, b in zip(s_k, s_np, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def epochs(kernels, solver, n_threads, sw, order_seed=0, n_epochs=2, D=7, batch=8):
    """Weights, state and (total, weight) after ``n_epochs`` of ``run_epoch`` (shuffled,
    the last batch short; D=7: the parts' feature blocks differ in width) on the NumPy path
    (kernels None) or the compiled one."""
    from relunet.optim import make_optimizer

    params, X, y, _ = problem(5, 29, D, 7, 4)
    opt = make_optimizer(solver, params)
    ws = Workspace(D, 7, 4, batch, np.float64, n_threads=n_threads, kernels="numpy")
    ws._kernels = kernels or False
    results = []
    for e in range(n_epochs):
        order = np.random.default_rng(order_seed + e).permutation(len(y))
        results.append(ws.run_epoch(params, X, y, sw, order, 1e-2, opt, 0.05))
    return params, [s.copy() for s in opt.state], results


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("solver", ["sgd", "adam", "gd"])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_epoch_kernels_logic_in_plain_python_equals_the_numpy_loop(n_threads, solver,
                                                                        weighted):
    # The whole compiled epoch (barriers, gathers, shares of dW2, updates), run as plain
    # Python on real threads: the same weights, state and losses as the NumPy loop.
    sw = np.random.default_rng(1).uniform(0.1, 3.0, 29) if weighted else None
    p_np, s_np, r_np = epochs(None, solver, n_threads, sw)
    p_k, s_k, r_k = epochs(_plain_python_kernels(), solver, n_threads, sw)
    for a, b in zip([*p_k, *s_k], [*p_np, *s_np], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    for (total_k, weight_k), (total_np, weight_np) in zip(r_k, r_np, strict=True):
        assert total_k == pytest.approx(total_np, rel=1e-12)
        assert weight_k == pytest.approx(weight_np, rel=1e-14)


# ------------------------------------------------------------------ prediction fast path


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("chunk", [1, 7, 10_000])
@pytest.mark.parametrize("n_threads", [1, 3])
def test_forward_rows_equal_the_note_in_any_chunking_and_threading(dtype, chunk, n_threads,
                                                                   monkeypatch):
    import relunet.fastpath as fastpath
    from relunet.network import softmax

    monkeypatch.setattr(fastpath, "MIN_FLOPS_PER_PREDICT_THREAD", 1.0)  # split even tiny X
    rng = np.random.default_rng(12)
    X = rng.standard_normal((100, 6)).astype(dtype)
    params = Params(*(W.astype(dtype) for W in init_params(6, 9, 4, rng=rng)))
    f, _ = forward(Params(*(W.astype(np.float64) for W in params)), X.astype(np.float64))
    tol = {np.float64: 1e-13, np.float32: 2e-6}[dtype]
    for proba, expected in ((False, f), (True, softmax(f))):
        out, finite = fastpath.forward_rows(params, X, proba=proba, chunk=chunk,
                                            n_threads=n_threads)
        assert finite and out.dtype == dtype and out.shape == (100, 4)
        np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)


def test_forward_rows_restores_the_blas_threads_even_after_an_error(monkeypatch):
    from threadpoolctl import threadpool_info

    import relunet.fastpath as fastpath

    def blas_threads():
        return sorted(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

    monkeypatch.setattr(fastpath, "MIN_FLOPS_PER_PREDICT_THREAD", 1.0)
    rng = np.random.default_rng(0)
    params = init_params(5, 8, 3, rng=rng)
    before = blas_threads()
    fastpath.forward_rows(params, rng.standard_normal((50, 5)), n_threads=2)
    assert blas_threads() == before
    with pytest.raises(ValueError):  # wrong width: np.dot refuses inside the parts
        fastpath.forward_rows(params, rng.standard_normal((50, 4)), n_threads=2)
    assert blas_threads() == before


@pytest.mark.parametrize("chunk", [4, 10_000])  # several blocks; one block (its own path)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_forward_rows_notice_a_non_finite_input_even_where_relu_would_hide_it(bad, chunk):
    from relunet.fastpath import forward_rows

    rng = np.random.default_rng(1)
    W1, W2 = init_params(3, 5, 2, rng=rng)
    W1[1] = -np.abs(W1[1]) - 0.1  # x_1 = +inf gives h = ReLU(-inf) = 0: scores look fine
    W1[1] *= np.sign(bad) if np.isfinite(np.sign(bad)) else 1
    X = rng.standard_normal((20, 3))
    assert forward_rows(Params(W1, W2), X)[1]
    X[13, 1] = bad
    out, finite = forward_rows(Params(W1, W2), X, chunk=chunk)
    assert not finite
    assert np.isfinite(np.delete(out, 13, axis=0)).all()  # the other rows are unaffected
    assert not forward_rows(Params(W1, W2), X[13:14], chunk=chunk)[1]  # the row alone


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork (POSIX)")
def test_prediction_threads_work_in_a_forked_child(monkeypatch):
    """The pool's threads do not survive a fork; the child must not wait on them forever."""
    import multiprocessing

    import relunet.fastpath as fastpath

    monkeypatch.setattr(fastpath, "MIN_FLOPS_PER_PREDICT_THREAD", 1.0)
    rng = np.random.default_rng(0)
    params = init_params(5, 8, 3, rng=rng)
    X = rng.standard_normal((64, 5))
    expected = fastpath.predict_scores(params, X, n_threads=2)  # parent starts the pool
    with multiprocessing.get_context("fork").Pool(1) as pool:
        result = pool.apply_async(_split_prediction, (params, X)).get(timeout=60)
    np.testing.assert_allclose(result, expected, rtol=1e-12)


def _split_prediction(params, X):
    import relunet.fastpath as fastpath

    fastpath.MIN_FLOPS_PER_PREDICT_THREAD = 1.0
    return fastpath.predict_scores(params, X, n_threads=2)


@pytest.mark.parametrize("n", [1, 5, 1030])  # one block; several blocks
def test_forward_rows_answers_in_the_weights_dtype_for_any_input(n):
    # float64 or Fortran-ordered X with float32 weights: converted, never a float64 answer
    # at some sizes and an error at others
    from relunet.fastpath import forward_rows

    rng = np.random.default_rng(4)
    params = Params(*(W.astype(np.float32) for W in init_params(6, 9, 3, rng=rng)))
    X = rng.standard_normal((n, 6))
    expected, _ = forward_rows(params, X.astype(np.float32), chunk=512)
    for Z in (X, np.asfortranarray(X.astype(np.float32))):
        out, finite = forward_rows(params, Z, chunk=512)
        assert finite and out.dtype == np.float32
        np.testing.assert_array_equal(out, expected)
