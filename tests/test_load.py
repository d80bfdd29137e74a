"""load.py: reading .py/.ipynb/.zip/folders, keeping definitions only, bad-input messages."""
from __future__ import annotations

import tempfile
import textwrap
import uuid
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader import load

LAYERS = textwrap.dedent("""\
    import numpy as np


    class LinearTransform:
        def __init__(self, W, b):
            self.W, self.b = W, b

        def forward(self, x):
            self.x = x
            return x @ self.W + self.b

        def backward(self, grad_output):
            return grad_output @ self.W.T


    class ReLU:
        def forward(self, x):
            self.x = x
            return np.maximum(x, 0)

        def backward(self, grad_output):
            return grad_output * (self.x > 0)
    """)


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def lines_of(sub, name="submission.py"):
    return sub.files[name].splitlines()


# ---------------------------------------------------------------- notebooks

def make_notebook(cells: list[tuple[str, str]]) -> str:
    nb = nbformat.v4.new_notebook()
    for kind, src in cells:
        nb.cells.append(nbformat.v4.new_code_cell(src) if kind == "code" else nbformat.v4.new_markdown_cell(src))
    return nbformat.writes(nb)


def test_notebook_magics_and_shell_lines_dropped_cell_markers_kept(tmp_path):
    nb = make_notebook([
        ("markdown", "# Homework 2"),
        ("code", "%matplotlib inline\n!pip install numpy\nimport numpy as np"),
        ("code", LAYERS),
        ("code", "%%time\nfor i in range(10**9):\n    pass"),
        ("code", "np.random.seed?\nnet = LinearTransform(1, 2)\nprint(net)"),
    ])
    sub = load.load(write(tmp_path, "hw.ipynb", nb), "hw")
    assert sub.problem is None
    src = sub.files["submission.py"]
    assert "%matplotlib" not in src and "!pip" not in src and "%%time" not in src
    assert "range(10**9)" not in src            # a cell magic's body is not Python
    assert "np.random.seed?" not in src
    assert "# --- notebook cell 2 ---" in src and "# --- notebook cell 5 ---" in src
    assert "# --- notebook cell 1 ---" not in src  # markdown cells are not code
    assert "class LinearTransform" in src and "import numpy as np" in src
    assert "print(net)" not in src               # script code left out
    assert any(d["what"] == "script code" for d in sub.left_out)
    assert sub.graded_file == "hw.ipynb"
    compile(src, "submission.py", "exec")


def test_notebook_without_code_cells(tmp_path):
    sub = load.load(write(tmp_path, "nb.ipynb", make_notebook([("markdown", "only words")])))
    assert sub.problem and "no code cells" in sub.problem


def test_broken_notebook(tmp_path):
    sub = load.load(write(tmp_path, "nb.ipynb", '{"cells": [ {"cell_type": "co'))
    assert sub.problem and "not a readable notebook" in sub.problem and "nb.ipynb" in sub.problem
    assert "\n" not in sub.problem


# ---------------------------------------------------------------- keeping definitions

def test_main_guard_and_unguarded_script_left_out_with_line_ranges(tmp_path):
    src = LAYERS + textwrap.dedent("""\

        data = load_cifar('cifar_2class_py2.p')
        net = LinearTransform(data, 1)
        for epoch in range(20):
            net.forward(data)

        if __name__ == '__main__':
            import matplotlib.pyplot as plt
            plt.plot([1, 2])
            plt.show()
        """)
    n = len(LAYERS.splitlines())
    sub = load.load(write(tmp_path, "s.py", src))
    assert sub.problem is None
    kept = lines_of(sub)
    assert len(kept) == len(src.splitlines())      # blanked, not removed: tracebacks still point right
    assert kept[n + 1] == "" and "load_cifar" not in sub.files["submission.py"]
    assert "plt.show" not in sub.files["submission.py"]
    assert "class ReLU" in sub.files["submission.py"]
    items = {d["what"]: d for d in sub.left_out}
    script = items["script code"]
    assert (script["start"], script["end"], script["lines"]) == (n + 2, n + 5, f"{n + 2}-{n + 5}")
    guard = items["code under `if __name__ == '__main__':`"]
    assert (guard["start"], guard["end"]) == (n + 7, n + 10)
    assert all(d["file"] == "s.py" for d in sub.left_out)
    assert any("left out" in note and f"{n + 2}-{n + 5}" in note for note in sub.notes)


