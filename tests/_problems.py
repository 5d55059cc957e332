"""Random problems and the float64 reference that the fast-path tests compare against."""

from __future__ import annotations

import numpy as np
import pytest

from relunet.network import Params, loss_and_grads


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
