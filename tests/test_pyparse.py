"""grader.pyparse: parsing from several threads at once never trips CPython 3.11's shared
AST recursion counter (python/cpython#106905), which a Dask worker's threads did."""
from __future__ import annotations

import ast
import gc
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from grader import pyparse

SOURCE = "\n".join(f"def f{i}(x):\n    return " + "(" * 30 + "x" + ")" * 30 + " + [[1, [2, {3: (4,)}]]]"
                   for i in range(200))


class Finalised:
    """Cyclic garbage whose finaliser runs Python code: the collector, triggered while the
    AST is being built, runs it, and the interpreter may hand the GIL to another thread."""

    def __del__(self):
        time.sleep(0)


def parse_among_garbage(parse) -> None:
    def work(_):
        for _ in range(3):
            junk = Finalised()
            junk.cycle = junk
            del junk
            parse(SOURCE)
    threshold = gc.get_threshold()
    gc.set_threshold(50)
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(work, range(32)))
    finally:
        gc.set_threshold(*threshold)


def test_parse_returns_the_tree_and_names_the_file_in_errors():
    assert isinstance(pyparse.parse("x = 1\n"), ast.Module)
    with pytest.raises(SyntaxError) as e:
        pyparse.parse("def (:\n", "hw.py")
    assert e.value.filename == "hw.py"


def test_threads_parsing_while_the_collector_runs_finalisers():
    parse_among_garbage(pyparse.parse)  # raised SystemError with a bare ast.parse on 3.11