def test_constants_reading_script_variables_left_out(tmp_path):
    src = LAYERS + textwrap.dedent("""\
        HIDDEN = 10
        SCALE = np.sqrt(2.0 / HIDDEN)
        data = pickle.load(open('cifar_2class_py2.p', 'rb'))
        train_x = data['train_data'] / 255.0
        MEAN = train_x.mean(axis=0)
        """)
    sub = load.load(write(tmp_path, "s.py", src))
    kept = sub.files["submission.py"]
    assert "HIDDEN = 10" in kept and "SCALE = np.sqrt" in kept
    for gone in ("pickle.load", "train_x = data", "MEAN = train_x"):
        assert gone not in kept, gone


def test_io_call_through_numpy_is_script_code(tmp_path):
    sub = load.load(write(tmp_path, "s.py", LAYERS + "X = np.load('x.npy')\nY = np.zeros(3)\n"))
    kept = sub.files["submission.py"]
    assert "np.load" not in kept and "Y = np.zeros(3)" in kept


def test_script_globals_found(tmp_path):
    src = LAYERS + textwrap.dedent("""\
        class SigmoidCrossEntropy:
            def forward(self, x, y):
                self.p = 1 / (1 + np.exp(-x))
                return -np.mean(y * np.log(self.p))

            def backward(self, grad_output):
                return (self.p - y_batch) / batch_size

        for epoch in range(3):
            y_batch = make()
            batch_size = 64
        """)
    sub = load.load(write(tmp_path, "s.py", src))
    assert sub.script_globals == {"batch_size": ["SigmoidCrossEntropy.backward"],
                                  "y_batch": ["SigmoidCrossEntropy.backward"]}


def test_unavailable_imports_replaced_by_pass_and_recorded(tmp_path):
    src = "import torch\nimport matplotlib.pyplot as plt\nfrom sklearn.metrics import accuracy_score\nimport os, json\n" + LAYERS
    sub = load.load(write(tmp_path, "s.py", src))
    kept = lines_of(sub)
    assert kept[:3] == ["pass", "pass", "pass"]
    assert kept[3] == "import os, json"
    assert set(sub.missing_modules) == {"torch", "plt", "accuracy_score"}
    assert "torch" in sub.missing_modules["torch"] and "line 1" in sub.missing_modules["torch"]
    assert "matplotlib" in sub.missing_modules["plt"]
    assert any("torch" in n and "left out" in n for n in sub.notes)
    compile(sub.files["submission.py"], "submission.py", "exec")


def test_indented_unavailable_import_keeps_valid_python(tmp_path):
    src = LAYERS + "if True:\n    import cupy as cp\n"
    sub = load.load(write(tmp_path, "s.py", src))
    assert "cp" in sub.missing_modules
    compile(sub.files["submission.py"], "submission.py", "exec")


def test_import_shims_are_kept_so_their_fallback_runs(tmp_path):
    # try: import X / except ImportError: fallback -- the box lacks X, so the fallback runs;
    # try: xrange / except NameError: xrange = range -- a probe for a name, then a definition
    src = LAYERS + ("try:\n    from scipy.special import expit\nexcept ImportError:\n"
                    "    def expit(z):\n        return 1 / (1 + np.exp(-z))\n"
                    "try:\n    xrange\nexcept NameError:\n    xrange = range\n")
    sub = load.load(write(tmp_path, "s.py", src))
    kept = sub.files["submission.py"]
    assert "from scipy.special import expit" in kept and "def expit" in kept
    assert "xrange = range" in kept and "expit" not in sub.missing_modules
    namespace = {}
    exec(compile(kept, "submission.py", "exec"), namespace)
    assert namespace["expit"](0.0) == 0.5 and namespace["xrange"] is range


# ---------------------------------------------------------------- bad input

PY2_HELPER = "\ndef helper(items):\n    for i in xrange(3):\n        print 'step', i\n    return items\n"


def test_python2_is_converted_and_said_so(tmp_path):
    sub = load.load(write(tmp_path, "old.py", LAYERS + PY2_HELPER))
    assert sub.problem is None and sub.python2
    kept = sub.files["submission.py"]
    assert "range(3)" in kept and "print('step', i)" in kept
    assert any("Python 2" in n and "converted" in n and "old.py" in n for n in sub.notes)
    # lines keep their numbers: the helper is where the student wrote it
    line = len(LAYERS.splitlines()) + 2
    assert kept.splitlines()[line - 1].startswith("def helper")


