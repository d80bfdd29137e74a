"""The `export` and `gradescope-zip` command lines, kept apart from what they run: nngrader
builds its whole parser at every start (`check` included), and the exporters (cli.py) are
imported only when one of these commands runs."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import UNGRADABLE


def run(name: str, args: argparse.Namespace) -> int:
    from . import cli
    return getattr(cli, name)(args)


FORMATS = ("canvas", "moodle", "gradescope", "csv")


def register(subparsers) -> None:
    """Add `export` and `gradescope-zip` to an argparse subparsers object."""
    e = subparsers.add_parser("export", help="write grades for an LMS from a grading run",
                              description="Write the grades of a grading run (OUT) in an LMS's import format.")
    e.add_argument("out_dir", metavar="OUT", type=Path, help="folder a grading run wrote")
    e.add_argument("--format", required=True, choices=FORMATS)
    e.add_argument("--roster", type=Path, metavar="FILE",
                   help="CSV of students (name, email, SIS ids, Canvas id, submission ...)")
    e.add_argument("--assignment", metavar='"Name (id)"',
                   help="Canvas assignment column, e.g. \"Homework 2 (123456)\"")
    e.add_argument("--out", type=Path, metavar="FILE", help="where to write (default under OUT/export/)")
    e.add_argument("--worksheet", type=Path, metavar="FILE",
                   help="Moodle grading worksheet to fill in (Grade and Feedback comments)")
    e.add_argument("--canvas-push", action="store_true",
                   help="also send grades and comments through the Canvas API "
                        "(CANVAS_URL, CANVAS_TOKEN, CANVAS_COURSE_ID from the environment)")
    e.add_argument("--course", metavar="ID", help="Canvas course id (default: $CANVAS_COURSE_ID)")
    e.add_argument("--dry-run", action="store_true",
                   help="with --canvas-push: print the form fields each request would send")
    e.add_argument("--points", type=float, metavar="N",
                   help="the assignment's points in the LMS: scores are scaled to N (Canvas, Moodle, csv)")
    e.add_argument("--ungradable", choices=UNGRADABLE, default="blank",
                   help="grade of work that could not be graded (result.json error set): "
                        "blank (default) or zero")
    e.add_argument("--allow-unmatched", action="store_true",
                   help="exit 0 even when some submissions matched no student")
    e.set_defaults(func=lambda args: run("run_export", args))

    z = subparsers.add_parser("gradescope-zip", help="build a Gradescope autograder zip",
                              description="Build autograder.zip: setup.sh, run_autograder, "
                                          "an nngrader wheel and the rubric.")
    z.add_argument("rubric", nargs="?", metavar="RUBRIC", help="rubric file or shipped name (default: default)")
    z.add_argument("-o", "--output", type=Path, default=Path("autograder.zip"), metavar="FILE")
    z.add_argument("--wheel", type=Path, metavar="FILE", help="use this nngrader wheel instead of building one")
    z.set_defaults(func=lambda args: run("run_zip", args))
