"""Canvas: the Gradebook import CSV, feedback text files, and an optional push of comments.

The CSV follows Canvas's gradebook importer: header `Student,ID,SIS User ID,SIS Login ID,
Section,<Assignment Title (id)>`, then a `    Points Possible` row, then one row per
student. Canvas matches a row by its own numeric user ID, then SIS User ID, then SIS Login
ID, then name, so `ID` holds only a Canvas user id (from the roster or a Canvas download
name) and is otherwise blank. The CSV cannot carry comments: they go to one text file per
student, and `push` can post grade and comment through the REST API (canvasapi), one
`submission.edit` per student. A push is safe to repeat: it reads the submission's comments
first and does not post a comment Canvas already has, nor a grade it already holds. The dry
run prints each request's form fields as canvasapi sends them (`submission[posted_grade]`,
`comment[text_comment]`), contacting nothing.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from ..result import write_atomic
from . import feedback_text, safecsv
from .common import Grading, write_csv
from .identity import Matching, Student

HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
POINTS_POSSIBLE = "    Points Possible"


def gradebook_rows(matching: Matching, assignment: str, points: float,
                   grading: Grading = Grading()) -> list[list[str]]:
    """The rows of the import CSV, header first; cells already guarded or validated.
    `points` is the Points Possible row; scores are scaled by `grading` (--points)."""
    rows = [HEADER + [safecsv.text(assignment)],
            [POINTS_POSSIBLE, "", "", "", "", safecsv.score(points)]]
    for student, result in matching.pairs:
        grade = safecsv.score(grading.grade(result))
        rows.append([safecsv.text(student.name),
                     safecsv.integer(student.canvas_id, what="Canvas user ID"),
                     safecsv.identifier(student.sis_user_id, what="SIS User ID"),
                     safecsv.identifier(student.sis_login_id, what="SIS Login ID"),
                     safecsv.text(student.section), grade])
    return rows


def write_gradebook(matching: Matching, assignment: str, points: float, path: Path,
                    grading: Grading = Grading()) -> None:
    write_csv(path, gradebook_rows(matching, assignment, points, grading))


def unaddressable(matching: Matching) -> list[str]:
    """Graded students Canvas cannot match: no Canvas ID, SIS ids or roster name."""
    return [r.id for s, r in matching.pairs if r is not None
            and not (s.canvas_id or s.sis_user_id or s.sis_login_id)
            and s.name in ("", r.id)]


def _file_stem(student: Student, fallback: str) -> str:
    key = student.canvas_id or student.sis_user_id or student.sis_login_id or fallback
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", key).strip("._") or "student"


def write_feedback_files(matching: Matching, folder: Path, grading: Grading = Grading()) -> list[Path]:
    """One plain-text comment per graded student, named by the strongest id known."""
    written = []
    for student, result in matching.pairs:
        if result is None:
            continue
        path = Path(folder) / f"{_file_stem(student, result.id)}.txt"
        write_atomic(path, feedback_text.plain(result, points=grading.points) + "\n")
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

    def payload(self, *, grade: bool = True, comment: bool = True) -> dict:
        """submission.edit's keyword arguments (the parts asked for)."""
        out = {}
        if grade:
            out["submission"] = {"posted_grade": self.posted_grade}
        if comment:
            out["comment"] = {"text_comment": self.comment}
        return out


def form_fields(payload: dict) -> list[tuple[str, str]]:
    """The form fields canvasapi sends for submission.edit's keyword arguments: nested
    dicts flattened to `outer[inner]` keys (canvasapi.util.combine_kwargs)."""
    fields = []
    for outer, value in payload.items():
        if isinstance(value, dict):
            fields += [(f"{outer}[{k}]", str(v)) for k, v in value.items()]
        else:
            fields.append((outer, str(value)))
    return fields


