"""The ``relunet`` command: train, evaluate, predict, gradcheck and info.

Every failure the user can cause (a missing file, a bad column, an invalid setting, a model
file that is not a model) ends as one line on stderr starting with ``error:`` and a non-zero
exit status; ``--debug`` adds the traceback.  Output files are written to a temporary name
and renamed into place, so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import math
import os
import sys
import time
import traceback
import warnings

import numpy as np

__all__ = ["main", "build_parser", "CLIError"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# Defaults of `relunet train`: the estimator's (README "Defaults" has the measurements).
# Adam 1e-3 with a cosine schedule over --epochs, batch "auto" (32 on small tables, 128 from
# 6,400 rows): Fashion-MNIST, 30 epochs, H=256 0.898 and H=1024 0.904, where the former CLI
# defaults (Adam 5e-3 constant, batches of 64, 100 epochs) gave 0.862 and 0.847 (the wider net
# worse); small tables tie or beat MLPClassifier().  The CLI differs from the estimator only
# in scaling the inputs (--scale standard) and in a fixed --seed.
DEFAULTS = {
    "hidden": 100,
    "epochs": 200,
    "batch_size": "auto",
    "learning_rate": 1e-3,
    "schedule": "cosine",
    "momentum": 0.9,
    "alpha": 1e-4,
    "solver": "adam",
    "validation_fraction": 0.1,
    "patience": 10,
    "dtype": "float32",
    "log_every": 1,
    "scale": "standard",
    "test_fraction": 0.2,
    "seed": 0,
}


class CLIError(Exception):
    """A user-facing failure: printed as ``error: <message>``."""


# ------------------------------------------------------------------------------ argparse


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one ``error:`` line (exit status 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"error: {message} (see '{self.prog} --help')\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=30)


def _whole_number(text, low):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
    return value


def _positive_int(text):
    return _whole_number(text, 1)


def _number(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _positive_float(text):
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _nonnegative_float(text):
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _fraction(text):
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _seed(text):
    return _whole_number(text, 0)


def _batch_size(text):
    return text if text == "auto" else _whole_number(text, 1)


def _open_fraction(text):
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


MAIN_EPILOG = """\
examples:
  relunet train                                  # built-in digits, a few seconds
  relunet train data.csv --target species --out model.npz --plots plots/
  relunet evaluate model.npz test.csv --target label
  relunet predict model.npz new.csv --proba --out predictions.csv
  relunet info model.npz
  relunet gradcheck --dataset spiral

Run 'relunet COMMAND --help' for the options of each command.
"""

FORMATS_HELP = """\
data formats (by extension):
  .csv .tsv (.gz)        header row; labels in --target COLUMN, else the column named
                         label/target/class/y, else the last; text one-hot encoded, missing
                         numbers imputed; index and row-number columns left out
  .parquet .pq           the same as CSV (needs pyarrow)
  .npy                   2-D array of features (3-D images are flattened); --labels FILE
  .npz                   arrays named X and y
  .idx, *-idx3-ubyte     MNIST IDX (optionally .gz); images flattened; --labels FILE (IDX)
  --labels FILE may be .npy, IDX, .txt (one label per line) or a one-column table.
"""

TRAIN_EPILOG = FORMATS_HELP + """
Ctrl-C stops after the batches under way, prints the summary and saves --out marked as
interrupted (exit status 130); a second Ctrl-C aborts without saving.

examples:
  relunet train                                     # built-in digits, a few seconds
  relunet train --dataset spiral --plots plots/     # 2-D toy data with decision regions
  relunet train iris.csv --target species --out iris.npz --metrics iris.json
  relunet train penguins.csv --target species --id rowid --drop year --out p.npz
  relunet train europe.csv --sep ';' --decimal ','     # usually sniffed
  relunet train train-images-idx3-ubyte.gz --labels train-labels-idx1-ubyte.gz \\
      --test-data t10k-images-idx3-ubyte.gz --test-labels t10k-labels-idx1-ubyte.gz \\
      --hidden 256 --epochs 20 --out mnist.npz
"""

EVALUATE_EPILOG = """\
examples:
  relunet evaluate model.npz test.csv                 # the label column of training
  relunet evaluate model.npz test.csv --target label --metrics eval.json
  relunet evaluate model.npz X_test.npy --labels y_test.npy
