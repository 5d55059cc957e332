"""The training loop (relunet.train): convergence, divergence guard, reproducibility,
stopping rules, schedules, configuration checks and the bookkeeping around a fit."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from relunet import History, TrainConfig, Trainer, TrainingDiverged, train
from relunet.datasets import load_digits, make_spiral
from relunet.network import Params, forward, init_params, loss
from relunet.optim import Constant
from relunet.train import EpochInfo, _all_finite, stratified_split

SOLVERS = ("gd", "sgd", "adam", "lbfgs")


def accuracy(params, X, y):
    return float(np.mean(forward(params, X)[0].argmax(axis=1) == y))


@pytest.fixture(scope="module")
def spiral():
    return make_spiral(50, 3, noise=0.2, rng=0)


# ------------------------------------------------------------------------ convergence


@pytest.mark.slow
def test_gradient_descent_fits_the_spiral_to_98_percent():
    # Measured over 40 data/initialisation seeds: this configuration's worst training
    # accuracy was 0.99 (mean 0.992), in ~0.3 s.  (H=100, lr=1, alpha=1e-3 needs ~10x
    # the epochs for the same result.)
    X, y = make_spiral(100, 3, noise=0.2, rng=1)
    params, history = train(X, y, 50, solver="gd", learning_rate_init=1.0, alpha=1e-4,
                            max_iter=1000, tol=0.0, n_iter_no_change=10**6, rng=101)
    assert len(history) == 1000
    assert accuracy(params, X, y) >= 0.98
    assert history.train_loss[-1] < 0.1 * history.train_loss[0]


@pytest.fixture(scope="module")
def digits_split():
    from sklearn.model_selection import train_test_split

    X, y = load_digits()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    mu, sd = Xtr.mean(axis=0), Xtr.std(axis=0)
    sd[sd == 0] = 1.0  # constant pixels
    return (Xtr - mu) / sd, (Xte - mu) / sd, ytr, yte


# Measured test accuracies over three stratified splits: gd 0.969-0.978, sgd 0.967-0.973,
# adam 0.969-0.980, lbfgs 0.973-0.982.
DIGITS_CONFIGS = {
    "gd": dict(learning_rate_init=0.5, max_iter=200),
    "sgd": dict(learning_rate_init=0.05, max_iter=20),
    "adam": dict(learning_rate_init=1e-2, max_iter=20),
    "lbfgs": dict(max_iter=100),
}


@pytest.mark.slow
@pytest.mark.parametrize("solver", SOLVERS)
def test_every_solver_reaches_95_percent_on_held_out_digits(digits_split, solver):
    Xtr, Xte, ytr, yte = digits_split
    params, _ = train(Xtr, ytr, 64, solver=solver, alpha=1e-4, rng=0, **DIGITS_CONFIGS[solver])
    assert accuracy(params, Xte, yte) >= 0.95


# ----------------------------------------------------------------------- divergence


@pytest.mark.parametrize("solver, batch_size", [("gd", None), ("sgd", 32), ("sgd", 2)])
def test_huge_learning_rate_raises_diverged_and_keeps_last_finite_weights(
    spiral, solver, batch_size
):
    # With batch_size=2 the loss overflows part-way through an epoch, after some batches
    # already moved the weights: those moves must be undone too.
    X, y = spiral
    cfg = TrainConfig(solver=solver, learning_rate_init=1e12, alpha=1e-4,
                      batch_size=batch_size, max_iter=500, tol=0.0, n_iter_no_change=10**6)
    trainer = Trainer(init_params(2, 20, 3, rng=0), cfg, rng=0)
    snapshots = []  # weights and optimizer state at the start and after every epoch

    def snapshot(info=None):
        snapshots.append(([W.copy() for W in trainer.params],
                          [s.copy() for s in trainer.optimizer.state]))

    snapshot()
    with pytest.raises(TrainingDiverged, match="smaller learning rate") as exc:
        trainer.fit(X, y, callback=snapshot)
    assert f"epoch {len(snapshots)}" in str(exc.value)
    weights, state = snapshots[-1]
    for W, W_before in zip(trainer.params, weights, strict=True):
        assert np.isfinite(W).all()
        np.testing.assert_array_equal(W, W_before)
    for s, s_before in zip(trainer.optimizer.state, state, strict=True):
        np.testing.assert_array_equal(s, s_before)
    assert trainer.n_epochs == len(snapshots) - 1


@pytest.mark.parametrize("solver", ["sgd", "adam"])  # gd has one batch: no later batch fails
def test_a_diverged_epoch_leaves_no_trace_on_the_next_one(spiral, solver):
    # An absurd learning rate for one epoch: its first batch steps the weights (and the
    # optimizer: Adam's m, v and step count t) to ~1e200, so a later batch of the same epoch
    # overflows to a non-finite loss.  After the failure, training must continue exactly as
    # if the failed epoch had never run.
    X, y = spiral
    cfg = TrainConfig(solver=solver, batch_size=10, shuffle=False, learning_rate_init=0.01)
    p0 = init_params(2, 8, 3, rng=0)
    interrupted, clean = Trainer(p0, cfg), Trainer(p0, cfg)
    interrupted.partial_fit(X, y)
    schedule, interrupted.schedule = interrupted.schedule, Constant(1e200)
    with pytest.raises(TrainingDiverged):
        interrupted.partial_fit(X, y)
    interrupted.schedule = schedule
    interrupted.partial_fit(X, y)
    clean.partial_fit(X, y)
    clean.partial_fit(X, y)
    for a, b in zip(interrupted.params, clean.params, strict=True):
        np.testing.assert_array_equal(a, b)


def test_non_finite_inputs_are_refused_before_training(spiral):
    X, y = spiral
    bad = X.copy()
    bad[5, 1] = np.nan
    trainer = Trainer(init_params(2, 8, 3, rng=0))
    before = [W.copy() for W in trainer.params]
    with pytest.raises(ValueError, match="NaN or infinity"):
        trainer.fit(bad, y)
    for W, old in zip(trainer.params, before, strict=True):
        np.testing.assert_array_equal(W, old)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, "both infinities"])
def test_the_finite_check_finds_every_non_finite_value(bad, dtype):
    X = np.ones((9000, 3), dtype)  # more rows than a chunk of the fallback check
    if bad == "both infinities":  # their sum is NaN
        X[10, 0], X[8999, 2] = np.inf, -np.inf
    else:
        X[8999, 2] = bad
    assert not _all_finite(X)


def test_the_finite_check_accepts_finite_values_whose_sum_overflows():
    X = np.full((5000, 2), np.finfo(np.float64).max / 2)  # Σ overflows to inf
    assert _all_finite(X)
    X[4999, 1] = np.nan
    assert not _all_finite(X)
    huge32 = np.full((100, 2), np.finfo(np.float32).max, np.float32)  # summed in float64
    assert _all_finite(huge32)


def test_zero_weight_rows_are_dropped_and_negative_weights_refused(spiral):
    X, y = spiral
    w = np.ones(y.shape[0])
    w[::2] = 0.0
    cfg = TrainConfig(solver="gd", max_iter=5, tol=0.0)
    a = Trainer(init_params(2, 8, 3, rng=0), cfg).fit(X, y, w)
    b = Trainer(init_params(2, 8, 3, rng=0), cfg).fit(X[1::2], y[1::2])
    for Wa, Wb in zip(a.params, b.params, strict=True):
        np.testing.assert_array_equal(Wa, Wb)
    with pytest.raises(ValueError, match="non-negative"):
        Trainer(init_params(2, 8, 3, rng=0), cfg).fit(X, y, -w)


def test_diverged_is_a_floating_point_error():
    assert issubclass(TrainingDiverged, FloatingPointError)


# ------------------------------------------------------------------ reproducibility


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("solver", SOLVERS)
def test_same_seed_gives_bit_identical_weights(spiral, solver, early_stopping):
    X, y = spiral
    kw = dict(solver=solver, max_iter=15, batch_size=16, shuffle=True,
              early_stopping=early_stopping, learning_rate_init=0.01)
    a, ha = train(X, y, 16, rng=123, **kw)
    b, hb = train(X, y, 16, rng=123, **kw)
    for Wa, Wb in zip(a, b, strict=True):
        assert np.array_equal(Wa, Wb)
    assert ha.train_loss == hb.train_loss
    # and the seed matters: another seed gives other weights
    c, _ = train(X, y, 16, rng=124, **kw)
    assert not np.array_equal(a.W1, c.W1)


def test_shuffling_order_is_driven_by_rng(spiral):
    # Same starting weights, different shuffling seeds -> different results: shuffling
    # really is driven by rng.
    X, y = spiral
    p0 = init_params(2, 16, 3, rng=0)
    a, _ = train(X, y, params=p0, solver="sgd", batch_size=10, max_iter=3, rng=1)
    b, _ = train(X, y, params=p0, solver="sgd", batch_size=10, max_iter=3, rng=2)
    c, _ = train(X, y, params=p0, solver="sgd", batch_size=10, max_iter=3, rng=1,
                 shuffle=False)
    assert not np.array_equal(a.W1, b.W1)
    assert not np.array_equal(a.W1, c.W1)


# ------------------------------------------------------------------- dtypes, penalty


def test_float32_training_stays_float32_and_learns(spiral):
    X, y = spiral
    params, history = train(X.astype(np.float32), y, 32, solver="adam",
                            learning_rate_init=0.02, max_iter=150, rng=0)
    assert params.W1.dtype == np.float32 and params.W2.dtype == np.float32
    assert all(math.isfinite(v) for v in history.train_loss)
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert accuracy(params, X.astype(np.float32), y) > 0.8


def test_float32_and_float64_gradient_descent_agree_for_a_few_epochs(spiral):
    X, y = spiral
    p0 = init_params(2, 16, 3, rng=3)
    kw = dict(solver="gd", learning_rate_init=0.5, max_iter=5, tol=0.0)
    p64, _ = train(X, y, params=p0, **kw)
    p32, _ = train(X, y, params=p0, dtype=np.float32, **kw)
    assert p32.W1.dtype == np.float32
    for a, b in zip(p32, p64, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4 * np.abs(b).max())


def test_weight_decay_shrinks_the_weights(spiral):
    X, y = spiral
    p0 = init_params(2, 32, 3, rng=0)
    kw = dict(solver="gd", learning_rate_init=0.5, max_iter=300, tol=0.0)
    free, _ = train(X, y, params=p0, alpha=0.0, **kw)
    decayed, _ = train(X, y, params=p0, alpha=0.05, **kw)

    def norm(p):
        return math.sqrt(sum(float(np.sum(W**2)) for W in p))

    assert norm(decayed) < 0.8 * norm(free)


def test_integer_sample_weights_equal_repeated_rows_in_full_batch_descent(spiral):
    X, y = spiral
    w = np.arange(len(y)) % 3 + 1
    idx = np.repeat(np.arange(len(y)), w)
    p0 = init_params(2, 8, 3, rng=0)
    kw = dict(solver="gd", learning_rate_init=0.5, max_iter=10, tol=0.0)
    weighted, _ = train(X, y, params=p0, sample_weight=w, **kw)
    repeated, _ = train(X[idx], y[idx], params=p0, **kw)
    for a, b in zip(weighted, repeated, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


# ------------------------------------------------------------------- early stopping


def test_early_stopping_restores_the_weights_of_the_best_validation_accuracy(spiral):
    X, y = spiral
    # a noisy solver, so the validation accuracy goes up and down and the last epoch is not
    # the best one.  The monitor is the accuracy (scikit-learn's choice), not the loss.
    cfg = TrainConfig(solver="sgd", learning_rate_init=0.5, momentum=0.9, batch_size=8,
                      early_stopping=True, validation_fraction=0.2, n_iter_no_change=8,
                      tol=0.0, max_iter=200, alpha=1e-3)
    trainer = Trainer(init_params(2, 32, 3, rng=0), cfg, rng=7)
    per_epoch = []
    trainer.fit(X, y, callback=lambda info: per_epoch.append(
        [W.copy() for W in trainer.params]))
    val_losses, val_acc = trainer.history.val_loss, trainer.history.val_accuracy
    best = int(np.argmax(val_acc))  # the first epoch of the best accuracy
    assert best < len(val_acc) - 1, "test needs a run whose last epoch is not the best"
    assert trainer.best_epoch == best + 1 and trainer.best_score == val_acc[best]
    for W, W_best in zip(trainer.params, per_epoch[best], strict=True):
        np.testing.assert_array_equal(W, W_best)
    # the split the trainer used: stratified_split is its first use of the rng
    _, va = stratified_split(y, 0.2, np.random.default_rng(7))
    final_val = loss(trainer.params, X[va], y[va], cfg.alpha)
    assert final_val == pytest.approx(val_losses[best], rel=1e-12)
    assert accuracy(trainer.params, X[va], y[va]) == val_acc[best]
    assert trainer.best_loss == pytest.approx(min(val_losses), rel=1e-15)


def test_early_stopping_weighs_the_validation_examples_like_the_training_ones(spiral):
    X, y = spiral
    sw = np.random.default_rng(3).uniform(0.1, 5.0, y.shape[0])
    cfg = TrainConfig(solver="adam", learning_rate_init=0.01, batch_size=16, max_iter=4,
                      early_stopping=True, validation_fraction=0.3, tol=0.0, alpha=1e-3)
    trainer = Trainer(init_params(2, 16, 3, rng=0), cfg, rng=5)
    weights = []
    trainer.fit(X, y, sample_weight=sw,
                callback=lambda info: weights.append([W.copy() for W in trainer.params]))
    _, va = stratified_split(y, 0.3, np.random.default_rng(5))  # the trainer's split
    for params, val_loss, val_acc in zip(weights, trainer.history.val_loss,
                                         trainer.history.val_accuracy, strict=True):
        W = Params(*params)
        assert val_loss == pytest.approx(
            loss(W, X[va], y[va], cfg.alpha, sample_weight=sw[va]), rel=1e-10)
        hit = forward(W, X[va])[0].argmax(axis=1) == y[va]
        assert val_acc == pytest.approx(np.sum(sw[va][hit]) / np.sum(sw[va]), rel=1e-12)


def test_history_records_validation_loss_and_accuracy_only_with_early_stopping(spiral):
    X, y = spiral
    _, h = train(X, y, 8, solver="adam", max_iter=6, early_stopping=True, rng=0,
                 tol=0.0, learning_rate_init=0.01)
    assert len(h.val_loss) == len(h.val_accuracy) == len(h) == 6
    assert all(0.0 <= a <= 1.0 for a in h.val_accuracy)
    assert all(v > 0 for v in h.val_loss)
    _, h = train(X, y, 8, solver="adam", max_iter=3, rng=0)
    assert h.val_loss == [] and h.val_accuracy == []
    assert all(e.val_loss is None and e.val_accuracy is None for e in h.epochs)


def test_stratified_split_is_stratified_disjoint_and_complete():
    y = np.repeat([0, 1, 2, 3], [40, 20, 12, 3])
    train_idx, val_idx = stratified_split(y, 0.25, np.random.default_rng(0))
    assert np.intersect1d(train_idx, val_idx).size == 0
    np.testing.assert_array_equal(np.union1d(train_idx, val_idx), np.arange(y.size))
    assert np.all(np.diff(train_idx) > 0) and np.all(np.diff(val_idx) > 0)  # sorted
    # round(0.25 · n) per class, at least 1: 10, 5, 3, 1 (0.75 rounds up to 1)
    assert np.bincount(y[val_idx], minlength=4).tolist() == [10, 5, 3, 1]


def test_stratified_split_keeps_singleton_classes_in_training():
    y = np.array([0, 0, 0, 0, 1])
    tr, va = stratified_split(y, 0.5, np.random.default_rng(0))
    assert 4 in tr and np.all(y[va] == 0) and va.size == 2


def test_stratified_split_refuses_when_nothing_can_be_held_out():
    with pytest.raises(ValueError, match="early_stopping"):
        stratified_split(np.array([0, 1, 2]), 0.3, np.random.default_rng(0))


# ------------------------------------------------------------------------ schedules


def _rates(history):
    return [e.learning_rate for e in history.epochs]


def test_adaptive_rate_divides_by_five_after_each_plateau_then_stops(spiral):
    X, y = spiral
    # tol = 1e3: no epoch ever improves by tol, so every n_iter_no_change epochs is a
    # plateau; the rate goes 1e-3, 2e-4, 4e-5, 8e-6, 1.6e-6, and training stops when the
    # next division would take it below 1e-6.
    _, h = train(X, y, 8, solver="sgd", learning_rate="adaptive", learning_rate_init=1e-3,
                 tol=1e3, n_iter_no_change=2, max_iter=100, rng=0)
    rates = _rates(h)
    distinct = sorted(set(rates), reverse=True)
    np.testing.assert_allclose(distinct, [1e-3 / 5**k for k in range(5)], rtol=1e-12)
    # the first plateau is declared after epoch 3 (epoch 1 sets the best loss, 2 and 3
    # stall), then after every 2 epochs
    np.testing.assert_allclose(rates[:4], [1e-3, 1e-3, 1e-3, 2e-4], rtol=1e-12)
    assert len(h) < 100


def test_cosine_rate_follows_half_a_cosine_over_max_iter(spiral):
    X, y = spiral
    _, h = train(X, y, 8, solver="adam", learning_rate="cosine", learning_rate_init=0.01,
                 max_iter=10, tol=0.0, rng=0)
    expected = [0.01 * 0.5 * (1 + math.cos(math.pi * e / 10)) for e in range(10)]
    np.testing.assert_allclose(_rates(h), expected, rtol=1e-12)


def test_invscaling_rate_is_lr0_over_epoch_to_power_t(spiral):
    X, y = spiral
    _, h = train(X, y, 8, solver="sgd", learning_rate="invscaling", learning_rate_init=0.1,
                 power_t=0.5, max_iter=5, tol=0.0, rng=0)
    np.testing.assert_allclose(_rates(h), [0.1 / math.sqrt(e) for e in range(1, 6)],
                               rtol=1e-12)


# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    "name, value",
    [
        ("solver", "newton"),
        ("learning_rate", "step"),
        ("alpha", -1e-3),
        ("alpha", math.nan),
        ("alpha", math.inf),
        ("alpha", True),
        ("learning_rate_init", 0.0),
        ("learning_rate_init", -0.1),
        ("power_t", -0.5),
        ("momentum", 1.5),
        ("momentum", -0.1),
        ("beta_1", 1.0),
        ("beta_2", -0.1),
        ("epsilon", 0.0),
        ("tol", -1.0),
        ("validation_fraction", 0.0),
        ("validation_fraction", 1.0),
        ("max_iter", 0),
        ("max_iter", 2.5),
        ("n_iter_no_change", 0),
        ("max_fun", 0),
        ("batch_size", 0),
        ("batch_size", 16.0),
        ("nesterovs_momentum", "yes"),
        ("early_stopping", 1),
        ("shuffle", None),
    ],
)
def test_train_config_rejects_bad_value_naming_the_parameter(name, value):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        TrainConfig(**{name: value})


def test_train_config_defaults_are_valid_and_names_lists_every_field():
    cfg = TrainConfig()
    assert set(TrainConfig.names()) == set(vars(cfg))
    assert "alpha" in TrainConfig.names() and "max_fun" in TrainConfig.names()


def test_train_rejects_unknown_hyper_parameters(spiral):
    X, y = spiral
    with pytest.raises(TypeError, match="learning_rat"):
        train(X, y, 4, learning_rat=0.1)


@pytest.mark.parametrize(
    "X_shape, y, match",
    [((10, 3), np.zeros(10, int), "X must have shape"),
     ((10, 2), np.zeros(9, int), "y must have shape"),
     ((10, 2), np.full(10, 3), "class indices"),
     ((10, 2), np.full(10, 0.5), "class indices")],
)
def test_trainer_rejects_bad_data(X_shape, y, match):
    trainer = Trainer(init_params(2, 4, 3, rng=0))
    with pytest.raises(ValueError, match=match):
        trainer.fit(np.zeros(X_shape), y)


# ------------------------------------------------------------ callback, partial_fit


def test_callback_gets_each_epochs_info_and_true_stops(spiral):
    X, y = spiral
    seen = []

    def cb(info):
        seen.append(info)
        return info.epoch == 3

    params, h = train(X, y, 8, solver="sgd", max_iter=50, tol=0.0, callback=cb, rng=0)
    assert [e.epoch for e in seen] == [1, 2, 3]
    assert all(isinstance(e, EpochInfo) for e in seen)
    assert seen == h.epochs
    assert all(e.seconds >= 0 and math.isfinite(e.train_loss) for e in seen)


def test_callback_stop_is_recorded_in_stop_reason(spiral):
    X, y = spiral
    trainer = Trainer(init_params(2, 8, 3, rng=0), TrainConfig(max_iter=50, tol=0.0))
    trainer.fit(X, y, callback=lambda info: info.epoch >= 2)
    assert trainer.n_epochs == 2 and trainer.stop_reason == "stopped by callback"


def test_callback_also_stops_lbfgs(spiral):
    X, y = spiral
    seen = []
    train(X, y, 8, solver="lbfgs", max_iter=50, tol=0.0, rng=0,
          callback=lambda info: seen.append(info.epoch) or len(seen) == 4)
    assert seen == [1, 2, 3, 4]


def test_training_loss_plateau_stops_before_max_iter(spiral):
    X, y = spiral
    trainer = Trainer(init_params(2, 8, 3, rng=0),
                      TrainConfig(solver="sgd", tol=10.0, n_iter_no_change=3, max_iter=100))
    trainer.fit(X, y)
    # epoch 1 sets the best loss, epochs 2-4 fail to improve it by 10: stop after 4
    assert trainer.n_epochs == 4
    assert "did not improve" in trainer.stop_reason


@pytest.mark.parametrize("solver", ["gd", "sgd", "adam"])
def test_partial_fit_runs_exactly_one_epoch(spiral, solver):
    X, y = spiral
    trainer = Trainer(init_params(2, 8, 3, rng=0),
                      TrainConfig(solver=solver, batch_size=16, learning_rate_init=0.01), rng=0)
    start = trainer.params.W1.copy()
    info = trainer.partial_fit(X, y)
    assert isinstance(info, EpochInfo) and info.epoch == 1
    assert trainer.n_epochs == 1 and len(trainer.history) == 1
    assert trainer.n_samples_seen == len(y)
    assert not np.array_equal(trainer.params.W1, start)
    trainer.partial_fit(X, y)
    assert trainer.n_epochs == 2 and trainer.n_samples_seen == 2 * len(y)


def test_partial_fit_refuses_lbfgs(spiral):
    X, y = spiral
    trainer = Trainer(init_params(2, 8, 3, rng=0), TrainConfig(solver="lbfgs"))
    with pytest.raises(ValueError, match="partial_fit"):
        trainer.partial_fit(X, y)


def test_partial_fit_epochs_equal_fit_epochs_for_gradient_descent(spiral):
    X, y = spiral
    p0 = init_params(2, 8, 3, rng=0)
    cfg = TrainConfig(solver="gd", learning_rate_init=0.3, max_iter=4, tol=0.0)
    fitted = Trainer(p0, cfg).fit(X, y)
    stepped = Trainer(p0, cfg)
    for _ in range(4):
        stepped.partial_fit(X, y)
    for a, b in zip(fitted.params, stepped.params, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("solver", SOLVERS)
def test_trainer_does_not_modify_callers_arrays(spiral, solver):
    X, y = spiral
    X = np.ascontiguousarray(X)  # already the training dtype/layout: the easiest to alias
    sw = np.linspace(0.5, 2.0, len(y))
    p0 = init_params(2, 8, 3, rng=0)
    copies = [A.copy() for A in (X, y, sw, *p0)]
    trainer = Trainer(p0, TrainConfig(solver=solver, max_iter=5, early_stopping=True), rng=0)
    trainer.fit(X, y, sw)
    for A, A0 in zip((X, y, sw, *p0), copies, strict=True):
        np.testing.assert_array_equal(A, A0)
    assert not np.shares_memory(trainer.params.W1, p0.W1)


def test_history_as_dicts_is_plain_and_matches_epochs(spiral):
    X, y = spiral
    _, h = train(X, y, 4, max_iter=3, tol=0.0, rng=0)
    assert isinstance(h, History)
    rows = h.as_dicts()
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["train_loss"] for r in rows] == h.train_loss


def test_train_infers_classes_and_returns_params(spiral):
    X, y = spiral
    params, _ = train(X, y, 5, max_iter=2, rng=0)
    assert isinstance(params, Params)
    assert params.W1.shape == (3, 5) and params.W2.shape == (6, 3)


# ------------------------------------------------- issue 11: no silent failure, progress


def test_a_blown_up_but_finite_loss_warns_naming_cause_and_fix():
    # lr 5 on standardised digits: the loss stays finite (~1e3) but far above log K, the
    # loss of guessing; training ran to the end and must not pass for success.
    from relunet.train import DivergenceWarning

    X, y = load_digits()
    X = (X - X.mean(0)) / (X.std(0) + 1e-9)
    with pytest.warns(DivergenceWarning, match=r"diverged .* log K .* smaller learning rate "
                                               r"\(it was 5; e.g. 0.5\) or scale the inputs"):
        train(X, y, 32, learning_rate_init=5.0, batch_size=64, max_iter=3, rng=0)


def test_adams_overflowing_second_moment_stops_with_the_named_cause(spiral):
    # Once v = inf every Adam step is m/√inf = 0: the loss would stand still forever.
    X, y = spiral
    trainer = Trainer(init_params(2, 8, 3, rng=0, dtype=np.float32),
                      TrainConfig(learning_rate_init=1e-2, batch_size=10))
    trainer.partial_fit(X, y)
    before = [W.copy() for W in trainer.params]
    trainer.optimizer.state[2][0, 0] = np.inf  # v of W1, as a squared gradient > 3.4e38 makes
    with pytest.raises(TrainingDiverged, match="Adam's average of squared gradients "
                                               "overflowed float32.*scale the inputs"):
        trainer.partial_fit(X, y)
    for W, W0 in zip(trainer.params, before, strict=True):
        np.testing.assert_array_equal(W, W0)


def test_inputs_whose_squares_overflow_the_dtype_are_refused_naming_the_column(spiral):
    # 1e30 in float32: g² overflows (the issue: every Adam step became 0, the loss stayed at
    # 1.8e29 and only a "raise max_iter" warning appeared).
    X, y = spiral
    X = X.astype(np.float32)
    X[5, 1] = -1e30
    with pytest.raises(ValueError, match=r"column 2 holds -1e\+30, whose square overflows "
                                         r"float32.*Scale the inputs"):
        train(X, y, 8, max_iter=2, rng=0)
    X64 = X.astype(np.float64)  # float64 holds squares up to ~1.3e154: trains (and says the
    with pytest.warns(Warning, match="scale the inputs"):  # loss is far above guessing)
        train(X64, y, 8, max_iter=1, rng=0)


def test_the_stall_rule_fires_at_any_loss_scale(spiral):
    # A loss of ~1e16: best - tol == best in float64, so an absolute tol never saw a stall.
    # The relative tolerance (tol · |best| above 1) does.
    X, y = spiral
    X = X * 1e17
    cfg = TrainConfig(solver="sgd", learning_rate_init=1e-40, momentum=0.0, tol=1e-4,
                      n_iter_no_change=3, max_iter=50)
    trainer = Trainer(init_params(2, 8, 3, rng=0), cfg, rng=0)
    with pytest.warns(Warning):  # the loss is far above log K: also said
        trainer.fit(X, y)
    assert trainer.history.train_loss[0] > 1e14
    assert trainer.n_epochs == 4 and "did not improve" in trainer.stop_reason


def test_progress_is_reported_within_epochs_and_slicing_changes_nothing(monkeypatch):
    train_module = importlib.import_module("relunet.train")  # (relunet.train: the function)

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(400, 12)), rng.integers(0, 3, 400)
    cfg = TrainConfig(batch_size=50, max_iter=2, learning_rate_init=1e-2)
    whole = Trainer(init_params(12, 10, 3, rng=1), cfg, rng=2).fit(X, y)
    monkeypatch.setattr(train_module, "FLOPS_PER_SLICE", 1.0)  # every batch a slice
    reports = []
    sliced = Trainer(init_params(12, 10, 3, rng=1), cfg, rng=2)
    sliced.fit(X, y, progress=lambda p: reports.append((p.epoch, p.rows_done, p.rows_total,
                                                         p.train_loss, p.train_accuracy)))
    assert [r[:3] for r in reports] == [(e, 50 * k, 400) for e in (1, 2) for k in range(1, 9)]
    for report, info in zip(reports[7::8], sliced.history.epochs, strict=True):
        assert report[3] == pytest.approx(info.train_loss, rel=1e-12)  # last report = epoch's
        assert report[4] == pytest.approx(info.train_accuracy, rel=1e-12)
    for a, b in zip(whole.params, sliced.params, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_running_training_accuracy_is_that_of_the_weights_each_batch_saw(spiral):
    # Full batch: the epoch's only batch is scored with the weights at the epoch's start.
    X, y = spiral
    trainer = Trainer(init_params(2, 16, 3, rng=0), TrainConfig(solver="gd", max_iter=5,
                                                                 learning_rate_init=0.5))
    starts = [[W.copy() for W in trainer.params]]
    trainer.fit(X, y, callback=lambda info: starts.append([W.copy() for W in trainer.params]))
    for info, W in zip(trainer.history.epochs, starts, strict=False):
        assert info.train_accuracy == accuracy(Params(*W), X, y)


def test_a_progress_stop_keeps_the_weights_reached_and_marks_the_fit_interrupted(monkeypatch):
    train_module = importlib.import_module("relunet.train")  # (relunet.train: the function)

    monkeypatch.setattr(train_module, "FLOPS_PER_SLICE", 1.0)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 5)), rng.integers(0, 2, 300)
    trainer = Trainer(init_params(5, 4, 2, rng=0), TrainConfig(batch_size=30, max_iter=10))
    seen = []

    def progress(p):
        seen.append([W.copy() for W in p.params])
        return p.epoch == 2 and p.rows_done == 120  # "Ctrl-C" after batch 4 of epoch 2
    trainer.fit(X, y, progress=progress)
    assert trainer.interrupted and trainer.stop_reason == "interrupted"
    assert trainer.n_epochs == 2 and not trainer.history.epochs[-1].complete
    for W, W_seen in zip(trainer.params, seen[-1], strict=True):
        np.testing.assert_array_equal(W, W_seen)


def test_ctrl_c_mid_epoch_keeps_the_last_complete_epoch(monkeypatch, spiral):
    train_module = importlib.import_module("relunet.train")  # (relunet.train: the function)

    monkeypatch.setattr(train_module, "FLOPS_PER_SLICE", 1.0)
    X, y = spiral
    trainer = Trainer(init_params(2, 8, 3, rng=0), TrainConfig(batch_size=10, max_iter=10))
    after = []

    def progress(p):
        if p.epoch == 3 and p.rows_done == 50:
            raise KeyboardInterrupt
    trainer.fit(X, y, progress=progress,
                callback=lambda info: after.append([W.copy() for W in trainer.params]))
    assert trainer.interrupted and trainer.n_epochs == 2
    for W, W2 in zip(trainer.params, after[-1], strict=True):
        np.testing.assert_array_equal(W, W2)


def test_a_loss_up_by_orders_of_magnitude_stops_and_undoes_the_epoch(spiral):
    # The review: a learning rate of 1e4 took the loss from ~1 to ~1e8, still finite, and
    # training "succeeded".  Above DIVERGED_FACTOR x max(first epoch's loss, log K) it stops.
    from relunet.train import DIVERGED_FACTOR

    X, y = spiral
    cfg = TrainConfig(solver="sgd", batch_size=10, shuffle=False, learning_rate_init=0.01)
    trainer = Trainer(init_params(2, 8, 3, rng=0), cfg)
    first = trainer.partial_fit(X, y).train_loss
    before = [W.copy() for W in trainer.params]
    trainer.schedule = Constant(1e4)
    with pytest.raises(TrainingDiverged, match=r"epoch 2: the training loss rose to .*more "
                                               r"than 1000x the first epoch's loss .*smaller "
                                               r"learning rate"):
        trainer.partial_fit(X, y)
    assert DIVERGED_FACTOR == 1e3 and first < 2 * math.log(3)
    for W, W0 in zip(trainer.params, before, strict=True):
        np.testing.assert_array_equal(W, W0)
    assert trainer.n_epochs == 1
