"""Instructor overrides: applying and undoing them, the overrides file, and a round trip
through `nngrader override`, a regrade from the cache, a forced regrade and every export."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from builders import alice, broken, class_results, mallory, write_out
from conftest import CONTRACT_CHECKER, FIXTURES, run_cli, validate_result
from grader import overrides
from grader.overrides import Override
from grader.result import CheckResult, Result


def contract_ok(result: Result) -> None:
    """What check_contract.py demands of one result, on the object."""
    validate_result(result.to_json())
    assert abs(result.score - sum(c.score for c in result.checks)) < 1e-9
    for c in result.checks:
        assert 0 <= c.score <= c.max_score
        assert c.status != "pass" or c.score == c.max_score
        assert c.status not in ("fail", "error", "timeout") or c.message


# ---- apply / strip ------------------------------------------------------------------------

def test_a_check_override_keeps_the_graders_own_score():
    r, problems = overrides.apply(alice(), [Override("alice_classic", "linear.backward", 2.5, "dW fine")])
    assert problems == [] and r.score == 18.5
    c = r.check("linear.backward")
    assert (c.score, c.status) == (2.5, "fail")          # partial credit lives in score
    assert c.details["override"]["auto_score"] == 0 and c.details["override"]["comment"] == "dW fine"
    assert r.meta["override"]["auto_score"] == 16 and r.meta["override"]["score"] == 18.5
    contract_ok(r)
    assert overrides.strip(r) == alice()


def test_a_total_goes_to_lost_points_first_and_passing_checks_last():
    up, _ = overrides.apply(alice(), [Override("alice_classic", "", 20, "oral exam")])
    assert up.score == 20
    assert up.check("linear.backward").score == 3          # lost points come back in check order
    assert up.check("gradcheck.mlp").score == 2 and up.check("relu.forward").status == "pass"
    down, _ = overrides.apply(alice(), [Override("alice_classic", "", 2, "copied")])
    assert down.score == 2
    assert down.check("gradcheck.mlp").score == 0          # non-passing checks lose points first
    assert down.check("linear.forward").score == 2         # the first check loses least
    assert down.check("loss.forward").status == "fail"     # a passing check below full points fails
    assert "The instructor took points off" in down.check("loss.forward").message
    for r in (up, down):
        contract_ok(r)
        assert overrides.strip(r) == alice()


def test_checks_set_by_hand_are_not_touched_by_the_total():
    r, problems = overrides.apply(alice(), [Override("alice_classic", "linear.backward", 3, "ok"),
                                            Override("alice_classic", "", 0, "zero")])
    assert r.check("linear.backward").score == 3 and r.score == 3
    assert "cannot be reached" in problems[0]
    contract_ok(r)


def test_ungradable_work_can_be_given_points_by_hand():
    ungradable = Result("py2", (CheckResult("linear.forward", "skipped", 0, 3, "not run"),
                                CheckResult("relu.forward", "skipped", 0, 2, "not run")),
                        error="py2.py is written in Python 2")
    r, _ = overrides.apply(ungradable, [Override("py2", "", 4, "ported it by hand")])
    assert r.score == 4 and r.error and r.meta["override"]["total"] == 4
    contract_ok(r)


def test_overrides_that_cannot_apply_are_named():
    r, problems = overrides.apply(alice(), [Override("alice_classic", "no.such", 1, "x"),
                                            Override("alice_classic", "linear.forward", 9, "x"),
                                            Override("alice_classic", "", 99, "x")])
    assert r == alice() and len(problems) == 3
    assert "no check no.such" in problems[0] and "more than its 3" in problems[1]
    assert "more than the 22 points possible" in problems[2]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", "linear.forward", "linear.backward", "gradcheck.mlp",
                                           "train.xor", "loss.forward"]),
                          st.floats(0, 22, allow_nan=False)), max_size=4))
def test_any_overrides_keep_the_contract_and_undo_exactly(items):
    base = alice()
    wanted = [Override(base.id, cid, round(x, 2), "why") for cid, x in items]
    r, _ = overrides.apply(base, wanted)
    contract_ok(r)
    assert overrides.strip(r) == base
    again, _ = overrides.reapply(r, wanted)
    assert again == r                                      # re-applying is idempotent


# ---- the file ---------------------------------------------------------------------------

def test_file_round_trip_and_bad_rows(tmp_path):
    overrides.put(tmp_path, Override("alice", "linear.backward", 2.5, "=looks like a formula, isn't"))
    overrides.put(tmp_path, Override("bob", "", 30, 'said "ok", in person'))
    overrides.put(tmp_path, Override("alice", "linear.backward", 3, "second look"))  # replaces
    text = (tmp_path / "overrides.csv").read_text()
    assert text.splitlines()[0] == "id,check,score,comment" and "'=looks" not in text.split("second")[0]
    wanted, problems = overrides.read(tmp_path)
    assert problems == []
    assert wanted["alice"] == [Override("alice", "linear.backward", 3, "second look")]
    assert wanted["bob"][0].comment == 'said "ok", in person'
    with open(tmp_path / "overrides.csv", "a") as f:
        f.write("carol,,lots,why\ndan,,3,\n,,1,x\n")
    wanted, problems = overrides.read(tmp_path)
    assert set(wanted) == {"alice", "bob"} and len(problems) == 3
    assert all(str(tmp_path / "overrides.csv") in p and "line" in p for p in problems)
    overrides.put(tmp_path, None, clear=("bob", ""))
    assert set(overrides.read(tmp_path)[0]) == {"alice"}


def test_a_formula_comment_is_guarded_in_the_file_and_read_back_as_written(tmp_path):
    overrides.put(tmp_path, Override("alice", "", 3, "=HYPERLINK(\"http://x\")"))
    row = next(csv.DictReader(io.StringIO((tmp_path / "overrides.csv").read_text())))
    assert row["comment"].startswith("'=")                 # a spreadsheet shows it as text
    assert overrides.read(tmp_path)[0]["alice"][0].comment == "=HYPERLINK(\"http://x\")"


def test_a_file_without_the_columns_says_so(tmp_path):
    (tmp_path / "overrides.csv").write_text("who,points\nalice,3\n")
    wanted, problems = overrides.read(tmp_path)
    assert wanted == {} and "must name the columns id, check, score, comment" in problems[0]


def test_exports_read_the_file_as_it_is_now(tmp_path, cli):
    out = write_out(tmp_path / "out", class_results())
    (out / "overrides.csv").write_text("id,check,score,comment\nmallory,,5,looked at it\n"
                                       "nobody,,1,not in this run\n")
    assert cli("export", out, "--format", "csv") == 0
    rows = {r["submission"]: r for r in csv.DictReader(open(out / "export" / "grades.csv"))}
    assert float(rows["mallory"]["score"]) == 5 and float(rows["mallory"]["auto_score"]) == 0
    assert "looked at it" in rows["mallory"]["override"]


# ---- end to end through the CLI -------------------------------------------------------------

def test_override_round_trip_through_regrades_and_every_export(tmp_path):
    sub = tmp_path / "in"
    sub.mkdir()
    shutil.copy(FIXTURES / "correct" / "classic_template.py", sub / "ada.py")
    shutil.copy(FIXTURES / "buggy" / "db_mean.py", sub / "bob.py")
    out = tmp_path / "out"
    assert run_cli("grade", sub, "--out", out, "--jobs", "2").returncode == 0
    auto = json.loads((out / "bob" / "result.json").read_text())
    lost = next(c for c in auto["checks"] if c["status"] == "fail")

    # a check, then the total of another submission
    p = run_cli("override", out, "bob", "--check", lost["id"], "--score", lost["max_score"],
                "--comment", "db is fine: my reference summed over the wrong axis")
    assert p.returncode == 0, p.stderr
    assert "Recorded in" in p.stderr
    assert run_cli("override", out, "ada", "--score", 30, "--comment", "late: 10% off").returncode == 0

    def check_outputs():
        bob = json.loads((out / "bob" / "result.json").read_text())
        validate_result(bob)
        c = next(c for c in bob["checks"] if c["id"] == lost["id"])
        assert c["score"] == lost["max_score"] and c["details"]["override"]["auto_score"] == lost["score"]
        assert bob["score"] == auto["score"] + lost["max_score"] - lost["score"]
        assert bob["meta"]["override"]["auto_score"] == auto["score"]   # nothing lost
        ada = json.loads((out / "ada" / "result.json").read_text())
        assert ada["score"] == 30 and ada["meta"]["override"]["comment"] == "late: 10% off"
        html = (out / "bob" / "feedback.html").read_text()
        assert 'id="adjusted"' in html and "my reference summed over the wrong axis" in html
        assert "Adjusted by your instructor" in (out / "ada" / "feedback.md").read_text()
        summary = {r["id"]: r for r in csv.DictReader(open(out / "summary.csv"))}
        assert float(summary["ada"]["score"]) == 30
        dash = (out / "index.html").read_text()
        assert 'id="adjusted"' in dash and "late: 10% off" in dash
        contract = subprocess.run([sys.executable, str(CONTRACT_CHECKER), str(out)],
                                  capture_output=True, text=True)
        assert contract.returncode == 0, contract.stdout

    check_outputs()
    again = run_cli("grade", sub, "--out", out, "--jobs", "2")          # all from the cache
    assert again.returncode == 0 and "2 submissions up to date" in again.stderr
    check_outputs()
    forced = run_cli("grade", sub, "--out", out, "--jobs", "2", "--force")   # graded afresh
    assert forced.returncode == 0
    check_outputs()

    # every export carries the instructor's numbers
    roster = tmp_path / "roster.csv"
    roster.write_text("name,email,id,submission\nAda,ada@uni.edu,101,ada\nBob,bob@uni.edu,102,bob\n")
    for fmt in ("csv", "canvas", "moodle", "gradescope"):
        assert run_cli("export", out, "--format", fmt, "--roster", roster).returncode == 0, fmt
    grades = {r["submission"]: r for r in csv.DictReader(open(out / "export" / "grades.csv"))}
    assert float(grades["ada"]["score"]) == 30 and float(grades["ada"]["auto_score"]) == auto_total(out, "ada")
    canvas_rows = {r[0]: r for r in csv.reader(open(out / "export" / "canvas.csv"))}
    assert float(canvas_rows["Ada"][5]) == 30
    assert "late: 10% off" in (out / "export" / "canvas_feedback" / "101.txt").read_text()
    moodle_rows = {r[0]: r for r in csv.reader(open(out / "export" / "moodle.csv"))}
    assert float(moodle_rows["ada@uni.edu"][1]) == 30
    gs = json.loads((out / "export" / "gradescope" / "ada" / "results.json").read_text())
    assert gs["score"] == 30 and "late: 10% off" in gs["output"]

    # cleared: back to the grader's own score everywhere
    assert run_cli("override", out, "ada", "--clear").returncode == 0
    ada = json.loads((out / "ada" / "result.json").read_text())
    assert "override" not in ada["meta"] and ada["score"] == auto_total(out, "ada")


def auto_total(out, sid) -> float:
    data = json.loads((out / sid / "result.json").read_text())
    return (data["meta"].get("override") or {}).get("auto_score", data["score"])


def test_override_command_refuses_what_it_cannot_apply(tmp_path, capsys):
    out = write_out(tmp_path / "out", [alice(), broken()])

    def run(*argv):
        from grader.cli import main
        return main(["override", str(out), *map(str, argv)])

    assert run("nobody", "--score", 1, "--comment", "x") == 2
    assert run("alice_classic", "--check", "no.such", "--score", 1, "--comment", "x") == 2
    assert run("alice_classic", "--check", "linear.forward", "--score", 4, "--comment", "x") == 2
    assert run("alice_classic", "--score", 1) == 2                       # no comment
    err = capsys.readouterr().err
    assert "no readable result for submission 'nobody'" in err and "has no check 'no.such'" in err
    assert "outside 0..3" in err and "--comment" in err
    assert not (out / "overrides.csv").exists()
    assert run("alice_classic", "--check", "linear.forward", "--score", 1, "--comment", "copied") == 0
    assert Result.read(out / "alice_classic" / "result.json").score == 14
