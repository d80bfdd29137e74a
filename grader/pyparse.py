"""ast.parse behind one lock.

CPython 3.11 keeps the AST constructor's recursion depth in interpreter-wide state, so two
threads parsing at once can fail with "SystemError: AST constructor recursion depth
mismatch" (python/cpython#106905). A Dask worker grades with several threads; parsing is a
few milliseconds, so taking turns costs nothing measurable.
"""
from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    with _LOCK:
        return ast.parse(source, filename=filename)
