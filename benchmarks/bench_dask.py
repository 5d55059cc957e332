"""DaskReluNetClassifier on a LocalCluster whose workers are each too small for the data.

Writes a synthetic float32 data set as Parquet files (reused by later runs), then for a
``LocalCluster`` of 1 and of 2 worker processes (one thread each, ``--worker-memory`` each,
less than the data) trains ``DaskReluNetClassifier`` on the files, read by the workers:

* ``lbfgs`` for ``--lbfgs-iters`` iterations: median seconds per L-BFGS iteration;
* ``adam`` by local SGD for ``--sgd-epochs`` epochs: median seconds per epoch;
* load: seconds from ``fit`` to the first iteration (reading Parquet, casting, persisting);
* peak resident memory of every worker process and of the client process.

Parallel efficiency is ``t(1 worker) / (2 · t(2 workers))``.  Then, on a part of the data
that fits in memory, the overhead against the single-machine ``ReluNetClassifier``
(one thread, the same data in a NumPy array) and a 1-worker cluster.

    python benchmarks/bench_dask.py                       # 2 GB data, 1.6 GB per worker
    python benchmarks/bench_dask.py --data-gb 0.2 --worker-memory 150MB --lbfgs-iters 2

The machine this was written on has 2 cores shared with other jobs: timings are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine_facts  # noqa: E402


def make_files(folder, n_rows, d, k, rows_per_file, seed=0):
    """Gaussian features, labels from a random teacher ReLU network; one file at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(folder, exist_ok=True)
    stamp = os.path.join(folder, "_done.json")
    spec = {"n_rows": n_rows, "d": d, "k": k, "rows_per_file": rows_per_file, "seed": seed}
    if os.path.exists(stamp):
        with open(stamp) as fh:
            if json.load(fh) == spec:
                return
    rng = np.random.default_rng(seed)
    A = (rng.standard_normal((d, 64)) / np.sqrt(d)).astype(np.float32)
    C = rng.standard_normal((64, k)).astype(np.float32)
    names = [f"x{i}" for i in range(d)]
    for i, start in enumerate(range(0, n_rows, rows_per_file)):
        m = min(rows_per_file, n_rows - start)
        X = rng.standard_normal((m, d), dtype=np.float32)
        scores = np.maximum(X @ A, 0) @ C
        scores += rng.gumbel(size=scores.shape).astype(np.float32) * 0.3
        y = scores.argmax(axis=1).astype(np.int16)
        columns = [pa.array(X[:, j]) for j in range(d)] + [pa.array(y)]
        pq.write_table(pa.table(columns, names=[*names, "y"]),
                       os.path.join(folder, f"part-{i:04d}.parquet"), compression="none")
    with open(stamp, "w") as fh:
        json.dump(spec, fh)


