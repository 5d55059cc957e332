"""Back-propagation against finite differences (relunet.gradcheck), and the checker itself.

The analytic gradient of relunet.network.loss_and_grads must agree with a fourth-order
finite-difference stencil to < 1e-6 (normwise, per block) on random problems of every
small shape, and the checker must flag the classic back-propagation mistakes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import relunet.gradcheck as gradcheck
from relunet.gradcheck import check_gradients, kinked, numerical_gradients
from relunet.network import Params, loss_and_grads

EPS = 1e-3  # check_gradients' default finite-difference step
TOL = 1e-6

# Why draws near the ReLU kink are rejected: the stencil evaluates the loss at w ± δ and
# w ± 2δ, where δ = EPS / max(1, largest |input| of that row).  One weight of W1 moves a
# pre-activation z = x·w1 by at most 2δ|x_i| <= 2·EPS (bias row: 2·EPS), while W2 does
# not move z at all.  If some |z| < 2·EPS the stencil straddles max(0, z)'s corner and
# estimates the average of two one-sided slopes, not the derivative, so the comparison
# is meaningless there.  We reject every draw with a pre-activation within MARGIN = 10·EPS
# of zero (5x the largest move, which also covers rounding in computing z).
MARGIN = 10 * EPS

# Inputs scaled by 1e3 need more care; these are limits of finite differences in float64
# (the steps on W1 shrink to EPS/1e3, so the stencil's rounding noise u·|L|/δ grows 1e3x),
# not of back-propagation:
# * W1's weight rows are scaled down by 1e3 so pre-activations and scores stay O(1).  With
#   scores ~1e3 the softmax saturates, L_i = log(1 + e^-gap) is resolved only to an
#   absolute ~1e-16, and the gradients are ~e^-gap: nothing left for a stencil.
# * Every hidden unit must be on for at least one example.  A unit that is off everywhere
#   has only the penalty gradient α·w, and the rounding noise is then ~1e-6 of α·w itself.
# Measured: with both, the worst of ~14,000 such draws was 3e-8; without them ~2% of the
# draws exceed 1e-6.  Scaling W2 down instead (so h ~ 1e3 and W2's per-row steps shrink
# too) brings W1's gradient down to ~1e-3·df, where the same noise reaches ~1e-6 of it
# (worst of ~6,000 draws: 1.7e-6), so that regime is covered only by fixed draws below.


def pre_activations(params, X):
    W1 = params[0]
    return X @ W1[:-1] + W1[-1]


def make_problem(rng, N, D, H, K, *, alpha, x_scale=1.0, weighted=False, shrink=None):
    """Random weights (biases non-zero), data scaled by ``x_scale`` and labels.

    ``shrink`` ("W1" or "W2") divides that matrix's weight rows by ``x_scale``.
    """
    X = rng.standard_normal((N, D)) * x_scale
    y = rng.integers(0, K, N)
    W1 = rng.standard_normal((D + 1, H)) * np.sqrt(2.0 / D)
    W2 = rng.standard_normal((H + 1, K)) * np.sqrt(1.0 / H)
    if shrink is not None:
        {"W1": W1, "W2": W2}[shrink][:-1] /= x_scale
    sw = rng.uniform(0.1, 3.0, N) if weighted else None
    return Params(W1, W2), X, y, alpha, sw


def far_from_kink(params, X):
    return np.abs(pre_activations(params, X)).min() > MARGIN


def resolvable(params, X, x_scale):
    """Away from the kink, and for large inputs every hidden unit on somewhere."""
    if not far_from_kink(params, X):
        return False
    return x_scale < 10 or bool((pre_activations(params, X) > 0).any(axis=0).all())


@st.composite
def problems(draw):
    N = draw(st.integers(1, 8))
    D = draw(st.integers(1, 5))
    H = draw(st.integers(1, 6))
    K = draw(st.integers(2, 4))
    alpha = draw(st.sampled_from([0.0, 1e-4, 0.1, 1.0]))
    x_scale = draw(st.sampled_from([1.0, 1e-2, 1e3]))
    shrink = "W1" if x_scale > 10 else None
    weighted = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    prob = make_problem(rng, N, D, H, K, alpha=alpha, x_scale=x_scale, weighted=weighted,
                        shrink=shrink)
    assume(resolvable(prob[0], prob[1], x_scale))
    return prob


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)
@given(problems())
def test_backprop_matches_finite_differences_on_random_problems(problem):
    params, X, y, alpha, sw = problem
    err = check_gradients(params, X, y, alpha, sample_weight=sw)
    assert err < TOL, err.errors


def _search(seed, N, D, H, K, **kw):
    """The first draw from ``seed`` that finite differences can resolve (see above)."""
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        prob = make_problem(rng, N, D, H, K, **kw)
        if resolvable(prob[0], prob[1], kw.get("x_scale", 1.0)):
            return prob
    raise AssertionError("no draw away from the kink")  # pragma: no cover


@pytest.mark.parametrize(
    "N, D, H, K",
    [(1, 1, 1, 2), (1, 3, 4, 2), (5, 1, 3, 3), (6, 4, 1, 2), (3, 2, 2, 5), (1, 1, 1, 4)],
)
@pytest.mark.parametrize("alpha", [0.0, 0.5])
@pytest.mark.parametrize("weighted", [False, True])
def test_backprop_matches_finite_differences_on_degenerate_shapes(N, D, H, K, alpha, weighted):
    params, X, y, alpha, sw = _search(N * 100 + D * 10 + H, N, D, H, K, alpha=alpha,
                                      weighted=weighted)
    err = check_gradients(params, X, y, alpha, sample_weight=sw)
    assert err < TOL, err.errors


@pytest.mark.parametrize("shrink", ["W1", "W2"])
@pytest.mark.parametrize("seed", range(4))
def test_backprop_matches_finite_differences_with_inputs_scaled_by_1e3(seed, shrink):
    # Fixed draws (the first resolvable one from each seed), so the W2-shrunk regime whose
    # noise floor is near the tolerance is deterministic here.
    params, X, y, alpha, sw = _search(seed, 10, 4, 5, 3, alpha=1e-3, x_scale=1e3,
                                      shrink=shrink, weighted=seed % 2 == 1)
    err = check_gradients(params, X, y, alpha, sample_weight=sw)
    assert err < TOL, err.errors


def test_single_example_with_every_unit_alive_and_alpha():
    # N = 1: the mean over examples is that one example, nothing to average away.
    rng = np.random.default_rng(5)
    for _ in range(100):
        params, X, y, _, _ = make_problem(rng, 1, 3, 4, 3, alpha=0.2)
        z = pre_activations(params, X)
        if (z > MARGIN).all():
            break
    else:
        raise AssertionError("no draw with every unit on")
    err = check_gradients(params, X, y, 0.2)
    assert err < TOL, err.errors
    assert err.n_checked == params.W1.size + params.W2.size
    assert set(err.errors) == {"W1", "W1 bias", "W2", "W2 bias"}


def test_check_gradients_accepts_float32_params_and_compares_in_float64():
    params, X, y, alpha, _ = _search(9, 12, 3, 4, 3, alpha=0.01)
    p32 = Params(*(W.astype(np.float32) for W in params))
    # the check itself runs in float64, so float32 weights still pass the float64 tolerance
    err = check_gradients(p32, X.astype(np.float32), y, alpha)
    assert err < TOL, err.errors


# -------------------------------------------------------------- numerical_gradients


def test_numerical_gradient_of_a_quadratic_penalty_is_alpha_w():
    # All-zero weight rows of W2 and equal biases make every score equal, so the data
    # term is log K, constant in every weight that does not touch W2: its gradient w.r.t.
    # W1 is exactly the penalty's, alpha * W1 (the stencil is exact on a quadratic).
    rng = np.random.default_rng(0)
    W1 = rng.standard_normal((3, 4))
    W2 = np.zeros((5, 3))
    X = rng.standard_normal((6, 2))
    y = rng.integers(0, 3, 6)
    num = numerical_gradients(Params(W1, W2), X, y, alpha=0.7)
    np.testing.assert_allclose(num.W1, 0.7 * W1, rtol=1e-9, atol=1e-12)


def test_numerical_gradients_index_estimates_only_the_chosen_entries():
    params, X, y, alpha, _ = _search(2, 5, 3, 4, 3, alpha=0.1)
    idx = (np.array([0, 5, 15]), np.array([2, 14]))
    num = numerical_gradients(params, X, y, alpha, index=idx)
    assert np.flatnonzero(~np.isnan(num.W1)).tolist() == [0, 5, 15]
    assert np.flatnonzero(~np.isnan(num.W2)).tolist() == [2, 14]
    _, (dW1, dW2) = loss_and_grads(params, X, y, alpha)
    np.testing.assert_allclose(num.W1.ravel()[idx[0]], dW1.ravel()[idx[0]], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(num.W2.ravel()[idx[1]], dW2.ravel()[idx[1]], rtol=1e-6, atol=1e-9)


def test_max_checks_limits_the_number_of_weights_compared():
    params, X, y, alpha, _ = _search(3, 8, 5, 6, 4, alpha=0.0)
    err = check_gradients(params, X, y, alpha, max_checks=7, rng=0)
    assert err.n_checked == 14
    assert err < TOL


def test_numerical_gradients_leave_params_untouched():
    params, X, y, alpha, _ = _search(4, 5, 3, 4, 3, alpha=0.1)
    before = [W.copy() for W in params]
    numerical_gradients(params, X, y, alpha)
    for W, W0 in zip(params, before, strict=True):
        np.testing.assert_array_equal(W, W0)


# ------------------------------------------------ the checker catches wrong gradients
# An independent, plain-NumPy back-propagation with switches for the classic mistakes.
# With every switch right it must pass the check (so the harness is sound); with any one
# wrong, check_gradients must report a large error.


def reference_loss_and_grads(params, X, y, alpha=0.0, *, sample_weight=None, grads=True,
                             relu_mask=True, divide_by_n=True, penalise_bias=True,
                             half_alpha=False):
    W1, W2 = (np.asarray(W, dtype=np.float64) for W in params)
    N, K = X.shape[0], W2.shape[1]
    z = X @ W1[:-1] + W1[-1]
    h = np.maximum(z, 0.0)
    f = h @ W2[:-1] + W2[-1]
    f = f - f.max(axis=1, keepdims=True)
    p = np.exp(f) / np.exp(f).sum(axis=1, keepdims=True)
    Y = np.eye(K)[y]
    s = np.full(N, 1.0 / N) if sample_weight is None else sample_weight / sample_weight.sum()
    L = float(-(s * np.log(p[np.arange(N), y])).sum())
    L += alpha / 2 * (np.sum(W1**2) + np.sum(W2**2))
    df = (p - Y) * (s[:, None] if divide_by_n else 1.0)
    dW2 = np.vstack([h.T @ df, df.sum(axis=0)])
    dh = df @ W2[:-1].T
    if relu_mask:
        dh = dh * (z > 0)
    dW1 = np.vstack([X.T @ dh, dh.sum(axis=0)])
    a = alpha / 2 if half_alpha else alpha
    reg1, reg2 = a * W1, a * W2
    if not penalise_bias:
        reg1[-1] = 0.0
        reg2[-1] = 0.0
    return L, Params(dW1 + reg1, dW2 + reg2)


@pytest.fixture
def problem_with_dead_units():
    """N = 12 examples, some hidden units off for some examples, biases non-zero."""
    params, X, y, _, sw = _search(21, 12, 3, 6, 3, alpha=0.3, weighted=True)
    z = pre_activations(params, X)
    assert (z < 0).any() and (z > 0).any()
    return params, X, y, 0.3, sw


@pytest.mark.parametrize("weighted", [False, True])
def test_independent_reference_backprop_agrees_with_relunet(problem_with_dead_units, weighted):
    params, X, y, alpha, sw = problem_with_dead_units
    sw = sw if weighted else None
    L_ref, g_ref = reference_loss_and_grads(params, X, y, alpha, sample_weight=sw)
    L, g = loss_and_grads(params, X, y, alpha, sample_weight=sw)
    assert L == pytest.approx(L_ref, rel=1e-13)
    for a, b in zip(g, g_ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def _check_with(monkeypatch, problem, weighted=False, **mistake):
    def broken(params, X, y, alpha=0.0, *, sample_weight=None, grads=True):
        return reference_loss_and_grads(params, X, y, alpha, sample_weight=sample_weight,
                                        **mistake)

    # Only the analytic side is replaced: the finite differences still use relunet's loss.
    monkeypatch.setattr(gradcheck, "loss_and_grads", broken)
    params, X, y, alpha, sw = problem
    return check_gradients(params, X, y, alpha, sample_weight=sw if weighted else None)


@pytest.mark.parametrize("weighted", [False, True])
def test_checker_passes_the_correct_reference(monkeypatch, problem_with_dead_units, weighted):
    assert _check_with(monkeypatch, problem_with_dead_units, weighted) < TOL


@pytest.mark.parametrize(
    "mistake, block",
    [
        ({"relu_mask": False}, "W1"),  # gradient flows through switched-off units
        ({"divide_by_n": False}, "W2"),  # data gradient of L_d instead of L_d / N
        ({"penalise_bias": False}, "W2 bias"),  # bias rows skipped by the alpha term
        ({"half_alpha": True}, "W1"),  # d/dw (alpha/2 w²) taken as alpha/2 w
    ],
)
def test_checker_flags_a_wrong_gradient(monkeypatch, problem_with_dead_units, mistake, block):
    err = _check_with(monkeypatch, problem_with_dead_units, **mistake)
    assert err > 1e-2, err.errors
    assert err.errors[block] > 1e-2


def test_checker_flags_a_single_wrong_entry(monkeypatch, problem_with_dead_units):
    def off_by_a_little(params, X, y, alpha=0.0, *, sample_weight=None, grads=True):
        L, g = reference_loss_and_grads(params, X, y, alpha, sample_weight=sample_weight)
        g.W2[1, 2] += 1e-3 * np.abs(g.W2).max()
        return L, g

    monkeypatch.setattr(gradcheck, "loss_and_grads", off_by_a_little)
    params, X, y, alpha, _ = problem_with_dead_units
    err = check_gradients(params, X, y, alpha)
    assert err.errors["W2"] > 1e-4
    assert err.errors["W1"] < TOL


def test_weights_whose_stencil_crosses_a_kink_are_left_out_and_counted():
    # A pre-activation exactly at 0: the loss has a corner there, so the finite difference
    # of the bias weight W1[1, 0] is not a derivative.  The checker must leave that entry
    # out (counted in n_skipped) instead of reporting a false error; W1[0, 0] multiplies
    # x = 0 for that example, so it does not cross the corner and is still checked.
    W1 = np.array([[1.0], [0.0]])  # z = x
    W2 = np.array([[2.0, -1.0], [0.0, 0.0]])
    X = np.array([[0.0], [1.0]])
    y = np.array([0, 1])
    assert kinked(Params(W1, W2), X, 1e-3).tolist() == [[False], [True]]
    err = check_gradients(Params(W1, W2), X, y)
    assert err.n_skipped == 1
    assert "W1 bias" not in err.errors
    assert err < TOL
    # The raw stencil across the corner really is wrong: the bias's one-sided slopes differ.
    numeric = numerical_gradients(Params(W1, W2), X, y)
    _, analytic = loss_and_grads(Params(W1, W2), X, y)
    assert abs(numeric.W1[1, 0] - analytic.W1[1, 0]) > 1e-3
