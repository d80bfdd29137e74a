"""Notebook cells as one Python module, read the way IPython reads them.

Jupyter compiles each cell on its own after IPython's input transformer has turned its
syntax (`!cmd`, `x = !cmd`, `%magic`, `%%cell` magics, `obj?`, `>>>` prompts, an indented
first line) into Python. We do the same, with IPython's own transformer
(`TransformerManager().transform_cell`: no pattern of ours can match what IPython accepts),
imported only for a cell that plain Python cannot read, as its import costs ~0.2 s.

What came from shell and magic commands becomes `get_ipython()` calls, which cannot run in
the box (there is no IPython there) and are training-script code anyway: those lines are
left out, and reported as such. Every cell keeps its own line count (a left-out line is
blank, or `pass` where a block needs a statement), so line numbers point at the student's
lines. The bodies of `%%time` and `%%capture` cells are Python that IPython runs in the
notebook's namespace, so they are read like any other cell; a line IPython runs by
automagic (`pip install numpy`, `cd data`) is read as the magic it is.

Cells joined into one module meet two rules a single cell does not: a `from __future__`
import must come first in a module (IPython accepts it at the top of any cell), so such
imports move to the first line when they would be refused; and, for the code a kernel ran
(`history_source`), a class or function defined again in a later cell replaces the earlier
definition, as it did in the kernel.
"""
from __future__ import annotations

import ast
import difflib
import functools
import re
from dataclasses import dataclass, field, replace

from . import pyparse

# Cell magics whose body IPython runs as ordinary code in the notebook's namespace.
PYTHON_CELL_MAGICS = frozenset({"time", "capture"})
SHOWN_CHARS = 60


@dataclass(frozen=True)
class Cell:
    label: str    # "notebook cell 3" or "In [5]": the comment that marks it in the module
    source: str


@dataclass
class CellCode:
    """One cell as plain Python, line for line; `left_out`: (first, last, what), 0-based."""
    lines: list[str]
    left_out: list[tuple[int, int, str]] = field(default_factory=list)
    tree: ast.Module | None = None          # None: Python cannot read it (a syntax error)
    error: SyntaxError | None = None


class NotebookText(str):
    """The module's source, with what load.py needs to report on it attached: the IPython
    lines reading it left out (result.json's left_out entries) and where each cell lies
    (label, first and last line in the module, 1-based)."""
    name: str = ""
    left_out: tuple[dict, ...] = ()
    cells: tuple[tuple[str, int, int], ...] = ()

    @classmethod
    def of(cls, text: str, name: str, left_out: list[dict], cells: list) -> "NotebookText":
        out = cls(text)
        out.name, out.left_out, out.cells = name, tuple(left_out), tuple(cells)
        return out

    def locate(self, start: int, end: int) -> str | None:
        """Module lines start-end as a student finds them: `notebook cell 5, lines 2-4`."""
        hit = [(label, a, b) for label, a, b in self.cells if a <= end and start <= b]
        if not hit:
            return None
        if len(hit) > 1:
            return f"{hit[0][0]} to {hit[-1][0]}"
        label, a, _ = hit[0]
        return where(label, max(start, a) - a, min(end, hit[0][2]) - a)


# ---------------------------------------------------------------- one cell

def parse(source: str) -> tuple[ast.Module | None, SyntaxError | None]:
    try:
        return pyparse.parse(source), None
    except SyntaxError as e:
        return None, e
    except ValueError as e:  # a NUL byte: Python cannot read it either
        return None, SyntaxError(str(e))


def read_cell(source: str) -> CellCode:
    """A cell's lines as plain Python, same count, IPython-only lines left out."""
    lines = source.splitlines()
    tree, _ = parse(source)
    if tree is not None:
        return CellCode(lines, tree=tree)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        return cell_magic(lines, first)
    code = transformed(lines)
    marked = automagic(lines) if code.tree is None else None
    return transformed(marked) if marked else code


