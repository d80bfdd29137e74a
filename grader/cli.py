"""The `nngrader` command: grade a folder, check one file.

Every way a run can end maps to one exit code: 0 when the batch completed (whatever the
submissions did), 2 when the grader was misused (no such folder, bad rubric), with a
one-line message and no traceback.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:  # (imported where used: `check` starts its worker before the grader loads)
    from .result import Result

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130


class UsageError(Exception):
    """The grader was called wrongly: a one-line message, exit code 2."""


def main(argv: list[str] | None = None) -> int:
    one_blas_thread()
    argv = sys.argv[1:] if argv is None else list(argv)
    start_check_worker(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:
        print(f"nngrader: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("nngrader: interrupted; finished results are kept", file=sys.stderr)
        return EXIT_INTERRUPTED


def one_blas_thread() -> None:
    """The grader's own arrays are small (reference passes over a few hundred rows at most),
    so BLAS threads buy it nothing, while OpenBLAS starting them at numpy's import costs
    ~0.1 s of CPU on the cores the sandbox's worker starts on. Set before numpy is first
    imported; a value the user set is kept."""
    from .sandbox.plain import BLAS_ONE_THREAD

    for name, value in BLAS_ONE_THREAD.items():
        os.environ.setdefault(name, value)


CHECK_VALUE_OPTIONS = ("--only", "--rubric", "--sandbox")  # check's options that take a value


def start_check_worker(argv: list[str]) -> None:
    """`check FILE`: start the sandbox's worker before the parser is built and the grader is
    imported. Its start (an interpreter, numpy, the harness: ~0.22 s) is what the box waits
    for, so every ms it starts sooner is one ms off the check. argv is read as the parser
    will read it (the last --sandbox, or a prefix of it such as --sand, before any `--`);
    a FILE that does not exist starts nothing, so its usage error comes as quickly as ever."""
    if not argv or argv[0] != "check" or {"-h", "--help"} & set(argv):
        return
    sandbox, named, value_of = "auto", False, None
    for i, arg in enumerate(argv[1:], 1):
        if value_of is not None and not arg.startswith("-"):  # the value of the option before it
            sandbox, value_of = arg if value_of == "--sandbox" else sandbox, None
            continue
        value_of = None
        if arg == "--":
            named |= any(os.path.exists(a) for a in argv[i + 1:])
            break
        name, eq, value = arg.partition("=")
        # (argparse also takes a unique prefix of an option: --sand)
        option = next((o for o in CHECK_VALUE_OPTIONS if len(name) > 2 and o.startswith(name)), None)
        if option and eq:
            sandbox = value if option == "--sandbox" else sandbox
        elif option:
            value_of = option
        elif not arg.startswith("-") and os.path.exists(arg):
            named = True
    if named:
        warm_sandbox(argparse.Namespace(sandbox=sandbox))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nngrader", description="Grade from-scratch numpy MLP homework.")
    p.add_argument("--version", action="version", version=f"nngrader {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("grade", help="grade every submission in a folder")
    g.add_argument("folder", type=Path)
    g.add_argument("--out", type=Path, required=True, help="output folder")
    g.add_argument("--jobs", type=int, default=default_jobs(),
                   help="parallel submissions (default: the number of cores, %(default)s here)")
    g.add_argument("--force", action="store_true",
                   help="regrade every submission, even those whose result is up to date")
    g.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="where submissions run: this machine (default) or a Dask cluster")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="the Dask scheduler, e.g. tcp://host:8786 (with --executor dask)")
    add_common(g)
    g.set_defaults(func=cmd_grade)

    c = sub.add_parser("check", help="self-check one submission and print a report")
    c.add_argument("file", type=Path)
    c.add_argument("--json", action="store_true", help="print result.json instead of the report")
    c.add_argument("--only", action="append", metavar="CHECKS",
                   help="run only these checks and the probes they need: a family (linear, relu, "
                        "loss, gradcheck, vectorised, update, train, structure, mlp) or a check "
                        "id; comma-separated or repeated")
    add_common(c)
    c.set_defaults(func=cmd_check)

    from .export.parser import register  # export and gradescope-zip (their code loads on use)
    register(sub)
    from .override_cli import register as register_override  # override
    register_override(sub)
    from .similarity.cli import register as register_similarity
    register_similarity(sub)
    return p


def default_jobs() -> int:
    """The cores this process may use (its CPU affinity), else the machine's."""
    from .sandbox.base import host_cores
    return host_cores()


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rubric", type=Path, help="rubric TOML (default: the bundled one)")
    p.add_argument("--sandbox", default="auto",
                   help="auto (default: the strongest tier here), strict (refuse below the "
                        "container tier), strict:namespaces, plain, container or docker")


