"""Load: turn what a student handed in into a frozen Submission, never running its code.

A submission is a .py file, an .ipynb notebook, a .zip or a folder. Loading reads the
source (notebook code cells in order, read as IPython reads them), keeps only
the definitions (imports, classes, functions, constants) and blanks out the training
script, so nothing runs at import time. Anything that stops grading becomes `problem`, one
sentence a student understands, instead of an exception.
"""
from __future__ import annotations

import ast
import functools
import fnmatch
import io
import os
import re
import sys
import tempfile
import threading
import tokenize
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from .downloads import one_per_participant
from . import pyparse

SUFFIXES = (".py", ".ipynb", ".zip")
DEFAULT_PREFER = ("*.py", "*.ipynb")   # which file is graded when several could be
ALLOWED_MODULES = frozenset(sys.stdlib_module_names) | {"numpy", "__future__"}
MAX_SOURCE_BYTES = 2 * 1024 * 1024
MAX_ZIP_BYTES = 32 * 1024 * 1024
MAX_ZIP_FILES = 500


@dataclass(frozen=True)
class ClassInfo:
    name: str
    line: int
    methods: tuple[str, ...]
    init_params: tuple[str, ...]
    bases: tuple[str, ...]
    names_used: frozenset[str]   # every identifier its methods mention (for separation checks)
    source_file: str
    stubs: tuple[str, ...] = ()  # forward/backward methods that do nothing yet


@dataclass(frozen=True)
class Submission:
    id: str
    path: Path                               # what the instructor or student gave us
    graded_file: str | None = None           # the file that defines the layers
    files: dict = field(default_factory=dict)  # relative path -> definitions-only source
    module: str | None = None                # import name of graded_file inside the box
    classes: tuple[ClassInfo, ...] = ()
    left_out: tuple[dict, ...] = ()          # [{"file", "lines", "what"}]
    script_globals: dict = field(default_factory=dict)  # name -> [functions reading it]
    notes: tuple[str, ...] = ()
    problem: str | None = None               # why it cannot be graded at all
    choice: dict = field(default_factory=dict)  # {"graded", "not_graded", "why"} when several files could be it
    missing_modules: dict = field(default_factory=dict)  # bound name -> "torch (line 3 ...)"
    python2: bool = False                    # converted from Python 2 before grading
    resets_gradients: bool = False           # its own code calls a zero_grad()-like method

    @classmethod
    def unreadable(cls, sid: str, path: Path, problem: str) -> "Submission":
        return cls(id=sid, path=path, problem=problem)


# ---------------------------------------------------------------- finding submissions

def discover(folder: Path) -> tuple[list[Path], list[str]]:
    """The submissions in a folder, sorted, and a note for each entry that is not one."""
    found, skipped = [], []
    for entry in sorted(Path(folder).iterdir()):
        if entry.name.startswith((".", "__")):
            continue
        if entry.is_dir() or entry.suffix.lower() in SUFFIXES:
            found.append(entry)
        else:
            skipped.append(f"{entry}: skipped, not a .py, .ipynb, .zip or folder")
    # Moodle's "download in folders" gives one folder per submission plugin; a participant's
    # file and online-text folders are one submission, graded from the file one.
    found, merged = one_per_participant(found, lambda p: [p.name])
    for dropped, kept in merged:
        skipped.append(f"{dropped}: skipped, the same Moodle participant's file submission "
                       f"{kept.name} is graded instead")
    return found, skipped


def submission_ids(paths: list[Path]) -> dict[Path, str]:
    """Id = file stem or folder name; a clash (alice.py, alice.ipynb) keeps the suffix."""
    stems: dict[str, int] = {}
    for p in paths:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    return {p: (p.stem if stems[p.stem] == 1 else p.name.replace(".", "_")) for p in paths}


# ---------------------------------------------------------------- reading sources

