"""Each tip once per page: the same tips-list id from several checks is said in full the
first time and pointed back to afterwards ("Tip 8e: as in loss.backward above").

Checks attach hints from the rubric and from the mistake they recognise, so one tip can
come back in different words on one page; a student reads it once. Used by feedback.md,
the LMS comment and Gradescope's output (feedback.html does the same over its own reading
order, in html._show_once).
"""
from __future__ import annotations

from typing import Iterable


def once(checks: Iterable) -> dict[str, list[tuple[str, str, str | None]]]:
    """check id -> [(tip, text, id of the check that already said it, or None)], in order."""
    first: dict[str, str] = {}
    out: dict[str, list[tuple[str, str, str | None]]] = {}
    for c in checks:
        seen, items = set(), []
        for h in c.hints:
            if h.tip in seen:
                continue
            seen.add(h.tip)
            owner = first.setdefault(h.tip, c.id)
            items.append((h.tip, h.text, None if owner == c.id else owner))
        out[c.id] = items
    return out


def line(tip: str, text: str, ref: str | None) -> str:
    return f"Tip {tip}: as in {ref} above." if ref else f"Tip {tip}: {text}"