def warm_sandbox(args, workers: int = 1) -> None:
    """Start the sandbox's pre-started workers first thing, so their interpreter start and
    numpy import run while this process imports the grader and reads the rubric."""
    if (args.sandbox in ("auto", "container") or args.sandbox.startswith("strict")) \
            and sys.platform == "linux":
        from .sandbox.embedded import POOL
        POOL.prestart(workers)


def setup(args):
    return load_rubric_or_exit(args), open_sandbox_or_exit(args)


def open_sandbox_or_exit(args, recalled: bool = False):
    from .sandbox import SandboxUnavailable, open_sandbox

    try:
        return open_sandbox(args.sandbox, recalled)
    except SandboxUnavailable as e:
        raise UsageError(f"--sandbox {args.sandbox}: {e}") from None


class Background:
    """fn(*args) on a thread of its own; result() waits and returns or raises what it did.
    (A bare thread: concurrent.futures would import logging into `check`'s start-up.)"""

    def __init__(self, fn, *args):
        import threading
        self.value, self.error = None, None
        self.thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self.thread.start()

    def _run(self, fn, args):
        try:
            self.value = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            self.error = e

    def result(self):
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.value


def cmd_grade(args) -> int:
    if not args.folder.is_dir():
        raise UsageError(f"{args.folder}: no such folder")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.executor == "dask" and not args.scheduler:
        raise UsageError("--executor dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
    if args.scheduler and args.executor != "dask":
        raise UsageError("--scheduler goes with --executor dask")
    if args.executor == "local":
        warm_sandbox(args, args.jobs)
    from .batch import run_batch
    from .report import html, markdown
    from .result import write_atomic
    from .report.progress import Progress

    if args.executor == "local":
        from .batch import LocalExecutor
        rubric, sandbox = setup(args)
        executor = LocalExecutor(sandbox, args.jobs, args.sandbox)
        if executor.jobs < args.jobs:
            print(f"nngrader: the {sandbox.tier} sandbox tier cannot share the CPU fairly "
                  f"between submissions, so it grades {executor.jobs} at a time (a CPU hog "
                  "would slow its neighbour into timeouts)", file=sys.stderr)
    else:
        rubric = load_rubric_or_exit(args)
        executor = dask_executor(args)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{args.out}: cannot create the output folder ({e.strerror})") from None

    def reports(result: Result, out: Path) -> None:
        write_atomic(out / result.id / "feedback.md", markdown.render(result))
        html.write_student_html(result, out / result.id / "feedback.html")

    from .similarity.pages import reader_for_grading
    similarity_reader = reader_for_grading(rubric.similarity)

    def write(result: Result, out: Path) -> None:
        reports(result, out)
        result.write(out / result.id / "result.json")  # last: its presence means complete
        if similarity_reader is not None and result.meta.get("source"):
            similarity_reader.add(Path(result.meta["source"]), result.id)  # while it is parsed

    def refresh(result: Result, out: Path) -> None:
        if not all((out / result.id / name).is_file() for name in ("feedback.md", "feedback.html")):
            reports(result, out)

    progress = None

    def on_start(todo: int, cached: int) -> None:
        nonlocal progress
        if cached:
            print(f"nngrader: {cached} submission{'s' if cached != 1 else ''} up to date "
                  f"(unchanged file, rubric and grader); grading {todo}", file=sys.stderr)
        progress = Progress(todo)

    stop_on_sigterm()
    try:
        batch = run_batch(args.folder, args.out, rubric, executor, force=args.force, write=write,
                          refresh=refresh, on_start=on_start,
                          on_result=lambda r: progress.update(r))
    finally:
        if progress is not None:
            progress.close()
        getattr(executor, "close", lambda: None)()
    for note in batch.skipped:
        print(f"nngrader: {note}", file=sys.stderr)
    # Written once, at the end, from every result (new and up to date): always the whole class.
    write_atomic(args.out / "summary.csv", summary_csv(batch.results))
    similar = None
    if not batch.interrupted:  # over every submission in the folder, after grading
        from .similarity.pages import write_for_grading
        similar = write_for_grading(args.folder, args.out, rubric.similarity, args.jobs,
                                    similarity_reader)
    html.write_dashboard(batch.results, args.out, batch.elapsed_s, rubric=rubric, similarity=similar)
    errored = sum(1 for r in batch.results if r.error)
    if batch.interrupted:
        print(f"nngrader: interrupted; {batch.graded} graded in this run and kept, "
              f"{len(batch.pending)} left: run the same command again to finish", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"nngrader: graded {batch.graded} submissions in {batch.elapsed_s:.1f} s "
          f"({batch.cached} up to date, {errored} could not be graded); results in {args.out}, "
          f"class dashboard {args.out / 'index.html'}", file=sys.stderr)
    if args.executor == "local":
        print(f"nngrader: sandbox tier {sandbox.tier}"
              f"{'' if sandbox.isolated else ' (NOT isolated from this machine)'}: "
              f"{', '.join(sandbox.protections)}", file=sys.stderr)
    return EXIT_OK


def stop_on_sigterm() -> None:
    """SIGTERM ends a batch like Ctrl-C: finished results kept, summary written."""
    import signal
    import threading

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def load_rubric_or_exit(args):
    from .rubric import RubricError, load_rubric
    try:
        return load_rubric(args.rubric)
    except RubricError as e:
        raise UsageError(str(e)) from None


def dask_executor(args):
    from .batch import DaskExecutor
    from .sandbox import NAMES
    if args.sandbox not in NAMES:
        raise UsageError(f"--sandbox {args.sandbox}: unknown sandbox; choose one of {', '.join(NAMES)}")
    try:
        return DaskExecutor(args.scheduler, args.sandbox)
    except RuntimeError as e:
        raise UsageError(str(e)) from None
    except (OSError, TimeoutError) as e:
        raise UsageError(f"--scheduler {args.scheduler}: cannot reach the Dask scheduler ({e})") from None


def summary_csv(results: list[Result]) -> str:
    from .export import safecsv

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "score", "max_score", "error"])
    for r in results:
        w.writerow([safecsv.text(r.id), f"{r.score:g}", f"{r.max_score:g}", safecsv.text(r.error or "")])
    return buf.getvalue()


