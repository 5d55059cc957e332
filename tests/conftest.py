"""Shared test fixtures."""

import os
import sys

# scikit-learn's array-API dispatch (tests/test_array_api.py, the estimator checks on
# array_api_strict and torch) needs SciPy's array-API mode, which SciPy reads once, when it
# is first imported: switch it on here, before any test module imports SciPy.  It changes
# nothing for NumPy inputs.  If SciPy was imported already (a plugin), leave it off: the
# array-API tests then skip, saying why.
if "scipy" not in sys.modules:
    os.environ.setdefault("SCIPY_ARRAY_API", "1")

import pytest  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402


@pytest.fixture(scope="module")
def one_blas_thread():
    """BLAS on one thread for a module of tiny-matrix tests.

    On tiny matrices multi-threaded OpenBLAS only adds thread hand-offs: measured 10x slower
    on a busy 2-core machine.  (Training limits BLAS itself; this covers predict and the
    scikit-learn checks' own array work too.)
    """
    with threadpool_limits(1):
        yield
