"""Similarity: which submissions share code beyond the skeleton every student was given.

A flag is a prompt for a person to look at two submissions side by side, never a verdict
and never a change to a score; student-facing files (feedback, result.json, exports) never
mention it. Used by `nngrader similarity DIR` and, after the grading loop, by `grade`
(OUT/similarity.csv, a dashboard section, one side-by-side page per flagged pair).

How (MOSS's method): each submission is read as `grade` reads it (a notebook as its code
cells), tokenized and normalised so renamed identifiers, comments, docstrings, layout and
changed constants disappear (`tokens.py`); the stream is cut at function and method
boundaries so reordering them changes nothing; runs of K tokens are hashed and winnowed
(`winnow.py`); template fingerprints, and those so common they are the assignment's own
idiom, are removed; an inverted index finds the pairs that share fingerprints
(`pairs.py`); similarity = shared / the smaller submission's fingerprints.

Why not copydetect (0.5.0, MIT, the maintained Python MOSS-alike; tried on the fixtures in
tests/fixtures/similarity/ and on bench/similarity.py's disguised copies):
- quality: it hashes characters of the lexer's output with every name made `V`, and
  removes only boilerplate hashes. On our fixtures it scored the renamed copy 0.96 and the
  reordered one 0.88 (here: 1.0 and 1.0), but two independent solutions of the template
  0.40-0.44 (here: 0.06-0.16): k-grams straddling template lines and the student's first
  lines survive its filter. A notebook is not Python to it (0.00 for the notebook copy).
  On 200 mutated submissions it flagged 181 pairs of unrelated code at 0.5 (highest
  0.59; 15 if both of its directional scores must pass); here none (highest 0.28), with
  the copies found as well (all 1190 pairs of mutants of the same code there, 1188 here).
- speed: it compares every pair (n²/2 numpy calls) and imports matplotlib: 200
  submissions took 17.9 s CPU against 3.0 s here, and 1000 did not finish in 15 minutes
  on the shared 2-core machine (bench/NOTES.md).
- determinism: it hashes with Python's per-process salted `hash()`.
- licence and maintenance are fine (MIT; last release 2024), but it would add matplotlib,
  pygments and tqdm to the grader for a few hundred lines we own and test.
Also looked at: pycode_similar (MIT, 2020) diffs the ASTs of functions, one reference file
against the others (difflib per function pair, no template removal, no index: quadratic
in the class and unmaintained); Dolos (MIT, tree-sitter fingerprints, the strongest public
tool) is a Node.js program, a second runtime on every grading machine for one report.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pairs import Comparison

__all__ = ["Comparison", "Pair", "compare", "folder_entries", "csv_text", "summary_lines"]
LAZY = ("Comparison", "Pair", "compare", "folder_entries")


def __getattr__(name: str):
    """pairs.py (and numpy) imported on first use: nngrader's command line registers the
    `similarity` command at every start, `check` included, and must not pay for it."""
    if name in LAZY:
        from . import pairs
        return getattr(pairs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def csv_text(comparison: Comparison) -> str:
    """a,b,similarity,flagged, highest similarity first."""
    from ..export import safecsv

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["a", "b", "similarity", "flagged"])
    for p in comparison.pairs:
        w.writerow([safecsv.text(p.a), safecsv.text(p.b), f"{p.similarity:.3f}",
                    "true" if p.flagged else "false"])
    return buf.getvalue()


def summary_lines(comparison: Comparison, limit: int = 20) -> list[str]:
    """What a terminal shows: the flagged pairs, highest first."""
    n = len(comparison.docs)
    flagged = comparison.flagged
    head = (f"compared {n} submission{'s' if n != 1 else ''} "
            f"({n * (n - 1) // 2} pairs) in {comparison.elapsed_s:.1f} s"
            + (f", template{'s' if len(comparison.templates) > 1 else ''} "
               f"{', '.join(Path(t).name for t in comparison.templates)} removed"
               if comparison.templates else ", no template given"))
    if not flagged:
        return [head, f"no pair shares {comparison.threshold:.0%} or more of its code"]
    one = len(flagged) == 1
    lines = [head, f"{len(flagged)} pair{'' if one else 's'} share{'s' if one else ''} "
                   f"{comparison.threshold:.0%} or more of {'its' if one else 'their'} code "
                   "(a prompt to look, not a verdict):"]
    width = max(len(p.a) for p in flagged[:limit])
    lines += [f"  {p.similarity:5.0%}  {p.a:<{width}}  {p.b}" for p in flagged[:limit]]
    if len(flagged) > limit:
        lines.append(f"  ... and {len(flagged) - limit} more")
    return lines
