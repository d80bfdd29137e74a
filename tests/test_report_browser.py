"""End to end: open the dashboard and a student page from disk in headless Debian chromium.

Skips, saying why, when playwright or /usr/bin/chromium is missing. Screenshots go to
test-artifacts/ (gitignored) for a person to look at.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from builders import class_results, write_out
from conftest import ARTIFACTS
from grader.report.html import pass_rates, write_dashboard, write_student_html

@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = write_out(tmp_path_factory.mktemp("out"), class_results())
    results = class_results()
    for r in results:
        write_student_html(r, out / r.id / "feedback.html")
    write_dashboard(results, out, 12.3)
    return out


def _open(browser, path: Path, shot: str, *, full_page=True):
    """Open a file:// page, record console errors and any network request, screenshot it."""
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    problems, requests = [], []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / shot), full_page=full_page)
    return page, problems, [u for u in requests if not u.startswith(("file:", "data:"))]


def test_dashboard_loads_sorts_and_draws(browser, out):
    page, problems, network = _open(browser, out / "index.html", "dashboard.png")
    assert problems == [] and network == []
    assert page.locator("#histogram rect.bar").count() > 0
    first_rate = page.locator("#pass-rates .mono").first.inner_text()
    assert first_rate == pass_rates(class_results())[0]["id"] == "gradcheck.mlp"  # 0 of 2 pass
    # sort by score, descending on the second click: the top row is the best student
    head = page.locator("#students th").nth(1)
    head.click()
    head.click()
    assert head.get_attribute("aria-sort") == "descending"
    top = page.locator("#students tbody tr").first.locator("td").nth(1).get_attribute("data-v")
    scores = [float(v) for v in page.locator("#students tbody td:nth-child(2)").evaluate_all(
        "els => els.map(e => e.getAttribute('data-v'))") if v]
    assert float(top) == max(scores)
    page.screenshot(path=str(ARTIFACTS / "dashboard-sorted.png"), full_page=True)
    link = page.locator("#students a", has_text="alice_classic")
    assert link.get_attribute("href") == "alice_classic/feedback.html"
    page.close()


def test_student_report_shows_curves_and_evidence(browser, out):
    page, problems, network = _open(browser, out / "alice_classic" / "feedback.html", "student-alice.png")
    assert problems == [] and network == []
    # failed checks come first; a passed check's learning curves (train.xor) stay in view
    # because something failed; the other passed ones open with one click
    assert page.locator("#check-train\\.xor").is_visible()
    assert not page.locator("#check-relu\\.forward").is_visible()
    page.locator("details.passed > summary").click()
    assert page.locator("#check-relu\\.forward").is_visible()
    assert page.locator("#check-train\\.xor svg.chart polyline").count() >= 2
    assert page.locator("#check-train\\.xor svg line.ref").count() >= 1
    page.locator("#check-train\\.xor").screenshot(path=str(ARTIFACTS / "student-alice-curves.png"))
    body = page.locator("body").inner_text()
    assert "Suspected mistake" in body and "dW[2, 1]" in body and "b1" in body
    page.close()


def test_script_in_a_message_is_text(browser, out):
    page, problems, _ = _open(browser, out / "mallory" / "feedback.html", "student-mallory.png")
    assert problems == []
    assert "<script>alert(1)</script>" in page.locator("#check-linear\\.forward .message").inner_text()
    assert page.locator("main script").count() == 0
    assert page.locator("#not-isolated").is_visible()
    page.locator("#check-train\\.xor").screenshot(path=str(ARTIFACTS / "student-mallory-plateau.png"))
    page.close()
