"""`grader.check()`: the student's self-check from Python, where the student works.

    import grader
    grader.check()                    # in Jupyter / VS Code: the code this kernel has run
    grader.check("hw2.ipynb")         # a saved file (a .py, .ipynb, .zip or folder)
    grader.check(only="linear")       # one layer's checks, and only the probes they need

The same pipeline, sandbox, checks, points and verdicts as `nngrader check`; the answer is
a Report that a notebook shows as feedback.html's compact twin and a terminal as
`nngrader check`'s text. With no path inside IPython it grades the kernel's input history
(cells in execution order, the last definition of a class winning), so an edit counts as
soon as its cell has run, saved or not.

The sandbox and its pre-started worker are kept for the life of the process (the kernel),
so a second call skips their start-up.
"""
from __future__ import annotations

import datetime as _dt
import os
import sys
import threading
from pathlib import Path
from typing import Iterable

from .result import Result

KERNEL_LABEL = "the code this kernel has run"
_sandboxes: dict = {}
_lock = threading.Lock()


class CheckError(ValueError):
    """grader.check() was called wrongly. One line; inside IPython, shown without a traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook for an exception's display
        return [f"nngrader: {self}"]


class Report:
    """What grader.check() returns: the result.json contract, readable three ways."""

    def __init__(self, result: Result):
        self.result = result

    @property
    def score(self) -> float:
        return self.result.score

    @property
    def max_score(self) -> float:
        return self.result.max_score

    @property
    def checks(self) -> list[dict]:
        """Each check as in result.json: id, status, score, max_score, message, hints, details."""
        return [c.to_json() for c in self.result.checks]

    @property
    def error(self) -> str | None:
        return self.result.error

    @property
    def passed(self) -> bool:
        return not self.result.error and all(c.status == "pass" for c in self.result.checks)

    def to_json(self) -> dict:
        return self.result.to_json()

    def __repr__(self) -> str:
        from .report import terminal
        return terminal.render(self.result, colour=False).rstrip("\n")

    __str__ = __repr__

    def _repr_html_(self) -> str:
        from .report import inline
        return inline.render(self.result)


def check(path: str | os.PathLike | None = None, only: str | Iterable[str] | None = None,
          rubric: str | os.PathLike | None = None, *, sandbox: str = "auto") -> Report:
    """Grade a submission as `nngrader check` does and return the report.

    path:    a .py, .ipynb, .zip or folder; None inside Jupyter/IPython grades the code
             the kernel has run.
    only:    check families or ids ("linear", ["relu", "loss.backward"], "linear,relu"):
             run only those checks; the score then covers them only.
    rubric:  a rubric TOML (default: the bundled one).
    sandbox: auto (default), strict, plain or docker, as `nngrader check --sandbox`.
    """
    warm(sandbox)
    from .pipeline import safe_grade
    from .sandbox.base import lanes_for
    from .selection import SelectionError, select

    rules = load_rubric(rubric)
    try:
        checks = select(rules.enabled(), only) if only is not None else None
    except SelectionError as e:
        raise CheckError(f"only={only!r}: {e}") from None
    box = open_box(sandbox)
    if path is None:
        shell = ipython_shell()
        if shell is None:
            raise CheckError("grader.check() with no path grades the code a Jupyter/IPython "
                             "kernel has run, and this is not one: pass your file, e.g. "
                             "grader.check('hw2.py'), or run `nngrader check hw2.py` in a shell")
        sub, what, kernel = from_kernel(shell)
        result = safe_grade(Path(KERNEL_LABEL), sub.id, rules, box, checks, loaded=sub,
                            lanes=lanes_for(1))
        return Report(result.with_meta(graded_what=what, kernel=kernel))
    p = Path(path).expanduser()
    if not p.exists():
        raise CheckError(f"{p}: no such file or folder")
    return Report(safe_grade(p, p.stem, rules, box, checks, lanes=lanes_for(1)))


# ---------------------------------------------------------------- the same sandbox as the CLI

def warm(name: str) -> None:
    """Start the sandbox's worker first, as `nngrader check` does (cli.warm_sandbox)."""
    if name in ("auto", "strict") and sys.platform == "linux":
        from .sandbox.embedded import POOL
        POOL.prestart(1)


def open_box(name: str):
    from .sandbox import SandboxUnavailable, open_sandbox

    with _lock:
        if name not in _sandboxes:
            try:
                _sandboxes[name] = open_sandbox(name)
            except SandboxUnavailable as e:
                raise CheckError(f"sandbox={name!r}: {e}") from None
        return _sandboxes[name]


def load_rubric(path):
    from .rubric import RubricError
    from .rubric import load_rubric as load

    try:
        return load(Path(path).expanduser() if path is not None else None)
    except RubricError as e:
        raise CheckError(str(e)) from None


# ---------------------------------------------------------------- the code a kernel ran

def ipython_shell():
    """The running IPython shell, or None; never imports IPython itself."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell if getattr(shell, "history_manager", None) is not None else None


def from_kernel(shell):
    """The kernel's input history as a Submission, a sentence saying so, and its facts."""
    from . import load, notebook

    inputs = [str(s) for s in shell.history_manager.input_hist_raw]
    history = notebook.history_source(inputs, KERNEL_LABEL)
    sid = notebook_name(shell)
    sources = {"kernel.py": history.text}
    sub = notebook.with_ipython_left_out(load.build(sid, Path(KERNEL_LABEL), sources), sources)
    at = _dt.datetime.now().strftime("%H:%M:%S")
    what = (f"graded the code this kernel has run: {history.cells} cells, In [{history.first}] "
            f"to In [{history.last}] (the last run), at {at}. Edits count once their cell has "
            "run; cells not run since the kernel started do not.")
    kernel = {"cells": history.cells, "first": history.first, "last": history.last, "graded_at": at}
    return sub, what, kernel


def notebook_name(shell) -> str:
    """The notebook's name when the front end tells the kernel (VS Code, Jupyter Server)."""
    for value in (shell.user_ns.get("__vsc_ipynb_file__"), os.environ.get("JPY_SESSION_NAME")):
        if isinstance(value, str) and value.strip():
            return Path(value).stem or "notebook"
    return "notebook"
