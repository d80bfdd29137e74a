"""observe.py: untrusted harness JSON becomes values; anything malformed is Opaque or missing."""
from __future__ import annotations

import json

import numpy as np
import pytest

from grader import observe
from grader.observe import MAX_LIST, Opaque, decode, probe_run, read_results, step


def test_array_round_trip():
    a = decode({"__ndarray__": [2, 3], "dtype": "float32", "data": [1, 2, 3, 4, 5, 6.5]})
    assert isinstance(a, np.ndarray) and a.dtype == np.float64 and a.shape == (2, 3)
    assert a[1, 2] == 6.5


def test_scalar_array_and_sequences():
    assert decode({"__ndarray__": [], "data": [1.5]}).shape == ()
    t = decode({"__seq__": "tuple", "items": [{"__ndarray__": [1], "data": [1]}, None, 2]})
    assert isinstance(t, tuple) and t[1] is None and t[2] == 2.0
    d = decode({"__dict__": {"dW": {"__ndarray__": [1], "data": [3]}}})
    assert d["dW"].tolist() == [3.0]
    assert decode(True) is True and decode(None) is None and decode(3) == 3.0


@pytest.mark.parametrize("bad", [
    {"__ndarray__": [2, 2], "data": [1, 2, 3]},                 # size mismatch
    {"__ndarray__": [-1], "data": []},                          # negative dimension
    {"__ndarray__": [2], "data": [1, "2"]},                     # a string entry
    {"__ndarray__": [2], "data": [1, None]},
    {"__ndarray__": [1, 1, 1, 1, 1], "data": [1]},              # too many dimensions
    {"__ndarray__": "3", "data": [1, 2, 3]},                    # shape not a list
    {"__ndarray__": [1.5], "data": [1]},
    {"__ndarray__": [10**12, 10**12], "data": []},              # huge declared shape
    {"__ndarray__": [1], "data": [10**400]},                    # integer beyond float range
    {"__ndarray__": [1], "data": "1"},
    {"__ndarray__": [True, 2], "data": [1, 2]},                 # a dimension that is true
])
def test_malformed_arrays_become_opaque(bad):
    v = decode(bad)
    assert isinstance(v, Opaque) and "malformed" in v


def test_huge_and_odd_numbers_never_raise():
    assert isinstance(decode(10**400), Opaque)
    assert decode(1e308) == 1e308
    assert decode(float("inf")) == float("inf")


def test_strings_are_cut_and_repr_becomes_opaque():
    assert len(decode("x" * 100_000)) == observe.MAX_TEXT
    v = decode({"__repr__": "object of type Evil" * 1000})
    assert isinstance(v, Opaque) and len(v) <= 200


def test_deep_nesting_and_long_lists_bounded():
    obj = 1
    for _ in range(50):
        obj = [obj]
    v = decode(obj)
    depth = 0
    while isinstance(v, list):
        v, depth = v[0], depth + 1
    assert isinstance(v, Opaque) and depth <= 9  # the harness sends at most 6 levels; more is cut
    assert len(decode(list(range(10_000)))) == MAX_LIST
    assert len(decode({"__seq__": "list", "items": list(range(100))})) == 16


def test_probe_run_unknown_status_and_junk_fields():
    r = probe_run("linear", {"status": "ok; rm -rf /", "value": {"x": 1}, "elapsed_s": "soon",
                             "exit_code": "nine", "limit_s": float("nan")})
    assert r.status == "crash" and r.value == {} and r.elapsed_s == 0.0
    assert r.exit_code is None and r.limit_s is None
    r = probe_run("linear", {"status": "ok", "value": [1, 2], "elapsed_s": 10**400})
    assert r.value == {} and r.elapsed_s == 0.0


def test_error_records_cleaned():
    err = {"type": "X" * 500, "message": "m" * 5000, "name": 7,
           "frames": [{"file": "submission.py", "line": 42, "function": "backward", "code": "y"},
                      "not a frame", {"file": None, "line": "12", "function": [], "code": 3}] + [{}] * 20}
    c = observe.clean_error(err)
    assert len(c["type"]) == 80 and len(c["message"]) == 600
    assert c["frames"][0] == {"file": "submission.py", "line": 42, "function": "backward", "code": "y"}
    assert c["frames"][1]["line"] is None and c["frames"][1]["file"] == ""
    assert len(c["frames"]) <= 8
    assert observe.clean_error("boom") is None


def test_step_error_keeps_line_numbers():
    # An exception inside a step travels inside the (decoded) value: numbers become floats.
    raw = {"status": "ok", "value": {"backward": {"ok": False, "error": {
        "type": "NameError", "message": "name 'y_batch' is not defined", "name": "y_batch",
        "frames": [{"file": "submission.py", "line": 42, "function": "backward", "code": "..."}]}}}}
    ok, value, err = step(probe_run("loss", raw).value, "backward")
    assert not ok and value is None
    assert err["frames"][0]["line"] == 42 and err["name"] == "y_batch"


def test_step_on_malformed_records():
    assert step({}, "forward") == (False, None, None)
    assert step({"forward": "yes"}, "forward") == (False, None, None)
    assert step({"forward": {"ok": "true", "value": 1}}, "forward")[0] is False
    assert step({"forward": {"ok": True, "value": 2.0}}, "forward") == (True, 2.0, None)


def write_results(tmp_path, content):
    (tmp_path / "out").mkdir(exist_ok=True)
    p = tmp_path / "out" / "results.json"
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content if isinstance(content, str) else json.dumps(content))
    return tmp_path


