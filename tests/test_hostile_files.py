"""Hostile model files: each kind refused with a ModelFileError naming the file, within budget.

Every hostile file is made here with ``zipfile``/``struct``.  The refusals are measured in a
child process (``_refusals``): its peak resident memory (``ru_maxrss``) above what loading a
valid model took, and the CPU time of each refusal.  The bounds asserted are the issue's:
under 100 MB of extra memory and 2 s per file (CPU time, not wall time, so that a busy
machine does not fail them).
"""

import io
import json
import os
import re
import struct
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from _problems import small_classifier
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from relunet.io import ModelFileError, load, read_metadata, save

pytestmark = [
    pytest.mark.filterwarnings("ignore", category=ConvergenceWarning),
    pytest.mark.usefixtures("one_blas_thread"),
]

MAX_EXTRA_MB = 100
MAX_CPU_SECONDS = 2.0


@pytest.fixture(scope="module")
def data():
    return make_blobs(n_samples=60, centers=3, n_features=4, random_state=0)


@pytest.fixture(scope="module")
def model_file(data, tmp_path_factory):
    X, y = data
    path = tmp_path_factory.mktemp("valid") / "model.npz"
    save(small_classifier(hidden_units=8, max_iter=10).fit(X, y), path)
    return path


@pytest.fixture(scope="module")
def pipeline_file(data, tmp_path_factory):
    X, y = data
    path = tmp_path_factory.mktemp("valid") / "pipeline.npz"
    save(make_pipeline(StandardScaler(), small_classifier(hidden_units=8, max_iter=10))
         .fit(X, y), path)
    return path


def _npy(array):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def _members(path):
    """The member files' bytes (the .npy files), by member name."""
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def _zip(path, members, compression=zipfile.ZIP_STORED):
    """A zip of ``members`` (name -> bytes, or (bytes, compression)); names may repeat when
    ``members`` is a list of pairs."""
    items = members.items() if isinstance(members, dict) else members
    with zipfile.ZipFile(path, "w") as z:
        for name, value in items:
            data, method = value if isinstance(value, tuple) else (value, compression)
            z.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return path


def _metadata(path):
    return json.loads(np.load(io.BytesIO(_members(path)["metadata.npy"])).tobytes())


def _with_metadata_text(path, out, text):
    members = _members(path)
    members["metadata.npy"] = _npy(np.frombuffer(text.encode(), np.uint8))
    return _zip(out, members)


def _with_metadata(path, out, **changes):
    meta = _metadata(path)
    meta.update(changes)
    return _with_metadata_text(path, out, json.dumps(meta))


_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    from relunet.io import ModelFileError, load, read_metadata
    load(sys.argv[1]); read_metadata(sys.argv[1])  # imports and first-use costs paid
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = []
    for path in sys.argv[2:]:
        for reader in (load, read_metadata):
            t0 = time.process_time()
            try:
                reader(path)
                message = None
            except ModelFileError as exc:
                message = str(exc)
            except OSError as exc:
                message = "OSError: " + str(exc)
            out.append({"path": path, "reader": reader.__name__, "message": message,
                        "cpu": time.process_time() - t0})
    extra = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    print(json.dumps({"extra_kb": extra, "results": out}))
""")


def _refusals(valid, cases):
    """Load every ``(path, regex[, readers])`` of ``cases`` in one child process; assert each
    is refused by ``load`` and ``read_metadata`` (or only by ``readers``, the others accepting
    it) with a ModelFileError naming the file and matching ``regex``, within the CPU-time
    budget, and the child's peak memory within budget."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(valid)] + [str(case[0]) for case in cases],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert len(report["results"]) == 2 * len(cases)
    pairs = zip(*[iter(report["results"])] * 2, strict=True)
    for (path, pattern, *readers), pair in zip(cases, pairs, strict=True):
        for r in pair:
            if readers and r["reader"] not in readers[0]:
                assert r["message"] is None, r  # e.g. read_metadata does not read the weights
                continue
            assert r["message"] is not None, f"{r['reader']} accepted {path}"
            assert r["message"].startswith(f"{path}: "), r["message"]
            assert re.search(pattern, r["message"]), (pattern, r["message"])
            assert r["cpu"] < MAX_CPU_SECONDS, (path, r)
    assert report["extra_kb"] / 1024 < MAX_EXTRA_MB, report["extra_kb"]
    return report


