"""Prediction throughput: ``predict_proba`` vs onnxruntime and the GEMM ceiling.

A network trained for one epoch on the synthetic set of bench_train.py (weights do not
matter for timing) predicts class probabilities for 1, 100, 10,000 and 1,000,000 rows (the
60,000 rows tiled; the 1M-row input alone is 3 GB).  The same model, exported with
``relunet.to_onnx``, runs in onnxruntime with ``intra_op_num_threads`` = ``--threads`` (and
one inter-op thread); relunet gets the same number of BLAS threads.  The two alternate in
rounds (a block of calls of one, then of the other), so both see the same machine load,
with a pause of ``--pause`` seconds (0.5) before each block: OpenBLAS's and onnxruntime's
worker threads both spin-wait for a while after a call (OpenBLAS up to ~0.1 s), and a block
started at once would share the cores with the other system's spinning threads (measured:
both slowed by up to 2x at 10,000 rows).

For each size it prints the median time per call of each, rows per second, each system's
GFLOP/s (2·n·D·H + 2·n·H·K per call) as a percentage of a 4096x4096 float32 ``np.dot``
measured in the same run, relunet's throughput relative to onnxruntime's (> 1: relunet is
faster), the sizes of input and output, and how much memory a call took beyond its input and
output (peak RSS during the call minus RSS before it; onnxruntime: its first call at that
size, since its arena keeps what it grew to; "-0" is a measured zero).

    python benchmarks/bench_predict.py [--hidden 256] [--rounds 5] [--threads 2]
        [--sizes 1,100,10000,1000000] [--pause 0.5] [--markdown FILE]

Uses ``ReluNetClassifier.predict_proba`` when the estimator exists, otherwise
``relunet.network.forward`` + ``softmax`` (which allocate whole (n, H) arrays).  Without
onnx/onnxruntime (``relunet[onnx]``) the onnxruntime columns are left empty.
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
        return est.predict_proba, "ReluNetClassifier.predict_proba", est

    from relunet.network import forward, softmax
    from relunet.train import train

    params, _ = train(X, y, hidden, solver="sgd", batch_size=256, learning_rate_init=0.01,
                      max_iter=1, rng=0)

    def predict_proba(Z):
        return softmax(forward(params, Z)[0])

    return predict_proba, "relunet.network.forward + softmax", None


def make_onnxruntime(est, threads):
    """onnxruntime's ``probabilities`` for the same model (None without relunet[onnx])."""
    if est is None:
        return None, "onnxruntime: needs the estimator"
    try:
        import onnxruntime as ort

        from relunet import to_onnx
    except ImportError as exc:
        return None, f"onnxruntime: not available ({exc})"
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(to_onnx(est).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])

    def predict_proba(Z):
        return session.run(["probabilities"], {"X": Z})[0]

    return predict_proba, (f"onnxruntime {ort.__version__} (intra_op_num_threads={threads}, "
                           f"default session options, relunet.to_onnx graph)")


