"""The pages as a student and an instructor see them, in headless Debian chromium: layout
assertions on a failing student's report and on the class dashboard.

The sample is shaped like a real run (builders below): five gradcheck.* checks that share
one table of relative errors, sampled entries and a likely cause in their details, a
failing loss.backward, a passing train.xor with learning curves, the rubric's seed. Skips,
saying why, without playwright or /usr/bin/chromium. Screenshots go to test-artifacts/.
"""
from __future__ import annotations

import math

import pytest

from builders import class_results, training, write_out
from grader.checks.training import epoch_phrase, runs_phrase
from grader.report.html import write_dashboard, write_student_html
from grader.result import CheckResult, Hint, Result
from conftest import ARTIFACTS
from test_report_browser import _open

PARAMS = ("W1", "b1", "W2", "b2", "x")


def gradchecks() -> tuple[CheckResult, ...]:
    rel = {p: 0.8333 for p in PARAMS}
    out = []
    for p in PARAMS:
        out.append(CheckResult(
            f"gradcheck.{p}", "fail", 0, 1,
            f"gradient of {p}: the analytic gradient is ×N (N=6) the numerical one (fix loss.backward first)",
            hints=(Hint("8e", "Your backprop is a constant multiple of the true gradient."),
                   Hint("8e", "Compare your backprop with (L(w+h) - L(w-h)) / 2h for a few entries.")),
            details={"rel_error": rel, "threshold": 1e-5, "ratio": {q: 6.0 for q in PARAMS},
                     "suspected": "the gradient is off by a constant factor",
                     "entries": {"rel_error": 0.8333, "source": "parameter change of one step (lr 1)",
                                 "analytic": [-0.059, -0.286], "numerical": [-0.0098, -0.0477],
                                 "entries": [[0, 3], [2, 0]]},
                     "h": 1e-5, "likely_cause": ["loss.backward"], "family": "grad_factor"}))
    return tuple(out)


def failing_student() -> Result:
    loss_backward = CheckResult(
        "loss.backward", "fail", 0, 2, "the loss is a mean over the batch but its gradient is not divided",
        hints=(Hint("8e", "Your loss averages over the batch, so its gradient must be divided by N."),
               Hint("8g", "sigmoid(z) - y, over N for a mean loss.")),
        details={"quantity": "dz", "expected_shape": [7, 1], "got_shape": [7, 1], "mismatched": 7,
                 "total": 7, "worst": {"index": [3, 0], "expected": -0.115, "got": -0.806},
                 "family": "mean_grad_not_divided"})
    xor = training(score=2, max_score=2)
    overfit = CheckResult("train.overfit20", "fail", 0, 2, "the run does not learn it (spiky; final loss 0.401)",
                          hints=(Hint("8i", "Lower the learning rate until it stops blowing up."),),
                          details={"curves": xor.details["curves"][:1], "chance_loss": math.log(2),
                                   "verdict": "spiky", "runs": ["spiky"], "required": 1})
    checks = (CheckResult("linear.forward", "pass", 2, 2, "matches"), loss_backward, *gradchecks(),
              xor, overfit,
              CheckResult("vectorised.linear", "pass", 1, 1, "vectorised",
                          details={"forward": {"student_s": 1.4e-5, "calibration_s": 1.35e-5, "ratio": 1.03},
                                   "loops": []}))
    meta = {"graded_file": "hw2.py", "source": "/home/instructor/course/in/hw2.py", "seed": 20261124,
            "grader_version": "0.1.0", "rubric": "default", "elapsed_s": 1.7,
            "sandbox": {"tier": "namespaces", "protections": ["own-uid"], "isolated": True, "status": "ok"}}
    return Result("mean_grad_not_divided", checks, meta=meta)


def test_phrases_read_naturally():
    assert runs_phrase(1, 1) == "the run reaches" and epoch_phrase([45]) == "45 epochs"
    assert runs_phrase(3, 3) == "all 3 runs reach" and runs_phrase(2, 3) == "2 of 3 runs reach"
    assert epoch_phrase([40, 52]) == "40–52 epochs" and epoch_phrase([1]) == "1 epoch"


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    out = write_out(tmp_path_factory.mktemp("layout"), class_results() + [failing_student()])
    write_student_html(failing_student(), out / "mean_grad_not_divided" / "feedback.html")
    results = class_results() + [failing_student()]
    for r in class_results():
        write_student_html(r, out / r.id / "feedback.html")
    write_dashboard(results, out, 18.0)
    return out


