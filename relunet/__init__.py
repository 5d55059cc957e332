"""relunet: the one-hidden-layer ReLU network of Saxon's *Simple neural network math*.

The math lives in :mod:`relunet.network` under the note's names; training in
:mod:`relunet.train`; the scikit-learn estimator in :mod:`relunet.estimator`.
"""

__version__ = "0.1.0"

from .estimator import ReluNetClassifier
from .gradcheck import check_gradients
from .io import load, save
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
]
