"""The optimized training loop computes what the straightforward one computes.

The reference here is the plainest possible loop: :func:`relunet.network.loss_and_grads`
on ``X[batch]`` and the update rules written out as NumPy expressions (scikit-learn's
form of momentum SGD and Adam).  :class:`relunet.train.Trainer` runs
:meth:`relunet.fastpath.Workspace.run_epoch` instead: buffers, the learning rate folded into
``df``, weights split into row blocks updated by several threads.  In float64 the two must
agree to rounding, with one thread and with several, and the same seed must give the same
weights bit for bit.  Every test runs twice: with the compiled kernels of relunet.kernels
(numba) and with the NumPy code.  No timings are asserted here (see benchmarks/).
"""

from __future__ import annotations

import threading
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

import relunet.fastpath as fastpath
from relunet.fastpath import Workspace
from relunet.network import Params, init_params, loss_and_grads
from relunet.optim import make_optimizer
from relunet.train import TrainConfig, Trainer, TrainingDiverged

N, D, H, K = 103, 9, 12, 4  # 103 is not a multiple of the batch sizes: a short last batch


def _data(seed=0, n=N, d=D, k=K):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, k, n)
    sw = rng.uniform(0.2, 2.0, n)
    return X, y, sw


@pytest.fixture(params=["numpy", "numba"], autouse=True)
def kernels(request, monkeypatch):
    """Run the module's tests on both paths of the loop: NumPy calls, and compiled kernels
    (made the default here even for these tiny networks)."""
    if request.param == "numpy":
        monkeypatch.setenv("RELUNET_KERNELS", "numpy")
    else:
        pytest.importorskip("numba", reason="the compiled kernels need numba (relunet[fast])")
        monkeypatch.delenv("RELUNET_KERNELS", raising=False)
        monkeypatch.setattr(fastpath, "MIN_FLOPS_FOR_KERNELS", 0)
    return request.param


def _compiled(ws):
    """Whether the Workspace ran the compiled kernels."""
    return bool(ws._kernels)


@pytest.fixture(params=[1, 2, 3], ids=lambda t: f"{t}thread")
def threads(request, monkeypatch):
    """Force the Workspace of every Trainer to split the work into this many threads."""
    monkeypatch.setattr(fastpath, "default_threads", lambda: request.param)
    monkeypatch.setattr(fastpath, "MIN_FLOPS_PER_THREAD", 0)
    return request.param


def naive_fit(params, X, y, sw, *, solver, lr, alpha, batch, epochs, seed, shuffle=True,
              momentum=0.9, nesterov=True, beta_1=0.9, beta_2=0.999, eps=1e-8):
    """The training loop as the note and scikit-learn write it; returns (weights, losses)."""
    rng = np.random.default_rng(seed)
    W = [p.copy() for p in params]
    vel = [np.zeros_like(w) for w in W]
    m = [np.zeros_like(w) for w in W]
    v = [np.zeros_like(w) for w in W]
    t = 0
    n = X.shape[0]
    B = n if solver == "gd" else min(batch, n)
    losses = []
    for _ in range(epochs):
        penalty = alpha / 2 * sum(float(np.sum(w * w)) for w in W)
        order = rng.permutation(n) if shuffle and B < n else np.arange(n)
        total = weight = 0.0
        for start in range(0, n, B):
            idx = order[start : start + B]
            wb = None if sw is None else sw[idx]
            L, g = loss_and_grads(Params(*W), X[idx], y[idx], alpha, sample_weight=wb)
            data_loss = L - alpha / 2 * sum(float(np.sum(w * w)) for w in W)
            w_batch = len(idx) if wb is None else float(wb.sum())
            total += data_loss * w_batch
            weight += w_batch
            if solver == "gd":
                W = [w - lr * gi for w, gi in zip(W, g, strict=True)]
            elif solver == "sgd":
                vel = [momentum * vi - lr * gi for vi, gi in zip(vel, g, strict=True)]
                if nesterov:
                    W = [w + momentum * vi - lr * gi for w, vi, gi in zip(W, vel, g, strict=True)]
                else:
                    W = [w + vi for w, vi in zip(W, vel, strict=True)]
            else:  # adam
                t += 1
                m = [beta_1 * mi + (1 - beta_1) * gi for mi, gi in zip(m, g, strict=True)]
                v = [beta_2 * vi + (1 - beta_2) * gi**2 for vi, gi in zip(v, g, strict=True)]
                lr_t = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
                W = [w - lr_t * mi / (np.sqrt(vi) + eps) for w, mi, vi in zip(W, m, v, strict=True)]
        losses.append(total / weight + penalty)
    return W, losses


def _trainer_fit(params, X, y, sw, *, solver, lr, alpha, batch, epochs, seed, shuffle=True,
                 nesterov=True):
    cfg = TrainConfig(solver=solver, alpha=alpha, batch_size=batch, learning_rate_init=lr,
                      max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1, shuffle=shuffle,
                      nesterovs_momentum=nesterov)
    trainer = Trainer(params, cfg, rng=seed)
    trainer.fit(X, y, sw)
    return trainer