def load(path: Path, sid: str | None = None, python2: str = "convert",
         prefer: tuple[str, ...] = DEFAULT_PREFER) -> Submission:
    """python2: "convert" (fissix turns Python 2 into Python 3) or "refuse" (only when the
    Python 2 lines are all in script code the grader leaves out anyway). `prefer`: file-name
    patterns (the rubric's [submission] prefer), best first, that choose the file to grade
    when several could be the submission (hw2.py and hw2.ipynb)."""
    path = Path(path)
    sid = sid or path.stem
    origins: dict[str, str] = {}
    try:
        sources = read_sources(path, origins)
    except LoadProblem as e:
        return Submission.unreadable(sid, path, str(e))
    sub = build(sid, path, sources, python2, origins=origins, prefer=prefer)
    if all(type(text) is str for text in sources.values()):
        return sub  # no notebook among them (a notebook's code is a NotebookText)
    from .notebook import with_ipython_left_out
    return with_ipython_left_out(sub, sources)


class LoadProblem(Exception):
    pass


def read_sources(path: Path, origins: dict | None = None) -> dict[str, str]:
    """relative name -> Python source, for a file, notebook, zip or folder; `origins` gets
    the file each name was read from where they differ (a notebook's code as hw2.py)."""
    origins = {} if origins is None else origins
    if not path.exists():
        raise LoadProblem(f"{path.name}: no such file or folder")
    if path.is_dir():
        return read_tree(path, path.name, origins)
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return read_zip(path, origins)
    if suffix == ".ipynb":
        return {path.stem + ".py": notebook_source(read_bytes(path), path.name)}
    return {path.name: decode(read_bytes(path), path.name)}


