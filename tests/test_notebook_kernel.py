"""End to end in a real Jupyter kernel: grader.check() where students work.

One kernel (ipykernel, started by nbclient from a kernelspec written into a temporary
JUPYTER_PATH that points at this interpreter) runs a notebook made of a correct fixture
split into cells, with IPython syntax around it (`!cmd`, `x = !cmd`, `%timeit -o`, a
`%%time` cell, a `from __future__` import after other code), and calls grader.check() on
the kernel's history, on the saved file, with only="linear", and after an edit that was run
but never saved. The scores must be `nngrader grade`'s on the same notebook; the executed
notebook is exported to HTML and opened in headless Chromium to check the reports' layout
and that they do not restyle the notebook around them.
"""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

from conftest import ARTIFACTS, FIXTURES, run_cli, validate_result

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient", reason="nbclient is in the dev extras")
pytest.importorskip("ipykernel", reason="ipykernel is in the dev extras")

KERNEL = "nngrader-test"
MARK = "NNGRADER-TEST "
CORRECT = FIXTURES / "correct" / "classic_template.py"
BUGGY = FIXTURES / "buggy" / "sigmoid_derivative.py"


def split_cells(source: str) -> list[str]:
    """A .py file as notebook cells: one per top-level class or function, the imports and
    anything else between them in cells of their own."""
    lines = source.splitlines()
    starts = [0]
    for node in ast.parse(source).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.If)):
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
            starts += [first, (node.end_lineno or node.lineno)]
        elif isinstance(node, ast.Expr):  # a docstring: a markdown-like cell of its own
            starts.append(node.end_lineno or node.lineno)
    starts = sorted(set(starts + [len(lines)]))
    cells = ["\n".join(lines[a:b]).strip("\n") for a, b in zip(starts, starts[1:])]
    return [c for c in cells if c.strip()]


def emit(name: str, expr: str) -> str:
    """A line printing a report's facts for the test to read back from the cell output."""
    return (f"print({MARK!r} + json.dumps({{'name': {name!r}, 'score': {expr}.score, "
            f"'max_score': {expr}.max_score, 'error': {expr}.error, "
            f"'meta': {{k: {expr}.result.meta.get(k) for k in ('graded_what', 'only', 'left_out')}}, "
            f"'checks': {expr}.checks}}))")


def loss_class(path: Path) -> str:
    source = path.read_text()
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)
                and n.name == "SigmoidCrossEntropy")
    return "\n".join(source.splitlines()[node.lineno - 1:node.end_lineno])


def write_notebook(path: Path, cells: list[tuple[str, str]]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "nngrader test", "language": "python"}
    for kind, src in cells:
        nb.cells.append(nbformat.v4.new_code_cell(src) if kind == "code" else nbformat.v4.new_markdown_cell(src))
    nbformat.write(nb, str(path))
    return path


def student_notebook(folder: Path) -> Path:
    """classic_template.py as a student's notebook: imports after a shell cell, one class
    per cell, a %%time training cell and a %timeit line."""
    code = split_cells(CORRECT.read_text())
    imports, classes = code[1], [c for c in code if c.startswith("class ")]
    assert imports.startswith("from __future__") and len(classes) == 4
    cells = [("markdown", "# Homework 2\nA two-layer MLP."),
             ("code", "import json\n!echo installing nothing"),
             ("code", imports),   # a __future__ import after other code: IPython accepts it
             ("code", "files = !ls\nprint(len(files))"),
             *[("code", c) for c in classes],
             ("code", "%%time\nnet = MLP(4, 3)\nx = np.random.randn(8, 4)\n"
                      "y = (x[:, :1] > 0).astype(float)\nfor _ in range(5):\n    net.train(x, y, 0.1, 0.8, 0.0)"),
             ("code", "t = %timeit -o -n 1 -r 1 net.evaluate(x, y)\nnp.dot?")]
    return write_notebook(folder / "hw2.ipynb", cells)


