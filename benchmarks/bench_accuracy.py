"""Accuracy, training time and time to a target accuracy per system, on the same splits.

Systems:

* **relunet CLI defaults**: ``relunet train`` with only ``--hidden``/``--epochs`` given (run as
  a subprocess on Fashion-MNIST and on the penguins-like CSV; on the other small tables the
  CLI's own model and preparation built in-process from its default flags:
  ``tables.make_model(cli._make_model(...))``, i.e. standardised inputs).
* **relunet tuned**: on Fashion-MNIST ``relunet train`` with the settings in ``TUNED``, chosen
  by ``benchmarks/tune_fmnist.py`` on a validation split of the training images (the test
  images play no part in the choice); on the small tables the CLI defaults' model inside a
  3-fold ``GridSearchCV`` over ``TABLE_GRID`` run on each training split.
* **MLPClassifier defaults**: scikit-learn's ``MLPClassifier(random_state=seed)`` after a
  ``StandardScaler`` (the penguins-like table: median imputation + scaling | one-hot of the
  text columns).  On Fashion-MNIST it runs epoch by epoch with ``partial_fit`` (its ``fit``
  one epoch at a time, so that its test accuracy per epoch is known) and stops by its own
  default rule: training loss not better by ``tol`` for ``n_iter_no_change`` epochs, or
  ``max_iter`` (200) epochs (``--mlp-epochs`` caps it lower).
* **PyTorch reference** (if ``torch`` imports; on the tables only with ``--torch-tables``): the
  same network (D -> H ReLU -> K, softmax cross-entropy, L2 ``alpha`` on all weights as
  Adam's ``weight_decay``), Adam 1e-3, a cosine schedule over the epochs, batch 128 (the
  tables: the relunet defaults' batch), standardised inputs.

Fashion-MNIST (60 000 training images, the official 10 000 test images) is used when its IDX
files are found (``--fmnist DIR``, default ``$RELUNET_FMNIST`` or
``/work/data/fmnist/usr/share/datasets/fashion-mnist``; Debian's ``dataset-fashion-mnist``
package has them); otherwise it is skipped with a message.  Every system evaluates the test
set after each epoch.  "time" is training time: the sum of the epochs' seconds, each with
its test scoring, after the data are loaded and scaled ("wall" in the JSON output adds
those, and for relunet's CLI the process start); "time to target" is the training time
until the first epoch whose test accuracy reaches ``--target`` (0.89).

The small tables (iris, wine, breast cancer, digits, and a penguins-like table made here:
344 rows, the label first, text columns, missing cells, a ``year`` column) use ``--seeds``
stratified 75/25 splits, the same for every system; mean test accuracy and total fit time
(over all splits) are reported, with the mean and standard error of the per-split
differences between relunet's defaults and ``MLPClassifier``.

Run by hand (about 10 minutes on a quiet 2-core machine, half of it the small tables' CV
grid; ``--no-tuned`` and ``--seeds`` shorten it)::

    python benchmarks/bench_accuracy.py --out bench_accuracy.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

FMNIST_DEFAULT = os.environ.get("RELUNET_FMNIST",
                                "/work/data/fmnist/usr/share/datasets/fashion-mnist")
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
# `relunet` as this interpreter runs it (whether or not its console script is on PATH)
RELUNET = (sys.executable, "-m", "relunet.cli")
# relunet tuned on Fashion-MNIST: the best of benchmarks/tune_fmnist.py's grid (validation
# split of the training images; 2026-11-30: 0.9027 against 0.9002 for the defaults at
# --hidden 1024 --epochs 30; the whole grid was within 0.896-0.903).  CLI flags.
TUNED = ("--hidden", "1024", "--epochs", "60", "--alpha", "0.001")
# relunet tuned on the small tables: GridSearchCV (3 folds of each training split) over
TABLE_GRID = {"alpha": [1e-4, 1e-3, 1e-2], "learning_rate_init": [1e-3, 3e-3]}


def _train_seconds(curve):
    """Training time: the epochs' seconds, each with its test scoring; not the loading and
    scaling of the data (the same for every system; relunet's CLI also reads the files)."""
    return float(sum(seconds for seconds, _ in curve))


def _time_to(curve, target):
    """Seconds until the first epoch with test accuracy >= target (None if never)."""
    elapsed = 0.0
    for seconds, acc in curve:
        elapsed += seconds
        if acc is not None and acc >= target:
            return elapsed
    return None


# ------------------------------------------------------------------------ Fashion-MNIST


def relunet_train(*argv):
    """``relunet train *argv --metrics FILE --quiet`` in a subprocess: (metrics, wall s)."""
    with tempfile.TemporaryDirectory() as tmp:
        metrics = os.path.join(tmp, "m.json")
        t0 = time.perf_counter()
        done = subprocess.run([*RELUNET, "train", *argv, "--metrics", metrics, "--quiet"],
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"relunet train failed: {done.stderr.strip()}")
        with open(metrics) as fh:
            return json.load(fh), wall


def relunet_cli_fmnist(folder, hidden, epochs, extra=()):
    paths = [os.path.join(folder, f) for f in FILES]
    size = [] if hidden is None else ["--hidden", str(hidden), "--epochs", str(epochs)]
    m, wall = relunet_train(paths[0], "--labels", paths[1], "--test-data", paths[2],
                            "--test-labels", paths[3], *size, *extra)
    curve = [(r["seconds"], r.get("test_accuracy")) for r in m["history"]]
    return {"accuracy": m["test_accuracy"], "seconds": _train_seconds(curve), "wall": wall,
            "curve": curve}


def load_fmnist(folder):
    from relunet.data import read_idx

    Xtr, ytr, Xte, yte = (read_idx(os.path.join(folder, f)) for f in FILES)
    Xtr = Xtr.reshape(len(Xtr), -1).astype(np.float32)
    Xte = Xte.reshape(len(Xte), -1).astype(np.float32)
    return Xtr, ytr.astype(np.intp), Xte, yte.astype(np.intp)


def _scaled(Xtr, Xte):
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(Xtr)
    return (scaler.transform(Xtr).astype(np.float32), scaler.transform(Xte).astype(np.float32))


def mlp_fmnist(data, epochs, seed=0):
    """``MLPClassifier()`` one epoch per ``partial_fit``, stopped by ``fit``'s own rule."""
    from sklearn.neural_network import MLPClassifier

    Xtr, ytr, Xte, yte = data
    t0 = time.perf_counter()
    Xs, Xts = _scaled(Xtr, Xte)
    model = MLPClassifier(random_state=seed)
    classes = np.unique(ytr)
    curve, last = [], time.perf_counter()
    for _ in range(min(epochs, model.max_iter)):
        model.partial_fit(Xs, ytr, classes=classes)
        acc = float(model.score(Xts, yte))
        now = time.perf_counter()
        curve.append((now - last, acc))
        last = now
        # fit's stopping rule (_fit_stochastic): the training loss has not improved by tol
        # for more than n_iter_no_change epochs; partial_fit keeps the count but never stops
        if model._no_improvement_count > model.n_iter_no_change:
            break
    return {"accuracy": curve[-1][1], "seconds": _train_seconds(curve), "curve": curve,
            "epochs": len(curve), "wall": time.perf_counter() - t0}


def torch_recipe(Xtr, ytr, Xte, yte, hidden, epochs, batch_size, seed=0, alpha=1e-4,
                 lr=1e-3):
    """The reference recipe in PyTorch: Adam + cosine over ``epochs``, same network."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    Xs, Xts = _scaled(Xtr, Xte)
    X, y = torch.from_numpy(Xs), torch.from_numpy(np.asarray(ytr, np.int64))
    Xt = torch.from_numpy(Xts)
    k = int(max(ytr.max(), yte.max())) + 1
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, k))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=alpha,  # + alpha*w: the
                           foreach=True)  # (foreach, index_select: bench_train's fastest)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)  # note's L2 term
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    curve, last = [], time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=gen)
        for start in range(0, len(X), batch_size):
            idx = perm[start:start + batch_size]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(torch.index_select(X, 0, idx)), torch.index_select(y, 0, idx)).backward()
            opt.step()
        sched.step()
        with torch.no_grad():
            acc = float((net(Xt).argmax(1).numpy() == yte).mean())
        now = time.perf_counter()
        curve.append((now - last, acc))
        last = now
    return {"accuracy": curve[-1][1], "seconds": _train_seconds(curve), "curve": curve,
            "wall": time.perf_counter() - t0}


def run_fmnist(args, results):
    folder = args.fmnist
    if not all(os.path.exists(os.path.join(folder, f)) for f in FILES):
        print(f"Fashion-MNIST skipped: its IDX files ({', '.join(FILES)}) are not in {folder} "
              "(apt-get download dataset-fashion-mnist; dpkg -x it; --fmnist DIR)")
        return
    rows = []

    def add(name, r):
        r["time_to_target"] = _time_to(r["curve"], args.target)
        rows.append((name, r))
        print(f"  {name}: test {r['accuracy']:.4f} in {r['seconds']:.0f} s; "
              f"to {args.target}: {_fmt_s(r['time_to_target'])}", flush=True)

    print(f"Fashion-MNIST ({folder})", flush=True)
    for hidden in args.hidden:
        add(f"relunet CLI defaults, --hidden {hidden} --epochs {args.epochs}",
            relunet_cli_fmnist(folder, hidden, args.epochs))
    if args.tuned:
        add("relunet tuned, " + " ".join(TUNED), relunet_cli_fmnist(folder, None, None, TUNED))
    data = load_fmnist(folder)
    if _has_torch():
        for hidden in args.torch_hidden:
            add(f"PyTorch Adam+cosine, H={hidden}, {args.epochs} epochs, batch 128",
                torch_recipe(*data, hidden, args.epochs, 128))
    else:
        print("  PyTorch not importable: its reference row skipped")
    if args.mlp_epochs > 0:
        r = mlp_fmnist(data, args.mlp_epochs)
        add(f"MLPClassifier defaults (H=100), stopped by its rule after {r['epochs']} epochs",
            r)
    results["fashion_mnist"] = [{"system": n, **r} for n, r in rows]


# ------------------------------------------------------------------------ small tables


def _has_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def penguins_like(seed=0):
    """A table shaped like the Palmer penguins survey (344 rows), made here (no download).

    Species counts, islands and per-species body measurements follow the published summary
    (Adelie 152, Chinstrap 68, Gentoo 124; Chinstrap only on Dream, Gentoo only on Biscoe);
    males larger by about one standard deviation.  As in the real file: the label first,
    text columns (``island``, ``sex``), 2 rows with every measurement missing, 11 missing
    ``sex`` values, a ``year`` column (2007-2009).
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    # mean and standard deviation of bill length, bill depth, flipper length, body mass
    stats = {"Adelie": ((38.8, 2.7), (18.3, 1.2), (190.0, 6.5), (3700.0, 460.0)),
             "Chinstrap": ((48.8, 3.3), (18.4, 1.1), (195.8, 7.1), (3733.0, 384.0)),
             "Gentoo": ((47.5, 3.1), (15.0, 1.0), (217.2, 6.5), (5076.0, 504.0))}
    islands = {"Adelie": (["Biscoe", "Dream", "Torgersen"], [44, 56, 52]),
               "Chinstrap": (["Dream"], [68]), "Gentoo": (["Biscoe"], [124])}
    rows = []
    for species, (names, counts) in islands.items():
        for island, count in zip(names, counts, strict=True):
            for _ in range(count):
                sex = rng.choice(["male", "female"])
                shift = 0.5 if sex == "male" else -0.5
                bill, depth, flipper, mass = (m + sd * (rng.standard_normal() + shift)
                                              for m, sd in stats[species])
                rows.append({"species": species, "island": island,
                             "bill_length_mm": round(bill, 1), "bill_depth_mm": round(depth, 1),
                             "flipper_length_mm": round(flipper),
                             "body_mass_g": round(mass / 25) * 25, "sex": sex,
                             "year": int(rng.integers(2007, 2010))})
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    measured = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
    frame.loc[[3, 271], measured] = np.nan
    frame.loc[rng.choice(np.setdiff1d(np.arange(len(frame)), [3, 271]), 9, replace=False),
              "sex"] = np.nan
    return frame


PENGUIN_NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g",
                   "year"]
