"""Who handed in what: match submissions (result.json files) to students.

A submission's file name often says who it belongs to, as the LMS names its downloads (see
grader/downloads.py: Canvas's name key and user id, Moodle's full name, participant number
and submission plugin; one participant's file and online-text entries are one submission,
the file one). An explicit roster CSV is the reliable way; it may be the instructor's own list or an LMS
export (a Canvas gradebook export, a Moodle participants list or grading worksheet): the
columns are found by their usual names. Matching goes from the strongest key to the
weakest and accepts only a unique match, so two students never share one grade.
"""
from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..downloads import CANVAS, MOODLE, DownloadName, one_per_participant, parse_download_name  # noqa: F401 (re-exported)
from ..result import Result

# roster column -> Student field; headers are compared lower-cased with _ read as a space
COLUMNS = {
    "name": "name", "student": "name", "full name": "name", "student name": "name",
    "id": "canvas_id", "canvas id": "canvas_id", "canvas user id": "canvas_id",
    "sis user id": "sis_user_id", "sis login id": "sis_login_id", "login": "sis_login_id",
    "username": "sis_login_id", "section": "section", "sections": "section",
    "email": "email", "email address": "email", "id number": "id_number", "idnumber": "id_number",
    "participant": "participant", "identifier": "participant",
    "submission": "submission", "submission id": "submission", "file": "submission",
}


@dataclass(frozen=True)
class Student:
    """One student as the LMS knows them; empty strings where a key is unknown."""
    name: str
    canvas_id: str = ""     # Canvas's own numeric user id, never any other number
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    email: str = ""
    id_number: str = ""     # Moodle "ID number"
    participant: str = ""   # Moodle participant number (download names, worksheet Identifier)
    submission: str = ""    # an explicit submission id or file name from the roster


@dataclass
class Matching:
    """Students paired with their result, and what could not be paired."""
    pairs: list[tuple[Student, Result | None]] = field(default_factory=list)
    unmatched: list[Result] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # worth saying, nothing wrong

    @property
    def missing(self) -> list[Student]:
        return [s for s, r in self.pairs if r is None]

    def report(self) -> list[str]:
        """Sentences for the instructor: unmatched submissions, students with none."""
        lines = list(self.notes) + list(self.problems)
        for r in self.unmatched:
            lines.append(f"Submission {r.id} matches no student in the roster; it is not exported.")
        for s in self.missing:
            lines.append(f"{s.name} has no submission; their grade is left blank.")
        return lines


def name_keys(name: str) -> set[str]:
    """Ways the LMS may have squashed a name: 'Lovelace, Ada' and 'Ada Lovelace' -> lovelaceada, adalovelace."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    if "," in plain:
        last, _, first = plain.partition(",")
        words_a, words_b = (last + " " + first).split(), (first + " " + last).split()
    else:
        words_a = plain.split()
        words_b = words_a[-1:] + words_a[:-1]
    return {k for k in (_squash(words_a), _squash(words_b)) if k}


def _squash(words: list[str]) -> str:
    return re.sub(r"[^a-z0-9]", "", "".join(words))


def read_roster(path: Path) -> list[Student]:
    """Students from a roster CSV; columns are recognised by name, others ignored."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = {h: COLUMNS.get(_norm(h)) for h in reader.fieldnames or []}
        heads = {_norm(h): h for h in reader.fieldnames or []}
        if not any(fields.values()) and not ({"first name", "last name"} <= heads.keys()):
            raise ValueError(f"{path}: no known column (expected e.g. name, email, "
                             "sis user id, id, submission)")
        students = []
        for row in reader:
            s = _student(row, fields, heads)
            if s is not None:
                students.append(s)
    return students


def _norm(header: str) -> str:
    return " ".join(str(header).replace("_", " ").lower().split())


def _student(row: dict, fields: dict, heads: dict) -> Student | None:
    values = {}
    for header, attr in fields.items():
        if attr and row.get(header) and not values.get(attr):
            values[attr] = row[header].strip()
    if not values.get("name"):
        first = row.get(heads.get("first name", ""), "") or ""
        last = row.get(heads.get("last name", heads.get("surname", "")), "") or ""
        values["name"] = f"{first.strip()} {last.strip()}".strip()
    if "points possible" in values.get("name", "").lower():
        return None  # the second row of a Canvas gradebook export
    if values.get("participant", "").lower().startswith("participant"):
        values["participant"] = values["participant"].split()[-1]
    if not any(values.values()):
        return None
    values.setdefault("name", "")
    return Student(**values)


def submission_names(r: Result) -> list[str]:
    """The names a result can be known by: its id, graded file and source file, with and without extension."""
    meta = r.meta if isinstance(r.meta, dict) else {}
    names = [r.id]
    for key in ("source", "graded_file"):
        if isinstance(meta.get(key), str) and meta[key]:
            base = PurePosixPath(meta[key].replace("\\", "/")).name
            names += [base, base.rsplit(".", 1)[0]]
    return list(dict.fromkeys(n for n in names if n))


def student_from_name(r: Result) -> Student:
    """A student made up from the download name alone (no roster)."""
    for n in submission_names(r):
        d = parse_download_name(n)
        if d:
            return Student(name=d.name, canvas_id=d.canvas_id, participant=d.participant,
                           submission=r.id)
    return Student(name=r.id, submission=r.id)


def match(results: list[Result], roster: list[Student] | None) -> Matching:
    """Pair results with roster students (or make one student per result without a roster)."""
    results, merged = one_per_participant(results, submission_names)
    notes = [f"{dropped.id} and {kept.id} are one Moodle participant's submission plugins; "
             f"{kept.id} is exported." for dropped, kept in merged]
    if roster is None:
        return Matching(pairs=[(student_from_name(r), r) for r in results], notes=notes)
    found: dict[int, Result] = {}
    m = Matching(notes=notes)
    for r in results:
        idx = _find(r, roster, m.problems)
        if idx is None:
            m.unmatched.append(r)
        elif idx in found:
            m.problems.append(f"Submissions {found[idx].id} and {r.id} both match "
                              f"{roster[idx].name}; only {found[idx].id} is exported.")
        else:
            found[idx] = r
    m.pairs = [(s, found.get(i)) for i, s in enumerate(roster)]
    return m


def _find(r: Result, roster: list[Student], problems: list[str]) -> int | None:
    names = submission_names(r)
    parsed = next((d for d in map(parse_download_name, names) if d), None)
    tests = [
        lambda s: bool(s.submission) and s.submission in names,
        lambda s: bool(parsed and parsed.canvas_id) and s.canvas_id == parsed.canvas_id,
        lambda s: bool(parsed and parsed.participant) and s.participant == parsed.participant,
        lambda s: any(n and n in (s.sis_login_id, s.sis_user_id, s.id_number,
                                  s.email.split("@")[0] if s.email else "") for n in names),
        lambda s: bool(parsed) and bool(name_keys(parsed.name) & name_keys(s.name)),
    ]
    for test in tests:
        hits = [i for i, s in enumerate(roster) if test(s)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            problems.append(f"Submission {r.id} matches {len(hits)} students "
                            f"({', '.join(roster[i].name for i in hits[:3])}); it is not exported.")
            return None
    return None

