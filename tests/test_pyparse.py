"""grader.pyparse: parsing from several threads at once never trips CPython 3.11's shared
AST recursion counter (python/cpython#106905), which a Dask worker's threads did; a source
is parsed once and a tree walked once, in ast.walk's order."""
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
    def work(i):
        for k in range(3):
            junk = Finalised()
            junk.cycle = junk
            del junk
            parse(SOURCE + f"\n# {i}.{k}\n")  # a source of its own: parsed, not remembered
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


def test_a_source_is_parsed_once_whatever_the_file_is_called():
    source = "class Linear:\n    def forward(self, x):\n        return x @ self.W\n# once\n"
    tree = pyparse.parse(source, "hw2.py")
    assert pyparse.parse(source, "submission.py") is tree
    assert pyparse.parse(source + "\n") is not tree


def test_a_syntax_error_is_raised_again_naming_each_file():
    for name in ("a.py", "b.py"):
        with pytest.raises(SyntaxError) as e:
            pyparse.parse("print 'python 2'\n", name)
        assert e.value.filename == name


def test_nodes_are_ast_walks_nodes_in_its_order_and_remembered():
    tree = ast.parse(SOURCE)
    walked = list(ast.walk(tree))
    listed = pyparse.nodes(tree)
    assert len(listed) == len(walked) and all(a is b for a, b in zip(listed, walked))
    assert pyparse.nodes(tree) is listed
    fn = tree.body[3]
    assert [type(n) for n in pyparse.nodes(fn)] == [type(n) for n in ast.walk(fn)]


def test_nodes_of_a_new_tree_are_its_own_even_if_an_old_id_is_reused():
    for _ in range(50):  # a tree freed and another built at the same address
        tree = ast.parse("x = 1\n")
        assert pyparse.nodes(tree)[0] is tree
        del tree
