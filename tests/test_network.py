"""The note's network in relunet.network: values worked out by hand, and sklearn's backprop.

Expected values here are derived on paper (comments show the derivation) or come from an
independent implementation (scikit-learn); none is computed with relunet itself.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from relunet.network import (
    Params,
    forward,
    init_params,
    log_softmax,
    loss,
    loss_and_grads,
    softmax,
)

# --------------------------------------------------------------------------------------
# A worked example: N = 2, D = 2, H = 2, K = 2, alpha = 0.1
#
#   X = [[1, 0],        y = [0, 1]
#        [0, 1]]
#   W1 = [[1, -1],      rows: input 1, input 2, bias (the note's constant 1)
#         [0,  2],
#         [1,  0]]
#   W2 = [[1, -1],      rows: hidden 1, hidden 2, bias
#         [0,  1],
#         [0,  1]]
#
# Pre-activations z = x·W1 (bias included):
#   example 1: (1 + 1, -1 + 0) = (2, -1)  -> h1 = (2, 0)   hidden unit 2 is OFF
#   example 2: (0 + 1,  2 + 0) = (1,  2)  -> h2 = (1, 2)   both units on
# Scores f = h·W2:
#   example 1: 2·(1, -1) + 0·(0, 1) + (0, 1) = (2, -1)
#   example 2: 1·(1, -1) + 2·(0, 1) + (0, 1) = (1,  2)
# Probabilities of the true class:
#   example 1 (y=0): e^2 / (e^2 + e^-1) = 1 / (1 + e^-3)
#   example 2 (y=1): e^2 / (e^1 + e^2)  = 1 / (1 + e^-1)
# Loss: L = (L_1 + L_2) / N + alpha/2 · Σ w²
#   L_1 = log(1 + e^-3), L_2 = log(1 + e^-1)
#   Σ w² = (1 + 1 + 0 + 4 + 1 + 0) + (1 + 1 + 0 + 1 + 0 + 1) = 7 + 4 = 11   (bias rows too)
#   L = (log(1 + e^-3) + log(1 + e^-1)) / 2 + 0.05 · 11
# df = (p - 1(y = k)) / N:
#   example 1: p = (1 - c, c) with c = 1/(1 + e^3);  df1 = (-u, u),  u = c/2 = 1/(2(1 + e^3))
#   example 2: p = (d, 1 - d) with d = 1/(1 + e);    df2 = ( v, -v), v = d/2 = 1/(2(1 + e))
# dW2 = [h; 1]ᵀ df + alpha W2:
#   row hidden 1: 2·df1 + 1·df2 = (-2u + v,  2u - v)   + 0.1·(1, -1)
#   row hidden 2: 0·df1 + 2·df2 = ( 2v,     -2v)       + 0.1·(0,  1)
#   row bias:       df1 +   df2 = (-u + v,   u - v)    + 0.1·(0,  1)
# dh = df · W2[:2]ᵀ, then masked by Θ(z):
#   example 1: (-u·1 + u·(-1), -u·0 + u·1) = (-2u, u) -> masked (unit 2 off): (-2u, 0)
#   example 2: ( v·1 + (-v)·(-1), v·0 + (-v)·1) = (2v, -v)
# dW1 = [x; 1]ᵀ dh + alpha W1:
#   row input 1: dh1 = (-2u, 0)          + 0.1·(1, -1)
#   row input 2: dh2 = ( 2v, -v)         + 0.1·(0,  2)
#   row bias:    dh1 + dh2 = (-2u + 2v, -v) + 0.1·(1, 0)
# --------------------------------------------------------------------------------------

HAND_X = np.array([[1.0, 0.0], [0.0, 1.0]])
HAND_Y = np.array([0, 1])
HAND_W1 = np.array([[1.0, -1.0], [0.0, 2.0], [1.0, 0.0]])
HAND_W2 = np.array([[1.0, -1.0], [0.0, 1.0], [0.0, 1.0]])
HAND_ALPHA = 0.1

_U = 1 / (2 * (1 + math.exp(3)))
_V = 1 / (2 * (1 + math.exp(1)))
HAND_LOSS = (math.log(1 + math.exp(-3)) + math.log(1 + math.exp(-1))) / 2 + 0.05 * 11
HAND_DW2 = np.array(
    [
        [-2 * _U + _V + 0.1, 2 * _U - _V - 0.1],
        [2 * _V, -2 * _V + 0.1],
        [-_U + _V, _U - _V + 0.1],
    ]
)
HAND_DW1 = np.array(
    [
        [-2 * _U + 0.1, 0.0 - 0.1],
        [2 * _V, -_V + 0.2],
        [-2 * _U + 2 * _V + 0.1, -_V],
    ]
)


def test_hand_example_forward_hidden_values_and_scores():
    f, h = forward(Params(HAND_W1, HAND_W2), HAND_X)
    np.testing.assert_array_equal(h, [[2.0, 0.0], [1.0, 2.0]])
    np.testing.assert_array_equal(f, [[2.0, -1.0], [1.0, 2.0]])


def test_hand_example_loss_is_mean_data_loss_plus_half_alpha_sum_of_all_squares():
    L = loss(Params(HAND_W1, HAND_W2), HAND_X, HAND_Y, HAND_ALPHA)
    assert L == pytest.approx(HAND_LOSS, rel=1e-14, abs=0)


def test_hand_example_every_gradient_entry_matches_the_hand_derivation():
    L, (dW1, dW2) = loss_and_grads(Params(HAND_W1, HAND_W2), HAND_X, HAND_Y, HAND_ALPHA)
    assert L == pytest.approx(HAND_LOSS, rel=1e-14, abs=0)
    np.testing.assert_allclose(dW2, HAND_DW2, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dW1, HAND_DW1, rtol=1e-13, atol=1e-15)


def test_hand_example_switched_off_unit_passes_only_the_penalty_gradient():
    # Example 1 has hidden unit 2 off and example 2 has input 1 = 0, so W1[0, 1] (input 1 ->
    # hidden 2) receives no data gradient at all: only alpha * W1[0, 1] = 0.1 * (-1).
    _, (dW1, _) = loss_and_grads(Params(HAND_W1, HAND_W2), HAND_X, HAND_Y, HAND_ALPHA)
    assert dW1[0, 1] == pytest.approx(-0.1, rel=1e-15)


def test_hand_example_inputs_are_not_modified():
    params = Params(HAND_W1.copy(), HAND_W2.copy())
    X = HAND_X.copy()
    loss_and_grads(params, X, HAND_Y, HAND_ALPHA)
    np.testing.assert_array_equal(params.W1, HAND_W1)
    np.testing.assert_array_equal(params.W2, HAND_W2)
    np.testing.assert_array_equal(X, HAND_X)


# ----------------------------------------------------------------------- loss values


@pytest.mark.parametrize("K", [2, 3, 10])
def test_zero_weights_give_loss_log_K(K):
    # All scores are 0, so p_k = 1/K for every example and L_i = log K; no penalty.
    rng = np.random.default_rng(K)
    X = rng.standard_normal((7, 4))
    y = rng.integers(0, K, 7)
    params = Params(np.zeros((5, 3)), np.zeros((4, K)))
    assert loss(params, X, y, alpha=0.3) == pytest.approx(math.log(K), rel=1e-15)


@pytest.mark.parametrize("alpha", [0.0, 0.01, 2.5])
def test_constant_scores_give_log_K_plus_penalty_on_every_weight(alpha):
    # W2's weight rows are 0 and its bias row is c·(1, ..., 1): every score is c, so the
    # data loss is log K whatever W1 is, and the penalty is alpha/2 (Σ W1² + K c²).
    K, c = 4, 1.5
    rng = np.random.default_rng(1)
    W1 = rng.standard_normal((4, 5))
    W2 = np.zeros((6, K))
    W2[-1] = c
    X = rng.standard_normal((9, 3))
    y = rng.integers(0, K, 9)
    expected = math.log(K) + alpha / 2 * (float(np.sum(W1**2)) + K * c**2)
    assert loss(Params(W1, W2), X, y, alpha) == pytest.approx(expected, rel=1e-14)


def test_loss_exact_and_finite_when_scores_are_1e5():
    # x = 1000, W1 = [[100], [0]] -> h = 1e5; W2 = [[1, 1], [0, -3]] -> f = (1e5, 1e5 - 3),
    # all exact in float64. Softmax of (s, s - 3) is (1/(1+e^-3), 1/(1+e^3)), so
    # L(y=0) = log(1 + e^-3) and L(y=1) = log(1 + e^3); the mean of the two examples:
    W1 = np.array([[100.0], [0.0]])
    W2 = np.array([[1.0, 1.0], [0.0, -3.0]])
    X = np.array([[1000.0], [1000.0]])
    y = np.array([0, 1])
    f, _ = forward(Params(W1, W2), X)
    np.testing.assert_array_equal(f, [[1e5, 1e5 - 3], [1e5, 1e5 - 3]])
    expected = (math.log(1 + math.exp(-3)) + math.log(1 + math.exp(3))) / 2
    L, (dW1, dW2) = loss_and_grads(Params(W1, W2), X, y)
    assert L == pytest.approx(expected, rel=1e-14)
    assert np.isfinite(dW1).all() and np.isfinite(dW2).all()
    # df summed over the two examples: p - e_0 + p - e_1 = 2p - (1, 1); /2 -> p - 1/2.
    p0 = 1 / (1 + math.exp(-3))
    np.testing.assert_allclose(dW2[-1], [p0 - 0.5, 0.5 - p0], rtol=1e-14)
    np.testing.assert_allclose(
        softmax(f), [[p0, 1 - p0], [p0, 1 - p0]], rtol=1e-14, atol=0
    )


def test_loss_of_huge_negative_gap_is_the_gap_not_inf():
    # f = (0, -800) with y = 1: L = log(1 + e^800) = 800 + log(1 + e^-800) = 800 in float64;
    # a naive log(softmax) would give -log(0) = inf.
    W1 = np.array([[1.0], [0.0]])
    W2 = np.array([[0.0, -800.0], [0.0, 0.0]])
    X = np.array([[1.0]])
    assert loss(Params(W1, W2), X, np.array([1])) == 800.0


finite_scores = arrays(
    np.float64,
    st.tuples(st.integers(1, 6), st.integers(2, 6)),
    elements=st.floats(-1e6, 1e6, allow_nan=False),
)


@settings(max_examples=60, deadline=None)
@given(finite_scores)
def test_softmax_rows_are_probabilities_summing_to_one(f):
    p = softmax(f)
    assert np.all(p >= 0) and np.all(p <= 1)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    # the largest score always keeps a probability of at least 1/K
    assert np.all(p[np.arange(f.shape[0]), f.argmax(axis=1)] >= 1 / f.shape[1] - 1e-12)


@settings(max_examples=60, deadline=None)
@given(finite_scores)
def test_log_softmax_is_finite_and_log_of_softmax(f):
    lp = log_softmax(f)
    assert np.all(np.isfinite(lp)) and np.all(lp <= 0)
    # exp(log p) sums to 1 even when some p underflow to 0
    np.testing.assert_allclose(np.exp(lp).sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.exp(lp), softmax(f), rtol=1e-12, atol=1e-300)


def test_softmax_of_two_scores_is_the_logistic_of_their_difference():
    f = np.array([[0.0, 1.0], [3.0, -2.0], [7.0, 7.0]])
    expected_p1 = [1 / (1 + math.exp(-1)), 1 / (1 + math.exp(5)), 0.5]
    np.testing.assert_allclose(softmax(f)[:, 1], expected_p1, rtol=1e-15)


# ----------------------------------------------------------------------- dtypes


def _random_problem(seed, N=20, D=5, H=8, K=3):
    rng = np.random.default_rng(seed)
    params = init_params(D, H, K, rng=rng)
    params.W1[-1] = rng.standard_normal(H) * 0.1
    params.W2[-1] = rng.standard_normal(K) * 0.1
    return params, rng.standard_normal((N, D)), rng.integers(0, K, N)


def test_float32_params_give_float32_scores_and_grads_close_to_float64():
    params, X, y = _random_problem(0)
    p32 = Params(*(W.astype(np.float32) for W in params))
    X32 = X.astype(np.float32)
    f, h = forward(p32, X32)
    assert f.dtype == np.float32 and h.dtype == np.float32
    assert softmax(f).dtype == np.float32
    L32, g32 = loss_and_grads(p32, X32, y, 1e-2)
    L64, g64 = loss_and_grads(Params(*(W.astype(np.float64) for W in p32)),
                              X32.astype(np.float64), y, 1e-2)
    assert g32.W1.dtype == np.float32 and g32.W2.dtype == np.float32
    assert L32 == pytest.approx(L64, rel=1e-5)
    for a, b in zip(g32, g64, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * np.abs(b).max())


def test_init_params_shapes_zero_biases_and_same_draw_in_both_dtypes():
    p64 = init_params(3, 4, 5, rng=7)
    p32 = init_params(3, 4, 5, rng=7, dtype=np.float32)
    assert p64.W1.shape == (4, 4) and p64.W2.shape == (5, 5)
    assert not p64.W1[-1].any() and not p64.W2[-1].any()
    assert p32.W1.dtype == np.float32
    np.testing.assert_array_equal(p32.W1, p64.W1.astype(np.float32))
    np.testing.assert_array_equal(p32.W2, p64.W2.astype(np.float32))


@pytest.mark.parametrize(
    "args",
    [(0, 3, 2), (2, 0, 2), (2, 3, 1), (2.0, 3, 2), (True, 3, 2)],
)
def test_init_params_rejects_bad_sizes(args):
    with pytest.raises(ValueError):
        init_params(*args)


def test_loss_and_grads_rejects_mismatched_shapes():
    params, X, y = _random_problem(1)
    with pytest.raises(ValueError, match="X must have shape"):
        loss_and_grads(params, X[:, :-1], y)
    with pytest.raises(ValueError, match="y must have shape"):
        loss_and_grads(params, X, y[:-1])
    with pytest.raises(ValueError, match="params"):
        loss_and_grads(Params(params.W1, params.W2[:-1]), X, y)
    with pytest.raises(ValueError, match="no rows"):
        loss_and_grads(params, X[:0], y[:0])


# ------------------------------------------------------------------ sample weights


def test_integer_sample_weights_equal_repeating_examples():
    # Weight 2 on an example is the same weighted mean as listing it twice.
    params, X, y = _random_problem(2, N=6)
    w = np.array([1, 2, 1, 3, 1, 1])
    Lw, gw = loss_and_grads(params, X, y, 0.05, sample_weight=w)
    idx = np.repeat(np.arange(6), w)
    Lr, gr = loss_and_grads(params, X[idx], y[idx], 0.05)
    assert Lw == pytest.approx(Lr, rel=1e-13)
    for a, b in zip(gw, gr, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_uniform_sample_weights_equal_no_weights():
    params, X, y = _random_problem(3)
    L1, g1 = loss_and_grads(params, X, y, 0.1, sample_weight=np.full(20, 3.7))
    L0, g0 = loss_and_grads(params, X, y, 0.1)
    assert L1 == pytest.approx(L0, rel=1e-14)
    for a, b in zip(g1, g0, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-16)


# --------------------------------------------------------------- scikit-learn's backprop
# sklearn's loss is   mean_i L_i + alpha_sk / (2 N) * Σ coefs²   (intercepts NOT penalised),
# ours is             mean_i L_i + alpha / 2 * Σ W²               (bias rows penalised).
# So with alpha_sk = alpha * N the weight-row gradients agree, and our bias-row gradient
# is sklearn's intercept gradient plus alpha * W[-1]. This uses the private
# MLPClassifier._backprop (signature of scikit-learn >= 1.6, with sample_weight); if that
# private API changes the test is skipped rather than failing spuriously.


def _sklearn_grads(params, X, y, alpha_sk):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    W1, W2 = params
    H, K = W1.shape[1], W2.shape[1]
    clf = MLPClassifier(hidden_layer_sizes=(H,), alpha=alpha_sk, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    clf.coefs_ = [W1[:-1].copy(), W2[:-1].copy()]
    clf.intercepts_ = [W1[-1].copy(), W2[-1].copy()]
    Y = np.eye(K)[y]
    activations = [X, None, None]
    deltas = [None, None]
    coef_grads = [np.empty_like(c) for c in clf.coefs_]
    intercept_grads = [np.empty_like(b) for b in clf.intercepts_]
    try:
        sk_loss, cg, ig = clf._backprop(
            X, Y, None, activations, deltas, coef_grads, intercept_grads
        )
    except (TypeError, AttributeError) as exc:  # private API moved
        pytest.skip(f"MLPClassifier._backprop changed: {exc}")
    return sk_loss, cg, ig


@pytest.mark.parametrize("alpha", [0.0, 0.03, 1.0])
def test_gradient_matches_sklearn_backprop_with_alpha_times_N(alpha):
    rng = np.random.default_rng(11)
    N, D, H, K = 30, 4, 6, 3
    X = rng.standard_normal((N, D))
    y = np.arange(N) % K  # every class present, so sklearn keeps K outputs
    params = init_params(D, H, K, rng=rng)
    params.W1[-1] = rng.standard_normal(H)
    params.W2[-1] = rng.standard_normal(K)
    sk_loss, cg, ig = _sklearn_grads(params, X, y, alpha_sk=alpha * N)
    L, (dW1, dW2) = loss_and_grads(params, X, y, alpha)

    np.testing.assert_allclose(dW1[:-1], cg[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dW2[:-1], cg[1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dW1[-1] - alpha * params.W1[-1], ig[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dW2[-1] - alpha * params.W2[-1], ig[1], rtol=1e-12, atol=1e-15)
    # the losses differ by exactly the bias rows' penalty
    bias_penalty = alpha / 2 * (np.sum(params.W1[-1] ** 2) + np.sum(params.W2[-1] ** 2))
    assert L == pytest.approx(sk_loss + bias_penalty, rel=1e-12)


def test_the_math_core_imports_without_scikit_learn():
    # The core's run-time needs are NumPy (and SciPy for L-BFGS): importing relunet and its
    # math, checker and trainer must not pull in scikit-learn (the estimator does, lazily).
    import subprocess
    import sys

    code = (
        "import sys, relunet, relunet.network, relunet.gradcheck, relunet.train\n"
        "assert 'sklearn' not in sys.modules, 'sklearn imported'\n"
        "relunet.ReluNetClassifier\n"
        "assert 'sklearn' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------ class indices
def _takers_of_class_indices():
    """Every public function taking class indices y, as f(params, X, y)."""
    from relunet.fastpath import Workspace
    from relunet.gradcheck import check_gradients, numerical_gradients
    from relunet.optim import make_optimizer
    from relunet.train import Trainer

    def workspace(params, X, y):
        return Workspace(X.shape[1], params.W1.shape[1], params.W2.shape[1], X.shape[0],
                         np.float64).loss_and_grads(params, X, y, 0.0)

    def epoch(params, X, y):
        ws = Workspace(X.shape[1], params.W1.shape[1], params.W2.shape[1], 4, np.float64)
        return ws.run_epoch(params, X, y, None, None, 0.0, make_optimizer("sgd", params), 0.1)

    def trainer(params, X, y):
        return Trainer(Params(params.W1.copy(), params.W2.copy()), rng=0).partial_fit(X, y)

    return {
        "loss": lambda p, X, y: loss(p, X, y),
        "loss_and_grads": lambda p, X, y: loss_and_grads(p, X, y, 0.1),
        "check_gradients": check_gradients,
        "numerical_gradients": numerical_gradients,
        "Workspace.loss_and_grads": workspace,
        "Workspace.run_epoch": epoch,
        "Trainer.partial_fit": trainer,
    }


@pytest.mark.parametrize("name", sorted(_takers_of_class_indices()))
@pytest.mark.parametrize("bad, shown", [
    ([1, 2, 3, 3, 1, 2], "3"),  # 1-based labels of K=3 classes
    ([0, -1, 2, 1, 0, 2], "-1"),  # "unknown" as -1
    ([0, 5, 2, 1, 7, 2], "5, 7"),
])
def test_class_indices_outside_0_to_K_are_refused(name, bad, shown):
    rng = np.random.default_rng(0)
    params = init_params(3, 4, 3, rng=rng)
    X = rng.standard_normal((6, 3))
    f = _takers_of_class_indices()[name]
    with pytest.raises(ValueError, match=rf"class indices 0\.\.2; it holds {shown} \("):
        f(params, X, np.array(bad))
    with pytest.raises(ValueError, match="integer class indices"):
        f(params, X, np.array(bad, dtype=np.float64))
    f(params, X, np.array([0, 1, 2, 2, 1, 0]))  # and good ones pass
