"""The note's math and the estimator on non-NumPy arrays (relunet.network, relunet.arrayapi).

``array_api_strict`` implements the array API standard and nothing more, so passing it proves
the code uses only standard operations (what CuPy or PyTorch CUDA arrays get); its two
devices stand in for host and GPU.  PyTorch CPU tensors are the real library; the same test
bodies also run on PyTorch CUDA tensors and CuPy arrays where the machine has a GPU (skipped,
with that reason, elsewhere: CI has none; they were run on an H200, see README).  The estimator
tests need scikit-learn's ``array_api_dispatch``, hence SCIPY_ARRAY_API=1 (tests/conftest.py).
"""

import sys

import numpy as np
import pytest

from relunet.network import forward, init_params, log_softmax, loss, loss_and_grads, softmax

xp = pytest.importorskip("array_api_strict", reason="array-api-strict is a test extra")
pytest.importorskip("array_api_compat", reason="array-api-compat is a test extra")


@pytest.fixture
def problem():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((30, 5))
    y = rng.integers(0, 4, 30)
    params = init_params(5, 6, 4, rng=rng)
    return X, y, params, rng.random(30)


def _strict(*arrays):
    return tuple(xp.asarray(a) for a in arrays)


@pytest.mark.parametrize("weighted", [False, True])
def test_loss_and_grads_on_strict_arrays_equal_numpy(problem, weighted):
    X, y, params, sw = problem
    sw = sw if weighted else None
    L, grads = loss_and_grads(params, X, y, 0.05, sample_weight=sw)
    Xs, ys = _strict(X, y)
    L_s, grads_s = loss_and_grads(
        _strict(*params), Xs, ys, 0.05, sample_weight=None if sw is None else xp.asarray(sw)
    )
    assert L_s == pytest.approx(L, rel=1e-14)
    for g, g_s in zip(grads, grads_s, strict=True):
        assert isinstance(g_s, type(Xs))
        np.testing.assert_allclose(np.asarray(g_s), g, rtol=1e-13, atol=1e-15)


def test_without_array_api_compat_scikit_learns_vendored_copy_serves(problem, monkeypatch):
    """Found on a GPU machine: array-api-compat absent, the fit under array_api_dispatch
    failed in its first epoch, though scikit-learn (which that dispatch needs) carries its
    own copy."""
    from sklearn.externals import array_api_compat as vendored

    from relunet.network import _compat

    monkeypatch.setitem(sys.modules, "array_api_compat", None)  # import raises ImportError
    _compat.cache_clear()  # the choice is cached: make it again, and again after the test
    try:
        assert _compat() is vendored
        X, y, params, sw = problem
        L, grads = loss_and_grads(params, X, y, 0.05, sample_weight=sw)
        L_s, grads_s = loss_and_grads(_strict(*params), xp.asarray(X), xp.asarray(y), 0.05,
                                      sample_weight=xp.asarray(sw))
    finally:
        _compat.cache_clear()
    assert L_s == pytest.approx(L, rel=1e-14)
    np.testing.assert_allclose(np.asarray(grads_s[0]), grads[0], rtol=1e-13, atol=1e-15)


def test_forward_softmax_and_loss_on_strict_arrays(problem):
    X, y, params, _ = problem
    f, h = forward(params, X)
    f_s, h_s = forward(_strict(*params), xp.asarray(X))
    np.testing.assert_allclose(np.asarray(f_s), f, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(h_s), h, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(softmax(f_s)), softmax(f), rtol=1e-13)
    np.testing.assert_allclose(np.asarray(log_softmax(f_s)), log_softmax(f), rtol=1e-13)
    assert loss(_strict(*params), xp.asarray(X), xp.asarray(y), 0.1) == pytest.approx(
        loss(params, X, y, 0.1), rel=1e-14
    )


# ---------------------------------------------------------------------------------------
# The estimator under scikit-learn's array_api_dispatch (relunet.arrayapi).

import json  # noqa: E402
import os  # noqa: E402
import warnings  # noqa: E402

import sklearn  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from relunet import ReluNetClassifier, arrayapi  # noqa: E402
from relunet.optim import make_optimizer  # noqa: E402

