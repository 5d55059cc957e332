"""Shared by the benchmarks: the synthetic data set, the GEMM ceiling, machine facts, RSS."""

from __future__ import annotations

import os
import platform
import time

import numpy as np

# The reference problem of issue #5 (MNIST-sized).
N_SAMPLES, N_FEATURES, N_CLASSES = 60_000, 784, 10


def make_data(n=N_SAMPLES, d=N_FEATURES, k=N_CLASSES, seed=0, chunk=10_000):
    """A fixed-seed, MNIST-shaped classification set with learnable structure.

    Features are float32 in [0, 1]: a sigmoid of a low-rank latent part (20 factors shared by
    all pixels) plus pixel noise.  Labels come from a random "teacher" ReLU network on the
    features, with a little label noise, so a one-hidden-layer network can learn them but
    not perfectly.  Generated in chunks, so the peak memory is the float32 array itself.
    """
    rng = np.random.default_rng(seed)
    rank, teacher_hidden = 20, 64
    mixing = (rng.standard_normal((rank, d)) * (1.5 / np.sqrt(rank))).astype(np.float32)
    offset = rng.normal(-0.5, 0.5, d).astype(np.float32)
    A = (rng.standard_normal((d, teacher_hidden)) / np.sqrt(d)).astype(np.float32)
    C = rng.standard_normal((teacher_hidden, k)).astype(np.float32)
    X = np.empty((n, d), np.float32)
    y = np.empty(n, np.intp)

    def features(m):
        z = rng.standard_normal((m, rank), dtype=np.float32)
        x = z @ mixing + offset + 0.7 * rng.standard_normal((m, d), dtype=np.float32)
        np.negative(x, out=x)
        np.exp(x, out=x)
        x += 1
        return np.reciprocal(x, out=x)  # sigmoid, in place: no float64 temporaries

    def teacher(x):
        return np.maximum((x - 0.5) @ A, 0) @ C

    # Standardise the teacher's scores per class, so the classes come out about balanced.
    calibration = teacher(features(chunk))
    mean, std = calibration.mean(axis=0), calibration.std(axis=0)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        X[start:stop] = features(stop - start)
        scores = (teacher(X[start:stop]) - mean) / std
        scores += rng.gumbel(size=scores.shape).astype(np.float32) * 0.3  # label noise
        y[start:stop] = scores.argmax(axis=1)
    return X, y


def epoch_flops(n, d, h, k):
    """Flops of one epoch of training, as counted in issue #5: 4·N·D·H + 6·N·H·K."""
    return 4 * n * d * h + 6 * n * h * k


def gemm_rate(threads, n=4096, repeats=3):
    """Best GFLOP/s of a float32 ``n x n`` ``np.dot`` with ``threads`` BLAS threads."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(1)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    best = float("inf")
    with threadpool_limits(threads, user_api="blas"):
        np.dot(a, b, out=c)  # warm-up: page faults, thread start
        for _ in range(repeats):
            t0 = time.perf_counter()
            np.dot(a, b, out=c)
            best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts():
    """Lines describing the machine and the numeric stack, for the report."""
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"CPU: {cpu_model()}, {cpus} usable cores (os.cpu_count() = {os.cpu_count()})",
        f"Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__},"
        f" scikit-learn {sklearn.__version__}",
    ]
    for info in threadpool_info():
        if info["user_api"] == "blas":
            lines.append(
                f"BLAS: {info['internal_api']} {info.get('version')} "
                f"(kernel {info.get('architecture')}, {info['num_threads']} threads) "
                f"from {os.path.basename(info['filepath'])}"
            )
    lines.append(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    try:
        import numba
    except ImportError:
        lines.append("numba: not installed (relunet runs its NumPy code only)")
    else:
        lines.append(f"numba {numba.__version__} (relunet's compiled kernels, relunet[fast])")
    try:
        import torch
    except ImportError:
        lines.append("PyTorch: not installed")
    else:
        lines.append(f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads by default)")
    return lines


def _status_mb(key):
    """``key`` of /proc/self/status in MB, or the peak RSS from getrusage where there is none."""
    value = _proc_status(key)
    if value is None:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return value


def rss_mb():
    """Current resident set size of this process in MB (Linux; else ru_maxrss)."""
    return _status_mb("VmRSS")


def reset_peak_rss():
    """Reset the kernel's peak-RSS mark (Linux >= 4.0), so ``peak_rss_mb`` covers what follows.

    Returns False where that is not possible (the peak then covers the whole process life).
    """
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb():
    """Peak resident set size in MB since start (or since :func:`reset_peak_rss`)."""
    return _status_mb("VmHWM")


def _proc_status(key):
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024  # kB -> MB
    except OSError:
        return None
    return None
