"""Canvas: the Gradebook import CSV, feedback text files, and an optional push of comments.

The CSV follows Canvas's gradebook importer: header `Student,ID,SIS User ID,SIS Login ID,
Section,<Assignment Title (id)>`, then a `    Points Possible` row, then one row per
student. Canvas matches a row by its own numeric user ID, then SIS User ID, then SIS Login
ID, then name, so `ID` holds only a Canvas user id (from the roster or a Canvas download
name) and is otherwise blank. The CSV cannot carry comments: they go to one text file per
student, and `push` can post grade and comment through the REST API (canvasapi), one
`submission.edit` per student, with a dry run that prints each request instead.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from ..result import write_atomic
from . import feedback_text, safecsv
from .common import ungraded, write_csv
from .identity import Matching, Student

HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
POINTS_POSSIBLE = "    Points Possible"


def gradebook_rows(matching: Matching, assignment: str, points: float) -> list[list[str]]:
    """The rows of the import CSV, header first; cells already guarded or validated."""
    rows = [HEADER + [safecsv.text(assignment)],
            [POINTS_POSSIBLE, "", "", "", "", safecsv.score(points)]]
    for student, result in matching.pairs:
        grade = "" if ungraded(result) else safecsv.score(result.score)
        rows.append([safecsv.text(student.name),
                     safecsv.integer(student.canvas_id, what="Canvas user ID"),
                     safecsv.identifier(student.sis_user_id, what="SIS User ID"),
                     safecsv.identifier(student.sis_login_id, what="SIS Login ID"),
                     safecsv.text(student.section), grade])
    return rows


def write_gradebook(matching: Matching, assignment: str, points: float, path: Path) -> None:
    write_csv(path, gradebook_rows(matching, assignment, points))


def _file_stem(student: Student, fallback: str) -> str:
    key = student.canvas_id or student.sis_user_id or student.sis_login_id or fallback
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", key).strip("._") or "student"


def write_feedback_files(matching: Matching, folder: Path) -> list[Path]:
    """One plain-text comment per graded student, named by the strongest id known."""
    written = []
    for student, result in matching.pairs:
        if result is None:
            continue
        path = Path(folder) / f"{_file_stem(student, result.id)}.txt"
        write_atomic(path, feedback_text.plain(result) + "\n")
        written.append(path)
    return written


# ---- REST push ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Push:
    """One grade and comment to send; `user` is a Canvas id or an "sis_user_id:..." reference."""
    user: str
    name: str
    posted_grade: str
    comment: str

    def payload(self) -> dict:
        return {"submission": {"posted_grade": self.posted_grade},
                "comment": {"text_comment": self.comment}}


def plan_push(matching: Matching) -> tuple[list[Push], list[str]]:
    """What would be sent, and a sentence for each graded student who cannot be addressed."""
    plan, problems = [], []
    for s, r in matching.pairs:
        if ungraded(r):
            continue
        user = (s.canvas_id and s.canvas_id.isdigit() and s.canvas_id) or \
            (s.sis_user_id and f"sis_user_id:{s.sis_user_id}") or \
            (s.sis_login_id and f"sis_login_id:{s.sis_login_id}")
        if not user:
            problems.append(f"{s.name or r.id} has no Canvas ID, SIS User ID or SIS Login ID; "
                            "not pushed (add them to the roster).")
            continue
        plan.append(Push(user, s.name, safecsv.score(r.score), feedback_text.plain(r)))
    return plan, problems


def dry_run(plan: list[Push], course_id: str, assignment_id: str, stream: TextIO | None = None) -> None:
    """Print each request as a method, path and JSON body; contacts nothing."""
    stream = stream or sys.stdout
    for p in plan:
        stream.write(f"PUT /api/v1/courses/{course_id}/assignments/{assignment_id}"
                     f"/submissions/{p.user}  ({p.name})\n")
        stream.write(json.dumps(p.payload(), ensure_ascii=False, indent=2) + "\n")
    stream.write(f"Dry run: {len(plan)} submission(s) would be updated; nothing was sent.\n")


def push(plan: list[Push], course_id: str, assignment_id: str, *, url: str, token: str,
         client_factory: Callable | None = None, stream: TextIO | None = None) -> int:
    """Send each grade and comment; returns how many failed (each failure is reported)."""
    stream = stream or sys.stderr
    if client_factory is None:
        from canvasapi import Canvas  # optional extra: pip install 'nngrader[canvas]'
        client_factory = Canvas
    course = client_factory(url, token).get_course(course_id)
    assignment = course.get_assignment(assignment_id)
    failed = 0
    for p in plan:
        try:
            assignment.get_submission(_user(p.user, course)).edit(**p.payload())
            stream.write(f"Sent {p.posted_grade} and a comment for {p.name or p.user}.\n")
        except Exception as e:  # one student's failure must not stop the rest
            failed += 1
            stream.write(f"Could not update {p.name or p.user}: {type(e).__name__}: {e}\n")
    return failed


def _user(ref: str, course) -> object:
    """canvasapi wants a user id or a User; a SIS reference is looked up in the course first."""
    if ref.isdigit():
        return int(ref)
    kind, _, value = ref.partition(":")
    return course.get_user(value, kind)
