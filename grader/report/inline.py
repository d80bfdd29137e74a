"""The report `grader.check()` shows inside a notebook cell (Jupyter, VS Code).

The same content and look as feedback.html, compacted: the score and what was graded on
top, the table of checks, what to fix with its evidence and learning curves, the passed
checks folded away. It is an HTML fragment inside the notebook's own page, so its
stylesheet is feedback.html's with every rule scoped under the report's root element: the
report must not restyle the notebook around it, and its rules win over the notebook's
generic ones (`.jp-RenderedHTMLCommon td`) by specificity. No script, nothing fetched.
"""
from __future__ import annotations

import functools
import secrets
from importlib import resources
from typing import Any, Mapping

from markupsafe import Markup

from ..result import Result
from . import html
from .fmt import text
from .terminal import only_sentence

SCOPE = "div.nngrader-report"


def render(result: Result) -> str:
    meta = result.meta if isinstance(result.meta, Mapping) else {}
    uid = "nngrader-" + secrets.token_hex(4)  # ids unique among several reports in a notebook
    checks = []
    for c in result.checks:
        view = html._check_view(c)
        view["anchor"] = f"{uid}-{c.id}"
        checks.append(view)
    return html._environment().get_template("notebook.html").render(
        r=result, uid=uid, css=Markup(scoped_css()),
        score=f"{result.score:g}", max_score=f"{result.max_score:g}",
        graded_what=text(meta.get("graded_what") or "", 500),
        only=only_sentence(meta["only"]) if meta.get("only") else "",
        head=html._header(meta), checks=checks, footer=html._footer(meta))


@functools.lru_cache(maxsize=1)
def scoped_css() -> str:
    """feedback.html's stylesheet with every selector scoped under SCOPE.

    tinycss2 parses it (comments, strings, commas inside brackets are its business); a
    rule we cannot scope, such as an @-rule, is dropped rather than let loose on the page.
    """
    import tinycss2

    css = (resources.files("grader") / "templates" / "_style.css").read_text(encoding="utf-8")
    out = []
    for rule in tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True):
        if rule.type != "qualified-rule":
            continue
        selectors = [tinycss2.serialize(part).strip() for part in split_commas(rule.prelude)]
        scoped = ", ".join(scope(s) for s in selectors if s)
        out.append(f"{scoped} {{{tinycss2.serialize(rule.content).strip()}}}")
    return "\n".join(out) + "\n" + (resources.files("grader") / "templates" / "_notebook.css") \
        .read_text(encoding="utf-8")


def split_commas(tokens: list[Any]) -> list[list[Any]]:
    parts: list[list[Any]] = [[]]
    for tok in tokens:
        if tok.type == "literal" and tok.value == ",":
            parts.append([])
        else:
            parts[-1].append(tok)
    return parts


def scope(selector: str) -> str:
    """`td.num` -> `div.nngrader-report td.num`; the page-level selectors become the root."""
    if selector in (":root", "body", "main", "html"):
        return SCOPE
    if selector == "*":
        return f"{SCOPE}, {SCOPE} *"
    return f"{SCOPE} {selector}"