# ------------------------------------------------------------------ A: unbounded memory or time
def test_zip_bombs_are_refused_before_inflating(model_file, tmp_path):
    members = _members(model_file)
    zeros = bytes(64 * 2**20)
    cases = []
    # a deflated member of 64 MiB of zeros (~1000:1) beside the real ones
    bomb = dict(members, **{"prep.bomb.npy": (zeros, zipfile.ZIP_DEFLATED)})
    cases.append((_zip(tmp_path / "deflate.npz", bomb), r"more than 32:1 \(a zip bomb\?\)"))
    # the metadata itself as the bomb
    bomb = dict(members, **{"metadata.npy": (zeros, zipfile.ZIP_DEFLATED)})
    cases.append((_zip(tmp_path / "meta.npz", bomb), "zip bomb"))
    # bzip2 and LZMA members: never decompressed at all
    for method, name in ((zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "LZMA")):
        packed = {k: (v, method) for k, v in members.items()}
        cases.append((_zip(tmp_path / f"{name}.npz", packed), f"compressed with {name}"))
    # a directory that lies: declares 200 bytes for a member that inflates to 8 MiB
    raw = bytearray(_zip(tmp_path / "lie.npz", dict(
        members, **{"prep.x.npy": (_npy(np.zeros(2**20)), zipfile.ZIP_DEFLATED)})).read_bytes())
    at = raw.index(b"PK\x01\x02")
    while at >= 0:  # every central entry of prep.x.npy: uncompressed size := 200
        nlen = struct.unpack_from("<H", raw, at + 28)[0]
        if raw[at + 46:at + 46 + nlen] == b"prep.x.npy":
            struct.pack_into("<I", raw, at + 24, 200)
        at = raw.find(b"PK\x01\x02", at + 4)
    (tmp_path / "lie.npz").write_bytes(bytes(raw))
    cases.append((tmp_path / "lie.npz", "inflating past the 200 bytes its directory entry"))
    # a stored array whose header claims 10**12 floats (the directory's size disagrees)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (5, 10**12)})
    huge = dict(members, **{"W1.npy": header.getvalue() + bytes(5 * 8 * 4)})
    cases.append((_zip(tmp_path / "shape.npz", huge), "'W1' is truncated"))
    _refusals(model_file, cases)


def test_classes_dtype_is_bounded(model_file, tmp_path):
    cases = []
    for i, (dtype, match) in enumerate([
        ("<U100000000", "unsupported classes dtype"),
        ("<U999999", "wider than the longest label"),
        ("(100000000,)i8", "unsupported classes dtype"),
        ("V8", "unsupported classes dtype"),
        ("S5", "unsupported classes dtype"),
    ]):
        cases.append((_with_metadata(model_file, tmp_path / f"c{i}.npz", classes_dtype=dtype),
                      match))
    _refusals(model_file, cases)


def test_labels_must_survive_the_classes_dtype(model_file, tmp_path):
    """Labels that overflow the stored dtype (NumPy raises OverflowError) or that the cast
    would change (0.5 -> 0, 1e300 -> inf, 'abc' -> 'a') are refused, by both readers."""
    cases = []
    for i, (classes, dtype, match) in enumerate([
        ([100, 200, 300], "<i1", "do not fit the classes dtype '<i1'"),
        ([-3, -2, -1], "|u1", "do not fit the classes dtype '|u1'"),
        ([0, 1, 2**70], "<i8", "do not fit the classes dtype '<i8'"),
        ([0.5, 1.5, 2.5], "<i8", "label 0.5 does not survive .* become 0"),
        ([0.0, 1.0, 1e300], "<f4", "label 1e\\+300 does not survive .* become inf"),
        (["abc", "b", "c"], "<U1", "label 'abc' does not survive .* become 'a'"),
        ([0, 1, 2], "|b1", "label 0 does not survive .* become False"),
    ]):
        out = _with_metadata(model_file, tmp_path / f"l{i}.npz", classes=classes,
                             classes_dtype=dtype)
        cases.append((out, match))
    _refusals(model_file, cases)


