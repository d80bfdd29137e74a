"""What every check shares: the context it reads, the verdict it returns, and the wording
of failures that happen before any value can be compared (timeouts, crashes, exceptions).

A check is a pure function: observations and reference values in, a Verdict out. No I/O,
no processes, no printing. judge.py runs the checks; score.py then adds points and hints
from the rubric, so a check never knows its own points.
"""
from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..compare import Mismatch
from ..load import Submission
from ..observe import ProbeRun, step


@dataclass(frozen=True)
class Verdict:
    status: str                     # pass | fail | error | timeout | skipped
    message: str
    details: dict = field(default_factory=dict)
    family: str | None = None       # a recognised mistake (keys of the rubric's [families])
    fraction: float | None = None   # partial credit in [0, 1] for a fail; None = 0

    @classmethod
    def passed(cls, message: str, **details) -> "Verdict":
        return cls("pass", message, details)


@dataclass(frozen=True)
class Context:
    submission: Submission
    roles: dict                     # role -> class name (or [sigmoid, crossentropy])
    probes: dict[str, ProbeRun]
    inputs: dict[str, dict]         # probe id -> the inputs the grader sent
    settings: Callable[[str], dict]  # check id -> its rubric table (threshold, ...)
    memory_mb: int = 0
    run_message: str = ""           # how the sandboxed run ended, when it ended badly
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        """A value some checks derive from others (the loss convention, which layer checks
        fail), computed once per submission however many checks ask for it."""
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]

    def who(self, role: str, method: str) -> str:
        name = self.roles.get(role)
        if isinstance(name, list):
            name = " + ".join(name)
        return f"{name}.{method}" if name else f"the {role} ({role} class not found)"


def probe_failure(ctx: Context, probe_id: str, who: str) -> Verdict | None:
    """The verdict when the probe itself did not finish, else None."""
    run = ctx.probes.get(probe_id)
    if run is None:
        return Verdict("error", f"{who} was not run: the sandbox returned no result for it "
                       f"({ctx.run_message})")
    if run.status == "timeout":
        return Verdict("timeout", f"{who} did not finish within {run.limit_s or 0:g} s "
                       "(an endless loop, or slow code run at import time?)",
                       {"elapsed_s": round(run.elapsed_s, 3)})
    if run.status == "crash":
        return Verdict("error", f"{who}: {crash_reason(run.exit_code, ctx.memory_mb)}",
                       {"exit_code": run.exit_code})
    if run.status == "error":
        return exception_verdict(ctx, run.error, who)
    return None


PYTHON2_NAMES = {"xrange": "range", "raw_input": "input", "unicode": "str",
                 "basestring": "str", "long": "int", "unichr": "chr", "cPickle": "pickle",
                 "reduce": "functools.reduce", "izip": "zip", "iteritems": ".items()"}


def crash_reason(code: int | None, memory_mb: int) -> str:
    """Why a probe's process ended without reporting, in words (code < 0: killed by -code)."""
    if code == -signal.SIGKILL:
        return (f"the process was killed, most likely for running out of memory "
                f"(limit {memory_mb} MB)")
    if code == -signal.SIGSEGV:
        return "the process crashed with a segmentation fault"
    if code is not None and code < 0:
        return f"the process was killed by signal {signal_name(-code)}"
    return f"the process crashed: it exited with code {code} before reporting (does the code call exit()?)"


def signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return str(num)


def step_failure(ctx: Context, run: ProbeRun, name: str, who: str) -> tuple[Any, Verdict | None]:
    ok, value, err = step(run.value, name)
    if ok:
        return value, None
    if err is None:
        return None, Verdict("skipped", f"{who} was not called: an earlier step failed")
    return None, exception_verdict(ctx, err, who)


def exception_verdict(ctx: Context, err: dict | None, who: str) -> Verdict:
    err = err or {"type": "Error", "message": "unknown failure", "frames": []}
    details = {"exception": err["type"], "exception_message": err["message"],
               "traceback": [f"{rename(ctx, f['file'])}" + (f" line {f['line']}" if f.get("line") is not None else "")
                             + f" in {f['function']}: {f['code']}" for f in err.get("frames", [])]}
    if err.get("probe_error"):
        return Verdict("error", f"{who}: {err['message']}", details)
    if err["type"] == "MemoryError":
        return Verdict("error", f"{who} ran out of memory (limit {ctx.memory_mb} MB)", details)
    if err["type"] == "NameError" and err.get("name"):
        name = err["name"]
        sub = ctx.submission
        if name in sub.script_globals:
            return Verdict("error", f"{who} reads the global `{name}`, which only your training "
                           "script defines (the grader leaves the script out): pass it in as an "
                           "argument or store it on the object", details, family="script_global")
        if name in sub.missing_modules:
            return Verdict("error", f"{who} uses {sub.missing_modules[name]}, which the grader "
                           "does not provide: only numpy and the standard library", details)
        if name in PYTHON2_NAMES:
            return Verdict("error", f"{who} uses `{name}`, which exists only in Python 2; the "
                           f"grader runs Python 3 (use {PYTHON2_NAMES[name]})", details)
    where = ""
    frames = err.get("frames") or []
    if frames:
        f = frames[-1]
        line = f" line {f['line']}" if f.get("line") is not None else ""
        where = f" at {rename(ctx, f['file'])}{line}" + (f" (`{f['code']}`)" if f["code"] else "")
    return Verdict("error", f"{who} raised {err['type']}: {err['message']}{where}", details)


def rename(ctx: Context, file: str) -> str:
    """The box calls a single-file submission submission.py; show the student's own name."""
    sub = ctx.submission
    if file == "submission.py" and sub.graded_file:
        return sub.graded_file
    return file


def mismatch_verdict(m: Mismatch, who: str, family: str | None = None,
                     suspected: str | None = None, fraction: float | None = None) -> Verdict:
    details = m.details()
    details["suspected"] = suspected
    msg = m.sentence(who)
    if suspected:
        msg = f"{suspected} — {msg}"
    return Verdict("fail", msg, details, family=family, fraction=fraction)


def as_array(value) -> np.ndarray | None:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, float):
        return np.asarray(value)
    return None