def buggy_notebook(folder: Path) -> Path:
    cells = [("code", "!echo buggy")] + [("code", c) for c in split_cells(BUGGY.read_text())
                                        if not c.startswith("if __name__")]
    return write_notebook(folder / "buggy.ipynb", cells)


def driver_cells(hw2: Path, buggy: Path) -> list[tuple[str, str]]:
    return [
        ("code", "import grader\nr_kernel = grader.check()\n" + emit("kernel", "r_kernel") + "\nr_kernel"),
        ("code", f"r_file = grader.check({str(hw2)!r})\n" + emit("file", "r_file")),
        ("code", f"r_only = grader.check({str(hw2)!r}, only='linear')\n" + emit("only", "r_only") + "\nr_only"),
        # an edit that is run but never saved: the kernel's last definition wins
        ("code", loss_class(BUGGY)),
        ("code", "r_edit = grader.check(only='loss')\n" + emit("edit", "r_edit") + "\nr_edit"),
        ("code", f"r_buggy = grader.check({str(buggy)!r})\n" + emit("buggy", "r_buggy")),
        ("code", "print(" + repr(MARK) + " + json.dumps({'name': 'repr', 'text': repr(r_only)}))"),
    ]


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A kernelspec for this interpreter in a temporary JUPYTER_PATH (and IPython's own
    files in a temporary folder), for the module's one kernel."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "share" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "nngrader test", "language": "python"}))
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(root / "share"))
    mp.setenv("IPYTHONDIR", str(root / "ipython"))
    mp.setenv("JUPYTER_RUNTIME_DIR", str(root / "runtime"))
    mp.setenv("NO_COLOR", "1")
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def executed(kernel_env, tmp_path_factory):
    """The student's notebook plus the driver cells, run top to bottom in one kernel."""
    work = tmp_path_factory.mktemp("notebooks")
    hw2, buggy = student_notebook(work), buggy_notebook(work)
    nb = nbformat.read(str(hw2), as_version=4)
    for kind, src in driver_cells(hw2, buggy):
        nb.cells.append(nbformat.v4.new_code_cell(src))
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name=KERNEL,
                                     resources={"metadata": {"path": str(work)}})
    client.execute()
    ARTIFACTS.mkdir(exist_ok=True)
    nbformat.write(nb, str(ARTIFACTS / "notebook-executed.ipynb"))  # for a person to open
    reports = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                for line in out.get("text", "").splitlines():
                    if line.startswith(MARK):
                        data = json.loads(line[len(MARK):])
                        reports[data["name"]] = data
    return {"nb": nb, "work": work, "hw2": hw2, "buggy": buggy, "reports": reports}