def test_python2_refused_by_the_rubric_names_the_line(tmp_path):
    sub = load.load(write(tmp_path, "old.py", LAYERS + PY2_HELPER), python2="refuse")
    line = len(LAYERS.splitlines()) + 4
    assert "Python 2" in sub.problem and f"line {line}" in sub.problem and "old.py" in sub.problem
    assert "\n" not in sub.problem


def test_python2_only_in_the_left_out_script_is_never_refused(tmp_path):
    src = LAYERS + "\nif __name__ == '__main__':\n    print 'training'\nprint 'done'\n"
    sub = load.load(write(tmp_path, "old.py", src), python2="refuse")
    assert sub.problem is None and sub.left_out


@pytest.mark.parametrize("stmt", ["except ValueError, e:", "raise ValueError, 'bad'", "if a <> b: pass"])
def test_other_python2_markers(tmp_path, stmt):
    body = f"    try:\n        pass\n    {stmt}\n        pass\n" if stmt.startswith("except") else f"    {stmt}\n"
    src = LAYERS + "\ndef helper(a=1, b=2):\n" + body
    refused = load.load(write(tmp_path, "old.py", src), python2="refuse")
    assert refused.problem and "Python 2" in refused.problem
    converted = load.load(write(tmp_path, "old.py", src))
    assert converted.problem is None and converted.python2


def test_syntax_error_names_line(tmp_path):
    src = LAYERS + "\ndef broken(:\n    pass\n"
    line = len(LAYERS.splitlines()) + 2
    sub = load.load(write(tmp_path, "s.py", src))
    assert "syntax error" in sub.problem and f"line {line}" in sub.problem
    assert "Python 2" not in sub.problem


@pytest.mark.parametrize("data,phrase", [
    (b"", "empty"),
    (b"  \n\n\t\n", "empty"),
    (b"\x00\x01\x02\x89PNG\x00", "binary"),
    (b"# caf\xe9 au lait\nx = 1\n", "not UTF-8"),
])
def test_empty_binary_non_utf8(tmp_path, data, phrase):
    sub = load.load(write(tmp_path, "s.py", data))
    assert sub.problem and phrase in sub.problem and "s.py" in sub.problem
    assert sub.files == {} and sub.graded_file is None


def test_no_layer_classes(tmp_path):
    sub = load.load(write(tmp_path, "s.py", "def relu(x):\n    return x\n"))
    assert "no layer classes" in sub.problem


def test_oversized_source_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(load, "MAX_SOURCE_BYTES", 100)
    sub = load.load(write(tmp_path, "s.py", LAYERS))
    assert sub.problem and "must be under" in sub.problem


def test_missing_path(tmp_path):
    sub = load.load(tmp_path / "nope.py")
    assert sub.problem and "no such file" in sub.problem


# ---------------------------------------------------------------- zips and folders

def test_zip_with_path_traversal_entries_ignored(tmp_path):
    escape = f"nngrader_escape_{uuid.uuid4().hex}.py"
    z = tmp_path / "hw.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("hw/layers.py", LAYERS)
        zf.writestr(f"../{escape}", LAYERS.replace("LinearTransform", "Evil"))
        zf.writestr(f"hw/../../{escape}", LAYERS.replace("LinearTransform", "Evil"))
        zf.writestr("/" + escape, LAYERS.replace("LinearTransform", "Evil"))
        zf.writestr("__MACOSX/hw/._layers.py", b"\x00\x05\x16\x07")
    sub = load.load(z, "hw")
    assert sub.problem is None
    assert list(sub.files) == ["submission.py"]  # only hw/layers.py came through
    assert sub.graded_file == "hw/layers.py"
    assert "Evil" not in sub.files["submission.py"]
    assert not (Path(tempfile.gettempdir()) / escape).exists()
    assert not (tmp_path / escape).exists()


def test_zip_too_large_refused(tmp_path, monkeypatch):
    z = tmp_path / "big.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("layers.py", LAYERS)
        zf.writestr("data.bin", b"\0" * 4096)
    monkeypatch.setattr(load, "MAX_ZIP_BYTES", 2048)
    sub = load.load(z)
    assert sub.problem and "too large" in sub.problem


