"""The feedback comment an LMS shows next to a grade, as plain text or simple HTML.

Shorter than feedback.html: the score (and what it is in the LMS's points), the
instructor's adjustments, then each check that did not pass with its message, suspected
mistake and tips, then one line naming the checks that passed. Canvas stores
comments as plain text; Moodle stores feedback comments as HTML, so `as_html` escapes the
text (a `<script>` from a message stays text) and keeps the line breaks.
"""
from __future__ import annotations

import html
from collections.abc import Mapping

from .. import overrides
from ..report import hints
from ..report.student_paths import scrub
from ..result import Result

WORDS = {"fail": "failed", "error": "error", "timeout": "timed out", "skipped": "skipped"}


def _pts(x: float) -> str:
    return f"{x:g}"


def plain(result: Result, *, report_url: str | None = None, points: float | None = None) -> str:
    """The comment as plain text, one paragraph per check that did not pass; `points` is
    the assignment's points in the LMS when it scales nngrader's score."""
    result = scrub(result)
    head = f"nngrader: {_pts(result.score)} / {_pts(result.max_score)} points"
    if points is not None and result.max_score > 0 and abs(points - result.max_score) > 1e-9:
        head += f", {_pts(round(result.score / result.max_score * points, 2))} / {_pts(points)} for this assignment"
    lines = [head + "."]
    adjusted = overrides.lines(result)
    if adjusted:
        lines += [""] + adjusted
    if result.error:
        lines += ["", f"Could not grade everything: {result.error}"]
    lost = [c for c in result.checks if c.status != "pass"]
    tips = hints.once(lost)
    for c in lost:
        lines += ["", f"{c.id} ({WORDS.get(c.status, c.status)}, {_pts(c.score)} / {_pts(c.max_score)}): "
                  f"{c.message}".rstrip(": ")]
        suspected = c.details.get("suspected") if isinstance(c.details, Mapping) else None
        if suspected:
            lines.append(f"  Suspected mistake: {suspected}")
        lines += ["  " + hints.line(*t) for t in tips[c.id]]
    passed = [c.id for c in result.checks if c.status == "pass"]
    if passed:
        lines += ["", "Passed: " + ", ".join(passed) + "."]
    if report_url:
        lines += ["", f"Full report: {report_url}"]
    return "\n".join(lines)


def as_html(result: Result, *, points: float | None = None) -> str:
    """The same comment for an LMS that stores HTML (Moodle): escaped, line breaks kept."""
    return html.escape(plain(result, points=points)).replace("\n", "<br>\n")