def read_bytes(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_SOURCE_BYTES:
        raise LoadProblem(f"{path.name} is {size // 1024} KB; a submission file must be under "
                          f"{MAX_SOURCE_BYTES // 1024 // 1024} MB")
    return path.read_bytes()


def decode(data: bytes, name: str) -> str:
    if not data.strip():
        raise LoadProblem(f"{name} is empty: there is no code to grade")
    if b"\x00" in data:
        raise LoadProblem(f"{name} is a binary file, not Python source")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        raise LoadProblem(f"{name} is not UTF-8 text (a binary file, or saved in another "
                          f"encoding): save it as UTF-8") from None


def notebook_source(data: bytes, name: str) -> str:
    """Code cells in order as one module, read as IPython reads them (grader/notebook.py):
    lines of shell and magic commands left out (blank, so line numbers still point into
    the cell); a comment marks where each cell starts."""
    import nbformat

    from . import notebook

    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as e:  # nbformat raises several unrelated types for a bad file
        raise LoadProblem(f"{name} is not a readable notebook ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:120]})") from None
    cells = [notebook.Cell(f"notebook cell {n}", cell.get("source", ""))
             for n, cell in enumerate(nb.cells, 1) if cell.get("cell_type") == "code"]
    text = notebook.assemble(cells, name)
    if not any(line.strip() and not line.startswith("# --- notebook cell") for line in text.splitlines()):
        raise LoadProblem(f"{name} has no code cells")
    return text


def tree_files(folder: Path) -> list[Path]:
    """The regular files of a submission folder, sorted. Symbolic links are never followed
    (a link to /etc/passwd or to another student's file must not become part of this
    one), nor hidden, __MACOSX and __pycache__ entries."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__MACOSX", "__pycache__"))]
        for name in files:
            p = Path(root, name)
            if not name.startswith(".") and not p.is_symlink() and p.is_file():
                found.append(p)
    return sorted(found)


def read_tree(folder: Path, label: str, origins: dict | None = None) -> dict[str, str]:
    origins = {} if origins is None else origins
    sources = {}
    files = tree_files(folder)
    names = {p.relative_to(folder).as_posix() for p in files}
    for p in files:
        rel = p.relative_to(folder)
        if p.suffix == ".py":
            try:
                sources[rel.as_posix()] = decode(read_bytes(p), rel.as_posix())
            except LoadProblem:
                continue  # an empty __init__.py or a stray binary is no reason to stop
        elif p.suffix == ".ipynb":
            # hw2.ipynb next to hw2.py: both kept (under another module name), so the
            # rubric's preference decides which is graded instead of the file order
            key = rel.with_suffix(".py").as_posix()
            if key in names:
                key = rel.with_name(rel.stem + "_ipynb.py").as_posix()
            sources[key] = notebook_source(read_bytes(p), rel.as_posix())
            origins[key] = rel.as_posix()
    if not sources:
        raise LoadProblem(f"{label} holds no .py or .ipynb file")
    return sources


def read_zip(path: Path, origins: dict | None = None) -> dict[str, str]:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            if len(infos) > MAX_ZIP_FILES or sum(i.file_size for i in infos) > MAX_ZIP_BYTES:
                raise LoadProblem(f"{path.name} is too large once unpacked")
            with tempfile.TemporaryDirectory(prefix="nngrader-zip-") as tmp:
                for info in infos:
                    target = Path(tmp, info.filename).resolve()
                    if not target.is_relative_to(Path(tmp).resolve()):
                        continue  # a path that climbs out of the folder: ignore it
                    if Path(info.filename).suffix not in (".py", ".ipynb"):
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(zf.read(info))
                return read_tree(Path(tmp), path.name, origins)
    except zipfile.BadZipFile:
        raise LoadProblem(f"{path.name} is not a valid zip archive") from None


# ---------------------------------------------------------------- keeping definitions

PY2_MARKERS = [
    (re.compile(r"^\s*print\s+[^\s(=]"), "a print statement"),
    (re.compile(r"^\s*print\s*$"), "a print statement"),
    (re.compile(r"^\s*except\s+[\w.]+\s*,\s*\w+\s*:"), "'except X, e:'"),
    (re.compile(r"^\s*exec\s+[\"']"), "an exec statement"),
    (re.compile(r"\bur?[\"'].*`|`[^`]+`"), "backquotes"),
    (re.compile(r"<>"), "the <> operator"),
    (re.compile(r"^\s*raise\s+\w+\s*,"), "'raise E, msg'"),
]


def syntax_problem(name: str, source: str, err: SyntaxError) -> str:
    lines = source.splitlines()
    for i, line in enumerate(lines, 1):
        for rx, what in PY2_MARKERS:
            if rx.search(line) and not line.lstrip().startswith("#"):
                return (f"{name} is written in Python 2 ({what} on line {i}: "
                        f"`{line.strip()[:60]}`); the grader runs Python 3. Convert it "
                        f"(print(...), range, pickle) and submit again")
    where = f"line {err.lineno}" if err.lineno else "somewhere"
    text = (err.text or "").strip()
    return (f"{name} has a syntax error on {where}: {err.msg}"
            + (f" (`{text[:60]}`)" if text else "") + "; Python cannot read the file")


# a call of a gradient reset anywhere in the student's code (a training loop, a step method):
# the grader's own loop then resets the gradients before each backward too, as theirs does
RESET_CALL = re.compile(r"\.(zero_grads?|reset_grads?|clear_grads?|zero_gradients)\s*\(")


PY2_NAMES = {"xrange", "unicode", "raw_input", "basestring", "unichr", "cPickle", "execfile"}
PY2_METHODS = {"iteritems", "itervalues", "iterkeys", "has_key"}
# fixers that add an import line: without them every line keeps its number
LINE_ADDING_FIXERS = {"fissix.fixes.fix_reduce", "fissix.fixes.fix_intern",
                      "fissix.fixes.fix_exitfunc", "fissix.fixes.fix_operator"}


def uses_python2_names(tree: ast.Module) -> bool:
    """Python 3 syntax that still calls Python 2 (`from __future__ import print_function`
    with xrange, iteritems, cPickle): it runs only once converted."""
    for n in pyparse.nodes(tree):
        if isinstance(n, ast.Name) and n.id in PY2_NAMES and isinstance(n.ctx, ast.Load) \
                or isinstance(n, ast.Attribute) and n.attr in PY2_METHODS \
                or isinstance(n, ast.Import) and any(a.name == "cPickle" for a in n.names):
            return True
    return False


def from_python2(source: str, name: str) -> str | None:
    """Python 2 source converted by fissix (lib2to3's maintained fork) with its default
    fixers but those that add an import line, or None when even Python 2's grammar cannot
    read it. Lines keep their numbers, so tracebacks still point at the student's own."""
    tool, lock = python2_tool()
    try:
        with lock:  # a tool keeps per-run state: one conversion at a time
            return str(tool.refactor_string(source if source.endswith("\n") else source + "\n", name))
    except Exception:  # fissix raises its own ParseError and tokenizer errors
        return None


@functools.lru_cache(maxsize=1)
def python2_tool():
    """fissix's RefactoringTool, built once per process (its ~50 fixers compile their
    patterns: ~0.1 s, several times the conversion itself), and the lock that guards it."""
    from fissix import refactor  # imported only for the rare Python 2 file

    fixers = [f for f in refactor.get_fixers_from_package("fissix.fixes") if f not in LINE_ADDING_FIXERS]
    return refactor.RefactoringTool(fixers), threading.Lock()


def parse_or_none(source: str | None, name: str) -> ast.Module | None:
    if source is None:
        return None
    try:
        return pyparse.parse(source, name)
    except SyntaxError:
        return None


def changed_lines(before: str, after: str) -> int:
    return sum(1 for a, b in zip(before.splitlines(), after.splitlines()) if a != b)


def only_in_script(before: str, after: str, tree: ast.Module) -> bool:
    """Whether every line the conversion changed lies in code the grader leaves out (the
    training script, a __main__ block): such a file is graded even where Python 2 is refused."""
    dropped = set()
    for node in tree.body:
        if not is_definition(node):
            dropped.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    changed = {i for i, (a, b) in enumerate(zip(before.splitlines(), after.splitlines()), 1) if a != b}
    return changed <= dropped


def is_main_guard(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If):
        return False
    t = node.test
    return (isinstance(t, ast.Compare) and isinstance(t.left, ast.Name) and t.left.id == "__name__")


SAFE_CALL_ROOTS = {"np", "numpy", "math"}
IO_CALLS = re.compile(r"(load|save|read|open|fromfile|genfromtxt|loadtxt|show|plot|input)", re.I)


def is_definition(node: ast.stmt) -> bool:
    """Imports, classes, functions, and constants whose value runs nothing of the script."""
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return True  # a docstring or a bare string
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        return is_constant_expr(node.value)
    if isinstance(node, ast.Try):  # import shims: try: xrange / except NameError: xrange = range
        return all(is_definition(n) or is_name_probe(n) for n in node.body) and all(
            is_definition(n) or isinstance(n, ast.Pass) for h in node.handlers for n in h.body)
    if isinstance(node, ast.If) and not is_main_guard(node):
        return all(is_definition(n) for n in node.body + node.orelse)
    return False


def is_name_probe(node: ast.stmt) -> bool:
    """`xrange` or `np.logaddexp` alone on a line: a probe for a name, runs nothing."""
    return isinstance(node, ast.Expr) and isinstance(node.value, (ast.Name, ast.Attribute))


BUILTINS = frozenset(dir(__import__("builtins"))) | {"__name__", "__file__", "__doc__"}


def reads_only(node: ast.stmt, bound: set[str]) -> bool:
    """A constant may only read names kept before it (`x = data['train'] / 255` reads the
    script's `data`, so it is script code). Definitions with bodies are checked at run time."""
    if not isinstance(node, (ast.Assign, ast.AnnAssign, ast.If, ast.Try)):
        return True
    if isinstance(node, (ast.If, ast.Try)):
        return True
    reads = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    inner = {a.arg for n in ast.walk(node.value) if isinstance(n, ast.Lambda) for a in ast.walk(n.args) if isinstance(a, ast.arg)}
    inner |= {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return reads - inner <= bound


def is_constant_expr(expr: ast.expr) -> bool:
    for sub in ast.walk(expr):
        if isinstance(sub, ast.Call):
            root = sub.func
            while isinstance(root, ast.Attribute):
                root = root.value
            name = ast.unparse(sub.func)
            if not (isinstance(root, ast.Name) and root.id in SAFE_CALL_ROOTS) or IO_CALLS.search(name):
                return False
        elif isinstance(sub, (ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)):
            return False
    return True


def keep_definitions(source: str, tree: ast.Module, fname: str) -> tuple[str, list[dict]]:
    """Blank the lines of every top-level statement that is not a definition.

    Blanking (rather than regenerating code) keeps line numbers, so a traceback points at
    the student's own line.
    """
    lines = source.splitlines()
    left_out = []
    kept_lines = set()
    dropped = []
    bound = set(BUILTINS)
    for node in tree.body:
        span = range(node.lineno, (node.end_lineno or node.lineno) + 1)
        if is_definition(node) and reads_only(node, bound):
            kept_lines.update(span)
            bound |= bound_names(ast.Module(body=[node], type_ignores=[]))
        else:
            dropped.append(node)
    for node in dropped:
        start, end = node.lineno, node.end_lineno or node.lineno
        if kept_lines.intersection(range(start, end + 1)):
            continue  # shares a line with a definition (`x = 1; train()`): rare, leave it
        for i in range(start - 1, end):
            lines[i] = ""
        what = "code under `if __name__ == '__main__':`" if is_main_guard(node) else "script code"
        left_out.append({"file": fname, "start": start, "end": end, "what": what})
    return "\n".join(lines) + "\n", merge_ranges(left_out)


def merge_ranges(items: list[dict]) -> list[dict]:
    merged: list[dict] = []
    for it in items:
        if merged and merged[-1]["what"] == it["what"] and merged[-1]["end"] >= it["start"] - 3:
            merged[-1]["end"] = it["end"]
        else:
            merged.append(dict(it))
    for m in merged:
        m["lines"] = f"{m['start']}-{m['end']}" if m["end"] > m["start"] else str(m["start"])
    return merged


# ---------------------------------------------------------------- static facts

from .harness import names as method_names  # noqa: E402 - the harness's own method lists

LAYER_METHODS = frozenset(method_names.LOSS_FORWARD + method_names.LOSS_BACKWARD)

KEPT = "<kept definitions>"  # the name the code sent to the box is parsed under


def parse(source: str, name: str) -> ast.Module:
    """ast.parse, remembered per source for the passes loading, judging and the
    similarity report make over it (the trees are only read, never changed)."""
    return pyparse.parse(source, name)


def class_infos(tree: ast.Module, fname: str) -> list[ClassInfo]:
    """One ClassInfo per class name: the last definition, as Python binds it (a notebook
    may redefine a class in a later cell)."""
    key = (id(tree), fname)
    if key in CLASS_INFOS and CLASS_INFOS[key][0] is tree:
        return list(CLASS_INFOS[key][1])
    infos = class_infos_of(tree, fname)
    CLASS_INFOS[key] = (tree, infos)
    if len(CLASS_INFOS) > 64:
        CLASS_INFOS.pop(next(iter(CLASS_INFOS)))
    return list(infos)


CLASS_INFOS: dict = {}  # (id(tree), file) -> (tree, infos): the tree kept, so ids stay its


def class_infos_of(tree: ast.Module, fname: str) -> list[ClassInfo]:
    last = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    out = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef) or last[node.name] is not node:
            continue
        methods = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        init = next((m for m in methods if m.name == "__init__"), None)
        params = tuple(a.arg for a in init.args.args[1:]) if init else ()
        used = {n.id if isinstance(n, ast.Name) else n.attr for m in methods for n in pyparse.nodes(m)
                if isinstance(n, (ast.Name, ast.Attribute))}
        out.append(ClassInfo(
            name=node.name, line=node.lineno, methods=tuple(m.name for m in methods),
            init_params=params, bases=tuple(ast.unparse(b) for b in node.bases),
            names_used=frozenset(used), source_file=fname,
            stubs=tuple(m.name for m in methods if m.name in LAYER_METHODS and is_stub(m)),
        ))
    return with_inherited(out)


def with_inherited(infos: list[ClassInfo]) -> list[ClassInfo]:
    """Each class with what it inherits from the submission's own classes (a Torch-style
    Linear(Module) gets Module's forward and backward): methods, constructor parameters
    when it has no __init__ of its own, names used, and inherited stubs it does not override."""
    by_name = {c.name: c for c in infos}

    def ancestors(c, seen=()):
        for base in c.bases:
            parent = by_name.get(base.split(".")[-1])
            if parent is not None and parent.name not in seen and parent is not c:
                yield parent
                yield from ancestors(parent, seen + (c.name,))

    out = []
    for c in infos:
        parents = list(ancestors(c))
        if not parents:
            out.append(c)
            continue
        methods = list(c.methods)
        stubs = list(c.stubs)
        params = c.init_params if "__init__" in c.methods else ()
        for p in parents:
            stubs += [m for m in p.stubs if m not in methods]
            methods += [m for m in p.methods if m not in methods]
            if not params and "__init__" not in c.methods and "__init__" in p.methods:
                params = p.init_params
        out.append(replace(c, methods=tuple(methods), stubs=tuple(dict.fromkeys(stubs)),
                           init_params=params or c.init_params,
                           names_used=c.names_used.union(*(p.names_used for p in parents))))
    return out


def is_stub(fn: ast.FunctionDef) -> bool:
    """A method that does nothing yet: a docstring, pass, prints, storing its arguments,
    and returning None or one of its arguments unchanged."""
    params = {a.arg for a in fn.args.args + fn.args.kwonlyargs}
    plain = lambda v: v is None or isinstance(v, ast.Constant) or isinstance(v, ast.Name) and v.id in params  # noqa: E731
    for n in fn.body:
        if isinstance(n, ast.Pass) or isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant):
            continue
        if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) and getattr(n.value.func, "id", "") == "print":
            continue
        if isinstance(n, ast.Return) and plain(n.value):
            continue
        if isinstance(n, ast.Assign) and plain(n.value) and all(
                isinstance(t, ast.Attribute) and getattr(t.value, "id", "") == "self" for t in n.targets):
            continue
        if isinstance(n, ast.Raise) and "NotImplemented" in ast.unparse(n):
            continue
        return False
    return True


