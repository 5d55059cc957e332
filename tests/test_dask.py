"""DaskReluNetClassifier: the same model as on one machine, on a real multi-process cluster."""

import inspect
import pickle

import numpy as np
import pytest

pytest.importorskip("distributed", reason="the Dask tests need relunet[dask]")
da = pytest.importorskip("dask.array", reason="the Dask tests need relunet[dask]")
dd = pytest.importorskip("dask.dataframe", reason="the Dask tests need relunet[dask]")

import dask  # noqa: E402
import pandas as pd  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import relunet  # noqa: E402
from relunet import ReluNetClassifier  # noqa: E402
from relunet.dask import DaskReluNetClassifier, LostPartitionError, _Cluster  # noqa: E402
from relunet.network import Params, init_params, loss_and_grads  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore", category=ConvergenceWarning),
    pytest.mark.usefixtures("one_blas_thread"),
]


@pytest.fixture(scope="module")
def client():
    """One cluster of 2 worker processes for the whole module (starting one takes seconds)."""
    with LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return X[:360], y[:360]


def rows(X, chunks):
    """``X`` as a dask array with the given row chunks and whole rows."""
    return da.from_array(X, chunks=(chunks,) + (-1,) * (X.ndim - 1))


FULL = dict(hidden_units=12, dtype="float64", random_state=0, max_iter=25)
CHUNKS = [(360,), (180, 180), (60, 200, 100), (0, 150, 0, 210, 0), (40,) * 8 + (0, 20, 20)]
CHUNK_IDS = ["1 part", "2 equal", "3 unequal", "2 + 3 empty", "11: 2 tree levels"]


# ------------------------------------------------------------------ the constructor
def test_constructor_is_relunetclassifiers_plus_client(client):
    base = inspect.signature(ReluNetClassifier.__init__).parameters
    ours = inspect.signature(DaskReluNetClassifier.__init__).parameters
    assert list(ours) == [*base, "client"]
    for name, p in base.items():
        assert ours[name] == p
    assert ours["client"].default is None
    assert ours["client"].kind is inspect.Parameter.KEYWORD_ONLY
    params = DaskReluNetClassifier().get_params()
    assert params == {**ReluNetClassifier().get_params(), "client": None}
    model = DaskReluNetClassifier(hidden_units=7, solver="gd")
    assert clone(model).get_params() == model.get_params()
    assert "hidden_units=7" in repr(model)
    assert clone(DaskReluNetClassifier(client=client)).client is client  # shared, not copied
    with pytest.raises(TypeError, match="unexpected keyword argument 'hiden_units'"):
        DaskReluNetClassifier(hiden_units=7)


# ------------------------------------------------------------------ the math
def test_cluster_gradient_matches_finite_differences_and_the_reference(client, digits):
    # The Spark-style sums, divided once, against network.loss_and_grads on all the data
    # (independent: no partitions) and against central differences of the total loss.
    X, y = digits[0][:90], digits[1][:90]
    rng = np.random.default_rng(1)
    sw = rng.uniform(0.2, 2.0, 90)
    alpha = 0.05
    params = init_params(64, 5, 10, rng=2)
    params = Params(params.W1 + 0.1 * rng.standard_normal(params.W1.shape), params.W2)
    cluster = _Cluster(client, rows(X, (20, 0, 70)), rows(y, (20, 0, 70)), rows(sw, (20, 0, 70)),
                       np.dtype(np.float64))
    try:
        labels, _ = cluster.stats()
        cluster.encode(labels, None)
        mean = cluster.loss_and_grads(params, None, None, alpha, None)
        grads = cluster.grads

        def total(p):
            return cluster.loss_and_grads(p, None, None, alpha, None) + alpha / 2 * sum(
                float(np.sum(W * W)) for W in p)

        ref_L, ref_g = loss_and_grads(params, X, np.searchsorted(labels, y), alpha,
                                      sample_weight=sw)
        assert total(params) == pytest.approx(ref_L, rel=1e-13)
        for g, r in zip(grads, ref_g, strict=True):
            np.testing.assert_allclose(g, r, rtol=0, atol=1e-13)
        assert mean == pytest.approx(ref_L - alpha / 2 * sum(float(np.sum(W * W))
                                                             for W in params), rel=1e-13)
        h = 1e-6
        for which, (i, j) in [(0, (3, 1)), (0, (64, 4)), (1, (2, 7)), (1, (5, 0))]:
            plus = [W.copy() for W in params]
            minus = [W.copy() for W in params]
            plus[which][i, j] += h
            minus[which][i, j] -= h
            fd = (total(Params(*plus)) - total(Params(*minus))) / (2 * h)
            assert grads[which][i, j] == pytest.approx(fd, rel=1e-6, abs=1e-9)
    finally:
        cluster.release()


