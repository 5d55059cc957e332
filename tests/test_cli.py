"""The `relunet` command line, driven through its real entry point.

Most tests call ``relunet.cli.main(argv)`` in-process (fast); a few run the installed console
script in a subprocess.  Every error case must end as an ``error:`` line on stderr, a
non-zero exit status and no traceback.
"""

import csv
import gzip
import io
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import relunet
from relunet import cli, display
from relunet.data import read_data

FAST = ["--epochs", "15", "--hidden", "16", "--learning-rate", "0.01"]


def run(capsys, *argv):
    """``relunet *argv`` in-process: (exit status, stdout, stderr)."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_error(code, err, *words, status=None):
    """One clear ``error:`` line, a non-zero status, no traceback."""
    assert code != 0 if status is None else code == status
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], lines[0]


# ---------------------------------------------------------------------------------- data


def blobs(n_per_class=30, seed=0):
    """Three well-separated classes in 4-D with text labels."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0, 0, 0, 0], [4, 4, 0, 0], [0, 4, 4, 4]], float)
    X = np.vstack([c + rng.normal(scale=0.6, size=(n_per_class, 4)) for c in centers])
    y = np.repeat(np.array(["ant", "bee", "cow"]), n_per_class)
    return X, y


def write_idx(path, array):
    array = np.asarray(array, dtype=np.uint8)
    raw = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    raw += struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


def write_dataset(tmp_path, fmt, X=None, y=None, stem="d"):
    """Write (X, y) in format ``fmt``; returns the extra CLI arguments naming the data."""
    if X is None:
        X, y = blobs()
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    df["species"] = y
    if fmt in ("csv", "tsv", "csv.gz"):
        path = tmp_path / f"{stem}.{fmt}"
        df.to_csv(path, sep="\t" if fmt == "tsv" else ",", index=False)
        return [path]
    if fmt == "parquet":
        pytest.importorskip("pyarrow", reason="writing Parquet needs pyarrow (relunet[parquet])")
        df.to_parquet(tmp_path / f"{stem}.parquet")
        return [tmp_path / f"{stem}.parquet"]
    if fmt == "npy":
        np.save(tmp_path / f"{stem}_X.npy", X)
        np.save(tmp_path / f"{stem}_y.npy", y)
        return [tmp_path / f"{stem}_X.npy", "--labels", tmp_path / f"{stem}_y.npy"]
    if fmt == "npz":
        np.savez(tmp_path / f"{stem}.npz", X=X, y=y)
        return [tmp_path / f"{stem}.npz"]
    raise AssertionError(fmt)


