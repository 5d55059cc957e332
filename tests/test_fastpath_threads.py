"""Fits in threads of one process: the same weights as one after another, BLAS left as found."""

import threading

import numpy as np
import pytest
from _problems import small_classifier
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_info

from relunet import fastpath

pytestmark = pytest.mark.filterwarnings("ignore", category=ConvergenceWarning)


def _blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_concurrent_fits_equal_serial_fits_bit_for_bit(monkeypatch, dtype):
    # Every batch split into parts (as on a big problem), so that a fit's numbers depend on
    # how many threads it thinks BLAS has: the quantity concurrent fits used to disturb.
    monkeypatch.setattr(fastpath, "MIN_FLOPS_PER_THREAD", 0)
    X, y = make_classification(n_samples=300, n_features=12, n_informative=6, n_classes=3,
                               random_state=0)
    fits = [dict(random_state=seed, dtype=dtype, batch_size=32, hidden_units=24, max_iter=6,
                 early_stopping=seed % 2 == 1) for seed in range(3)]
    fits.append(dict(random_state=3, dtype=dtype, hidden_units=24, max_iter=6, solver="lbfgs"))
    before = _blas_threads()
    serial = [small_classifier(**kw).fit(X, y) for kw in fits]
    assert _blas_threads() == before
    for _ in range(2):
        concurrent = [None] * len(fits)
        start = threading.Barrier(len(fits))

        def fit(i, start, out):
            start.wait()
            out[i] = small_classifier(**fits[i]).fit(X, y)

        threads = [threading.Thread(target=fit, args=(i, start, concurrent))
                   for i in range(len(fits))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for a, b in zip(serial, concurrent, strict=True):
            np.testing.assert_array_equal(a.W1_, b.W1_)
            np.testing.assert_array_equal(a.W2_, b.W2_)
            assert a.loss_curve_ == b.loss_curve_
        assert _blas_threads() == before
    # and a fit afterwards still equals the first one
    again = small_classifier(**fits[0]).fit(X, y)
    np.testing.assert_array_equal(again.W1_, serial[0].W1_)


def test_shared_limit_restores_only_when_the_last_epoch_ends():
    controller = fastpath._blas_controller()
    before, threads = _blas_threads(), fastpath.default_threads()
    a, b = fastpath._one_blas_thread(controller), fastpath._one_blas_thread(controller)
    a.__enter__()
    b.__enter__()
    assert set(_blas_threads()) == {1}
    assert fastpath.default_threads() == threads  # what a fit starting now splits into
    a.__exit__(None, None, None)  # A ends first: B still runs on one thread
    assert set(_blas_threads()) == {1}
    b.__exit__(None, None, None)
    assert _blas_threads() == before


def test_default_threads_follows_a_surrounding_limit_and_the_cpus():
    # read from the libraries' live counts (not a fresh threadpool_info scan per call)
    from threadpoolctl import threadpool_limits

    cpus = fastpath._usable_cpus()
    expected = max(1, min(max(_blas_threads(), default=1), cpus))
    assert fastpath.default_threads() == expected
    with threadpool_limits(1, user_api="blas"):
        assert fastpath.default_threads() == 1
    with threadpool_limits(64, user_api="blas"):  # never more than the usable CPUs
        assert 1 <= fastpath.default_threads() <= cpus
    assert fastpath.default_threads() == expected
