"""grader/notebook.py: IPython syntax read as IPython reads it, and the code a kernel ran.

Every transform keeps the cell's line count (line numbers point at the student's lines),
leaves the shell and magic lines out and reports them; a notebook that runs in Jupyter
is never refused as a syntax error.
"""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from grader import api, load, notebook
from grader.notebook import Cell, assemble, history_source, read_cell

LAYERS = textwrap.dedent("""\
    import numpy as np

    class LinearTransform:
        def __init__(self, W, b):
            self.W, self.b = W, b
        def forward(self, x):
            self.x = x
            return x @ self.W + self.b
        def backward(self, g, lr=0.0, momentum=0.0, l2=0.0):
            return g @ self.W.T
""")


def write_nb(tmp_path: Path, cells: list[str], name: str = "hw.ipynb") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    path = tmp_path / name
    nbformat.write(nb, str(path))
    return path


def module_lines(cells: list[str]) -> list[str]:
    return assemble([Cell(f"notebook cell {i}", c) for i, c in enumerate(cells, 1)], "hw.ipynb").splitlines()


# ---------------------------------------------------------------- one cell

@pytest.mark.parametrize("cell, kind", [
    ("files = !ls", "an IPython shell command"),
    ("!pip install numpy", "an IPython shell command"),
    ("t = %timeit -o f(x)", "an IPython line magic"),
    ("%matplotlib inline", "an IPython line magic"),
    ("np.random.seed?", "an IPython help request"),
    ("??np", "an IPython help request"),
])
def test_each_ipython_line_is_left_out_and_named(cell, kind):
    code = read_cell(f"x = 1\n{cell}\ny = 2")
    assert code.lines == ["x = 1", "", "y = 2"]          # same lines, same numbers
    assert code.tree is not None
    assert code.left_out == [(1, 1, f"{kind} `{cell}`")]


def test_plain_python_never_needs_ipython():
    """IPython's import is slow: a cell Python can read is taken as it is, untouched."""
    src = "a = 1 # is this a magic?\nprint('!ls %timeit')\n"
    code = read_cell(src)
    assert code.lines == src.splitlines() and code.left_out == []

def test_ipython_is_imported_only_for_a_cell_that_needs_it(tmp_path):
    plain = write_nb(tmp_path, ["import numpy as np", LAYERS], "plain.ipynb")
    magic = write_nb(tmp_path, ["files = !ls", LAYERS], "magic.ipynb")
    script = ("import sys, pathlib\nfrom grader import load\n"
              "load.load(pathlib.Path(sys.argv[1])); print('IPython' in sys.modules)")
    for path, imported in ((plain, "False"), (magic, "True")):
        out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == imported, path.name


def test_automagic_lines_without_their_percent_sign():
    """IPython runs `pip install numpy` or `cd data` as magics when the line is not Python."""
    code = read_cell("pip install numpy\ncd data\nimport numpy as np\npwd")
    assert code.lines == ["", "", "import numpy as np", "pwd"]  # `pwd` alone is Python
    assert [w for _, _, w in code.left_out] == ["an IPython line magic `%pip install numpy`",
                                                "an IPython line magic `%cd data`"]


def test_magic_inside_a_block_becomes_pass_so_the_block_stays_valid():
    code = read_cell("def ls():\n    files = !ls\n    return 1\nif True:\n    !echo")
    assert code.lines == ["def ls():", "    pass", "    return 1", "if True:", "    pass"]
    assert code.tree is not None and [a for a, _, _ in code.left_out] == [1, 4]


def test_cell_magics():
    # %%time and %%capture run their body as Python in the notebook: it is read as such
    timed = read_cell("%%time\nclass A:\n    pass\nx = !ls")
    assert timed.lines == ["", "class A:", "    pass", ""]
    assert [w.split(" `")[0] for _, _, w in timed.left_out] == ["an IPython cell magic", "an IPython shell command"]
    # any other cell magic holds another language: the whole cell is left out
    bash = read_cell("%%bash\necho hi\nls -l\n")
    assert bash.lines == ["", "", ""] and bash.left_out == [(0, 2, "an IPython %%bash cell (not Python)")]


def test_continued_magic_and_prompts_and_indented_first_line_keep_their_lines():
    code = read_cell("%timeit \\\n    f(x)\ny = 1")
    assert code.lines == ["", "", "y = 1"] and code.left_out[0][:2] == (0, 1)
    assert read_cell(">>> a = 1\n>>> b = !ls").lines == ["a = 1", ""]
    assert read_cell("  a = 1\n  b = 2").lines == ["a = 1", "b = 2"]