"""

PREDICT_EPILOG = """\
The CSV has the --id columns (default: training's), 'prediction' and, with --proba, one
probability column per class.  Raw rows get the training's preparation; other columns are
ignored.

examples:
  relunet predict model.npz new.csv                   # CSV to stdout
  relunet predict model.npz new.csv --proba --out predictions.csv
  relunet predict model.npz new.csv --id PassengerId   # copy the id column to the output
  relunet predict model.npz images.npy --out labels.csv
"""

GRADCHECK_EPILOG = """\
Builds a fresh network on (a subsample of) the data, standardised, and compares the
back-propagated gradient with central finite differences on a random subset of weights.
Errors below 1e-6 mean the two agree to rounding.  A larger error is re-checked with a
10x smaller step: an error that shrinks with the step is a ReLU kink inside the step;
one that does not means the gradient is wrong (exit status 1).

examples:
  relunet gradcheck                                   # built-in digits
  relunet gradcheck --dataset spiral --hidden 50
  relunet gradcheck data.csv --target label --rows 100
"""

INFO_EPILOG = """\
examples:
  relunet info model.npz
"""

EXPORT_EPILOG = """\
Inputs: a model trained on arrays (.npy, .npz, IDX, the built-in data sets) has one
input X of shape (N, D) in the model's dtype; a model trained on a table has one
input per column, named by the column, of shape (N, 1): numbers in the model's dtype, text
as strings (a missing number is NaN, a missing text "").  Outputs: 'label' (N,) and
'probabilities' (N, K), column k for class k in sorted order.  The saved preparation
(imputing, scaling, one-hot encoding) is part of the graph.  Needs onnx:
pip install 'relunet[onnx]'.

examples:
  relunet export model.npz model.onnx
  relunet export model.npz model.onnx --opset 19
"""


def build_parser():
    """The ``relunet`` argument parser with its five subcommands."""
    from . import __version__

    debug = _Parser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error")

    parser = _Parser(
        prog="relunet", formatter_class=_Formatter, epilog=MAIN_EPILOG,
        description="Train and use the one-hidden-layer ReLU network of "
                    "'Simple neural network math'.",
    )
    parser.add_argument("--version", action="version", version=f"relunet {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name, help, epilog):
        p = sub.add_parser(name, help=help, description=help, epilog=epilog,
                           formatter_class=_Formatter, parents=[debug])
        return p

    # ---- train
    p = command("train", "train a network and report its accuracy", TRAIN_EPILOG)
    p.set_defaults(func=cmd_train)
    g = p.add_argument_group("data")
    g.add_argument("data", nargs="?", metavar="DATA",
                   help="training data file (default: the built-in digits)")
    g.add_argument("--labels", metavar="PATH", help="labels file for DATA (.npy, IDX, ...)")
    g.add_argument("--target", metavar="COLUMN",
                   help="label column of a CSV/TSV/Parquet table (default: the one named "
                        "label/target/class/y, else the last)")
    _table_options(g, train=True)
    g.add_argument("--dataset", metavar="NAME", choices=("digits", "spiral"),
                   help="a built-in data set instead of DATA: digits or spiral")
    g.add_argument("--test-data", metavar="PATH", help="separate test data (same format rules)")
    g.add_argument("--test-labels", metavar="PATH", help="labels file for --test-data")
    g.add_argument("--test-fraction", type=_fraction, default=DEFAULTS["test_fraction"],
                   metavar="F",
                   help="without --test-data, hold out this stratified fraction for testing; "
                        "0 trains on everything (default: %(default)s)")
    g = p.add_argument_group("network and training")
    g.add_argument("--hidden", type=_positive_int, default=DEFAULTS["hidden"], metavar="N",
                   help="hidden ReLU units H (default: %(default)s)")
    g.add_argument("--epochs", type=_positive_int, default=DEFAULTS["epochs"], metavar="N",
                   help="maximum epochs (default: %(default)s)")
    g.add_argument("--batch-size", type=_batch_size, default=DEFAULTS["batch_size"],
                   metavar="N", help="mini-batch size for sgd/adam; auto: 32 on small data, "
                                     "128 from 6400 rows (default: %(default)s)")
    g.add_argument("--learning-rate", type=_positive_float, default=DEFAULTS["learning_rate"],
                   metavar="F", help="initial learning rate (default: %(default)s)")
    g.add_argument("--schedule", choices=("cosine", "constant", "invscaling", "adaptive"),
                   default=DEFAULTS["schedule"],
                   help="learning-rate schedule; cosine anneals it to 0 over --epochs "
                        "(default: %(default)s)")
    g.add_argument("--momentum", type=_fraction, default=DEFAULTS["momentum"], metavar="F",
                   help="momentum of --solver sgd (default: %(default)s)")
    g.add_argument("--alpha", type=_nonnegative_float, default=DEFAULTS["alpha"], metavar="F",
                   help="L2 penalty α of the note's α/2 Σ w² (default: %(default)s)")
    g.add_argument("--solver", choices=("adam", "sgd", "gd", "lbfgs"), default=DEFAULTS["solver"],
                   help="optimizer; gd is the note's full-batch steepest descent "
                        "(default: %(default)s)")
    g.add_argument("--early-stopping", action="store_true",
                   help="hold out --validation-fraction of the training data, stop when its "
                        "accuracy stalls for --patience epochs, keep the best epoch's weights")
    g.add_argument("--validation-fraction", type=_open_fraction,
                   default=DEFAULTS["validation_fraction"], metavar="F",
                   help="held-out fraction for --early-stopping (default: %(default)s)")
    g.add_argument("--patience", type=_positive_int, default=DEFAULTS["patience"], metavar="N",
                   help="epochs without improvement before stopping (default: %(default)s)")
    g.add_argument("--class-weight", choices=("balanced",),
                   help="weigh each class inversely to its frequency")
    g.add_argument("--dtype", choices=("float32", "float64"), default=DEFAULTS["dtype"],
                   help="precision of the weights and arithmetic (default: %(default)s)")
    g.add_argument("--threads", type=_positive_int, metavar="N",
                   help="CPU threads for training (default: as many as BLAS would use)")
    g.add_argument("--scale", choices=("standard", "minmax", "none"), default=DEFAULTS["scale"],
                   help="feature scaling, saved with the model (default: %(default)s)")
    g.add_argument("--seed", type=_seed, default=DEFAULTS["seed"], metavar="N",
                   help="random seed for the split, the weights and shuffling "
                        "(default: %(default)s)")
    g.add_argument("--dask", metavar="ADDRESS",
                   help="train on a Dask cluster: tcp://HOST:8786, or local:N for N local worker "
                        "processes; DATA is then a file pattern read by the workers, e.g. "
                        "'data/part-*.parquet' (needs relunet[dask]; see relunet.dask)")
    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="MODEL.npz",
                   help="save the trained model (with its scaling) here; not saved otherwise")
    g.add_argument("--metrics", metavar="FILE.json",
                   help="write accuracies, losses and the per-epoch history as JSON")
    g.add_argument("--plots", metavar="DIR",
                   help="write PNG plots here (needs matplotlib: pip install 'relunet[plot]')")
    g.add_argument("--quiet", "-q", action="store_true",
                   help="print nothing but errors and (on stderr) a table's label column")
    g.add_argument("--log-every", type=_positive_int, default=DEFAULTS["log_every"],
                   metavar="N", help="when output is not a terminal: one line every N epochs "
                                     "(default: %(default)s)")

    # ---- evaluate
    p = command("evaluate", "accuracy, per-class precision/recall and confusion matrix",
                EVALUATE_EPILOG)
    p.set_defaults(func=cmd_evaluate)
    p.add_argument("model", metavar="MODEL", help="a model saved by 'relunet train --out'")
    p.add_argument("data", metavar="DATA", help="labelled data file")
    labels = p.add_mutually_exclusive_group()
    labels.add_argument("--labels", metavar="PATH", help="labels file for DATA")
    labels.add_argument("--target", metavar="COLUMN",
                        help="label column of a table (default: the model's label column)")
    _table_options(p)
    p.add_argument("--metrics", metavar="FILE.json", help="also write the results as JSON")

    # ---- predict
    p = command("predict", "predict labels (and probabilities) as CSV", PREDICT_EPILOG)
    p.set_defaults(func=cmd_predict)
    p.add_argument("model", metavar="MODEL", help="a model saved by 'relunet train --out'")
    p.add_argument("data", metavar="DATA", help="data file (labels, if present, are ignored)")
    p.add_argument("--target", metavar="COLUMN", help="a label column of the table to ignore")
    p.add_argument("--id", metavar="COLUMN", action="append", dest="ids",
                   help="copy this column to the output (repeatable; default: the --id "
                        "columns of training, when present)")
    _table_options(p)
    p.add_argument("--proba", action="store_true", help="add one probability column per class")
    p.add_argument("--out", metavar="FILE.csv", help="write the CSV here (default: stdout)")

    # ---- gradcheck
    p = command("gradcheck", "check back-propagation against finite differences on your data",
                GRADCHECK_EPILOG)
    p.set_defaults(func=cmd_gradcheck)
    p.add_argument("data", nargs="?", metavar="DATA", help="data file (default: digits)")
    p.add_argument("--labels", metavar="PATH", help="labels file for DATA")
    p.add_argument("--target", metavar="COLUMN", help="label column of a table")
    _table_options(p)
    p.add_argument("--dataset", metavar="NAME", choices=("digits", "spiral"),
                   help="a built-in data set instead of DATA")
    p.add_argument("--hidden", type=_positive_int, default=32, metavar="N",
                   help="hidden units of the network checked (default: %(default)s)")
    p.add_argument("--rows", type=_positive_int, default=200, metavar="N",
                   help="use a random subsample of this many rows (default: %(default)s)")
    p.add_argument("--checks", type=_positive_int, default=300, metavar="N",
                   help="weights checked per matrix, chosen at random (default: %(default)s)")
    p.add_argument("--alpha", type=_nonnegative_float, default=1e-3, metavar="F",
                   help="L2 penalty included in the loss (default: %(default)s)")
    p.add_argument("--eps", type=_positive_float, default=1e-4, metavar="F",
                   help="finite-difference step (default: %(default)s)")
    p.add_argument("--seed", type=_seed, default=0, metavar="N",
                   help="random seed (default: %(default)s)")

    # ---- info
    p = command("info", "show a model file's shapes, classes, settings and training summary",
                INFO_EPILOG)
    p.set_defaults(func=cmd_info)
    p.add_argument("model", metavar="MODEL", help="a model saved by 'relunet train --out'")

    # ---- export
    p = command("export", "write a model as ONNX, for onnxruntime and other ONNX engines",
                EXPORT_EPILOG)
    p.set_defaults(func=cmd_export)
    p.add_argument("model", metavar="MODEL", help="a model saved by 'relunet train --out'")
    p.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write")
    p.add_argument("--opset", type=_positive_int, metavar="N",
                   help="ai.onnx opset (default: 17, or 19 for models with text inputs)")
    return parser


def _table_options(group, *, train=False):
    """The table-reading flags; training also gets the column and preparation choices."""
    from .tables import separator

    group.add_argument("--sep", metavar="CHAR", type=separator,
                       help="column separator of a CSV (default: sniffed among , ; tab |)")
    group.add_argument("--decimal", metavar="CHAR", choices=(".", ","),
                       help="decimal mark of a CSV: . or , (default: sniffed)")
    if not train:
        return
    group.add_argument("--id", metavar="COLUMN", action="append", dest="ids",
                       help="an identifier column: not a feature; copied to predict's "
                            "output (repeatable)")
    group.add_argument("--drop", metavar="COLUMN", nargs="+", action="extend",
                       help="leave these columns out")
    group.add_argument("--impute", choices=("median", "mean", "drop-rows", "none"),
                       default="median",
                       help="missing numbers: fill with the training median/mean (plus a "
                            "missing-indicator column), drop those rows, or refuse them "
                            "(default: %(default)s); missing text is always a category of "
                            "its own")
    group.add_argument("--min-frequency", type=_positive_int, default=5, metavar="N",
                       help="text values seen in fewer training rows are grouped as one "
                            "'infrequent' category (default: %(default)s)")


# ------------------------------------------------------------------------------ entry point


def main(argv=None):
    """Run the ``relunet`` command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    from ._signals import Terminated, signals_as_exceptions
    from .io import metadata_cache

    debug = getattr(args, "debug", False)
    from .data import PipeGuard

    guard = PipeGuard(sys.stdout)
    sys.stdout = guard
    try:
        with signals_as_exceptions(), metadata_cache(), warnings.catch_warnings():
            if not debug:
                warnings.simplefilter("ignore", category=DeprecationWarning)
                # numpy data for a model that knows its column names (or the reverse):
                # the columns were matched by name or by count already
                warnings.filterwarnings("ignore", message=".*feature names", category=UserWarning)
            status = args.func(args) or EXIT_OK
            guard.flush()  # the output is out while a signal still ends the command cleanly
            return status
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated as exc:  # SIGTERM, SIGHUP: temporary files are gone, as on Ctrl-C
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except BrokenPipeError:  # `relunet predict ... | head`
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return EXIT_OK
    except Exception as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {_describe(exc)}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if sys.stdout is guard:
            sys.stdout = guard.stream


def _describe(exc):
    """One line saying what went wrong, for the user."""
    from .data import DataError, MissingDependency
    from .train import TrainingDiverged

    if isinstance(exc, CLIError | DataError | MissingDependency | TrainingDiverged):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        what = (f"{_OS_ERRORS[exc.errno]} ({exc.strerror})" if exc.errno in _OS_ERRORS
                else exc.strerror)
        text = f"{where}: {what}" if where else what
    elif isinstance(exc, MemoryError):
        text = ("out of memory; try fewer rows, a smaller --hidden or --batch-size, or (for a "
                "table) fewer one-hot columns: raise --min-frequency or --drop a text column")
    elif isinstance(exc, ValueError) or type(exc).__name__ == "ModelFileError":
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc} (unexpected; run with --debug for the traceback)"
    from ._text import printable

    return printable(" ".join(text.split()), backslashes=False) or type(exc).__name__


