"""Similarity and class insight inside `nngrader grade`, end to end through the CLI.

The buggy fixtures are graded once per session (the shared `graded` fixture); many of them
were patched from the same correct file, so they are also a class with real near-copies.
The dashboard's "What the class got wrong" and "Similar submissions" sections are opened
in headless Chromium and their links followed.
"""
from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from conftest import ARTIFACTS, FIXTURES, run_cli

SIM = FIXTURES / "similarity"
COPIES = {"ana_original", "ben_exact_copy", "cleo_renamed", "dan_reordered", "eva_notebook"}
STUDENT_FACING = ("result.json", "feedback.md", "feedback.html")


def families_in(out: Path) -> Counter:
    """family -> students, from the result.json files (what the dashboard must show)."""
    seen: dict[str, set] = {}
    for path in out.glob("*/result.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        for c in data["checks"]:
            fam = (c.get("details") or {}).get("family")
            if fam and not (c["status"] == "pass" and c["score"] >= c["max_score"]):
                seen.setdefault(fam, set()).add(data["id"])
    return Counter({f: len(ids) for f, ids in seen.items()})


# ---------------------------------------------------------------- the buggy batch

def test_grade_writes_flagged_pairs_and_never_tells_students(graded):
    g = graded("buggy")
    rows = list(csv.DictReader((g.out / "similarity.csv").open(newline="", encoding="utf-8")))
    assert rows and all(r["flagged"] == "true" for r in rows)
    pages = sorted(p.name for p in (g.out / "similarity").glob("*.html"))
    assert len(pages) == len(rows)
    for sid in g.results:
        for name in STUDENT_FACING:
            assert "similar" not in (g.out / sid / name).read_text(encoding="utf-8").lower(), (sid, name)


def test_exports_never_mention_similarity(graded, cli, tmp_path):
    g = graded("buggy")
    out = tmp_path / "out"
    shutil.copytree(g.out, out)
    for fmt in ("csv", "gradescope", "moodle", "canvas"):
        cli("export", out, "--format", fmt)
    written = [p for p in (out / "export").rglob("*") if p.is_file()]
    assert written
    for p in written:
        assert "similar" not in p.read_text(encoding="utf-8", errors="replace").lower(), p


def open_page(browser, url: str, shot: str | None = None):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems, requests = [], []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url)
    page.wait_for_load_state("load")
    if shot:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
    return page, problems, [u for u in requests if not u.startswith(("file:", "data:"))]


def test_mistakes_section_lists_families_with_counts_and_working_links(browser, graded):
    g = graded("buggy")
    expected = families_in(g.out)
    assert sum(expected.values()) >= 15        # the buggy fixtures are named mistakes
    page, problems, network = open_page(browser, (g.out / "index.html").as_uri(), "dashboard-mistakes.png")
    assert problems == [] and network == []
    items = page.locator("#mistakes .mistake")
    shown = {items.nth(i).get_attribute("data-family"): int(items.nth(i).get_attribute("data-count"))
             for i in range(items.count())}
    assert shown == dict(expected)
    counts = [int(items.nth(i).get_attribute("data-count")) for i in range(items.count())]
    assert counts == sorted(counts, reverse=True)   # most common first
    heading = page.locator("#mistake-sigmoid_derivative h3").inner_text()
    assert heading.startswith(f"{expected['sigmoid_derivative']} student") and "s(z)*s(1-z)" in heading
    assert page.locator("#mistake-sigmoid_derivative .tip").inner_text() == "Tip 8e:"
    # every student link resolves to a report that has the linked check on it
    links = page.locator("#mistakes a").evaluate_all("els => els.map(e => e.href)")
    assert len(links) == sum(expected.values())
    for href in links[:8] + links[-4:]:
        target, problems, _ = open_page(browser, href)
        anchor = href.split("#", 1)[1]
        assert problems == [] and target.locator(f"[id='{anchor}']").count() == 1, href
        target.close()
    page.close()


def test_similarity_section_links_to_side_by_side_pages(browser, graded):
    g = graded("buggy")
    page, problems, _ = open_page(browser, (g.out / "index.html").as_uri())
    assert problems == []
    rows = page.locator("#similarity tbody tr")
    n = len(list(csv.DictReader((g.out / "similarity.csv").open(newline="", encoding="utf-8"))))
    assert rows.count() == n
    rows.first.locator("a.compare").click()
    page.wait_for_load_state("load")
    assert page.url.startswith((g.out / "similarity").as_uri())
    assert page.locator("#side-a mark").count() > 0 and page.locator("#side-b mark").count() > 0
    assert page.locator("#matches tbody tr").count() > 0
    assert page.locator("script").count() == 0
    page.screenshot(path=str(ARTIFACTS / "similarity-pair.png"), full_page=False)
    page.locator("h1 a").first.click()                  # back to a student's report
    page.wait_for_load_state("load")
    assert page.url.endswith("/feedback.html") and page.locator("h1").inner_text().startswith("Feedback for")
    page.close()


# ---------------------------------------------------------------- the similarity class

def rubric(tmp_path: Path, table: str) -> Path:
    from grader.rubric import default_path
    shutil.copy(SIM / "template.py", tmp_path / "template.py")
    p = tmp_path / "rubric.toml"
    p.write_text(default_path().read_text(encoding="utf-8") + "\n[similarity]\n" + table, encoding="utf-8")
    return p


def flagged(out: Path) -> set[tuple[str, str]]:
    rows = csv.DictReader((out / "similarity.csv").open(newline="", encoding="utf-8"))
    return {(r["a"], r["b"]) for r in rows}


def test_class_with_template_flags_the_copies_and_survives_a_rerun(tmp_path):
    out = tmp_path / "out"
    r1 = rubric(tmp_path, 'templates = ["template.py"]\nthreshold = 0.5\n')
    first = run_cli("grade", SIM / "class", "--out", out, "--rubric", r1, "--jobs", "2")
    assert first.returncode == 0, first.stderr
    pairs = {tuple(sorted(p)) for p in flagged(out)}
    assert pairs == {(a, b) for a in COPIES for b in COPIES if a < b}
    scores = {p.parent.name: json.loads(p.read_text())["score"] for p in out.glob("*/result.json")}
    # a stricter threshold: nothing is regraded, fewer pairs are flagged, stale pages go
    r2 = rubric(tmp_path, 'templates = ["template.py"]\nthreshold = 0.99\n')
    second = run_cli("grade", SIM / "class", "--out", out, "--rubric", r2, "--jobs", "2")
    assert second.returncode == 0, second.stderr
    assert "8 submissions up to date" in second.stderr
    assert ("dan_reordered", "eva_notebook") not in flagged(out) and len(flagged(out)) == 9
    assert len(list((out / "similarity").glob("*.html"))) == 9
    assert scores == {p.parent.name: json.loads(p.read_text())["score"] for p in out.glob("*/result.json")}
    # switched off: no CSV, no pages, no section
    r3 = rubric(tmp_path, "enabled = false\n")
    third = run_cli("grade", SIM / "class", "--out", out, "--rubric", r3, "--jobs", "2")
    assert third.returncode == 0 and "8 submissions up to date" in third.stderr
    assert not (out / "similarity.csv").exists() and not list((out / "similarity").glob("*.html"))
    assert 'id="similarity"' not in (out / "index.html").read_text(encoding="utf-8")