def test_a_real_syntax_error_stays_one_with_the_students_line_number():
    code = read_cell("!ls\nx = (1,\ndef f(:\n")
    assert code.tree is None and code.lines[0] == "" and code.lines[2] == "def f(:"


# ---------------------------------------------------------------- a notebook file

def test_notebook_with_ipython_syntax_grades_and_reports_what_was_left_out(tmp_path):
    cells = ["import numpy as np\n!pip install numpy", "files = !ls\nt = %timeit -o f(x)",
             LAYERS, "%%time\nnet = LinearTransform(1, 2)\nprint(net)"]
    sub = load.load(write_nb(tmp_path, cells), "hw")
    assert sub.problem is None, sub.problem
    src = sub.files["submission.py"]
    compile(src, "submission.py", "exec")
    lines = src.splitlines()
    assert lines[2] == "" and lines[4:6] == ["", ""]   # !pip, files = !ls, t = %timeit
    assert "get_ipython" not in src
    assert lines.index("class LinearTransform:") == 1 + 2 + 1 + 2 + 1 + 2  # markers + cells
    ipy = [d for d in sub.left_out if "IPython" in d["what"]]
    assert [d["lines"] for d in ipy] == ["3", "5", "6", "19"]
    assert ipy[1]["what"] == "an IPython shell command `files = !ls`"
    # the student finds each by cell and line, the script code too
    assert [d["where"] for d in ipy] == ["notebook cell 1, line 2", "notebook cell 2, line 1",
                                         "notebook cell 2, line 2", "notebook cell 4, line 1"]
    script = next(d for d in sub.left_out if d["what"] == "script code")
    assert script["where"] == "notebook cell 4, lines 2-3" and script["lines"] == "20-21"
    assert ipy[1]["file"] == "hw.ipynb"
    assert any("IPython lines were left out" in n and "hw.ipynb lines 3, 5, 6, 19" in n for n in sub.notes)
    assert any(d["what"] == "script code" for d in sub.left_out)  # print(net): as before


@pytest.mark.parametrize("cell", ["files = !ls", "t = %timeit -o f(x)"])
def test_a_notebook_with_one_ipython_assignment_is_not_a_syntax_error(tmp_path, cell):
    sub = load.load(write_nb(tmp_path, [LAYERS, cell]), "hw")
    assert sub.problem is None and sub.graded_file == "hw.ipynb"


def test_future_import_after_other_cells_moves_to_the_first_line(tmp_path):
    cells = ["import json\n!echo hi", "from __future__ import division\nfrom __future__ import annotations\n" + LAYERS]
    sub = load.load(write_nb(tmp_path, cells), "hw")
    assert sub.problem is None
    lines = sub.files["submission.py"].splitlines()
    assert lines[0] == "from __future__ import division, annotations  # --- notebook cell 1 ---"
    assert lines[4:6] == ["", ""]                     # where the imports were
    compile(sub.files["submission.py"], "submission.py", "exec")  # the compiler checks placement


def test_future_import_already_first_is_left_in_place():
    lines = module_lines(["!echo hi", "from __future__ import division\nimport numpy"])
    assert lines[3] == "from __future__ import division" and lines[0] == "# --- notebook cell 1 ---"


# ---------------------------------------------------------------- the code a kernel ran

def test_history_in_execution_order_last_definition_wins():
    inputs = ["",                                       # In[0] is IPython's placeholder
              "import numpy as np",
              "class ReLU:\n    def forward(self, x):\n        return x",  # buggy first try
              "print(ReLU().forward(-1))",
              "",                                       # an empty cell
              "class ReLU:\n    def forward(self, x):\n        return np.maximum(x, 0)",
              "x = (1,",                                # refused by the kernel: never ran
              "files = !ls"]
    h = history_source(inputs, "kernel")
    assert (h.cells, h.first, h.last) == (6, 1, 7)
    lines = h.text.splitlines()
    assert "# --- In [2] ---" in lines and "# --- In [4] ---" not in lines
    assert lines.count("class ReLU:") == 1 and "        return np.maximum(x, 0)" in lines
    assert "        return x" not in lines
    compile(h.text, "kernel.py", "exec")
    whats = {(d["where"], d["what"]) for d in h.text.left_out}
    assert whats == {("In [2], lines 1-3", "an earlier class ReLU, replaced by the one in In [5]"),
                     ("In [6], line 1", "a cell that did not run (a syntax error on line 1)"),
                     ("In [7], line 1", "an IPython shell command `files = !ls`")}