@pytest.fixture(scope="module")
def graded_by_cli(executed, tmp_path_factory):
    """`nngrader grade` on the saved notebook, and `nngrader check --json` on the buggy one."""
    folder = tmp_path_factory.mktemp("submit")
    (folder / "hw2.ipynb").write_bytes(executed["hw2"].read_bytes())
    out = tmp_path_factory.mktemp("out")
    proc = run_cli("grade", folder, "--out", out, "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    grade = json.loads((out / "hw2" / "result.json").read_text())
    validate_result(grade)
    check = run_cli("check", executed["buggy"], "--json")
    assert check.returncode == 0, check.stderr
    return {"grade": grade, "buggy": json.loads(check.stdout)}


def verdicts(checks: list[dict]) -> dict:
    return {c["id"]: (c["status"], c["score"]) for c in checks}


def test_every_call_ran_in_the_kernel(executed):
    assert set(executed["reports"]) == {"kernel", "file", "only", "edit", "buggy", "repr"}
    for name in ("kernel", "file", "only", "edit", "buggy"):
        assert executed["reports"][name]["error"] is None, executed["reports"][name]


def test_kernel_history_and_saved_file_score_as_nngrader_grade(executed, graded_by_cli):
    grade = graded_by_cli["grade"]
    reports = executed["reports"]
    for name in ("kernel", "file"):
        assert verdicts(reports[name]["checks"]) == verdicts(grade["checks"]), name
        assert (reports[name]["score"], reports[name]["max_score"]) == (grade["score"], grade["max_score"])
    # it is the correct fixture: only the stability check fails (its sigmoid overflows)
    assert grade["max_score"] - grade["score"] <= 1
    kernel = reports["kernel"]["meta"]
    assert kernel["graded_what"].startswith("graded the code this kernel has run: ")
    assert "cells, In [1] to In [" in kernel["graded_what"]
    # the IPython lines were left out and said so, in both readings
    for name, cell in (("kernel", "In [3]"), ("file", "notebook cell 4")):  # by cell and line
        left_out = reports[name]["meta"]["left_out"]
        assert {"what": "an IPython shell command `files = !ls`", "where": f"{cell}, line 1"}.items() \
            <= next(d for d in left_out if "files" in d["what"]).items()
        whats = " ".join(d["what"] for d in left_out)
        assert "`%%time`" in whats and "%timeit -o" in whats, whats


def test_only_returns_only_those_checks(executed, graded_by_cli):
    only = executed["reports"]["only"]
    ids = [c["id"] for c in only["checks"]]
    assert ids == ["linear.forward", "linear.backward"]
    full = verdicts(graded_by_cli["grade"]["checks"])
    assert verdicts(only["checks"]) == {cid: full[cid] for cid in ids}
    assert only["max_score"] == 5 and only["meta"]["only"] == ids
    text = executed["reports"]["repr"]["text"]
    assert "only 2 checks ran (linear.forward, linear.backward)" in text and "score: 5 / 5" in text
    assert "\x1b[" not in text  # plain text: no colour codes


def test_an_unsaved_edit_counts_and_the_bug_is_named(executed, graded_by_cli):
    edit = {c["id"]: c for c in executed["reports"]["edit"]["checks"]}
    assert set(edit) == {"loss.forward", "loss.backward", "loss.nonnegative", "loss.stable"}
    assert edit["loss.backward"]["status"] == "fail"
    assert edit["loss.backward"]["details"]["family"] == "sigmoid_derivative"
    assert "s(z)*s(1-z)" in edit["loss.backward"]["message"]
    # the saved file still has the correct class
    assert verdicts(executed["reports"]["file"]["checks"])["loss.backward"] == ("pass", 2)


def test_buggy_notebook_names_the_bug_as_nngrader_check_does(executed, graded_by_cli):
    cli = graded_by_cli["buggy"]
    api = executed["reports"]["buggy"]
    assert verdicts(api["checks"]) == verdicts(cli["checks"])
    by_id = {c["id"]: c for c in api["checks"]}
    assert by_id["loss.backward"]["message"] == next(c for c in cli["checks"] if c["id"] == "loss.backward")["message"]
    assert "sigmoid derivative is written s(z)*s(1-z)" in by_id["loss.backward"]["message"]
    assert by_id["loss.backward"]["hints"] and by_id["loss.backward"]["hints"][0]["tip"] == "8e"


# ---------------------------------------------------------------- the HTML in a browser

def export(nb, path: Path) -> Path:
    from nbconvert import HTMLExporter
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    path.write_text(body, encoding="utf-8")
    return path


def without_reports(nb):
    stripped = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in stripped.cells:
        cell["outputs"] = [o for o in cell.get("outputs", [])
                           if "nngrader-report" not in str(o.get("data", {}).get("text/html", ""))]
    return stripped


STYLE_PROBE = """() => {
  const pick = (el) => { if (!el) return null; const s = getComputedStyle(el);
    return [s.fontFamily, s.fontSize, s.color, s.backgroundColor, s.margin, s.padding, s.lineHeight]; };
  return {body: pick(document.body), h1: pick(document.querySelector('.jp-MarkdownOutput h1')),
          input: pick(document.querySelector('.jp-InputArea-editor')),
          prompt: pick(document.querySelector('.jp-InputPrompt')),
          table: pick(document.querySelector('.jp-Cell:not(:has(.nngrader-report)) table'))};
}"""


def open_page(browser, path: Path):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    # the exported page links a CDN (require.js, MathJax): nothing leaves the machine
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
               else route.abort())
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page