PENGUIN_TEXT = ["island", "sex"]


def relunet_cli_table(train, test, target, seed=0):
    """``relunet train`` (defaults) on a table written as CSV files: (accuracy, fit seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, name) for name in ("train.csv", "test.csv")]
        train.to_csv(paths[0], index=False, na_rep="NA")
        test.to_csv(paths[1], index=False, na_rep="NA")
        m, _ = relunet_train(paths[0], "--test-data", paths[1], "--target", target, "--seed",
                             str(seed))
    return m["test_accuracy"], m["fit_seconds"]


def run_tables(args, results):
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import GridSearchCV, train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from relunet import cli, tables
    from relunet.train import auto_batch_size

    def cli_model(seed, table):
        parsed = cli.build_parser().parse_args(["train", "--seed", str(seed)])
        net = cli._make_model(parsed, None)
        if table:
            return tables.make_model(net, numeric=PENGUIN_NUMERIC, categorical=PENGUIN_TEXT)
        return tables.make_model(net)  # the CLI's --scale standard

    def relunet_tuned(seed, table):
        model = cli_model(seed, table)
        step = model.steps[-1][0]
        grid = {f"{step}__{name}": values for name, values in TABLE_GRID.items()}
        return GridSearchCV(model, grid, cv=3)

    def mlp(seed, table):
        if not table:
            return make_pipeline(StandardScaler(), MLPClassifier(random_state=seed))
        prepare = ColumnTransformer([
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
             PENGUIN_NUMERIC),
            ("text", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                   OneHotEncoder(handle_unknown="ignore")), PENGUIN_TEXT)])
        return make_pipeline(prepare, MLPClassifier(random_state=seed))

    systems = {"relunet CLI defaults": cli_model, "MLPClassifier defaults": mlp}
    if args.tuned:
        systems = {"relunet CLI defaults": cli_model, "relunet tuned (3-fold CV grid)":
                   relunet_tuned, "MLPClassifier defaults": mlp}
    have_torch = _has_torch()
    print(f"small tables, {args.seeds} stratified 75/25 splits", flush=True)
    penguins = penguins_like()
    data = [(name, *loader(return_X_y=True)) for name, loader in (
        ("iris", load_iris), ("wine", load_wine), ("breast cancer", load_breast_cancer),
        ("digits", load_digits))]
    data.append(("penguins-like", penguins.drop(columns="species"), penguins["species"]))
    table = {}
    for name, X, y in data:
        is_table = isinstance(X, pd.DataFrame)
        acc = {s: [] for s in systems}
        secs = dict.fromkeys(systems, 0.0)
        torch_here = have_torch and args.torch_tables and not is_table
        if torch_here:
            acc["PyTorch recipe"], secs["PyTorch recipe"] = [], 0.0
        for seed in range(args.seeds):
            Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y,
                                                  random_state=seed)
            for s, make in systems.items():
                if is_table and s == "relunet CLI defaults":  # the whole path: CSV files
                    a, seconds = relunet_cli_table(Xtr.assign(species=ytr),
                                                   Xte.assign(species=yte), "species", seed)
                    acc[s].append(a)
                    secs[s] += seconds
                    continue
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = make(seed, is_table).fit(Xtr, ytr)
                secs[s] += time.perf_counter() - t0
                acc[s].append(float(model.score(Xte, yte)))
            if torch_here:
                r = torch_recipe(Xtr.astype(np.float32), ytr, Xte.astype(np.float32), yte, 100,
                                 200, auto_batch_size(len(ytr)), seed=seed)
                acc["PyTorch recipe"].append(r["accuracy"])
                secs["PyTorch recipe"] += r["seconds"]
        table[name] = {s: {"accuracy": float(np.mean(a)), "seconds": secs[s],
                           "accuracies": [float(v) for v in a]} for s, a in acc.items()}
        print("  " + name + " (mean accuracy, total fit time): " + ", ".join(
            f"{s} {v['accuracy']:.4f} ({v['seconds']:.1f} s)" for s, v in table[name].items()),
            flush=True)
    results["tables"] = table


def _fmt_s(value):
    return "never" if value is None else f"{value:.0f} s"


PAIRED = "relunet defaults − MLPClassifier, per split (mean ± SE)"


def paired(per, a="relunet CLI defaults", b="MLPClassifier defaults"):
    """Mean and standard error of the per-split accuracy differences ``a - b`` (the same
    splits: a paired comparison), in test rows' percentage points."""
    if a not in per or b not in per or "accuracies" not in per[a]:
        return "–"
    d = np.subtract(per[a]["accuracies"], per[b]["accuracies"])
    se = d.std(ddof=1) / math.sqrt(len(d)) if len(d) > 1 else float("nan")
    return f"{100 * d.mean():+.2f} ± {100 * se:.2f} pt"