def bound_names(tree: ast.Module) -> set[str]:
    """Names the kept module binds at top level."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            names.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    return names


def function_free_names(tree: ast.Module) -> dict[str, set[str]]:
    """For each top-level function and method: the global names it reads."""
    out = {}
    for node in tree.body:
        funcs = [(node.name, node)] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else []
        if isinstance(node, ast.ClassDef):
            funcs = [(f"{node.name}.{m.name}", m) for m in node.body
                     if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for qual, fn in funcs:
            local, reads = set(), set()
            for n in pyparse.nodes(fn):  # one pass: parameters, names bound, names read
                if isinstance(n, ast.arg):
                    local.add(n.arg)
                elif isinstance(n, ast.Name):
                    (reads if isinstance(n.ctx, ast.Load) else local).add(n.id)
                elif isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n is not fn:
                    local.add(n.name)
            out[qual] = reads - local
    return out


def import_roots(tree: ast.Module) -> dict[str, tuple[str, int]]:
    """bound name -> (top-level module, line) for every top-level import."""
    roots = {}
    for node in pyparse.nodes(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                roots[(a.asname or a.name).split(".")[0]] = (a.name.split(".")[0], node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                roots[a.asname or a.name] = (node.module.split(".")[0], node.lineno)
    return roots


# ---------------------------------------------------------------- putting it together

def choose(sources: dict[str, str], origins: dict[str, str],
           prefer: tuple[str, ...]) -> tuple[dict[str, str], dict]:
    """When several files could each be the whole submission (each defines a linear layer,
    a ReLU and a loss: hw2.py and hw2.ipynb, or hw2.py and hw2_old.py), keep the one the
    rubric's `prefer` patterns rank first (then the most layer-like, then by name) and drop
    the others, so roles are never taken from a file that is not graded. Returns the
    sources and meta's `choice` ({} when there was nothing to choose)."""
    from .roles import has_pass_methods, match_roles

    complete = {}
    for name, src in sources.items():
        try:
            classes = class_infos(parse(src, name), name)
        except SyntaxError:
            continue
        roles = match_roles(classes)
        if roles.get("linear") and roles.get("relu") and roles.get("loss"):
            complete[name] = 10 * sum(map(has_pass_methods, classes)) + sum(map(bool, roles.values()))
    if len(complete) < 2:
        return sources, {}

    def rank(name: str) -> tuple:
        shown = origins.get(name, name)
        hit = next((i for i, pat in enumerate(prefer)
                    if fnmatch.fnmatch(shown, pat) or fnmatch.fnmatch(PurePosixPath(shown).name, pat)),
                   len(prefer))
        stubs = sum(len(c.stubs) for c in class_infos(parse(sources[name], name), name))
        return hit, stubs, -complete[name], shown  # a skeleton of stubs after the solution

    order = sorted(complete, key=rank)
    best, rest = order[0], order[1:]
    pattern = rank(best)[0]
    if pattern < len(prefer) and any(rank(n)[0] > pattern for n in rest):
        why = f"the course grades {prefer[pattern]} files first"
    elif any(rank(n)[1] > rank(best)[1] for n in rest):
        why = "the others' layer methods are still stubs (they do nothing)"
    elif any(rank(n)[2] > rank(best)[2] for n in rest):
        why = "it defines the most layer classes"
    else:
        why = "it comes first by name"
    choice = {"graded": origins.get(best, best), "not_graded": [origins.get(n, n) for n in rest],
              "why": why}
    return {n: src for n, src in sources.items() if n not in rest}, choice