# What an OSError means for the user, in words, before the system's own terse text.
_OS_ERRORS = {
    errno.ENOSPC: "cannot write: the disk is full",
    errno.EDQUOT: "cannot write: the disk quota is used up",
    errno.EFBIG: "cannot write: the file is too large for this file system",
    errno.EROFS: "cannot write: the file system is read-only",
    errno.EIO: "the disk or network file system failed",
    errno.ENOTDIR: "a part of the path is not a directory",
}


# ------------------------------------------------------------------------------ helpers


def _save_model(model, path, table=None):
    """``relunet.save`` into a temporary file, renamed onto ``path`` when complete."""
    import relunet

    from .data import atomic_path

    with atomic_path(path, suffix=".tmp.npz") as tmp:
        if table is None:
            relunet.save(model, tmp)
        else:
            relunet.save(model, tmp, table=table)


def _load_model(path):
    import relunet

    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a directory, not a model file")
    return relunet.load(path)


def _network(model):
    steps = getattr(model, "steps", None)
    return steps[-1][1] if steps else model


def _table_meta(path):
    """The ``table`` facts saved with a model (label column, id columns), or {}."""
    with contextlib.suppress(Exception):
        from . import io as model_io

        return model_io.read_metadata(path).get("table") or {}
    return {}


def _feature_names(model, path):
    """The feature names saved with ``model`` (None when it was trained on arrays)."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        with contextlib.suppress(Exception):
            from . import io as model_io

            names = model_io.read_metadata(path).get("feature_names")
    return None if names is None else [str(n) for n in names]


def _fmt(value, spec=".4f"):
    from .display import fmt

    return fmt(value, spec)


def _print_table(title, header, rows, stream=None):
    from .display import print_table

    print_table(title, header, rows, stream)


def _say(args, *lines):
    from ._text import printable

    if not getattr(args, "quiet", False):
        for line in lines:  # names from files: control characters escaped
            print(printable(line), flush=True)


# ------------------------------------------------------------------------------ data


def _load_training_data(args):
    from .data import builtin, read_data

    if args.data is not None and args.dataset is not None:
        raise CLIError("give either a DATA file or --dataset, not both")
    if args.data is None:
        for opt in ("labels", "target", "test_labels", "ids", "drop", "sep", "decimal"):
            if getattr(args, opt, None) is not None and (args.dataset is None or opt in (
                    "ids", "drop", "sep", "decimal")):
                flag = {"ids": "--id"}.get(opt, "--" + opt.replace("_", "-"))
                raise CLIError(f"{flag} needs a DATA file" + (
                    " (give DATA before --drop COLUMN...)" if opt == "drop" else ""))
        return builtin(args.dataset or "digits", seed=getattr(args, "seed", 0))
    return read_data(args.data, labels=args.labels, target=args.target, **_read_options(args))


def _read_options(args, **more):
    """The table-reading options given on the command line (only those given)."""
    opts = {key: getattr(args, key, None) for key in ("sep", "decimal", "ids", "drop")}
    opts.update(more)
    return {k: v for k, v in opts.items() if v}


def _describe_data(ds):
    classes = np.unique(ds.y) if ds.y is not None else []
    shown = ", ".join(str(c) for c in classes[:10]) + (", ..." if len(classes) > 10 else "")
    return (f"{ds.source}: {ds.X.shape[0]} rows, {ds.X.shape[1]} features, "
            f"{len(classes)} classes ({shown})")


def _split(args, ds):
    """(X_train, y_train, X_test, y_test): --test-data, a stratified split, or no test set."""
    from .data import split_rows
    from .tables import align_labels, read_test

    if args.test_data is not None:
        test = read_test(args.test_data, ds, labels=args.test_labels, target=args.target,
                         impute=getattr(args, "impute", "median"), **_read_options(args, ids=None,
                                                                                    drop=None))
        return ds.X, ds.y, test.X, align_labels(test.y, np.unique(ds.y))
    if args.test_labels is not None:
        raise CLIError("--test-labels needs --test-data")
    if args.test_fraction == 0:
        return ds.X, ds.y, None, None
    X_tr, X_te, y_tr, y_te, stratified = split_rows(ds, args.test_fraction, args.seed)
    args.split_how = "stratified" if stratified else "at random: classes too small to stratify"
    if not stratified and not args.quiet:
        print("warning: the classes are too small for a stratified split; "
              "splitting at random", file=sys.stderr)
    return X_tr, y_tr, X_te, y_te


def _make_model(args, callback):
    import relunet

    net = relunet.ReluNetClassifier(
        hidden_units=args.hidden,
        max_iter=args.epochs,
        batch_size=args.batch_size,
        learning_rate_init=args.learning_rate,
        learning_rate=args.schedule,
        momentum=args.momentum,
        alpha=args.alpha,
        solver=args.solver,
        early_stopping=args.early_stopping,
        validation_fraction=args.validation_fraction,
        n_iter_no_change=args.patience,
        class_weight=args.class_weight,
        dtype=args.dtype,
        random_state=args.seed,
        callback=callback,
    )
    return net


def _named(X, names):
    """``X`` as a DataFrame with the table's column names, so the model records them."""
    if X is None or not names or hasattr(X, "columns"):
        return X
    import pandas as pd

    return pd.DataFrame(X, columns=list(names))


