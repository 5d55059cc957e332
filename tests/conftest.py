"""Shared test fixtures."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(scope="module")
def one_blas_thread():
    """BLAS on one thread for a module of tiny-matrix tests.

    On tiny matrices multi-threaded OpenBLAS only adds thread hand-offs: measured 10x slower
    on a busy 2-core machine.  (Training limits BLAS itself; this covers predict and the
    scikit-learn checks' own array work too.)
    """
    with threadpool_limits(1):
        yield
