"""The weakest tier: a child process with rlimits, its own session, a scrubbed environment,
a wall-clock kill and capped output. No namespaces: the submission is *not isolated* from
the host's files or network, and every report says so.

The rlimits themselves are set by the harness before it loads any student code (it reads
them from plan.json), so this backend needs no preexec_fn and stays safe to call from
several grader threads at once.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from .base import Limits, OutputCap, RunOutcome

BLAS_ONE_THREAD = {
    "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1",
}


def scrubbed_env(home: Path) -> dict[str, str]:
    """Deny by default: nothing of the grader's environment (tokens, paths) goes in."""
    return {
        "PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
        "PYTHONFAULTHANDLER": "1", "MPLBACKEND": "Agg", **BLAS_ONE_THREAD,
    }


@functools.lru_cache(maxsize=1)
def numpy_libdir() -> str:
    """The folder holding the grader's numpy package (its site-packages), found without
    importing numpy (a pre-started sandbox worker needs it before the grader has numpy)."""
    spec = importlib.util.find_spec("numpy")
    return str(Path(spec.origin).resolve().parent.parent)


def harness_argv(python: str = sys.executable, libdirs: tuple[str, ...] = ()) -> list[str]:
    # -I: ignore PYTHON* variables and the user site; -S: no site-packages at all; the
    # harness puts each LIBDIR argument on sys.path itself; -B: no .pyc litter.
    return [python, "-I", "-S", "-B", "harness.py", "plan.json", *(libdirs or (numpy_libdir(),))]


class PlainSandbox:
    name = "plain"
    tier = "plain"
    isolated = False
    max_lanes = 1  # no PID namespace: a probe's strays cannot be told from another's
    protections = ("rlimits", "new-session", "wall-clock-kill", "scrubbed-env", "output-cap",
                   "not isolated")

    def run(self, box: Path, limits: Limits) -> RunOutcome:
        start = time.monotonic()
        proc = subprocess.Popen(
            harness_argv(), cwd=box, env=scrubbed_env(box), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            close_fds=True,
        )
        out, err = OutputCap(limits.output_kb * 1024), OutputCap(limits.output_kb * 1024)
        timed_out = pump(proc, {proc.stdout: out, proc.stderr: err}, start + limits.wall_s)
        kill_group(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        return outcome(
            proc.returncode, timed_out, time.monotonic() - start, usage, limits,
            out.text(), err.text(), tier=self.tier, protections=self.protections,
        )


def pump(proc, caps: dict, deadline: float, ended=None, tick=None, every: float = 0.5) -> bool:
    """Read both pipes into their caps until EOF or the deadline; True when it timed out.

    `ended()` says whether the process has exited (default: our own child, not reaped);
    `tick()`, called at least every `every` seconds, returns True to stop the run now."""
    ended = ended or (lambda: exited(proc.pid))
    tick = tick or (lambda: False)
    sel = selectors.DefaultSelector()
    for stream, cap in caps.items():
        os.set_blocking(stream.fileno(), False)
        sel.register(stream, selectors.EVENT_READ, cap)
    try:
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0 or tick():
                return True
            for key, _ in sel.select(timeout=min(left, every)):
                chunk = os.read(key.fileobj.fileno(), 65536)
                if chunk:
                    key.data.feed(chunk)
                else:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
        # Pipes closed: the harness is exiting; wait until the deadline for it to end, but
        # without reaping it (WNOWAIT) so the caller's wait4 still gets its rusage.
        while not ended():
            if time.monotonic() > deadline or tick():
                return True
            time.sleep(0.002)
        return False
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()


def exited(pid: int) -> bool:
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info is not None and info.si_pid == pid


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def outcome(code: int | None, timed_out: bool, wall: float, usage, limits: Limits, stdout: str,
            stderr: str, *, tier: str, protections: tuple[str, ...]) -> RunOutcome:
    """Classify how the harness process ended, in isolate's words (code None: it never
    reported, which only a timeout explains)."""
    sig = -code if code is not None and code < 0 else None
    if timed_out:
        status, msg = "timeout", f"stopped after the wall-clock limit of {limits.wall_s:g} s"
    elif sig == signal.SIGXCPU or (sig == signal.SIGKILL and usage.ru_utime + usage.ru_stime >= limits.cpu_s):
        status, msg = "timeout", f"stopped at the CPU-time limit of {limits.cpu_s:g} s"
    elif sig is not None:
        status, msg = "signal", f"killed by signal {signal.Signals(sig).name}"
    elif code != 0:
        status, msg = "error", f"the harness exited with code {code}"
    else:
        status, msg = "ok", ""
    return RunOutcome(
        status=status, exit_code=None if sig else code, signal=sig, wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime, max_rss_mb=usage.ru_maxrss / 1024,
        stdout=stdout, stderr=stderr, message=msg, tier=tier, protections=protections,
    )
