"""The report `nngrader check` prints: verdicts, points, messages and hints, in colour on a
terminal that supports it (NO_COLOR and TERM=dumb respected), plain text otherwise."""
from __future__ import annotations

import sys
from typing import TextIO

from ..result import Result
from .colour import paint, supports_colour

WORDS = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "timeout": "TIMEOUT", "skipped": "SKIP"}


def render(result: Result, colour: bool = False) -> str:
    out = [paint(f"nngrader: {result.id}", "bold", colour)]
    meta = result.meta
    if meta.get("graded_what"):  # grader.check() in a notebook: the code the kernel ran
        out.append(f"  {clean(meta['graded_what'])}")
    if meta.get("graded_file"):
        out.append(f"  graded file: {meta['graded_file']}")
    choice = meta.get("choice") or {}
    if choice.get("not_graded"):
        out.append(f"  not graded: {', '.join(choice['not_graded'])} ({choice.get('why', '')})")
    roles = meta.get("roles") or {}
    if roles:
        out.append("  classes: " + ", ".join(
            f"{r}={'+'.join(v) if isinstance(v, list) else v or '-'}" for r, v in roles.items()))
    for item in meta.get("left_out") or []:
        where = f"; {item['where']}" if item.get("where") else ""  # a notebook's cell and line
        out.append(f"  left out: {clean(item.get('what'))} ({item.get('file')} lines {item.get('lines')}{where})")
    sb = meta.get("sandbox") or {}
    if sb.get("tier"):
        out.append(f"  sandbox: the {clean(str(sb['tier']))} tier"
                   f"{'' if sb.get('isolated') else ' (not isolated)'}; its protections are "
                   "listed in result.json (meta.sandbox)")
    if sb and not sb.get("isolated"):
        why = clean(sb.get("warning") or "this sandbox tier does not isolate the code from your files")
        out.append(paint(f"  warning: {why}", "yellow", colour))
    if meta.get("only"):
        out.append(paint(f"  {only_sentence(meta['only'])}", "yellow", colour))
    if result.error:
        out.append(paint(f"  not graded: {clean(result.error)}", "red", colour))
    out.append("")
    width = max((len(c.id) for c in result.checks), default=10)
    for c in result.checks:
        word = paint(f"{WORDS[c.status]:<7}", c.status, colour)
        out.append(f"  {word} {c.id:<{width}}  {c.score:>4g}/{c.max_score:<4g} {clean(c.message)}")
        if c.status != "pass":
            for h in c.hints:
                out.append(f"  {'':7} {'':{width}}  tip {h.tip}: {clean(h.text)}")
    out += ["", paint(f"  score: {result.score:g} / {result.max_score:g}", "bold", colour)]
    return "\n".join(out) + "\n"


def only_sentence(checks) -> str:
    """What an `--only` run covers, so its score is not read as the whole grade."""
    ids = [str(c) for c in checks] if isinstance(checks, (list, tuple)) else [str(checks)]
    return (f"only {len(ids)} check{'s' if len(ids) != 1 else ''} ran ({', '.join(ids)}): "
            "the score covers these only")


def clean(text: str) -> str:
    """Untrusted text on a terminal: control characters (escape codes) made visible."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in str(text))


def print_result(result: Result, stream: TextIO = sys.stdout) -> None:
    stream.write(render(result, supports_colour(stream)))