def markdown(results, target):
    lines = []
    if "fashion_mnist" in results:
        rows = results["fashion_mnist"]
        lines += ["| Fashion-MNIST system | test accuracy | training time | training time to "
                  f"{target} |", "|---|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['system']} | {r['accuracy']:.4f} | {r['seconds']:.0f} s | "
                         f"{_fmt_s(r['time_to_target'])} |")
        lines.append("")
    if "tables" in results:
        systems = list(dict.fromkeys(s for per in results["tables"].values() for s in per))
        lines += ["| data (mean test accuracy, total fit time over the splits) | "
                  + " | ".join(systems) + " | " + PAIRED + " |",
                  "|---|" + "---:|" * (len(systems) + 1)]
        for name, per in results["tables"].items():
            lines.append(f"| {name} | " + " | ".join(
                f"{per[s]['accuracy']:.4f} ({per[s]['seconds']:.1f} s)" if s in per else "–"
                for s in systems) + " | " + paired(per) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fmnist", default=FMNIST_DEFAULT, metavar="DIR",
                   help="folder with Fashion-MNIST's four IDX .gz files (default: %(default)s)")
    p.add_argument("--skip-fmnist", action="store_true", help="only the small tables")
    p.add_argument("--skip-tables", action="store_true", help="only Fashion-MNIST")
    p.add_argument("--epochs", type=int, default=30,
                   help="Fashion-MNIST epochs of relunet's defaults and the PyTorch recipe "
                        "(default: %(default)s)")
    p.add_argument("--hidden", type=int, nargs="*", default=[256, 1024],
                   help="hidden units of the relunet CLI-defaults rows (default: %(default)s)")
    p.add_argument("--torch-hidden", type=int, nargs="*", default=[256, 1024],
                   help="hidden units of the PyTorch rows (default: %(default)s)")
    p.add_argument("--no-tuned", dest="tuned", action="store_false",
                   help="leave out the relunet tuned rows")
    p.add_argument("--mlp-epochs", type=int, default=200,
                   help="at most this many MLPClassifier epochs on Fashion-MNIST (0: none; "
                        "default: %(default)s)")
    p.add_argument("--torch-tables", action="store_true",
                   help="also the PyTorch recipe on the small tables (slow: Python per batch)")
    p.add_argument("--target", type=float, default=0.89,
                   help="test accuracy for the 'time to target' column (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=20,
                   help="stratified 75/25 splits of each small table (with 6, orderings "
                        "flipped between runs on differences of one or two test rows; default: "
                        "%(default)s)")
    p.add_argument("--out", metavar="FILE.json", help="also write every figure as JSON")
    args = p.parse_args(argv)
    results = {"machine": f"{os.cpu_count()} CPUs", "target": args.target}
    if not args.skip_tables:
        run_tables(args, results)
    if not args.skip_fmnist:
        run_fmnist(args, results)
    print()
    print(markdown(results, args.target))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1, default=lambda v: None if v is None else
                      (float(v) if math.isfinite(v) else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