# ------------------------------------------------------------------ parity with one machine
@pytest.mark.parametrize("chunks", CHUNKS, ids=CHUNK_IDS)
def test_lbfgs_matches_the_single_machine_estimator(client, digits, chunks):
    X, y = digits
    kw = dict(FULL, solver="lbfgs")
    ref = ReluNetClassifier(**kw).fit(X, y)
    model = DaskReluNetClassifier(**kw).fit(rows(X, chunks), rows(y, chunks))
    assert model.n_iter_ == ref.n_iter_ == 25
    np.testing.assert_allclose(model.W1_, ref.W1_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(model.W2_, ref.W2_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(model.loss_curve_, ref.loss_curve_, rtol=1e-12)
    assert model.stop_reason_ == ref.stop_reason_


@pytest.mark.parametrize("chunks", CHUNKS[1:3], ids=CHUNK_IDS[1:3])
def test_gd_matches_the_single_machine_estimator(client, digits, chunks):
    X, y = digits
    kw = dict(FULL, solver="gd", learning_rate_init=0.5, alpha=1e-3)
    ref = ReluNetClassifier(**kw).fit(X, y)
    model = DaskReluNetClassifier(**kw).fit(rows(X, chunks), rows(y, chunks))
    np.testing.assert_allclose(model.W1_, ref.W1_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.W2_, ref.W2_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.loss_curve_, ref.loss_curve_, rtol=1e-12)


def test_weights_and_balanced_class_weight_match_the_single_machine_estimator(client, digits):
    # Zero weights (dropped rows), a partition whose weights are all zero, class weights
    # computed from the counts of all partitions.
    X, y = digits
    sw = np.random.default_rng(0).uniform(0.0, 3.0, X.shape[0])
    sw[:40] = 0.0
    kw = dict(FULL, solver="lbfgs", class_weight="balanced", max_iter=15)
    ref = ReluNetClassifier(**kw).fit(X, y, sample_weight=sw)
    chunks = (40, 120, 200)
    model = DaskReluNetClassifier(**kw).fit(rows(X, chunks), rows(y, chunks),
                                            sample_weight=rows(sw, chunks))
    np.testing.assert_allclose(model.W1_, ref.W1_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(model.W2_, ref.W2_, rtol=0, atol=1e-10)


def test_string_labels_and_float32(client, digits):
    X, y = digits
    labels = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                       "nine"], dtype=object)[y]
    kw = dict(FULL, solver="lbfgs", dtype="float32", max_iter=10)
    ref = ReluNetClassifier(**kw).fit(X, labels)
    model = DaskReluNetClassifier(**kw).fit(rows(X, (100, 260)), rows(labels, (100, 260)))
    assert list(model.classes_) == list(ref.classes_)
    assert model.W1_.dtype == np.float32
    # float32 partial sums, added in float64: equal to float32 rounding, amplified by L-BFGS
    np.testing.assert_allclose(model.W1_, ref.W1_, rtol=0, atol=2e-3)
    assert np.mean(model.predict(X) == ref.predict(X)) > 0.97


# ------------------------------------------------------------------ the cluster
def test_bit_identical_whatever_the_number_of_workers(client, digits):
    X, y = digits
    chunks = (100, 100, 90, 70)
    kw = dict(FULL, solver="lbfgs", max_iter=15)
    two = DaskReluNetClassifier(**kw, client=client).fit(rows(X, chunks), rows(y, chunks))
    # One worker, a thread of this process this time (placement must not matter either).
    with LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                      dashboard_address=":0") as cluster, \
            Client(cluster, set_as_default=False) as c1:
        one = DaskReluNetClassifier(**kw, client=c1).fit(rows(X, chunks), rows(y, chunks))
    assert np.array_equal(one.W1_, two.W1_)
    assert np.array_equal(one.W2_, two.W2_)
    assert one.loss_curve_ == two.loss_curve_