def idx_images(n=60, seed=0):
    """Tiny 6x6 'images' of two classes (a bright top half or a bright bottom half)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    images = rng.integers(0, 60, size=(n, 6, 6))
    images[y == 0, :3] += 180
    images[y == 1, 3:] += 180
    return images.astype(np.uint8), y.astype(np.uint8)


@pytest.fixture
def model_file(tmp_path, capsys):
    """A model trained by the CLI on CSV blobs, and the CSV."""
    data = write_dataset(tmp_path, "csv")
    out = tmp_path / "model.npz"
    code, _, err = run(capsys, "train", *data, *FAST, "--out", out, "--quiet")
    assert code == 0, err
    return out, data[0]


# ---------------------------------------------------------------------------------- train


def test_train_with_no_arguments_fits_digits_accurately(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "train")
    assert code == 0, err
    assert "digits (built-in)" in out
    row = next(line for line in out.splitlines() if line.strip().startswith("accuracy"))
    test_accuracy = float(row.split()[-1])
    assert test_accuracy >= 0.95
    assert list(tmp_path.iterdir()) == []  # nothing saved unless asked


@pytest.mark.parametrize("fmt", ["csv", "tsv", "csv.gz", "parquet", "npy", "npz"])
def test_train_reads_every_format(capsys, tmp_path, fmt):
    data = write_dataset(tmp_path, fmt)
    metrics = tmp_path / "m.json"
    code, out, err = run(capsys, "train", *data, *FAST, "--metrics", metrics)
    assert code == 0, err
    result = json.loads(metrics.read_text())
    assert result["n_train"] == 72 and result["n_test"] == 18  # stratified 20 %
    assert result["classes"] == ["ant", "bee", "cow"]
    assert result["test_accuracy"] >= 0.9


def test_train_on_gzipped_idx_pair_with_separate_test_files(capsys, tmp_path):
    images, labels = idx_images(80)
    xi = write_idx(tmp_path / "train-images-idx3-ubyte.gz", images[:60])
    yi = write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels[:60])
    xt = write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images[60:])
    yt = write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels[60:])
    metrics = tmp_path / "m.json"
    code, out, err = run(capsys, "train", xi, "--labels", yi, "--test-data", xt,
                         "--test-labels", yt, *FAST, "--metrics", metrics)
    assert code == 0, err
    result = json.loads(metrics.read_text())
    assert (result["n_train"], result["n_test"], result["n_features"]) == (60, 20, 36)
    assert result["test_accuracy"] >= 0.9


def test_metrics_json_has_the_summary_and_history(capsys, tmp_path):
    metrics = tmp_path / "m.json"
    code, _, err = run(capsys, "train", "--dataset", "spiral", "--epochs", "7",
                       "--early-stopping", "--metrics", metrics, "--quiet")
    assert code == 0, err
    result = json.loads(metrics.read_text())
    for key in ("train_accuracy", "test_accuracy", "train_loss", "epochs", "fit_seconds",
                "history"):
        assert result[key] is not None, key
    assert len(result["history"]) == result["epochs"] <= 7
    assert {"epoch", "train_loss", "val_accuracy"} <= set(result["history"][0])


def test_plain_progress_is_one_line_per_epoch_and_quiet_is_silent(capsys):
    code, out, _ = run(capsys, "train", "--dataset", "spiral", "--epochs", "6",
                       "--early-stopping")
    assert code == 0
    epochs = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 6
    assert "val_acc" in epochs[0] and "epochs/s" in epochs[0]
    assert "\x1b[" not in out  # no terminal escapes when not a terminal
    code, out, err = run(capsys, "train", "--dataset", "spiral", "--epochs", "3", "--quiet")
    assert code == 0 and out == "" and err == ""


def test_rich_progress_and_table_on_a_terminal(capsys, monkeypatch):
    pytest.importorskip("rich")
    monkeypatch.setattr(display, "_is_tty", lambda stream: True)
    code, out, err = run(capsys, "train", "--dataset", "spiral", "--epochs", "4")
    assert code == 0, err
    assert "accuracy" in out
    assert "━" in out and "┃" in out  # rich's progress bar and table


def test_rich_missing_falls_back_to_plain_lines(capsys, monkeypatch):
    monkeypatch.setattr(display, "_is_tty", lambda stream: True)
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "rich.console", None)
    code, out, err = run(capsys, "train", "--dataset", "spiral", "--epochs", "3")
    assert code == 0, err
    assert "epoch 3/3" in out


def test_scale_choices_travel_with_the_model(capsys, tmp_path):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler

    data = write_dataset(tmp_path, "npz")
    for scale, kind in (("minmax", MinMaxScaler), ("none", None)):
        out = tmp_path / f"{scale}.npz"
        code, _, err = run(capsys, "train", *data, *FAST, "--scale", scale, "--out", out)
        assert code == 0, err
        model = relunet.load(out)
        if kind is None:
            assert isinstance(model, relunet.ReluNetClassifier)
        else:
            assert isinstance(model, Pipeline) and isinstance(model.steps[0][1], kind)


def test_plots_for_spiral_and_digits(capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib (relunet[plot])")
    code, out, err = run(capsys, "train", "--dataset", "spiral", "--epochs", "20",
                         "--plots", tmp_path / "spiral", "--quiet")
    assert code == 0, err
    code, out, err = run(capsys, "train", "--epochs", "5", "--plots", tmp_path / "digits",
                         "--quiet")
    assert code == 0, err
    for sub, special in (("spiral", "decision_regions.png"), ("digits", "weights.png")):
        names = sorted(os.listdir(tmp_path / sub))
        assert names == sorted(["loss.png", "accuracy.png", "confusion.png",
                                "confusion_normalized.png", special])
        for name in names:
            data = (tmp_path / sub / name).read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_test_data_columns_are_matched_by_name(capsys, tmp_path):
    X, y = blobs()
    train = write_dataset(tmp_path, "csv", X[::2], y[::2], stem="train")
    test = pd.DataFrame(X[1::2], columns=[f"f{i}" for i in range(4)])
    test.insert(0, "species", y[1::2])  # label first, then the features in reverse order
    test = test[["species", "f3", "f2", "f1", "f0"]]
    test.to_csv(tmp_path / "test.csv", index=False)
    metrics = tmp_path / "m.json"
    code, _, err = run(capsys, "train", *train, "--test-data", tmp_path / "test.csv", *FAST,
                       "--metrics", metrics, "-q")
    assert code == 0, err
    assert json.loads(metrics.read_text())["test_accuracy"] >= 0.9


# ---------------------------------------------------------------------------------- predict


def test_predict_matches_the_estimator_on_the_same_preprocessed_data(capsys, tmp_path,
                                                                     model_file):
    model_path, data = model_file
    code, out, err = run(capsys, "predict", model_path, data)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    cli_labels = [r["prediction"] for r in rows]

    model = relunet.load(model_path)
    ds = read_data(data)
    X = pd.DataFrame(ds.X, columns=ds.feature_names)  # the model was fitted on named columns
    scaler, net = model.steps[0][1], model.steps[-1][1]
    expected = net.predict(scaler.transform(X))
    assert cli_labels == [str(v) for v in expected]
    assert cli_labels == [str(v) for v in model.predict(X)]


def test_predict_proba_columns_named_by_class_to_an_atomic_file(capsys, tmp_path, model_file):
    model_path, data = model_file
    out_csv = tmp_path / "pred.csv"
    code, out, err = run(capsys, "predict", model_path, data, "--proba", "--out", out_csv)
    assert code == 0, err
    assert out == ""  # the CSV went to the file
    frame = pd.read_csv(out_csv)
    assert list(frame.columns) == ["prediction", "ant", "bee", "cow"]
    np.testing.assert_allclose(frame[["ant", "bee", "cow"]].sum(axis=1), 1, atol=1e-5)
    assert (frame[["ant", "bee", "cow"]].idxmax(axis=1) == frame["prediction"]).all()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_predict_without_the_label_column(capsys, tmp_path, model_file):
    model_path, data = model_file
    frame = pd.read_csv(data).drop(columns="species")
    frame.to_csv(tmp_path / "new.csv", index=False)
    code, out, err = run(capsys, "predict", model_path, tmp_path / "new.csv")
    assert code == 0, err
    assert len(out.splitlines()) == 1 + len(frame)


def test_predict_on_idx_images(capsys, tmp_path):
    images, labels = idx_images(60)
    xi = write_idx(tmp_path / "x.idx", images)
    yi = write_idx(tmp_path / "y.idx", labels)
    model = tmp_path / "m.npz"
    assert run(capsys, "train", xi, "--labels", yi, *FAST, "--out", model, "-q")[0] == 0
    code, out, err = run(capsys, "predict", model, xi)
    assert code == 0, err
    predicted = [int(line) for line in out.splitlines()[1:]]
    assert np.mean(np.array(predicted) == labels) > 0.9


# ---------------------------------------------------------------------------------- evaluate


def test_evaluate_prints_accuracy_per_class_and_confusion(capsys, tmp_path, model_file):
    model_path, data = model_file
    metrics = tmp_path / "eval.json"
    code, out, err = run(capsys, "evaluate", model_path, data, "--target", "species",
                         "--metrics", metrics)
    assert code == 0, err
    assert "accuracy:" in out and "precision" in out and "recall" in out
    assert "confusion matrix" in out
    result = json.loads(metrics.read_text())
    assert result["n_samples"] == 90 and result["accuracy"] > 0.9
    assert set(result["per_class"]) == {"ant", "bee", "cow"}
    assert np.sum(result["confusion_matrix"]) == 90


def test_evaluate_npy_with_labels(capsys, tmp_path):
    data = write_dataset(tmp_path, "npy")
    model = tmp_path / "m.npz"
    assert run(capsys, "train", *data, *FAST, "--out", model, "-q")[0] == 0
    code, out, err = run(capsys, "evaluate", model, *data)
    assert code == 0, err
    assert "accuracy:" in out


# ---------------------------------------------------------------------------------- info, gradcheck


def test_info_shows_shapes_classes_and_settings(capsys, model_file):
    model_path, _ = model_file
    code, out, err = run(capsys, "info", model_path)
    assert code == 0, err
    assert "4 inputs -> 16 ReLU units -> 3 scores" in out
    assert "W1 (5, 16)" in out and "W2 (17, 3)" in out
    assert "ant, bee, cow" in out
    assert "StandardScaler" in out


@pytest.mark.parametrize("source", [["--dataset", "spiral"], ["--dataset", "digits"], "csv"])
def test_gradcheck_passes_on_user_data(capsys, tmp_path, source):
    if source == "csv":
        source = write_dataset(tmp_path, "csv")
    code, out, err = run(capsys, "gradcheck", *source, "--hidden", "8", "--checks", "50")
    assert code == 0, err
    assert "W1" in out and "W2 bias" in out and "verdict: OK" in out


# ---------------------------------------------------------------------------------- help


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["predict"], ["gradcheck"],
                                     ["info"]])
def test_help_everywhere_with_examples(capsys, command):
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    assert "usage: relunet" in out and "examples:" in out


# ---------------------------------------------------------------------------------- errors


def test_error_missing_data_file(capsys, tmp_path):
    assert_error(*run(capsys, "train", tmp_path / "nope.csv")[::2], "nope.csv", "no such file")


def test_error_missing_model_file(capsys, tmp_path):
    data = write_dataset(tmp_path, "csv")
    code, _, err = run(capsys, "predict", tmp_path / "none.npz", *data)
    assert_error(code, err, "none.npz")


def test_error_unknown_extension(capsys, tmp_path):
    (tmp_path / "data.xlsx").write_bytes(b"PK\x03\x04")
    assert_error(*run(capsys, "train", tmp_path / "data.xlsx")[::2], "unknown file type")


def test_error_unknown_column(capsys, tmp_path):
    data = write_dataset(tmp_path, "csv")
    code, _, err = run(capsys, "train", *data, "--target", "colour")
    assert_error(code, err, "'colour'", "'species'")


def test_error_non_numeric_feature(capsys, tmp_path):
    X, y = blobs()
    frame = pd.DataFrame(X, columns=list("abcd"))
    frame["d"] = frame["d"].astype(object)
    frame.loc[3, "d"] = "n/a?"
    frame["label"] = y
    frame.to_csv(tmp_path / "d.csv", index=False)
    assert_error(*run(capsys, "train", tmp_path / "d.csv")[::2], "'d'", "not numeric")


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_error_nan_or_inf(capsys, tmp_path, bad):
    X, y = blobs()
    X[7, 2] = float(bad)
    data = write_dataset(tmp_path, "npz", X, y)
    assert_error(*run(capsys, "train", *data)[::2], "row 8")


def test_error_label_count_mismatch(capsys, tmp_path):
    X, y = blobs()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y[:-5])
    code, _, err = run(capsys, "train", tmp_path / "X.npy", "--labels", tmp_path / "y.npy")
    assert_error(code, err, "85 labels for 90 rows")


@pytest.mark.parametrize("damage", ["magic", "truncated", "gzip"])
def test_error_corrupt_idx(capsys, tmp_path, damage):
    images, labels = idx_images(20)
    xi = write_idx(tmp_path / "x-idx3-ubyte.gz", images)
    yi = write_idx(tmp_path / "y-idx1-ubyte", labels)
    raw = gzip.decompress(xi.read_bytes())
    if damage == "magic":
        xi.write_bytes(gzip.compress(b"\x08\x03" + raw[2:]))
    elif damage == "truncated":
        xi.write_bytes(gzip.compress(raw[:-100]))
    else:
        xi.write_bytes(xi.read_bytes()[:-30])
    code, _, err = run(capsys, "train", xi, "--labels", yi)
    assert_error(code, err, "x-idx3-ubyte.gz", {"magic": "magic", "truncated": "truncated",
                                                "gzip": "gzip"}[damage])


@pytest.mark.parametrize("content", ["text", "npz"])
def test_error_not_a_relunet_model(capsys, tmp_path, content):
    data = write_dataset(tmp_path, "csv")
    fake = tmp_path / "fake.npz"
    if content == "text":
        fake.write_text("hello")
    else:
        np.savez(fake, W1=np.zeros((3, 3)))
    for command in (["predict", fake, *data], ["evaluate", fake, *data], ["info", fake]):
        assert_error(*run(capsys, *command)[::2], "fake.npz")


@pytest.mark.parametrize("argv,word", [
    (["--hidden", "0"], "--hidden"),
    (["--learning-rate", "-0.1"], "--learning-rate"),
    (["--epochs", "many"], "--epochs"),
    (["--test-fraction", "1.5"], "--test-fraction"),
    (["--solver", "newton"], "--solver"),
])
def test_error_invalid_hyper_parameter(capsys, argv, word):
    assert_error(*run(capsys, "train", *argv)[::2], word, status=2)


def test_error_estimator_rejects_a_setting(capsys, monkeypatch):
    # Past argparse, the estimator's own validation must still end as an error: line.
    def bad_model(args, callback):
        return relunet.ReluNetClassifier(hidden_units=-3, max_iter=2)

    monkeypatch.setattr(cli, "_make_model", bad_model)
    assert_error(*run(capsys, "train", "--dataset", "spiral")[::2], "hidden_units")


def test_error_training_diverged(capsys):
    code, _, err = run(capsys, "train", "--solver", "gd", "--learning-rate", "1e6",
                       "--scale", "none", "--epochs", "5", "-q")
    assert_error(code, err, "diverged", "smaller learning rate")


def test_error_conflicting_data_options(capsys, tmp_path):
    data = write_dataset(tmp_path, "csv")
    assert_error(*run(capsys, "train", *data, "--dataset", "digits")[::2], "not both")
    assert_error(*run(capsys, "train", "--labels", "y.npy")[::2], "--labels needs a DATA")
    assert_error(*run(capsys, "train", *data, "--test-labels", "y.npy")[::2],
                 "--test-labels needs --test-data")
    assert_error(*run(capsys, "train", "--drop", "f0", *data)[::2], "--drop needs a DATA file")
    assert_error(*run(capsys, "train", "--dataset", "spiral", "--id", "x")[::2],
                 "--id needs a DATA file")


def test_error_one_class_only(capsys, tmp_path):
    X, _ = blobs()
    data = write_dataset(tmp_path, "csv", X, np.array(["ant"] * len(X)))
    assert_error(*run(capsys, "train", *data)[::2], "same label", "'ant'")


@pytest.mark.parametrize("content", ["", "f0,f1,species\n"])
def test_error_empty_file(capsys, tmp_path, content):
    (tmp_path / "empty.csv").write_text(content)
    code, _, err = run(capsys, "train", tmp_path / "empty.csv")
    assert_error(code, err, "empty.csv")


def test_error_feature_count_mismatch_on_predict(capsys, tmp_path, model_file):
    model_path, _ = model_file
    np.save(tmp_path / "wide.npy", np.zeros((3, 9)))
    assert_error(*run(capsys, "predict", model_path, tmp_path / "wide.npy")[::2],
                 "trained on a table of 4 columns", "'f0', 'f1', 'f2', 'f3'")
    data = write_dataset(tmp_path, "npz")
    model = tmp_path / "array.npz"
    assert run(capsys, "train", *data, *FAST, "--out", model, "-q")[0] == 0
    assert_error(*run(capsys, "predict", model, tmp_path / "wide.npy")[::2],
                 "9 feature columns", "trained on 4")


def test_error_missing_matplotlib_before_training(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = run(capsys, "train", "--dataset", "spiral", "--plots", tmp_path / "p")
    assert_error(code, err, "pip install 'relunet[plot]'")
    assert out == "" and not (tmp_path / "p").exists()


def test_error_missing_pyarrow_for_parquet(capsys, tmp_path, monkeypatch):
    data = write_dataset(tmp_path, "parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert_error(*run(capsys, "train", *data)[::2], "pip install 'relunet[parquet]'")


def test_error_missing_pandas_for_tables(capsys, tmp_path, monkeypatch):
    import importlib

    table = write_dataset(tmp_path, "csv")
    real = importlib.import_module

    def without_pandas(name, *args, **kwargs):
        if name == "pandas":
            raise ImportError("No module named 'pandas'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", without_pandas)
    assert_error(*run(capsys, "train", *table)[::2], "pip install 'relunet[cli]'")


def test_error_output_directory_missing_leaves_no_file(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--dataset", "spiral", "--epochs", "2", "-q",
                       "--metrics", tmp_path / "no" / "m.json")
    assert_error(code, err, "does not exist")


def test_failed_save_leaves_no_half_written_model(capsys, tmp_path, monkeypatch):
    def broken_save(model, path):
        with open(path, "wb") as fh:
            fh.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(relunet, "save", broken_save)
    code, _, err = run(capsys, "train", "--dataset", "spiral", "--epochs", "2", "-q",
                       "--out", tmp_path / "m.npz")
    assert_error(code, err, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_unexpected_exception_is_one_line_and_debug_shows_traceback(capsys, monkeypatch):
    def boom(path):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cli, "_load_model", boom)
    code, _, err = run(capsys, "info", "x.npz")
    assert_error(code, err, "kaboom", "--debug")
    code, _, err = run(capsys, "--debug", "info", "x.npz")
    assert code == 1 and "Traceback" in err and "error: RuntimeError: kaboom" in err
    code, _, err = run(capsys, "info", "x.npz", "--debug")  # after the command too
    assert code == 1 and "Traceback" in err


def test_no_subcommand_is_a_usage_error(capsys):
    assert_error(*run(capsys)[::2], "COMMAND", status=2)


# ---------------------------------------------------------------------------------- subprocess


def console_script():
    path = shutil.which("relunet")
    if path is None:
        pytest.skip("the relunet console script is not installed (pip install -e .)")
    return path


def test_console_script_trains_and_predicts(tmp_path):
    exe = console_script()
    data = write_dataset(tmp_path, "csv")
    model = tmp_path / "m.npz"
    done = subprocess.run([exe, "train", *map(str, data), *FAST, "--out", str(model)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "epoch 15/15" in done.stdout and f"model saved to {model}" in done.stdout
    done = subprocess.run([exe, "predict", str(model), str(data[0])], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "prediction" and len(done.stdout.splitlines()) == 91


def test_console_script_error_has_no_traceback(tmp_path):
    exe = console_script()
    done = subprocess.run([exe, "train", str(tmp_path / "missing.parquet")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("error:") and "Traceback" not in done.stderr
    assert done.stdout == ""


# ---------------------------------------------------------------------------------- real tables


def penguins(n=120, seed=0):
    """A penguin-survey-like table: text columns, NA cells, a row id, the label first."""
    rng = np.random.default_rng(seed)
    species = np.array(["Adelie", "Gentoo", "Chinstrap"])[np.arange(n) % 3]
    centre = {"Adelie": (39, 18, 3700), "Gentoo": (47, 15, 5000), "Chinstrap": (49, 18, 3700)}
    m = np.array([centre[s] for s in species], float)
    frame = pd.DataFrame({
        "rowid": np.arange(1, n + 1),
        "species": species,
        "island": np.where(species == "Gentoo", "Biscoe",
                           np.where(species == "Chinstrap", "Dream", "Torgersen")),
        "bill_length_mm": (m[:, 0] + rng.normal(0, 1.5, n)).round(1),
        "bill_depth_mm": (m[:, 1] + rng.normal(0, 0.8, n)).round(1),
        "body_mass_g": (m[:, 2] + rng.normal(0, 300, n)).round(-1),
        "sex": rng.choice(["male", "female"], size=n),
    })
    frame = frame.astype({"sex": object, "bill_length_mm": object})
    frame.loc[::13, "bill_length_mm"] = None
    frame.loc[::7, "sex"] = None
    return frame


def test_mixed_table_trains_and_a_fresh_process_predicts_raw_rows(capsys, tmp_path):
    penguins().to_csv(tmp_path / "p.csv", index=False, na_rep="NA")
    model = tmp_path / "p.npz"
    code, out, err = run(capsys, "train", tmp_path / "p.csv", "--target", "species",
                         "--id", "rowid", *FAST, "--out", model, "--metrics",
                         tmp_path / "m.json")
    assert code == 0, err
    assert "label: column 'species' (--target)" in out
    assert "2 text (one-hot encoded: 'island', 'sex')" in out
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["test_accuracy"] >= 0.9 and result["n_features"] == 5  # no rowid
    new = pd.DataFrame({"rowid": ["a-1", "007"], "island": ["Atlantis", "Biscoe"],
                        "bill_length_mm": [39.5, None], "bill_depth_mm": [18.1, 15.2],
                        "body_mass_g": [3650, 4950], "sex": [None, "female"]})
    new.to_csv(tmp_path / "new.csv", index=False)
    done = subprocess.run([sys.executable, "-m", "relunet.cli", "predict", str(model),
                           str(tmp_path / "new.csv"), "--proba"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["rowid"] for r in rows] == ["a-1", "007"]  # the training's --id, as written
    loaded = relunet.load(model)
    ds = read_data(tmp_path / "new.csv", need_labels=False, features=["island",
                   "bill_length_mm", "bill_depth_mm", "body_mass_g", "sex"],
                   kinds=(["bill_length_mm", "bill_depth_mm", "body_mass_g"],
                          ["island", "sex"]))
    assert [r["prediction"] for r in rows] == list(loaded.predict(ds.X))
    np.testing.assert_allclose([[float(r[c]) for c in ("Adelie", "Chinstrap", "Gentoo")]
                                for r in rows], loaded.predict_proba(ds.X), atol=1e-6)
    assert [r["prediction"] for r in rows] == ["Adelie", "Gentoo"]


def test_evaluate_finds_the_models_label_column(capsys, tmp_path):
    frame = penguins()
    frame.to_csv(tmp_path / "p.csv", index=False)
    model = tmp_path / "p.npz"
    assert run(capsys, "train", tmp_path / "p.csv", "--target", "species", *FAST,
               "--out", model, "-q")[0] == 0
    frame[frame.columns[::-1]].to_csv(tmp_path / "t.csv", index=False)  # species now last-but-one
    code, out, err = run(capsys, "evaluate", model, tmp_path / "t.csv")
    assert code == 0, err
    assert f"{tmp_path / 't.csv'}: 120 rows" in out


def test_guessed_label_is_stated_and_a_measurement_refused(capsys, tmp_path):
    frame = penguins().drop(columns="rowid")
    frame[[c for c in frame.columns if c != "body_mass_g"] + ["body_mass_g"]].to_csv(
        tmp_path / "mass_last.csv", index=False)
    code, _, err = run(capsys, "train", tmp_path / "mass_last.csv", *FAST)
    assert_error(code, err, "'body_mass_g'", "--target")


def test_leading_zero_codes_and_semicolon_decimal_comma(capsys, tmp_path):
    lines = ["Wert;Gruppe;Code"] + [
        f"{(i % 3) * 10},{i % 10};{'AB'[i % 2]};{['007', '07', '7'][i % 3]}" for i in range(60)]
    (tmp_path / "de.csv").write_text("\n".join(lines) + "\n")
    metrics = tmp_path / "m.json"
    code, out, err = run(capsys, "train", tmp_path / "de.csv", "--epochs", "150", "--hidden",
                         "8", "--learning-rate", "0.01", "--metrics", metrics)
    assert code == 0, err
    result = json.loads(metrics.read_text())
    assert result["classes"] == ["007", "07", "7"] and result["label_column"] == "Code"
    assert result["numeric_columns"] == ["Wert"] and result["text_columns"] == ["Gruppe"]
    assert result["test_accuracy"] >= 0.9


def test_impute_choices(capsys, tmp_path):
    penguins().to_csv(tmp_path / "p.csv", index=False)
    code, _, err = run(capsys, "train", tmp_path / "p.csv", "--target", "species", *FAST,
                       "--impute", "none")
    assert_error(code, err, "'bill_length_mm'", "data row 1", "--impute none")
    assert "--impute none refuses missing numbers" in err and "trained with" not in err
    # --impute is about numbers: rows missing only 'sex' (text) are kept, 'sex' NA is a category
    code, out, err = run(capsys, "train", tmp_path / "p.csv", "--target", "species", *FAST,
                         "--impute", "drop-rows", "--metrics", tmp_path / "m.json")
    assert code == 0, err
    assert "10 of 120 rows with missing numbers left out" in out
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["n_train"] + result["n_test"] == 110 and "sex" in result["text_columns"]
    penguins().drop(columns="bill_length_mm").to_csv(tmp_path / "text_na.csv", index=False)
    code, out, err = run(capsys, "train", tmp_path / "text_na.csv", "--target", "species",
                         *FAST, "--impute", "none", "--metrics", tmp_path / "m.json")
    assert code == 0, err
    assert json.loads((tmp_path / "m.json").read_text())["n_train"] == 96  # all 120 rows


def test_destinations_are_checked_before_training(capsys, tmp_path):
    data = write_dataset(tmp_path, "csv")
    for flag, dest in (("--out", tmp_path / "no" / "m.npz"), ("--metrics", tmp_path),
                       ("--plots", data[0])):
        code, out, err = run(capsys, "train", *data, *FAST, flag, dest)
        assert_error(code, err, flag)
        assert "epoch" not in out


def test_broken_stdout_pipe_still_writes_every_file(tmp_path):
    model, metrics = tmp_path / "m.npz", tmp_path / "m.json"
    script = (f"{sys.executable} -m relunet.cli train --dataset spiral --epochs 300 "
              f"--out {model} --metrics {metrics} | head -2; exit ${{PIPESTATUS[0]}}")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2 and "Traceback" not in done.stderr
    assert relunet.load(model)[-1].n_iter_ >= 1 and json.loads(metrics.read_text())["epochs"] >= 1


def test_every_training_flag_reaches_the_estimator():
    args = cli.build_parser().parse_args([
        "train", "--schedule", "constant", "--momentum", "0.5", "--batch-size", "64",
        "--validation-fraction", "0.2", "--patience", "3", "--class-weight", "balanced",
        "--dtype", "float64", "--solver", "sgd", "--early-stopping"])
    net = cli._make_model(args, None)
    assert (net.learning_rate, net.momentum, net.batch_size, net.validation_fraction,
            net.n_iter_no_change, net.class_weight, net.dtype, net.solver,
            net.early_stopping) == ("constant", 0.5, 64, 0.2, 3, "balanced", "float64", "sgd",
                                    True)
    defaults = cli._make_model(cli.build_parser().parse_args(["train"]), None)
    # the CLI's training defaults are the estimator's (README "Defaults")
    for name in ("learning_rate", "learning_rate_init", "batch_size", "max_iter", "alpha",
                 "momentum", "n_iter_no_change", "validation_fraction", "dtype", "solver"):
        assert getattr(defaults, name) == getattr(relunet.ReluNetClassifier(), name), name


def test_threads_flag_trains(capsys):
    code, out, err = run(capsys, "train", "--dataset", "spiral", "--epochs", "3", "--threads",
                         "1", "--quiet")
    assert code == 0, err


# ---------------------------------------------------------------------------------- review fixes


def test_evaluate_requires_the_models_label_column(capsys, tmp_path):
    frame = penguins()
    frame.to_csv(tmp_path / "p.csv", index=False)
    model = tmp_path / "p.npz"
    code, out, err = run(capsys, "train", tmp_path / "p.csv", "--target", "species", *FAST,
                         "--out", model, "-q")
    assert code == 0 and out == ""
    assert err == "label: column 'species' (--target)\n"  # said even under --quiet
    frame.drop(columns="species").to_csv(tmp_path / "new.csv", index=False)  # sex is last
    code, out, err = run(capsys, "evaluate", model, tmp_path / "new.csv")
    assert_error(code, err, str(tmp_path / "new.csv"), "no label column 'species'", "--target")
    code, out, err = run(capsys, "evaluate", model, tmp_path / "new.csv", "--target", "sex")
    assert_error(code, err, "'sex' is one of the model's feature columns")
    frame.rename(columns={"species": "kind"}).to_csv(tmp_path / "renamed.csv", index=False)
    code, out, err = run(capsys, "evaluate", model, tmp_path / "renamed.csv", "--target", "kind")
    assert code == 0, err


def test_year_as_last_column_is_refused_with_the_candidates(capsys, tmp_path):
    frame = penguins().drop(columns="rowid")
    frame["year"] = 2007 + np.arange(len(frame)) % 3
    frame.to_csv(tmp_path / "p.csv", index=False)
    code, _, err = run(capsys, "train", tmp_path / "p.csv", *FAST)
    assert_error(code, err, "'year'", "'species'", "--target")


def test_parquet_index_as_id_in_train_and_predict(capsys, tmp_path):
    frame = penguins().drop(columns="rowid")
    frame.index = pd.Index([f"P{i:03d}" for i in range(len(frame))], name="penguin_id")
    pytest.importorskip("pyarrow", reason="writing Parquet needs pyarrow (relunet[parquet])")
    frame.to_parquet(tmp_path / "p.parquet")
    model = tmp_path / "p.npz"
    code, out, err = run(capsys, "train", tmp_path / "p.parquet", "--target", "species",
                         "--id", "penguin_id", *FAST, "--out", model, "-q")
    assert code == 0, err
    frame.drop(columns="species").iloc[:3].to_parquet(tmp_path / "new.parquet")
    code, out, err = run(capsys, "predict", model, tmp_path / "new.parquet")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["penguin_id"] for r in rows] == ["P000", "P001", "P002"]


def test_labels_file_is_named_and_plots_path_has_one_slash(capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib (relunet[plot])")
    data = write_dataset(tmp_path, "npy")
    code, out, err = run(capsys, "train", *data, "--epochs", "2", "--hidden", "4",
                         "--plots", f"{tmp_path / 'plots'}/")
    assert code == 0, err
    assert f"labels: from {data[2]} (--labels)" in out
    assert f"plots written to {tmp_path / 'plots'}/: " in out and "//" not in out


def test_export_help_describes_table_inputs(capsys):
    code, out, _ = run(capsys, "export", "--help")
    out = " ".join(out.split())
    assert code == 0 and "a model trained on a table has one input per column" in out
    assert "of shape (N, 1)" in out


# ------------------------------------------------------------- the adversarial review's findings


def test_outputs_that_would_overwrite_an_input_are_refused_before_any_work(capsys, tmp_path):
    (data,) = write_dataset(tmp_path, "csv")
    before = data.read_bytes()
    code, out, err = run(capsys, "train", data, "--out", data, *FAST)
    assert_error(code, err, "--out", "data file")
    assert data.read_bytes() == before and "epoch" not in out
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", data, "--out", model, "--metrics", model, *FAST)
    assert_error(code, err, "--out and --metrics are the same file")
    assert run(capsys, "train", data, "--out", model, *FAST)[0] == 0
    saved = model.read_bytes()
    for argv, words in ((("predict", model, data, "--out", model), ("--out", "model file")),
                        (("predict", model, data, "--out", data), ("--out", "data file")),
                        (("evaluate", model, data, "--metrics", data), ("--metrics", "data"))):
        code, out, err = run(capsys, *argv)
        assert_error(code, err, *words)
    assert model.read_bytes() == saved and data.read_bytes() == before


def test_predict_gives_one_output_row_per_input_row_even_an_empty_one(capsys, tmp_path):
    (data,) = write_dataset(tmp_path, "csv")
    model = tmp_path / "m.npz"
    assert run(capsys, "train", data, "--out", model, *FAST)[0] == 0
    new = tmp_path / "new.csv"
    new.write_text("f0,f1,f2,f3\n0,0,0,0\n,,,\n4,4,0,0\n")
    code, out, err = run(capsys, "predict", model, new)
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1 + 3  # the header and three predictions


def test_a_value_that_overflows_the_model_dtype_names_column_and_row(capsys, tmp_path):
    (data,) = write_dataset(tmp_path, "csv")
    model = tmp_path / "m.npz"
    assert run(capsys, "train", data, "--out", model, *FAST)[0] == 0
    new = tmp_path / "new.csv"
    new.write_text("f0,f1,f2,f3\n0,0,0,0\n0,1e300,0,0\n")
    code, out, err = run(capsys, "predict", model, new)
    assert_error(code, err, "column 'f1' in data row 2 (value 1e+300)", "overflows float32")
    assert "RuntimeWarning" not in err and "infinity" not in err


@pytest.mark.parametrize("sep", ['"', ":"])
def test_odd_separators_give_one_clear_error(capsys, tmp_path, sep):
    (data,) = write_dataset(tmp_path, "csv")
    code, out, err = run(capsys, "train", data, "--sep", sep, *FAST)
    assert_error(code, err)
    assert "KeyError" not in err


def test_an_id_column_named_like_an_output_column_is_refused(capsys, tmp_path):
    X, y = blobs()
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(4)])
    df["prediction"] = [f"r{i}" for i in range(len(df))]
    df["code"] = [f"c{i}" for i in range(len(df))]
    df["species"] = y  # ant, bee, cow
    data = tmp_path / "d.csv"
    df.to_csv(data, index=False)
    model = tmp_path / "m.npz"
    # at training, before any work (every later predict would fail)
    code, out, err = run(capsys, "train", data, "--id", "prediction", "--target", "species",
                         "--out", model, *FAST)
    assert_error(code, err, "--id column 'prediction'", "output column")
    assert not model.exists()
    # a class's probability column ("ant" with --proba) clashes too
    renamed = tmp_path / "r.csv"
    df.rename(columns={"code": "ant"}).to_csv(renamed, index=False)
    code, out, err = run(capsys, "train", renamed, "--id", "ant", "--target", "species",
                         "--drop", "prediction", *FAST)
    assert_error(code, err, "--id column 'ant'", "probabilities of class 'ant'", "--proba")
    # at predict, an --id given there is checked against the columns written
    assert run(capsys, "train", data, "--id", "code", "--target", "species", "--drop",
               "prediction", "--out", model, *FAST)[0] == 0
    code, out, err = run(capsys, "predict", model, data, "--id", "prediction")
    assert_error(code, err, "--id column 'prediction'", "output column")
    code, out, err = run(capsys, "predict", model, renamed, "--id", "ant", "--proba")
    assert_error(code, err, "--id column 'ant'", "output column")
    code, out, err = run(capsys, "predict", model, renamed, "--id", "ant")  # no class columns
    assert code == 0, err
    assert out.splitlines()[0] == "ant,prediction"


def test_a_random_split_does_not_call_itself_stratified(capsys, tmp_path):
    X, y = blobs()
    y = y.copy()
    y[0] = "yak"  # a class of one row: no stratified split
    (data,) = write_dataset(tmp_path, "csv", X, y)
    code, out, err = run(capsys, "train", data, *FAST)
    assert code == 0, err
    assert "splitting at random" in err
    assert "(stratified" not in out and "at random" in out


def test_running_out_of_memory_names_the_one_hot_columns_too():
    text = cli._describe(MemoryError())
    assert "out of memory" in text and "--min-frequency" in text and "--hidden" in text


def test_more_one_hot_columns_than_the_cap_are_refused_before_training(capsys, tmp_path,
                                                                       monkeypatch):
    from relunet import tablechecks

    X, y = blobs()
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(4)])
    df["town"] = [f"t{i % 45}" for i in range(len(df))]  # 45 towns of 2 rows
    df["species"] = y
    data = tmp_path / "d.csv"
    df.to_csv(data, index=False)
    monkeypatch.setattr(tablechecks, "MAX_ONEHOT", 40)
    monkeypatch.setattr(tablechecks.check_onehot_width, "__defaults__", (5, 40))
    code, out, err = run(capsys, "train", data, "--min-frequency", "1", *FAST)
    assert_error(code, err, "45 columns", "column 'town'", "--min-frequency", "--drop town")
    assert run(capsys, "train", data, "--min-frequency", "3", *FAST)[0] == 0


def test_class_names_from_the_file_are_escaped_in_the_data_summary(capsys, tmp_path):
    X, y = blobs()
    y = np.where(y == "ant", "\x1b[31mant", y)
    (data,) = write_dataset(tmp_path, "csv", X, y)
    code, out, err = run(capsys, "train", data, *FAST)
    assert code == 0, err
    assert "\x1b" not in out and "\\x1b[31mant" in out


def test_predict_notes_unseen_categories_empty_rows_and_missing_id_columns(capsys, tmp_path):
    frame = penguins()
    frame.to_csv(tmp_path / "p.csv", index=False, na_rep="NA")
    model = tmp_path / "p.npz"
    assert run(capsys, "train", tmp_path / "p.csv", "--target", "species", "--id", "rowid",
               *FAST, "--out", model)[0] == 0
    (tmp_path / "new.csv").write_text(
        "island,bill_length_mm,bill_depth_mm,body_mass_g,sex\n"
        "Atlantis,39.5,18.1,3650,male\n"
        ",,,,\n"
        "Biscoe,47,15,5000,female\n")
    code, out, err = run(capsys, "predict", model, tmp_path / "new.csv")
    assert code == 0, err
    assert len(out.splitlines()) == 4  # header + every row, the empty one too
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert any("column 'island': 1 row (data row 1)" in n and "'Atlantis'" in n
               and "no known category" in n for n in notes), err
    assert any("1 row (data row 2) with no values" in n for n in notes), err
    assert any("no column 'rowid' (the model's --id)" in n for n in notes), err
    # rows the training knew: no notes
    frame.drop(columns="species").head(5).to_csv(tmp_path / "known.csv", index=False)
    code, out, err = run(capsys, "predict", model, tmp_path / "known.csv")
    assert code == 0 and "note:" not in err, err


def test_quiet_names_a_tables_label_column_but_not_a_labels_file(capsys, tmp_path):
    X, y = blobs()
    np.savetxt(tmp_path / "X.csv", X, delimiter=",", header="a,b,c,d", comments="")
    np.savetxt(tmp_path / "y.txt", np.searchsorted(np.unique(y), y), fmt="%d")
    code, out, err = run(capsys, "train", tmp_path / "X.csv", "--labels", tmp_path / "y.txt",
                         "--quiet", *FAST)
    assert code == 0, err
    assert out == "" and "labels: from" not in err
    pd.DataFrame(X, columns=list("abcd")).assign(kind=y).to_csv(tmp_path / "t.csv", index=False)
    code, out, err = run(capsys, "train", tmp_path / "t.csv", "--quiet", *FAST)
    assert code == 0, err
    assert out == "" and "label: column 'kind'" in err


def test_a_predictions_header_never_names_a_column_twice(capsys, tmp_path):
    X, y = blobs()
    df = pd.DataFrame(X, columns=list("abcd"))
    df["rid"] = [f"r{i}" for i in range(len(df))]
    df["kind"] = np.where(y == "ant", "prediction", np.where(y == "bee", "p_prediction", "cow"))
    df.to_csv(tmp_path / "d.csv", index=False)
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", tmp_path / "d.csv", "--id", "rid", "--id", "rid",
                         *FAST)
    assert_error(code, err, "--id column 'rid' is given twice")
    assert run(capsys, "train", tmp_path / "d.csv", "--target", "kind", "--drop", "rid",
               "--out", model, *FAST)[0] == 0  # labels alone: fine
    code, out, err = run(capsys, "predict", model, tmp_path / "d.csv")
    assert code == 0, err
    code, out, err = run(capsys, "predict", model, tmp_path / "d.csv", "--proba")
    assert_error(code, err, "classes 'p_prediction' and 'prediction'", "'p_prediction'")
    assert out == ""
    code, out, err = run(capsys, "predict", model, tmp_path / "d.csv", "--id", "rid", "--id",
                         "rid")
    assert_error(code, err, "given twice")
