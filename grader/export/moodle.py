"""Moodle: a grade-import CSV, and the assignment's offline grading worksheet filled in.

Grade import (Grades > Import > CSV file): one identity column (email address or ID
number, from the roster), a grade column and a feedback column, mapped by hand on
Moodle's import page. Moodle aborts the whole import on an unknown user and clears a grade
that is blank, so only students with a grade get a row.

Both scale scores to the assignment's points when asked (`Grading.points`, `--points`).

Worksheet merge: the instructor downloads the assignment's "grading worksheet", we fill
Grade and Feedback comments for the rows we have results for (matched by email address, or
by the participant number of a Moodle download name) and write it back with every other
byte unchanged: same columns, order, quoting and line endings (see rawcsv). Columns are
found by meaning in any language Moodle ships (moodle_headers). Grades are scaled to the
worksheet's Maximum grade and written with its decimals and decimal mark. Moodle stores
feedback comments as HTML, so the feedback is escaped HTML.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..result import Result, write_atomic
from . import feedback_text, moodle_headers, rawcsv, safecsv
from .common import Grading, ungraded, write_csv
from .identity import Matching, Student

GRADE, EMAIL = "Grade", "Email address"   # headers of the grade-import CSV we write


# ---- grade import CSV ---------------------------------------------------------------------

def identity_column(students: list[Student]) -> tuple[str, str]:
    """("Email address", "email") or ("ID number", "id_number"): the one every student has."""
    for header, attr in ((EMAIL, "email"), ("ID number", "id_number")):
        if students and all(getattr(s, attr) for s in students):
            return header, attr
    lacking = [s.name for s in students if not (s.email or s.id_number)]
    raise ValueError("Moodle needs an email address or ID number for every student; "
                     f"the roster has neither for {', '.join(lacking[:5]) or 'some students'}. "
                     "Pass --roster with an 'Email address' or 'ID number' column.")


def import_rows(matching: Matching, grading: Grading = Grading()) -> list[list[str]]:
    graded = [(s, r, g) for s, r in matching.pairs if (g := grading.grade(r)) is not None]
    header, attr = identity_column([s for s, _, _ in graded])
    rows = [[header, GRADE, "Feedback"]]
    for s, r, g in graded:
        rows.append([safecsv.identifier(getattr(s, attr), what=header), safecsv.score(g),
                     safecsv.text(feedback_text.as_html(r, points=grading.points))])
    return rows


def write_import(matching: Matching, path: Path, grading: Grading = Grading()) -> None:
    write_csv(path, import_rows(matching, grading))


# ---- offline grading worksheet ------------------------------------------------------------

@dataclass
class MergeReport:
    filled: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    no_row: list[str] = field(default_factory=list)   # graded submissions the worksheet lacks
    no_result: int = 0                                 # worksheet rows no submission matched


def merge_worksheet(worksheet: Path, matching: Matching, dest: Path,
                    grading: Grading = Grading()) -> MergeReport:
    """Fill Grade and Feedback comments in a copy of the worksheet; returns what was done."""
    raw = Path(worksheet).read_bytes()
    bom = raw.startswith(b"\xef\xbb\xbf")
    try:
        records = rawcsv.parse(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ValueError(f"{worksheet} is not UTF-8 text; download the worksheet from Moodle again.") from None
    if not records:
        raise ValueError(f"{worksheet} is empty.")
    headers = [rawcsv.decode(c).strip() for c in records[0].cells]
    values = [[r.value(i) for i in range(len(r.cells))] for r in records[1:]]
    cols = moodle_headers.find_columns(headers, values)
    problem = moodle_headers.missing_message(worksheet, headers, cols)
    if problem:
        raise ValueError(problem)
    report, used = MergeReport(), set()
    lookup = _lookup(matching)
    for rec in records[1:]:
        hit = _row_owner(rec, cols, lookup)
        if hit is None:
            report.no_result += 1
            continue
        student, result = hit
        used.add(id(result))
        _fill(rec, cols, student, result, report, grading)
    for s, r in matching.pairs:
        if r is not None and id(r) not in used and grading.grade(r) is not None:
            report.no_row.append(f"{s.name or r.id} ({r.id})")
            report.notes.append(f"{s.name or r.id} ({r.id}) has no row in the worksheet; not filled.")
    write_atomic(Path(dest), ("\ufeff" if bom else "") + "".join(r.text() for r in records))
    return report


def _lookup(matching: Matching) -> dict[str, tuple[Student, Result]]:
    table = {}
    for s, r in matching.pairs:
        if r is None:
            continue
        if s.email:
            table["email:" + s.email.lower()] = (s, r)
        if s.participant:
            table["participant:" + s.participant] = (s, r)
    return table


def _row_owner(rec, cols, lookup):
    email = rec.value(cols["email"]).strip().lower() if "email" in cols else ""
    if email and "email:" + email in lookup:
        return lookup["email:" + email]
    m = re.search(r"(\d+)\s*$", rec.value(cols["identifier"]))
    return lookup.get("participant:" + m[1]) if m else None


NO = {"no", "nein", "non", "nee", "não", "nao"}  # "Grade can be changed" answers that mean no


def _fill(rec, cols, student, result, report: MergeReport, grading: Grading) -> None:
    who = student.name or result.id
    if "changeable" in cols and rec.value(cols["changeable"]).strip().casefold() in NO:
        report.notes.append(f"{who}: the worksheet says the grade cannot be changed; row left as it was.")
        return
    if grading.grade(result) is None:
        report.notes.append(f"{who}: the grader could not grade this submission; row left as it was.")
        return
    max_cell = rec.value(cols["maxgrade"]) if "maxgrade" in cols else ""
    grade = _grade_text(result, max_cell, report, grading)
    while len(rec.cells) <= max(cols["grade"], cols["feedback"]):
        rec.cells.append("")
    g, f = cols["grade"], cols["feedback"]
    rec.cells[g] = rawcsv.encode(grade, like=rec.cells[g])
    comment = feedback_text.as_html(result, points=_top(max_cell) or grading.points)
    rec.cells[f] = rawcsv.encode(safecsv.text(comment), like=rec.cells[f])
    report.filled.append(who)


def _top(max_cell: str) -> float | None:
    try:
        return float(max_cell.strip().replace(",", ".")) if max_cell.strip() else None
    except ValueError:
        return None


def _grade_text(result: Result, max_cell: str, report: MergeReport, grading: Grading) -> str:
    """The score in the worksheet's own scale, decimals and decimal mark. The worksheet's
    Maximum grade is the assignment's points in Moodle; --points applies when it has none."""
    comma = "," in max_cell and "." not in max_cell
    top = _top(max_cell)
    if top and grading.points and abs(top - grading.points) > 1e-9:
        note = (f"--points {grading.points:g} differs from the worksheet's maximum grade "
                f"{top:g}; the worksheet's is used.")
        if note not in report.notes:
            report.notes.append(note)
    top = top or grading.points
    score = grading.grade(result, top)
    if top and result.max_score and abs(top - result.max_score) > 1e-9 and not ungraded(result):
        note = f"Grades were scaled from {result.max_score:g} points to the maximum of {top:g}."
        if note not in report.notes:
            report.notes.append(note)
    decimals = len(re.split(r"[.,]", max_cell.strip())[1]) if re.search(r"[.,]\d+$", max_cell.strip()) else 2
    text = f"{score:.{decimals}f}"
    return text.replace(".", ",") if comma else text
