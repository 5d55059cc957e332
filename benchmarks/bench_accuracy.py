"""Accuracy, wall time and time to a target accuracy per system, on the same splits.

Systems:

* **relunet CLI defaults**: ``relunet train`` with only ``--hidden``/``--epochs`` given (run as
  a subprocess on Fashion-MNIST; on the small tables, the CLI's own model built in-process
  from its default flags, ``cli._make_model``).
* **MLPClassifier defaults**: scikit-learn's ``MLPClassifier(random_state=seed)`` after a
  ``StandardScaler`` (on Fashion-MNIST run epoch by epoch with ``partial_fit``, which is
  its ``fit`` one epoch at a time, so that its test accuracy per epoch is known; capped at
  ``--mlp-epochs``).
* **PyTorch reference** (if ``torch`` imports; on the tables only with ``--torch-tables``): the
  same network (D -> H ReLU -> K, softmax cross-entropy, L2 ``alpha`` on all weights as
  Adam's ``weight_decay``), Adam 1e-3, a cosine schedule over the epochs, batch 128 (the
  tables: the relunet defaults' batch), standardised inputs.

Fashion-MNIST (60 000 training images, the official 10 000 test images) is used when its IDX
files are found (``--fmnist DIR``, default ``$RELUNET_FMNIST`` or
``/work/data/fmnist/usr/share/datasets/fashion-mnist``; Debian's ``dataset-fashion-mnist``
package has them); otherwise it is skipped with a message.  Every system evaluates the test
set after each epoch (included in its time); "time to target" is the wall time until the
first epoch whose test accuracy reaches ``--target`` (0.89).

The small tables (iris, wine, breast cancer, digits) use ``--seeds`` stratified 75/25 splits,
the same for every system; mean test accuracy and total fit time are reported.

Run by hand (minutes; Fashion-MNIST at H=1024 dominates)::

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


def _time_to(curve, target):
    """Seconds until the first epoch with test accuracy >= target (None if never)."""
    elapsed = 0.0
    for seconds, acc in curve:
        elapsed += seconds
        if acc is not None and acc >= target:
            return elapsed
    return None


# ------------------------------------------------------------------------ Fashion-MNIST


def relunet_cli_fmnist(folder, hidden, epochs, extra=()):
    paths = [os.path.join(folder, f) for f in FILES]
    with tempfile.TemporaryDirectory() as tmp:
        metrics = os.path.join(tmp, "m.json")
        cmd = ["relunet", "train", paths[0], "--labels", paths[1], "--test-data", paths[2],
               "--test-labels", paths[3], "--hidden", str(hidden), "--epochs", str(epochs),
               "--metrics", metrics, "--quiet", *extra]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall = time.perf_counter() - t0
        with open(metrics) as fh:
            m = json.load(fh)
    curve = [(r["seconds"], r.get("test_accuracy")) for r in m["history"]]
    return {"accuracy": m["test_accuracy"], "seconds": m["fit_seconds"], "wall": wall,
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
    from sklearn.neural_network import MLPClassifier

    Xtr, ytr, Xte, yte = data
    t0 = time.perf_counter()
    Xs, Xts = _scaled(Xtr, Xte)
    model = MLPClassifier(random_state=seed)
    classes = np.unique(ytr)
    curve, last = [], time.perf_counter()
    for _ in range(epochs):
        model.partial_fit(Xs, ytr, classes=classes)
        acc = float(model.score(Xts, yte))
        now = time.perf_counter()
        curve.append((now - last, acc))
        last = now
    return {"accuracy": curve[-1][1], "seconds": time.perf_counter() - t0, "curve": curve}


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
    return {"accuracy": curve[-1][1], "seconds": time.perf_counter() - t0, "curve": curve}


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
    data = load_fmnist(folder)
    if _has_torch():
        for hidden in args.torch_hidden:
            add(f"PyTorch Adam+cosine, H={hidden}, {args.epochs} epochs, batch 128",
                torch_recipe(*data, hidden, args.epochs, 128))
    else:
        print("  PyTorch not importable: its reference row skipped")
    if args.mlp_epochs > 0:
        add(f"MLPClassifier defaults (H=100), {args.mlp_epochs} epochs",
            mlp_fmnist(data, args.mlp_epochs))
    results["fashion_mnist"] = [{"system": n, **r} for n, r in rows]


# ------------------------------------------------------------------------ small tables


def _has_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def run_tables(args, results):
    from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from relunet import cli
    from relunet.train import auto_batch_size

    def relunet_defaults(seed, n):
        parsed = cli.build_parser().parse_args(["train", "--seed", str(seed)])
        return cli._make_model(parsed, None)

    def mlp(seed, n):
        return make_pipeline(StandardScaler(), MLPClassifier(random_state=seed))

    systems = {"relunet CLI defaults": relunet_defaults, "MLPClassifier defaults": mlp}
    have_torch = _has_torch()
    print(f"small tables, {args.seeds} stratified 75/25 splits", flush=True)
    table = {}
    for name, loader in (("iris", load_iris), ("wine", load_wine),
                         ("breast cancer", load_breast_cancer), ("digits", load_digits)):
        X, y = loader(return_X_y=True)
        acc = {s: [] for s in systems}
        secs = dict.fromkeys(systems, 0.0)
        if have_torch and args.torch_tables:
            acc["PyTorch recipe"], secs["PyTorch recipe"] = [], 0.0
        for seed in range(args.seeds):
            Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y,
                                                  random_state=seed)
            for s, make in systems.items():
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = make(seed, len(ytr)).fit(Xtr, ytr)
                secs[s] += time.perf_counter() - t0
                acc[s].append(float(model.score(Xte, yte)))
            if have_torch and args.torch_tables:
                r = torch_recipe(Xtr.astype(np.float32), ytr, Xte.astype(np.float32), yte, 100,
                                 200, auto_batch_size(len(ytr)), seed=seed)
                acc["PyTorch recipe"].append(r["accuracy"])
                secs["PyTorch recipe"] += r["seconds"]
        table[name] = {s: {"accuracy": float(np.mean(a)), "seconds": secs[s]}
                       for s, a in acc.items()}
        print("  " + name + ": " + ", ".join(f"{s} {v['accuracy']:.4f} ({v['seconds']:.1f} s)"
                                             for s, v in table[name].items()), flush=True)
    results["tables"] = table


def _fmt_s(value):
    return "never" if value is None else f"{value:.0f} s"


def markdown(results, target):
    lines = []
    if "fashion_mnist" in results:
        rows = results["fashion_mnist"]
        lines += ["| Fashion-MNIST system | test accuracy | time | time to "
                  f"{target} |", "|---|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['system']} | {r['accuracy']:.4f} | {r['seconds']:.0f} s | "
                         f"{_fmt_s(r['time_to_target'])} |")
        lines.append("")
    if "tables" in results:
        systems = list(next(iter(results["tables"].values())))
        lines += ["| data | " + " | ".join(systems) + " |",
                  "|---|" + "---:|" * len(systems)]
        for name, per in results["tables"].items():
            lines.append(f"| {name} | " + " | ".join(
                f"{per[s]['accuracy']:.4f} ({per[s]['seconds']:.1f} s)" for s in systems) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fmnist", default=FMNIST_DEFAULT, metavar="DIR")
    p.add_argument("--skip-fmnist", action="store_true")
    p.add_argument("--skip-tables", action="store_true")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--hidden", type=int, nargs="*", default=[256, 1024])
    p.add_argument("--torch-hidden", type=int, nargs="*", default=[256])
    p.add_argument("--mlp-epochs", type=int, default=10)
    p.add_argument("--torch-tables", action="store_true",
                   help="also the PyTorch recipe on the small tables (slow: Python per batch)")
    p.add_argument("--target", type=float, default=0.89)
    p.add_argument("--seeds", type=int, default=6)
    p.add_argument("--out", metavar="FILE.json")
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