def test_json_numbers_too_large_for_a_float_are_refused(model_file, tmp_path):
    """'1e999' parses as inf in Python's json: refused like a written Infinity."""
    text = json.dumps(_metadata(model_file))
    cases = []
    for i, (old, new) in enumerate([('"best_loss": ', '"best_loss": 1e999, "x": '),
                                    ('"loss_curve": [', '"loss_curve": [-1e999, ')]):
        assert old in text
        out = _with_metadata_text(model_file, tmp_path / f"big{i}.npz", text.replace(old, new, 1))
        cases.append((out, "too large for a float"))
    _refusals(model_file, cases)


def test_npy_header_errors_quote_little_of_the_header(model_file, tmp_path):
    header = ("{'descr': '<f8', 'fortran_order': False, 'shape': '" + "x" * 3000 + "'}").encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    raw = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
    members = dict(_members(model_file), **{"prep.x.npy": raw})
    report = _refusals(model_file, [(_zip(tmp_path / "hdr.npz", members),
                                     r"'prep\.x' is damaged .*more characters\)")])
    for r in report["results"]:
        assert len(r["message"]) < 400 + len(str(tmp_path)), r["message"]


def test_json_amplification_is_bounded(model_file, tmp_path):
    meta = _metadata(model_file)
    text = json.dumps(meta)
    cases = [
        # 600 000 numbers (2.4 MB of text)
        (_with_metadata_text(model_file, tmp_path / "values.npz",
                             text[:-1] + ', "x": [' + ",".join(["1.5"] * 600_000) + "]}"),
         "more than 200,000 values"),
        # 600 000 empty objects: far fewer bytes, same idea
        (_with_metadata_text(model_file, tmp_path / "objects.npz",
                             text[:-1] + ', "x": [' + ",".join(["{}"] * 600_000) + "]}"),
         "more than 200,000 values"),
        # nesting: 100 000 levels, and 40 levels
        (_with_metadata_text(model_file, tmp_path / "deep.npz",
                             text[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"),
         "not valid JSON"),
        (_with_metadata_text(model_file, tmp_path / "deep40.npz",
                             text[:-1] + ', "x": ' + "[" * 40 + "]" * 40 + "}"),
         "nested deeper than 32"),
        # one long string, as a class label
        (_with_metadata(model_file, tmp_path / "long.npz", feature_names=["a" * 10**6] * 4),
         "a string of 1,000,000 characters"),
        # more metadata bytes than the cap: refused before reading them
        (_with_metadata_text(model_file, tmp_path / "big.npz", text[:-1] + " " * 9 * 2**20 + "}"),
         "implausibly large"),
        # the same key twice: the last one would win
        (_with_metadata_text(model_file, tmp_path / "dupkey.npz",
                             text[:-1] + ', "n_features_in": 99}'),
         "'n_features_in' appears twice"),
    ]
    _refusals(model_file, cases)


_ACCEPTED_CHILD = textwrap.dedent("""
    import contextlib, io, resource, sys
    from relunet import cli
    def info(path):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return cli.main(["info", path])
    assert info(sys.argv[1]) == 0  # imports and first-use costs paid
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert info(sys.argv[2]) == 0, sys.argv[2]
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
""")


@pytest.mark.parametrize("kind", ["keys", "nested", "dicts"])
def test_json_just_within_the_budget_costs_bounded_memory(model_file, tmp_path, kind):
    """The most expensive JSON the value budget lets through (as a free-form ``table``):
    ``relunet info`` on it (load + read_metadata) stays within the memory budget."""
    meta = _metadata(model_file)
    meta["table"] = None
    text = json.dumps(meta)
    n = 200_000 - (text.count(",") + text.count("[") + text.count("{") + 1) - 10
    table = {"keys": "{" + ",".join(f'"k{i}":0' for i in range(n - 1)) + "}",
             "nested": '{"x": [' + ",".join(["[[[[0]]]]"] * (n // 5 - 2)) + "]}",
             "dicts": '{"x": [' + ",".join(['{"a":[]}'] * (n // 3 - 2)) + "]}"}[kind]
    path = _with_metadata_text(model_file, tmp_path / f"{kind}.npz",
                               text.replace('"table": null', '"table": ' + table))
    proc = subprocess.run([sys.executable, "-c", _ACCEPTED_CHILD, str(model_file), str(path)],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout) < MAX_EXTRA_MB, proc.stdout


def test_table_must_be_an_object(model_file, tmp_path):
    _refusals(model_file, [(_with_metadata(model_file, tmp_path / "t.npz", table=[1, 2]),
                            "table must be an object or null")])


def test_member_count_and_names_are_bounded(model_file, tmp_path):
    members = _members(model_file)
    many = dict(members, **{f"prep.x{i}.npy": _npy(np.zeros(1)) for i in range(2000)})
    dup = list(members.items()) + [("W1.npy", _npy(np.zeros((5, 8), np.float32)))]
    cases = [
        (_zip(tmp_path / "many.npz", many), "has 2,003 members; a model file has at most 1,024"),
        (_zip(tmp_path / "dup.npz", dup), "holds the member 'W1.npy' twice"),
        (_zip(tmp_path / "foreign.npz", dict(members, **{"evil.py": b"print(1)"})),
         "unexpected entry 'evil.py'"),
        (_zip(tmp_path / "longnames.npz", dict(
            members, **{"prep." + "x" * 2000 + f"{i}.npy": _npy(np.zeros(1))
                        for i in range(600)})), "zip directory of .* bytes; at most"),
    ]
    _refusals(model_file, cases)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_non_regular_files_are_refused_without_blocking(model_file, tmp_path):
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    cases = [(fifo, r"is a FIFO \(named pipe\), not a regular file")]
    if os.path.exists("/dev/zero"):
        cases.append(("/dev/zero", "is a character device"))
    _refusals(model_file, cases)
    with pytest.raises(IsADirectoryError):
        load(tmp_path)


# ------------------------------------------------------------------ B: inconsistent files
def test_big_endian_arrays_are_converted(data, pipeline_file, tmp_path):
    X, _ = data
    members = _members(pipeline_file)
    swapped_names = [m for m in members if m != "metadata.npy"]
    assert {"W1.npy", "W2.npy"} < set(swapped_names) and len(swapped_names) > 2  # + scaler's
    for name in swapped_names:
        array = np.load(io.BytesIO(members[name]))
        if array.dtype.itemsize > 1:
            members[name] = _npy(array.astype(array.dtype.newbyteorder(">")))
    swapped = load(_zip(tmp_path / "big.npz", members))
    original = load(pipeline_file)
    assert swapped[-1].W1_.dtype.isnative and swapped[0].scale_.dtype.isnative
    np.testing.assert_array_equal(swapped.predict_proba(X), original.predict_proba(X))
    save(swapped, tmp_path / "again.npz")  # and it saves again


def test_metadata_fields_must_match_the_arrays(model_file, tmp_path):
    cases = []
    for i, (change, match) in enumerate([
        ({"n_hidden": -1}, "n_hidden is -1 but the weights have 8"),
        ({"n_hidden": 5}, "n_hidden is 5 but the weights have 8"),
        ({"n_classes": 7}, "n_classes is 7 but the weights have 3"),
        ({"n_hidden": True}, "n_hidden is True"),
        ({"n_features_in": -3}, "n_features_in -3 is not in 1"),
        ({"weights_dtype": "float64"}, "weights_dtype is 'float64' but W1 is float32"),
        ({"classes": [0, 1, 2, 3]}, r"'W2' has shape \(9, 3\), expected \(9, 4\)"),
        ({"feature_names": ["a", "b"]}, "feature_names must be a list of n_features_in"),
        ({"training": {"n_iter": -1, "t": 0}}, "training.n_iter must be an integer >= 0"),
    ]):
        cases.append((_with_metadata(model_file, tmp_path / f"m{i}.npz", **change), match))
    meta = _metadata(model_file)
    meta["hyperparameters"]["hidden_units"] = 99
    cases.append((_with_metadata(model_file, tmp_path / "hu.npz", **meta),
                  "hidden_units is 99 but the weights have 8"))
    _refusals(model_file, cases)


def test_values_that_cannot_predict_are_refused(model_file, pipeline_file, tmp_path):
    meta = _metadata(model_file)
    inf_label = json.dumps(dict(meta, classes=[0.0, 1.0, float("inf")], classes_dtype="<f8"))
    nan_label = json.dumps(dict(meta, classes=[0.0, 1.0, float("nan")], classes_dtype="<f8"))
    cases = [
        (_with_metadata_text(model_file, tmp_path / "inf.npz", inf_label),
         "Infinity is not a JSON number"),
        (_with_metadata_text(model_file, tmp_path / "nan.npz", nan_label),
         "NaN is not a JSON number"),
    ]
    for i, (name, value, match) in enumerate([
        ("W1", 3e38, "'W1' holds a weight of size 3e\\+38"),
        ("W2", -1e20, "'W2' holds a weight of size 1e\\+20"),
        ("W1", np.inf, "'W1' holds NaN or infinite"),
    ]):
        members = _members(model_file)
        W = np.load(io.BytesIO(members[name + ".npy"])).copy()
        W[0, 0] = value
        members[name + ".npy"] = _npy(W)
        cases.append((_zip(tmp_path / f"w{i}.npz", members), match, ("load",)))
    for i, values in enumerate([[0.0, 1, 1, 1], [1, 1, 1, -0.0]]):
        members = _members(pipeline_file)
        (scale,) = [m for m in members if m.endswith("scale_.npy")]  # the StandardScaler's
        members[scale] = _npy(np.array(values, np.float64))
        cases.append((_zip(tmp_path / f"s{i}.npz", members),
                      f"'{scale[:-4]}' holds a zero"))  # read_metadata reads the scaler too
    _refusals(model_file, cases)


def _version_1(pipeline_file, out, **changes):
    """``pipeline_file`` (StandardScaler + net) rewritten as a format-1 file, with
    ``changes`` to its preprocessing spec."""
    members = _members(pipeline_file)
    meta = json.loads(np.load(io.BytesIO(members.pop("metadata.npy"))).tobytes())
    for attr in ("mean_", "var_", "scale_"):
        members["scaler." + attr + ".npy"] = members.pop("prep.0." + attr + ".npy")
    spec = meta["preprocessing"]["steps"][0][1]
    meta["format_version"] = 1
    meta["preprocessing"] = dict({
        "kind": "standard", "step_names": ["scaler", "net"], "params": spec["params"],
        "n_features_in": 4, "feature_names": None,
        "n_samples_seen": spec["n_samples_seen"], "arrays": ["mean_", "var_", "scale_"],
    }, **changes)
    members["metadata.npy"] = _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))
    return _zip(out, members)


def _with_prep_array(pipeline_file, out, attr, values):
    members = _members(pipeline_file)
    members[f"prep.0.{attr}.npy"] = _npy(np.asarray(values, np.float64))
    return _zip(out, members)


def _with_prep_spec(pipeline_file, out, change):
    meta = _metadata(pipeline_file)
    change(meta["preprocessing"])
    return _with_metadata_text(pipeline_file, out, json.dumps(meta))


def test_preparations_that_cannot_transform_are_refused(pipeline_file, tmp_path):
    """Loaded models must predict: scaler arrays present as the parameters require, values
    within bounds, parameters valid (scikit-learn's own check), step names distinct."""
    assert load(_version_1(pipeline_file, tmp_path / "v1.npz")) is not None  # the control
    spec = lambda m: m["steps"][0][1]  # noqa: E731 - the StandardScaler's spec
    cases = [
        (_version_1(pipeline_file, tmp_path / "v1_none.npz", arrays=[]),
         r"has the arrays \['mean_', 'scale_', 'var_'\], not \[\]"),
        (_version_1(pipeline_file, tmp_path / "v1_yes.npz",
                    params={"with_mean": "yes", "with_std": True, "copy": True}),
         "with_mean.*must be an instance of 'bool'"),
        (_version_1(pipeline_file, tmp_path / "v1_dup.npz", step_names=["a", "a"]),
         "two steps named 'a'"),
        (_with_prep_array(pipeline_file, tmp_path / "mean.npz", "mean_", [1e308, 0, 0, 0]),
         "mean_ holds the value 1e\\+308"),
        (_with_prep_array(pipeline_file, tmp_path / "tiny.npz", "scale_", [1, 1, 1, 1e-320]),
         "scale_ holds the scale 1e-320"),
        (_with_prep_array(pipeline_file, tmp_path / "neg.npz", "scale_", [1, -2, 1, 1]),
         "scale_ holds the scale -2"),
        (_with_prep_array(pipeline_file, tmp_path / "var.npz", "var_", [1, 1, -1, 1]),
         "var_ holds the negative value -1"),
        (_with_prep_spec(pipeline_file, tmp_path / "missing.npz",
                         lambda m: spec(m)["arrays"].pop("mean_")),
         r"has the arrays \['mean_', 'scale_', 'var_'\], not \['scale_', 'var_'\]"),
        (_with_prep_spec(pipeline_file, tmp_path / "param.npz",
                         lambda m: spec(m)["params"].update(with_std="no")),
         "with_std.*must be an instance of 'bool'"),
        (_with_prep_spec(pipeline_file, tmp_path / "dup.npz",
                         lambda m: m.update(step_names=["x", "x"]) or m["steps"][0].__setitem__(
                             0, "x")),
         "two steps named 'x'"),
    ]
    _refusals(pipeline_file, cases)


def test_read_metadata_refuses_what_load_refuses(model_file, pipeline_file, tmp_path):
    """read_metadata runs load's checks (hyper-parameters, preprocessing, scaler arrays)
    without reading the weights."""
    meta = _metadata(model_file)
    meta["hyperparameters"]["no_such_knob"] = 1
    cases = [
        (_with_metadata_text(model_file, tmp_path / "knob.npz", json.dumps(meta)),
         r"unknown hyper-parameters \['no_such_knob'\]"),
        (_with_metadata(model_file, tmp_path / "kind.npz", preprocessing={"kind": "magic"}),
         "unknown preprocessing kind 'magic'"),
        (_with_metadata(model_file, tmp_path / "order.npz", classes=[2, 1, 0]),
         "sorted and distinct"),
        (_version_1(pipeline_file, tmp_path / "v1_none.npz", arrays=["mean_"]),
         "has the arrays"),
    ]
    meta = _metadata(model_file)
    meta["hyperparameters"]["alpha"] = -1.0
    cases.append((_with_metadata_text(model_file, tmp_path / "alpha.npz", json.dumps(meta)),
                  "invalid hyper-parameters"))
    report = _refusals(model_file, cases)
    assert all(r["message"] for r in report["results"])  # both readers, every file


def test_metadata_is_parsed_once_per_command(model_file, tmp_path, monkeypatch):
    from relunet import cli
    from relunet import io as model_io

    calls = []
    real = model_io._parse_json
    monkeypatch.setattr(model_io, "_parse_json", lambda raw: calls.append(1) or real(raw))
    path = tmp_path / "once.npz"
    path.write_bytes(model_file.read_bytes())
    assert cli.main(["info", str(path)]) == 0  # loads the model, then shows its metadata
    assert len(calls) == 1
    with model_io.metadata_cache():
        load(path)
        first = read_metadata(path)
        first["classes"].append("mutated")  # the caller's copy: the next reader is unaffected
        assert read_metadata(path)["classes"] == [0, 1, 2]
        assert len(calls) == 2
        os.utime(path, ns=(1, 1))  # another file (a changed modification time): parsed again
        read_metadata(path)
        assert len(calls) == 3
    read_metadata(path)  # outside a command nothing is kept
    assert len(calls) == 4 and model_io._Reader._cache is None


def test_refusal_messages_name_the_file(tmp_path):
    """A hostile file refused by the CLI: one error line naming the file, no traceback."""
    from relunet.cli import main

    path = _zip(tmp_path / "bz.npz", {"metadata.npy": (b"x" * 100, zipfile.ZIP_BZIP2)})
    with pytest.raises(ModelFileError, match="compressed with bzip2"):
        read_metadata(path)
    assert main(["info", str(path)]) != 0


def test_deflated_members_are_read(data, model_file, tmp_path):
    """``np.savez_compressed`` files (deflate) stay readable, and equal the stored ones."""
    X, _ = data
    members = _members(model_file)
    packed = _zip(tmp_path / "deflated.npz", members, zipfile.ZIP_DEFLATED)
    np.testing.assert_array_equal(load(packed).predict_proba(X), load(model_file).predict_proba(X))
    raw = bytearray(packed.read_bytes())
    at = raw.index(b"W1.npy") + 6 + 40  # inside W1's deflate stream
    raw[at:at + 8] = bytes(8)
    (tmp_path / "bad.npz").write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="'W1' is damaged"):
        load(tmp_path / "bad.npz")
