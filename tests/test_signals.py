"""Output files under faults: SIGTERM/SIGHUP clean up like Ctrl-C; OS errors name the file."""

import errno
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from relunet import cli

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")

# The child runs `relunet ARGV` and sends itself SIGNAL in the middle of writing the output
# (after a few rows of predictions, or inside numpy.savez for a model): a deterministic
# stand-in for a `kill` arriving at the worst moment.
_CHILD = textwrap.dedent("""
    import csv, os, signal, sys
    import numpy as np
    from relunet import cli

    signum = getattr(signal, sys.argv[1])
    # a terminal's hang-up, not nohup's: whatever the test runner inherited (nohup, some CI
    # runners ignore SIGHUP), the child starts with the default handler, as a shell's would
    signal.signal(signum, signal.SIG_DFL)
    real_writer, real_savez = csv.writer, np.savez

    def writer(fh, **kw):
        inner = real_writer(fh, **kw)

        class Writer:
            rows = 0

            def writerow(self, row):
                Writer.rows += 1
                if Writer.rows == 20:
                    fh.flush()
                    os.kill(os.getpid(), signum)
                return inner.writerow(row)

        return Writer()

    def savez(file, **arrays):
        file.write(b"PK partial")
        file.flush()
        os.kill(os.getpid(), signum)
        return real_savez(file, **arrays)

    csv.writer, np.savez = writer, savez
    sys.exit(cli.main(sys.argv[2:]))
""")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signals")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    np.save(folder / "x.npy", X)
    np.save(folder / "y.npy", (X[:, 0] > 0).astype(np.int64))
    model = folder / "model.npz"
    assert cli.main(["train", str(folder / "x.npy"), "--labels", str(folder / "y.npy"),
                     "--epochs", "2", "--hidden", "4", "--quiet", "--out", str(model)]) == 0
    return folder, model


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("command", ["predict", "train"])
def test_signal_during_output_leaves_no_temporary_file(files, tmp_path, name, command):
    folder, model = files
    out = tmp_path / ("pred.csv" if command == "predict" else "model.npz")
    out.write_bytes(b"the previous output\n")
    if command == "predict":
        argv = ["predict", model, folder / "x.npy", "--out", out]
    else:
        argv = ["train", folder / "x.npy", "--labels", folder / "y.npy", "--epochs", "2",
                "--hidden", "4", "--quiet", "--out", out]
    proc = subprocess.run([sys.executable, "-c", _CHILD, name, *map(str, argv)],
                          capture_output=True, text=True, timeout=120)
    signum = getattr(signal, name)
    assert proc.returncode == 128 + signum, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"error: terminated by {name}"
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no hidden temp file
    assert out.read_bytes() == b"the previous output\n"


def test_handlers_are_restored_and_an_ignored_sighup_stays_ignored(files, capsys):
    folder, model = files
    before = signal.getsignal(signal.SIGTERM)
    old_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        assert cli.main(["info", str(model)]) == 0
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, old_hup)
    assert signal.getsignal(signal.SIGTERM) is before


def test_full_disk_names_the_file_in_words(files, tmp_path, capsys, monkeypatch):
    import csv

    folder, model = files
    out = tmp_path / "pred.csv"
    out.write_text("previous\n")
    real = csv.writer

    def writer(fh, **kw):
        inner = real(fh, **kw)

        class Full:
            def writerow(self, row):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        return Full() if fh is not sys.stdout else inner

    monkeypatch.setattr(csv, "writer", writer)
    code = cli.main(["predict", str(model), str(folder / "x.npy"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code != 0
    assert err.strip() == (f"error: {out}: cannot write: the disk is full "
                           "(No space left on device)")
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.csv"]


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP", "SIGINT"])
@pytest.mark.parametrize("writer", ["atomic_path", "save"])
def test_signal_while_creating_the_temporary_file_leaves_nothing(
        files, tmp_path, monkeypatch, signame, writer):
    """A signal arriving inside mkstemp (after the file exists, before the ``try`` that
    removes it) is held until that ``try`` is entered: the temporary file is removed."""
    import tempfile

    from relunet import data, io
    from relunet._signals import Terminated, signals_as_exceptions

    real = tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        out = real(*args, **kwargs)
        os.kill(os.getpid(), getattr(signal, signame))  # Python's handler runs right here
        for _ in range(100):  # ... at the latest at one of these bytecodes
            pass
        return out

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    target = tmp_path / "out" / "model.npz"
    target.parent.mkdir()
    target.write_text("previous")
    expected = KeyboardInterrupt if signame == "SIGINT" else Terminated
    # a terminal's Ctrl-C and hang-up, also when the test runner ignores them (nohup, a
    # background job): an ignored signal stays ignored, by design
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    old_hup = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        with signals_as_exceptions(), pytest.raises(expected):
            if writer == "save":
                io.save(io.load(files[1]), target)
            else:
                with data.atomic_path(target):
                    pytest.fail("the block must not run")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGHUP, old_hup)
    assert os.listdir(target.parent) == ["model.npz"]
    assert target.read_text() == "previous"
