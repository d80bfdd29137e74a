"""The real in-box harness, run through the plain sandbox on tiny inline submissions."""
from __future__ import annotations

import ast
import json
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import GOOD_LAYERS as GOOD

import grader
from grader import load, observe, plan
from grader.roles import match_roles
from grader.sandbox import Limits, PlainSandbox

HARNESS = Path(grader.__file__).parent / "harness"  # the package copied into the box
HARNESS_FILES = sorted(HARNESS.glob("*.py"))


def patched(**methods: str) -> str:
    """GOOD with some methods' bodies replaced: key 'ReLU.forward' -> new body."""
    src = GOOD
    for qual, body in methods.items():
        cls, meth = qual.split(".")
        start = src.index(f"class {cls}")
        head = src.index(f"def {meth}(", start)
        line_end = src.index("\n", head) + 1
        nxt = src.find("\n    def ", line_end)
        nxt2 = src.find("\nclass ", line_end)
        end = min(p for p in (nxt, nxt2, len(src)) if p != -1)
        src = src[:line_end] + textwrap.indent(textwrap.dedent(body).rstrip(), " " * 8) + "\n" + src[end:]
    return src


def run_box(tmp_path: Path, source: str, timeouts=None, wall_s: float = 30.0):
    path = tmp_path / "student.py"
    path.write_text(source)
    sub = load.load(path, "student")
    assert sub.problem is None, sub.problem
    roles = match_roles(list(sub.classes))
    needed = {pid: ((timeouts or {}).get(pid, 10.0), {}) for pid in ("linear", "relu", "loss")}
    probes = plan.probes(7, needed)
    box = tmp_path / "box"
    limits = Limits(wall_s=wall_s, cpu_s=wall_s, memory_mb=1024)
    plan.write_box(box, sub, roles, probes, limits, 7)
    outcome = PlainSandbox().run(box, limits)
    raw = json.loads((box / "out" / "results.json").read_text())
    return outcome, raw["probes"], observe.read_results(box), box


def test_good_submission_all_probes_ok(tmp_path):
    outcome, raw, runs, _ = run_box(tmp_path, GOOD)
    assert outcome.status == "ok", outcome
    assert {k: v["status"] for k, v in raw.items()} == {"linear": "ok", "relu": "ok", "loss": "ok"}
    fwd = runs["linear"].value["forward"]
    assert fwd["ok"] and fwd["value"].shape == (plan.N, plan.D_OUT)


def test_endless_loop_times_out_and_next_probe_still_runs(tmp_path):
    src = patched(**{"ReLU.forward": "while True:\n    pass"})
    outcome, raw, runs, _ = run_box(tmp_path, src, timeouts={"relu": 1.0})
    assert raw["relu"]["status"] == "timeout" and raw["relu"]["limit_s"] == 1.0
    assert 1.0 <= raw["relu"]["elapsed_s"] < 5
    assert raw["loss"]["status"] == "ok" and raw["linear"]["status"] == "ok"
    assert outcome.status == "ok"


def test_os_exit_is_a_crash(tmp_path):
    src = patched(**{"LinearTransform.forward": "import os\nos._exit(3)"})
    _, raw, runs, _ = run_box(tmp_path, src)
    assert raw["linear"]["status"] == "crash" and raw["linear"]["exit_code"] == 3
    assert raw["relu"]["status"] == "ok"


def test_exception_recorded_with_student_frames(tmp_path):
    src = patched(**{"SigmoidCrossEntropy.forward": "raise ValueError('labels must be 0/1')"})
    _, raw, runs, _ = run_box(tmp_path, src)
    rec = raw["loss"]["value"]["forward"]
    assert rec["ok"] is False
    err = rec["error"]
    assert err["type"] == "ValueError" and "labels must be 0/1" in err["message"]
    assert err["frames"] and all(f["file"] == "submission.py" for f in err["frames"])
    line = src.splitlines().index("        raise ValueError('labels must be 0/1')") + 1
    assert err["frames"][-1]["line"] == line and err["frames"][-1]["function"] == "forward"
    # and observe keeps the line number
    assert observe.step(runs["loss"].value, "forward")[2]["frames"][-1]["line"] == line