def test_an_earlier_definition_used_in_between_stays():
    """class B(A) was built on the first A: dropping it would break B, so both stay and
    Python lets the last one win, as in the kernel."""
    h = history_source(["", "class A:\n    pass", "class B(A):\n    pass", "class A:\n    x = 1"], "k")
    assert h.text.count("class A:") == 2
    compile(h.text, "k.py", "exec")


def fake_shell(inputs: list[str], **user_ns):
    return SimpleNamespace(history_manager=SimpleNamespace(input_hist_raw=inputs), user_ns=user_ns)


def test_kernel_submission_keeps_definitions_and_leaves_printing_cells_out():
    shell = fake_shell(["", LAYERS, "lt = LinearTransform(np.ones((2, 3)), np.zeros(3))",
                        "print(lt.forward(np.ones((1, 2))))", "import grader\ngrader.check()"],
                       __vsc_ipynb_file__="/home/s/hw2 final.ipynb")
    sub, what, kernel = api.from_kernel(shell)
    assert sub.problem is None and sub.id == "hw2 final"
    assert sub.graded_file == api.KERNEL_LABEL
    assert [c.name for c in sub.classes] == ["LinearTransform"]
    src = sub.files["submission.py"]
    assert "print(" not in src and "grader.check()" not in src and "class LinearTransform" in src
    assert {d["what"] for d in sub.left_out} == {"script code"}
    assert what.startswith("graded the code this kernel has run: 4 cells, In [1] to In [4] (the last run), at ")
    assert kernel["cells"] == 4 and kernel["last"] == 4


def test_kernel_without_layer_classes_is_a_clear_problem():
    sub, _, _ = api.from_kernel(fake_shell(["", "x = 1", "print(x)"]))
    assert sub.problem == (f"{api.KERNEL_LABEL} defines no layer classes "
                           "(no class with forward and backward methods)")


def test_history_cells_are_python_once_transformed():
    h = history_source(["", "%load_ext autoreload\n%autoreload 2", LAYERS, "t = %timeit -o 1 + 1"], "k")
    tree = ast.parse(h.text)
    assert [n.name for n in tree.body if isinstance(n, ast.ClassDef)] == ["LinearTransform"]


# ---------------------------------------------------------------- property: never refused

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PY = ["x = 1", "import numpy as np", "def f():", "    return 1", "class A:", "    pass",
      "if x:", "    y = 2", "print(x)", "from __future__ import division", ""]
IPY = ["!ls", "files = !ls", "%timeit f(x)", "t = %timeit -o f(x)", "x?", "%matplotlib inline",
       "    !echo hi", "    y = !pwd", ">>> z = 3", "pip install numpy", "%load_ext autoreload"]
cells = st.lists(st.lists(st.sampled_from(PY + IPY), min_size=1, max_size=6).map("\n".join),
                 min_size=1, max_size=5)
timed = st.booleans()


def runs_in_ipython(cell: str) -> bool:
    """Whether IPython would run the cell: its transform compiles (a %%time body too)."""
    from IPython.core.inputtransformer2 import TransformerManager
    lines = cell.splitlines()
    body = "\n".join(lines[1:]) if lines and lines[0].startswith("%%time") else cell
    try:
        compile(TransformerManager().transform_cell(body), "<cell>", "exec")
    except SyntaxError:
        return False
    return True


@settings(max_examples=100, deadline=None)
@given(cells, st.lists(timed, min_size=5, max_size=5))
def test_a_notebook_whose_cells_run_in_ipython_is_always_python(sources, time_them):
    sources = [("%%time\n" + s if t else s) for s, t in zip(sources, time_them)]
    sources = [s for s in sources if runs_in_ipython(s)]
    text = assemble([Cell(f"notebook cell {i}", s) for i, s in enumerate(sources, 1)], "hw.ipynb")
    compile(text, "hw.py", "exec")                       # never a syntax error
    if sources:  # line numbers still point into the cells: each keeps its line count
        assert len(text.splitlines()) == sum(1 + len(s.splitlines()) for s in sources)
    assert "get_ipython" not in text