needs_scipy_array_api = pytest.mark.skipif(
    os.environ.get("SCIPY_ARRAY_API") != "1",
    reason="scikit-learn's array_api_dispatch needs SCIPY_ARRAY_API=1 set before SciPy is "
    "imported (tests/conftest.py sets it unless a plugin imported SciPy first)",
)


def _torch():
    return pytest.importorskip("torch", reason="torch (CPU) is a test extra")


def _dispatch():
    return sklearn.config_context(array_api_dispatch=True)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_classification(120, 6, n_informative=4, n_classes=3, random_state=0)
    return X, y


def _fit_quietly(model, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args, **kw)


def _host(a):
    return arrayapi._to_host(a)


SETTINGS = {
    "adam": dict(solver="adam"),
    "sgd-nesterov": dict(solver="sgd", learning_rate_init=0.05),
    "sgd-plain": dict(solver="sgd", learning_rate_init=0.05, nesterovs_momentum=False,
                      learning_rate="invscaling"),
    "gd": dict(solver="gd", learning_rate_init=0.3),
}


@pytest.mark.parametrize("name", SETTINGS)
def test_rule_is_optims_rule_bit_for_bit_on_numpy(name):
    """arrayapi.Rule does optim.py's operations in optim.py's order: the same bits."""
    cfg = SETTINGS[name]
    rng = np.random.default_rng(3)
    params = [rng.standard_normal((5, 4)), rng.standard_normal((5, 3))]
    ours = [W.copy() for W in params]
    kw = dict(nesterov=cfg.get("nesterovs_momentum", True), momentum=0.8, beta_1=0.85,
              beta_2=0.99, epsilon=1e-7)
    reference = make_optimizer(cfg["solver"], params, **kw)
    import array_api_compat.numpy as xnp

    rule = arrayapi.Rule(cfg["solver"], ours, xnp, **kw)
    for step in range(6):
        grads = [rng.standard_normal(W.shape) for W in params]
        lr = 0.01 * (step + 1)
        reference.step(params, grads, lr)
        rule.step(ours, grads, lr)
        for W, W_ours in zip(params, ours, strict=True):
            np.testing.assert_array_equal(W_ours, W)


def test_rule_on_strict_arrays_is_optims_rule():
    rng = np.random.default_rng(4)
    params = [rng.standard_normal((4, 3)), rng.standard_normal((4, 2))]
    strict = [xp.asarray(W) for W in params]
    reference = make_optimizer("adam", params)
    rule = arrayapi.Rule("adam", strict, xp)
    for _ in range(4):
        grads = [rng.standard_normal(W.shape) for W in params]
        reference.step(params, grads, 0.01)
        rule.step(strict, [xp.asarray(g) for g in grads], 0.01)
    for W, W_s in zip(params, strict, strict=True):
        np.testing.assert_array_equal(np.asarray(W_s), W)


def _strict_data(X, y):
    return xp.asarray(X), xp.asarray(y)


def _torch_data(X, y):
    torch = _torch()
    return torch.asarray(X), torch.asarray(y)


def _torch_cuda_data(X, y):
    torch = _torch()
    if not torch.cuda.is_available():
        pytest.skip("torch finds no CUDA device on this machine")
    return torch.asarray(X, device="cuda"), torch.asarray(y, device="cuda")


def _cupy_data(X, y):
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed (GPU machines only)")
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception:  # CuPy without a driver or a device
        pytest.skip("CuPy finds no CUDA device on this machine")
    return cupy.asarray(X), cupy.asarray(y)


LIBRARIES = {"array_api_strict": _strict_data, "torch": _torch_data,
             "torch-cuda": _torch_cuda_data, "cupy": _cupy_data}