def test_exit_at_import_time_is_an_error_of_every_probe(tmp_path):
    src = GOOD + "\nclass Boom:\n    raise SystemExit('bye')\n"
    _, raw, _, _ = run_box(tmp_path, src)
    for pid in ("linear", "relu", "loss"):
        assert raw[pid]["status"] == "error" and raw[pid]["error"]["type"] == "SystemExit"


def test_huge_return_values_are_bounded(tmp_path):
    src = patched(**{
        "LinearTransform.forward": "return np.zeros((1000, 1000))",
        "ReLU.forward": "return 'x' * 10**7",
        "SigmoidCrossEntropy.forward": "return list(range(10**6))",
    })
    _, raw, runs, box = run_box(tmp_path, src)
    assert (box / "out" / "results.json").stat().st_size < 200_000
    assert "__repr__" in raw["linear"]["value"]["forward"]["value"]
    assert isinstance(runs["linear"].value["forward"]["value"], observe.Opaque)
    assert len(raw["relu"]["value"]["forward"]["value"]) == 2000
    assert len(raw["loss"]["value"]["forward"]["value"]["items"]) == 16


def test_each_call_gets_fresh_inputs(tmp_path):
    # forward zeroes its input in place; backward(grad, x) must still see the grader's x.
    src = GOOD.replace(
        "def backward(self, grad_output):\n        return grad_output * (self.x > 0)",
        "def backward(self, grad_output, x):\n        return x")
    src = src.replace("self.x = x\n        return np.maximum(x, 0)", "x *= 0\n        return x")
    assert src.count("x *= 0") == 1 and "return x\n" in src
    _, _, runs, _ = run_box(tmp_path, src)
    back = runs["relu"].value["backward"]["value"]
    expected = plan.relu_inputs(7)["x"]
    assert back.tolist() == expected.tolist()


def test_script_code_does_not_run_in_the_box(tmp_path):
    src = GOOD + "\nopen('/dev/null').read()\nwhile True:\n    pass\n"
    outcome, raw, _, _ = run_box(tmp_path, src, wall_s=20)
    assert outcome.status == "ok" and raw["linear"]["status"] == "ok"


def imported_modules(path: Path) -> set[str]:
    """Absolute imports of one harness module; relative ones must stay inside the package."""
    tree = ast.parse(path.read_text())
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            targets = [node.module] if node.module else [a.name for a in node.names]  # from . import x
            assert node.level == 1 and all((HARNESS / f"{t}.py").is_file() for t in targets), \
                f"{path.name} line {node.lineno}: relative import leaving the harness package"
        elif isinstance(node, ast.ImportFrom):
            mods.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            mods.add("<dynamic __import__>")
    return mods


