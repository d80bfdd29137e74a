"""Small facts every export needs: which results count as graded, the points possible."""
from __future__ import annotations

import csv
import io
import re
from collections import Counter
from pathlib import Path

from ..result import Result, write_atomic

ASSIGNMENT = re.compile(r"^(?P<title>.*\S)\s*\((?P<id>\d+)\)\s*$")


def ungraded(r: Result | None) -> bool:
    """No grade to send: no submission, or the grader failed before any check ran.

    Sending 0 for a grader failure would be a quiet zero; the export leaves it blank and
    says so instead.
    """
    return r is None or (bool(r.error) and not r.checks)


def points_possible(results: list[Result]) -> tuple[float, list[str]]:
    """The most common max_score, and a sentence if submissions disagree about it."""
    counts = Counter(r.max_score for r in results if r.max_score > 0)
    if not counts:
        return 0.0, ["No result has a maximum score; points possible is 0."]
    best = counts.most_common(1)[0][0]
    if len(counts) > 1:
        odd = sorted(r.id for r in results if r.max_score not in (0, best))
        return best, [f"Results disagree about the maximum score; using {best:g}. "
                      f"Different: {', '.join(odd[:5])}{' …' if len(odd) > 5 else ''}."]
    return best, []


def assignment_id(title: str) -> str | None:
    """The Canvas id in an "Assignment Title (123456)" header, if there is one."""
    m = ASSIGNMENT.match(title or "")
    return m["id"] if m else None


def write_csv(path: Path, rows: list[list[str]], *, bom: bool = False) -> None:
    """Write rows as CSV (CRLF, minimal quoting), atomically."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    write_atomic(Path(path), ("\ufeff" if bom else "") + buf.getvalue())