def automagic(lines: list[str]) -> list[str] | None:
    """`pip install numpy`, `cd data`, `ls -l`: IPython runs a line magic or shell alias
    written without its `%` (automagic, on by default) when the line is not Python. The
    lines that need it get their `%`, or None when none does."""
    names = line_magic_names()
    out, changed = list(lines), False
    for i, line in enumerate(lines):
        words = line.split(maxsplit=1)
        if words and words[0] in names and parse(line.strip())[0] is None:
            out[i] = line[: len(line) - len(line.lstrip())] + "%" + line.lstrip()
            changed = True
    return out if changed else None


@functools.lru_cache(maxsize=1)
def line_magic_names() -> frozenset[str]:
    """IPython's built-in line magics and its default shell aliases (ls, cat, mkdir...)."""
    from IPython.core import magics
    from IPython.core.alias import default_aliases

    names = {alias for alias, _ in default_aliases()}
    for attr in dir(magics):
        table = getattr(getattr(magics, attr), "magics", None)
        if isinstance(table, dict):
            names |= set(table.get("line", {}))
    return frozenset(names)


def cell_magic(lines: list[str], at: int) -> CellCode:
    name = lines[at].strip()[2:].split(maxsplit=1)
    name = name[0] if name else ""
    if name in PYTHON_CELL_MAGICS:
        rest = lines[at + 1:]
        body = read_cell("\n".join(rest))
        joined = [""] * (at + 1) + body.lines + [""] * (len(rest) - len(body.lines))
        left_out = [(at, at, describe(lines[at]))] + [(a + at + 1, b + at + 1, w) for a, b, w in body.left_out]
        tree = parse("\n".join(joined))[0] if body.tree is not None else None
        return CellCode(joined, left_out, tree, body.error)
    what = f"an IPython %%{name} cell (not Python)" if name else "an IPython cell magic"
    return CellCode([""] * len(lines), [(at, len(lines) - 1, what)], tree=ast.Module(body=[], type_ignores=[]))