def test_failing_students_report_in_a_browser(browser, pages):
    page, problems, network = _open(browser, pages / "mean_grad_not_divided" / "feedback.html",
                                    "layout-student-failing.png")
    assert problems == [] and network == []
    # the passing train.xor's learning curves are in view, not folded into "passed checks"
    xor = page.locator("#check-train\\.xor")
    assert xor.is_visible() and page.locator("details.passed #check-train\\.xor").count() == 0
    assert xor.locator("svg.chart polyline").first.is_visible()
    assert not page.locator("#check-linear\\.forward").is_visible()      # the rest stays folded
    # the table of every parameter once; each other gradient-check card keeps its own row
    rows = [page.locator(f"#check-gradcheck\\.{p} table.evidence-table tbody tr").count() for p in PARAMS]
    assert rows == [5, 1, 1, 1, 1]
    for p in PARAMS[1:]:
        card = page.locator(f"#check-gradcheck\\.{p}")
        assert card.locator("table.evidence-table td.mono").first.inner_text() == p
        assert card.locator("a[href='#check-gradcheck.W1']").count() == 1
    # other details: small tables, no raw dictionaries, no internal ids
    details = page.locator("dl.details").all_inner_texts()
    assert details and not any("{" in d or "}" in d or "grad_factor" in d for d in details)
    assert page.locator("#check-gradcheck\\.W1 table.mini tbody tr").count() == 2
    # each tip said once; later cards point back to it
    full = [t for t in page.locator(".hint").all_inner_texts() if t.startswith("Tip 8e:") and "as in" not in t]
    assert full == ["Tip 8e: Your loss averages over the batch, so its gradient must be divided by N."]
    assert page.locator("#check-gradcheck\\.b2 .hint a[href='#check-loss.backward']").count() == 1
    footer = page.locator("footer").inner_text()
    assert "seed 20261124" in footer and "e+07" not in footer
    body = page.locator("body").inner_text()
    assert "/home/instructor" not in body and "hw2.py" in body
    page.locator("#check-gradcheck\\.W1").screenshot(path=str(ARTIFACTS / "layout-gradcheck-once.png"))
    page.locator("#training-runs").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "layout-student-curves-in-view.png"))
    page.close()


def test_dashboard_histogram_and_score_column_in_a_browser(browser, pages):
    page, problems, network = _open(browser, pages / "index.html", "layout-dashboard.png")
    assert problems == [] and network == []
    hist = page.locator("#histogram").bounding_box()
    card = page.locator("#histogram").locator("xpath=..").bounding_box()
    assert hist["width"] >= 0.9 * (card["width"] - 40)        # fills its card (padding aside)
    assert hist["height"] <= 200                              # and stays compact
    edges = page.locator("#histogram text.edge").evaluate_all("els => els.map(e => e.textContent)")
    assert edges and all(e.isdigit() for e in edges)          # whole-point, round bin edges
    assert [int(e) for e in edges] == sorted(int(e) for e in edges)
    # no score cell wraps: each holds one line of text
    lines = page.locator("#students tbody td:nth-child(2)").evaluate_all("""cells => cells.map(td => {
        const r = document.createRange(); r.selectNodeContents(td);
        return new Set(Array.from(r.getClientRects()).map(x => Math.round(x.top))).size; })""")
    assert lines and max(lines) == 1
    page.locator("#histogram").locator("xpath=..").screenshot(path=str(ARTIFACTS / "layout-histogram.png"))
    page.close()


def test_a_narrow_window_still_keeps_scores_on_one_line(browser, pages):
    page = browser.new_page(viewport={"width": 700, "height": 900})
    page.goto((pages / "index.html").as_uri())
    heights = page.locator("#students tbody td:nth-child(2)").evaluate_all(
        "cells => cells.map(td => td.scrollWidth <= td.clientWidth + 1)")
    assert all(heights)
    page.screenshot(path=str(ARTIFACTS / "layout-dashboard-narrow.png"), full_page=True)
    page.close()


def test_histogram_bins_are_whole_points():
    from grader.report import svg
    assert [svg.bin_width(m) for m in (10, 20, 22, 35.5, 100, 1000)] == [1, 1, 2, 2, 5, 50]
    chart = str(svg.histogram([0, 3.55, 34.5, 35.5], 35.5))
    assert "3.55" not in chart.split("<title>Score histogram</title>")[1].split("<rect")[0]
    assert 'width="100%"' in chart


def test_markdown_and_lms_comment_say_each_tip_once_and_mark_overrides():
    from grader import overrides
    from grader.export import feedback_text
    from grader.report import markdown
    r, _ = overrides.apply(failing_student(), [overrides.Override(
        "mean_grad_not_divided", "gradcheck.W1", 1, "the check used a bad seed")])
    for text in (markdown.render(r), feedback_text.plain(r)):
        full = [line for line in text.splitlines() if "Tip 8e:" in line and "as in" not in line]
        assert len(full) == 1 and "divided by N" in full[0]
        assert "/home/instructor" not in text
    md = markdown.render(r)
    assert "| 1 / 1 ✎ (grader: 0) |" in md and "the check used a bad seed" in md
    assert "gradcheck.W1 to 1 point (the grader gave 0)" in feedback_text.plain(r)