@pytest.mark.parametrize("content", [
    "", "not json", b"\xff\xfe\x00garbage", "[1, 2, 3]", '{"probes": [1, 2]}', '{"probes": "x"}',
    '{"harness": "nngrader"}',
])
def test_unreadable_results_are_missing(tmp_path, content):
    assert read_results(write_results(tmp_path, content)) is None


def test_no_results_file(tmp_path):
    assert read_results(tmp_path) is None


def test_oversized_results_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(observe, "MAX_RESULTS_BYTES", 10)
    box = write_results(tmp_path, {"probes": {"linear": {"status": "ok", "value": {}}}})
    assert read_results(box) is None


def test_results_with_some_junk_probes(tmp_path):
    box = write_results(tmp_path, {"probes": {
        "linear": {"status": "timeout", "elapsed_s": 5.1, "limit_s": 5},
        "relu": "not a dict",
        "loss": {"status": "error", "error": {"type": "SystemExit", "message": "0", "frames": []}},
    }})
    runs = read_results(box)
    assert set(runs) == {"linear", "loss"}
    assert runs["linear"].status == "timeout" and runs["linear"].limit_s == 5.0
    assert runs["loss"].status == "error" and runs["loss"].error["type"] == "SystemExit"


@pytest.mark.parametrize("shape,data,ok", [
    ([2], [True, 1], True),           # bools are ints to isinstance: accepted, as before
    ([2], [np.float64(1), 2], True),  # a float subclass from a caller other than json
    ([2], [np.int64(1), 2], False),   # not an int subclass: rejected, as before
    ([np.int64(2)], [1, 2], False),
    ([0, 3], [], True),
    ([], [], False),                  # a scalar needs one entry
])
def test_array_entries_accepted_exactly_as_isinstance_says(shape, data, ok):
    v = decode({"__ndarray__": shape, "data": data})
    assert (not isinstance(v, Opaque)) == ok
    if not ok:
        assert v == "a malformed array"


def _same(a, b) -> bool:
    return type(a) is type(b) and (a == b if not isinstance(a, np.ndarray)
                                   else a.shape == b.shape and np.array_equal(a, b, equal_nan=True))


@pytest.mark.parametrize("curve", [
    [np.array(0.69), np.array(0.5), np.array(np.nan)],            # a 0-d loss, epoch by epoch
    [np.arange(4.0).reshape(4, 1), -np.ones((4, 1))],              # the logits the network saw
    [np.zeros((0, 1)), np.zeros((0, 1))],
])
def test_a_stacked_curve_decodes_as_its_epochs_would(curve):
    """The harness sends a curve of same-shaped arrays as one list of numbers; the grader
    gets the very arrays it would have got from one record per epoch."""
    from grader.harness.boundary import encode
    from grader.harness.training import stacked
    epochs = [encode(v) for v in curve]
    packed = stacked(epochs)
    assert "__stack__" in packed and packed["count"] == len(curve)
    one_by_one, whole = decode(json.loads(json.dumps(epochs))), decode(json.loads(json.dumps(packed)))
    assert len(whole) == len(one_by_one) and all(map(_same, one_by_one, whole))


def test_numpy_scalars_still_cross_as_plain_numbers():
    from grader.harness.boundary import encode
    assert encode(np.float64(0.5)) == 0.5 and type(encode(np.float64(0.5))) is float
    assert decode(json.loads(json.dumps([encode(np.float64(0.5))] * 3))) == [0.5] * 3


def test_only_uniform_float_curves_are_stacked():
    from grader.harness.boundary import encode
    from grader.harness.training import stacked
    for curve in ([np.float64(1.0), 2.0], [np.arange(3.0), np.arange(4.0)], [np.arange(3), np.arange(3)],
                  [np.float64(1.0)], [None, None], [np.zeros((1, 1, 1, 1, 1))] * 2):
        epochs = [encode(v) for v in curve]
        assert stacked(epochs) == epochs


@pytest.mark.parametrize("bad", [
    {"__stack__": [2], "count": 2, "f8": "AAAAAAAA8D8="},          # 1 number for 2
    {"__stack__": [1], "count": True, "f8": "AAAAAAAA8D8="},      # a count that is not an int
    {"__stack__": [-1], "count": 0, "f8": ""},
    {"__stack__": [1], "count": 1, "f8": "not base64!"},
    {"__stack__": [1], "count": 1, "f8": [1.0]},
    {"__stack__": [1] * 5, "count": 1, "f8": "AAAAAAAA8D8="},    # more dimensions than read
    {"__stack__": [0], "count": 2**63, "f8": ""},                # no bytes, dimensions numpy refuses
    {"__stack__": [10**10, 10**10, 0], "count": 1, "f8": ""},
    {"__stack__": [True], "count": 1, "f8": "AAAAAAAA8D8="},
])
def test_a_malformed_stack_is_one_unreadable_epoch(bad):
    assert decode(bad) == [Opaque("a malformed array")]


def test_a_stacked_curve_is_cut_like_a_list():
    import base64
    f8 = base64.b64encode(np.full(MAX_LIST + 7, 0.5).astype("<f8").tobytes()).decode()
    got = decode({"__stack__": [], "count": MAX_LIST + 7, "f8": f8})
    assert len(got) == MAX_LIST and got[0].shape == () and float(got[-1]) == 0.5
