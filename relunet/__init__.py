"""relunet: the one-hidden-layer ReLU network of Saxon's *Simple neural network math*.

The math lives in :mod:`relunet.network` under the note's names; training in
:mod:`relunet.train`; the scikit-learn estimator in :mod:`relunet.estimator`.
"""

__version__ = "0.1.0"

from .gradcheck import check_gradients
from .network import Params, forward, init_params, loss, loss_and_grads, softmax
from .train import History, TrainConfig, Trainer, TrainingDiverged, train

__all__ = [
    "__version__",
    "Params",
    "init_params",
    "forward",
    "softmax",
    "loss",
    "loss_and_grads",
    "check_gradients",
    "TrainConfig",
    "Trainer",
    "History",
    "TrainingDiverged",
    "train",
    "ReluNetClassifier",
    "save",
    "load",
    "to_onnx",
    "to_device",
    "to_numpy",
]

# The estimator and the model files need scikit-learn; the math core needs only NumPy (and
# SciPy for L-BFGS); the ONNX export needs onnx.  Import them on first use, so
# `import relunet.network` stays light.
_LAZY = {"ReluNetClassifier": "estimator", "save": "io", "load": "io", "to_onnx": "onnx_export",
         "to_device": "arrayapi", "to_numpy": "arrayapi"}


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'relunet' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