def test_a_worker_without_data(client, digits):
    # One partition on two workers: one of them holds nothing and must not disturb the fit.
    # (NumPy inputs are sent to the cluster as one partition.)
    X, y = digits
    kw = dict(FULL, solver="gd", learning_rate_init=0.5, max_iter=5)
    ref = ReluNetClassifier(**kw).fit(X, y)
    model = DaskReluNetClassifier(**kw).fit(X, y)
    assert len(client.scheduler_info()["workers"]) == 2
    np.testing.assert_allclose(model.W1_, ref.W1_, rtol=0, atol=1e-12)


def _lose_busiest_worker(client, how):
    """Restart, or crash (the nanny starts a new one), the worker holding the most data."""
    import os

    held = client.has_what()
    busiest = max(held, key=lambda w: len(held[w]))
    if how == "restart":
        client.restart_workers([busiest])
    else:
        import signal

        pid = client.run(os.getpid, workers=[busiest])[busiest]  # a local process
        os.kill(pid, signal.SIGKILL)  # no goodbye to the scheduler
    return busiest


@pytest.mark.parametrize("how", ["restart", "crash"])
def test_a_worker_lost_mid_fit_gives_the_same_result(client, digits, how):
    # The lost partitions are recomputed from their lineage (here: dask.array.from_array).
    X, y = digits
    chunks = (120, 120, 120)
    kw = dict(FULL, solver="lbfgs", max_iter=12)
    calm = DaskReluNetClassifier(**kw).fit(rows(X, chunks), rows(y, chunks))
    restarted = []

    def kill_at_epoch_4(info):
        if info.epoch == 4:
            restarted.append(_lose_busiest_worker(client, how))

    model = DaskReluNetClassifier(**kw, callback=kill_at_epoch_4)
    model.fit(rows(X, chunks), rows(y, chunks))
    client.wait_for_workers(2, timeout=60)  # the nanny's replacement, for the next tests
    assert restarted
    assert np.array_equal(model.W1_, calm.W1_)
    assert np.array_equal(model.W2_, calm.W2_)
    assert model.n_iter_ == 12


def test_lost_scattered_partition_is_named(client, digits):
    X, y = digits
    workers = sorted(client.scheduler_info()["workers"])
    block = client.scatter(X[200:], workers=[workers[1]])  # cannot be recomputed
    dX = da.concatenate([
        rows(X[:200], (200,)),
        da.from_delayed(dask.delayed(block), shape=(160, 64), dtype=X.dtype),
    ])

    def kill_holder(info):
        if info.epoch == 2:
            client.restart_workers([workers[1]])

    model = DaskReluNetClassifier(**dict(FULL, solver="lbfgs", max_iter=10),
                                  callback=kill_holder)
    with pytest.raises(LostPartitionError, match=r"^partition 1 of the training data was lost"):
        model.fit(dX, rows(y, (200, 160)))
    assert not hasattr(model, "W1_")  # a failed fit leaves the model as it was


