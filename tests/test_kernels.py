"""The compiled kernels (relunet.kernels, numba) compute what the NumPy code computes.

The references are network.loss_and_grads (the note's math, checked by hand, by finite
differences and against scikit-learn elsewhere) and the update rules' NumPy code.  The
Workspace on both paths is held to the reference by a property test in test_fastpath.py, and
the whole training loop on both paths to a naive loop in test_speed_equivalence.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from _problems import assert_close, problem, reference

import relunet.fastpath as fastpath
import relunet.kernels as kernels_module
from relunet.fastpath import Workspace
from relunet.network import Params
from relunet.optim import make_optimizer

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
@pytest.mark.parametrize("solver,nesterov", [("sgd", True), ("sgd", False), ("adam", None)])
def test_compiled_updates_equal_the_numpy_rules(solver, nesterov, dtype):
    rng = np.random.default_rng(0)
    W0 = rng.standard_normal((7, 5)).astype(dtype)
    grads = [rng.standard_normal(W0.shape).astype(dtype) for _ in range(4)]
    kw = {} if nesterov is None else {"nesterov": nesterov}
    runs = []
    for compiled in (False, True):
        W = W0.copy()
        opt = make_optimizer(solver, Params(W, W.copy()), **kw)
        opt.kernels = kernels_module.load() if compiled else None
        for g in grads:
            c = opt.begin(0.05)
            u = g * dtype(c.scale)  # the loop hands over scaled gradients
            opt.update(W, u, opt.state_of(0), np.empty_like(W), c, penalty=c.scale * 0.1)
        runs.append((W, [s.copy() for s in opt.state_of(0)]))
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    (W_np, s_np), (W_c, s_c) = runs
    assert W_c.dtype == dtype
    np.testing.assert_allclose(W_c, W_np, rtol=rtol, atol=rtol)
    for a, b in zip(s_c, s_np, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


def test_updates_of_unsuitable_arrays_fall_back_to_numpy():
    # A column block is not contiguous: the rule must use its NumPy code, not the kernel.
    W = np.ones((6, 4))
    opt = make_optimizer("sgd", Params(W, W.copy()))
    opt.kernels = kernels_module.load()
    block, u = W[:, :2], np.full((6, 2), -0.1)
    assert opt._compiled(block, u, opt.state_of(0)[0][:, :2]) is None
    opt.update(block, u.copy(), tuple(s[:, :2] for s in opt.state_of(0)), np.empty((6, 2)),
               opt.begin(0.1))
    np.testing.assert_allclose(W[:, :2], 1 - 0.1 - 0.9 * 0.1)  # Nesterov: w + μv - lr·g
    np.testing.assert_array_equal(W[:, 2:], 1.0)


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
