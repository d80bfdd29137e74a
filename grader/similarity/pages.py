"""What `grade` writes about similarity: OUT/similarity.csv, one side-by-side page per
flagged pair (OUT/similarity/<a>__<b>.html) and the rows of the dashboard's section.

All of it is for the instructor: nothing here touches a result.json, a score or a
student's feedback. A failure here is reported and skipped; it never stops a batch.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import quote

from markupsafe import Markup, escape

from ..result import write_atomic
from . import Comparison, compare, csv_text, folder_entries
from .pairs import read_units
from .regions import Prepared, compare_units, prepare, segments

FOLDER = "similarity"
MAX_PAGES = 200          # pages (and dashboard rows) for the most similar pairs
SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def page_names(pairs) -> list[str]:
    """A file name per pair, readable and unique even when ids are not filenames."""
    names, seen = [], set()
    for p in pairs:
        base = f"{SAFE.sub('_', p.a)[:60]}__{SAFE.sub('_', p.b)[:60]}"
        name, n = base, 2
        while name in seen:
            name, n = f"{base}-{n}", n + 1
        seen.add(name)
        names.append(name + ".html")
    return names


def reader_for_grading(settings):
    """What `grade` hands each submission to as soon as it is graded (pairs.Reader), or
    None when [similarity] is off or the templates cannot be read now."""
    if not settings.enabled:
        return None
    try:
        from .pairs import Reader
        return Reader(list(settings.templates))
    except Exception:  # noqa: BLE001 - everything is read at the end instead
        return None


def write_for_grading(folder: Path, out: Path, settings, jobs: int, reader=None) -> dict | None:
    """Compare the class, write the CSV and the pages; the dashboard section's data, or
    None when [similarity] is off (stale files of an earlier run are removed then).
    `reader`: the submissions read while grading (reader_for_grading)."""
    out = Path(out)
    if not settings.enabled:
        (out / "similarity.csv").unlink(missing_ok=True)
        clear_pages(out / FOLDER, keep=set())
        return None
    try:
        entries, _ = folder_entries(folder)
        comparison = compare(entries, list(settings.templates), settings.threshold, jobs=jobs,
                             reader=reader)
        write_atomic(out / "similarity.csv", csv_text(comparison))
        rows = write_pages(comparison, out)
    except Exception as e:  # similarity is a prompt for a person; grading results stand
        print(f"nngrader: similarity not computed ({type(e).__name__}: {e})", file=sys.stderr)
        return None
    for note in comparison.notes:  # an unreadable submission already has its result
        if note.startswith("template"):
            print(f"nngrader: similarity: {note}", file=sys.stderr)
    return {"threshold": f"{comparison.threshold:.0%}", "n": len(comparison.docs),
            "templates": [Path(t).name for t in comparison.templates],
            "pairs": rows, "more": max(0, len(comparison.flagged) - len(rows))}


def write_pages(comparison: Comparison, out: Path) -> list[dict]:
    flagged = comparison.flagged[:MAX_PAGES]
    names = page_names(flagged)
    folder = out / FOLDER
    clear_pages(folder, keep=set(names))
    rows, prepared = [], {}  # one submission is often in many pairs: read it once
    for pair, name in zip(flagged, names):
        write_atomic(folder / name, render_pair(comparison, pair, prepared), durable=False)
        rows.append({"a": pair.a, "b": pair.b, "similarity": f"{pair.similarity:.0%}",
                     "href": f"{FOLDER}/{quote(name)}",
                     "a_href": quote(pair.a) + "/feedback.html",
                     "b_href": quote(pair.b) + "/feedback.html"})
    return rows


def clear_pages(folder: Path, keep: set[str]) -> None:
    """Pair pages of an earlier run that are no longer flagged (only *__*.html files)."""
    if folder.is_dir():
        for p in folder.glob("*__*.html"):
            if p.name not in keep:
                p.unlink(missing_ok=True)


def render_pair(comparison: Comparison, pair, prepared: dict | None = None) -> str:
    from ..report.html import _environment

    prepared = {} if prepared is None else prepared
    a, b = (prepared_doc(comparison, sid, prepared) for sid in (pair.a, pair.b))
    side_a, side_b, matches = compare_units(a, b)
    return _environment().get_template("pair.html").render(
        pair=pair, percent=f"{pair.similarity:.0%}", threshold=f"{comparison.threshold:.0%}",
        templates=[Path(t).name for t in comparison.templates],
        sides=[view("a", pair.a, side_a), view("b", pair.b, side_b)],
        matches=[{"a": x, "b": y, "runs": n,
                  "a_href": anchor("a", side_a, x), "b_href": anchor("b", side_b, y)}
                 for x, y, n in matches])


def prepared_doc(comparison: Comparison, sid: str, cache: dict) -> Prepared:
    doc = comparison.doc(sid)
    if doc.path not in cache:
        cache[doc.path] = prepare(*(doc.read or read_units(doc.path)), comparison.template)
    return cache[doc.path]


def view(key: str, sid: str, side) -> dict:
    files = []
    for i, (name, source) in enumerate(side.sources.items()):
        files.append({"name": name, "index": i, "rows": rows(key, i, source, side.marks.get(name, {}))})
    return {"key": key, "id": sid, "href": "../" + quote(sid) + "/feedback.html", "files": files}


def rows(key: str, index: int, source: str, marks: dict) -> Markup:
    """The file's table rows, one per line, its shared pieces in <mark>: built here rather
    than line by line and token by token in the template (a page has thousands of lines)."""
    out = []
    for n, line in enumerate(source.splitlines(), 1):
        hit = ' class="hit"' if n in marks else ""
        out.append(f'<tr id="{key}-{index}-L{n}"{hit}><td class="ln">{n}</td>'
                   f'<td>{marked(line, marks.get(n))}</td></tr>\n')
    return Markup("".join(out))


def marked(line: str, ranges) -> str:
    """The line as HTML."""
    if not ranges:
        return escape(line)
    return "".join(f"<mark>{escape(text)}</mark>" if hit else escape(text)
                   for text, hit in segments(line, ranges))


def anchor(key: str, side, unit: str) -> str:
    file, line = side.first_line.get(unit, (None, 1))
    index = list(side.sources).index(file) if file in side.sources else 0
    return f"#{key}-{index}-L{line}"