def _log_loss(model, X, y):
    """Mean cross-entropy of ``model`` on ``(X, y)``; None if a label is not a model class."""
    from sklearn.metrics import log_loss

    classes = _network(model).classes_
    if X is None or len(X) == 0 or not np.isin(y, classes).all():
        return None
    return float(log_loss(y, model.predict_proba(X), labels=classes))


# ------------------------------------------------------------------------------ train


def cmd_train(args):
    from .data import check_destination, write_json
    from .tablechecks import check_outputs
    from .tables import complete_rows, describe, label_line, make_model, quote

    outputs = {"--out": args.out, "--metrics": args.metrics, "--plots": args.plots}
    for flag, path in outputs.items():
        if path is not None:  # fail before training, not after
            check_destination(path, flag, directory=flag == "--plots")
    check_outputs({"data": args.data, "--test-data": args.test_data, "--labels": args.labels,
                   "--test-labels": args.test_labels}, outputs)
    if getattr(args, "dask", None):  # the workers read the files; the data never come here
        from .dask import run_cli

        return run_cli(args)
    if args.plots is not None:
        from .plots import require_matplotlib

        require_matplotlib()
    ds = _load_training_data(args)
    _say(args, *describe(ds))
    if args.quiet and getattr(ds, "label", None) is not None:  # always say which column
        print(label_line(ds), file=sys.stderr)  # of a table is the label (not --labels FILE)
    ds, note = complete_rows(ds, getattr(args, "impute", "median"))
    _say(args, *note)
    if ds.is_table:  # the one-hot columns must fit in memory
        from .tablechecks import check_onehot_width

        check_onehot_width(ds, getattr(args, "min_frequency", 5))
    classes = np.unique(ds.y)
    if ds.is_table and ds.ids is not None:  # refused now, not at every later predict
        from .tablechecks import check_id_columns

        check_id_columns(ds.ids.columns, classes, proba=True)
    if len(classes) < 2:
        raise CLIError(
            f"{ds.source}: all {ds.X.shape[0]} rows have the same label ({quote(classes[0])}); "
            f"a classifier needs at least two classes"
        )
    X_tr, y_tr, X_te, y_te = _split(args, ds)
    if len(np.unique(y_tr)) < 2:
        raise CLIError("the training part of the split has only one class")
    _say(args, _describe_data(ds))
    if X_te is not None:
        _say(args, f"train/test: {len(X_tr)}/{len(X_te)} rows"
                   + ("" if args.test_data else f" ({args.split_how}, --test-fraction "
                                                 f"{args.test_fraction}, --seed {args.seed})"))

    # A table's column names go in with the data: the model records them, and predict
    # later picks the same columns by name.
    Xtr_in, Xte_in = _named(X_tr, ds.feature_names), _named(X_te, ds.feature_names)
    if args.scale != "none":  # the scaler's sums of squares must not overflow (float64)
        from .train import check_input_range

        numeric = X_tr[list(ds.numeric)] if ds.is_table else X_tr
        check_input_range(numeric, np.float64,
                          list(ds.numeric) if ds.is_table else ds.feature_names,
                          n_terms=len(X_tr),
                          what=f"dtype of --scale {args.scale}'s sums of squares")
    from .display import TrainingDisplay, ctrl_c, print_summary, test_evaluator

    model = None
    display = TrainingDisplay(args.epochs, quiet=args.quiet, log_every=args.log_every,
                              evaluate=test_evaluator(lambda: model, Xte_in, y_te, y_tr))
    model = make_model(_make_model(args, display), ds, scale=args.scale,
                       impute=getattr(args, "impute", "median"),
                       min_frequency=getattr(args, "min_frequency", 5))
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # a ConvergenceWarning at max_iter: reported below
        with display, _blas_threads(args.threads), ctrl_c(display):
            model.fit(Xtr_in, y_tr)
    if display.aborted:
        raise KeyboardInterrupt  # second Ctrl-C: nothing is saved
    for w in caught:
        if w.category.__name__ == "DivergenceWarning":
            print(f"warning: {w.message}", file=sys.stderr)
    wall = time.perf_counter() - t0
    net = _network(model)
    net.set_params(callback=None)  # a closure over the terminal does not belong in a file
    interrupted = display.stop_requested or bool(getattr(net, "interrupted_", False))
    if interrupted:
        p = display.last_progress
        where = f" in epoch {p.epoch} after {p.rows_done}/{p.rows_total} rows" if p else ""
        net.interrupted_, net.stop_reason_ = True, f"interrupted (Ctrl-C){where}"

    train_acc = float(model.score(Xtr_in, y_tr))
    test_acc = None if X_te is None else float(np.mean(model.predict(Xte_in) == y_te))
    history = display.history()
    net.history_ = [{**h, **display.extra.get(h["epoch"], {})} for h in net.history_]
    loss_curve = list(getattr(net, "loss_curve_", []))
    epochs = int(getattr(net, "n_iter_", len(history)))
    fit_seconds = float(getattr(net, "fit_seconds_", wall))
    best_val = getattr(net, "best_validation_score_", None)
    best_epoch = next((r["epoch"] for r in history if best_val is not None
                       and r.get("val_accuracy") == best_val), None)
    penalty = args.alpha / 2 * float(np.vdot(net.W1_, net.W1_) + np.vdot(net.W2_, net.W2_))
    metrics = {
        "data": ds.source,
        "n_train": int(len(X_tr)),
        "n_test": 0 if X_te is None else int(len(X_te)),
        "n_features": int(ds.X.shape[1]),
        "n_inputs": int(net.n_features_in_),
        "label_column": ds.label,
        "id_columns": list(getattr(args, "ids", None) or []),
        "numeric_columns": ds.numeric,
        "text_columns": ds.categorical,
        "classes": [c.item() if hasattr(c, "item") else c for c in net.classes_],
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "train_loss": float(loss_curve[-1]) if loss_curve else None,
        "train_log_loss": _log_loss(model, Xtr_in, y_tr),
        "test_log_loss": _log_loss(model, Xte_in, y_te),
        "best_validation_accuracy": best_val,
        "best_epoch": best_epoch,
        "epochs": epochs,
        "stop_reason": getattr(net, "stop_reason_", None),
        "interrupted": interrupted,
        "fit_seconds": fit_seconds,
        "settings": {k: getattr(args, k, None) for k in (
            "hidden", "epochs", "batch_size", "learning_rate", "schedule", "momentum",
            "alpha", "solver", "early_stopping", "validation_fraction", "patience",
            "class_weight", "dtype", "threads", "scale", "seed", "impute", "min_frequency")},
        "history": history,
    }

    if not args.quiet:
        print_summary(metrics, penalty=penalty, saved=args.out is not None)
    if args.out is not None:
        table = None
        if ds.is_table:
            table = {"label": ds.label, "ids": list(getattr(args, "ids", None) or []),
                     "impute": args.impute}
        _save_model(model, args.out, table)
        _say(args, f"model saved to {args.out}")
    if args.metrics is not None:
        write_json(args.metrics, metrics)
        _say(args, f"metrics written to {args.metrics}")
    if args.plots is not None:
        from .plots import write_plots

        shape = ds.image_shape  # tiles only when the network's inputs are the pixels
        if shape is not None and int(np.prod(shape)) != int(net.n_features_in_):
            shape = None
        settings = (f"H={args.hidden}, {args.solver} lr {args.learning_rate:g} {args.schedule}, "
                    f"batch {args.batch_size}, alpha {args.alpha:g}, {epochs} epochs")
        written = write_plots(args.plots, model, X_tr, y_tr, X_te, y_te,
                              image_shape=shape, feature_names=ds.feature_names,
                              subtitle=f"{os.path.basename(ds.source)}: {settings}")
        _say(args, f"plots written to {os.path.join(args.plots, '')}: "
                   + ", ".join(os.path.basename(p) for p, _ in written))
    return EXIT_INTERRUPTED if interrupted else EXIT_OK


