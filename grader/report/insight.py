"""What the class got wrong: the dashboard's teaching view of the per-check mistakes.

Every check that recognises a mistake names its family (result.json
checks[].details.family, described in grader/checks/families.py, hinted in the rubric's
[families]). Here they are counted across the class, most common first, each with the
checks it cost, the tip it maps to and links to the students who made it; plus the
checks that *errored* for many students, which usually means the assignment text or the
rubric's [roles] does not match what students wrote, not that they all made a mistake.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from urllib.parse import quote

from ..result import Hint, Result
from .fmt import text

ERRORED_MIN = 2           # a check errored for at least this many students ...
ERRORED_FRACTION = 0.10   # ... and this share of the class
STUDENTS_SHOWN = 30       # links listed per family (the count is always exact)


def report_link(sid: str, check_id: str) -> str:
    return f"{quote(sid)}/feedback.html#{quote('check-' + check_id)}"


def mistakes(results: list[Result], families: Mapping[str, Hint] | None = None) -> list[dict]:
    """One row per mistake family seen in the class, most students first."""
    from ..checks.families import DESCRIBE

    students: dict[str, dict[str, str]] = defaultdict(dict)   # family -> id -> first check
    cost: dict[str, Counter] = defaultdict(Counter)            # family -> check -> points lost
    hints: dict[str, Counter] = defaultdict(Counter)           # family -> first hint shown
    for r in results:
        for c in r.checks:
            family = c.details.get("family") if isinstance(c.details, Mapping) else None
            if not isinstance(family, str) or not family or (c.passed and c.score >= c.max_score):
                continue
            students[family].setdefault(r.id, c.id)
            cost[family][c.id] += c.max_score - c.score
            if c.hints:
                hints[family][(c.hints[0].tip, c.hints[0].text)] += 1
    rows = []
    for family, who in students.items():
        hint = (families or {}).get(family)
        tip, advice = (hint.tip, hint.text) if hint else (
            hints[family].most_common(1)[0][0] if hints[family] else ("", ""))
        ids = sorted(who)
        rows.append({
            "family": family, "n": len(ids),
            "description": text(DESCRIBE.get(family, family.replace("_", " "))),
            "checks": [{"id": cid, "lost": f"{lost:g}"} for cid, lost in
                       sorted(cost[family].items(), key=lambda kv: (-kv[1], kv[0]))],
            "tip": tip, "hint": text(advice, 400),
            "students": [{"id": sid, "href": report_link(sid, who[sid])} for sid in ids[:STUDENTS_SHOWN]],
            "more": max(0, len(ids) - STUDENTS_SHOWN),
        })
    return sorted(rows, key=lambda row: (-row["n"], row["family"]))


def errored_checks(results: list[Result]) -> list[dict]:
    """Checks whose status was `error` for many students, with the most common message."""
    graded = [r for r in results if r.checks and not r.error]
    need = max(ERRORED_MIN, round(ERRORED_FRACTION * len(graded)))
    who: dict[str, list[str]] = defaultdict(list)
    messages: dict[str, Counter] = defaultdict(Counter)
    for r in graded:
        for c in r.checks:
            if c.status == "error":
                who[c.id].append(r.id)
                messages[c.id][(c.message or "").splitlines()[0][:300] if c.message else ""] += 1
    rows = [{"id": cid, "n": len(ids), "of": len(graded),
             "message": text(messages[cid].most_common(1)[0][0], 300),
             "students": [{"id": sid, "href": report_link(sid, cid)} for sid in sorted(ids)[:STUDENTS_SHOWN]],
             "more": max(0, len(ids) - STUDENTS_SHOWN)}
            for cid, ids in who.items() if len(ids) >= need]
    return sorted(rows, key=lambda row: (-row["n"], row["id"]))
