"""Progress of a batch grading run, on stderr.

On a terminal: a bar (rich) with done/total, counts of passed, failed and errored
submissions, and an ETA. Anywhere else (a pipe, a CI log, a file): one plain line per
submission, so logs stay greppable and free of control codes. rich is imported only when
a bar is actually drawn, which keeps `nngrader check` and the self-check fast to start.

A submission counts as passed when every check passed, errored when the grader could not
grade it (result.error set), and failed otherwise.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO


def outcome(result) -> str:
    """'passed', 'failed' or 'errored' for one Result."""
    if getattr(result, "error", None):
        return "errored"
    checks = getattr(result, "checks", ()) or ()
    return "passed" if checks and all(c.status == "pass" for c in checks) else "failed"


def _eta(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


class Progress:
    """`Progress(total)`, then `.update(result)` per graded submission, then `.close()`."""

    def __init__(self, total: int, stream: TextIO = sys.stderr):
        self.total, self.stream = total, stream
        self.done = 0
        self.counts = {"passed": 0, "failed": 0, "errored": 0}
        self.start = time.monotonic()
        self._bar = self._task = None
        self._closed = False
        if _is_terminal(stream):
            self._open_bar()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _open_bar(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn
        counts = TextColumn("[green]{task.fields[passed]} passed[/] · [red]{task.fields[failed]} failed[/]"
                            " · [yellow]{task.fields[errored]} errored[/]")
        self._bar = Bar(TextColumn("grading"), BarColumn(), MofNCompleteColumn(), counts,
                        TextColumn("ETA"), TimeRemainingColumn(),
                        console=Console(file=self.stream), transient=False)
        self._task = self._bar.add_task("grading", total=self.total, **self.counts)
        self._bar.start()

    def eta_s(self) -> float | None:
        if not self.done or self.done >= self.total:
            return None
        return (time.monotonic() - self.start) / self.done * (self.total - self.done)

    def update(self, result) -> None:
        """Count one finished submission and redraw (or log one line)."""
        self.done += 1
        kind = outcome(result)
        self.counts[kind] += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1, **self.counts)
            return
        score = "" if kind == "errored" else \
            f" {getattr(result, 'score', 0):g}/{getattr(result, 'max_score', 0):g}"
        eta = self.eta_s()
        self.stream.write(f"[{self.done}/{self.total}] {getattr(result, 'id', '?')}: {kind}{score}"
                          f"{f', ETA {_eta(eta)}' if eta is not None else ''}\n")
        self.stream.flush()

    def close(self) -> None:
        """Stop the bar and print one summary line (once)."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elapsed = time.monotonic() - self.start
        c = self.counts
        self.stream.write(f"Graded {self.done} of {self.total} in {_eta(elapsed)}: {c['passed']} passed, "
                          f"{c['failed']} failed, {c['errored']} errored.\n")
        self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
