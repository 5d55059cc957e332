"""Update rules (steepest descent, momentum SGD, Adam) and learning-rate schedules.

Every update works in place on the parameter arrays and on state it allocated once, so a
training step creates no temporaries: ``y += a * x`` is BLAS axpy
(:func:`relunet.fastpath.axpy`).
"""

from __future__ import annotations

import math

import numpy as np

from .fastpath import axpy

__all__ = [
    "GradientDescent",
    "SGD",
    "Adam",
    "make_optimizer",
    "Constant",
    "InvScaling",
    "Adaptive",
    "Cosine",
    "make_schedule",
    "SCHEDULES",
    "SOLVERS",
]

SOLVERS = ("gd", "sgd", "adam", "lbfgs")
SCHEDULES = ("constant", "invscaling", "adaptive", "cosine")

# ---------------------------------------------------------------------------------- rules


class GradientDescent:
    """The note's steepest descent: ``w ← w - lr · ∂L/∂w``."""

    def __init__(self, params):
        self.state = ()

    def step(self, params, grads, lr):
        """Update ``params`` in place from ``grads`` with learning rate ``lr``."""
        for W, dW in zip(params, grads, strict=True):
            axpy(-lr, dW, W)


class SGD:
    """Momentum SGD: ``v ← μ v - lr·g``; ``w ← w + v`` (Nesterov: ``w ← w + μ v - lr·g``).

    The same rule as scikit-learn's ``MLPClassifier(solver="sgd")``.
    """

    def __init__(self, params, *, momentum=0.9, nesterov=True):
        self.momentum, self.nesterov = momentum, nesterov
        self.state = tuple(np.zeros_like(W) for W in params)  # the velocities v

    def step(self, params, grads, lr):
        """Update ``params`` in place from ``grads`` with learning rate ``lr``."""
        mu = self.momentum
        for W, dW, v in zip(params, grads, self.state, strict=True):
            v *= mu
            axpy(-lr, dW, v)
            if self.nesterov:
                axpy(mu, v, W)
                axpy(-lr, dW, W)
            else:
                axpy(1.0, v, W)


class Adam:
    """Adam (Kingma & Ba), with the bias correction folded into the step size."""

    def __init__(self, params, *, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.t = 0
        zeros = [np.zeros_like(W) for W in params]
        self.state = (*zeros, *(np.zeros_like(W) for W in params))  # first, second moments
        self._scratch = [np.empty_like(W) for W in params]

    def step(self, params, grads, lr):
        """Update ``params`` in place from ``grads`` with learning rate ``lr``."""
        b1, b2 = self.beta_1, self.beta_2
        self.t += 1
        lr_t = lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        n = len(self._scratch)
        for W, g, m, v, tmp in zip(
            params, grads, self.state[:n], self.state[n:], self._scratch, strict=True
        ):
            m *= b1
            axpy(1 - b1, g, m)
            np.multiply(g, g, out=tmp)
            v *= b2
            axpy(1 - b2, tmp, v)
            np.sqrt(v, out=tmp)
            tmp += self.epsilon
            np.divide(m, tmp, out=tmp)
            axpy(-lr_t, tmp, W)


def make_optimizer(solver, params, *, momentum=0.9, nesterov=True, beta_1=0.9, beta_2=0.999,
                   epsilon=1e-8):
    """The update rule for ``solver`` ("gd", "sgd" or "adam"), with state shaped like params."""
    if solver == "gd":
        return GradientDescent(params)
    if solver == "sgd":
        return SGD(params, momentum=momentum, nesterov=nesterov)
    if solver == "adam":
        return Adam(params, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    raise ValueError(f"solver must be one of 'gd', 'sgd', 'adam', got {solver!r}")


# ------------------------------------------------------------------------------ schedules
# A schedule gives the learning rate of each epoch (0-based).  ``plateau()`` is called when
# the monitored loss stopped improving; it returns True if the schedule reacted (so training
# goes on) and False if training should stop.


class Constant:
    """The same rate every epoch."""

    def __init__(self, lr0):
        self.lr0 = lr0

    def rate(self, epoch):
        return self.lr0

    def plateau(self):
        return False


class InvScaling:
    """``lr0 / (epoch + 1) ** power_t`` (scikit-learn counts samples instead of epochs)."""

    def __init__(self, lr0, power_t=0.5):
        self.lr0, self.power_t = lr0, power_t

    def rate(self, epoch):
        return self.lr0 / (epoch + 1) ** self.power_t

    def plateau(self):
        return False


class Adaptive:
    """Constant until the loss stalls, then divided by 5; training stops below ``min_lr``."""

    def __init__(self, lr0, min_lr=1e-6):
        self.lr, self.min_lr = lr0, min_lr

    def rate(self, epoch):
        return self.lr

    def plateau(self):
        self.lr /= 5.0
        return self.lr >= self.min_lr


class Cosine:
    """Half a cosine from ``lr0`` down to ``lr0 * final_fraction`` over ``n_epochs``."""

    def __init__(self, lr0, n_epochs, final_fraction=0.0):
        self.lr0, self.n_epochs, self.final = lr0, max(int(n_epochs), 1), final_fraction

    def rate(self, epoch):
        progress = min(epoch / self.n_epochs, 1.0)
        low = self.lr0 * self.final
        return low + 0.5 * (self.lr0 - low) * (1 + math.cos(math.pi * progress))

    def plateau(self):
        return False


def make_schedule(name, lr0, *, n_epochs=200, power_t=0.5):
    """The schedule called ``name`` (one of :data:`SCHEDULES`) starting at ``lr0``."""
    if name == "constant":
        return Constant(lr0)
    if name == "invscaling":
        return InvScaling(lr0, power_t)
    if name == "adaptive":
        return Adaptive(lr0)
    if name == "cosine":
        return Cosine(lr0, n_epochs)
    raise ValueError(f"learning_rate must be one of {', '.join(SCHEDULES)}; got {name!r}")
