"""What ``relunet train`` shows while it trains, and the tables it prints.

:class:`TrainingDisplay` is the estimator's ``callback``: called after every epoch with an
:class:`~relunet.train.EpochInfo`, and, through its ``on_progress`` method, within epochs with
a :class:`~relunet.train.Progress` (a few times a second on large data).  On a terminal (and
with rich installed: ``relunet[cli]``) it is one live line: a bar over the whole run, the
running training loss and accuracy of the epoch under way, the validation and test accuracy
of the last epoch, the speed and the time left.  Piped or redirected, it prints one plain
line per epoch (every ``log_every`` epochs, and always the last).

It also watches for a stop request (:meth:`request_stop`, e.g. from a Ctrl-C handler):
from then on its callbacks return True, and training stops after the batches under way.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

import numpy as np

__all__ = ["TrainingDisplay", "ctrl_c", "test_evaluator", "print_summary", "print_table",
           "rich_console", "fmt"]


def fmt(value, spec=".4f"):
    """``value`` formatted, or ``-`` for None."""
    return "-" if value is None else format(value, spec)


def _is_tty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def rich_console(stream):
    """A rich Console on ``stream`` when it is a terminal and rich is installed, else None."""
    if not _is_tty(stream):
        return None
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(file=stream)


def print_table(title, header, rows, stream=None):
    """A small table: rich on a terminal, aligned plain text otherwise."""
    from ._text import printable

    stream = stream if stream is not None else sys.stdout
    # names from a file: no control characters.  Backslashes are left as they are: callers
    # that quote names escape them fully first, and escaping twice would double them.
    header = [printable(c, backslashes=False) for c in header]
    rows = [[printable(c, backslashes=False) for c in row] for row in rows]
    console = rich_console(stream)
    if console is not None:
        from rich.markup import escape
        from rich.table import Table

        # cells may be class names from a file: "[red]" is text, not rich markup
        table = Table(title=title, title_justify="left")
        for i, name in enumerate(header):
            table.add_column(escape(str(name)), justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*[escape(str(c)) for c in row])
        console.print(table)
        return
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    if title:
        print(title, file=stream)
    for row in [header, *rows]:
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        print("  " + "  ".join(cells).rstrip(), file=stream)


def _clock(seconds):
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _speed(seconds_per_epoch):
    """Whichever reads: ``12.3 epochs/s`` for fast epochs, ``4.2 s/epoch`` for slow ones."""
    if seconds_per_epoch <= 0:
        return "-"
    if seconds_per_epoch < 1:
        return f"{1 / seconds_per_epoch:.1f} epochs/s"
    return f"{seconds_per_epoch:.1f} s/epoch"


class TrainingDisplay:
    """The live display of one fit (see the module docstring).

    Parameters
    ----------
    total_epochs : int
        The epoch budget (``max_iter``), for the bar and the time left.
    stream : file, optional
        Default: ``sys.stdout``.
    quiet : bool
        Show nothing (the records and the stop request still work).
    log_every : int
        Piped output: one line every this many epochs (the last and a partial one always).
    evaluate : callable, optional
        ``evaluate(params) -> (loss, accuracy)`` on held-out test data, called at the end of
        every epoch with the live weights; its results go into :attr:`extra` and the display.

    Attributes
    ----------
    records : list of EpochInfo
    extra : dict
        ``{epoch: {"test_loss": ..., "test_accuracy": ...}}`` from ``evaluate``.
    stop_requested : bool
    last_progress : Progress or None
        The last within-epoch report (where an interrupted epoch stopped).
    """

    def __init__(self, total_epochs, *, stream=None, quiet=False, log_every=1, evaluate=None):
        self.total, self.quiet, self.log_every = int(total_epochs), quiet, max(1, int(log_every))
        self.stream = stream if stream is not None else sys.stdout
        self.evaluate = evaluate
        self.records, self.extra = [], {}
        self.stop_requested = self.aborted = False
        self._noted = False
        self.last_progress = None
        self._rows_per_second = None  # smoothed over the recent reports
        self._last = None  # (time, rows done in the run) of the previous report
        self._rows_per_epoch = None
        self._epoch_seconds = None  # smoothed seconds per epoch
        self._start = None
        self._bar = self._task = None
        if not quiet:
            console = rich_console(self.stream)
            if console is not None:
                from rich.progress import BarColumn, Progress, TextColumn

                self._bar = Progress(
                    TextColumn("{task.description}"), BarColumn(bar_width=24),
                    TextColumn("{task.fields[info]}"), console=console, transient=False,
                    refresh_per_second=8,
                )

    # ------------------------------------------------------------------ context
    def __enter__(self):
        self._start = time.perf_counter()
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task(self._epoch_text(1), total=self.total, info="")
        return self

    def __exit__(self, *exc):
        self._say_stopping()  # a Ctrl-C that came after the last report
        if self._bar is not None:
            self._bar.stop()

    def request_stop(self):
        """Ask training to stop after the batches under way (the callbacks return True).

        Safe in a signal handler: it only sets a flag; the next report says so.
        """
        self.stop_requested = True

    def _say_stopping(self):
        if self.stop_requested and not self._noted:
            self._noted = True
            self.note("Ctrl-C: stopping after the batches under way; the model trained so far "
                      "is kept (press Ctrl-C again to abort without saving)")

    def note(self, text):
        """Print a line of text without breaking the live display."""
        from ._text import printable

        if self.quiet:
            return
        text = printable(text)
        if self._bar is not None:
            from rich.markup import escape

            self._bar.console.print(escape(text))
        else:
            print(text, file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ callbacks
    def on_progress(self, p):
        """Within an epoch (``Progress``): update the running figures; True to stop."""
        self._say_stopping()
        self.last_progress = p
        self._rows_per_epoch = p.rows_total
        now = time.perf_counter()
        done = (p.epoch - 1) * p.rows_total + p.rows_done
        if self._last is not None and now > self._last[0] and done > self._last[1]:
            rate = (done - self._last[1]) / (now - self._last[0])
            old = self._rows_per_second
            self._rows_per_second = rate if old is None else 0.7 * old + 0.3 * rate
        elif p.rows_done == p.rows_total or self._last is None:
            self._rows_per_second = self._rows_per_second or p.rows_done / max(p.seconds, 1e-9)
        self._last = (now, done)
        if p.rows_done == p.rows_total and self.evaluate is not None:
            loss, acc = self.evaluate(p.params)
            self.extra[p.epoch] = {"test_loss": loss, "test_accuracy": acc}
        if self._bar is not None:
            self._bar.update(self._task, description=self._epoch_text(p.epoch),
                             completed=done / p.rows_total,
                             info=self._info(p.train_loss, p.train_accuracy, self._val(),
                                             self._test(p.epoch - 1), p.epoch - 1 + p.rows_done
                                             / p.rows_total))
        return self.stop_requested

    def __call__(self, info):
        """After an epoch (``EpochInfo``): record it, show it; True to stop."""
        self._say_stopping()
        self.records.append(info)
        old = self._epoch_seconds
        if info.complete:
            self._epoch_seconds = info.seconds if old is None else 0.5 * old + 0.5 * info.seconds
        if self.quiet:
            return self.stop_requested
        test = self._test(info.epoch)
        if self._bar is not None:
            self._bar.update(self._task, description=self._epoch_text(info.epoch),
                             completed=info.epoch,
                             info=self._info(info.train_loss, info.train_accuracy,
                                             info.val_accuracy, test, info.epoch))
        elif (info.epoch % self.log_every == 0 or info.epoch >= self.total
              or not info.complete or self.stop_requested):
            line = f"epoch {info.epoch:>{len(str(self.total))}}/{self.total}"
            line += f"  loss {info.train_loss:.4f}"
            if info.train_accuracy is not None:
                line += f"  acc {info.train_accuracy:.4f}"
            if info.val_accuracy is not None:
                line += f"  val_loss {info.val_loss:.4f}  val_acc {info.val_accuracy:.4f}"
            if test is not None:
                line += f"  test_acc {test:.4f}"
            line += f"  {_speed(self._epoch_seconds or info.seconds)}"
            line += f"  ETA {_clock(self._eta(info.epoch))}"
            if not info.complete:
                line += "  (interrupted part-way)"
            print(line, file=self.stream, flush=True)
        return self.stop_requested

    # ------------------------------------------------------------------ text
    def _epoch_text(self, epoch):
        return f"epoch {min(epoch, self.total):>{len(str(self.total))}}/{self.total}"

    def _val(self):
        return self.records[-1].val_accuracy if self.records else None

    def _test(self, epoch):
        return self.extra.get(epoch, {}).get("test_accuracy")

    def _eta(self, epochs_done):
        left = max(self.total - epochs_done, 0)
        if self._rows_per_second and self._rows_per_epoch:
            return left * self._rows_per_epoch / self._rows_per_second
        if self._epoch_seconds:
            return left * self._epoch_seconds
        elapsed = time.perf_counter() - (self._start or time.perf_counter())
        return left * elapsed / max(epochs_done, 1e-9)

    def _info(self, loss, acc, val, test, epochs_done):
        parts = [f"loss {loss:.4f}"]
        if acc is not None:
            parts.append(f"acc {acc:.4f}")
        if val is not None:
            parts.append(f"val acc {val:.4f}")
        if test is not None:
            parts.append(f"test acc {test:.4f}")
        if self._rows_per_second and self._rows_per_epoch:
            parts.append(_speed(self._rows_per_epoch / self._rows_per_second))
        elif self._epoch_seconds:
            parts.append(_speed(self._epoch_seconds))
        parts.append(f"ETA {_clock(self._eta(epochs_done))}")
        if self.stop_requested:
            parts.append("[stopping]")
        return "  ".join(parts)

    # ------------------------------------------------------------------ results
    def history(self):
        """The epochs as dicts (JSON-ready), with the test figures merged in."""
        import dataclasses

        out = []
        for info in self.records:
            record = dataclasses.asdict(info)
            record.update(self.extra.get(info.epoch, {}))
            out.append(record)
        return out


def print_summary(metrics, *, penalty=None, saved=False, stream=None):
    """The end-of-training summary of ``relunet train`` from its metrics dict: accuracy and
    log loss table, epochs and stop reason, the best epoch when early stopping restored it,
    what "final training loss" holds, and whether the run was interrupted."""
    stream = stream if stream is not None else sys.stdout
    rows = [
        ("accuracy", fmt(metrics["train_accuracy"]), fmt(metrics["test_accuracy"])),
        ("log loss", fmt(metrics["train_log_loss"]), fmt(metrics["test_log_loss"])),
        ("rows", metrics["n_train"], metrics["n_test"] or "-"),
    ]
    print(file=stream, flush=True)
    print_table("", ("", "train", "test"), rows, stream)
    epochs, reason = metrics["epochs"], metrics["stop_reason"]
    print(f"epochs: {epochs}" + (f" (stopped: {reason})" if reason else "")
          + f"   time: {metrics['fit_seconds']:.2f} s", file=stream)
    best = metrics.get("best_epoch")
    if best is not None and best != epochs:
        print(f"best epoch: {best} of {epochs}, validation accuracy "
              f"{metrics['best_validation_accuracy']:.4f}: early stopping restored its weights "
              f"(the figures above are theirs)", file=stream)
    if metrics["train_loss"] is not None:
        print(f"final training loss: {metrics['train_loss']:.4f} (mean log loss over the last "
              f"epoch's batches as they were trained, plus the penalty alpha/2*sum(w^2)"
              + (f" = {penalty:.4f}" if penalty is not None else "")
              + "; the table's log loss is the final model's, without the penalty)",
              file=stream)
    if metrics.get("interrupted"):
        print(f"{reason}: the model holds the weights reached"
              + (" and is saved marked as interrupted" if saved else ""), file=stream)


# ------------------------------------------------------------------ around a fit


def test_evaluator(get_model, X_te, y_te, y_tr):
    """``evaluate(params) -> (loss, accuracy)`` on the test data for the per-epoch test
    curve (None without test data, or when a test label is not a training class)."""
    if X_te is None or len(X_te) == 0:
        return None
    classes = np.unique(y_tr)  # the estimator's classes_ (LabelEncoder: sorted)
    if not np.isin(y_te, classes).all():
        return None
    cache = {}

    def evaluate(params):
        from .train import evaluate as loss_and_accuracy

        if "X" not in cache:  # the scaler was fitted before the network's first epoch
            model = get_model()
            X = model[:-1].transform(X_te) if hasattr(model, "steps") else X_te
            cache["X"] = np.ascontiguousarray(X, dtype=params.W1.dtype)
            cache["y"] = np.searchsorted(classes, y_te)
        return loss_and_accuracy(params, cache["X"], cache["y"])

    return evaluate


@contextlib.contextmanager
def ctrl_c(display):
    """First Ctrl-C: stop after the batches under way (the display's callbacks say so);
    a second one: KeyboardInterrupt at once, and ``display.aborted``."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum, frame):
        if display.stop_requested:
            display.aborted = True
            raise KeyboardInterrupt
        display.request_stop()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def describe_model(path, model, meta, names=None):
    """The lines of ``relunet info``: what the model file ``path`` holds.

    ``model`` is what :func:`relunet.load` gave, ``meta`` its metadata
    (:func:`relunet.io.read_metadata`), ``names`` its input column names (or None).  Values
    from the file are quoted with control characters escaped and long ones shortened.
    """
    from ._text import printable
    from .tables import describe_preparation

    meta = dict(meta)
    out = []
    emit = out.append
    net = model.steps[-1][1] if hasattr(model, "steps") else model
    W1, W2 = np.asarray(net.W1_), np.asarray(net.W2_)
    D, H, K = W1.shape[0] - 1, W1.shape[1], W2.shape[1]
    size = os.path.getsize(path)
    created = meta.pop("created", None)
    emit(f"{path}: relunet model ({size / 1024:.1f} KiB), file format "
          f"{_short_value(meta.pop('format_version', '?'))}, written by relunet "
          f"{_short_value(meta.pop('relunet_version', '?'))}"
          + (f" on {_short_value(created)}" if created else ""))
    emit(f"network: {D} inputs -> {H} ReLU units -> {K} scores (softmax)")
    emit(f"weights: W1 {W1.shape}, W2 {W2.shape}: {W1.size + W2.size:,} parameters, "
          f"{W1.dtype} (biases are the last rows)")
    prep = meta.pop("preprocessing", None) or {}
    steps = getattr(model, "steps", None)
    scaler = type(steps[0][1]).__name__ if steps and len(steps) > 1 else "none"
    seen = prep.get("n_samples_seen")
    table = meta.pop("table", None) or {}
    emit(f"preprocessing: {scaler}" + (f" (fitted on {seen} rows)"
                                        if scaler != "none" and isinstance(seen, int) else ""))
    for line in describe_preparation(model):
        emit(f"  {printable(line)}")
    if table.get("label") is not None:
        ids = ", ".join(table.get("ids") or []) or "-"
        emit(f"label column: {printable(table['label'])}   id columns: {printable(ids)}")
    classes = [printable(c) for c in net.classes_]
    emit(f"classes ({K}): " + ", ".join(classes[:20]) + (", ..." if K > 20 else ""))
    names = names and [printable(n) for n in names]
    n_in = len(names) if names else D
    emit(f"{'input columns' if n_in != D else 'features'} ({n_in}): "
          + (", ".join(names[:12]) + (", ..." if n_in > 12 else "")
             if names else "unnamed (trained on an array)"))
    params = meta.pop("hyperparameters", None) or {}
    if params:
        emit("hyper-parameters:")
        for key in sorted(params):
            emit(f"  {printable(key)}: {_short_value(params[key])}")
    training = meta.pop("training", None) or {}
    if training:
        emit("training:")
        epochs = training.get("n_iter")
        reason = _short_value(training.get("stop_reason") or "-")
        emit(f"  epochs: {epochs}   stop reason: {reason}   "
              f"time: {_short_value(training.get('fit_seconds'))} s")
        for key, label in (("final_loss", "final training loss"), ("best_loss", "best loss"),
                           ("t", "examples processed")):
            if training.get(key) is not None:
                emit(f"  {label}: {_short_value(training[key])}")
        scores = [v for v in training.get("validation_scores") or [] if v is not None]
        if scores:
            emit(f"  validation accuracy: final {scores[-1]:.4f}, best {max(scores):.4f}")
    shown = {"format", "model", "classes", "classes_dtype", "feature_names", "n_features_in",
             "n_hidden", "n_classes", "weights_dtype"}
    for key, value in meta.items():  # anything a newer file format adds
        if key not in shown:
            emit(f"{printable(key.replace('_', ' '))}: {_short_value(value)}")
    return out


def _short_value(value, limit=100):
    """A metadata value for one line: floats to 6 digits, long lists counted, text escaped."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and len(value) > 8:
        return f"[{len(value)} values]"
    from ._text import printable

    text = printable(value)  # values from the model file: control characters escaped
    return text if len(text) <= limit else text[: limit - 3] + "..."
