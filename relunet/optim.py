"""Update rules (steepest descent, momentum SGD, Adam) and learning-rate schedules.

Every update works in place, on the parameter arrays and on state allocated once, so a
training step creates no temporaries.  The rules are written for the training loop of
:mod:`relunet.fastpath`, which splits the weights into blocks of rows updated by different
threads at once, and which hands over gradients already multiplied by a factor of the rule's
choosing (the loop folds it into ``df``, where it costs nothing):

* ``begin(lr)`` is called once per step and returns the step's coefficients ``c``; ``c.scale``
  is the factor the gradients come multiplied by (``-lr`` for SGD and steepest descent,
  ``1 - β1`` for Adam: each is the factor the rule would otherwise apply in a pass of its own).
* ``update(W, u, state, tmp, c, penalty=0.0)`` updates ``W`` from ``u + penalty · W``, where
  ``u = c.scale · ∂L_d/∂W`` (the data term) and ``penalty = c.scale · α`` (the α-term, which
  the rule adds in the same pass); ``W``, ``u``, ``state`` (from ``state_of``) and the scratch
  ``tmp`` are views of the same block of rows.  ``u`` may be overwritten.
* ``step(params, grads, lr)`` is the plain one-call form, from unscaled gradients.

A rule's ``blas`` attribute, while the training loop sets it, is level-1 BLAS for the dtype
(:class:`relunet.fastpath._Level1`: ``axpy``, ``axpby``, ``scal``, ``usable``): ``y = a·x + b·y``
in one pass, where NumPy needs two or three (``tmp = a·x``; ``y *= b``; ``y += tmp``).  The
loop resets it to None after the epoch; rules with no use for it ignore it.  (With numba,
the loop runs these three rules as compiled code of its own, :mod:`relunet.kernels`, which
tests hold to the code here.)

Each NumPy ufunc is one pass over memory, so the rules are written to use few of them.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

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


class Coefficients(NamedTuple):
    """The numbers one step of a rule needs; ``scale`` multiplies the gradients it is given."""

    scale: float
    lr: float = 0.0


class _Rule:
    """What the three rules share: per-parameter state and the one-call :meth:`step`."""

    state: tuple = ()
    blas = None  # level-1 BLAS while the training loop runs (see above); else None

    def _add_penalty(self, W, u, penalty, tmp):
        """``u += penalty · W``: the α-term of the gradient, scaled like ``u``."""
        if not penalty:
            return
        blas = self.blas
        if blas is not None and blas.usable(W, u):
            blas.axpy(penalty, W, u)  # one pass instead of two
        else:
            np.multiply(W, penalty, out=tmp)
            u += tmp

    def state_of(self, i, rows=slice(None)):
        """Views of the state of parameter ``i`` (0: W1, 1: W2), restricted to ``rows``."""
        n = len(self.state) // self._per_param if self.state else 0
        return tuple(self.state[j * n + i][rows] for j in range(self._per_param))

    _per_param = 0

    def step(self, params, grads, lr):
        """Update ``params`` in place from (unscaled) ``grads`` with learning rate ``lr``."""
        c = self.begin(lr)
        for i, (W, g) in enumerate(zip(params, grads, strict=True)):
            self.update(W, g * c.scale, self.state_of(i), np.empty_like(W), c)


class GradientDescent(_Rule):
    """The note's steepest descent: ``w ← w - lr · ∂L/∂w``."""

    def __init__(self, params):
        self.state = ()

    def begin(self, lr):
        return Coefficients(-lr, lr)

    def update(self, W, u, state, tmp, c, penalty=0.0):
        self._add_penalty(W, u, penalty, tmp)
        W += u  # u = -lr · ∂L/∂W


class SGD(_Rule):
    """Momentum SGD: ``v ← μ v - lr·g``; ``w ← w + v`` (Nesterov: ``w ← w + μ v - lr·g``).

    The same rule as scikit-learn's ``MLPClassifier(solver="sgd")``.
    """

    _per_param = 1

    def __init__(self, params, *, momentum=0.9, nesterov=True):
        self.momentum, self.nesterov = momentum, nesterov
        self.state = tuple(np.zeros_like(W) for W in params)  # the velocities v

    def begin(self, lr):
        return Coefficients(-lr, lr)

    def update(self, W, u, state, tmp, c, penalty=0.0):
        (v,) = state
        mu = self.momentum
        self._add_penalty(W, u, penalty, tmp)
        blas = self.blas
        if blas is not None and blas.usable(W, u, v):
            # 3 passes instead of 5, no scratch (Nesterov; plain momentum: 2 instead of 3).
            blas.axpby(1.0, u, mu, v)  # v = μ v - lr·g   (u = -lr·g)
            if self.nesterov:
                blas.axpy(1.0, u, W)
                blas.axpy(mu, v, W)  # w + μ v - lr·g
            else:
                blas.axpy(1.0, v, W)
            return
        v *= mu
        v += u  # v = μ v - lr·g   (u = -lr·g)
        if self.nesterov:
            W += u
            np.multiply(v, mu, out=tmp)
            W += tmp  # w + μ v - lr·g
        else:
            W += v


class Adam(_Rule):
    """Adam (Kingma & Ba), with the bias correction folded into the step size."""

    _per_param = 2

    def __init__(self, params, *, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.t = 0
        zeros = [np.zeros_like(W) for W in params]
        self.state = (*zeros, *(np.zeros_like(W) for W in params))  # first, second moments

    def begin(self, lr):
        b1, b2 = self.beta_1, self.beta_2
        self.t += 1
        return Coefficients(1 - b1, lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t))

    def update(self, W, u, state, tmp, c, penalty=0.0):
        m, v = state
        b1, b2 = self.beta_1, self.beta_2
        self._add_penalty(W, u, penalty, tmp)
        blas = self.blas
        if blas is not None and blas.usable(W, u, m, v, tmp):
            # 7 passes instead of 10 (each axpby is one pass for two or three ufuncs).
            blas.axpby(1.0, u, b1, m)  # m = β1 m + (1-β1) g   (u = (1-β1) g)
            np.multiply(u, u, out=tmp)
            blas.axpby((1 - b2) / (1 - b1) ** 2, tmp, b2, v)  # v = β2 v + (1-β2) g²
            np.sqrt(v, out=tmp)
            tmp += self.epsilon
            np.divide(m, tmp, out=tmp)
            blas.axpy(-c.lr, tmp, W)  # w - lr_t · m / (√v + ε)
            return
        m *= b1
        m += u  # m = β1 m + (1-β1) g   (u = (1-β1) g)
        np.multiply(u, u, out=tmp)
        tmp *= (1 - b2) / (1 - b1) ** 2
        v *= b2
        v += tmp  # v = β2 v + (1-β2) g²
        np.sqrt(v, out=tmp)
        tmp += self.epsilon
        np.divide(m, tmp, out=tmp)
        tmp *= c.lr
        W -= tmp  # w - lr_t · m / (√v + ε)


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
    """Half a cosine from ``lr0`` down to ``lr0 * final_fraction`` over ``n_epochs``; then
    it starts again from ``lr0`` (warm restarts, as in SGDR), so that epochs past the
    horizon (``partial_fit`` after ``fit``) still learn instead of running at rate 0."""

    def __init__(self, lr0, n_epochs, final_fraction=0.0):
        self.lr0, self.n_epochs, self.final = lr0, max(int(n_epochs), 1), final_fraction

    def rate(self, epoch):
        progress = (epoch % self.n_epochs) / self.n_epochs
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