def build(sid: str, path: Path, sources: dict[str, str], python2: str = "convert", *,
          origins: dict | None = None, prefer: tuple[str, ...] = DEFAULT_PREFER) -> Submission:
    origins = origins or {}
    sources, choice = choose(sources, origins, prefer)
    original = None
    if len(sources) == 1:
        # One file becomes module `submission` in the box: the student's own name could be
        # no identifier ("hw2 final.py") or shadow a module ("random.py").
        (name, src), = sources.items()
        sources = {"submission.py": src}
        # Shown as the student named it: the file itself, or its path inside a zip/folder.
        original = origins.get(name, name) if path.is_dir() or path.suffix.lower() == ".zip" else path.name
    shown = (lambda n: original if n == "submission.py" and original else origins.get(n, n))
    parsed, problems, converted = {}, [], []
    for name, src in list(sources.items()):
        try:
            parsed[name] = parse(src, name)
            if python2 == "convert" and uses_python2_names(parsed[name]):
                raise SyntaxError("Python 2 names", (name, 1, 0, ""))  # convert it as well
        except SyntaxError as e:
            py3 = from_python2(src, name)
            tree = parse_or_none(py3, name)
            if tree is None or python2 == "refuse" and not only_in_script(src, py3, tree):
                problems.append(syntax_problem(shown(name), src, e))
                continue
            sources[name], parsed[name] = py3, tree
            converted.append(f"{shown(name)} is Python 2: nngrader converted it to Python 3 before "
                             f"grading ({changed_lines(src, py3)} lines changed: print statements, "
                             "xrange, iteritems, cPickle and the like)")
    local_modules = {Path(n).with_suffix("").as_posix().replace("/", ".") for n in sources}
    local_modules |= {m.split(".")[0] for m in local_modules}
    from .roles import rank_files  # static role matching, grader side

    main = rank_files({n: class_infos(t, n) for n, t in parsed.items()})
    if main is None:
        if problems:
            return Submission.unreadable(sid, path, problems[0])
        return Submission.unreadable(sid, path, f"{path.name} defines no layer classes "
                                     "(no class with forward and backward methods)")
    files, left_out, notes, script_globals, missing = {}, [], [], {}, {}
    for name, tree in parsed.items():
        kept, dropped = keep_definitions(sources[name], tree, name)
        kept, absent, stood_in = drop_unavailable_imports(kept, local_modules)
        for module, line in stood_in:
            notes.append(f"{shown(name)} line {line}: {module} is not available in the grader; "
                         "numpy equivalents of its functions stand in")
        for bound, (module, line) in absent.items():
            missing[bound] = f"{module} (imported on line {line} of {shown(name)})"
            notes.append(f"{shown(name)} line {line}: import of {module} left out: the grader "
                         "provides only numpy and the Python standard library")
        files[name] = kept
        left_out.extend({**d, "file": shown(d["file"])} for d in dropped)
        script_globals.update(globals_from_script(tree, parse(kept, KEPT)))
    notes[:0] = converted
    if problems:
        notes.extend(problems)
    if left_out:
        notes.append("script code was left out (it is not run by the grader): " + ", ".join(
            f"{d['file']} lines {d['lines']}" for d in left_out))
    return Submission(
        id=sid, path=path, graded_file=shown(main), files=files,
        module=Path(main).with_suffix("").as_posix().replace("/", "."),
        classes=tuple(with_inherited([c for n, t in parsed.items() for c in class_infos(t, n)])),
        python2=bool(converted),
        resets_gradients=any(RESET_CALL.search(src) for src in sources.values()),
        left_out=tuple(left_out), script_globals=script_globals, notes=tuple(notes),
        missing_modules=missing, choice=choice,
    )