def calls_per_block(n):
    """Calls per timed block: ~0.1-0.5 s of work per block on this machine."""
    return max(1, min(500, 200_000 // max(n, 1)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--rounds", type=int, default=5,
                   help="alternating blocks of calls per system and size (1M rows: at most 3)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sizes", default="1,100,10000,1000000")
    p.add_argument("--pause", type=float, default=0.5,
                   help="seconds of rest before each block (the other's threads stop spinning)")
    p.add_argument("--markdown", help="also write the table as Markdown")
    args = p.parse_args(argv)

    from threadpoolctl import threadpool_limits

    facts = machine_facts()
    print("\n".join(facts), flush=True)
    X, y = make_data()
    d, k = X.shape[1], int(y.max()) + 1
    with threadpool_limits(args.threads, user_api="blas"):
        predict_proba, how, est = make_predictor(X, y, args.hidden, args.threads)
    onnx_proba, onnx_how = make_onnxruntime(est, args.threads)
    print(f"predicting with {how}, H={args.hidden}; {onnx_how}", flush=True)

    rows = []
    gemm = [gemm_rate(args.threads)]
    for n in (int(s) for s in args.sizes.split(",")):
        Z = X[:n] if n <= X.shape[0] else np.tile(X, (-(-n // X.shape[0]), 1))[:n]
        Z = np.ascontiguousarray(Z)
        times, onnx_times, extra, onnx_extra = [], [], [], []
        calls = calls_per_block(n)
        rounds = args.rounds if n <= 100_000 else min(3, args.rounds)
        with threadpool_limits(args.threads, user_api="blas"):
            P = predict_proba(Z)  # warm-up
            if onnx_proba is not None:
                before = rss_mb()  # onnxruntime's arena grows at its first call of a size
                exact = reset_peak_rss()  # and keeps that memory: measured here
                Q = onnx_proba(Z)
                onnx_extra.append(peak_rss_mb() - before - Q.nbytes / 2**20 if exact
                                  else float("nan"))
                assert np.allclose(P, Q, atol=1e-5), "relunet and onnxruntime disagree"
                del Q
            del P
            for _ in range(rounds):
                time.sleep(args.pause)
                before = rss_mb()
                exact = reset_peak_rss()
                for _ in range(calls):
                    t0 = time.perf_counter()
                    P = predict_proba(Z)
                    times.append(time.perf_counter() - t0)
                    out_mb = P.nbytes / 2**20
                    del P
                extra.append(peak_rss_mb() - before - out_mb if exact else float("nan"))
                if onnx_proba is not None:
                    time.sleep(args.pause)
                    for _ in range(calls):
                        t0 = time.perf_counter()
                        onnx_proba(Z)
                        onnx_times.append(time.perf_counter() - t0)
        gemm.append(gemm_rate(args.threads))
        t = statistics.median(times)
        t_onnx = statistics.median(onnx_times) if onnx_times else float("nan")
        flops = 2 * n * d * args.hidden + 2 * n * args.hidden * k
        rows.append((n, t, t_onnx, flops / t / 1e9, flops / t_onnx / 1e9, Z.nbytes / 2**20,
                     out_mb, max(extra), max(onnx_extra, default=float("nan"))))
        print(f"  n={n}: relunet {t * 1e6:,.1f} us ({n / t:,.0f} rows/s), onnxruntime "
              f"{t_onnx * 1e6:,.1f} us, relunet/onnxruntime throughput {t_onnx / t:.2f}",
              flush=True)
        del Z
    peak = max(gemm)
    lines = [f"predict_proba, H={args.hidden}, {args.threads} threads, via {how}; "
             f"{onnx_how}; GEMM ceiling {peak:.0f} GFLOP/s (4096x4096 float32 np.dot, best of "
             f"{len(gemm)} runs)", "",
             "| rows | relunet s/call (median) | onnxruntime s/call | relunet rows/s "
             "| onnxruntime rows/s | relunet / onnxruntime throughput | relunet % of GEMM "
             "| onnxruntime % of GEMM | input MiB | output MiB | extra peak memory MiB: "
             "relunet / onnxruntime |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n, t, t_onnx, rate, onnx_rate, in_mb, out_mb, extra_mb, onnx_mb in rows:
        lines.append(f"| {n:,} | {t:.3g} | {t_onnx:.3g} | {n / t:,.0f} | {n / t_onnx:,.0f} "
                     f"| {t_onnx / t:.2f}× | {100 * rate / peak:.0f}% "
                     f"| {100 * onnx_rate / peak:.0f}% | {in_mb:.3g} "
                     f"| {out_mb:.2f} | {extra_mb:.0f} / {onnx_mb:.0f} |")
    lines += ["", "'extra peak memory' = peak RSS during a system's calls minus RSS before them "
              "minus the returned array: the temporaries of one call (onnxruntime: its first call "
              "at each size, since its memory arena keeps what it grew to)."]
    report = "\n".join(lines)
    print("\n" + report)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(report + "\n")


if __name__ == "__main__":
    main()
