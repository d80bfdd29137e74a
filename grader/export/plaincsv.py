"""A plain CSV for the instructor's own spreadsheet: one row per student, one column per check.

Columns: student, submission, score, max_score, error, then each check id (in the order
checks first appear) holding that check's points, then auto_score (the grader's own total,
before any instructor override) and override (the instructor's comments), then, per check id,
"<id> family": the mistake the check recognised when it cost points (details.family, e.g.
sigmoid_derivative), blank otherwise, and with `--points N` a last column with the score
scaled to N. A check a submission lacks is blank, not zero, so "not run" and "no points"
stay apart; so is the score of work that could not be graded (unless `--ungradable zero`).
"""
from __future__ import annotations

from pathlib import Path

from .. import overrides
from . import safecsv
from .common import Grading, write_csv
from .identity import Matching


def check_ids(matching: Matching) -> list[str]:
    seen: dict[str, None] = {}
    for _, r in matching.pairs:
        for c in r.checks if r else ():
            seen.setdefault(c.id)
    return list(seen)


def rows(matching: Matching, grading: Grading = Grading()) -> list[list[str]]:
    ids = check_ids(matching)
    scaled = [f"grade_of_{grading.points:g}"] if grading.points else []
    out = [["student", "submission", "score", "max_score", "error", *ids, "auto_score", "override",
            *[f"{i} family" for i in ids], *scaled]]
    for s, r in matching.pairs:
        if r is None:
            out.append([safecsv.text(s.name), "", "", "", "no submission", *[""] * len(ids), "", "",
                        *[""] * len(ids), *[""] * len(scaled)])
            continue
        by_id = {c.id: c for c in r.checks}
        adjusted = overrides.summary(r)
        raw = Grading(grading.ungradable)
        out.append([safecsv.text(s.name), safecsv.text(r.id),
                    safecsv.score(raw.grade(r)), safecsv.score(r.max_score),
                    safecsv.text(r.error or ""),
                    *[safecsv.score(by_id[i].score) if i in by_id else "" for i in ids],
                    safecsv.score(adjusted["auto_score"] if adjusted else raw.grade(r)),
                    safecsv.text(" | ".join(overrides.lines(r, student=False))),
                    *[safecsv.text(family(by_id.get(i))) for i in ids],
                    *([safecsv.score(grading.grade(r))] if scaled else [])])
    return out


def family(c) -> str:
    """The recognised mistake of a check that cost points, or ''."""
    if c is None or (c.passed and c.score >= c.max_score) or not isinstance(c.details, dict):
        return ""
    f = c.details.get("family")
    return f if isinstance(f, str) else ""


def write(matching: Matching, path: Path, grading: Grading = Grading()) -> None:
    write_csv(path, rows(matching, grading))
