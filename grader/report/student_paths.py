"""Nothing of the instructor's machine in what a student reads.

A result carries the instructor's path to the submission (meta.source, for the instructor's
own tools) and messages may quote paths the grader saw: the submission's folder, the
grader's installation, the temporary box a run used. Every student-facing renderer
(feedback.md and .html, LMS comments, Gradescope's results.json) reads the result through
`scrub`, which turns those into the submission's own relative names.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..result import Result

GRADER_ROOT = str(Path(__file__).resolve().parents[2])
BOX = re.compile(r"(?:/[\w.+-]+)*/nngrader-(?:box|zip|remote)-[\w.+-]+/")


PLAIN = (float, int, bool, type(None))
PLAIN_TYPES = frozenset(PLAIN)


def prefixes(meta: Mapping) -> list[tuple[str, str]]:
    """(text, replacement) pairs, longest first."""
    pairs = [(GRADER_ROOT + "/", "")]
    source = meta.get("source") if isinstance(meta, Mapping) else None
    if isinstance(source, str) and source:
        for form in {source, str(Path(source).resolve())}:
            p = Path(form)
            if p.suffix:                        # a file: its own name is what the student knows
                pairs.append((form, p.name))
                pairs.append((str(p.parent) + "/", ""))
            else:                               # a folder: names inside it stay relative
                pairs.append((form + "/", ""))
                pairs.append((form, p.name))
    return sorted({(a, b) for a, b in pairs if a not in ("", "/", "./")}, key=lambda ab: -len(ab[0]))


def clean(text: str, pairs: list[tuple[str, str]]) -> str:
    text = BOX.sub("", text)
    for a, b in pairs:
        text = text.replace(a, b)
    return text


def scrub(result: Result) -> Result:
    """The result with every string a student sees made free of the instructor's paths."""
    pairs = prefixes(result.meta)

    def walk(v: Any) -> Any:
        if type(v) in PLAIN:  # most of a result: the numbers of its curves
            return v
        if isinstance(v, str):
            return clean(v, pairs)
        if isinstance(v, Mapping):
            return {k: walk(x) for k, x in v.items()}
        if type(v) is list and set(map(type, v)) <= PLAIN_TYPES:  # a curve: no text in it
            return list(v)
        if isinstance(v, (list, tuple)):
            return type(v)(walk(x) for x in v)
        return v

    checks = tuple(replace(c, message=walk(c.message), details=walk(dict(c.details)),
                           hints=tuple(replace(h, text=walk(h.text)) for h in c.hints))
                   for c in result.checks)
    meta = {k: (v if k == "source" else walk(v)) for k, v in result.meta.items()}
    meta.pop("source", None)            # the instructor's path to the file: never shown
    meta.pop("internal", None)          # the grader's own traceback: for the instructor
    return replace(result, checks=checks, error=walk(result.error) if result.error else result.error,
                   meta=meta)