# ------------------------------------------------------------------ mini-batch solvers
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_local_sgd_on_one_partition_is_single_machine_sgd(client, digits, solver):
    X, y = digits
    kw = dict(FULL, solver=solver, shuffle=False, batch_size=50, learning_rate_init=0.05,
              max_iter=4)
    ref = ReluNetClassifier(**kw).fit(X, y)
    model = DaskReluNetClassifier(**kw).fit(rows(X, (360,)), rows(y, (360,)))
    np.testing.assert_allclose(model.W1_, ref.W1_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.loss_curve_, ref.loss_curve_, rtol=1e-12)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_local_sgd_averages_weights_and_moments_by_partition_size(client, digits, solver):
    # By hand: each partition trained one epoch at a time by the single-machine estimator,
    # the weights and the optimizer's state averaged, weighted by the partitions' sizes.
    X, y = digits
    chunks = (100, 260)
    kw = dict(FULL, solver=solver, shuffle=False, batch_size=50, learning_rate_init=0.05,
              learning_rate="constant")  # one rate for all: cosine depends on max_iter
    model = DaskReluNetClassifier(**dict(kw, max_iter=2)).fit(rows(X, chunks), rows(y, chunks))

    classes = np.unique(y)
    parts = [(X[:100], y[:100]), (X[100:], y[100:])]
    locals_ = [ReluNetClassifier(**kw) for _ in parts]
    sizes = np.array([100.0, 260.0])
    for epoch in range(2):
        for est, (Xp, yp) in zip(locals_, parts, strict=True):
            est.partial_fit(Xp, yp, classes=classes)
        trainers = [est._trainer for est in locals_]
        W = [sum(s * t.params[i] for s, t in zip(sizes, trainers, strict=True)) / sizes.sum()
             for i in range(2)]
        state = [sum(s * t.optimizer.state[j] for s, t in zip(sizes, trainers, strict=True))
                 / sizes.sum() for j in range(len(trainers[0].optimizer.state))]
        for est, t in zip(locals_, trainers, strict=True):
            for i in range(2):
                t.params[i][...] = W[i]
            for j, s in enumerate(state):
                t.optimizer.state[j][...] = s
            if solver == "adam":  # steps: 2 and 6 batches of 50; round(1760 / 360) = 5
                t.optimizer.t = 5 * (epoch + 1)
            est.W1_, est.W2_ = t.params.W1.copy(), t.params.W2.copy()
    np.testing.assert_allclose(model.W1_, W[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.W2_, W[1], rtol=0, atol=1e-12)


def test_local_adam_comes_close_to_single_machine_accuracy_on_digits(client):
    # Not the same optimizer (see relunet.dask): two partitions averaged once per local epoch
    # take half as many distinct steps per epoch.  Measured (README): 0.936 vs 0.962 here.
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X, Xte, y, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    kw = dict(hidden_units=32, random_state=0, max_iter=30, learning_rate_init=3e-3)
    ref = ReluNetClassifier(**kw).fit(X, y)
    chunks = (673, 674)
    model = DaskReluNetClassifier(**kw).fit(rows(X, chunks), rows(y, chunks))
    acc_ref, acc = ref.score(Xte, yte), model.score(Xte, yte)
    assert acc_ref > 0.95
    assert acc > acc_ref - 0.05, (acc, acc_ref)
    # 4 syncs per epoch: another trajectory, the same number of epochs
    kw["max_iter"] = 3
    once = DaskReluNetClassifier(**kw).fit(rows(X, chunks), rows(y, chunks))
    often = DaskReluNetClassifier(**kw).fit(rows(X, chunks), rows(y, chunks), syncs_per_epoch=4)
    assert often.n_iter_ == once.n_iter_ == 3
    assert not np.array_equal(often.W1_, once.W1_)
    assert often.loss_curve_[-1] < often.loss_curve_[0]


# ------------------------------------------------------------------ inputs and outputs
def test_predict_on_dask_inputs_returns_dask_arrays_equal_to_local(client, digits):
    X, y = digits
    dX = rows(X, (100, 200, 60))
    for labels in (y, np.where(y < 5, "low", "high")):  # 10 classes, then 2
        model = DaskReluNetClassifier(**dict(FULL, solver="lbfgs", max_iter=5))
        model.fit(dX, rows(labels, (100, 200, 60)))
        local = model.to_local()
        assert type(local) is ReluNetClassifier
        for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
            out = getattr(model, method)(dX)
            assert isinstance(out, da.Array), method
            expected = getattr(local, method)(X)
            assert out.shape == expected.shape
            got = out.compute()
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected)
            np.testing.assert_array_equal(getattr(model, method)(X), expected)  # NumPy in


def test_dataframe_input(client, digits):
    X, y = digits
    names = [f"px{i}" for i in range(64)]
    df = pd.DataFrame(X, columns=names)
    ddf = dd.from_pandas(df, npartitions=3)
    ys = dd.from_pandas(pd.Series(y, name="y"), npartitions=3)
    kw = dict(FULL, solver="lbfgs", max_iter=10)
    ref = ReluNetClassifier(**kw).fit(df, y)
    model = DaskReluNetClassifier(**kw).fit(ddf, ys)
    np.testing.assert_allclose(model.W1_, ref.W1_, rtol=0, atol=1e-10)
    assert list(model.feature_names_in_) == names
    pred = model.predict(ddf)
    assert isinstance(pred, da.Array)
    np.testing.assert_array_equal(pred.compute(), ref.predict(df))
    with pytest.raises(ValueError, match="columns"):
        model.predict(ddf.rename(columns={"px0": "other"}))


