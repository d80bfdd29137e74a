"""ast.parse behind one lock, each source parsed once, and each tree walked once.

CPython 3.11 keeps the AST constructor's recursion depth in interpreter-wide state, so two
threads parsing at once can fail with "SystemError: AST constructor recursion depth
mismatch" (python/cpython#106905). A Dask worker grades with several threads; parsing is a
few milliseconds, so taking turns costs nothing measurable.

Loading, role matching, judging and the similarity report each read the same source, and
several passes walk the same tree: the trees are only read, never changed, so one parse
per source and one walk per node serve them all (a few milliseconds per submission each).
"""
from __future__ import annotations

import ast
import threading
from collections import OrderedDict

_LOCK = threading.Lock()
_TREES: OrderedDict[str, ast.Module] = OrderedDict()   # source -> tree, newest last
_NODES: dict[int, tuple[ast.AST, list[ast.AST]]] = {}   # id(root) -> (root kept alive, nodes)
MAX_TREES, MAX_WALKS = 64, 512  # (~15 submissions of trees: a few tens of MB at most)


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """The source's tree (shared: never change it). `filename` only names the file in a
    SyntaxError, which is raised anew on every call and never remembered."""
    with _LOCK:
        tree = _TREES.get(source)
        if tree is None:
            tree = _TREES[source] = ast.parse(source, filename=filename)
            if len(_TREES) > MAX_TREES:
                _TREES.popitem(last=False)
        else:
            _TREES.move_to_end(source)
        return tree


def nodes(root: ast.AST) -> list[ast.AST]:
    """Every node under root, root first, in ast.walk's order, as a list remembered per
    root (a walk costs ~40x a pass over the list it yields)."""
    got = _NODES.get(id(root))
    if got is not None and got[0] is root:  # (the root is kept, so its id is not reused)
        return got[1]
    out, i, node_type = [root], 0, ast.AST
    while i < len(out):
        node = out[i]
        i += 1
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                out.extend(v for v in value if isinstance(v, node_type))
            elif isinstance(value, node_type):
                out.append(value)
    if len(_NODES) >= MAX_WALKS:
        _NODES.clear()
    _NODES[id(root)] = (root, out)
    return out
