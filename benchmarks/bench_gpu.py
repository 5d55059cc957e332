"""relunet on GPU arrays (CuPy, PyTorch CUDA) vs a hand-written PyTorch training loop.

Same network (D -> H ReLU -> K, softmax cross-entropy, L2 on every weight), same float32
MNIST-shaped data (60 000 x 784, 10 classes, benchmarks/_common.make_data), same optimizer
(Adam, lr 1e-3, alpha 1e-4), same batch size, on the same GPU:

* ``relunet-torch``: ``ReluNetClassifier().fit(X, y)`` with X, y torch CUDA tensors under
  ``sklearn.config_context(array_api_dispatch=True)`` (relunet.arrayapi);
* ``relunet-cupy``: the same with CuPy arrays;
* ``torch-loop``: ``nn.Sequential(Linear, ReLU, Linear)``, ``CrossEntropyLoss``,
  ``torch.optim.Adam(weight_decay=alpha, foreach=True)``, a ``randperm`` per epoch and
  ``index_select`` batches: what a PyTorch user writes.

For each configuration (H = 256, 1024 x batch = 256, 4096) it prints the median seconds per
epoch (the first epoch of every fit dropped: warm-up, kernel compilation), the time relative
to the PyTorch loop (the goal: <= 1.0x), and then the equality check: a few steps in
float64 on each GPU library against relunet's NumPy float64 fit from the same seed
(max |dW| and max relative difference of the weights).

    python benchmarks/bench_gpu.py                          # everything, on CUDA (~2 min)
    python benchmarks/bench_gpu.py --epochs 4 --markdown gpu.md
    python benchmarks/bench_gpu.py --device cpu --n 3000    # a smoke run of the script
    python benchmarks/bench_gpu.py --device cpu --threads 1 --features 10 --hidden 8 \
        --batch 8 --n 2048 --reps 3
                                                            # per-step overhead only

Without CUDA (no torch with CUDA and no CuPy with a device) it says so and exits 0: it is a
hand-run script, nothing in CI runs it.  CuPy is optional; its rows are left out when it is
not installed.
"""

from __future__ import annotations

import os

# scikit-learn's array_api_dispatch needs SciPy's array-API mode, read when SciPy is imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import N_CLASSES, N_FEATURES, N_SAMPLES, make_data  # noqa: E402

HIDDEN = (256, 1024)
BATCHES = (256, 4096)
LR, ALPHA = 1e-3, 1e-4


def _torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def _cupy():
    try:
        import cupy
        cupy.cuda.runtime.getDeviceCount()
        cupy.zeros(1)
    except Exception:  # not installed, no driver, no device
        return None
    return cupy


def _sync(device):
    torch = sys.modules.get("torch")
    if torch is not None and device != "cpu" and torch.cuda.is_available():
        torch.cuda.synchronize()
    cupy = sys.modules.get("cupy")
    if cupy is not None and device != "cpu":
        cupy.cuda.get_current_stream().synchronize()


# ------------------------------------------------------------------------------------ fits
# Each returns the seconds of each epoch and the final training loss.


def fit_relunet(X, y, hidden, batch, epochs, dtype="float32", random_state=0, max_iter=None):
    import sklearn

    from relunet import ReluNetClassifier

    model = ReluNetClassifier(hidden_units=hidden, batch_size=batch, solver="adam",
                              learning_rate_init=LR, alpha=ALPHA, max_iter=max_iter or epochs,
                              tol=0.0, n_iter_no_change=epochs + 1, random_state=random_state,
                              dtype=dtype)
    with sklearn.config_context(array_api_dispatch=True), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached
        model.fit(X, y)
    return [e["seconds"] for e in model.history_], model.loss_curve_[-1], model


