"""Update rules and learning-rate schedules (relunet.optim), checked by hand and against
scikit-learn's MLPClassifier, which implements the same SGD-with-momentum and Adam rules.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from relunet import train
from relunet.network import Params, init_params
from relunet.optim import (
    SGD,
    Adam,
    Adaptive,
    Constant,
    Cosine,
    GradientDescent,
    InvScaling,
    make_optimizer,
    make_schedule,
)

# ------------------------------------------------------------ update rules by hand


def _params():
    return Params(np.array([[1.0, -2.0], [0.5, 0.0]]), np.array([[3.0], [-1.0], [0.25]]))


def _grads():
    return Params(np.array([[0.1, 0.2], [-0.4, 1.0]]), np.array([[-1.0], [0.0], [2.0]]))


def test_gradient_descent_step_is_w_minus_lr_g():
    p, g = _params(), _grads()
    GradientDescent(p).step(p, g, 0.5)
    np.testing.assert_array_equal(p.W1, [[1.0 - 0.05, -2.0 - 0.1], [0.5 + 0.2, 0.0 - 0.5]])
    np.testing.assert_array_equal(p.W2, [[3.5], [-1.0], [-0.75]])


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_two_steps_follow_the_momentum_rule(nesterov):
    # w = 1, constant gradient g = 2, lr = 0.1, mu = 0.5:
    # step 1: v1 = -0.2;             w1 = 1 + v1 = 0.8   (Nesterov: 1 + mu v1 - lr g = 0.7)
    # step 2: v2 = 0.5·v1 - 0.2 = -0.3; w2 = w1 + v2 = 0.5 (Nesterov: 0.7 - 0.15 - 0.2 = 0.35)
    W = np.array([[1.0]])
    g = np.array([[2.0]])
    opt = SGD((W,), momentum=0.5, nesterov=nesterov)
    opt.step((W,), (g,), 0.1)
    assert W[0, 0] == pytest.approx(0.7 if nesterov else 0.8, rel=1e-15)
    opt.step((W,), (g,), 0.1)
    assert W[0, 0] == pytest.approx(0.35 if nesterov else 0.5, rel=1e-14)
    assert opt.state[0][0, 0] == pytest.approx(-0.3, rel=1e-14)


def test_sgd_without_momentum_is_gradient_descent():
    p1, p2, g = _params(), _params(), _grads()
    opt = SGD(p1, momentum=0.0, nesterov=False)
    for _ in range(3):
        opt.step(p1, g, 0.3)
        GradientDescent(p2).step(p2, g, 0.3)
    for a, b in zip(p1, p2, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-15)


def test_adam_first_step_moves_each_weight_by_lr_against_the_sign_of_g():
    # t = 1: m = (1-b1) g, v = (1-b2) g², lr_t = lr sqrt(1-b2)/(1-b1), so the step is
    # lr · g / (|g| + eps/sqrt(1-b2)) ≈ lr · sign(g) (exactly 0 where g = 0).
    p, g = _params(), _grads()
    start = [W.copy() for W in p]
    Adam(p).step(p, g, 0.01)
    for W, W0, G in zip(p, start, g, strict=True):
        expected = W0 - 0.01 * G / (np.abs(G) + 1e-8 / math.sqrt(1 - 0.999))
        np.testing.assert_allclose(W, expected, rtol=1e-12, atol=1e-15)


def test_adam_second_step_by_hand():
    # One weight, g1 = 1 then g2 = -1, b1 = 0.9, b2 = 0.999, eps = 0, lr = 1:
    # step 1 moves by -1 (see above).  Step 2: m = 0.9·0.1 - 0.1 = -0.01,
    # v = 0.999·0.001 + 0.001 = 0.001999, lr_2 = sqrt(1 - 0.999²)/(1 - 0.9²),
    # w2 = w1 - lr_2 · m / sqrt(v).
    W = np.array([0.0])
    opt = Adam((W,), epsilon=0.0)
    opt.step((W,), (np.array([1.0]),), 1.0)
    assert W[0] == pytest.approx(-1.0, rel=1e-14)
    opt.step((W,), (np.array([-1.0]),), 1.0)
    lr2 = math.sqrt(1 - 0.999**2) / (1 - 0.9**2)
    assert W[0] == pytest.approx(-1.0 - lr2 * -0.01 / math.sqrt(0.001999), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver", ["gd", "sgd", "adam"])
def test_update_rules_keep_dtype_and_state_shapes(solver, dtype):
    p = Params(*(W.astype(dtype) for W in _params()))
    opt = make_optimizer(solver, p)
    opt.step(p, Params(*(G.astype(dtype) for G in _grads())), 0.1)
    assert p.W1.dtype == dtype and p.W2.dtype == dtype
    for s in opt.state:
        assert s.dtype == dtype and s.shape in (p.W1.shape, p.W2.shape)


def test_make_optimizer_rejects_unknown_solver():
    with pytest.raises(ValueError, match="solver"):
        make_optimizer("lbfgs", _params())


# -------------------------------------------------------------------------- schedules


def test_constant_schedule_never_changes_and_never_reacts_to_plateaus():
    s = Constant(0.3)
    assert [s.rate(e) for e in (0, 1, 100)] == [0.3, 0.3, 0.3]
    assert s.plateau() is False


@pytest.mark.parametrize("power_t", [0.5, 0.25, 1.0])
def test_invscaling_is_lr0_over_epoch_plus_one_to_the_power_t(power_t):
    s = InvScaling(0.8, power_t)
    for epoch in (0, 1, 3, 99):
        assert s.rate(epoch) == pytest.approx(0.8 / (epoch + 1) ** power_t, rel=1e-15)
    assert s.rate(3) == pytest.approx({0.5: 0.4, 0.25: 0.8 / math.sqrt(2), 1.0: 0.2}[power_t])


def test_adaptive_divides_by_five_on_each_plateau_and_stops_below_min_lr():
    s = Adaptive(1.0, min_lr=1e-3)
    assert s.rate(0) == 1.0
    assert s.plateau() is True and s.rate(1) == pytest.approx(0.2)
    assert s.plateau() is True and s.rate(2) == pytest.approx(0.04)
    assert s.plateau() is True and s.rate(3) == pytest.approx(0.008)
    assert s.plateau() is True and s.rate(4) == pytest.approx(0.0016)
    assert s.plateau() is False  # 0.00032 < min_lr: training should stop


def test_cosine_goes_from_lr0_through_half_towards_zero_then_restarts():
    s = Cosine(0.6, n_epochs=10)
    assert s.rate(0) == pytest.approx(0.6, rel=1e-15)
    assert s.rate(5) == pytest.approx(0.3, rel=1e-14)  # cos(pi/2) = 0
    rates = [s.rate(e) for e in range(10)]
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))
    assert rates[-1] == pytest.approx(0.3 * (1 + math.cos(0.9 * math.pi)), rel=1e-12)  # > 0
    # past the horizon (partial_fit after fit) a new cycle starts, never a rate of 0
    assert [s.rate(e) for e in range(10, 30)] == rates + rates
    low = Cosine(1.0, 4, final_fraction=0.1)
    assert low.rate(2) == pytest.approx(0.55)  # halfway between lr0 and the floor
    assert s.plateau() is False


def test_make_schedule_builds_each_and_rejects_unknown():
    assert isinstance(make_schedule("constant", 0.1), Constant)
    assert isinstance(make_schedule("invscaling", 0.1, power_t=0.3), InvScaling)
    assert isinstance(make_schedule("adaptive", 0.1), Adaptive)
    cos = make_schedule("cosine", 0.1, n_epochs=7)
    assert isinstance(cos, Cosine) and cos.n_epochs == 7 and cos.rate(0) == 0.1
    with pytest.raises(ValueError, match="learning_rate"):
        make_schedule("step", 0.1)


# ---------------------------------------------------- against scikit-learn's MLPClassifier
# Both start from the same weights, see the examples in the same order and take 20 steps;
# sklearn's intercepts_ are our bias rows. With alpha = 0 the objectives are identical.

N_SK, D_SK, H_SK, K_SK = 30, 4, 5, 3


def _sk_problem():
    rng = np.random.default_rng(2024)
    X = rng.standard_normal((N_SK, D_SK))
    y = np.arange(N_SK) % K_SK  # every class present, in sklearn's sorted order 0..K-1
    p0 = init_params(D_SK, H_SK, K_SK, rng=rng)
    p0.W1[-1] = 0.1 * rng.standard_normal(H_SK)
    p0.W2[-1] = 0.1 * rng.standard_normal(K_SK)
    return X, y, p0


def _sklearn_after(p0, X, y, n_steps, **kw):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=(p0.W1.shape[1],), alpha=0.0, shuffle=False, tol=0.0,
        n_iter_no_change=10**6, max_iter=1, random_state=0, **kw,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)  # sets up the layers; its weights are replaced next
        clf.coefs_ = [p0.W1[:-1].copy(), p0.W2[:-1].copy()]
        clf.intercepts_ = [p0.W1[-1].copy(), p0.W2[-1].copy()]
        clf.set_params(max_iter=n_steps, warm_start=True)
        clf.fit(X, y)
    W1 = np.vstack([clf.coefs_[0], clf.intercepts_[0]])
    W2 = np.vstack([clf.coefs_[1], clf.intercepts_[1]])
    return W1, W2


def _assert_same_weights(ours, theirs, tol=1e-10):
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=tol)


def test_gradient_descent_matches_sklearn_full_batch_sgd_without_momentum():
    X, y, p0 = _sk_problem()
    ours, _ = train(X, y, params=p0, solver="gd", alpha=0.0, learning_rate_init=0.3,
                    max_iter=20, tol=0.0, n_iter_no_change=10**6)
    theirs = _sklearn_after(p0, X, y, 20, solver="sgd", batch_size=N_SK, momentum=0.0,
                            learning_rate="constant", learning_rate_init=0.3)
    # the weights really moved (the comparison is not trivially of the start)
    assert np.abs(ours.W1 - p0.W1).max() > 1e-2
    _assert_same_weights(ours, theirs)


@pytest.mark.parametrize("batch_size", [N_SK, 7])
@pytest.mark.parametrize("nesterov", [True, False])
def test_momentum_sgd_matches_sklearn(nesterov, batch_size):
    # batch_size = 7 with shuffle=False: consecutive batches of 7, the last one of 2.
    X, y, p0 = _sk_problem()
    ours, _ = train(X, y, params=p0, solver="sgd", alpha=0.0, batch_size=batch_size,
                    shuffle=False, momentum=0.9, nesterovs_momentum=nesterov,
                    learning_rate_init=0.05, max_iter=20, tol=0.0, n_iter_no_change=10**6)
    theirs = _sklearn_after(p0, X, y, 20, solver="sgd", batch_size=batch_size, momentum=0.9,
                            nesterovs_momentum=nesterov, learning_rate="constant",
                            learning_rate_init=0.05)
    assert np.abs(ours.W1 - p0.W1).max() > 1e-2
    _assert_same_weights(ours, theirs)


def test_adam_matches_sklearn():
    X, y, p0 = _sk_problem()
    ours, _ = train(X, y, params=p0, solver="adam", alpha=0.0, batch_size=N_SK, shuffle=False,
                    learning_rate_init=0.01, max_iter=20, tol=0.0, n_iter_no_change=10**6)
    theirs = _sklearn_after(p0, X, y, 20, solver="adam", batch_size=N_SK,
                            learning_rate_init=0.01)
    assert np.abs(ours.W1 - p0.W1).max() > 1e-2
    _assert_same_weights(ours, theirs)


def test_our_start_weights_are_not_modified_by_training():
    X, y, p0 = _sk_problem()
    before = [W.copy() for W in p0]
    train(X, y, params=p0, solver="sgd", max_iter=3)
    for W, W0 in zip(p0, before, strict=True):
        np.testing.assert_array_equal(W, W0)
