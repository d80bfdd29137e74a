"""What the `export` and `gradescope-zip` subcommands run (their arguments: parser.py).

Exit codes: 0 when everything was exported, 1 when files were written but something needs
a look (a submission matched no student or has no row in the LMS's file, unless
--allow-unmatched; a push failed), 2 when nothing could be written (no results, an
unreadable roster or worksheet, a cell that is not a number or an id). The last lines
printed sum up who was not exported. Every path printed is the path the user gave, or one
built from it.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import canvas, gradescope, load_results, moodle, plaincsv
from .common import Grading, assignment_id, ungraded
from .identity import match, read_roster
from .safecsv import CellError
from ..result import write_atomic
from .parser import FORMATS, register  # noqa: F401 - register: the command line's entry


def _say(msg: str) -> None:
    print(msg, file=sys.stderr)


def run_export(args: argparse.Namespace) -> int:
    results, problems = load_results(args.out_dir)
    for p in problems:
        _say(p)
    if not results:
        _say(f"No result.json found under {args.out_dir}; run `nngrader grade` first.")
        return 2
    try:
        args.grading = Grading(args.ungradable, args.points)
        # Gradescope grades one submission per run and needs no roster.
        roster = read_roster(args.roster) if args.roster and args.format != "gradescope" else None
        matching = match(results, roster)
        status, not_placed = EXPORTERS[args.format](args, matching, results)
    except (CellError, ValueError, OSError) as e:
        _say(f"Nothing exported: {e}")
        return 2
    for n in matching.report():
        _say(n)
    if args.format != "gradescope":
        for r in results:
            if ungraded(r):
                _say(f"{r.id} could not be graded ({r.error}); its grade is "
                     f"{'0' if args.ungradable == 'zero' else 'left blank'}.")
    unmatched = [r.id for r in matching.unmatched] + not_placed
    _summary(unmatched, matching, args.allow_unmatched)
    needs_look = bool(matching.problems) or (bool(unmatched) and not args.allow_unmatched)
    return max(status, 1 if needs_look else 0)


def _summary(unmatched: list[str], matching, allowed: bool) -> None:
    """The last lines: who was not exported, so it cannot scroll by unnoticed."""
    if unmatched:
        shown = ", ".join(unmatched[:10]) + (f" and {len(unmatched) - 10} more" if len(unmatched) > 10 else "")
        _say(f"Not exported: {len(unmatched)} submission(s) matched no student: {shown}. "
             + ("Accepted (--allow-unmatched)." if allowed else
                "Fix the roster (or pass --allow-unmatched to accept); exit status 1."))
    if matching.missing:
        _say(f"{len(matching.missing)} student(s) of the roster have no submission; left blank.")


def _default(args, name: str) -> Path:
    return args.out or Path(args.out_dir) / "export" / name


def _canvas(args, matching, results) -> tuple[int, list[str]]:
    points, notes = args.grading.possible(results)
    for n in notes:
        _say(n)
    title = args.assignment or "nngrader"
    if not assignment_id(title):
        _say(f"The assignment header '{title}' has no Canvas id; Canvas matches it by exact "
             "title or creates a new column. Pass --assignment \"Title (id)\" to be sure.")
    path = _default(args, "canvas.csv")
    canvas.write_gradebook(matching, title, points, path, args.grading)
    folder = path.with_name(path.stem + "_feedback")
    files = canvas.write_feedback_files(matching, folder, args.grading)
    _say(f"Wrote {path} and {len(files)} feedback file(s) in {folder}.")
    nameless = canvas.unaddressable(matching)
    if nameless:
        _say(f"{len(nameless)} row(s) have no Canvas ID, SIS id or student name, so Canvas "
             "cannot match them; pass --roster (a Canvas gradebook export works).")
    status = _push(args, matching, title) if args.canvas_push else 0
    return status, nameless


def _push(args, matching, title) -> int:
    plan, problems = canvas.plan_push(matching, args.grading)
    for p in problems:
        _say(p)
    course = args.course or os.environ.get("CANVAS_COURSE_ID", "")
    aid = assignment_id(title)
    if args.dry_run:
        canvas.dry_run(plan, course or "<course>", aid or "<assignment>")
        return 1 if problems else 0
    url, token = os.environ.get("CANVAS_URL", ""), os.environ.get("CANVAS_TOKEN", "")
    missing = [n for n, v in (("CANVAS_URL", url), ("CANVAS_TOKEN", token),
                              ("--course or CANVAS_COURSE_ID", course),
                              ('--assignment "Title (id)"', aid)) if not v]
    if missing:
        _say(f"Not pushed: set {', '.join(missing)}. The CSV and feedback files were written.")
        return 1
    try:
        failed = canvas.push(plan, course, aid, url=url, token=token)
    except ImportError:
        _say("Not pushed: canvasapi is not installed (pip install 'nngrader[canvas]').")
        return 1
    return 1 if failed or problems else 0


def _moodle(args, matching, results) -> tuple[int, list[str]]:
    if args.worksheet:
        path = args.out or Path(args.out_dir) / "export" / f"{args.worksheet.stem}-graded.csv"
        report = moodle.merge_worksheet(args.worksheet, matching, path, args.grading)
        for n in report.notes:
            _say(n)
        _say(f"Filled {len(report.filled)} row(s); wrote {path}. Upload it under "
             "Assignment > View all submissions > Upload grading worksheet.")
        if report.no_result:
            _say(f"{report.no_result} worksheet row(s) matched no submission here; left as they were.")
        return 0, report.no_row
    path = _default(args, "moodle.csv")
    moodle.write_import(matching, path, args.grading)
    _say(f"Wrote {path}. Import it under Grades > Import > CSV file, mapping the first column "
         "to the matching user field.")
    return 0, []


def _gradescope(args, matching, results) -> tuple[int, list[str]]:
    folder = args.out or Path(args.out_dir) / "export" / "gradescope"
    for r in results:
        write_atomic(folder / r.id / "results.json", gradescope.dumps(r))
    _say(f"Wrote {len(results)} results.json file(s) under {folder}.")
    return 0, []


def _csv(args, matching, results) -> tuple[int, list[str]]:
    path = _default(args, "grades.csv")
    plaincsv.write(matching, path, args.grading)
    _say(f"Wrote {path}.")
    return 0, []


EXPORTERS = {"canvas": _canvas, "moodle": _moodle, "gradescope": _gradescope, "csv": _csv}


def run_zip(args: argparse.Namespace) -> int:
    try:
        path = gradescope.build_zip(args.output, args.rubric, args.wheel)
    except (OSError, RuntimeError) as e:
        _say(f"No zip written: {e}")
        return 2
    except Exception as e:  # pip failing to build the wheel
        _say(f"No zip written: building the nngrader wheel failed ({type(e).__name__}: {e}).")
        return 2
    _say(f"Wrote {path}. Upload it as the Gradescope autograder (Ubuntu base image).")
    return 0
