"""LMS exports: pure consumers of the result.json files of one grading run.

`load_results(OUT)` is the one way exports read a run; each format module turns the results
(matched to students by `identity`) into files, writing every CSV cell through `safecsv`.
"""
from __future__ import annotations

from pathlib import Path

from ..result import Result


def load_results(out_dir: Path) -> tuple[list[Result], list[str]]:
    """Every OUT/<id>/result.json, sorted by id, plus one sentence per unreadable file."""
    results, problems = [], []
    for path in sorted(Path(out_dir).glob("*/result.json")):
        try:
            results.append(Result.read(path))
        except (OSError, ValueError, KeyError, TypeError) as e:
            problems.append(f"{path} could not be read ({type(e).__name__}: {e}); it is left out.")
    return results, problems
