"""Instructor overrides: after a manual look, a check's points or the total set by hand.

They live in OUT/overrides.csv, one row per override (`nngrader override` writes it; a
person may edit it too):

    id,check,score,comment
    alice,linear.backward,2.5,"dW is right; the upstream gradient in my test was wrong"
    bob,,30,"Explained the gradient check in the oral exam"

An empty `check` sets the total. Why CSV: an override is a flat record; the standard csv
module reads and writes it (no new dependency); it opens in the spreadsheet an instructor
keeps grades in. The comment is shown to the student.

`apply` runs on the grader side after scoring and `strip` undoes it exactly, so a result
on disk carries both the instructor's points and the grader's own: every changed check
keeps its automatic score, status and message in `details.override`, and
`meta.override` holds the automatic total and a summary for reports and exports. Whatever
writes result.json (a grading run, a result read back from the cache, `nngrader
override`) and whatever exports (load_results) strips and re-applies the current file, so
overrides survive regrades and an edit of the file reaches every export.

The result.json contract holds throughout (`score` is the sum of the checks' scores; a
passing check has full points), so a new total is spread over the checks: points added go
to checks that lost points, in check order; points taken come off checks that did not pass
first, then off passing ones, last check first (those then no longer pass). Checks the
instructor set one by one are never touched by a total.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

from .export import safecsv
from .result import CheckResult, Result, write_atomic

FILE = "overrides.csv"
COLUMNS = ("id", "check", "score", "comment")
TOTAL = ""  # the `check` of an override of the total


@dataclass(frozen=True)
class Override:
    sid: str
    check: str          # a check id, or TOTAL
    score: float
    comment: str

    @property
    def what(self) -> str:
        return f"check {self.check}" if self.check else "the total"


# ---- the file ---------------------------------------------------------------------------

def path_in(out: Path) -> Path:
    return Path(out) / FILE


def read(out: Path) -> tuple[dict[str, list[Override]], list[str]]:
    """id -> its overrides (last row wins per check), and a sentence per row that is ignored."""
    path = path_in(out)
    if not path.is_file():
        return {}, []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        return {}, [f"{path}: cannot be read ({e}); no override is applied."]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    heads = [h.strip().lower() for h in reader.fieldnames or []]
    if not {"id", "score"} <= set(heads):
        return {}, [f"{path}: the first row must name the columns id, check, score, comment "
                    f"(found: {', '.join(reader.fieldnames or []) or 'nothing'}); no override is applied."]
    found: dict[tuple[str, str], Override] = {}
    problems = []
    for n, row in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): _unguard((v or "").strip()) for k, v in row.items() if k}
        item, problem = _parse(row)
        if problem:
            problems.append(f"{path} line {n}: {problem}; the row is ignored.")
        elif item is not None:
            found[(item.sid, item.check)] = item
    by_id: dict[str, list[Override]] = {}
    for item in found.values():
        by_id.setdefault(item.sid, []).append(item)
    return by_id, problems


def _parse(row: dict) -> tuple[Override | None, str]:
    if not any(row.values()):
        return None, ""
    sid, check, comment = row.get("id", ""), row.get("check", ""), row.get("comment", "")
    if not sid:
        return None, "no submission id"
    try:
        score = float(row.get("score", "").replace(",", "."))
    except ValueError:
        return None, f"score {row.get('score')!r} is not a number"
    if not math.isfinite(score) or score < 0:
        return None, f"score {row.get('score')!r} must be a number of points, 0 or more"
    if not comment:
        return None, f"the override of {sid} has no comment (the student is shown why points changed)"
    return Override(sid, check, score, comment), ""


def _unguard(value: str) -> str:
    """Undo the spreadsheet guard `write` adds to a comment starting like a formula."""
    return value[1:] if value.startswith("'") and value[1:].startswith(safecsv.FORMULA_START) else value


def write(out: Path, items: Iterable[Override]) -> Path:
    path = path_in(out)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for o in sorted(items, key=lambda o: (o.sid, o.check)):
        w.writerow([safecsv.text(o.sid), o.check, f"{o.score:g}", safecsv.text(o.comment)])
    write_atomic(path, buf.getvalue())
    return path


def put(out: Path, item: Override | None, *, clear: tuple[str, str] | None = None) -> tuple[Path, list[str]]:
    """Add (or replace) one override, or remove one (clear=(id, check)); returns the file
    and the sentences about rows of the old file that were dropped as unreadable."""
    current, problems = read(out)
    rows = {(o.sid, o.check): o for items in current.values() for o in items}
    if clear is not None:
        rows.pop(clear, None)
    if item is not None:
        rows[(item.sid, item.check)] = item
    return write(out, rows.values()), problems


# ---- applying ---------------------------------------------------------------------------

def strip(result: Result) -> Result:
    """The result as the grader scored it: every override undone."""
    meta = result.meta if isinstance(result.meta, dict) else dict(result.meta or {})
    if "override" not in meta and not any(_mark(c) for c in result.checks):
        return result
    checks = []
    for c in result.checks:
        mark = _mark(c)
        if mark:
            details = {k: v for k, v in c.details.items() if k != "override"}
            c = replace(c, score=mark["auto_score"], status=mark["auto_status"],
                        message=mark["auto_message"], details=details)
        checks.append(c)
    return replace(result, checks=tuple(checks), meta={k: v for k, v in meta.items() if k != "override"})


def reapply(result: Result, items: Iterable[Override]) -> tuple[Result, list[str]]:
    """`apply` on the result as the grader scored it (whatever overrides it carried before)."""
    return apply(strip(result), items)


def apply(result: Result, items: Iterable[Override]) -> tuple[Result, list[str]]:
    """The result with the instructor's points, and a sentence per override that could not apply."""
    items = [o for o in items if o.sid == result.id]
    if not items:
        return result, []
    problems: list[str] = []
    checks = {c.id: c for c in result.checks}
    auto_total = result.score
    fixed: set[str] = set()
    summary = []
    for o in (o for o in items if o.check != TOTAL):
        c = checks.get(o.check)
        if c is None:
            problems.append(f"{result.id}: no check {o.check} in its result; that override is ignored.")
            continue
        if o.score > c.max_score + 1e-9:
            problems.append(f"{result.id}: {o.score:g} points for {o.check} is more than its "
                            f"{c.max_score:g}; that override is ignored.")
            continue
        checks[o.check] = _set(c, o.score, o.comment, by="check")
        fixed.add(o.check)
        summary.append({"check": o.check, "score": _num(o.score), "auto_score": _num(c.score),
                        "comment": o.comment})
    total = next((o for o in items if o.check == TOTAL), None)
    if total is not None:
        top = sum(c.max_score for c in checks.values())
        if total.score > top + 1e-9:
            problems.append(f"{result.id}: a total of {total.score:g} is more than the "
                            f"{top:g} points possible; that override is ignored.")
            total = None
        else:
            left = _spread(checks, fixed, total)
            if abs(left) > 1e-6:
                problems.append(f"{result.id}: the total of {total.score:g} cannot be reached "
                                f"with the checks set one by one; it is {total.score - left:g}.")
    if not summary and total is None:
        return result, problems
    ordered = tuple(checks[c.id] for c in result.checks)
    new = replace(result, checks=ordered)
    meta = {"auto_score": _num(auto_total), "score": _num(new.score), "checks": summary}
    if total is not None:
        meta.update(total=_num(total.score), comment=total.comment)
    return new.with_meta(override=meta), problems


