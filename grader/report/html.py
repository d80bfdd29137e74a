"""Student feedback pages and the class dashboard, as self-contained HTML files.

Both pages are rendered by jinja2 with autoescaping on for every value: messages, hints and
class names come from (or quote) student code, so a `<script>` in an exception message is
shown as text. As a second fence, each page carries a Content-Security-Policy: the student
page allows no script at all, and the dashboard only its own inline script, by nonce.
Nothing is fetched: styles, script and charts are inline, so the files open from disk.
"""
from __future__ import annotations

import datetime as _dt
import secrets
import statistics
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .. import overrides
from ..result import Result, write_atomic
from . import evidence, svg
from .student_paths import scrub
from .fmt import num, text

STATUS_WORDS = {"pass": "passed", "fail": "failed", "error": "error", "timeout": "timed out",
                "skipped": "skipped"}
UNISOLATED_TIERS = {"", "plain", "none", "unsandboxed"}

_env = None


def _environment():
    """One jinja2 environment, built on first use so importing this module stays cheap."""
    global _env
    if _env is None:
        import jinja2
        _env = jinja2.Environment(
            loader=jinja2.PackageLoader("grader", "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined,
            trim_blocks=True, lstrip_blocks=True)
        _env.globals["status_words"] = STATUS_WORDS
    return _env


def _pts(x: float) -> str:
    return f"{x:g}"


# ---- student page -------------------------------------------------------------------------

def write_student_html(result: Result, path: Path) -> None:
    """Write OUT/<id>/feedback.html for one student."""
    result = scrub(result)
    checks = [_check_view(c) for c in result.checks]
    page = _environment().get_template("student.html").render(
        r=result, score=_pts(result.score), max_score=_pts(result.max_score),
        head=_header(result.meta if isinstance(result.meta, Mapping) else {}),
        checks=checks, sections=_sections(checks), adjusted=_adjusted(result),
        footer=_footer(result.meta))
    write_atomic(Path(path), page)


def _sections(views: list[dict]) -> dict:
    """What lost points first; the learning curves of passing checks stay in view when
    something failed (they are evidence for it); the rest of the passing checks fold away.
    Then, in that reading order, evidence shown once (see _show_once)."""
    lost = [v for v in views if v["status"] != "pass"]
    curves = [v for v in views if v["status"] == "pass" and lost
              and any(b.kind == "training" for b in v["blocks"])]
    won = [v for v in views if v["status"] == "pass" and v not in curves]
    _show_once(lost + curves + won)
    return {"lost": lost, "curves": curves, "won": won}


def _show_once(views: list[dict]) -> None:
    """Each tip in full once per page (later cards point back to it), and the gradient
    check's table of every parameter once (later gradient-check cards keep their own row)."""
    shown: dict[str, dict] = {}
    table: dict | None = None
    for v in views:
        hints, seen = [], set()
        for h in v["hints"]:
            if h["tip"] in seen:
                continue  # the same tip twice in one card: the first (most specific) says it
            seen.add(h["tip"])
            first = shown.setdefault(h["tip"], v)
            hints.append(h if first is v else {**h, "ref": (first["anchor"], first["id"])})
        v["hints"] = hints
        for b in v["blocks"]:
            if b.kind != "gradcheck":
                continue
            if table is None:
                table = v
                continue
            own = v["id"].split(".", 1)[-1]
            mine = [row for row in b.rows if row[0] == own]
            if mine:
                b.rows, b.title = mine, f"Gradient check: relative error of {own}"
                b.ref = (table["anchor"], table["id"])


def _adjusted(result: Result) -> dict | None:
    """The instructor's overrides, for the box at the top of the page."""
    s = overrides.summary(result)
    if not s:
        return None
    return {"auto_score": _pts(s.get("auto_score", 0)), "lines": overrides.lines(result)}


def _header(meta: Mapping[str, Any]) -> dict:
    sandbox = meta.get("sandbox") if isinstance(meta.get("sandbox"), Mapping) else {}
    tier = str(sandbox.get("tier") or "")
    protections = [text(p) for p in sandbox.get("protections") or [] if p] \
        if isinstance(sandbox.get("protections"), (list, tuple)) else []
    isolated = sandbox.get("isolated")
    if not isinstance(isolated, bool):
        isolated = tier not in UNISOLATED_TIERS
    choice = meta.get("choice") if isinstance(meta.get("choice"), Mapping) else {}
    return {
        # the file as named inside the submission: never the instructor's path to it
        "graded_file": text(meta.get("graded_file") or "unknown"),
        "not_graded": [text(n) for n in choice.get("not_graded") or [] if n],
        "choice_rule": text(choice.get("why") or ""),
        "roles": _roles(meta.get("roles")),
        "left_out": _left_out(meta.get("left_out")),
        "notes": [text(n) for n in meta.get("notes") or [] if n] if isinstance(meta.get("notes"), list) else [],
        "tier": tier or "not recorded",
        "protections": protections,
        "isolated": isolated,
        "isolation_warning": text(sandbox.get("warning") or _isolation_warning(tier)),
        "run": _run_line(sandbox),
    }


def _roles(roles: Any) -> list[tuple[str, str, bool]]:
    if not isinstance(roles, Mapping):
        return []
    out = []
    for role, value in roles.items():
        if isinstance(value, (list, tuple)) and value:
            out.append((text(role), " + ".join(text(v) for v in value) + " (split class)", True))
        elif value:
            out.append((text(role), text(value), True))
        else:
            out.append((text(role), "not found", False))
    return out


def _left_out(items: Any) -> list[tuple[str, str]]:
    if not isinstance(items, list):
        return []
    return [(text(i.get("lines", "?")) + (f" ({text(i['where'])})" if i.get("where") else ""),
             text(i.get("what", "code"))) if isinstance(i, Mapping)
            else ("?", text(i)) for i in items]


def _isolation_warning(tier: str) -> str:
    what = f"the '{tier}' tier" if tier else "no recorded sandbox tier"
    return (f"This submission ran with {what}: resource limits only, no separate user, "
            "file system or network. The scores are still valid, but the code could have "
            "read or changed files of the account that graded it.")


def _run_line(sandbox: Mapping) -> str:
    bits = []
    if sandbox.get("status"):
        bits.append(f"ended {text(sandbox['status'])}")
    for key, unit, label in (("wall_s", "s", "wall"), ("cpu_s", "s", "CPU"), ("max_rss_mb", " MB", "peak memory")):
        if sandbox.get(key) is not None:
            bits.append(f"{label} {num(sandbox[key])}{unit}")
    if sandbox.get("message"):
        bits.append(text(sandbox["message"]))
    return ", ".join(bits)


def _check_view(c) -> dict:
    mark = c.details.get("override") if isinstance(c.details, Mapping) else None
    mark = mark if isinstance(mark, Mapping) and "auto_score" in mark else None
    return {"id": c.id, "anchor": "check-" + c.id, "status": c.status,
            "score": _pts(c.score), "max_score": _pts(c.max_score), "message": text(c.message, 2000),
            "hints": [{"tip": h.tip, "text": h.text, "ref": None} for h in c.hints],
            "blocks": evidence.blocks(c.details),
            "override": None if mark is None else {
                "auto_score": _pts(mark.get("auto_score", 0)), "comment": text(mark.get("comment") or ""),
                "total": mark.get("by") == "total"}}


def _footer(meta: Any) -> str:
    meta = meta if isinstance(meta, Mapping) else {}
    bits = [f"nngrader {text(meta.get('grader_version') or '?')}"]
    for key, label in (("rubric", "rubric"), ("seed", "seed")):
        value = meta.get(key)
        if value is not None:   # a seed is an integer: 20261124, never 2.03e+07
            bits.append(f"{label} {value if isinstance(value, int) and not isinstance(value, bool) else text(value)}")
    if meta.get("elapsed_s") is not None:
        bits.append(f"graded in {num(meta['elapsed_s'])} s")
    return " · ".join(bits)


# ---- dashboard ----------------------------------------------------------------------------

def write_dashboard(results: list[Result], out_dir: Path, elapsed_s: float | None, *,
                    rubric=None, similarity: dict | None = None) -> Path:
    """Write OUT/index.html for the whole class and return its path. `similarity` is what
    grader/similarity/pages.py returned (None: no section); `rubric` words the mistakes'
    tips as the rubric's [families] does."""
    from . import insight

    out_dir = Path(out_dir)
    results = sorted(results, key=lambda r: r.id)
    scored = [r for r in results if not _ungraded(r)]
    max_score = _common_max(scored)
    page = _environment().get_template("dashboard.html").render(
        nonce=secrets.token_urlsafe(16),
        stats=_stats(results, scored, max_score, elapsed_s),
        # Scaled to the common maximum, so a student graded on another rubric still lands
        # in the right band.
        histogram=svg.histogram([r.score / r.max_score * max_score for r in scored
                                 if r.max_score > 0], max_score),
        rates=pass_rates(results),
        errored=[{"id": r.id, "href": _href(r.id), "error": text(r.error, 500)}
                 for r in results if r.error],
        students=[_student_row(r) for r in results],
        adjusted=_adjusted_rows(results),
        mistakes=insight.mistakes(results, rubric.families if rubric is not None else None),
        errored_checks=insight.errored_checks(results), similarity=similarity,
        footer=f"Written {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} by nngrader.")
    path = out_dir / "index.html"
    write_atomic(path, page)
    return path


def _ungraded(r: Result) -> bool:
    """A result the grader could not score at all: an error and no checks."""
    return bool(r.error) and not r.checks


def _common_max(results: list[Result]) -> float:
    counts = Counter(r.max_score for r in results if r.max_score > 0)
    return counts.most_common(1)[0][0] if counts else 0.0


def _stats(results, scored, max_score, elapsed_s) -> dict:
    scores = [r.score / r.max_score * max_score for r in scored if r.max_score > 0]
    return {"n": len(results), "n_scored": len(scored),
            "errored": sum(1 for r in results if r.error),
            "max_score": _pts(max_score),
            "mean": f"{statistics.fmean(scores):.1f}" if scores else "—",
            "median": f"{statistics.median(scores):g}" if scores else "—",
            "elapsed": _duration(elapsed_s)}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    if seconds < 90:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def pass_rates(results: list[Result]) -> list[dict]:
    """Per check id: how many submissions passed it, most failed first."""
    seen: dict[str, list[int]] = {}
    for r in results:
        for c in r.checks:
            tally = seen.setdefault(c.id, [0, 0])
            tally[0] += c.status == "pass"
            tally[1] += 1
    rows = []
    for cid, (p, n) in seen.items():
        pct = round(100 * p / n) if n else 0
        rows.append({"id": cid, "passed": p, "n": n, "pct": pct,
                     "band": "low" if pct < 50 else "mid" if pct < 80 else "high"})
    return sorted(rows, key=lambda row: (row["passed"] / row["n"] if row["n"] else 0, row["id"]))


def _href(result_id: str) -> str:
    return quote(result_id) + "/feedback.html"


def _adjusted_rows(results: list[Result]) -> list[dict]:
    """The instructor's overrides across the class, for the dashboard's own block."""
    rows = []
    for r in results:
        s = overrides.summary(r)
        if s:
            rows.append({"id": r.id, "href": _href(r.id), "auto": _pts(s.get("auto_score", 0)),
                         "score": _pts(r.score), "max_score": _pts(r.max_score),
                         "lines": [text(line, 400) for line in overrides.lines(r, student=False)]})
    return rows


def _student_row(r: Result) -> dict:
    not_passed = [c.id for c in r.checks if c.status != "pass"]
    ungraded = _ungraded(r)
    pct = 100 * r.score / r.max_score if r.max_score else None
    return {"id": r.id, "href": _href(r.id),
            "score": "—" if ungraded else f"{_pts(r.score)} / {_pts(r.max_score)}",
            "score_v": "" if ungraded else r.score,
            "pct": "—" if pct is None else f"{pct:.0f}", "pct_v": "" if pct is None else f"{pct:.2f}",
            "adjusted": overrides.summary(r) is not None,
            "passed": len(r.checks) - len(not_passed), "not_passed": len(not_passed),
            "failed_list": ", ".join(not_passed), "error": text(r.error, 200) if r.error else ""}
