"""What `relunet train` shows and how it stops (relunet.display, and cmd_train around it):
one line per epoch when piped (--log-every), progress within epochs, Ctrl-C keeping the work,
and failures that name their cause."""

import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import relunet
from relunet import cli
from relunet.display import TrainingDisplay
from relunet.network import init_params
from relunet.train import EpochInfo, Progress


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_piped_output_is_one_line_every_log_every_epochs(capsys):
    code, out, err = run(capsys, "train", "--dataset", "spiral", "--epochs", "10",
                         "--log-every", "4", "--hidden", "16")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["4/10", "8/10", "10/10"]
    for line in lines:  # running loss and accuracy, test accuracy, speed and time left
        for word in ("loss", "acc", "test_acc", "ETA"):
            assert f" {word} " in f" {line} "
        assert "epochs/s" in line or "s/epoch" in line
    assert "final training loss" in out and "alpha/2*sum(w^2)" in out  # says what it holds


def test_display_reports_within_epochs_evaluates_at_epoch_ends_and_relays_a_stop():
    params = init_params(3, 4, 2, rng=0)
    evaluated = []
    shown = TrainingDisplay(5, quiet=True, evaluate=lambda p: evaluated.append(p) or (0.5, 0.75))
    with shown:
        for done in (100, 200, 300):
            assert shown.on_progress(Progress(1, done, 300, 0.7, 0.6, 0.1, params)) is False
        assert shown(EpochInfo(1, 0.7, 1e-3, 0.3, train_accuracy=0.6)) is False
        shown.request_stop()  # what the Ctrl-C handler does
        assert shown.on_progress(Progress(2, 100, 300, 0.6, 0.7, 0.1, params)) is True
    assert len(evaluated) == 1  # at the end of epoch 1 only
    assert shown.history() == [{"epoch": 1, "train_loss": 0.7, "learning_rate": 1e-3,
                                "seconds": 0.3, "val_loss": None, "val_accuracy": None,
                                "train_accuracy": 0.6, "complete": True, "test_loss": 0.5,
                                "test_accuracy": 0.75}]


def test_a_huge_learning_rate_ends_with_a_warning_naming_cause_and_fix(capsys):
    # The issue: `--learning-rate 5` exited 0 with "final training loss 24.5" and nothing else.
    # (5 now stops in epoch 1 with an error: see the next test; 2 ends at loss ~140.)
    code, out, err = run(capsys, "train", "--learning-rate", "2", "--epochs", "3")
    assert code == 0
    assert "warning: training diverged or oscillates" in err
    assert "smaller learning rate (it was 2; e.g. 0.2)" in err


def test_a_loss_up_by_orders_of_magnitude_stops_training_with_one_error_line(capsys):
    # The review: `--learning-rate 1e4` took the loss from 1.05 to 1.25e8 and said "success".
    code, out, err = run(capsys, "train", "--learning-rate", "1e4", "--epochs", "3")
    assert code == 1 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert "training diverged in epoch 1: the training loss rose to" in lines[0]
    assert "smaller learning rate (it was 10000; e.g. 1000)" in lines[0]


def test_a_column_too_large_for_the_scaler_is_reported_as_overflow_not_nan(capsys, tmp_path):
    path = tmp_path / "d.csv"
    rows = ["small,big,label"] + [f"{i % 7},{i}e198,{'ab'[i % 2]}" for i in range(1, 41)]
    path.write_text("\n".join(rows) + "\n")
    code, out, err = run(capsys, "train", path, "--epochs", "2")
    assert code == 1 and "Traceback" not in err
    assert "column 'big' (column 2)" in err and "overflows float64" in err
    assert "NaN" not in err


def _console_script():
    exe = shutil.which("relunet")
    if exe is None:
        pytest.skip("the relunet console script is not on PATH (pip install -e .)")
    return exe


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child needs POSIX signals")
def test_ctrl_c_saves_the_model_marked_interrupted_and_exits_130(tmp_path):
    exe = _console_script()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20000, 50)).astype(np.float32)
    y = (X[:, :3].sum(axis=1) > 0).astype(np.int64)
    np.savez(tmp_path / "big.npz", X=X, y=y)
    model = tmp_path / "m.npz"
    proc = subprocess.Popen([exe, "train", str(tmp_path / "big.npz"), "--epochs", "100000",
                             "--out", str(model)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # wait until it is training: its first epoch line
            if line.startswith("epoch "):
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Ctrl-C: stopping after the batches under way" in err
    assert "interrupted (Ctrl-C)" in out and "saved marked as interrupted" in out
    m = relunet.load(model)
    net = m.steps[-1][1]
    assert net.interrupted_ and net.stop_reason_.startswith("interrupted (Ctrl-C)")
    with zipfile.ZipFile(model) as z:
        meta = json.loads(np.load(z.open("metadata.npy")).tobytes())
    assert meta["training"]["interrupted"] is True
    assert np.mean(m.predict(X[:2000]) == y[:2000]) > 0.75  # trained (chance: 0.5)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporary files
