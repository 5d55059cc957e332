"""Training plots as PNG files: loss and accuracy curves, confusion matrix, decision regions
(2-D data) and first-layer weights as image tiles (square-image data).

Needs matplotlib (``pip install 'relunet[plot]'``).  Figures are drawn on the Agg canvas
directly, never through ``pyplot``: no global state, no display needed.  Every file is
written to a temporary name in its directory and renamed into place, so a crash never leaves
a half-written PNG behind.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

__all__ = [
    "require_matplotlib",
    "plot_loss",
    "plot_accuracy",
    "plot_confusion",
    "plot_decision_regions",
    "plot_first_layer",
    "write_plots",
]


def require_matplotlib():
    """Import matplotlib, or raise an ImportError naming the extra to install."""
    from .data import require

    require("matplotlib", "plot", "plotting")


def _figure(width=6.4, height=4.8):
    require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig, path, dpi=100):
    """Write ``fig`` to ``path`` as PNG atomically (temporary file, then rename)."""
    from .data import atomic_open

    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=dpi)
    return os.fspath(path)


def _records(history):
    """History as a list of dicts (accepts dicts or EpochInfo dataclasses)."""
    out = []
    for rec in history or ():
        out.append(dataclasses.asdict(rec) if dataclasses.is_dataclass(rec) else dict(rec))
    return out


def _series(records, key):
    pairs = [(r.get("epoch", i + 1), r.get(key)) for i, r in enumerate(records)]
    pairs = [(e, v) for e, v in pairs if v is not None]
    return [e for e, _ in pairs], [v for _, v in pairs]


def _title(ax, title, subtitle):
    """``title``, with the data file and key settings on a second, smaller line."""
    ax.set_title(title if not subtitle else f"{title}\n{subtitle}",
                 fontsize=11 if not subtitle else 9.5)


def plot_loss(history, path, *, subtitle=None):
    """Training, validation and test loss per epoch.

    Parameters
    ----------
    history : list of dict or EpochInfo
        Per-epoch records with ``epoch``, ``train_loss`` and optionally ``val_loss`` and
        ``test_loss``.
    path : str
        Where to write the PNG.
    subtitle : str, optional
        The data and settings, shown under the title.
    """
    records = _records(history)
    fig = _figure()
    ax = fig.add_subplot()
    epochs, train = _series(records, "train_loss")
    ax.plot(epochs, train, label="training loss (running, + L2 penalty)", color="C0")
    everything = list(train)
    for key, name, colour in (("val_loss", "validation loss (+ L2 penalty)", "C1"),
                              ("test_loss", "test log loss", "C3")):
        xs, values = _series(records, key)
        if values:
            ax.plot(xs, values, label=name, color=colour)
            everything += values
    if everything and min(everything) > 0 and max(everything) / min(everything) > 20:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("log loss (mean cross-entropy)")
    _title(ax, "Loss per epoch", subtitle)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_accuracy(history, path, *, train_accuracy=None, test_accuracy=None, subtitle=None):
    """Accuracy per epoch: training (the running accuracy over each epoch's batches, always
    recorded by mini-batch training), validation and test when recorded, and the final
    train/test accuracy as reference lines."""
    records = _records(history)
    fig = _figure()
    ax = fig.add_subplot()
    curves = []
    for key, name, colour in (
        ("train_accuracy", "training accuracy (running, during each epoch)", "C0"),
        ("val_accuracy", "validation accuracy", "C1"),
        ("test_accuracy", "test accuracy", "C3"),
    ):
        xs, values = _series(records, key)
        if values:
            ax.plot(xs, values, marker="." if len(values) < 50 else None, label=name,
                    color=colour)
            curves += values
    for value, name, colour in ((train_accuracy, "train", "C2"), (test_accuracy, "test", "C4")):
        if value is not None:
            ax.axhline(value, color=colour, linestyle="--", label=f"final {name}: {value:.4f}")
    if not curves and train_accuracy is None and test_accuracy is None:
        ax.text(0.5, 0.5, "no accuracy was recorded", transform=ax.transAxes, ha="center",
                va="center", fontsize=11, color="0.35")
    last = max([r.get("epoch", i + 1) for i, r in enumerate(records)], default=1)
    ax.set_xlim(0, max(last, 1) + 0.5)
    low = min([*curves, train_accuracy or 1, test_accuracy or 1, 1.0])
    ax.set_ylim(max(0.0, low - 0.05), 1.005)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (fraction correct)")
    _title(ax, "Accuracy per epoch", subtitle)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_confusion(matrix, classes, path, *, title="Confusion matrix", normalize=False,
                   subtitle=None):
    """A confusion matrix (rows: true class, columns: predicted), counts written in cells.

    ``normalize=True`` divides each row by its total (each true class's recall on the
    diagonal), which stays readable with many or unbalanced classes.
    """
    matrix = np.asarray(matrix)
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    k = matrix.shape[0]
    size = min(4.0 + 0.35 * k, 14.0)
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(image, ax=ax, shrink=0.8)
    names = [str(c) for c in classes]
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names), default=0) > 3 else 0)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    _title(ax, title + (" (each row divided by its total)" if normalize else ""), subtitle)
    if k <= 25:
        threshold = matrix.max() / 2 if matrix.size else 0
        for i in range(k):
            for j in range(k):
                text = f"{matrix[i, j]:.2f}" if normalize else str(matrix[i, j])
                ax.text(j, i, text, ha="center", va="center", fontsize=8 if k <= 12 else 6,
                        color="white" if matrix[i, j] > threshold else "black")
    return _save(fig, path)


def plot_decision_regions(predict, X, y, classes, path, *, X_test=None, y_test=None,
                          resolution=300, feature_names=None, subtitle=None):
    """The class each point of the plane is given, with the data drawn on top (2-D data).

    Parameters
    ----------
    predict : callable
        Maps an (M, 2) array to M labels (e.g. a fitted model's ``predict``).
    X, y : arrays of shape (N, 2) and (N,)
        Training points and labels.
    classes : array
        All class labels, in the model's order (sets the colours).
    X_test, y_test : optional
        Test points, drawn with a different marker.
    feature_names : sequence of 2 str, optional
        The axes' labels (default ``feature 1``, ``feature 2``).
    """
    from matplotlib.colors import ListedColormap

    X = np.asarray(X, dtype=np.float64)
    classes = np.asarray(classes)
    everything = X if X_test is None else np.vstack([X, np.asarray(X_test, np.float64)])
    low, high = everything.min(axis=0), everything.max(axis=0)
    pad = 0.08 * np.maximum(high - low, 1e-9)
    gx, gy = np.meshgrid(
        np.linspace(low[0] - pad[0], high[0] + pad[0], resolution),
        np.linspace(low[1] - pad[1], high[1] + pad[1], resolution),
    )
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    index = {c: i for i, c in enumerate(classes.tolist())}
    region = np.array([index[c] for c in np.asarray(predict(grid)).tolist()]).reshape(gx.shape)

    k = len(classes)
    colours = [f"C{i % 10}" for i in range(k)]
    fig = _figure(6.4, 5.6)
    ax = fig.add_subplot()
    ax.contourf(gx, gy, region, levels=np.arange(k + 1) - 0.5,
                cmap=ListedColormap(colours), alpha=0.25)
    for data, labels, marker, name in ((X, y, "o", "train"), (X_test, y_test, "^", "test")):
        if data is None:
            continue
        data = np.asarray(data, dtype=np.float64)
        codes = np.array([index.get(c, -1) for c in np.asarray(labels).tolist()])
        for i, c in enumerate(classes):
            mask = codes == i
            if mask.any():
                ax.scatter(data[mask, 0], data[mask, 1], s=14, marker=marker, color=colours[i],
                           edgecolors="black", linewidths=0.3,
                           label=f"{c} ({name})" if k <= 6 else None)
    ax.set_xlim(gx.min(), gx.max())
    ax.set_ylim(gy.min(), gy.max())
    names = list(feature_names) if feature_names is not None else ["feature 1", "feature 2"]
    ax.set_xlabel(str(names[0]))
    ax.set_ylabel(str(names[1]))
    _title(ax, "Decision regions (shaded: the predicted class)", subtitle)
    if k <= 6:
        ax.legend(fontsize=8, loc="upper right", framealpha=0.8)
    return _save(fig, path)


def plot_first_layer(W1, image_shape, path, *, max_tiles=64, subtitle=None):
    """Each hidden unit's input weights drawn as an image (``W1[:-1, j]`` reshaped).

    Parameters
    ----------
    W1 : array of shape (D+1, H)
        First-layer weights, bias row last (the note's convention).
    image_shape : tuple (rows, cols)
        With ``rows * cols == D``.
    max_tiles : int
        Draw at most this many units (the first ones).
    """
    weights = np.asarray(W1, dtype=np.float64)[:-1]
    n = min(weights.shape[1], max_tiles)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig = _figure(1.0 + 1.1 * cols, 0.6 + 1.1 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for j, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if j >= n:
            continue
        tile = weights[:, j].reshape(image_shape)
        bound = np.abs(tile).max() or 1.0
        ax.imshow(tile, cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest")
    shown = f"first {n} of {weights.shape[1]}" if n < weights.shape[1] else f"all {n}"
    title = f"First-layer weights, {shown} hidden units (red +, blue -)"
    fig.suptitle(title if not subtitle else f"{title}\n{subtitle}", fontsize=10)
    return _save(fig, path)


def _named_predict(model, feature_names):
    """``model.predict`` on grid points, as a DataFrame when the model knows column names."""
    if feature_names is None:
        return model.predict

    def predict(Z):
        import pandas as pd

        return model.predict(pd.DataFrame(Z, columns=list(feature_names)))

    return predict


def _network(model):
    """The ReluNetClassifier at the end of a Pipeline (or the model itself)."""
    steps = getattr(model, "steps", None)
    return steps[-1][1] if steps else model


def write_plots(directory, model, X_train, y_train, X_test=None, y_test=None, *,
                image_shape=None, feature_names=None, subtitle=None, history=None):
    """Write every plot that applies to ``model`` and its data into ``directory``.

    Parameters
    ----------
    directory : str
        Created if needed.
    model : fitted ReluNetClassifier or Pipeline ending in one
        Must have ``predict``; the network needs ``history_``, ``classes_`` and ``W1_``.
    X_train, y_train : arrays
        The raw (unscaled) training data (a DataFrame of raw columns for a table model: then
        no decision regions are drawn).
    X_test, y_test : arrays, optional
        Test data; the confusion matrix uses it when given, else the training data.
    image_shape : tuple, optional
        Draw the first-layer weights as tiles of this shape (square-image data).
    feature_names : sequence of str, optional
        Column names (axis labels of the decision regions).
    subtitle : str, optional
        The data file and key settings, put under every title.
    history : list of dict, optional
        Per-epoch records (default: the network's ``history_``); ``test_loss`` and
        ``test_accuracy`` in them give the test curves.

    Returns
    -------
    list of (path, description)
    """
    from sklearn.metrics import confusion_matrix

    require_matplotlib()
    os.makedirs(directory, exist_ok=True)
    net = _network(model)
    history = history if history is not None else (getattr(net, "history_", None) or [])
    classes = np.asarray(net.classes_)
    written = []

    def out(name):
        return os.path.join(directory, name)

    written.append((plot_loss(history, out("loss.png"), subtitle=subtitle), "loss per epoch"))
    train_pred = model.predict(X_train)
    train_acc = float(np.mean(train_pred == y_train))
    test_acc = test_pred = None
    if X_test is not None and len(X_test):
        test_pred = model.predict(X_test)
        test_acc = float(np.mean(test_pred == y_test))
    written.append((
        plot_accuracy(history, out("accuracy.png"), train_accuracy=train_acc,
                      test_accuracy=test_acc, subtitle=subtitle),
        "accuracy per epoch",
    ))
    which, truth, pred = ("test", y_test, test_pred) if test_pred is not None else (
        "training", y_train, train_pred)
    matrix = confusion_matrix(truth, pred, labels=classes)
    written.append((
        plot_confusion(matrix, classes, out("confusion.png"),
                       title=f"Confusion matrix ({which} data)", subtitle=subtitle),
        f"confusion matrix, {which} data",
    ))
    written.append((
        plot_confusion(matrix, classes, out("confusion_normalized.png"), normalize=True,
                       title=f"Confusion matrix ({which} data)", subtitle=subtitle),
        f"confusion matrix, {which} data, rows normalised",
    ))
    if np.asarray(X_train).shape[1] == 2 and not hasattr(X_train, "columns"):
        written.append((
            plot_decision_regions(_named_predict(model, feature_names), X_train, y_train,
                                  classes, out("decision_regions.png"), X_test=X_test,
                                  y_test=y_test, feature_names=feature_names,
                                  subtitle=subtitle),
            "decision regions",
        ))
    if image_shape is not None and int(np.prod(image_shape)) == np.asarray(X_train).shape[1]:
        written.append((
            plot_first_layer(net.W1_, image_shape, out("weights.png"), subtitle=subtitle),
            "first-layer weights as images",
        ))
    return written