def transformed(lines: list[str]) -> CellCode:
    """IPython's transform of the cell, aligned line for line with the student's lines."""
    try:
        new = ipython_transform("\n".join(lines) + "\n").splitlines()
    except Exception:  # IPython failing on odd input: Python's own error is reported instead
        tree, error = parse("\n".join(lines))
        return CellCode(list(lines), tree=tree, error=error)
    out, left_out = list(lines), []
    matcher = difflib.SequenceMatcher(None, lines, new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        old_block, new_block = lines[i1:i2], new[j1:j2]
        if len(old_block) == len(new_block):
            for k, (old, line) in enumerate(zip(old_block, new_block)):
                if from_ipython(old, line):
                    out[i1 + k] = placeholder(line)
                    left_out.append((i1 + k, i1 + k, describe(old)))
                else:
                    out[i1 + k] = line  # a prompt stripped, a first-line indent removed
            continue
        if i1 == i2:
            continue  # nothing of the student's to put it on (IPython adds no lines)
        magic = next((line for line in new_block if from_ipython("", line)), None)
        if magic is not None:
            out[i1:i2] = [placeholder(magic)] + [""] * (i2 - i1 - 1)
            left_out.append((i1, i2 - 1, describe(old_block[0])))
        else:  # blank lines IPython dropped, or lines it joined: keep its lines, in place
            out[i1:i2] = new_block[: i2 - i1] + [""] * max(0, i2 - i1 - len(new_block))
    tree, error = parse("\n".join(out))
    return CellCode(out, left_out, tree, error)


def ipython_transform(source: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager  # slow: only when needed
    return TransformerManager().transform_cell(source)


def from_ipython(old: str, new: str) -> bool:
    """Whether IPython turned this line into a get_ipython() call."""
    return new.count("get_ipython()") > old.count("get_ipython()")


def placeholder(transformed_line: str) -> str:
    """Blank at top level; `pass` inside a block, which may need a statement there."""
    indent = transformed_line[: len(transformed_line) - len(transformed_line.lstrip())]
    return indent + "pass" if indent else ""


def describe(line: str) -> str:
    text = line.strip()
    shown = text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
    if text.startswith("%%"):
        kind = "an IPython cell magic"
    elif re.match(r"^([\w.\[\], ]+=\s*)?!", text):
        kind = "an IPython shell command"
    elif re.match(r"^([\w.\[\], ]+=\s*)?%", text):
        kind = "an IPython line magic"
    elif text.startswith("?") or text.endswith("?"):
        kind = "an IPython help request"
    else:
        kind = "IPython syntax"
    return f"{kind} `{shown}`"


# ---------------------------------------------------------------- cells into one module

@dataclass
class Placed:
    cell: Cell
    code: CellCode
    offset: int      # 0-based index of the cell's first line in the module


def assemble(cells: list[Cell], name: str, placed: list[Placed] | None = None) -> NotebookText:
    """The cells as one module, each after a comment naming it."""
    placed = placed if placed is not None else place(cells)
    lines = []
    for p in placed:
        lines.append(f"# --- {p.cell.label} ---")
        lines.extend(p.code.lines)
    lines = hoist_futures(lines, placed)
    left_out = [{**left_out_entry(name, p.offset + a + 1, p.offset + b + 1, what),
                 "where": where(p.cell.label, a, b)}
                for p in placed for a, b, what in p.code.left_out]
    cells_at = [(p.cell.label, p.offset + 1, p.offset + len(p.code.lines)) for p in placed]
    return NotebookText.of("\n".join(lines) + "\n", name, sorted(left_out, key=lambda d: d["start"]),
                           cells_at)


def place(cells: list[Cell]) -> list[Placed]:
    out, offset = [], 0
    for cell in cells:
        code = read_cell(cell.source)
        out.append(Placed(cell, code, offset + 1))  # +1: the marker comment
        offset += 1 + len(code.lines)
    return out


def where(label: str, a: int, b: int) -> str:
    """`notebook cell 4, line 2`: where a student finds it (0-based a, b within the cell)."""
    return f"{label}, line {a + 1}" if a == b else f"{label}, lines {a + 1}-{b + 1}"


def left_out_entry(name: str, start: int, end: int, what: str) -> dict:
    return {"file": name, "start": start, "end": end, "what": what,
            "lines": f"{start}-{end}" if end > start else str(start)}  # module lines


def hoist_futures(lines: list[str], placed: list[Placed]) -> list[str]:
    """Move `from __future__` imports to line 1 when the joined cells would refuse them
    (Python's compiler, not its parser, checks that: ast.parse lets it through)."""
    if not futures_misplaced(placed):
        return lines
    features: list[str] = []
    lines = list(lines)
    for p in placed:
        for node in (p.code.tree.body if p.code.tree else []):
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                features += [a.name for a in node.names if a.name not in features]
                for i in range(node.lineno - 1, node.end_lineno or node.lineno):
                    lines[p.offset + i] = ""
    if features:
        lines[0] = f"from __future__ import {', '.join(features)}  {lines[0]}"
    return lines


def futures_misplaced(placed: list[Placed]) -> bool:
    """Whether a `from __future__` import follows other code once the cells are joined."""
    nodes = [n for p in placed for n in (p.code.tree.body if p.code.tree else [])]
    for i, node in enumerate(nodes):
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the module's docstring may come first
        return any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in nodes[i + 1:])
    return False


# ---------------------------------------------------------------- the code a kernel ran

@dataclass(frozen=True)
class History:
    text: NotebookText
    cells: int           # cells that ran (non-empty inputs)
    first: int           # execution counts of the first and last of them
    last: int


def history_source(inputs: list[str], name: str) -> History:
    """The inputs of a kernel session (IPython's raw input history: In[1], In[2], ...) as
    one module: cells in execution order, the last definition of a class or function
    winning, cells that could not run (a syntax error) left out."""
    cells = [Cell(f"In [{n}]", src) for n, src in enumerate(inputs) if n > 0 and src.strip()]
    placed = place(cells)
    for p in placed:
        if p.code.tree is None:  # the kernel refused it too: none of it ran
            err = p.code.error
            where = f" on line {err.lineno}" if err and err.lineno else ""
            n = len(p.code.lines)
            p.code = CellCode([""] * n, [(0, max(n - 1, 0), f"a cell that did not run "
                                          f"(a syntax error{where})")], tree=ast.Module(body=[], type_ignores=[]))
    drop_replaced_definitions(placed)
    text = assemble(cells, name, placed)
    counts = [int(p.cell.label[4:-1]) for p in placed]
    return History(text, len(placed), min(counts, default=0), max(counts, default=0))


def drop_replaced_definitions(placed: list[Placed]) -> None:
    """Blank a top-level class or function that a later cell defines again, as the kernel
    replaced it, unless code in between used it while it was current (a subclass, an
    alias, a decorator): then both stay, as Python itself lets the last one win."""
    stmts = [(k, node) for k, p in enumerate(placed) for node in (p.code.tree.body if p.code.tree else [])]
    for i, (k, node) in enumerate(stmts):
        if not isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        later = next((j for j in range(i + 1, len(stmts)) if defines(stmts[j][1], node.name)), None)
        if later is None or any(node.name in read_at_definition(s) for _, s in stmts[i + 1:later]):
            continue
        p = placed[k]
        start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
        end = (node.end_lineno or node.lineno) - 1
        p.code.lines[start:end + 1] = [""] * (end - start + 1)
        kind = "class" if isinstance(node, ast.ClassDef) else "function"
        p.code.left_out.append((start, end, f"an earlier {kind} {node.name}, replaced by the one "
                                            f"in {placed[stmts[later][0]].cell.label}"))
    for p in placed:
        if p.code.tree is not None:
            p.code = replace(p.code, tree=parse("\n".join(p.code.lines))[0] or p.code.tree)


def defines(node: ast.stmt, name: str) -> bool:
    return isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name


def read_at_definition(node: ast.stmt) -> set[str]:
    """Names a statement that the grader may keep reads when it runs (a base class, a
    decorator, a default, an alias), not those read later inside function bodies. Script
    statements (a call, a loop, `net = MLP()`) are left out anyway: they do not count."""
    if isinstance(node, (ast.Expr, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.AugAssign)):
        return set()
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and (
            node.value is None or any(isinstance(n, ast.Call) for n in ast.walk(node.value))):
        return set()
    found: set[str] = set()

    def visit(n: ast.AST) -> None:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in n.decorator_list + n.args.defaults + [d for d in n.args.kw_defaults if d]:
                visit(sub)
            return
        if isinstance(n, ast.Lambda):
            for sub in n.args.defaults:
                visit(sub)
            return
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
            found.add(n.id)
        for child in ast.iter_child_nodes(n):
            visit(child)

    visit(node)
    return found


# ---------------------------------------------------------------- into the Submission

def with_ipython_left_out(sub, sources: dict):
    """The Submission with the lines reading its notebooks left out added to its
    `left_out` and notes (load.build only sees plain Python), and every left-out range of
    a notebook located by cell (`where`), as the student finds it."""
    texts = [src for src in sources.values() if isinstance(src, NotebookText)]
    if sub.problem or not texts:
        return sub
    found = [d for text in texts for d in text.left_out]
    left_out = tuple(sorted([*map(lambda d: located(d, texts), sub.left_out), *found],
                            key=lambda d: (d["file"], d["start"])))
    if not found:
        return replace(sub, left_out=left_out)
    by_file: dict[str, list[str]] = {}
    for d in found:
        by_file.setdefault(d["file"], []).append(d["lines"])
    note = ("IPython lines were left out (shell and magic commands run only inside Jupyter): "
            + "; ".join(f"{f} lines {', '.join(ls)}" for f, ls in by_file.items()))
    return replace(sub, left_out=left_out, notes=(*sub.notes, note))


def located(entry: dict, texts: list[NotebookText]) -> dict:
    """A left-out entry of load.build's, with `where` added when it lies in a notebook."""
    for text in texts:
        names = {text.name, text.name.rsplit(".", 1)[0] + ".py"}
        if entry.get("file") in names and isinstance(entry.get("start"), int):
            spot = text.locate(entry["start"], entry.get("end", entry["start"]))
            if spot:
                return {**entry, "where": spot}
    return entry
