"""A plain CSV for the instructor's own spreadsheet: one row per student, one column per check.

Columns: student, submission, score, max_score, error, then each check id (in the order
checks first appear) holding that check's points. A check a submission lacks is blank, not
zero, so "not run" and "no points" stay apart. Then, per check id, "<id> family": the
mistake the check recognised when it cost points (details.family, e.g.
sigmoid_derivative), blank otherwise.
"""
from __future__ import annotations

from pathlib import Path

from . import safecsv
from .common import ungraded, write_csv
from .identity import Matching


def check_ids(matching: Matching) -> list[str]:
    seen: dict[str, None] = {}
    for _, r in matching.pairs:
        for c in r.checks if r else ():
            seen.setdefault(c.id)
    return list(seen)


def rows(matching: Matching) -> list[list[str]]:
    ids = check_ids(matching)
    out = [["student", "submission", "score", "max_score", "error", *ids,
            *[f"{i} family" for i in ids]]]
    for s, r in matching.pairs:
        if r is None:
            out.append([safecsv.text(s.name), "", "", "", "no submission", *[""] * (2 * len(ids))])
            continue
        by_id = {c.id: c for c in r.checks}
        out.append([safecsv.text(s.name), safecsv.text(r.id),
                    "" if ungraded(r) else safecsv.score(r.score), safecsv.score(r.max_score),
                    safecsv.text(r.error or ""),
                    *[safecsv.score(by_id[i].score) if i in by_id else "" for i in ids],
                    *[safecsv.text(family(by_id.get(i))) for i in ids]])
    return out


def family(c) -> str:
    """The recognised mistake of a check that cost points, or ''."""
    if c is None or (c.passed and c.score >= c.max_score) or not isinstance(c.details, dict):
        return ""
    f = c.details.get("family")
    return f if isinstance(f, str) else ""


def write(matching: Matching, path: Path) -> None:
    write_csv(path, rows(matching))
