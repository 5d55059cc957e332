"""Training speed per epoch: relunet vs PyTorch (CPU) vs scikit-learn's MLPClassifier.

Same network (D -> H ReLU -> K, softmax cross-entropy), same float32 data, same optimizer,
batch size and L2 strength, in one process, interleaved A/B/C/A/B/C over ``--reps``
repetitions.  For each system it prints the median seconds per epoch (first epoch of every
fit dropped: warm-up), the time relative to relunet, the achieved GFLOP/s (issue #5's count,
4·N·D·H + 6·N·H·K per epoch) and that rate as a percentage of a 4096x4096 float32 ``np.dot``
measured in the same run (best of several), and, from a separate child process per system,
the peak resident memory of a fit.

    python benchmarks/bench_train.py                      # everything (several minutes)
    python benchmarks/bench_train.py --configs ref --reps 3 --epochs 4 --systems relunet,torch
    python benchmarks/bench_train.py --markdown out.md    # also write the tables as Markdown

PyTorch is a benchmark-only dependency: ``pip install torch==2.13.0`` (the CPU build); it is
skipped when absent.  scikit-learn's ``alpha`` penalises ``alpha / (2 * batch_size) * ||W||²``
per batch and leaves the biases alone, so it gets ``alpha * batch_size`` (the same weight
decay on the weights; biases unpenalised).  PyTorch's ``weight_decay`` adds ``alpha * w`` to
every gradient, biases included, which is exactly the note's penalty.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (  # noqa: E402
    N_CLASSES,
    N_FEATURES,
    N_SAMPLES,
    epoch_flops,
    gemm_rate,
    machine_facts,
    make_data,
    peak_rss_mb,
    reset_peak_rss,
    rss_mb,
)

# relunet: as installed (with numba, relunet[fast], its compiled kernels); relunet-numpy: the
# same with RELUNET_KERNELS=numpy, i.e. what a plain `pip install relunet` runs.
SYSTEMS = ("relunet", "relunet-numpy", "torch", "sklearn")


@dataclass(frozen=True)
class Config:
    name: str
    hidden: int
    batch: int
    solver: str
    lr: float
    alpha: float = 1e-4
    momentum: float = 0.9


CONFIGS = {
    "ref": Config("ref", 256, 256, "sgd", 0.01),
    "h1024": Config("h1024", 1024, 64, "sgd", 0.01),
    "adam": Config("adam", 256, 256, "adam", 1e-3),
}


def describe(cfg):
    extra = ", momentum 0.9 (Nesterov)" if cfg.solver == "sgd" else ""
    return (f"H={cfg.hidden}, batch {cfg.batch}, solver {cfg.solver} (lr {cfg.lr:g}{extra}), "
            f"alpha {cfg.alpha:g}")


# ---------------------------------------------------------------------------------- fits
# Each fit returns (seconds of each epoch, final training loss).


def _relunet_estimator():
    try:
        from relunet import ReluNetClassifier
    except ImportError:
        try:
            from relunet.estimator import ReluNetClassifier
        except ImportError:
            return None
    return ReluNetClassifier


def fit_relunet(X, y, cfg, epochs, threads):
    from threadpoolctl import threadpool_limits

    Est = _relunet_estimator()
    with threadpool_limits(threads, user_api="blas"):  # relunet uses as many threads
        if Est is not None:
            est = Est(hidden_units=cfg.hidden, alpha=cfg.alpha, solver=cfg.solver,
                      batch_size=cfg.batch, learning_rate_init=cfg.lr, momentum=cfg.momentum,
                      nesterovs_momentum=True, max_iter=epochs, tol=0.0,
                      n_iter_no_change=epochs + 1, shuffle=True, random_state=0,
                      dtype="float32")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached
                est.fit(X, y)
            return [e["seconds"] for e in est.history_], est.loss_curve_[-1]
        from relunet.network import init_params
        from relunet.train import TrainConfig, Trainer

        config = TrainConfig(solver=cfg.solver, alpha=cfg.alpha, batch_size=cfg.batch,
                             learning_rate_init=cfg.lr, momentum=cfg.momentum,
                             max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1)
        params = init_params(X.shape[1], cfg.hidden, int(y.max()) + 1, rng=0, dtype=np.float32)
        trainer = Trainer(params, config, rng=0).fit(X, y)
        return [e.seconds for e in trainer.history.epochs], trainer.history.train_loss[-1]


def fit_torch(X, y, cfg, epochs, threads):
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    n, d = X.shape
    model = nn.Sequential(nn.Linear(d, cfg.hidden), nn.ReLU(),
                          nn.Linear(cfg.hidden, int(y.max()) + 1))
    # foreach=True and index_select were the fastest variants measured on this machine.
    if cfg.solver == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                              nesterov=True, weight_decay=cfg.alpha, foreach=True)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.alpha,
                               foreach=True)
    loss_fn = nn.CrossEntropyLoss()
    seconds, loss_sum = [], 0.0
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=generator)
        loss_sum = torch.zeros(())
        for start in range(0, n, cfg.batch):
            idx = perm[start : start + cfg.batch]
            xb, yb = torch.index_select(Xt, 0, idx), torch.index_select(yt, 0, idx)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * idx.numel()
        seconds.append(time.perf_counter() - t0)
    return seconds, float(loss_sum) / n


def fit_sklearn(X, y, cfg, epochs, threads):
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    clf = MLPClassifier(hidden_layer_sizes=(cfg.hidden,), activation="relu", solver=cfg.solver,
                        alpha=cfg.alpha * cfg.batch, batch_size=cfg.batch,
                        learning_rate_init=cfg.lr, momentum=cfg.momentum,
                        nesterovs_momentum=True, shuffle=True, random_state=0)
    classes = np.unique(y)
    seconds = []
    with threadpool_limits(threads, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(epochs):  # partial_fit: exactly one epoch per call
            t0 = time.perf_counter()
            clf.partial_fit(X, y, classes=classes)
            seconds.append(time.perf_counter() - t0)
    return seconds, float(clf.loss_)


def fit_relunet_numpy(X, y, cfg, epochs, threads):
    saved = os.environ.get("RELUNET_KERNELS")
    os.environ["RELUNET_KERNELS"] = "numpy"
    try:
        return fit_relunet(X, y, cfg, epochs, threads)
    finally:
        if saved is None:
            del os.environ["RELUNET_KERNELS"]
        else:
            os.environ["RELUNET_KERNELS"] = saved


FITS = {"relunet": fit_relunet, "relunet-numpy": fit_relunet_numpy, "torch": fit_torch,
        "sklearn": fit_sklearn}


def have_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------- memory


def child_memory(system, cfg_name, data_path, epochs, threads):
    """Run in a child process: load the data, reset the peak-RSS mark, fit, report."""
    cfg = CONFIGS[cfg_name]
    if system == "torch":
        import torch  # noqa: F401  (imported before the baseline, like the others' imports)
    elif system == "sklearn":
        import sklearn.neural_network  # noqa: F401
    else:
        _relunet_estimator()  # loads scikit-learn (relunet loads it lazily) before the baseline
    with np.load(data_path) as z:
        X, y = z["X"], z["y"]
    before = rss_mb()
    exact = reset_peak_rss()
    FITS[system](X, y, cfg, epochs, threads)
    print(json.dumps({"before": before, "peak": peak_rss_mb(), "exact": exact,
                      "data": (X.nbytes + y.nbytes) / 2**20}))


def measure_memory(system, cfg, data_path, epochs, threads):
    cmd = [sys.executable, os.path.abspath(__file__), "--child-memory", system,
           "--configs", cfg.name, "--data", data_path, "--epochs", str(epochs),
           "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------- main


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="ref,h1024,adam",
                   help=f"comma-separated, from {', '.join(CONFIGS)} (default: all)")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--epochs", type=int, default=4, help="epochs per fit (default 4)")
    p.add_argument("--sklearn-epochs", type=int, default=2,
                   help="epochs per scikit-learn fit (slow; default 2)")
    p.add_argument("--reps", type=int, default=3, help="interleaved repetitions (default 3)")
    p.add_argument("--threads", type=int, default=2, help="cores each system may use")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-RSS child runs")
    p.add_argument("--markdown", help="also write the result tables to this file")
    p.add_argument("--child-memory", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child_memory:
        child_memory(args.child_memory, args.configs, args.data, args.epochs, args.threads)
        return

    configs = [CONFIGS[c] for c in args.configs.split(",")]
    systems = [s for s in args.systems.split(",") if s]
    if "torch" in systems and not have_torch():
        print("PyTorch not installed: skipping it (pip install torch==2.13.0 for the CPU "
              "build)", file=sys.stderr)
        systems.remove("torch")

    facts = machine_facts()
    print("\n".join(facts), flush=True)
    X, y = make_data()
    n, d = X.shape
    k = int(y.max()) + 1
    assert (n, d, k) == (N_SAMPLES, N_FEATURES, N_CLASSES)
    print(f"data: {n} x {d} float32 ({X.nbytes / 2**20:.0f} MiB), {k} classes; "
          f"relunet driven through "
          f"{'ReluNetClassifier' if _relunet_estimator() else 'relunet.train.Trainer'}",
          flush=True)

    # Warm-up: first-call costs (torch's kernels, thread pools) stay out of the timings.
    for system in systems:
        FITS[system](X[:2048], y[:2048], configs[0], 1, args.threads)

    gemm = []
    times = {(c.name, s): [] for c in configs for s in systems}
    losses = {}
    for rep in range(args.reps):
        gemm.append(gemm_rate(args.threads))
        print(f"rep {rep + 1}/{args.reps}: GEMM 4096 {gemm[-1]:.0f} GFLOP/s", flush=True)
        for cfg in configs:
            for system in systems:
                epochs = args.sklearn_epochs if system == "sklearn" else args.epochs
                secs, loss = FITS[system](X, y, cfg, epochs, args.threads)
                kept = secs[1:] if len(secs) > 1 else secs  # first epoch: warm-up
                times[cfg.name, system].extend(kept)
                losses[cfg.name, system] = loss
                print(f"  {cfg.name:6s} {system:8s} s/epoch {' '.join(f'{s:.3f}' for s in secs)}"
                      f"  (loss {loss:.4f})", flush=True)
    gemm.append(gemm_rate(args.threads))
    peak_gemm = max(gemm)

    memory = {}
    if not args.no_memory:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "data.npz")
            np.savez(path, X=X, y=y)
            for cfg in configs:
                for system in systems:
                    memory[cfg.name, system] = measure_memory(system, cfg, path, 2, args.threads)

    lines = [f"GEMM ceiling: 4096x4096 float32 np.dot, {args.threads} threads, best of "
             f"{len(gemm)} runs spread over the benchmark: {peak_gemm:.0f} GFLOP/s "
             f"(all runs: {', '.join(f'{g:.0f}' for g in gemm)})", ""]
    for cfg in configs:
        flops = epoch_flops(n, d, cfg.hidden, k)
        base = statistics.median(times[cfg.name, systems[0]]) if systems else 1.0
        lines += [f"### {cfg.name}: {describe(cfg)}", "",
                  "| system | s/epoch (median) | time vs relunet | GFLOP/s | % of GEMM "
                  "| peak RSS of fit process (MiB) | fit's own peak (MiB) | loss after |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for system in systems:
            t = statistics.median(times[cfg.name, system])
            rate = flops / t / 1e9
            mem = memory.get((cfg.name, system), {})
            if "peak" in mem:
                peak = f"{mem['peak']:.0f}"
                own = f"{mem['peak'] - mem['before']:.0f}" if mem["exact"] else "n/a"
            else:
                peak = own = "n/a"
            runs = len(times[cfg.name, system])
            lines.append(f"| {system} | {t:.3f} ({runs} epochs) | {t / base:.2f}x | {rate:.0f} "
                         f"| {100 * rate / peak_gemm:.0f}% | {peak} | {own} "
                         f"| {losses[cfg.name, system]:.3f} |")
        lines.append("")
    if memory:
        data_mib = next(iter(memory.values())).get("data", float("nan"))
        lines.append(f"Memory: each system fits 2 epochs in a child process that first loads "
                     f"the data ({data_mib:.0f} MiB); 'peak RSS' is that process's VmHWM, "
                     f"'fit's own peak' the peak during the fit minus the RSS just before it.")
    report = "\n".join(lines)
    print("\n" + report)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write("Machine:\n\n" + "\n".join(f"- {f}" for f in facts) + "\n\n" + report + "\n")


if __name__ == "__main__":
    main()