def fit_torch_loop(X, y, hidden, batch, epochs):
    import torch
    from torch import nn

    torch.manual_seed(0)
    device = X.device
    generator = torch.Generator(device=device).manual_seed(0)
    n, d = X.shape
    model = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, N_CLASSES))
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=ALPHA, foreach=True)
    loss_fn = nn.CrossEntropyLoss()
    seconds, loss_sum = [], None
    for _ in range(epochs):
        _sync(str(device))
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=generator, device=device)
        loss_sum = torch.zeros((), device=device)
        for start in range(0, n, batch):
            idx = perm[start : start + batch]
            xb, yb = torch.index_select(X, 0, idx), torch.index_select(y, 0, idx)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * idx.numel()
        final = float(loss_sum) / n  # one read per epoch, as relunet's loop does
        seconds.append(time.perf_counter() - t0)
    return seconds, final


# ----------------------------------------------------------------------------------- runs


def systems_for(device):
    """{name: (to_device(X, y), fit)} of the systems that can run on ``device``."""
    torch = _torch_cuda() if device != "cpu" else _import_torch()
    out = {}
    if torch is not None:
        def to_torch(X, y):
            return (torch.asarray(X, device=device),
                    torch.asarray(y.astype(np.int64), device=device))

        out["relunet-torch"] = (to_torch, fit_relunet)
        out["torch-loop"] = (to_torch, fit_torch_loop)
    cupy = _cupy() if device != "cpu" else None
    if cupy is not None:
        out["relunet-cupy"] = (lambda X, y: (cupy.asarray(X), cupy.asarray(y)), fit_relunet)
    return out


def _import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def timing(X, y, device, epochs, reps, hiddens=HIDDEN, batches=BATCHES):
    systems = systems_for(device)
    rows = []
    for hidden in hiddens:
        for batch in batches:
            times = {name: [] for name in systems}
            for _ in range(reps):  # interleaved: A/B/C, A/B/C, ...
                for name, (move, fit) in systems.items():
                    Xd, yd = move(X, y)
                    _sync(device)
                    seconds = fit(Xd, yd, hidden, batch, epochs)[0]
                    times[name].extend(seconds[1:])  # first epoch: warm-up
                    del Xd, yd
            med = {name: statistics.median(t) for name, t in times.items()}
            row = {"hidden": hidden, "batch": batch, "s_per_epoch": med}
            base = med.get("torch-loop")
            if base:
                row["x_torch_loop"] = {name: m / base for name, m in med.items()}
            rows.append(row)
            print(_row_text(row), flush=True)
    return rows