def shoot(locator, name: str) -> None:
    """A screenshot of one element for a person to look at (a whole notebook page is slow)."""
    ARTIFACTS.mkdir(exist_ok=True)
    locator.screenshot(path=str(ARTIFACTS / name))


@pytest.fixture(scope="module")
def exported(executed, tmp_path_factory):
    return export(executed["nb"], tmp_path_factory.mktemp("html") / "executed.html")


def test_reports_render_inside_the_exported_notebook(executed, exported, browser, tmp_path):
    nb, reports = executed["nb"], executed["reports"]
    page = open_page(browser, exported)
    roots = page.locator("div.nngrader-report")
    assert roots.count() == 3  # r_kernel, r_only and r_edit were the cells' last expressions
    for i, name in enumerate(("kernel", "only", "edit")):
        root = roots.nth(i)
        root.scroll_into_view_if_needed()
        table = root.locator("table.summary")
        assert table.is_visible()
        box, table_box = root.bounding_box(), table.bounding_box()
        output = root.locator("xpath=ancestor::div[contains(@class, 'jp-OutputArea-output')][1]").bounding_box()
        assert table_box["width"] > 200 and table_box["height"] > 40
        # fits the cell: neither the report nor its table is wider than the output area
        assert box["x"] >= output["x"] - 1 and box["x"] + box["width"] <= output["x"] + output["width"] + 1
        assert table_box["x"] + table_box["width"] <= box["x"] + box["width"] + 1
        shoot(root, f"notebook-report-{name}.png")
        r = reports[name]
        assert root.locator(".score-big").inner_text().split() == [f"{r['score']:g}", "/", f"{r['max_score']:g}"]
        assert table.locator("tbody tr").count() == len(r["checks"])
        # the notebook's table defaults (right-aligned cells, zebra rows) do not reach in
        style = "e => [getComputedStyle(e).textAlign, getComputedStyle(e.parentElement).backgroundColor]"
        assert table.locator("tbody td").first.evaluate(style) == ["left", "rgba(0, 0, 0, 0)"]
        assert table.locator("tbody td.num").first.evaluate(style)[0] == "right"
    kernel_root = roots.nth(0)
    assert "graded the code this kernel has run" in kernel_root.locator(".graded-what").inner_text()
    assert "the score covers these only" in roots.nth(1).locator(".only").inner_text()
    # the failed loss check of the unsaved edit opens with its suspected mistake
    assert "sigmoid derivative" in roots.nth(2).locator("section.st-fail").first.inner_text()
    styles = page.evaluate(STYLE_PROBE)
    page.close()
    # the notebook around the reports looks exactly as it does without them
    plain = open_page(browser, export(without_reports(nb), tmp_path / "plain.html"))
    assert plain.locator("div.nngrader-report").count() == 0
    assert plain.evaluate(STYLE_PROBE) == styles
    plain.close()


def test_training_curves_show_in_the_notebook_report(exported, browser):
    page = open_page(browser, exported)
    root = page.locator("div.nngrader-report").first
    root.locator("details.passed > summary").click()  # passed checks fold away; one click opens
    chart = root.locator("section[id$='-train.xor'] svg.chart").first
    assert chart.is_visible()
    assert chart.bounding_box()["width"] > 100
    shoot(root.locator("section[id$='-train.xor']"), "notebook-report-curves.png")
    page.close()