def test_zip_with_too_many_files_refused(tmp_path, monkeypatch):
    z = tmp_path / "many.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i in range(6):
            zf.writestr(f"f{i}.py", "x = 1\n")
    monkeypatch.setattr(load, "MAX_ZIP_FILES", 5)
    assert "too large" in load.load(z).problem


def test_not_a_zip(tmp_path):
    sub = load.load(write(tmp_path, "hw.zip", b"PK\x03\x04 not really"))
    assert sub.problem and "not a valid zip" in sub.problem


def test_folder_picks_the_file_defining_the_layers(tmp_path):
    folder = tmp_path / "henry"
    write(folder, "utils.py", "def accuracy(p, y):\n    return (p == y).mean()\n")
    write(folder, "pkg/layers.py", LAYERS)
    write(folder, "train.py", "from pkg.layers import LinearTransform\nnet = LinearTransform(1, 2)\n")
    write(folder, "pkg/__init__.py", "")
    write(folder, ".ipynb_checkpoints/layers-checkpoint.py", LAYERS)
    sub = load.load(folder)
    assert sub.problem is None
    assert sub.graded_file == "pkg/layers.py" and sub.module == "pkg.layers"
    assert not any(".ipynb_checkpoints" in f for f in sub.files)
    assert "net = LinearTransform" not in sub.files["train.py"]   # script code left out everywhere
    assert {c.name for c in sub.classes} == {"LinearTransform", "ReLU"}
    assert not sub.missing_modules  # a local package is not an unavailable import


def test_folder_without_python(tmp_path):
    folder = tmp_path / "empty_folder"
    write(folder, "README.txt", "hello")
    assert "holds no .py or .ipynb" in load.load(folder).problem


# ---------------------------------------------------------------- discovering submissions

def test_discover_and_duplicate_ids(tmp_path):
    for name in ("alice.py", "alice.ipynb", "bob.zip", "notes.txt", ".hidden.py", "__pycache__/x.py"):
        write(tmp_path, name, "x = 1\n")
    (tmp_path / "carol").mkdir()
    found, skipped = load.discover(tmp_path)
    names = [p.name for p in found]
    assert names == sorted(names) and set(names) == {"alice.py", "alice.ipynb", "bob.zip", "carol"}
    assert len(skipped) == 1 and "notes.txt" in skipped[0]
    ids = load.submission_ids(found)
    assert ids[tmp_path / "alice.py"] == "alice_py"
    assert ids[tmp_path / "alice.ipynb"] == "alice_ipynb"
    assert ids[tmp_path / "bob.zip"] == "bob" and ids[tmp_path / "carol"] == "carol"
    assert len(set(ids.values())) == len(ids)


def test_symlinks_in_a_folder_submission_are_not_followed(tmp_path):
    secret = tmp_path / "secret.py"
    secret.write_text("TOKEN = 'do-not-leak'\nclass Leak:\n    def forward(self, x): pass\n"
                      "    def backward(self, g): pass\n")
    sub_dir = tmp_path / "alice"
    (sub_dir / "pkg").mkdir(parents=True)
    (sub_dir / "layers.py").write_text(
        "class Linear:\n    def __init__(self, W, b): self.W, self.b = W, b\n"
        "    def forward(self, x): return x @ self.W + self.b\n"
        "    def backward(self, g): return g @ self.W.T\n")
    (sub_dir / "notes.py").symlink_to(secret)
    (sub_dir / "pkg" / "outside").symlink_to(tmp_path, target_is_directory=True)
    sub = load.load(sub_dir, "alice")
    assert sub.problem is None
    assert len(sub.files) == 1 and sub.graded_file.endswith("layers.py")  # only the real file
    assert all("do-not-leak" not in src for src in sub.files.values())


def test_python2_conversion_reuses_one_tool_and_stays_the_same():
    from grader.load import from_python2, python2_tool
    first = "print 'x'\nfor i in xrange(3):\n    print i\n"
    other = "d = {}\nfor k, v in d.iteritems():\n    print k\n"
    once = from_python2(first, "a.py")
    assert once == "print('x')\nfor i in range(3):\n    print(i)\n"
    assert "d.items()" in from_python2(other, "b.py")
    assert from_python2(first, "a.py") == once  # no state carried over from the other file
    assert python2_tool.cache_info().currsize == 1
    assert from_python2("print 'unterminated\n", "c.py") is None