def peak_rss_mib():
    """Peak resident memory of this process so far, MiB (Linux: ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def frames(pattern):
    import dask.dataframe as dd

    table = dd.read_parquet(pattern)
    return table.drop(columns=["y"]), table["y"]


def run_cluster(n_workers, pattern, args):
    from distributed import Client, LocalCluster

    from relunet.dask import DaskReluNetClassifier

    out = {"workers": n_workers}
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      memory_limit=args.worker_memory, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        common = dict(hidden_units=args.hidden, dtype="float32", random_state=0, client=client)
        marks = []
        spilled = []

        def mark(info):
            marks.append(time.perf_counter())
            if len(marks) == 1:  # the data is persisted: how much of it is on disk?
                counts = client.run(_spilled).values()
                spilled.extend([sum(c[0] for c in counts), sum(c[1] for c in counts)])

        X, y = frames(pattern)
        t0 = time.perf_counter()
        model = DaskReluNetClassifier(solver="lbfgs", max_iter=args.lbfgs_iters, tol=0.0,
                                      callback=mark, **common)
        model.fit(X, y)
        out["load_s"] = marks[0] - t0 - model.history_[0]["seconds"]
        out["lbfgs_s"] = statistics.median(h["seconds"] for h in model.history_)
        out["lbfgs_loss"] = model.loss_curve_[-1]

        X, y = frames(pattern)
        model = DaskReluNetClassifier(solver="adam", max_iter=args.sgd_epochs, tol=0.0,
                                      batch_size=args.batch_size, learning_rate_init=1e-3,
                                      **common)
        model.fit(X, y)
        out["sgd_s"] = statistics.median(h["seconds"] for h in model.history_)
        out["sgd_loss"] = model.loss_curve_[-1]
        out["n_rows"] = model._n_rows
        out["worker_peak_mib"] = sorted(client.run(peak_rss_mib).values())
    out["spilled"] = spilled
    return out


def _spilled(dask_worker):
    """(partitions of training data on disk, all of them) on this worker."""
    slow = getattr(dask_worker.data, "slow", None)
    ours = [k for k in dask_worker.data if "_encode_part" in str(k)]
    on_disk = [k for k in ours if slow is not None and k in slow]
    return len(on_disk), len(ours)


def overhead(pattern, args):
    """Seconds per L-BFGS iteration: single machine (1 thread) vs a 1-worker cluster."""
    import dask.dataframe as dd
    from distributed import Client, LocalCluster
    from threadpoolctl import threadpool_limits

    from relunet import ReluNetClassifier
    from relunet.dask import DaskReluNetClassifier

    files = sorted(__import__("glob").glob(pattern))[: args.fit_files]
    table = dd.read_parquet(files).compute()
    X = table.drop(columns=["y"]).to_numpy(np.float32)
    y = table["y"].to_numpy()
    kw = dict(hidden_units=args.hidden, dtype="float32", random_state=0, solver="lbfgs",
              max_iter=args.lbfgs_iters, tol=0.0)
    with threadpool_limits(1):
        local = ReluNetClassifier(**kw).fit(X, y)
    single = statistics.median(h["seconds"] for h in local.history_)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        model = DaskReluNetClassifier(**kw, client=client).fit(*frames(files))
    dask_s = statistics.median(h["seconds"] for h in model.history_)
    return {"rows": int(X.shape[0]), "single_s": single, "dask_s": dask_s,
            "same_loss": abs(model.loss_curve_[-1] - local.loss_curve_[-1])}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-gb", type=float, default=2.0, help="float32 features, GB (1e9 B)")
    p.add_argument("--features", type=int, default=256)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--rows-per-file", type=int, default=65536)
    p.add_argument("--worker-memory", default="1.6GB")
    p.add_argument("--lbfgs-iters", type=int, default=4)
    p.add_argument("--sgd-epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--fit-files", type=int, default=4,
                   help="files for the overhead comparison (data that fits)")
    p.add_argument("--folder", default="/tmp/relunet-bench-dask")
    p.add_argument("--workers", default="1,2")
    p.add_argument("--make-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    warnings.simplefilter("ignore")

    n_rows = int(args.data_gb * 1e9 / (4 * args.features))
    t0 = time.perf_counter()
    if args.make_only:
        make_files(args.folder, n_rows, args.features, args.classes, args.rows_per_file)
        return
    # In a child process, so that this one's peak memory is the client's alone.
    subprocess.run([sys.executable, __file__, *sys.argv[1:], "--make-only"], check=True)
    pattern = os.path.join(args.folder, "part-*.parquet")
    on_disk = sum(os.path.getsize(os.path.join(args.folder, f)) for f in os.listdir(args.folder))
    print(f"data: {n_rows} rows x {args.features} float32 features = "
          f"{n_rows * args.features * 4 / 1e9:.2f} GB, {on_disk / 1e9:.2f} GB of Parquet in "
          f"{-(-n_rows // args.rows_per_file)} files ({time.perf_counter() - t0:.0f}s to "
          f"make/check); H={args.hidden}, K={args.classes}; workers: 1 thread and "
          f"{args.worker_memory} each", flush=True)

    import dask

    # Spill to disk only past 80% of the limit (default 60%): with 2 workers each holds half
    # the data in memory; with 1 worker the data cannot fit and part of it is spilled.
    dask.config.set({"distributed.worker.memory.target": 0.8,
                     "distributed.worker.memory.spill": 0.85,
                     "distributed.worker.memory.pause": 0.92,
                     "distributed.worker.memory.terminate": 0.98})
    results = []
    for n in map(int, args.workers.split(",")):
        r = run_cluster(n, pattern, args)
        results.append(r)
        print(json.dumps(r), flush=True)
    client_peak = peak_rss_mib()
    print("\n".join(machine_facts()))  # after: it imports PyTorch when installed
    over = overhead(pattern, args)
    print(json.dumps(over), flush=True)

    base = results[0]
    print()
    print("| workers | load (s) | s / L-BFGS iteration | s / local-SGD epoch | efficiency "
          "(L-BFGS / SGD) | peak RSS per worker (MiB) | partitions on disk |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        n = r["workers"]
        eff = (f"{base['lbfgs_s'] / (n / base['workers'] * r['lbfgs_s']):.2f} / "
               f"{base['sgd_s'] / (n / base['workers'] * r['sgd_s']):.2f}")
        print(f"| {n} | {r['load_s']:.1f} | {r['lbfgs_s']:.2f} | {r['sgd_s']:.2f} | {eff} | "
              f"{', '.join(f'{m:.0f}' for m in r['worker_peak_mib'])} | "
              f"{r['spilled'][0]} of {r['spilled'][1]} |")
    print(f"\nclient peak RSS during the cluster fits: {client_peak:.0f} MiB")
    print(f"overhead on {over['rows']} rows that fit: single machine {over['single_s']:.3f} s "
          f"per L-BFGS iteration (1 thread), 1-worker Dask cluster {over['dask_s']:.3f} s "
          f"({over['dask_s'] / over['single_s']:.2f}x); final losses differ by "
          f"{over['same_loss']:.1e}")


if __name__ == "__main__":
    main()
