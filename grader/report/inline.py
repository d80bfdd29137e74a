"""The report `grader.check()` shows inside a notebook cell (Jupyter, VS Code).

The same content and look as feedback.html, compacted: the score and what was graded on
top, the table of checks, what to fix with its evidence and learning curves, the passed
checks folded away. It is an HTML fragment inside the notebook's own page, so its
stylesheet is feedback.html's with every rule scoped under the report's root element, so the report
does not restyle the notebook around it and the notebook's table styles do not reach into
the report. No script, nothing fetched.
"""
from __future__ import annotations

import functools
import secrets
from collections.abc import Mapping
from importlib import resources
from typing import Any

from markupsafe import Markup

from ..result import Result
from . import html
from .fmt import text
from .terminal import only_sentence



def render(result: Result) -> str:
    meta = result.meta if isinstance(result.meta, Mapping) else {}
    uid = "nngrader-" + secrets.token_hex(4)  # ids unique among several reports in a notebook
    checks = []
    for c in result.checks:
        view = html._check_view(c)
        view["anchor"] = f"{uid}-{c.id}"
        checks.append(view)
    return html._environment().get_template("notebook.html").render(
        r=result, uid=uid, css=Markup(scoped_css(uid)),
        score=f"{result.score:g}", max_score=f"{result.max_score:g}",
        graded_what=text(meta.get("graded_what") or "", 500),
        only=only_sentence(meta["only"]) if meta.get("only") else "",
        head=html._header(meta), checks=checks, footer=html._footer(meta))


def scoped_css(root_id: str) -> str:
    """Both stylesheets, every rule scoped under the report's root element, by its id.

    An id outranks every class-based rule of the notebook's own stylesheet (JupyterLab's
    `:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td` right-aligns table cells), and
    scopes each report's styles to that report.
    """
    root = f"#{root_id}"
    return "\n".join(f"{', '.join(scope(s, root) for s in selectors)} {{{body}}}"
                      for selectors, body in rules())


@functools.lru_cache(maxsize=1)
def rules() -> tuple[tuple[tuple[str, ...], str], ...]:
    """(selectors, declarations) of feedback.html's stylesheet, then the notebook's
    additions, parsed once by tinycss2 (comments, strings and commas inside brackets are
    its business). A rule we cannot scope, such as an @-rule, is dropped rather than let
    loose on the notebook."""
    import tinycss2

    out = []
    for name in ("_style.css", "_notebook.css"):
        css = (resources.files("grader") / "templates" / name).read_text(encoding="utf-8")
        for rule in tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True):
            if rule.type != "qualified-rule":
                continue
            selectors = tuple(s for s in (tinycss2.serialize(part).strip()
                                          for part in split_commas(rule.prelude)) if s)
            out.append((selectors, tinycss2.serialize(rule.content).strip()))
    return tuple(out)


def split_commas(tokens: list[Any]) -> list[list[Any]]:
    parts: list[list[Any]] = [[]]
    for tok in tokens:
        if tok.type == "literal" and tok.value == ",":
            parts.append([])
        else:
            parts[-1].append(tok)
    return parts


def scope(selector: str, root: str) -> str:
    """`td.num` -> `#root td.num`; the page-level selectors (`:root`, `body`, `main`) are
    the report's root element itself."""
    if selector in (":root", "html", "body", "main"):
        return root
    if selector == "*":
        return f"{root}, {root} *"
    return f"{root} {selector}"
