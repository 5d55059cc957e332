"""network.py takes its array namespace from its inputs: the note's math on non-NumPy arrays.

``array_api_strict`` implements the array API standard and nothing more, so passing it proves
the math uses only standard operations (what CuPy or PyTorch arrays will get later).
"""

import numpy as np
import pytest

from relunet.network import forward, init_params, log_softmax, loss, loss_and_grads, softmax

xp = pytest.importorskip("array_api_strict", reason="array-api-strict is a test extra")
pytest.importorskip("array_api_compat", reason="array-api-compat is a test extra")


@pytest.fixture
def problem():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((30, 5))
    y = rng.integers(0, 4, 30)
    params = init_params(5, 6, 4, rng=rng)
    return X, y, params, rng.random(30)


def _strict(*arrays):
    return tuple(xp.asarray(a) for a in arrays)


@pytest.mark.parametrize("weighted", [False, True])
def test_loss_and_grads_on_strict_arrays_equal_numpy(problem, weighted):
    X, y, params, sw = problem
    sw = sw if weighted else None
    L, grads = loss_and_grads(params, X, y, 0.05, sample_weight=sw)
    Xs, ys = _strict(X, y)
    L_s, grads_s = loss_and_grads(
        _strict(*params), Xs, ys, 0.05, sample_weight=None if sw is None else xp.asarray(sw)
    )
    assert L_s == pytest.approx(L, rel=1e-14)
    for g, g_s in zip(grads, grads_s, strict=True):
        assert isinstance(g_s, type(Xs))
        np.testing.assert_allclose(np.asarray(g_s), g, rtol=1e-13, atol=1e-15)


def test_forward_softmax_and_loss_on_strict_arrays(problem):
    X, y, params, _ = problem
    f, h = forward(params, X)
    f_s, h_s = forward(_strict(*params), xp.asarray(X))
    np.testing.assert_allclose(np.asarray(f_s), f, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(h_s), h, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(softmax(f_s)), softmax(f), rtol=1e-13)
    np.testing.assert_allclose(np.asarray(log_softmax(f_s)), log_softmax(f), rtol=1e-13)
    assert loss(_strict(*params), xp.asarray(X), xp.asarray(y), 0.1) == pytest.approx(
        loss(params, X, y, 0.1), rel=1e-14
    )