def plan_push(matching: Matching, grading: Grading = Grading()) -> tuple[list[Push], list[str]]:
    """What would be sent, and a sentence for each graded student who cannot be addressed."""
    plan, problems = [], []
    for s, r in matching.pairs:
        grade = grading.grade(r)
        if grade is None:
            continue
        user = (s.canvas_id and s.canvas_id.isdigit() and s.canvas_id) or \
            (s.sis_user_id and f"sis_user_id:{s.sis_user_id}") or \
            (s.sis_login_id and f"sis_login_id:{s.sis_login_id}")
        if not user:
            problems.append(f"{s.name or r.id} has no Canvas ID, SIS User ID or SIS Login ID; "
                            "not pushed (add them to the roster).")
            continue
        plan.append(Push(user, s.name, safecsv.score(grade),
                         feedback_text.plain(r, points=grading.points)))
    return plan, problems


def dry_run(plan: list[Push], course_id: str, assignment_id: str, stream: TextIO | None = None) -> None:
    """Print each request: method and path, then its form fields as `key=value` lines (a
    backslash and a line break in a value shown as \\ and \\n); contacts nothing."""
    stream = stream or sys.stdout
    for p in plan:
        stream.write(f"PUT /api/v1/courses/{course_id}/assignments/{assignment_id}"
                     f"/submissions/{p.user}  ({p.name})\n")
        for key, value in form_fields(p.payload()):
            shown = value.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")
            stream.write(f"{key}={shown}\n")
        stream.write("\n")
    stream.write(f"Dry run: {len(plan)} submission(s) would be updated; nothing was sent. "
                 "A real push skips a comment or grade Canvas already has.\n")


def push(plan: list[Push], course_id: str, assignment_id: str, *, url: str, token: str,
         client_factory: Callable | None = None, stream: TextIO | None = None) -> int:
    """Send each grade and comment that Canvas does not have yet; returns how many failed
    (each failure is reported)."""
    stream = stream or sys.stderr
    if client_factory is None:
        from canvasapi import Canvas  # optional extra: pip install 'nngrader[canvas]'
        client_factory = Canvas
    course = client_factory(url, token).get_course(course_id)
    assignment = course.get_assignment(assignment_id)
    failed = 0
    for p in plan:
        who = p.name or p.user
        try:
            sub = assignment.get_submission(_user(p.user, course), include=["submission_comments"])
            send_grade, send_comment = not _has_grade(sub, p.posted_grade), not _has_comment(sub, p.comment)
            if not (send_grade or send_comment):
                stream.write(f"{who}: Canvas already has this grade and comment; nothing sent.\n")
                continue
            sub.edit(**p.payload(grade=send_grade, comment=send_comment))
            sent = " and ".join(w for w, on in ((p.posted_grade, send_grade), ("a comment", send_comment)) if on)
            stream.write(f"Sent {sent} for {who}.\n")
        except Exception as e:  # one student's failure must not stop the rest
            failed += 1
            stream.write(f"Could not update {who}: {type(e).__name__}: {e}\n")
    return failed


def _has_comment(sub, text: str) -> bool:
    """Whether the submission already carries this comment (line endings and outer
    whitespace aside: Canvas may store either)."""
    def norm(t: object) -> str:
        return str(t or "").replace("\r\n", "\n").strip()
    comments = getattr(sub, "submission_comments", None) or []
    return any(isinstance(c, dict) and norm(c.get("comment")) == norm(text) for c in comments)


def _has_grade(sub, posted: str) -> bool:
    held = getattr(sub, "entered_score", None)
    held = getattr(sub, "score", None) if held is None else held
    try:
        return held is not None and abs(float(held) - float(posted)) < 1e-6
    except (TypeError, ValueError):
        return False


def _user(ref: str, course) -> object:
    """canvasapi wants a user id or a User; a SIS reference is looked up in the course first."""
    if ref.isdigit():
        return int(ref)
    kind, _, value = ref.partition(":")
    return course.get_user(value, kind)
