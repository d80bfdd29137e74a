"""Whether a submission's probes may run side by side (grader/harness/lanes.py).

Probes run side by side give the verdicts of probes run one by one as long as each probe
is one process that shares nothing with the other: no processes or threads of its own
(they would compete with the other lane, or signal it), no signals, no code reached by
name at run time, no files written (each probe has a working folder of its own, but the
submission's own folder, /tmp and absolute paths are shared). Homework code does none of
that, so it is read once, here, and anything that could is graded one probe at a time.

Only `check` runs probes side by side: `grade`, whose scores count, always runs them one
by one. A screen like this can be got past by code written to; what it then costs is that
code's own self-check agreeing with its grade (the harness also reruns every probe one by
one when it sees a process of the submission's own, lanes.py), never anyone else's.
"""
from __future__ import annotations

import ast
import re

from . import pyparse
from .load import KEPT, Submission, parse

# modules whose use means processes, threads, signals, raw memory or the network
MODULES = frozenset({"subprocess", "multiprocessing", "threading", "_thread", "concurrent",
                     "signal", "ctypes", "cffi", "pty", "socket", "asyncio", "sched", "mmap",
                     "resource", "fcntl", "selectors", "shutil", "tempfile", "importlib",
                     "runpy", "code", "joblib", "psutil"})
# names (functions, os attributes) that start, signal or regroup processes, or run code
# from strings
NAMES = frozenset({"fork", "forkpty", "kill", "killpg", "setsid", "setpgid", "setpgrp",
                   "system", "popen", "spawnl", "spawnle", "spawnlp", "spawnv", "spawnve",
                   "spawnvp", "posix_spawn", "posix_spawnp", "execv", "execve", "execl",
                   "execle", "execlp", "execvp", "execvpe", "pidfd_open", "pidfd_send_signal",
                   "__import__", "eval", "exec", "compile", "getattr", "setattr", "globals",
                   "vars", "__builtins__", "__dict__", "register_at_fork", "__getattribute__",
                   "modules", "ctypeslib", "sep", "dir", "attrgetter", "methodcaller",
                   "__class__", "__subclasses__", "__globals__", "__code__", "operator",
                   # writing files: state one probe leaves for another (next to __file__)
                   "save", "savez", "savez_compressed", "savetxt", "tofile", "dump",
                   "write_text", "write_bytes", "savefig", "mkdir", "makedirs", "remove",
                   "unlink", "rename", "rmtree", "touch", "truncate", "symlink", "link"})
WRITE_MODES = frozenset("wax+")
FIXED_PATH = re.compile(r"/[\w.~-]")  # "/tmp/x", "/proc": not a lone "/" in "/".join


def why_one_by_one(sub: Submission) -> str:
    """'' when the probes may run side by side, else what in the code rules it out."""
    for rel, source in sub.files.items():
        if not rel.endswith(".py"):
            continue
        try:
            tree = parse(source, KEPT)
        except SyntaxError:
            return f"{rel} does not parse here"
        found = first_use(tree)
        if found:
            return f"{rel} line {found[0]}: {found[1]}"
    return ""


def first_use(tree: ast.Module) -> tuple[int, str] | None:
    for node in pyparse.nodes(tree):
        if isinstance(node, ast.Import):
            hit = next((a.name for a in node.names if a.name.split(".")[0] in MODULES), None)
        elif isinstance(node, ast.ImportFrom):
            hit = node.module if (node.module or "").split(".")[0] in MODULES else next(
                (a.name for a in node.names if a.name in NAMES), None)
        elif isinstance(node, ast.Name):
            hit = node.id if node.id in NAMES else None
        elif isinstance(node, ast.Attribute):
            hit = node.attr if node.attr in NAMES else None
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            hit = node.value if FIXED_PATH.match(node.value) else None
        elif isinstance(node, ast.Call):
            hit = "open for writing" if opens_for_writing(node) else None
        else:
            hit = None
        if hit:
            return getattr(node, "lineno", 0), f"uses {hit[:40]}"
    return None


def opens_for_writing(call: ast.Call) -> bool:
    """open(path, "w"), Path.open("a"), os.open(...): a file written (a mode that is not a
    plain string counts as writing)."""
    fn = call.func
    name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
    if name != "open":
        return False
    if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name) and fn.value.id == "os":
        return True
    modes = [k.value for k in call.keywords if k.arg == "mode"]
    modes += call.args[1:2] if isinstance(fn, ast.Name) else call.args[:1]
    return any(not (isinstance(m, ast.Constant) and isinstance(m.value, str))
               or WRITE_MODES & set(m.value) for m in modes)
