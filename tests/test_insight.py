"""grader/report/insight.py (what the class got wrong), its dashboard sections, and the
family columns of the plain CSV export."""
from __future__ import annotations

import csv
import io

from builders import write_out
from grader.report.html import write_dashboard
from grader.report.insight import errored_checks, mistakes
from grader.result import CheckResult, Hint, Result
from grader.rubric import load_rubric

SIG_HINT = Hint("8e", "The sigmoid's derivative is s(z)·(1 - s(z)).")


def failing(cid, family, score=0.0, max_score=2.0, hint=SIG_HINT):
    return CheckResult(cid, "fail", score, max_score, f"{cid} is off",
                       hints=(hint,) if hint else (), details={"family": family})


def student(sid, *checks, error=None):
    return Result(sid, tuple(checks), error=error)


def a_class() -> list[Result]:
    results = [student(f"s{i}", failing("loss.backward", "sigmoid_derivative"),
                       failing("gradcheck.W1", "sigmoid_derivative", 1, 2),
                       CheckResult("relu.forward", "pass", 2, 2, "ok"))
               for i in range(3)]
    results.append(student("t0", failing("relu.backward", "relu_no_mask", hint=None),
                           CheckResult("train.xor", "error", 0, 4, "TypeError: train() takes 3 arguments\nmore")))
    results.append(student("t1", CheckResult("train.xor", "error", 0, 4, "TypeError: train() takes 3 arguments"),
                           CheckResult("relu.forward", "pass", 2, 2, "ok", details={"family": "leaky_forward"})))
    results.append(student("<b>x</b>", CheckResult("train.xor", "error", 0, 4, "NameError: batch")))
    results.append(Result("broken", (), error="could not be read"))
    return results


def test_families_counted_by_student_most_common_first():
    rows = mistakes(a_class())
    assert [(r["family"], r["n"]) for r in rows] == [("sigmoid_derivative", 3), ("relu_no_mask", 1)]
    sig = rows[0]
    assert sig["description"].startswith("the sigmoid derivative is written s(z)*s(1-z)")
    assert sig["checks"] == [{"id": "loss.backward", "lost": "6"}, {"id": "gradcheck.W1", "lost": "3"}]
    assert (sig["tip"], sig["hint"]) == ("8e", SIG_HINT.text)
    assert [s["href"] for s in sig["students"]] == [f"s{i}/feedback.html#check-loss.backward" for i in range(3)]


def test_a_passed_check_with_a_family_costs_nothing_and_is_not_listed():
    assert "leaky_forward" not in {r["family"] for r in mistakes(a_class())}


def test_tip_comes_from_the_rubric_when_given():
    rows = mistakes(a_class(), load_rubric().families)
    relu = next(r for r in rows if r["family"] == "relu_no_mask")
    assert relu["tip"] == "3" and "mask" in relu["hint"]


def test_checks_that_errored_for_many_students():
    rows = errored_checks(a_class())
    assert [(r["id"], r["n"], r["of"]) for r in rows] == [("train.xor", 3, 6)]
    assert rows[0]["message"] == "TypeError: train() takes 3 arguments"
    assert [s["id"] for s in rows[0]["students"]] == ["<b>x</b>", "t0", "t1"]
    assert errored_checks(a_class()[:4]) == []          # one error is not "many"


def test_dashboard_sections_are_escaped_and_link_to_reports(tmp_path):
    results = a_class()
    write_out(tmp_path, results)
    similarity = {"threshold": "50%", "n": 7, "templates": ["skeleton.py"], "more": 0,
                  "pairs": [{"a": "s0", "b": "<i>s1</i>", "similarity": "97%",
                             "href": "similarity/s0__s1.html", "a_href": "s0/feedback.html",
                             "b_href": "%3Ci%3E/feedback.html"}]}
    page = write_dashboard(results, tmp_path, 1.0, rubric=load_rubric(),
                           similarity=similarity).read_text(encoding="utf-8")
    assert 'id="mistakes"' in page and 'id="errored-checks"' in page and 'id="similarity"' in page
    assert "3 students</span>: the sigmoid derivative" in page
    assert 'href="s0/feedback.html#check-loss.backward"' in page
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<i>s1</i>" not in page and 'href="similarity/s0__s1.html"' in page


def test_dashboard_without_similarity_or_mistakes_has_no_sections(tmp_path):
    results = [student("ok", CheckResult("relu.forward", "pass", 2, 2, "ok"))]
    page = write_dashboard(results, tmp_path, 1.0).read_text(encoding="utf-8")
    assert 'id="mistakes"' not in page and 'id="similarity"' not in page


def test_plain_csv_export_has_a_family_per_check(tmp_path, cli):
    out = write_out(tmp_path / "out", a_class())
    assert cli("export", out, "--format", "csv") in (0, 1)
    rows = list(csv.reader(io.StringIO((out / "export" / "grades.csv").read_text(encoding="utf-8"),
                                       newline="")))
    head = rows[0]
    assert head[:5] == ["student", "submission", "score", "max_score", "error"]
    ids = head[5:head.index("auto_score")]                       # the points, per check
    assert head[head.index("override") + 1:] == [f"{i} family" for i in ids]  # then the families
    by_id = {r[1]: dict(zip(head, r)) for r in rows[1:]}
    assert by_id["s0"]["loss.backward family"] == "sigmoid_derivative"
    assert by_id["s0"]["loss.backward"] == "0"
    assert by_id["t1"]["relu.forward family"] == ""      # passed: no mistake to name
    assert by_id["broken"]["loss.backward family"] == ""
