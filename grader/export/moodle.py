"""Moodle: a grade-import CSV, and the assignment's offline grading worksheet filled in.

Grade import (Grades > Import > CSV file): one identity column (email address or ID
number, from the roster), a grade column and a feedback column, mapped by hand on
Moodle's import page. Moodle aborts the whole import on an unknown user and clears a grade
that is blank, so only students with a grade get a row.

Worksheet merge: the instructor downloads the assignment's "grading worksheet", we fill
Grade and Feedback comments for the rows we have results for (matched by email address, or
by the participant number of a Moodle download name) and write it back with every other
byte unchanged: same columns, order, quoting and line endings (see rawcsv). Grades are
scaled to the worksheet's Maximum grade and written with its decimals and decimal mark.
Moodle stores feedback comments as HTML, so the feedback is escaped HTML.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..result import Result, write_atomic
from . import feedback_text, rawcsv, safecsv
from .common import ungraded, write_csv
from .identity import Matching, Student

GRADE, FEEDBACK, EMAIL, IDENT = "Grade", "Feedback comments", "Email address", "Identifier"
MAXGRADE, CHANGEABLE = "Maximum grade", "Grade can be changed"


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


def import_rows(matching: Matching) -> list[list[str]]:
    graded = [(s, r) for s, r in matching.pairs if not ungraded(r)]
    header, attr = identity_column([s for s, _ in graded])
    rows = [[header, GRADE, "Feedback"]]
    for s, r in graded:
        rows.append([safecsv.identifier(getattr(s, attr), what=header), safecsv.score(r.score),
                     safecsv.text(feedback_text.as_html(r))])
    return rows


def write_import(matching: Matching, path: Path) -> None:
    write_csv(path, import_rows(matching))


# ---- offline grading worksheet ------------------------------------------------------------

@dataclass
class MergeReport:
    filled: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def merge_worksheet(worksheet: Path, matching: Matching, dest: Path) -> MergeReport:
    """Fill Grade and Feedback comments in a copy of the worksheet; returns what was done."""
    raw = Path(worksheet).read_bytes()
    bom = raw.startswith(b"\xef\xbb\xbf")
    records = rawcsv.parse(raw.decode("utf-8-sig"))
    if not records:
        raise ValueError(f"{worksheet} is empty.")
    cols = {rawcsv.decode(c).strip(): i for i, c in enumerate(records[0].cells)}
    for need in (GRADE, FEEDBACK):
        if need not in cols:
            raise ValueError(f"{worksheet} has no '{need}' column; is it a Moodle grading worksheet?")
    report, used = MergeReport(), set()
    lookup = _lookup(matching)
    for rec in records[1:]:
        hit = _row_owner(rec, cols, lookup)
        if hit is None:
            continue
        student, result = hit
        used.add(id(result))
        _fill(rec, cols, student, result, report)
    for s, r in matching.pairs:
        if r is not None and id(r) not in used and not ungraded(r):
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
    email = rec.value(cols[EMAIL]).strip().lower() if EMAIL in cols else ""
    if email and "email:" + email in lookup:
        return lookup["email:" + email]
    ident = rec.value(cols[IDENT]) if IDENT in cols else ""
    m = re.search(r"(\d+)\s*$", ident)
    return lookup.get("participant:" + m[1]) if m else None


def _fill(rec, cols, student, result, report: MergeReport) -> None:
    who = student.name or result.id
    if CHANGEABLE in cols and rec.value(cols[CHANGEABLE]).strip().lower() == "no":
        report.notes.append(f"{who}: the worksheet says the grade cannot be changed; row left as it was.")
        return
    if ungraded(result):
        report.notes.append(f"{who}: the grader could not grade this submission; row left as it was.")
        return
    grade = _grade_text(result, rec.value(cols[MAXGRADE]) if MAXGRADE in cols else "", report)
    while len(rec.cells) <= max(cols[GRADE], cols[FEEDBACK]):
        rec.cells.append("")
    g, f = cols[GRADE], cols[FEEDBACK]
    rec.cells[g] = rawcsv.encode(grade, like=rec.cells[g])
    rec.cells[f] = rawcsv.encode(safecsv.text(feedback_text.as_html(result)), like=rec.cells[f])
    report.filled.append(who)


def _grade_text(result: Result, max_cell: str, report: MergeReport) -> str:
    """The score in the worksheet's own scale, decimals and decimal mark."""
    comma = "," in max_cell and "." not in max_cell
    try:
        top = float(max_cell.strip().replace(",", ".")) if max_cell.strip() else None
    except ValueError:
        top = None
    score = result.score
    if top and result.max_score and abs(top - result.max_score) > 1e-9:
        score = result.score / result.max_score * top
        note = f"Grades were scaled from {result.max_score:g} points to the worksheet's maximum of {top:g}."
        if note not in report.notes:
            report.notes.append(note)
    decimals = len(re.split(r"[.,]", max_cell.strip())[1]) if re.search(r"[.,]\d+$", max_cell.strip()) else 2
    text = f"{score:.{decimals}f}"
    return text.replace(".", ",") if comma else text
