"""`nngrader override OUT ID [--check CHECK] --score X --comment TEXT` (or `--clear`).

Records the override in OUT/overrides.csv (grader/overrides.py), then rewrites what a
grading run writes for that submission (result.json, feedback.md and .html) and the
class files (summary.csv, index.html), so the change shows at once, with no regrade. Exit
0 when applied, 2 with one line when it cannot be (no such submission or check, points out
of range, no comment).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import overrides
from .result import Result, write_atomic


def register(subparsers) -> None:
    o = subparsers.add_parser(
        "override", help="set a check's points or the total by hand, with a comment",
        description="After a manual look: set one check's points (--check) or the total of a "
                    "graded submission, with a comment the student sees. Kept in "
                    "OUT/overrides.csv; survives regrades; reaches reports and exports.")
    o.add_argument("out_dir", metavar="OUT", type=Path, help="folder a grading run wrote")
    o.add_argument("sid", metavar="ID", help="submission id (the folder name under OUT)")
    o.add_argument("--check", metavar="CHECK", default="", help="a check id; without it, the total")
    o.add_argument("--score", type=float, metavar="X", help="the points to give")
    o.add_argument("--comment", default="", help="why (shown to the student)")
    o.add_argument("--clear", action="store_true", help="remove this override instead")
    o.set_defaults(func=run)


def _fail(msg: str) -> int:
    print(f"nngrader override: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    out, sid, check = Path(args.out_dir), args.sid, args.check.strip()
    path = out / sid / "result.json"
    try:
        result = overrides.strip(Result.read(path))
    except (OSError, ValueError, KeyError, TypeError):
        return _fail(f"{path}: no readable result for submission {sid!r}; grade it first "
                     "(ids are the folder names under OUT)")
    if args.clear:
        item = None
    else:
        if args.score is None or not args.comment.strip():
            return _fail("give --score X and --comment \"why\" (the student is shown the comment), "
                         "or --clear")
        item = overrides.Override(sid, check, args.score, " ".join(args.comment.split()))
        if check and result.check(check) is None:
            return _fail(f"{sid} has no check {check!r} (its checks: "
                         f"{', '.join(c.id for c in result.checks)})")
        top = result.check(check).max_score if check else result.max_score
        if not 0 <= args.score <= top + 1e-9:
            return _fail(f"--score {args.score:g} is outside 0..{top:g} for {item.what}")
    written, problems = overrides.put(out, item, clear=(sid, check))
    for p in problems:
        print(f"nngrader override: {p}", file=sys.stderr)
    refreshed = refresh(out, sid)
    what = f"{check}" if check else "the total"
    if args.clear:
        print(f"Removed the override of {what} for {sid}; score now {refreshed.score:g} / "
              f"{refreshed.max_score:g}. ({written})", file=sys.stderr)
    else:
        print(f"{sid}: {what} set to {args.score:g}; score now {refreshed.score:g} / "
              f"{refreshed.max_score:g} (the grader gave {result.score:g}). Recorded in {written}.",
              file=sys.stderr)
    return 0


def refresh(out: Path, sid: str) -> Result:
    """Re-apply the overrides file to one submission and rewrite every file that shows it."""
    from .cli import summary_csv
    from .export import load_results
    from .report import html, markdown

    results, _ = load_results(out)   # overrides applied to all, as exports see them
    result = next(r for r in results if r.id == sid)
    write_atomic(out / sid / "feedback.md", markdown.render(result))
    html.write_student_html(result, out / sid / "feedback.html")
    result.write(out / sid / "result.json")
    write_atomic(out / "summary.csv", summary_csv(results))
    html.write_dashboard(results, out, None)
    return result
