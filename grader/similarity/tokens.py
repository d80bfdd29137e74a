"""Normalised tokens of a Python source, cut into units (one per function or method).

What a copier changes without changing the program disappears here: comments, docstrings,
blank lines and layout (the tokenizer drops them), the names the student chose (every name
the file binds, as a variable, parameter, attribute, function or class, becomes `V`),
numbers (`N`) and strings (`S`). What a copier cannot change without changing the program
stays: keywords, operators, `self`, and the names the language and numpy chose (`range`,
`sum`, `dot`, `axis`, `T`); a module is named by what it is, not by its alias
(`np` -> `numpy`).

Cutting the token stream at function and method boundaries makes reordering methods or
classes invisible: no k-gram spans two units, so each unit fingerprints the same wherever
it sits. A function's header (decorators, `def`, parameters) is left out: the assignment
dictates the signatures, and every solution shares them. A file Python cannot parse
(Python 2, a syntax error) is one unit, with every non-keyword, non-builtin name made `V`.
"""
from __future__ import annotations

import ast
import builtins
import io
import keyword
import tokenize
from dataclasses import dataclass

from .. import pyparse

BUILTIN_NAMES = frozenset(dir(builtins))
KEPT_NAMES = frozenset({"self", "cls"})  # bound as parameters, but nobody renames them
SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT,
        tokenize.ENCODING, tokenize.ENDMARKER}
FSTRING_START = getattr(tokenize, "FSTRING_START", None)  # Python 3.12+
FSTRING_END = getattr(tokenize, "FSTRING_END", None)
OPENING, CLOSING = frozenset("([{"), frozenset(")]}")
Span = tuple[int, int, int, int]  # start line, start column, end line, end column


@dataclass(frozen=True)
class Unit:
    """The normalised tokens of one function, method, class body or module remainder."""
    file: str
    name: str                  # "LinearTransform.backward", "MLP", "<module>"
    tokens: tuple[str, ...]
    spans: tuple[Span, ...]    # where each token is in the file


def units(source: str, file: str) -> list[Unit]:
    """The source's units, in order of first appearance."""
    raw = raw_tokens(source)
    try:
        tree = pyparse.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return [make_unit(file, "<file>", [("V" if kind == tokenize.NAME and is_free_name(t)
                                             else t, span) for kind, t, span in raw])]
    owners, functions = line_owners(tree)
    rename, docstrings = names_and_docstrings(tree)
    grouped: dict[str, list] = {}
    after_docstring = False
    for kind, text, span in raw:
        if kind == tokenize.STRING and span[0] in docstrings and in_spans(span, docstrings[span[0]]):
            after_docstring = True
            continue
        if after_docstring and text == ";":
            continue  # the end of the docstring's statement
        after_docstring = False
        if kind == tokenize.NAME:
            text = rename.get(text, text)
        grouped.setdefault(owners.get(span[0], "<module>"), []).append((text, span))
    return [make_unit(file, name, without_header(toks) if name in functions else toks)
            for name, toks in grouped.items()]


def make_unit(file: str, name: str, toks: list) -> Unit:
    return Unit(file, name, tuple(t for t, _ in toks), tuple(s for _, s in toks))


def is_free_name(text: str) -> bool:
    return not keyword.iskeyword(text) and text not in BUILTIN_NAMES and text not in KEPT_NAMES


def without_header(toks: list) -> list:
    """A function's tokens after `def name(...):` (and its decorators)."""
    depth, seen_def = 0, False
    for i, (text, _) in enumerate(toks):
        if text == "def":
            seen_def = True
        elif text in OPENING:
            depth += 1
        elif text in CLOSING:
            depth -= 1
        elif text == ":" and depth == 0 and seen_def:
            rest = toks[i + 1:]
            return rest[1:] if rest and rest[0][0] == ";" else rest
    return toks


def raw_tokens(source: str) -> list[tuple[int, str, Span]]:
    """(kind, normalised text, span) per significant token; stops quietly where the
    tokenizer gives up (an unclosed bracket, bad indentation), keeping what came before."""
    out = []
    depth = 0  # inside an f-string (3.12+ tokenizes its parts): one S for all of it
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            kind = tok.type
            if kind == FSTRING_START:
                if depth == 0:
                    out.append((tokenize.STRING, "S", tok.start + tok.end))
                depth += 1
                continue
            if kind == FSTRING_END:
                depth -= 1
                continue
            if depth or kind in SKIP:
                continue
            span = tok.start + tok.end
            if kind == tokenize.NEWLINE or (kind == tokenize.OP and tok.string == ";"):
                out.append((kind, ";", span))
            elif kind == tokenize.NUMBER:
                out.append((kind, "N", span))
            elif kind == tokenize.STRING:
                out.append((kind, "S", span))
            else:
                out.append((kind, tok.string, span))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


def line_owners(tree: ast.Module) -> tuple[dict[int, str], set[str]]:
    """line -> the unit it belongs to (a function or method's lines are its own, a class's
    other lines the class's, the rest the module's), and which units are functions."""
    owners: dict[int, str] = {}
    functions: set[str] = set()

    def claim(node, name):
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        for line in range(first, (node.end_lineno or node.lineno) + 1):
            owners[line] = name

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            claim(node, node.name)
            functions.add(node.name)
        elif isinstance(node, ast.ClassDef):
            claim(node, node.name)
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    claim(item, f"{node.name}.{item.name}")
                    functions.add(f"{node.name}.{item.name}")
    return owners, functions


def names_and_docstrings(tree: ast.AST) -> tuple[dict[str, str], dict[int, list[Span]]]:
    """Every name the file binds -> "V" (import aliases -> the module they stand for), and
    the bare string statements (docstrings) by line, dropped like comments."""
    out: dict[str, str] = {}
    imports: dict[str, str] = {}
    docs: dict[int, list[Span]] = {}
    for node in pyparse.nodes(tree):
        kind = type(node)
        if kind is ast.Name:
            if type(node.ctx) is not ast.Load:
                out[node.id] = "V"
        elif kind is ast.Attribute:
            if type(node.ctx) is not ast.Load:
                out[node.attr] = "V"
        elif kind is ast.arg:
            out[node.arg] = "V"
        elif kind in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
            out[node.name] = "V"
        elif kind is ast.ExceptHandler and node.name:
            out[node.name] = "V"
        elif kind in (ast.Global, ast.Nonlocal):
            out.update((n, "V") for n in node.names)
        elif kind is ast.Import:
            imports.update((a.asname, a.name) for a in node.names if a.asname)
        elif kind is ast.ImportFrom:
            imports.update((a.asname or a.name, f"{node.module or ''}.{a.name}")
                           for a in node.names if a.name != "*")
        elif kind is ast.Expr and type(node.value) is ast.Constant and isinstance(node.value.value, str):
            span = (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)
            for line in range(node.lineno, node.end_lineno + 1):
                docs.setdefault(line, []).append(span)
    for name in KEPT_NAMES:
        out.pop(name, None)
    out.update(imports)  # `np` is numpy even where it is also assigned
    return out, docs


def in_spans(span: Span, spans: list[Span]) -> bool:
    start = span[:2]
    return any((s[0], s[1]) <= start < (s[2], s[3]) for s in spans)