def drop_unavailable_imports(source: str, local_modules: set[str]) -> tuple[str, dict, list]:
    """Replace imports of packages the box lacks (torch, matplotlib, ...) with `pass`.

    A plotting import used only by the training script then costs nothing; a method that
    really uses the package fails on its own with a NameError the judge explains, and the
    other checks still run (partial credit rather than a zero for the whole file).
    """
    tree = parse(source, KEPT)
    lines = source.splitlines()
    absent, stood_in = {}, []
    guarded = guarded_imports(tree)
    for node in pyparse.nodes(tree):
        if id(node) in guarded:
            continue  # try: import scipy / except ImportError: a fallback: let it fall back
        if isinstance(node, ast.Import):
            mods = [(a.asname or a.name.split(".")[0], a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods = [(a.asname or a.name, node.module.split(".")[0]) for a in node.names]
        else:
            continue
        bad = [(b, m) for b, m in mods if m not in ALLOWED_MODULES and m not in local_modules]
        if not bad:
            continue
        first = lines[node.lineno - 1]
        indent = first[: len(first) - len(first.lstrip())]
        stand_in = stand_ins(node)
        if stand_in:  # from scipy.special import expit: a numpy equivalent takes its place
            lines[node.lineno - 1] = indent + stand_in
            stood_in.append((node.module, node.lineno))
        else:
            for bound, module in bad:
                absent[bound] = (module, node.lineno)
            lines[node.lineno - 1] = indent + "pass"
        for i in range(node.lineno, node.end_lineno or node.lineno):
            lines[i] = ""
    return "\n".join(lines) + "\n", absent, stood_in


# scipy functions students use for the sigmoid, as numpy one-liners (the box has numpy
# only): the maths stays the student's own, as with scipy itself
STAND_INS = {
    ("scipy.special", "expit"): "lambda z: __import__('numpy').exp(-__import__('numpy').logaddexp(0.0, -__import__('numpy').asarray(z, dtype=float)))",
    ("scipy.special", "log_expit"): "lambda z: -__import__('numpy').logaddexp(0.0, -__import__('numpy').asarray(z, dtype=float))",
    ("scipy.special", "logsumexp"): "lambda a, axis=None, keepdims=False: __import__('numpy').logaddexp.reduce(__import__('numpy').asarray(a, dtype=float), axis=axis, keepdims=keepdims)",
}


def stand_ins(node) -> str | None:
    """`name = <numpy equivalent>; ...` for an import of scipy functions that all have one."""
    if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
        return None
    parts = [(a.asname or a.name, STAND_INS.get((node.module, a.name))) for a in node.names]
    if not parts or any(code is None for _, code in parts):
        return None
    return "; ".join(f"{bound} = {code}" for bound, code in parts)


IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def guarded_imports(tree: ast.Module) -> set[int]:
    """ids of import statements inside a try whose handler catches a failed import."""
    out = set()
    for node in pyparse.nodes(tree):
        if isinstance(node, ast.Try) and any(
                h.type is None or any(n.id in IMPORT_ERRORS for n in ast.walk(h.type) if isinstance(n, ast.Name))
                for h in node.handlers):
            out.update(id(n) for n in node.body if isinstance(n, (ast.Import, ast.ImportFrom)))
    return out


def globals_from_script(full: ast.Module, kept: ast.Module) -> dict[str, list[str]]:
    """Names that functions read but only the (left-out) training script defines."""
    defined = bound_names(kept) | BUILTINS
    script_bound = {n.id for n in pyparse.nodes(full) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    out: dict[str, list[str]] = {}
    for qual, reads in function_free_names(kept).items():
        for name in sorted(reads - defined):
            if name in script_bound:
                out.setdefault(name, []).append(qual)
    return out