def test_pickling_with_and_without_client(client, digits):
    X, y = digits
    model = DaskReluNetClassifier(**dict(FULL, solver="lbfgs", max_iter=5), client=client)
    back = pickle.loads(pickle.dumps(model))
    assert back.client is None and back.get_params()["hidden_units"] == 12
    model.fit(rows(X, (180, 180)), rows(y, (180, 180)))
    back = pickle.loads(pickle.dumps(model))
    assert back.client is None
    assert model.client is client  # pickling does not change the original
    np.testing.assert_array_equal(back.W1_, model.W1_)
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    back.fit(rows(X, (180, 180)), rows(y, (180, 180)))  # the current client
    np.testing.assert_array_equal(back.W1_, model.W1_)


def test_save_writes_the_plain_model(client, digits, tmp_path):
    from relunet import load

    X, y = digits
    model = DaskReluNetClassifier(**dict(FULL, solver="lbfgs", max_iter=5), client=client)
    model.fit(rows(X, (180, 180)), rows(y, (180, 180)))
    model.save(tmp_path / "m.npz")
    relunet.save(model, tmp_path / "direct.npz")  # relunet.save takes it too (to_local)
    for name in ("m.npz", "direct.npz"):
        loaded = load(tmp_path / name)
        assert type(loaded) is ReluNetClassifier
        np.testing.assert_array_equal(loaded.W1_, model.W1_)


# ------------------------------------------------------------------ clear errors
def test_column_chunked_x_is_refused(client, digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"chunked along its columns.*rechunk\(\{1: -1\}\)"):
        DaskReluNetClassifier(**FULL).fit(da.from_array(X, chunks=(180, 32)), rows(y, (180, 180)))


def test_text_feature_column_is_refused(client, digits):
    X, y = digits
    df = pd.DataFrame({"a": X[:, 0], "city": ["x"] * len(y)})
    with pytest.raises(TypeError, match="column 'city' has dtype"):
        DaskReluNetClassifier(**FULL).fit(dd.from_pandas(df, npartitions=2), y)