def cmd_check(args) -> int:
    if not args.file.exists():
        raise UsageError(f"{args.file}: no such file or folder")
    warm_sandbox(args)
    from . import load
    from .pipeline import safe_grade
    from .report import terminal

    from .sandbox import failed_as_recalled
    from .sandbox.base import lanes_for
    from .selection import SelectionError, select

    rubric = load_rubric_or_exit(args)
    try:
        checks = select(rubric.enabled(), args.only) if args.only else None
    except SelectionError as e:
        raise UsageError(f"--only: {e}") from None
    # A tier probe (when none is remembered) mostly waits for the worker started above:
    # read the submission meanwhile (on any surprise safe_grade reads it again and reports).
    opening = Background(open_sandbox_or_exit, args, True)
    try:
        loaded = load.load(args.file, args.file.stem, rubric.python2, rubric.prefer)
    except Exception:  # noqa: BLE001 - reported by safe_grade's own attempt
        loaded = None
    sandbox = opening.result()

    def grade():
        return safe_grade(args.file, args.file.stem, rubric, sandbox, checks, loaded, lanes_for(1))

    result = grade()
    if failed_as_recalled(sandbox, (result.meta.get("sandbox") or {}).get("status")):
        sandbox = open_sandbox_or_exit(args)  # the remembered tier no longer runs: probe, once
        result = grade()
    if args.json:
        print(result.dumps())
    else:
        terminal.print_result(result)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
