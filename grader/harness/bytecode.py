"""The student's sources compiled to bytecode once per box, before any probe child exists.

Every probe child imports the student's module; without bytecode each one compiles the
same text again (~2-3 ms a child, six children a submission). The harness compiles it
once instead, in a child of its own: compiling runs none of the student's code, but the
compiler's time and memory on a hostile file are spent there, under a time limit, and never
in the process every probe is forked from.

What a probe child then sees is what it saw before:
- the bytecode is hash-checked (PEP 552): an import reads the source, and a file changed in
  the box is compiled afresh;
- a file whose compiling would show a warning (a SyntaxWarning: `x is 1`) gets none, so
  every probe still shows that warning;
- a file that does not compile gets none, and its import reports the error as always.
"""
import os
import py_compile
import select
import signal
import warnings

MAX_BYTES = 512 * 1024  # sources beyond this, in total, are left to each child's import
TIME_LIMIT_S = 3.0


def compile_student(src_dir, main_module=""):
    """Write bytecode for the .py files under src_dir (the main module's first), in a child
    given TIME_LIMIT_S; whatever it did not finish is compiled by each import, as before."""
    paths = sources(src_dir, main_module)
    if not paths:
        return
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return
    if pid == 0:
        os.close(r)
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            for path in paths:
                write_bytecode(path)
        finally:
            os._exit(0)  # (its end of the pipe closes with it: the harness's select returns)
    os.close(w)
    try:
        if not select.select([r], [], [], TIME_LIMIT_S)[0]:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(r)
        os.waitpid(pid, 0)


def sources(src_dir, main_module=""):
    """The .py files under src_dir, the main module's first, while they total MAX_BYTES."""
    found = []
    for folder, _, files in os.walk(src_dir):
        found += [os.path.join(folder, name) for name in sorted(files) if name.endswith(".py")]
    main = os.path.join(src_dir, *main_module.split(".")) + ".py" if main_module else ""
    found.sort(key=lambda p: p != main)
    chosen, total = [], 0
    for path in found:
        try:
            total += os.path.getsize(path)
        except OSError:
            continue
        if total > MAX_BYTES:
            break
        chosen.append(path)
    return chosen


def write_bytecode(path):
    """The hash-checked bytecode an import would write for this file (in __pycache__), unless
    compiling it fails or shows a warning under the filters the probe children start with."""
    try:
        with warnings.catch_warnings(record=True) as shown:
            written = py_compile.compile(path, doraise=True,
                                         invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
        if shown:
            os.unlink(written)  # (no probe runs yet: none can have read it)
    except Exception:  # noqa: BLE001 - a syntax error, a read-only box: the import compiles
        return
