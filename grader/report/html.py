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
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

from ..result import Result, write_atomic
from . import evidence, svg
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
    page = _environment().get_template("student.html").render(
        r=result, score=_pts(result.score), max_score=_pts(result.max_score),
        head=_header(result.meta if isinstance(result.meta, Mapping) else {}),
        checks=[_check_view(c) for c in result.checks], footer=_footer(result.meta))
    write_atomic(Path(path), page)


def _header(meta: Mapping[str, Any]) -> dict:
    sandbox = meta.get("sandbox") if isinstance(meta.get("sandbox"), Mapping) else {}
    tier = str(sandbox.get("tier") or "")
    protections = [text(p) for p in sandbox.get("protections") or [] if p] \
        if isinstance(sandbox.get("protections"), (list, tuple)) else []
    isolated = sandbox.get("isolated")
    if not isinstance(isolated, bool):
        isolated = tier not in UNISOLATED_TIERS
    return {
        "graded_file": text(meta.get("graded_file") or "unknown"),
        "source": text(meta["source"]) if meta.get("source") else "",
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
    return [(text(i.get("lines", "?")), text(i.get("what", "code"))) if isinstance(i, Mapping)
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
    return {"id": c.id, "anchor": "check-" + c.id, "status": c.status,
            "score": _pts(c.score), "max_score": _pts(c.max_score), "message": text(c.message, 2000),
            "hints": c.hints, "blocks": evidence.blocks(c.details)}


def _footer(meta: Any) -> str:
    meta = meta if isinstance(meta, Mapping) else {}
    bits = [f"nngrader {text(meta.get('grader_version') or '?')}"]
    for key, label in (("rubric", "rubric"), ("seed", "seed")):
        if meta.get(key) is not None:
            bits.append(f"{label} {text(meta[key])}")
    if meta.get("elapsed_s") is not None:
        bits.append(f"graded in {num(meta['elapsed_s'])} s")
    return " · ".join(bits)


# ---- dashboard ----------------------------------------------------------------------------

def write_dashboard(results: list[Result], out_dir: Path, elapsed_s: float | None) -> Path:
    """Write OUT/index.html for the whole class and return its path."""
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


def _student_row(r: Result) -> dict:
    not_passed = [c.id for c in r.checks if c.status != "pass"]
    ungraded = _ungraded(r)
    pct = 100 * r.score / r.max_score if r.max_score else None
    return {"id": r.id, "href": _href(r.id),
            "score": "—" if ungraded else f"{_pts(r.score)} / {_pts(r.max_score)}",
            "score_v": "" if ungraded else r.score,
            "pct": "—" if pct is None else f"{pct:.0f}", "pct_v": "" if pct is None else f"{pct:.2f}",
            "passed": len(r.checks) - len(not_passed), "not_passed": len(not_passed),
            "failed_list": ", ".join(not_passed), "error": text(r.error, 200) if r.error else ""}