def equality(device, n=2048, batch=256, hidden=64):
    """float64, one epoch of ``n / batch`` steps: each GPU library vs NumPy's float64 fit."""
    from relunet import ReluNetClassifier

    X, y = make_data(n=n, seed=1)
    X = X.astype(np.float64)
    ref = ReluNetClassifier(hidden_units=hidden, batch_size=batch, solver="adam",
                            learning_rate_init=LR, alpha=ALPHA, max_iter=1, random_state=0,
                            dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(X, y)
    from relunet.arrayapi import to_numpy

    out = {}
    for name, (move, _) in systems_for(device).items():
        if not name.startswith("relunet"):
            continue
        Xd, yd = move(X, y)
        model = fit_relunet(Xd, yd, hidden, batch, 1, dtype="float64")[2]
        host = to_numpy(model)
        diff = max(float(np.max(np.abs(host.W1_ - ref.W1_))),
                   float(np.max(np.abs(host.W2_ - ref.W2_))))
        scale = max(float(np.max(np.abs(ref.W1_))), float(np.max(np.abs(ref.W2_))))
        out[name] = {"steps": -(-n // batch), "max_abs_diff": diff,
                     "max_diff_over_max_weight": diff / scale,
                     "loss_rel_diff": abs(model.loss_curve_[-1] - ref.loss_curve_[-1])
                     / abs(ref.loss_curve_[-1])}
        print(f"equality {name}: {out[name]}", flush=True)
    return out


def _row_text(row):
    parts = [f"H={row['hidden']:5d} batch={row['batch']:5d}"]
    for name, s in row["s_per_epoch"].items():
        ratio = row.get("x_torch_loop", {}).get(name)
        parts.append(f"{name} {s:.4f} s/epoch" + (f" ({ratio:.2f}x loop)" if ratio else ""))
    return " | ".join(parts)


def markdown(rows, eq, facts):
    names = list(rows[0]["s_per_epoch"]) if rows else []
    lines = [f"Run on {facts['date']}, {facts['gpu']}, {facts['libraries']}: float32, "
             f"{facts['n']} x {facts['features']}, {N_CLASSES} classes, Adam, median s/epoch "
             f"(first epoch dropped), x = time / PyTorch loop's.", "",
             "| H | batch | " + " | ".join(names) + " |",
             "|---:|---:|" + "---:|" * len(names)]
    for row in rows:
        cells = []
        for name in names:
            s = row["s_per_epoch"][name]
            ratio = row.get("x_torch_loop", {}).get(name)
            cells.append(f"{s:.4f}" + (f" ({ratio:.2f}x)" if ratio and name != "torch-loop"
                                       else ""))
        lines.append(f"| {row['hidden']} | {row['batch']} | " + " | ".join(cells) + " |")
    lines.append("")
    for name, e in eq.items():
        lines.append(f"- {name}, float64, {e['steps']} Adam steps vs NumPy float64: max |dW| "
                     f"{e['max_abs_diff']:.1e} ({e['max_diff_over_max_weight']:.1e} of the "
                     f"largest weight), loss relative difference {e['loss_rel_diff']:.1e}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="'cuda' (default), 'cuda:1', or 'cpu' "
                   "for a smoke run of the script (torch CPU only)")
    p.add_argument("--n", type=int, default=N_SAMPLES, help="training rows (default 60000)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per fit (first dropped)")
    p.add_argument("--reps", type=int, default=1, help="interleaved repetitions")
    p.add_argument("--hidden", type=int, nargs="+", default=list(HIDDEN), help="H values")
    p.add_argument("--batch", type=int, nargs="+", default=list(BATCHES), help="batch sizes")
    p.add_argument("--features", type=int, default=N_FEATURES,
                   help="D (default 784); tiny D, H and batch measure the per-step overhead")
    p.add_argument("--threads", type=int, help="torch CPU threads (smoke runs on a shared "
                   "machine: 1; more threads than free cores make torch spin)")
    p.add_argument("--markdown", help="also write the table as Markdown to this file")
    p.add_argument("--json", help="also write the raw numbers as JSON to this file")
    args = p.parse_args(argv)
    if args.epochs < 2:
        p.error("--epochs must be >= 2 (the first epoch is dropped)")

    if args.device != "cpu" and _torch_cuda() is None and _cupy() is None:
        print("bench_gpu: no CUDA device (neither torch with CUDA nor CuPy found one): "
              "nothing to measure; skipped.")
        return 0
    if not systems_for(args.device):
        print(f"bench_gpu: no array library for device {args.device!r}; skipped.")
        return 0

    torch = _import_torch()
    if args.threads and torch is not None:
        torch.set_num_threads(args.threads)
    gpu = "CPU (smoke run)"
    if args.device != "cpu":
        if torch is not None and torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(torch.device(args.device))
        else:
            gpu = _cupy().cuda.runtime.getDeviceProperties(0)["name"].decode()
    libs = [f"NumPy {np.__version__}"]
    if torch is not None:
        libs.append(f"PyTorch {torch.__version__}")
    if "cupy" in sys.modules:
        libs.append(f"CuPy {sys.modules['cupy'].__version__}")
    facts = {"date": datetime.date.today().isoformat(), "gpu": gpu, "libraries": ", ".join(libs),
             "n": args.n}
    print(f"bench_gpu: {facts}", flush=True)

    X, y = make_data(n=args.n, d=args.features)
    facts["features"] = args.features
    rows = timing(X, y, args.device, args.epochs, args.reps, args.hidden, args.batch)
    eq = equality(args.device)
    text = markdown(rows, eq, facts)
    print()
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"facts": facts, "timing": rows, "equality": eq}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
