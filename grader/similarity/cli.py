"""`nngrader similarity DIR`: register(sub) adds it to nngrader's command line.

Exit codes as for the other commands: 0 when the comparison ran (whatever it found), 2
with a one-line message when it was called wrongly (no such folder, a missing template).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    s = subparsers.add_parser(
        "similarity", help="flag pairs of submissions that share code beyond the template",
        description="Compare every pair of submissions in DIR (the ids of `nngrader grade`) "
                    "and write a,b,similarity,flagged as CSV, highest first.")
    s.add_argument("folder", metavar="DIR", type=Path)
    s.add_argument("--template", type=Path, action="append", default=[], metavar="FILE",
                   help="skeleton handed out to students; its code is ignored (repeatable)")
    s.add_argument("--threshold", type=float, metavar="X",
                   help="flag pairs sharing at least this fraction (default: the rubric's, 0.5)")
    s.add_argument("--min", type=float, metavar="X", dest="minimum",
                   help="list pairs at or above X (default: flagged pairs only; 0 lists every pair)")
    s.add_argument("--out", type=Path, default=Path("similarity.csv"), metavar="FILE",
                   help="CSV to write (default: %(default)s)")
    s.add_argument("--rubric", type=Path, help="take the threshold and templates from its [similarity]")
    s.add_argument("--jobs", type=int, default=None, help="processes (default: the number of cores)")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError, default_jobs
    from ..result import write_atomic
    from . import compare, csv_text, folder_entries, summary_lines

    if not args.folder.is_dir():
        raise UsageError(f"{args.folder}: no such folder")
    settings = rubric_settings(args.rubric)
    templates = list(settings.templates) + args.template
    for t in args.template:
        if not t.exists():
            raise UsageError(f"--template {t}: no such file or folder")
    threshold = settings.threshold if args.threshold is None else args.threshold
    for name, value in (("--threshold", threshold), ("--min", args.minimum)):
        if value is not None and not 0 <= value <= 1:
            raise UsageError(f"{name} is a fraction of shared code, between 0 and 1; got {value:g}")
    entries, skipped = folder_entries(args.folder)
    result = compare(entries, templates, threshold, args.minimum, jobs=args.jobs or default_jobs())
    for note in skipped + result.notes:
        print(f"nngrader: {note}", file=sys.stderr)
    try:
        write_atomic(args.out, csv_text(result))
    except OSError as e:
        raise UsageError(f"--out {args.out}: cannot write ({e.strerror})") from None
    for line in summary_lines(result):
        print(line)
    print(f"pairs written to {args.out}")
    return 0


def rubric_settings(path: Path | None):
    from ..cli import UsageError
    from ..rubric import RubricError, SimilaritySettings, load_rubric

    if path is None:
        return SimilaritySettings()
    try:
        return load_rubric(path).similarity
    except RubricError as e:
        raise UsageError(str(e)) from None