def _spread(checks: dict[str, CheckResult], fixed: set[str], o: Override) -> float:
    """Move the checks' points towards the total o.score; returns what could not be moved."""
    delta = round(o.score - sum(c.score for c in checks.values()), 9)
    free = [cid for cid in checks if cid not in fixed]
    if delta > 0:
        order = [cid for cid in free if checks[cid].score < checks[cid].max_score]
    else:
        order = ([cid for cid in reversed(free) if checks[cid].status != "pass"] +
                 [cid for cid in reversed(free) if checks[cid].status == "pass"])
    for cid in order:
        if abs(delta) <= 1e-9:
            break
        c = checks[cid]
        room = c.max_score - c.score if delta > 0 else c.score
        step = min(room, abs(delta))
        if step <= 0:
            continue
        new_score = c.score + step if delta > 0 else c.score - step
        checks[cid] = _set(c, new_score, o.comment, by="total")
        delta += -step if delta > 0 else step
    return delta


def _set(c: CheckResult, score: float, comment: str, *, by: str) -> CheckResult:
    mark = _mark(c) or {"auto_score": _num(c.score), "auto_status": c.status,
                        "auto_message": c.message}
    score = _num(min(max(score, 0.0), c.max_score))
    status, message = c.status, c.message
    if status == "pass" and score < c.max_score:
        # a passing check has full points (the contract): below them it no longer passes
        status = "fail"
        message = f"The instructor took points off this check: {comment}"
    details = {**c.details, "override": {**mark, "by": by, "score": score, "comment": comment}}
    return replace(c, score=score, status=status, message=message, details=details)


def _mark(c: CheckResult) -> dict | None:
    mark = c.details.get("override") if hasattr(c.details, "get") else None
    return mark if isinstance(mark, dict) and "auto_score" in mark else None


def _num(x: float) -> float | int:
    x = round(float(x), 6)
    return int(x) if x.is_integer() else x


# ---- what reports and exports show ------------------------------------------------------

def summary(result: Result) -> dict | None:
    """meta.override of a result, or None: {auto_score, score, checks[...], total?, comment?}."""
    meta = result.meta.get("override") if hasattr(result.meta, "get") else None
    return meta if isinstance(meta, dict) else None


def lines(result: Result, *, student: bool = True) -> list[str]:
    """One sentence per override, said to the student (comments, feedback) or, with
    student=False, to the instructor (the dashboard)."""
    s = summary(result)
    if not s:
        return []
    who = "Your instructor set " if student else ""
    out = [f"{who or ''}{c['check']} {'to' if student else 'set to'} {_points(c['score'])} "
           f"(the grader gave {c['auto_score']:g}): {c['comment']}" for c in s.get("checks") or []]
    if s.get("total") is not None:
        out.append(f"{who or 'Total '}{'the total to' if student else 'set to'} {_points(s['total'])} "
                   f"(the grader gave {s['auto_score']:g}): {s.get('comment', '')}")
    return out


def _points(x: float) -> str:
    return f"{x:g} point{'' if x == 1 else 's'}"