@pytest.mark.parametrize("path", HARNESS_FILES, ids=lambda p: p.name)
def test_harness_imports_only_stdlib_and_numpy(path):
    mods = imported_modules(path)
    roots = {m.split(".")[0] for m in mods}
    assert "grader" not in roots
    allowed = set(sys.stdlib_module_names) | {"numpy", "nnharness"}  # nnharness: entry.py
    assert roots <= allowed, roots - allowed
    # nor by a string handed to importlib
    consts = {n.value for n in ast.walk(ast.parse(path.read_text()))
              if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert not any(c == "grader" or c.startswith(("grader.", "grader:")) for c in consts)


def test_harness_runs_from_a_bare_copy(tmp_path):
    # Copied alone into the box (no grader package next to it) the harness still works:
    # test_good_submission_all_probes_ok runs it from box/harness.py; check nothing else was copied.
    _, _, _, box = run_box(tmp_path, GOOD)
    assert sorted(p.name for p in box.iterdir()) == ["harness.py", "nnharness", "out", "plan.json", "src", "work"]
    assert sorted(p.name for p in (box / "nnharness").iterdir()) == sorted(
        p.name for p in HARNESS_FILES if p.name != "entry.py")
    assert not (box / "src" / "grader").exists()


def test_the_students_source_is_compiled_once_and_checked_against_its_text(tmp_path):
    """The harness compiles the sources before forking the probes, so no child compiles the
    same text again; the bytecode is tied to the source's hash, so an edited file is
    compiled afresh, and a file that does not compile, or warns, is left to the import."""
    import importlib.util
    import subprocess
    from grader.harness.bytecode import compile_student

    def pyc(path):
        return Path(importlib.util.cache_from_source(str(path)))

    _, raw, _, box = run_box(tmp_path, GOOD)
    assert {v["status"] for v in raw.values()} == {"ok"}
    written = pyc(box / "src" / "submission.py")
    assert written.exists() and int.from_bytes(written.read_bytes()[4:8], "little") == 0b11

    src = tmp_path / "mod"
    src.mkdir()
    (src / "m.py").write_text("VALUE = 1\n")
    (src / "broken.py").write_text("def f(:\n")
    (src / "warns.py").write_text("x = 1\nif x is 1:\n    pass\n")  # SyntaxWarning
    compile_student(str(src), "m")
    assert pyc(src / "m.py").exists()
    assert not pyc(src / "broken.py").exists() and not pyc(src / "warns.py").exists()
    (src / "m.py").write_text("VALUE = 22\n")  # new text, stale bytecode: compiled afresh
    out = subprocess.run([sys.executable, "-B", "-c", "import m, warns; print(m.VALUE)"], cwd=src,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "22" and "SyntaxWarning" in out.stderr  # the import still warns


def test_compiling_is_bounded_in_size_and_time(tmp_path, monkeypatch):
    from grader.harness import bytecode

    (tmp_path / "a_big.py").write_text("X = 1\n" * 60_000)  # ~360 KB
    (tmp_path / "b_big.py").write_text("Y = 2\n" * 60_000)
    (tmp_path / "main.py").write_text("Z = 3\n")
    chosen = bytecode.sources(str(tmp_path), "main")
    assert chosen[0].endswith("main.py") and len(chosen) == 2  # the main module first, then the cap
    monkeypatch.setattr(bytecode, "TIME_LIMIT_S", 0.0)  # a compile that overruns is cut off
    bytecode.compile_student(str(tmp_path), "main")  # returns, and raises nothing


def test_the_timing_probe_draws_its_arrays_from_the_plans_seed():
    """The plan sends shapes and a seed, not half a megabyte of random numbers: the same
    arrays every time, of the planned shapes, and labels that alternate."""
    from grader.harness.timing import drawn
    args = plan.timing_inputs(7)
    assert len(json.dumps(args)) < 2000
    a, b = drawn(args), drawn(args)
    assert a.keys() == {*args["normal"], *args["labels"]}
    for name, (shape, _) in args["normal"].items():
        assert a[name].shape == tuple(shape) and (a[name] == b[name]).all()
    assert a["loss_z"].std() > 1.5  # scale 2
    assert a["loss_y"][:4].ravel().tolist() == [0.0, 1.0, 0.0, 1.0]
    assert not (drawn(plan.timing_inputs(8))["linear_x"] == a["linear_x"]).all()


def test_what_a_probe_printed_reaches_the_output_though_the_child_ends_with_os_exit(tmp_path):
    """A probe child ends with os._exit: what the student printed and Python still held
    in its buffer (stdout to a pipe is block-buffered) must be flushed first."""
    src = patched(**{"ReLU.forward": "print('relu saw', x.shape)\nself.x = x\n"
                                     "return np.maximum(x, 0)"})
    outcome, raw, _, _ = run_box(tmp_path, src)
    assert raw["relu"]["status"] == "ok"
    assert "relu saw" in outcome.stdout + outcome.stderr


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix, on purpose
def test_the_early_stopping_rule_reads_plain_arrays_and_matrices_alike():
    import numpy as np
    from grader.harness.training import separates
    for logits in (np.array([[2.0], [-1.0], [0.5]]), np.matrix([[2.0], [-1.0], [0.5]])):
        assert separates(logits, [True, False, True]) and not separates(logits, [True, True, True])
    assert not separates(np.array([1.0, -1.0]), [True, False, True]) and not separates(None, [True])
