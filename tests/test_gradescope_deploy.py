"""Gradescope as deployed: the log on stdout, pinned dependencies, the file graded when a
student uploads several, the sandbox named in results.json; and nothing of the
instructor's machine in what the student reads."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import nbformat
import pytest

from builders import alice, broken, mallory
from conftest import FIXTURES, run_cli
from grader.export import gradescope

REPO = Path(__file__).resolve().parents[1]


def test_results_json_names_the_tier_and_whether_the_code_was_isolated():
    iso = alice().with_meta(sandbox={**alice().meta["sandbox"], "isolated": True})
    out = gradescope.results_json(iso)["output"]
    assert "Sandbox: namespaces (isolated); protections: uid-pool, netns" in out
    plain = gradescope.results_json(mallory().with_meta(
        sandbox={**mallory().meta["sandbox"], "isolated": False}))["output"]
    assert "Sandbox: plain (NOT isolated" in plain and "rlimits" in plain
    assert "Sandbox: not recorded" in gradescope.results_json(broken())["output"]


def test_the_zip_pins_every_dependency_to_the_installed_version(tmp_path):
    wheel = tmp_path / "nngrader-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK")
    with zipfile.ZipFile(gradescope.build_zip(tmp_path / "ag.zip", None, wheel)) as z:
        reqs = z.read("requirements.txt").decode()
        setup = z.read("setup.sh").decode()
    pins = dict(line.split("==") for line in reqs.splitlines() if "==" in line)
    for dist in ("numpy", "nbformat", "jinja2", "rich", "docker", "packaging", "markupsafe"):
        assert pins[dist] == version(dist), dist            # the versions the instructor tried
    assert "nngrader" not in pins                            # that one is the wheel itself
    assert "-r /autograder/source/requirements.txt /autograder/source/" + wheel.name in setup
    pyver = ".".join(map(str, sys.version_info[:2]))
    assert f"python{pyver}-venv" in setup and f"Python {sys.version.split()[0]}" in reqs


def test_run_autograder_prints_the_grading_log_on_stdout(tmp_path):
    wheel = tmp_path / "nngrader-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK")
    with zipfile.ZipFile(gradescope.build_zip(tmp_path / "ag.zip", None, wheel)) as z:
        script = z.read("run_autograder").decode()
    root, bindir = tmp_path / "autograder", tmp_path / "bin"
    (root / "submission").mkdir(parents=True)
    (root / "submission" / "hw2.py").write_text("x = 1\n")
    bindir.mkdir()
    fake = bindir / "nngrader"
    fake.write_text("#!/usr/bin/env bash\necho 'nngrader: graded 1 submissions in 0.4 s' >&2\n"
                    f'mkdir -p "$4/submission" && cat > "$4/submission/result.json" <<EOF\n{alice().dumps()}\nEOF\n')
    fake.chmod(0o755)
    script = script.replace("/autograder", str(root)).replace("/opt/nngrader/bin", str(bindir))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PYTHONPATH": str(REPO)}
    p = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=True)
    assert "nngrader: graded 1 submissions" in p.stdout            # what Gradescope shows
    assert "nngrader: graded 1 submissions" in (root / "results" / "grade.log").read_text()
    assert json.loads((root / "results" / "results.json").read_text())["score"] == alice().score


def notebook_of(source: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# HW2"), nbformat.v4.new_code_cell(source)]
    return nbformat.writes(nb)


@pytest.fixture(scope="module")
def upload(tmp_path_factory):
    """A Gradescope-style upload graded through the CLI from an absolute path: hw2.py (a
    correct solution) and hw2.ipynb (one with a bug), once with the default rubric and once
    with a rubric that prefers notebooks."""
    tmp = tmp_path_factory.mktemp("gs")
    sub = tmp / "instructor-home" / "in" / "submission"
    sub.mkdir(parents=True)
    shutil.copy(FIXTURES / "correct" / "classic_template.py", sub / "hw2.py")
    (sub / "hw2.ipynb").write_text(notebook_of((FIXTURES / "buggy" / "db_mean.py").read_text()))
    rubric = tmp / "nb-first.toml"
    rubric.write_text((REPO / "rubrics" / "default.toml").read_text()
                      + '\n[submission]\nprefer = ["*.ipynb", "*.py"]\n')
    runs = {}
    for label, extra in (("default", ()), ("notebooks", ("--rubric", rubric))):
        out = tmp / f"out-{label}"
        p = run_cli("grade", sub.parent, "--out", out, "--jobs", "1", *extra)
        assert p.returncode == 0, p.stderr
        runs[label] = out
    return tmp, runs


def test_the_rubric_chooses_which_file_is_graded_and_says_so(upload, cli):
    tmp, runs = upload
    default = json.loads((runs["default"] / "submission" / "result.json").read_text())
    assert default["meta"]["choice"] == {"graded": "hw2.py", "not_graded": ["hw2.ipynb"],
                                         "why": "the course grades *.py files first"}
    nb = json.loads((runs["notebooks"] / "submission" / "result.json").read_text())
    assert nb["meta"]["graded_file"] == "hw2.ipynb" and nb["meta"]["choice"]["not_graded"] == ["hw2.py"]
    assert nb["score"] < default["score"]                 # the notebook's bug was graded
    assert cli("export", runs["notebooks"], "--format", "gradescope") == 0
    out = json.loads((runs["notebooks"] / "export" / "gradescope" / "submission" / "results.json")
                     .read_text())["output"]
    assert "Graded file: hw2.ipynb" in out and "Not graded: hw2.py" in out and "*.ipynb" in out
    page = (runs["notebooks"] / "submission" / "feedback.html").read_text()
    assert 'id="not-graded"' in page and "hw2.py" in page.split('id="not-graded"')[1][:200]
    assert "Not graded: hw2.py" in (runs["notebooks"] / "submission" / "feedback.md").read_text()


def test_student_files_hold_no_path_of_the_instructors_machine(upload, cli):
    tmp, runs = upload
    out = runs["default"]
    roster = tmp / "roster.csv"
    roster.write_text("name,id,submission\nAda,101,submission\n")
    assert cli("export", out, "--format", "canvas", "--roster", roster) == 0
    assert cli("export", out, "--format", "gradescope") == 0
    student_files = [out / "submission" / "feedback.html", out / "submission" / "feedback.md",
                     out / "export" / "canvas_feedback" / "101.txt",
                     out / "export" / "gradescope" / "submission" / "results.json"]
    for f in student_files:
        text = f.read_text()
        assert str(tmp) not in text and "instructor-home" not in text, f
        assert "nngrader-box-" not in text and str(REPO) not in text, f
    assert "hw2.py" in (out / "submission" / "feedback.html").read_text()   # its own name stays
    assert str(tmp) in (out / "submission" / "result.json").read_text()     # instructor's record keeps it


def test_a_bad_prefer_setting_is_refused_at_start_up(tmp_path):
    rubric = tmp_path / "r.toml"
    rubric.write_text((REPO / "rubrics" / "default.toml").read_text() + "\n[submission]\nprefer = \"*.py\"\n")
    (tmp_path / "in").mkdir()
    p = run_cli("grade", tmp_path / "in", "--out", tmp_path / "out", "--rubric", rubric)
    assert p.returncode == 2 and "submission.prefer must be a list of file-name patterns" in p.stderr
