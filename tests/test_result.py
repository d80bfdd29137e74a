"""result.json: the Result/CheckResult/Hint contract, its JSON pair, atomic writes, schema."""
from __future__ import annotations

import json
import math
import os

import jsonschema
import numpy as np
import pytest

from conftest import validate_result
from grader import result as result_mod
from grader.result import CheckResult, Hint, Result, write_atomic


def sample() -> Result:
    return Result(
        id="alice",
        checks=(
            CheckResult("linear.forward", "pass", 2, 2, "LinearTransform.forward output matches"),
            CheckResult("linear.backward", "fail", 2.0, 3, "db is averaged over the batch",
                        hints=(Hint("8h", "Sum over the batch."), Hint("8e", "Chain rule.")),
                        details={"family": "db_mean", "worst": {"index": [0], "got": 0.5}}),
            CheckResult("relu.forward", "timeout", 0, 1, "did not finish within 5 s"),
            CheckResult("loss.forward", "skipped", 0, 2, "not run"),
        ),
        meta={"graded_file": "alice.py", "roles": {"loss": ["Sigmoid", "CrossEntropy"]}},
    )


def test_round_trip_to_json_from_json():
    r = sample()
    back = Result.from_json(json.loads(r.dumps()))
    assert back == r
    assert back.to_json() == r.to_json()


def test_totals_are_sums_of_checks():
    r = sample()
    assert r.score == 4
    assert r.max_score == 8
    d = r.to_json()
    assert d["score"] == sum(c["score"] for c in d["checks"])
    assert d["max_score"] == sum(c["max_score"] for c in d["checks"])


def test_contract_keys_present():
    d = sample().to_json()
    assert {"id", "score", "max_score", "error", "checks"} <= set(d)
    for c in d["checks"]:
        assert set(c) == {"id", "status", "score", "max_score", "message", "hints", "details"}
        for h in c["hints"]:
            assert set(h) == {"tip", "text"}


def test_sample_and_error_result_validate_against_schema():
    validate_result(sample().to_json())
    validate_result(Result(id="x", error="x.py is empty: there is no code to grade").to_json())


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(error=""),                                   # error must be a sentence
    lambda d: d.pop("checks"),
    lambda d: d.update(score="4"),
    lambda d: d["checks"][0].update(status="passed"),
    lambda d: d["checks"][1]["hints"][0].update(tip="9"),
    lambda d: d["checks"][0].update(id="forward"),                  # not dotted
    lambda d: d["checks"][0].pop("details"),
    lambda d: d["checks"][2].update(message=""),                    # a timeout must say why
    lambda d: d["checks"][0].update(score=-1),
    lambda d: d.update(extra_key=1),
], ids=["empty-error", "no-checks", "string-score", "bad-status", "bad-tip", "undotted-id",
        "no-details", "timeout-without-message", "negative-score", "unknown-key"])
def test_schema_rejects_contract_breaks(mutate):
    d = sample().to_json()
    mutate(d)
    with pytest.raises(jsonschema.ValidationError):
        validate_result(d)


def test_schema_matches_result_py_vocabulary():
    schema = json.loads((result_mod.Path(result_mod.__file__).parent / "result.schema.json").read_text())
    check = schema["$defs"]["check"]["properties"]
    assert tuple(check["status"]["enum"]) == result_mod.STATUSES
    assert tuple(check["hints"]["items"]["properties"]["tip"]["enum"]) == result_mod.TIP_IDS
    assert check["id"]["pattern"] == result_mod.CHECK_ID.pattern


@pytest.mark.parametrize("status", ["passed", "PASS", "ok", "crash", ""])
def test_invalid_status_rejected(status):
    with pytest.raises(ValueError, match="status"):
        CheckResult("linear.forward", status, 0, 1)


@pytest.mark.parametrize("tip", ["0", "9", "8j", "8A", "", "tip3"])
def test_invalid_tip_rejected(tip):
    with pytest.raises(ValueError, match="tip"):
        Hint(tip, "text")


@pytest.mark.parametrize("score,max_score", [(-0.5, 2), (3, 2), (1, 0)])
def test_score_outside_range_rejected(score, max_score):
    with pytest.raises(ValueError, match="score"):
        CheckResult("linear.forward", "fail", score, max_score)


@pytest.mark.parametrize("cid", ["forward", "Linear.forward", "linear.", ".forward", "linear forward"])
def test_check_id_must_be_dotted_family_first(cid):
    with pytest.raises(ValueError, match="dotted"):
        CheckResult(cid, "pass", 1, 1)


def test_details_made_json_safe():
    c = CheckResult("loss.forward", "fail", 0, 2, "NaN loss", details={
        "loss": float("nan"), "arr": np.arange(3.0), "scalar": np.float64(1.5), "inf": -math.inf,
        "obj": object(), 3: "int key"})
    text = Result(id="s", checks=(c,)).dumps()  # allow_nan=False: must not raise
    d = json.loads(text)["checks"][0]["details"]
    assert d["loss"] == "nan" and d["inf"] == "-inf"
    assert d["arr"] == [0.0, 1.0, 2.0] and d["scalar"] == 1.5
    assert isinstance(d["obj"], str) and d["3"] == "int key"


def test_write_and_read_back(tmp_path):
    path = tmp_path / "deep" / "alice" / "result.json"
    sample().write(path)
    assert Result.read(path) == sample()
    validate_result(json.loads(path.read_text()))


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "result.json"
    write_atomic(path, "old contents that are longer than the new ones\n")
    write_atomic(path, "new\n")
    assert path.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_durable_writes_sync_and_page_writes_do_not(tmp_path, monkeypatch):
    """result.json is on disk when write_atomic returns; a page every run rewrites (a
    similarity pair page) is still atomic but skips the two fsyncs."""
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    write_atomic(tmp_path / "result.json", "{}\n")
    assert len(synced) == 2  # the file, then its folder (the rename)
    write_atomic(tmp_path / "page.html", "<p>old</p>\n", durable=False)
    write_atomic(tmp_path / "page.html", "<p>new</p>\n", durable=False)
    assert len(synced) == 2 and (tmp_path / "page.html").read_text() == "<p>new</p>\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html", "result.json"]


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "result.json"
    write_atomic(path, "old\n")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, "half-written new contents\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_dumps_lays_out_a_check_and_a_meta_key_per_line():
    """Compact values by the C encoder, yet readable: `grep '"status": "fail"'` finds checks."""
    r = sample()
    lines = r.dumps().splitlines()
    assert json.loads(r.dumps()) == json.loads(json.dumps(r.to_json(), indent=2))
    assert lines[0] == "{" and lines[-1] == "}" and lines[1] == '  "schema_version": 1,'
    checks = [json.loads(line.strip().rstrip(",")) for line in lines if line.startswith('    {"id"')]
    assert [c["id"] for c in checks] == [c.id for c in r.checks]
    assert '    "graded_file": "alice.py",' in lines
    empty = Result(id="bob", error="could not be graded").dumps()
    assert '  "checks": [],' in empty.splitlines() and '  "meta": {}' in empty.splitlines()


def test_plain_fast_paths_give_the_same_values():
    curve, mixed = [0.5, 0.25], [1.0, float("nan"), 2, True, None, "x", np.float64(3.5)]
    assert result_mod._plain(curve) == curve and result_mod._plain(curve) is not curve
    assert result_mod._plain(mixed) == [1.0, "nan", 2, True, None, "x", 3.5]
    assert result_mod._plain({"a": (1.0, float("inf"))}) == {"a": [1.0, "inf"]}
