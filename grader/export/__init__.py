"""LMS exports: pure consumers of the result.json files of one grading run.

`load_results(OUT)` is the one way exports read a run (with the instructor's overrides in
OUT/overrides.csv applied, so a hand edit of that file reaches every export); each format
module turns the results
(matched to students by `identity`) into files, writing every CSV cell through `safecsv`.
"""
from __future__ import annotations

from pathlib import Path

from ..result import Result


def load_results(out_dir: Path) -> tuple[list[Result], list[str]]:
    """Every OUT/<id>/result.json, sorted by id, overrides applied, plus one sentence per
    unreadable file or override that does not apply."""
    from .. import overrides

    wanted, problems = overrides.read(out_dir)
    results = []
    for path in sorted(Path(out_dir).glob("*/result.json")):
        try:
            result = Result.read(path)
        except (OSError, ValueError, KeyError, TypeError) as e:
            problems.append(f"{path} could not be read ({type(e).__name__}: {e}); it is left out.")
            continue
        result, notes = overrides.reapply(result, wanted.pop(result.id, []))
        results.append(result)
        problems += notes
    problems += [f"{overrides.path_in(out_dir)}: no submission {sid} in {out_dir}; its override "
                 "is ignored." for sid in sorted(wanted)]
    return results, problems
