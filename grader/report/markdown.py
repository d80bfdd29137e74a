"""feedback.md: the per-student report as Markdown, read from a Result and nothing else."""
from __future__ import annotations

from .. import overrides
from ..result import Result
from . import hints
from .student_paths import scrub

MARK = {"pass": "✅ pass", "fail": "❌ fail", "error": "💥 error", "timeout": "⏱ timeout",
        "skipped": "⏭ skipped"}


def render(result: Result) -> str:
    result = scrub(result)
    lines = [f"# Feedback for {md(result.id)}", "",
             f"**Score: {result.score:g} / {result.max_score:g}**", ""]
    if result.error:
        lines += [f"> **Could not be graded:** {md(result.error)}", ""]
    adjusted = overrides.lines(result)
    if adjusted:
        lines += ["**Adjusted by your instructor:**", "", *[f"- {md(a)}" for a in adjusted], ""]
    lines += header(result.meta)
    lines += ["| check | verdict | points | message |", "|---|---|---|---|"]
    for c in result.checks:
        mark = c.details.get("override") if isinstance(c.details, dict) else None
        adjusted = f" ✎ (grader: {mark['auto_score']:g})" if isinstance(mark, dict) and "auto_score" in mark else ""
        lines.append(f"| `{c.id}` | {MARK[c.status]} | {c.score:g} / {c.max_score:g}{adjusted} | {md(c.message)} |")
    lines.append("")
    lost = [c for c in result.checks if c.status != "pass" and c.status != "skipped"]
    tips = hints.once(lost)
    if lost:
        lines += ["## What to fix", ""]
    for c in lost:
        lines += [f"### `{c.id}` — {c.score:g} / {c.max_score:g}", "", md(c.message), ""]
        suspected = c.details.get("suspected") if isinstance(c.details, dict) else None
        if suspected and suspected not in c.message:
            lines += [f"**Suspected mistake:** {md(suspected)}", ""]
        for tip, text, ref in tips[c.id]:
            lines.append(f"- **Tip {tip}:** " + (f"as in `{ref}` above." if ref else md(text)))
        tb = c.details.get("traceback") if isinstance(c.details, dict) else None
        if tb:
            lines += ["", "```", *[str(t) for t in tb], "```"]
        lines.append("")
    return "\n".join(lines) + "\n"


def header(meta: dict) -> list[str]:
    out = []
    if meta.get("graded_file"):
        out.append(f"- Graded file: `{md(meta['graded_file'])}`")
    choice = meta.get("choice") if isinstance(meta.get("choice"), dict) else {}
    if choice.get("not_graded"):
        out.append(f"- Not graded: {md(', '.join(choice['not_graded']))} "
                   f"({md(choice.get('why') or 'another file was graded')})")
    roles = meta.get("roles") or {}
    if roles:
        shown = ", ".join(f"{role} → {md(' + '.join(v) if isinstance(v, list) else v or 'not found')}"
                          for role, v in roles.items())
        out.append(f"- Classes found: {shown}")
    for item in meta.get("left_out") or []:
        out.append(f"- Left out (not run): {md(item.get('what', 'code'))} in `{md(item.get('file', ''))}`, "
                   f"lines {md(item.get('lines', '?'))}"
                   + (f" ({md(item['where'])})" if item.get("where") else ""))
    sb = meta.get("sandbox") or {}
    if sb:
        iso = "isolated" if sb.get("isolated") else "NOT isolated from the host"
        out.append(f"- Sandbox: {md(sb.get('tier', '?'))} ({iso}); protections: "
                   f"{md(', '.join(sb.get('protections') or []))}")
    return out + [""] if out else []


def md(text) -> str:
    """Neutralise Markdown/HTML in untrusted text: it is shown, never interpreted."""
    s = str(text).replace("\r", " ").replace("\n", " ")
    for ch in "\\`*_{}[]<>|#":
        s = s.replace(ch, "\\" + ch)
    return s