@needs_scipy_array_api
@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("name", SETTINGS)
def test_fit_on_other_arrays_equals_the_numpy_fit(blobs, library, name):
    """Same seed: the same start, the same batches, the same weights to float64 rounding."""
    X, y = blobs
    kw = dict(dtype="float64", max_iter=4, random_state=1, batch_size=32, alpha=1e-3,
              **SETTINGS[name])
    ref = _fit_quietly(ReluNetClassifier(**kw), X, y)
    Xa, ya = LIBRARIES[library](X, y)
    with _dispatch():
        model = _fit_quietly(ReluNetClassifier(**kw), Xa, ya)
        assert type(model.W1_) is type(Xa) and type(model.classes_) is type(ya)
        np.testing.assert_allclose(_host(model.W1_), ref.W1_, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(_host(model.W2_), ref.W2_, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(model.loss_curve_, ref.loss_curve_, rtol=1e-13)
        assert (model.n_iter_, model.t_, model.stop_reason_) == (ref.n_iter_, ref.t_,
                                                                  ref.stop_reason_)
        proba = model.predict_proba(Xa)
        assert type(proba) is type(Xa)
        np.testing.assert_allclose(_host(proba), ref.predict_proba(X), rtol=1e-11, atol=1e-14)
        np.testing.assert_array_equal(_host(model.predict(Xa)), ref.predict(X))
        np.testing.assert_allclose(_host(model.decision_function(Xa)),
                                   ref.decision_function(X), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(_host(model.predict_log_proba(Xa)),
                                   ref.predict_log_proba(X), rtol=1e-11, atol=1e-13)
        assert model.score(Xa, ya) == pytest.approx(ref.score(X, y))


WEIGHTED = {
    "sample_weight": (dict(), True),
    "class_weight-balanced": (dict(class_weight="balanced"), True),
    "class_weight-dict": (dict(class_weight={0: 2.0, 2: 0.5}), False),
    "early_stopping": (dict(early_stopping=True, validation_fraction=0.2), False),
    "early_stopping-weighted": (dict(early_stopping=True, validation_fraction=0.2), True),
}


@needs_scipy_array_api
@pytest.mark.parametrize("library", LIBRARIES)  # strict: what CuPy gets (no slices past the end)
@pytest.mark.parametrize("name", WEIGHTED)
def test_weights_and_early_stopping_on_other_arrays_equal_numpy(blobs, name, library):
    X, y = blobs
    extra, weighted = WEIGHTED[name]
    sw = np.random.default_rng(5).random(X.shape[0]) if weighted else None
    if weighted:
        sw[::7] = 0.0  # zero weights drop rows, in both loops
    kw = dict(dtype="float64", max_iter=6, random_state=2, batch_size=25, tol=0.0, **extra)
    ref = _fit_quietly(ReluNetClassifier(**kw), X, y, sample_weight=sw)
    Xa, ya = LIBRARIES[library](X, y)
    swa = None if sw is None else LIBRARIES[library](sw, y)[0]
    with _dispatch():
        model = _fit_quietly(ReluNetClassifier(**kw), Xa, ya, sample_weight=swa)
    np.testing.assert_allclose(_host(model.W1_), ref.W1_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.loss_curve_, ref.loss_curve_, rtol=1e-13)
    if extra.get("early_stopping"):
        np.testing.assert_allclose(model.validation_loss_curve_, ref.validation_loss_curve_,
                                   rtol=1e-12)
        np.testing.assert_allclose(model.validation_scores_, ref.validation_scores_,
                                   rtol=1e-12)
        assert model.best_loss_ == pytest.approx(ref.best_loss_, rel=1e-12)


@needs_scipy_array_api
def test_partial_fit_and_warm_start_on_torch_equal_numpy(blobs):
    X, y = blobs
    Xt, yt = _torch_data(X, y)
    kw = dict(dtype="float64", random_state=3, batch_size=40, max_iter=2)
    ref, model = ReluNetClassifier(**kw), ReluNetClassifier(**kw)
    for half in (slice(0, 60), slice(60, None), slice(0, 60)):
        ref.partial_fit(X[half], y[half], classes=[0, 1, 2])
        with _dispatch():
            model.partial_fit(Xt[half], yt[half], classes=[0, 1, 2])
    np.testing.assert_allclose(_host(model.W1_), ref.W1_, rtol=1e-12, atol=1e-14)
    assert model.n_iter_ == ref.n_iter_ == 3 and model.t_ == ref.t_
    ref.set_params(warm_start=True)
    model.set_params(warm_start=True)
    _fit_quietly(ref, X, y)
    with _dispatch():
        _fit_quietly(model, Xt, yt)
    np.testing.assert_allclose(_host(model.W2_), ref.W2_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.loss_curve_, ref.loss_curve_, rtol=1e-12)


@needs_scipy_array_api
def test_string_labels_stay_on_the_host(blobs):
    X, y = blobs
    names = np.array(["cat", "dog", "eel"])[y]
    Xt, _ = _torch_data(X, y)
    with _dispatch():
        model = _fit_quietly(ReluNetClassifier(max_iter=3, random_state=0), Xt, names)
        assert isinstance(model.classes_, np.ndarray)
        assert model.classes_.tolist() == ["cat", "dog", "eel"]
        assert type(model.W1_) is type(Xt)
        predicted = model.predict(Xt)
        assert isinstance(predicted, np.ndarray) and set(predicted) <= {"cat", "dog", "eel"}
        assert 0.0 <= model.score(Xt, names) <= 1.0


@needs_scipy_array_api
def test_boolean_torch_labels_train_like_numpy_ones(blobs):
    # PyTorch cannot sort or search booleans: they go to the host, as string labels do
    torch = _torch()
    X, y = blobs
    Xt, _ = _torch_data(X, y)
    kw = dict(max_iter=3, random_state=0, dtype="float64")
    ref = _fit_quietly(ReluNetClassifier(**kw), X, y == 1)
    with _dispatch():
        model = _fit_quietly(ReluNetClassifier(**kw), Xt, torch.asarray(y == 1))
        assert model.classes_.tolist() == [False, True]
        predicted = np.asarray(model.predict(Xt))
    np.testing.assert_allclose(model.W1_.numpy(), ref.W1_, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(predicted, ref.predict(X))


@needs_scipy_array_api
def test_lbfgs_under_dispatch_is_refused_clearly(blobs):
    Xt, yt = _torch_data(*blobs)
    with _dispatch(), pytest.raises(ValueError, match="solver='lbfgs'.*'gd', 'sgd' or 'adam'"):
        ReluNetClassifier(solver="lbfgs").fit(Xt, yt)


@needs_scipy_array_api
def test_unknown_labels_in_partial_fit_are_named(blobs):
    Xt, yt = _torch_data(*blobs)
    model = ReluNetClassifier(random_state=0)
    with _dispatch():
        model.partial_fit(Xt, yt, classes=[0, 1, 2])
        bad = yt.clone()
        bad[5] = 7
        with pytest.raises(ValueError, match=r"not among the model's classes: \[7\]"):
            model.partial_fit(Xt, bad)


@needs_scipy_array_api
def test_device_weights_without_dispatch_say_what_to_do(blobs):
    X, y = blobs
    with _dispatch():
        model = _fit_quietly(ReluNetClassifier(max_iter=2), *_torch_data(X, y))
    with pytest.raises(ValueError, match="array_api_dispatch=True.*to_numpy"):
        model.predict(X)


@needs_scipy_array_api
def test_to_numpy_and_to_device_round_trip(blobs):
    torch = _torch()
    X, y = blobs
    with _dispatch():
        model = _fit_quietly(ReluNetClassifier(max_iter=3, random_state=0, dtype="float64"),
                             *_torch_data(X, y))
    on_host = arrayapi.to_numpy(model)
    assert isinstance(on_host.W1_, np.ndarray) and isinstance(on_host.classes_, np.ndarray)
    assert type(model.W1_) is torch.Tensor  # the argument is not changed
    with _dispatch():
        expected = _host(model.predict_proba(torch.asarray(X)))
    np.testing.assert_array_equal(on_host.W1_, _host(model.W1_))
    # NumPy predicts with its own BLAS loop: the same numbers to rounding
    np.testing.assert_allclose(on_host.predict_proba(X), expected, rtol=1e-13, atol=1e-16)
    assert arrayapi.to_numpy(on_host) is on_host
    back = arrayapi.to_device(on_host, torch, "cpu")
    assert type(back.W1_) is torch.Tensor and str(back.W1_.device) == "cpu"
    with _dispatch():
        np.testing.assert_array_equal(_host(back.predict_proba(torch.asarray(X))), expected)
    params = arrayapi.to_device(relunet_params(on_host), xp)
    assert all(type(W) is type(xp.asarray(0.0)) for W in params)


def relunet_params(model):
    from relunet import Params

    return Params(model.W1_, model.W2_)


@needs_scipy_array_api
def test_torch_trained_model_file_equals_the_numpy_trained_one(blobs, tmp_path):
    """The same file, but for timings (created, fit_seconds, per-epoch seconds) and
    float rounding (float64) in the weights and losses."""
    X, y = blobs
    kw = dict(dtype="float64", max_iter=3, random_state=4, batch_size=30)
    ref = _fit_quietly(ReluNetClassifier(**kw), X, y)
    with _dispatch():
        model = _fit_quietly(ReluNetClassifier(**kw), *_torch_data(X, y))
    ref.save(tmp_path / "numpy.npz")
    model.save(tmp_path / "torch.npz")
    with np.load(tmp_path / "numpy.npz") as a, np.load(tmp_path / "torch.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            if key == "metadata":
                continue
            assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape
            np.testing.assert_allclose(b[key], a[key], rtol=1e-12, atol=1e-14)
        meta_a, meta_b = (json.loads(bytes(f["metadata"]).decode()) for f in (a, b))
    for meta in (meta_a, meta_b):
        del meta["created"]
        training = meta["training"]
        del training["fit_seconds"]
        for record in training["history"]:
            del record["seconds"]
    losses = [(m["training"].pop("loss_curve"), m["training"].pop("final_loss"),
               m["training"].pop("best_loss"),
               [r.pop("train_loss") for r in m["training"]["history"]]) for m in (meta_a, meta_b)]
    assert meta_b == meta_a
    np.testing.assert_allclose(np.hstack([np.ravel(v) for v in losses[1]]),
                               np.hstack([np.ravel(v) for v in losses[0]]), rtol=1e-13)
    loaded = relunet_load(tmp_path / "torch.npz")
    np.testing.assert_allclose(loaded.predict_proba(X), ref.predict_proba(X), rtol=1e-11)


def relunet_load(path):
    from relunet import load

    return load(path)


@needs_scipy_array_api
@pytest.mark.parametrize("namespace", ["array_api_strict", "torch"])
def test_sklearn_array_api_values_check(namespace):
    """scikit-learn's own check, with values: attributes and outputs equal NumPy's (float64,
    with sample weights).  parametrize_with_checks (test_sklearn_checks.py) runs the
    type/device/shape checks on every namespace and device present."""
    from sklearn.utils.estimator_checks import check_array_api_input

    if namespace == "torch":
        _torch()
    device = "CPU_DEVICE" if namespace == "array_api_strict" else "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check_array_api_input("ReluNetClassifier", ReluNetClassifier(dtype="float64"),
                              array_namespace=namespace, device_name=device,
                              dtype_name="float64", check_values=True, check_sample_weight=True)


@needs_scipy_array_api
def test_divergence_on_torch_leaves_the_model_as_it_was(blobs):
    from relunet import TrainingDiverged

    X, y = blobs
    Xt, yt = _torch_data(X * 1e150, y)
    model = ReluNetClassifier(solver="sgd", random_state=0, max_iter=2, dtype="float64")
    with _dispatch():
        _fit_quietly(model, *_torch_data(X, y))
        before = _host(model.W1_).copy(), model.n_iter_
        model.set_params(learning_rate_init=1e3, warm_start=True)
        with pytest.raises(TrainingDiverged, match="diverged in epoch"):
            model.fit(Xt, yt)
    np.testing.assert_array_equal(_host(model.W1_), before[0])
    assert model.n_iter_ == before[1]


class _CopyCounter:
    """Counts host<->device traffic of torch tensors: tensors made from host data (NumPy
    arrays, lists, Python scalars) and tensors read back to the host (float(), bool(),
    .item(), .numpy(), ...).  On a GPU each is a copy over the bus and a wait."""

    TO_DEVICE = ("asarray", "tensor", "as_tensor", "from_numpy")
    TO_HOST = ("__float__", "__bool__", "__int__", "__index__", "item", "tolist", "numpy",
               "__array__")

    def __init__(self):
        torch = _torch()
        from torch.overrides import TorchFunctionMode

        counter = self
        self.log = []

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                name = getattr(func, "__name__", "")
                source = args[0] if args else (kwargs or {}).get("obj")
                if name in counter.TO_DEVICE and not isinstance(source, torch.Tensor):
                    counter.log.append(name)
                elif name in counter.TO_HOST:
                    counter.log.append(name)
                return func(*args, **(kwargs or {}))

        self.mode = Mode()


@needs_scipy_array_api
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_no_host_device_copies_per_step_on_torch(solver):
    """Host<->device traffic per fit does not grow with the number of steps: 12 batches per
    epoch move exactly as much as 2 (a permutation per epoch, a few numbers per epoch)."""
    torch = _torch()
    rng = np.random.default_rng(0)
    X = torch.asarray(rng.standard_normal((120, 5)))
    y = torch.asarray(rng.integers(0, 3, 120))
    sw = torch.asarray(rng.random(120))
    counts = {}
    for batch_size in (10, 60):
        model = ReluNetClassifier(solver=solver, batch_size=batch_size, max_iter=3, tol=0.0,
                                  dtype="float64", random_state=0, alpha=1e-3)
        counter = _CopyCounter()
        with _dispatch(), counter.mode:
            _fit_quietly(model, X, y, sample_weight=sw)
        counts[batch_size] = counter.log
    assert counts[10] == counts[60]
    assert len(counts[10]) < 60  # a few per epoch (3 epochs) and per call


@needs_scipy_array_api
def test_float32_fit_on_torch_follows_the_numpy_fit(blobs):
    """float32 (the default): the same fit to float32 rounding over a few epochs."""
    X, y = blobs
    kw = dict(max_iter=3, random_state=6, batch_size=32)
    ref = _fit_quietly(ReluNetClassifier(**kw), X, y)
    with _dispatch():
        model = _fit_quietly(ReluNetClassifier(**kw), *_torch_data(X.astype(np.float32), y))
        assert str(model.W1_.dtype) == "torch.float32"
        np.testing.assert_allclose(_host(model.W1_), ref.W1_, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(model.loss_curve_, ref.loss_curve_, rtol=1e-5)


@needs_scipy_array_api
def test_numpy_labels_with_torch_features(blobs):
    """classes_ follows y (NumPy here); the weights and the predictions follow X."""
    torch = _torch()
    X, y = blobs
    labels = y + 10
    with _dispatch():
        model = _fit_quietly(ReluNetClassifier(max_iter=2, random_state=0),
                             torch.asarray(X), labels)
        assert isinstance(model.classes_, np.ndarray) and model.classes_.tolist() == [10, 11, 12]
        predicted = model.predict(torch.asarray(X))
        assert isinstance(predicted, torch.Tensor)
        assert set(predicted.tolist()) <= {10, 11, 12}
        with pytest.raises(ValueError, match="must use the same namespace"):
            model.predict(X)  # NumPy X for a torch-fitted model: scikit-learn's message


@needs_scipy_array_api
def test_predict_on_another_device_is_refused_and_to_device_moves_the_model(blobs):
    """array_api_strict's two devices stand for CPU and GPU: no silent cross-device work."""
    X, y = blobs
    other = xp.Device("device1")
    with _dispatch():
        model = _fit_quietly(ReluNetClassifier(max_iter=2, random_state=0, dtype="float64"),
                             xp.asarray(X), xp.asarray(y))
        with pytest.raises(ValueError, match="same device as those passed to fit"):
            model.predict(xp.asarray(X, device=other))
        moved = arrayapi.to_device(model, xp, other)
        assert moved.W1_.device == other and moved.classes_.device == other
        proba = moved.predict_proba(xp.asarray(X, device=other))
        assert proba.device == other
        np.testing.assert_array_equal(np.asarray(xp.asarray(proba, device=xp.Device(
            "CPU_DEVICE"))), np.asarray(model.predict_proba(xp.asarray(X))))


@needs_scipy_array_api
def test_pipeline_trained_on_torch_saves_and_loads(blobs, tmp_path):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from relunet import load, save

    X, y = blobs
    with _dispatch():
        pipe = make_pipeline(StandardScaler(), ReluNetClassifier(max_iter=3, random_state=0,
                                                                 dtype="float64"))
        _fit_quietly(pipe, *_torch_data(X, y))
        expected = _host(pipe.predict_proba(_torch_data(X, y)[0]))
    save(pipe, tmp_path / "pipe.npz")
    np.testing.assert_allclose(load(tmp_path / "pipe.npz").predict_proba(X), expected,
                               rtol=1e-12, atol=1e-15)


@needs_scipy_array_api
@pytest.mark.parametrize("library", LIBRARIES)  # strict: no slice may stop past the end
def test_prediction_in_chunks_on_other_arrays_equals_numpy(library):
    """More rows than one forward pass takes (relunet.arrayapi._PREDICT_CHUNK)."""
    rng = np.random.default_rng(8)
    X, y = rng.standard_normal((arrayapi._PREDICT_CHUNK + 123, 3)), rng.integers(0, 3, 8315)
    ref = _fit_quietly(ReluNetClassifier(max_iter=1, random_state=0, dtype="float64",
                                         hidden_units=4), X[:200], y[:200])
    Xa, ya = LIBRARIES[library](X, y)
    with _dispatch():
        model = _fit_quietly(ReluNetClassifier(max_iter=1, random_state=0, dtype="float64",
                                               hidden_units=4), Xa[:200, ...], ya[:200])
        proba = model.predict_proba(Xa)
        labels = model.predict(Xa)
    assert tuple(proba.shape) == (X.shape[0], 3)
    np.testing.assert_allclose(_host(proba), ref.predict_proba(X), rtol=1e-11, atol=1e-14)
    np.testing.assert_array_equal(_host(labels), ref.predict(X))


# ------------------------------------------------ divergence: one test body, both trainers


def _trainer(backend, params, cfg):
    from relunet.train import Trainer

    if backend == "numpy":
        return Trainer(params, cfg, rng=0), (lambda a: a)
    return arrayapi.ArrayTrainer(_strict(*params), cfg, rng=np.random.default_rng(0),
                                 xp=xp), (lambda a: xp.asarray(a))


def _spiral(n=100, seed=0):
    from relunet.datasets import make_spiral

    return make_spiral(n, 3, rng=seed)


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_a_loss_up_by_orders_of_magnitude_stops_and_undoes_the_epoch_on_each_trainer(backend):
    # A learning rate of 1e4 takes the loss from ~1 to ~1e8, still finite: training must not
    # "succeed".  Both trainers stop at DIVERGED_FACTOR x max(first epoch's loss, log K).
    from relunet.optim import Constant
    from relunet.train import TrainConfig, TrainingDiverged

    X, y = _spiral()
    cfg = TrainConfig(solver="sgd", batch_size=10, shuffle=False, learning_rate_init=0.01)
    trainer, to = _trainer(backend, init_params(2, 8, 3, rng=0), cfg)
    Xb, yb = to(X), to(y)
    first = trainer.partial_fit(Xb, yb).train_loss
    before = [np.asarray(W).copy() for W in trainer.params]
    trainer.schedule = Constant(1e4)
    with pytest.raises(TrainingDiverged, match=r"epoch 2: the training loss rose to .*more "
                                               r"than 1000x the first epoch's loss .*smaller "
                                               r"learning rate"):
        trainer.partial_fit(Xb, yb)
    assert first < 2 * np.log(3)
    for W, W0 in zip(trainer.params, before, strict=True):
        np.testing.assert_array_equal(np.asarray(W), W0)
    assert trainer.n_epochs == 1


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_a_blown_up_but_finite_end_warns_on_each_trainer(backend):
    # A loss that ends far above log K (the loss of guessing) but never rises 1000-fold: a
    # warning naming cause and fix, not silent success.  Huge starting weights and a
    # negligible rate keep the loss at ~1e2-1e3 from the first epoch to the last.
    from relunet.train import DivergenceWarning, TrainConfig

    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((120, 6)), rng.integers(0, 3, 120)
    big = [W * 300 for W in init_params(6, 8, 3, rng=1)]
    cfg = TrainConfig(solver="sgd", batch_size=20, learning_rate_init=1e-12, alpha=0.0,
                      max_iter=3, learning_rate="constant")
    trainer, to = _trainer(backend, big, cfg)
    with pytest.warns(DivergenceWarning, match=r"diverged .* log K .* smaller learning rate"):
        trainer.fit(to(X), to(y))
    assert trainer.n_epochs == 3  # ran to the end: the 1000x stop did not fire
    assert trainer.history.epochs[-1].train_loss > 10 * np.log(3)
