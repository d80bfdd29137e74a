"""Small facts every export needs: which results count as graded, the grade an LMS gets."""
from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..result import Result, write_atomic

ASSIGNMENT = re.compile(r"^(?P<title>.*\S)\s*\((?P<id>\d+)\)\s*$")


def ungraded(r: Result | None) -> bool:
    """No grade to send: no submission, or one that could not be graded (result.json
    `error` set: Python 2, no layer classes, ...) and that no instructor looked at since.

    Sending 0 for work that could not be graded would be a quiet zero; exports leave it
    blank and say so, unless asked for zeros (`Grading.ungradable`).
    """
    return r is None or (bool(r.error) and not isinstance(r.meta.get("override"), dict))


UNGRADABLE = ("blank", "zero")


@dataclass(frozen=True)
class Grading:
    """How a result becomes the number an LMS gets: what ungradable work gets, and the
    assignment's points in the LMS when they are not nngrader's (scores are scaled)."""
    ungradable: str = "blank"
    points: float | None = None

    def __post_init__(self):
        if self.ungradable not in UNGRADABLE:
            raise ValueError(f"ungradable work gets {' or '.join(UNGRADABLE)}, not {self.ungradable!r}")
        if self.points is not None and not (self.points > 0 and self.points < float("inf")):
            raise ValueError(f"--points must be a number above 0, not {self.points!r}")

    def grade(self, r: Result | None, points: float | None = None) -> float | None:
        """The grade for r in the LMS's scale (`points`, else self.points, else nngrader's),
        or None for a blank cell."""
        if r is None:
            return None
        if ungraded(r):
            return None if self.ungradable == "blank" else 0.0
        top = points if points is not None else self.points
        if top is not None and r.max_score > 0:
            return round(r.score / r.max_score * top, 6)
        return r.score

    def possible(self, results: list[Result]) -> tuple[float, list[str]]:
        """Points possible in the LMS: --points, else the class's most common maximum."""
        if self.points is not None:
            return self.points, []
        return points_possible(results)


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
