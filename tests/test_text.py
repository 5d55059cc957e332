"""Names from files printed safely: control characters escaped in ``relunet info/predict``."""

import numpy as np
import pandas as pd
import pytest
from _problems import small_classifier
from sklearn.exceptions import ConvergenceWarning

from relunet import cli, save
from relunet._text import printable

pytestmark = pytest.mark.filterwarnings("ignore", category=ConvergenceWarning)

HOSTILE = [
    "\x1b[2J\x1b[31mred",  # clear the screen, colour
    "\x1b]0;new title\x07",  # retitle the window, bell
    "over\rwrite",  # carriage return
    "two\nlines",
    "abc\u202egnp.exe",  # right-to-left override ("Trojan Source")
    "back\bspace\x7f\x9b",  # backspace, DEL, C1 CSI
]


@pytest.mark.parametrize("text", HOSTILE)
def test_printable_escapes_every_control_character(text):
    shown = printable(text)
    assert all(ch.isprintable() and ch != "\u202e" for ch in shown), repr(shown)
    assert shown == repr(text)[1:-1].replace("\\\\", "\\")  # Python's escapes, nothing else


@pytest.mark.parametrize("text", ["zero\u200bwidth", "word\u2060joiner", "\ufeffbom",
                                  "tag\U000e0041\U000e007f", "soft\u00adhyphen", "zw\u200djoin"])
def test_printable_escapes_invisible_format_characters(text):
    shown = printable(text)
    assert all(ch.isprintable() for ch in shown), repr(shown)
    assert shown == repr(text)[1:-1]


def test_printable_tells_a_backslash_from_an_escape():
    real, written = "\x1b[0m", "\\x1b[0m"  # ESC, and the four characters backslash x 1 b
    assert printable(real) == "\\x1b[0m"
    assert printable(written) == "\\\\x1b[0m"
    assert printable(real) != printable(written)
    assert printable("a\\b", backslashes=False) == "a\\b"  # error lines: repr-quoted already


def test_printable_keeps_ordinary_text():
    for text in ["ant", "größe", "日本語", "naïve café 😀", "a b\u00a0c", "x:y,[z]"]:
        assert printable(text) == text


@pytest.fixture(scope="module")
def hostile_model(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.standard_normal((60, len(HOSTILE))), columns=HOSTILE)
    y = np.array(HOSTILE[:3])[np.arange(60) % 3]
    folder = tmp_path_factory.mktemp("hostile")
    save(small_classifier(hidden_units=4, max_iter=3).fit(X, y), folder / "m.npz")
    np.save(folder / "x.npy", X.to_numpy())
    return folder / "m.npz", folder / "x.npy"


def _no_controls(text):
    return all(ch.isprintable() and ch != "\u202e" for ch in text.replace("\n", ""))


def test_info_escapes_class_and_feature_names(capsys, hostile_model):
    model, _ = hostile_model
    assert cli.main(["info", str(model)]) == 0
    out = capsys.readouterr().out
    assert _no_controls(out), repr(out)
    assert printable(HOSTILE[0]) in out and printable(HOSTILE[4]) in out


def test_predict_escapes_names_on_stdout_and_keeps_them_in_a_file(capsys, hostile_model,
                                                                  tmp_path):
    model, data = hostile_model
    assert cli.main(["predict", str(model), str(data), "--proba"]) == 0
    out = capsys.readouterr().out
    assert _no_controls(out), repr(out)
    assert printable(HOSTILE[1]) in out.splitlines()[0]
    assert cli.main(["predict", str(model), str(data), "--proba", "--out",
                     str(tmp_path / "p.csv")]) == 0
    with open(tmp_path / "p.csv", newline="", encoding="utf-8") as fh:
        raw = fh.read()
    assert all(label in raw for label in HOSTILE[:3])  # the file keeps the labels as stored


def test_evaluate_table_shows_names_as_text_on_a_terminal(capsys, tmp_path, monkeypatch):
    pytest.importorskip("rich", reason="the table on a terminal is rich's")
    rng = np.random.default_rng(1)
    labels = np.array(["[red]ant", "bee\x1b[31m", "cow"])
    X = rng.standard_normal((60, 3)) + 3 * (np.arange(60) % 3)[:, None]
    y = labels[np.arange(60) % 3]
    save(small_classifier(hidden_units=4, max_iter=5).fit(X, y), tmp_path / "m.npz")
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", y)
    from relunet import display

    monkeypatch.setattr(display, "_is_tty", lambda stream: True)
    assert cli.main(["evaluate", str(tmp_path / "m.npz"), str(tmp_path / "x.npy"),
                     "--labels", str(tmp_path / "y.npy")]) == 0
    out = capsys.readouterr().out
    assert "[red]ant" in out  # shown as written, not taken as rich markup
    assert "bee\\x1b[31m" in out and "bee\x1b" not in out