CASES = {
    "sgd-nesterov": dict(solver="sgd", lr=0.05, alpha=1e-3, batch=16),
    "sgd-plain": dict(solver="sgd", lr=0.05, alpha=1e-3, batch=16, nesterov=False),
    "sgd-no-alpha-no-shuffle": dict(solver="sgd", lr=0.05, alpha=0.0, batch=10, shuffle=False),
    "adam": dict(solver="adam", lr=0.01, alpha=1e-2, batch=32),
    "gd": dict(solver="gd", lr=0.3, alpha=1e-2, batch=None),
    "one-batch-sgd": dict(solver="sgd", lr=0.1, alpha=1e-4, batch=500),
}


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", list(CASES))
def test_trainer_matches_the_naive_loop_in_float64(case, weighted, threads, kernels):
    X, y, sw = _data(1)
    sw = sw if weighted else None
    p0 = init_params(D, H, K, rng=2, dtype=np.float64)
    kw = CASES[case]
    trainer = _trainer_fit(p0, X, y, sw, epochs=3, seed=5, **kw)
    naive_kw = {k: v for k, v in kw.items() if k != "nesterov"}
    W, losses = naive_fit(p0, X, y, sw, epochs=3, seed=5, nesterov=kw.get("nesterov", True),
                          **naive_kw)
    expected_parts = min(threads, D)
    assert trainer._workspace.n_parts == expected_parts
    assert _compiled(trainer._workspace) == (kernels == "numba")
    for got, want in zip(trainer.params, W, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(trainer.history.train_loss, losses, rtol=1e-11)
    assert trainer.n_samples_seen == 3 * N


@pytest.mark.parametrize("case", ["sgd-nesterov", "sgd-plain", "adam", "gd"])
def test_the_numpy_update_path_matches_the_blas_level1_path(case, kernels, monkeypatch):
    # The loop updates weights through NumPy's own OpenBLAS (ctypes) when it finds it, and
    # through NumPy ufuncs otherwise: both must give the naive loop's numbers.
    if kernels == "numba":
        pytest.skip("the compiled loop runs its own update kernels (test_kernels.py)")
    if fastpath._level1_blas(np.float64) is None:
        pytest.skip("NumPy's BLAS is not the OpenBLAS of its wheels: only the ufunc path exists")
    X, y, sw = _data(1)
    kw = CASES[case]
    naive_kw = {k: v for k, v in kw.items() if k != "nesterov"}
    p0 = init_params(D, H, K, rng=2, dtype=np.float64)
    W, _ = naive_fit(p0, X, y, sw, epochs=3, seed=5, nesterov=kw.get("nesterov", True),
                     **naive_kw)
    with_blas = _trainer_fit(p0, X, y, sw, epochs=3, seed=5, **kw)
    assert with_blas._workspace._level1
    monkeypatch.setattr(fastpath, "_level1_blas", lambda dtype: None)
    without = _trainer_fit(p0, X, y, sw, epochs=3, seed=5, **kw)
    assert without._workspace._level1 is False
    for trainer in (with_blas, without):
        for got, want in zip(trainer.params, W, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_same_seed_gives_bitwise_identical_weights(solver, threads):
    X, y, _ = _data(3)
    runs = []
    for _ in range(2):
        p0 = init_params(D, H, K, rng=7, dtype=np.float32)
        runs.append(_trainer_fit(p0, X.astype(np.float32), y, None, solver=solver, lr=0.02,
                                 alpha=1e-3, batch=8, epochs=3, seed=11))
    for a, b in zip(runs[0].params, runs[1].params, strict=True):
        np.testing.assert_array_equal(a, b)
    assert runs[0].history.train_loss == runs[1].history.train_loss


def test_thread_counts_agree_to_float_rounding(monkeypatch):
    X, y, sw = _data(4)
    monkeypatch.setattr(fastpath, "MIN_FLOPS_PER_THREAD", 0)
    results = []
    for T in (1, 2, 4):
        monkeypatch.setattr(fastpath, "default_threads", lambda T=T: T)
        p0 = init_params(D, H, K, rng=1, dtype=np.float64)
        results.append(_trainer_fit(p0, X, y, sw, solver="sgd", lr=0.05, alpha=1e-3, batch=16,
                                    epochs=2, seed=3).params)
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------ Workspace, directly


@pytest.mark.parametrize("n_threads", [1, 2, 3, 50])
@pytest.mark.parametrize("weighted", [False, True])
def test_workspace_grads_equal_network_loss_and_grads(n_threads, weighted, kernels):
    X, y, sw = _data(5)
    params = init_params(D, H, K, rng=3, dtype=np.float64)
    params.W1[-1] = np.linspace(-0.3, 0.3, H)  # non-zero biases
    params.W2[-1] = np.linspace(0.2, -0.2, K)
    wb = sw[:40] if weighted else None
    ws = Workspace(D, H, K, 64, np.float64, n_threads=n_threads)
    assert ws.n_parts == min(n_threads, D)
    L = ws.loss_and_grads(params, X[:40], y[:40], 0.05, wb)
    assert _compiled(ws) == (kernels == "numba")
    L_ref, g_ref = loss_and_grads(params, X[:40], y[:40], 0.05, sample_weight=wb)
    penalty = 0.05 / 2 * sum(float(np.sum(W * W)) for W in params)
    assert L == pytest.approx(L_ref - penalty, rel=1e-13)
    for got, want in zip(ws.grads, g_ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("solver", ["gd", "sgd", "adam"])
def test_one_epoch_of_one_batch_is_one_optimizer_step(solver):
    # run_epoch over a single batch = loss_and_grads + optimizer.step, for every rule.
    X, y, _ = _data(6, n=20)
    p_fast = init_params(D, H, K, rng=4, dtype=np.float64)
    p_ref = Params(*(W.copy() for W in p_fast))
    ws = Workspace(D, H, K, 20, np.float64, n_threads=2)
    opt_fast = make_optimizer(solver, p_fast)
    total, weight = ws.run_epoch(p_fast, X, y, None, None, 0.01, opt_fast, 0.1)
    opt_ref = make_optimizer(solver, p_ref)
    L, g = loss_and_grads(p_ref, X, y, 0.01)
    penalty = 0.01 / 2 * sum(float(np.sum(W * W)) for W in p_ref)
    opt_ref.step(p_ref, g, 0.1)
    assert total / weight == pytest.approx(L - penalty, rel=1e-13)  # loss at the old weights
    for a, b in zip(p_fast, p_ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_an_epoch_allocates_nothing_that_grows_with_the_data(n_threads):
    peaks = []
    for n in (4000, 16000):
        rng = np.random.default_rng(0)
        d, h, k = 64, 32, 5
        X = rng.standard_normal((n, d)).astype(np.float32)
        y = rng.integers(0, k, n)
        params = init_params(d, h, k, rng=0, dtype=np.float32)
        ws = Workspace(d, h, k, 50, np.float32, n_threads=n_threads)
        opt = make_optimizer("sgd", params)
        order = rng.permutation(n)
        ws.run_epoch(params, X, y, None, order, 1e-4, opt, 0.01)  # buffers allocated here
        tracemalloc.start()
        try:
            ws.run_epoch(params, X, y, None, order, 1e-4, opt, 0.01)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    # X is 1 MB and 4 MB; a batch is 12.8 kB.  Only a few small Python objects remain, and
    # (compiled loop) the epoch's table of per-batch numbers: the rule's coefficients, loss
    # and weight, 40 bytes a batch (80 and 320 batches here).
    per_batch = 64 * (16000 - 4000) // 50
    assert peaks[1] < 32 * 1024 + per_batch, peaks
    assert abs(peaks[1] - peaks[0]) < 4 * 1024 + per_batch, peaks


def test_an_error_in_a_worker_thread_is_raised_and_nothing_hangs(kernels, monkeypatch):
    X, y, _ = _data(7, n=200)
    params = init_params(D, H, K, rng=0, dtype=np.float64)
    ws = Workspace(D, H, K, 16, np.float64, n_threads=3)
    opt = make_optimizer("sgd", params)
    if kernels == "numba":  # one part's compiled epoch fails; the others wait at a barrier
        compiled = ws._use_kernels()

        def epoch_part(t, *args):
            if t == 1:
                raise RuntimeError("boom in a worker")
            return compiled.epoch_part(t, *args)

        ws._kernels = SimpleNamespace(epoch_part=epoch_part)
    else:
        original = opt.update

        def update(W, u, state, tmp, c, penalty=0.0):
            if threading.current_thread() is not threading.main_thread():
                raise RuntimeError("boom in a worker")
            return original(W, u, state, tmp, c, penalty)

        monkeypatch.setattr(opt, "update", update)
    with pytest.raises(RuntimeError, match="boom in a worker"):
        ws.run_epoch(params, X, y, None, None, 0.0, opt, 0.1)
    alive = [t.name for t in threading.enumerate() if t.name.startswith("relunet-part")]
    assert alive == []  # every worker has finished


def test_divergence_with_threads_raises_and_restores_the_weights(threads):
    X, y, _ = _data(8)
    X = X * 1e3
    p0 = init_params(D, H, K, rng=0, dtype=np.float64)
    cfg = TrainConfig(solver="sgd", learning_rate_init=1e6, batch_size=16, max_iter=5)
    trainer = Trainer(p0, cfg, rng=0)
    with pytest.raises(TrainingDiverged):
        trainer.fit(X, y)
    assert all(np.isfinite(W).all() for W in trainer.params)
