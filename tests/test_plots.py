"""relunet.plots: each figure is a real PNG, and the right set is written for the data."""

import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from relunet import plots  # noqa: E402
from relunet.data import MissingDependency  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_kb=5):
    data = open(path, "rb").read()
    assert data[:8] == PNG
    assert len(data) > min_kb * 1024


HISTORY = [
    {"epoch": e, "train_loss": 2.0 / e, "learning_rate": 1e-3, "seconds": 0.01,
     "val_loss": 2.2 / e, "val_accuracy": min(0.5 + 0.05 * e, 0.98)}
    for e in range(1, 21)
]


def test_loss_curve_png(tmp_path):
    assert_png(plots.plot_loss(HISTORY, tmp_path / "loss.png"))


def test_accuracy_curve_with_and_without_validation(tmp_path):
    assert_png(plots.plot_accuracy(HISTORY, tmp_path / "a.png", train_accuracy=0.99,
                                   test_accuracy=0.95))
    no_val = [{k: v for k, v in r.items() if not k.startswith("val")} for r in HISTORY]
    assert_png(plots.plot_accuracy(no_val, tmp_path / "b.png", test_accuracy=0.9))


def test_confusion_matrix_png(tmp_path):
    matrix = np.array([[5, 1, 0], [0, 6, 1], [2, 0, 7]])
    assert_png(plots.plot_confusion(matrix, ["a", "b", "c"], tmp_path / "c.png"))


def test_decision_regions_png(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 2))
    y = np.where(X[:, 0] > 0, "right", "left")

    def predict(Z):
        return np.where(Z[:, 0] > 0, "right", "left")

    path = plots.plot_decision_regions(predict, X, y, np.array(["left", "right"]),
                                       tmp_path / "r.png", resolution=60)
    assert_png(path)


def test_first_layer_tiles_png(tmp_path):
    W1 = np.random.default_rng(0).normal(size=(65, 20))
    assert_png(plots.plot_first_layer(W1, (8, 8), tmp_path / "w.png"))


class _Fitted:
    """Just what write_plots reads from a fitted ReluNetClassifier."""

    def __init__(self, X, y, hidden=6):
        self.classes_ = np.unique(y)
        rng = np.random.default_rng(0)
        self.W1_ = rng.normal(size=(X.shape[1] + 1, hidden))
        self.W2_ = rng.normal(size=(hidden + 1, len(self.classes_)))
        self.history_ = HISTORY[:5]
        self._centers = np.array([X[y == c].mean(axis=0) for c in self.classes_])

    def predict(self, X):
        d = ((np.asarray(X)[:, None, :] - self._centers[None]) ** 2).sum(-1)
        return self.classes_[d.argmin(1)]


def test_write_plots_for_2d_data_draws_decision_regions(tmp_path):
    from relunet.datasets import make_spiral

    X, y = make_spiral(30, 3, rng=0)
    written = plots.write_plots(tmp_path / "p", _Fitted(X, y), X[:60], y[:60], X[60:], y[60:])
    names = sorted(p.split("/")[-1] for p, _ in written)
    assert names == ["accuracy.png", "confusion.png", "confusion_normalized.png",
                     "decision_regions.png", "loss.png"]
    for path, _ in written:
        assert_png(path)


def test_write_plots_for_images_draws_weight_tiles(tmp_path):
    from relunet.datasets import load_digits

    X, y = load_digits()
    written = plots.write_plots(tmp_path, _Fitted(X, y), X[:300], y[:300],
                                image_shape=(8, 8))
    names = sorted(p.split("/")[-1] for p, _ in written)
    assert names == ["accuracy.png", "confusion.png", "confusion_normalized.png", "loss.png",
                     "weights.png"]
    assert_png(tmp_path / "weights.png")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependency, match=r"pip install 'relunet\[plot\]'"):
        plots.plot_loss(HISTORY, tmp_path / "loss.png")
    assert not (tmp_path / "loss.png").exists()


def _texts(fig):
    """Every title, axis label and legend entry of a figure."""
    out = [fig._suptitle.get_text()] if fig._suptitle is not None else []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        legend = ax.get_legend()
        if legend is not None:
            out += [t.get_text() for t in legend.get_texts()]
    return out


def test_every_plot_is_non_empty_and_names_the_columns_data_and_settings(tmp_path, monkeypatch):
    # Written for real (each PNG non-empty) and, through a wrapped _save, read back as
    # figures: the axes carry the column names, every title the data and settings.
    from relunet.datasets import make_spiral

    X, y = make_spiral(30, 3, rng=0)
    figures = {}
    save = plots._save

    def keep(fig, path):
        figures[str(path).split("/")[-1]] = fig
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    history = [{**r, "train_accuracy": 0.5 + 0.02 * r["epoch"], "test_loss": 2.5 / r["epoch"],
                "test_accuracy": 0.4 + 0.02 * r["epoch"]} for r in HISTORY]
    written = plots.write_plots(tmp_path, _Fitted(X, y), X[:60], y[:60], X[60:], y[60:],
                                feature_names=["petal length", "petal width"],
                                subtitle="flowers.csv: H=8", history=history)
    assert len(written) == 5
    for path, _ in written:
        assert_png(path, min_kb=2)
        assert any("flowers.csv: H=8" in t for t in _texts(figures[path.split("/")[-1]]))
    regions = figures["decision_regions.png"].axes[0]
    assert (regions.get_xlabel(), regions.get_ylabel()) == ("petal length", "petal width")
    loss_texts = _texts(figures["loss.png"])
    assert "test log loss" in loss_texts and "log loss (mean cross-entropy)" in loss_texts
    accuracy_texts = " ".join(_texts(figures["accuracy.png"]))
    for curve in ("training accuracy", "validation accuracy", "test accuracy"):
        assert curve in accuracy_texts


def test_accuracy_plot_without_validation_still_draws_the_training_curve(tmp_path,
                                                                         monkeypatch):
    # The running training accuracy is recorded by every mini-batch fit: no more empty plot.
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or str(path))
    history = [{"epoch": e, "train_loss": 1.0 / e, "train_accuracy": 0.5 + 0.04 * e}
               for e in range(1, 11)]
    plots.plot_accuracy(history, tmp_path / "a.png")
    (line,) = figures[0].axes[0].get_lines()
    np.testing.assert_allclose(line.get_ydata(), [r["train_accuracy"] for r in history])


def test_row_normalised_confusion_matrix_shows_each_rows_fractions(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or str(path))
    matrix = np.array([[8, 2], [1, 99]])
    plots.plot_confusion(matrix, ["a", "b"], tmp_path / "c.png", normalize=True)
    cells = sorted(t.get_text() for t in figures[0].axes[0].texts)
    assert cells == ["0.01", "0.20", "0.80", "0.99"]