def test_nan_is_reported_by_row_and_partition(client, digits):
    X, y = digits
    X = X.copy()
    X[250, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity in row 251 \(partition 1, its row 51\)"):
        DaskReluNetClassifier(**FULL).fit(rows(X, (200, 160)), rows(y, (200, 160)))


def test_negative_weight_one_class_and_early_stopping_are_refused(client, digits):
    X, y = digits
    sw = np.ones(len(y))
    sw[7] = -1.0
    with pytest.raises(ValueError, match=r"sample_weight is -1.0 in row 8 \(partition 0"):
        DaskReluNetClassifier(**FULL).fit(rows(X, (200, 160)), rows(y, (200, 160)),
                                          sample_weight=rows(sw, (200, 160)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        DaskReluNetClassifier(**FULL).fit(rows(X, (200, 160)), rows(np.zeros(360), (200, 160)))
    with pytest.raises(ValueError, match="early_stopping=True is not supported"):
        DaskReluNetClassifier(**FULL, early_stopping=True).fit(rows(X, (360,)), rows(y, (360,)))
    assert not hasattr(DaskReluNetClassifier(solver="adam"), "partial_fit")


def test_no_client_is_a_clear_error(monkeypatch, digits):
    import distributed

    def none():
        raise ValueError("No clients found")

    monkeypatch.setattr(distributed, "default_client", none)
    X, y = digits
    with pytest.raises(ValueError, match="found no Dask client"):
        DaskReluNetClassifier(**FULL).fit(rows(X, (360,)), rows(y, (360,)))


def test_fit_leaves_no_data_on_the_workers(client, digits):
    import time

    def held():
        return {key for keys in client.has_what().values() for key in keys}

    X, y = digits
    before = held()
    DaskReluNetClassifier(**dict(FULL, solver="lbfgs", max_iter=3)).fit(
        rows(X, (180, 180)), rows(y, (180, 180)))
    for _ in range(50):  # releases reach the scheduler asynchronously
        if not held() - before:
            break
        time.sleep(0.05)
    assert not held() - before


# ------------------------------------------------------------------ the CLI's --dask
@pytest.fixture(scope="module")
def parquet_parts(tmp_path_factory, digits):
    """Digits as 3 Parquet files of unequal sizes with a label column 'digit'."""
    X, y = digits
    folder = tmp_path_factory.mktemp("parts")
    df = pd.DataFrame(X, columns=[f"px{i}" for i in range(64)])
    df["digit"] = y
    for i, (lo, hi) in enumerate([(0, 100), (100, 300), (300, 360)]):
        df.iloc[lo:hi].to_parquet(folder / f"part-{i}.parquet")
        df.iloc[lo:hi].to_csv(folder / f"part-{i}.csv", index=False)
    return folder, df


def test_cli_train_dask_saves_the_usual_model_file(client, parquet_parts, capsys):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from relunet import load
    from relunet.cli import main

    folder, df = parquet_parts
    out = folder / "model.npz"
    code = main(["train", str(folder / "part-*.parquet"), "--target", "digit",
                 "--dask", client.scheduler.address, "--solver", "lbfgs", "--epochs", "20",
                 "--hidden", "12", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "360 rows, 64 features, 3 partitions on 2 Dask workers" in text
    model = load(out)
    X, y = df.drop(columns="digit"), df["digit"].to_numpy()
    ref = make_pipeline(StandardScaler(), ReluNetClassifier(
        hidden_units=12, max_iter=20, solver="lbfgs", random_state=0, batch_size=64,
        learning_rate_init=5e-3)).fit(X, y)
    # float32 model: the same fit up to float32 rounding of the sums (and of the scaling)
    assert np.mean(model.predict(X) == ref.predict(X)) > 0.97
    np.testing.assert_allclose(model[0].mean_, ref[0].mean_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model[0].scale_, ref[0].scale_, rtol=1e-12)


def test_cli_train_dask_errors_are_one_line(client, parquet_parts, capsys):
    from relunet.cli import main

    folder, df = parquet_parts
    text = df.assign(city="x")
    text.to_parquet(folder / "text.parquet")
    here = client.scheduler.address
    cases = [
        (["--target", "nope", "--dask", here], "no column 'nope'"),
        (["--target", "digit", "--dask", "local:x"], "local:N needs a number of workers"),
        (["--target", "digit", "--labels", "y.npy", "--dask", here],
         "--dask does not support --labels"),
        (["--target", "digit", "--id", "prediction", "--drop", "x0", "--dask", here],
         "--dask does not support --id, --drop"),
    ]
    for extra, message in cases:
        assert main(["train", str(folder / "part-*.parquet"), *extra]) != 0
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert main(["train", str(folder / "text.parquet"), "--target", "digit",
                 "--dask", client.scheduler.address]) != 0
    err = capsys.readouterr().err
    assert "column 'city' has dtype" in err and err.count("\n") == 1, err
    assert main(["train", str(folder / "part-0.json"), "--target", "digit",
                 "--dask", client.scheduler.address]) != 0
    assert "reads Parquet" in capsys.readouterr().err


def test_cli_train_dask_reads_csv(client, parquet_parts, capsys):
    from relunet.cli import main

    folder, _ = parquet_parts
    code = main(["train", str(folder / "part-*.csv"), "--target", "digit", "--solver", "gd",
                 "--epochs", "3", "--dask", client.scheduler.address])
    assert code == 0
    assert "360 rows, 64 features, 3 partitions on 2 Dask workers" in capsys.readouterr().out


def test_empty_chunk_predicts_empty_blocks(client, digits):
    X, y = digits
    net = DaskReluNetClassifier(**FULL).fit(rows(X, (180, 180)), rows(y, (180, 180)))
    Xd = rows(X, (100, 0, 260))
    np.testing.assert_array_equal(net.predict(Xd).compute(), net.to_local().predict(X))
    assert net.predict_proba(Xd).compute().shape == (360, 10)
    assert net.decision_function(Xd).compute().shape == (360, 10)


def test_cli_bogus_and_unreachable_addresses_are_plain_errors(parquet_parts, capsys):
    from relunet.cli import main

    folder, _ = parquet_parts
    for address, message in [("bogus", "is not a scheduler address"),
                             ("tcp://127.0.0.1:1", "cannot reach the Dask scheduler")]:
        assert main(["train", str(folder / "part-*.parquet"), "--target", "digit",
                     "--dask", address]) != 0
        err = capsys.readouterr().err
        assert message in err and "unexpected" not in err and err.count("\n") == 1, err


def test_cli_bad_files_are_named_by_column_and_row(client, parquet_parts, tmp_path, capsys):
    from relunet.cli import main

    _, df = parquet_parts
    here = client.scheduler.address
    bad = df.iloc[:40].copy()
    bad.loc[17, "px3"] = np.nan
    bad.to_parquet(tmp_path / "nan.parquet")
    labels = df.iloc[:40].copy()
    labels["digit"] = labels["digit"].astype("Int64")
    labels.loc[5, "digit"] = pd.NA
    labels.to_parquet(tmp_path / "na.parquet")
    cases = [(tmp_path / "nan.parquet", "column 'px3' is NaN or infinite in row 18"),
             (tmp_path / "na.parquet", "column 'digit' has no value (null/NaN) in row 6"),
             (tmp_path / "none-*.parquet", "no files match")]
    for path, message in cases:
        assert main(["train", str(path), "--target", "digit", "--dask", here]) != 0
        err = capsys.readouterr().err
        assert message in err and "unexpected" not in err and err.count("\n") == 1, err


@pytest.mark.parametrize("scale", ["standard", "minmax"])
def test_cli_empty_parquet_file_trains_and_saves(client, parquet_parts, tmp_path, capsys,
                                                 scale):
    # dask's own mean/var gave NaN on an empty block (dask < 2026.1) and its min/max failed
    # on one ("all the input array dimensions ... must match"): relunet merges per-file
    # moments itself
    from relunet import load
    from relunet.cli import main

    _, df = parquet_parts
    df.iloc[:0].to_parquet(tmp_path / "a.parquet")
    df.iloc[:200].to_parquet(tmp_path / "b.parquet")
    df.iloc[:0].to_parquet(tmp_path / "c.parquet")
    out = tmp_path / "m.npz"
    assert main(["train", str(tmp_path / "*.parquet"), "--target", "digit", "--epochs", "3",
                 "--scale", scale, "--dask", client.scheduler.address,
                 "--out", str(out)]) == 0, capsys.readouterr().err
    model = load(out)
    assert model.predict(df.iloc[:5].drop(columns="digit")).shape == (5,)
    X = df.iloc[:200].drop(columns="digit").to_numpy(np.float64)
    scaler = model[0]
    if scale == "standard":  # scikit-learn's StandardScaler on the same rows, independently
        reference = StandardScaler().fit(X)
        np.testing.assert_allclose(scaler.mean_, reference.mean_, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(scaler.var_, reference.var_, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_array_equal(scaler.data_min_, X.min(axis=0))
        np.testing.assert_array_equal(scaler.data_max_, X.max(axis=0))


def test_merged_block_moments_equal_numpy_on_the_whole_data():
    from relunet.dask import _block_moments, _combine_moments

    rng = np.random.default_rng(3)
    X = rng.normal(1e4, 3.0, (500, 4))  # a large mean: the naive sum of squares loses digits
    cuts = [0, 0, 7, 7, 250, 499, 500, 500]
    for kind in ("standard", "minmax"):
        parts = [_block_moments(X[lo:hi], kind) for lo, hi in zip(cuts, cuts[1:], strict=False)]
        N, a, b = _combine_moments(parts, kind, 4)
        assert N == 500
        if kind == "standard":
            np.testing.assert_allclose(a, X.mean(axis=0), rtol=1e-14)
            np.testing.assert_allclose(b / N, X.var(axis=0), rtol=1e-10)
        else:
            np.testing.assert_array_equal(a, X.min(axis=0))
            np.testing.assert_array_equal(b, X.max(axis=0))
