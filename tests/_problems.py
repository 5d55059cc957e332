"""Random problems and the float64 reference that the fast-path tests compare against."""

from __future__ import annotations

import numpy as np
import pytest

from relunet.network import Params, loss_and_grads


def small_classifier(*, hidden_units=16, max_iter=30, **kw):
    """A fast ReluNetClassifier for behaviour tests (tiny data, few epochs)."""
    from relunet import ReluNetClassifier

    kw.setdefault("learning_rate_init", 1e-2)
    kw.setdefault("random_state", 0)
    return ReluNetClassifier(hidden_units=hidden_units, max_iter=max_iter, **kw)


def problem(seed, N, D, H, K, dtype=np.float64):
    """Weights (He/LeCun-scaled, non-zero biases), X, y and example weights."""
    rng = np.random.default_rng(seed)
    W1 = rng.standard_normal((D + 1, H)) * np.sqrt(2.0 / D)
    W2 = rng.standard_normal((H + 1, K)) * np.sqrt(1.0 / H)
    X = rng.standard_normal((N, D))
    y = rng.integers(0, K, N)
    sw = rng.uniform(0.1, 3.0, N)
    return Params(W1.astype(dtype), W2.astype(dtype)), X.astype(dtype), y, sw


def reference(params, X, y, alpha, sw):
    """network.loss_and_grads in float64, minus the penalty (the Workspace returns L_d/N)."""
    p64 = Params(*(W.astype(np.float64) for W in params))
    L, g = loss_and_grads(p64, X.astype(np.float64), y, alpha, sample_weight=sw)
    penalty = alpha / 2 * sum(float(np.sum(W * W)) for W in p64)
    return L - penalty, g


def assert_close(loss, grads, ref_loss, ref_grads, rtol):
    """Loss to ``rtol``; each gradient to ``rtol`` times its largest entry."""
    assert loss == pytest.approx(ref_loss, rel=rtol, abs=rtol)
    for a, b in zip(grads, ref_grads, strict=True):
        scale = max(np.abs(b).max(), 1e-300)
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)


def rule_updates(solver, dtype, update=None, nesterov=None):
    """W (7, 5) and the rule's state after 4 steps of ``solver`` from fixed gradients: by the
    rule's NumPy code (``update`` None), or by ``update``, the compiled epoch's update kernel
    (relunet.kernels._update, compiled or as plain Python)."""
    from relunet.fastpath import _rule_of
    from relunet.kernels import EpochRule
    from relunet.optim import make_optimizer

    rng = np.random.default_rng(0)
    W0 = rng.standard_normal((7, 5)).astype(dtype)
    grads = [rng.standard_normal(W0.shape).astype(dtype) for _ in range(4)]
    kw = {} if nesterov is None else {"nesterov": nesterov}
    W = W0.copy()
    opt = make_optimizer(solver, Params(W, W.copy()), **kw)
    empty = np.empty((0, 0), dtype)
    for g in grads:
        c = opt.begin(0.05)
        u = g * dtype(c.scale)  # the loop hands over scaled gradients
        if update is None:
            opt.update(W, u, opt.state_of(0), np.empty_like(W), c, penalty=c.scale * 0.1)
        else:
            code, hyper = _rule_of(opt)
            m, v = (*opt.state_of(0), empty, empty)[:2]
            update(EpochRule(code, np.array(hyper, dtype), None, None), W, u, m, v,
                   dtype(c.scale * 0.1), dtype(c.lr))
    return W, [s.copy() for s in opt.state_of(0)]