@contextlib.contextmanager
def _blas_threads(n):
    """At most ``n`` threads for training (the trainer uses as many as BLAS may)."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield


# ------------------------------------------------------------------------------ evaluate


def _model_data(args, model, *, need_labels):
    """Read ``args.data`` for ``model``: its feature columns, or its number of features.

    Returns the Dataset and its features as the model takes them (named columns when the
    model was trained on a table).
    """
    from .tables import read_for_model

    net = _network(model)
    n_features = int(net.n_features_in_)
    names = _feature_names(model, args.model)
    ds = read_for_model(args.data, model, names, _table_meta(args.model),
                        labels=getattr(args, "labels", None), target=args.target,
                        need_labels=need_labels, **_read_options(args))
    from ._text import printable

    for note in ds.notes:  # stderr: predict's CSV may be on stdout
        print(f"note: {printable(note)}", file=sys.stderr)
    if ds.is_table and names is not None:
        return ds, ds.X  # the model's columns, by name
    if ds.X.shape[1] != n_features:
        raise CLIError(
            f"{args.data}: {ds.X.shape[1]} feature columns, but the model was trained on "
            f"{n_features}" + ("" if need_labels or ds.feature_names is None
                               else " (use --target to drop a label column)")
        )
    return ds, _named(ds.X, names if ds.feature_names else None)


def cmd_evaluate(args):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    from ._text import printable
    from .data import check_destination, write_json
    from .tablechecks import check_outputs, check_prepared
    from .tables import align_labels

    if args.metrics is not None:
        check_destination(args.metrics, "--metrics")
    check_outputs({"model": args.model, "data": args.data, "--labels": args.labels},
                  {"--metrics": args.metrics})
    model = _load_model(args.model)
    net = _network(model)
    ds, X = _model_data(args, model, need_labels=True)
    check_prepared(model, X, ds)
    classes = np.asarray(net.classes_)
    y = align_labels(ds.y, classes)
    pred = model.predict(X)
    accuracy = float(np.mean(pred == y))
    unknown = sorted({str(v) for v in np.unique(y)} - {str(c) for c in classes})
    labels = classes if not unknown else np.unique(np.concatenate([classes.astype(str),
                                                                   y.astype(str)]))
    if unknown:
        y, pred = y.astype(str), pred.astype(str)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0
    )
    matrix = confusion_matrix(y, pred, labels=labels)

    print(f"{args.data}: {len(y)} rows"
          + (f", label column {ds.label!r}" if getattr(ds, "label", None) else ""))
    print(f"accuracy: {accuracy:.4f}  ({int(np.sum(pred == y))}/{len(y)} correct)")
    if unknown:
        print(f"warning: labels the model never saw: {', '.join(map(printable, unknown))}",
              file=sys.stderr)
    print()
    rows = [(printable(c), f"{p:.4f}", f"{r:.4f}", f"{f:.4f}", int(s))
            for c, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)]
    _print_table("per class", ("class", "precision", "recall", "f1", "support"), rows)
    print()
    names = [printable(c) for c in labels]
    _print_table("confusion matrix (rows: true class, columns: predicted)",
                 ("true \\ predicted", *names),
                 [(n, *row) for n, row in zip(names, matrix.tolist(), strict=True)])
    if args.metrics is not None:
        write_json(args.metrics, {
            "data": args.data,
            "model": args.model,
            "n_samples": int(len(y)),
            "accuracy": accuracy,
            "log_loss": _log_loss(model, X, y),
            "classes": [str(c) if unknown else c for c in labels.tolist()],
            "per_class": {
                str(c): {"precision": float(p), "recall": float(r), "f1": float(f),
                         "support": int(s)}
                for c, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
            },
            "confusion_matrix": matrix.tolist(),
        })
        print(f"\nmetrics written to {args.metrics}")
    return EXIT_OK


# ------------------------------------------------------------------------------ predict


def cmd_predict(args):
    from ._text import printable
    from .data import atomic_open, check_destination, write_predictions
    from .tablechecks import check_id_columns, check_outputs, check_prepared

    if args.out is not None:
        check_destination(args.out, "--out")
    check_outputs({"model": args.model, "data": args.data}, {"--out": args.out})
    model = _load_model(args.model)
    classes = _network(model).classes_
    ds, X = _model_data(args, model, need_labels=False)
    check_prepared(model, X, ds)
    ids = ds.ids if ds.is_table else None
    check_id_columns([] if ids is None else ids.columns, classes, proba=args.proba)
    pred = model.predict(X)
    proba = model.predict_proba(X) if args.proba else None
    if args.out is None:  # names from the model file escaped on stdout (a terminal, perhaps)
        write_predictions(sys.stdout, pred, ids=ids, proba=proba, classes=classes,
                          text=printable)
        sys.stdout.flush()
    else:
        with atomic_open(args.out) as fh:
            write_predictions(fh, pred, ids=ids, proba=proba, classes=classes)
        print(f"{len(pred)} predictions written to {args.out}", file=sys.stderr)
    return EXIT_OK


# ------------------------------------------------------------------------------ gradcheck


def cmd_gradcheck(args):
    from sklearn.preprocessing import StandardScaler

    from .gradcheck import check_gradients
    from .network import init_params

    ds = _load_training_data(args)
    rng = np.random.default_rng(args.seed)
    X, y = ds.X, ds.y
    if ds.is_table:  # the network sees the prepared columns
        from .tables import build_preparation

        X = build_preparation(ds.numeric, ds.categorical).fit_transform(X)
    if X.shape[0] > args.rows:
        keep = np.sort(rng.choice(X.shape[0], size=args.rows, replace=False))
        X, y = X[keep], y[keep]
    classes, y_idx = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise CLIError(f"{ds.source}: the rows checked have only one class; need two or more")
    X = StandardScaler().fit_transform(X.astype(np.float64))
    params = init_params(X.shape[1], args.hidden, len(classes), rng=rng)
    print(f"{ds.source}: {X.shape[0]} rows (standardised), D={X.shape[1]}, H={args.hidden}, "
          f"K={len(classes)}, alpha={args.alpha:g}")
    t0 = time.perf_counter()
    err = check_gradients(params, X, y_idx, args.alpha, eps=args.eps, max_checks=args.checks,
                          rng=args.seed)
    seconds = time.perf_counter() - t0
    print(f"checked {err.n_checked} weights, fourth-order central differences, step {args.eps:g}")
    if err.n_skipped:
        print(f"  ({err.n_skipped} W1 weights left out: their step crosses a ReLU kink, "
              "where the loss has no derivative)")
    for block, value in err.errors.items():
        print(f"  {block:<8} max relative error {value:.2e}")
    print(f"  {'overall':<8} max relative error {float(err):.2e}")
    print(f"time: {seconds:.1f} s")
    if err < 1e-6:
        print("verdict: OK - back-propagation agrees with finite differences")
        return EXIT_OK
    raise CLIError(f"gradient check failed: max relative error {float(err):.2e} "
                   "(expected below 1e-6)")


# ------------------------------------------------------------------------------ info


def cmd_info(args):
    from . import io as model_io
    from .display import describe_model

    model = _load_model(args.model)
    meta = model_io.read_metadata(args.model)
    for line in describe_model(args.model, model, meta, _feature_names(model, args.model)):
        print(line)
    return EXIT_OK


# ------------------------------------------------------------------------------ export


def cmd_export(args):
    from .data import require

    require("onnx", "onnx", "relunet export")
    from .onnx_export import describe_onnx, save_onnx

    model = _load_model(args.model)
    proto = save_onnx(model, args.out, opset=args.opset)
    print(f"wrote {args.out}: {describe_onnx(proto)}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
