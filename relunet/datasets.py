"""Built-in data sets: the cs231n-style spiral (generated) and scikit-learn's digits."""

from __future__ import annotations

import numpy as np

from .network import as_generator

__all__ = ["make_spiral", "load_digits", "DATASETS", "load_dataset"]


def make_spiral(n_per_class=100, n_classes=3, *, noise=0.2, rng=None):
    """Interleaved 2-D spiral arms, one per class (the cs231n example).

    Parameters
    ----------
    n_per_class : int
        Points per arm.
    n_classes : int
        Number of arms (K).
    noise : float
        Standard deviation of the Gaussian noise added to each point's angle.
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    X : float64 array of shape (n_per_class * n_classes, 2)
    y : int array of shape (n_per_class * n_classes,)
        Arm index ``0 .. n_classes-1``, in blocks.
    """
    if n_per_class < 1 or n_classes < 2:
        raise ValueError("make_spiral needs n_per_class >= 1 and n_classes >= 2")
    rng = as_generator(rng)
    radius = np.tile(np.linspace(0.0, 1.0, n_per_class), n_classes)
    arm = np.repeat(np.arange(n_classes), n_per_class)
    # each arm sweeps 4 radians, starting where the previous one ended
    theta = (arm + np.tile(np.linspace(0.0, 1.0, n_per_class), n_classes)) * 4.0
    theta = theta + rng.standard_normal(theta.shape) * noise
    X = np.column_stack([radius * np.sin(theta), radius * np.cos(theta)])
    return X, arm


def load_digits():
    """scikit-learn's bundled 8x8 handwritten digits: X (1797, 64) in 0..16, y in 0..9."""
    from sklearn.datasets import load_digits as _load

    X, y = _load(return_X_y=True)
    return X.astype(np.float64), y


def load_dataset(name, *, rng=None):
    """``(X, y)`` of the built-in data set ``name`` (one of :data:`DATASETS`)."""
    if name == "digits":
        return load_digits()
    if name == "spiral":
        return make_spiral(rng=rng if rng is not None else 0)
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


DATASETS = ("digits", "spiral")
