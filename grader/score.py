"""Score: turn verdicts into CheckResults with points and hints, as a pure function.

Points come from the rubric (max_score fixed up front, so totals hold whatever happened),
partial credit only for a `fail` that says how much of it was right, and hints: the
recognised mistake's hint first, then the check's own.
"""
from __future__ import annotations

from .checks.base import Verdict
from .result import CheckResult
from .rubric import Rubric


def score(verdicts: dict[str, Verdict], rubric: Rubric) -> tuple[CheckResult, ...]:
    return tuple(check_result(cid, v, rubric) for cid, v in verdicts.items())


def check_result(cid: str, v: Verdict, rubric: Rubric) -> CheckResult:
    points = rubric.settings(cid)["points"]
    if v.status == "pass":
        got = points
    elif v.status == "fail" and v.fraction:
        got = round(points * min(max(v.fraction, 0.0), 1.0), 4)
    else:
        got = 0.0
    hints = []
    if v.status in ("fail", "error", "timeout"):
        if v.family and v.family in rubric.families:
            hints.append(rubric.families[v.family])
        hints.extend(h for h in rubric.settings(cid)["hints"] if h not in hints)
    details = dict(v.details)
    if v.family:
        details.setdefault("family", v.family)
    return CheckResult(id=cid, status=v.status, score=got, max_score=points,
                       message=v.message, hints=tuple(hints), details=details)
