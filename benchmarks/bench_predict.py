"""Prediction throughput: ``predict_proba`` on 10k and 1M rows vs the GEMM ceiling.

A network trained for one epoch on the synthetic set of bench_train.py (weights do not
matter for timing) predicts class probabilities for 10,000 rows and for 1,000,000 rows (the
60,000 rows tiled); the 1M-row input alone is 3 GB.  For each it prints the median time,
rows per second, the achieved GFLOP/s (2·n·D·H + 2·n·H·K per call) as a percentage of a
4096x4096 float32 ``np.dot`` measured in the same run, and how much memory the call took
beyond its input and output (peak RSS during the call minus RSS before it).

    python benchmarks/bench_predict.py [--hidden 256] [--reps 5] [--threads 2]

Uses ``ReluNetClassifier.predict_proba`` when the estimator exists, otherwise
``relunet.network.forward`` + ``softmax`` (which allocate whole (n, H) arrays).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import gemm_rate, machine_facts, make_data, peak_rss_mb, reset_peak_rss, rss_mb  # noqa: E402


def make_predictor(X, y, hidden, threads):
    """A fitted predict_proba (and a name for it)."""
    try:
        from relunet import ReluNetClassifier
    except ImportError:
        try:
            from relunet.estimator import ReluNetClassifier
        except ImportError:
            ReluNetClassifier = None
    if ReluNetClassifier is not None:
        est = ReluNetClassifier(hidden_units=hidden, solver="sgd", batch_size=256,
                                learning_rate_init=0.01, max_iter=1, random_state=0,
                                dtype="float32")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        return est.predict_proba, "ReluNetClassifier.predict_proba"

    from relunet.network import forward, softmax
    from relunet.train import train

    params, _ = train(X, y, hidden, solver="sgd", batch_size=256, learning_rate_init=0.01,
                      max_iter=1, rng=0)

    def predict_proba(Z):
        return softmax(forward(params, Z)[0])

    return predict_proba, "relunet.network.forward + softmax"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sizes", default="10000,1000000")
    p.add_argument("--markdown", help="also write the table as Markdown")
    args = p.parse_args(argv)

    from threadpoolctl import threadpool_limits

    facts = machine_facts()
    print("\n".join(facts), flush=True)
    X, y = make_data()
    d, k = X.shape[1], int(y.max()) + 1
    with threadpool_limits(args.threads, user_api="blas"):
        predict_proba, how = make_predictor(X, y, args.hidden, args.threads)
    print(f"predicting with {how}, H={args.hidden}", flush=True)

    rows = []
    gemm = [gemm_rate(args.threads)]
    for n in (int(s) for s in args.sizes.split(",")):
        Z = X[:n] if n <= X.shape[0] else np.tile(X, (-(-n // X.shape[0]), 1))[:n]
        Z = np.ascontiguousarray(Z)
        times = []
        with threadpool_limits(args.threads, user_api="blas"):
            P = predict_proba(Z)  # warm-up
            del P
            before = rss_mb()
            exact = reset_peak_rss()
            for _ in range(args.reps if n <= 100_000 else max(2, args.reps // 2)):
                t0 = time.perf_counter()
                P = predict_proba(Z)
                times.append(time.perf_counter() - t0)
                out_mb = P.nbytes / 2**20
                del P
            extra = peak_rss_mb() - before - out_mb if exact else float("nan")
        gemm.append(gemm_rate(args.threads))
        t = statistics.median(times)
        flops = 2 * n * d * args.hidden + 2 * n * args.hidden * k
        rows.append((n, t, n / t, flops / t / 1e9, Z.nbytes / 2**20, out_mb, extra))
        print(f"  n={n}: {t:.4f} s, {n / t:,.0f} rows/s, {flops / t / 1e9:.0f} GFLOP/s", flush=True)
        del Z
    peak = max(gemm)
    lines = [f"predict_proba, H={args.hidden}, {args.threads} threads, via {how}; GEMM ceiling "
             f"{peak:.0f} GFLOP/s (4096x4096 float32 np.dot, best of {len(gemm)} runs)", "",
             "| rows | s per call (median) | rows/s | GFLOP/s | % of GEMM | input MiB "
             "| output MiB | extra peak memory MiB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n, t, rps, rate, in_mb, out_mb, extra in rows:
        lines.append(f"| {n:,} | {t:.4f} | {rps:,.0f} | {rate:.0f} | {100 * rate / peak:.0f}% "
                     f"| {in_mb:.0f} | {out_mb:.0f} | {extra:.0f} |")
    lines += ["", "'extra peak memory' = peak RSS during the calls minus RSS before them minus "
              "the returned array: the temporaries of one call."]
    report = "\n".join(lines)
    print("\n" + report)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(report + "\n")


if __name__ == "__main__":
    main()
