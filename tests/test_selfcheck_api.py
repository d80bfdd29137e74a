"""grader.check() and --only: the selection, its probes, the Report, and the CLI flag.

An --only run must give every selected check the verdict the full run gives (the checks
that consult other probes, such as a gradient check naming the layer check to fix first,
get those probes too), while running only the probes it needs.
"""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

import grader
from conftest import FIXTURES, run_cli
from grader import api, selection
from grader.checks import REGISTRY
from grader.rubric import load_rubric

CORRECT = FIXTURES / "correct" / "classic_template.py"
SPLIT = FIXTURES / "correct" / "sigmoid_ce_split.py"
RELU_BUG = FIXTURES / "buggy" / "relu_no_mask.py"


def verdicts(report) -> dict:
    return {c["id"]: (c["status"], c["score"], c["message"]) for c in report.checks}


# ---------------------------------------------------------------- selection

def test_selection_by_family_by_id_and_lists():
    enabled = list(REGISTRY)
    assert selection.select(enabled, "linear") == ["linear.forward", "linear.backward"]
    assert selection.select(enabled, "linear,relu.backward") == ["linear.forward", "linear.backward", "relu.backward"]
    assert selection.select(enabled, ["update", "mlp"])[-1] == "mlp.init_loss"
    assert selection.select(enabled, None) == enabled
    # 'linear' is the layer family, not every id containing the word
    assert "vectorised.linear" not in selection.select(enabled, "linear")


def test_unknown_selection_lists_the_valid_names():
    with pytest.raises(selection.SelectionError) as e:
        selection.select(list(REGISTRY), "lineer")
    msg = str(e.value)
    assert "'lineer' is not a check nngrader has" in msg
    for family in ("linear", "relu", "loss", "gradcheck", "vectorised", "update", "train", "structure", "mlp"):
        assert family in msg
    with pytest.raises(selection.SelectionError, match="turns off every check"):
        selection.select(["linear.forward"], "relu")


def test_probes_read_include_those_a_check_consults():
    assert selection.probes_read(["linear.forward"]) == {"linear"}
    assert selection.probes_read(["gradcheck.W1"]) == {"gradcheck", "linear", "relu", "loss"}
    assert selection.probes_read(["train.xor"]) == {"train_xor", "loss"}


# ---------------------------------------------------------------- only runs, in the sandbox

@pytest.fixture(scope="module")
def full_runs():
    return {p: grader.check(p) for p in (RELU_BUG, SPLIT)}


@pytest.mark.parametrize("family", selection.families())
def test_only_gives_the_full_runs_verdicts(full_runs, family):
    full = verdicts(full_runs[RELU_BUG])
    only = grader.check(RELU_BUG, only=family)
    ids = [c["id"] for c in only.checks]
    assert ids and all(i == family or i.startswith(family + ".") for i in ids)
    assert verdicts(only) == {i: full[i] for i in ids}
    assert only.max_score == sum(c["max_score"] for c in only.checks)
    assert only.result.meta["only"] == ids
    # only the probes these checks read ran
    assert set(only.result.meta["probes"]) == selection.probes_read(ids)


def test_a_gradient_check_still_names_the_layer_to_fix_first(full_runs):
    only = grader.check(RELU_BUG, only="gradcheck")
    failing = [c for c in only.checks if c["status"] == "fail"]
    assert failing and all("relu.backward" in c["details"]["likely_cause"] for c in failing)


def test_a_split_loss_is_judged_with_the_mlps_calls(full_runs):
    full = verdicts(full_runs[SPLIT])
    only = grader.check(SPLIT, only="loss.backward")
    assert verdicts(only) == {"loss.backward": full["loss.backward"]}
    assert set(only.result.meta["probes"]) == {"loss", "gradcheck"}


# ---------------------------------------------------------------- the Report

def test_report_reads_like_result_json_and_the_terminal_report(full_runs):
    r = full_runs[SPLIT]
    assert r.score == r.result.score and r.max_score == sum(c["points"] for c in load_rubric().checks.values())
    keys = {"id", "status", "score", "max_score", "message", "hints", "details"}
    assert all(set(c) == keys for c in r.checks)
    text = repr(r)
    assert text.startswith("nngrader: sigmoid_ce_split") and f"score: {r.score:g} / {r.max_score:g}" in text
    assert "\x1b[" not in text


def test_html_is_self_contained_and_scoped(full_runs):
    page = full_runs[RELU_BUG]._repr_html_()
    root = re.match(r'<div class="nngrader-report" id="(nngrader-[0-9a-f]{8})">', page.strip())
    assert root
    css = page[page.index("<style>") + 7:page.index("</style>")]
    rules = [r.strip() for r in re.findall(r"([^{}]+)\{[^{}]*\}", css)]
    assert rules and all(sel.strip().startswith("#" + root.group(1))
                         for rule in rules for sel in rule.split(","))
    assert "<script" not in page and "src=" not in page and "url(" not in page and "@import" not in page
    assert not re.search(r'href="(?!#)', page)  # only links within the report itself
    assert "relu.backward" in page and "svg" in page  # the learning curves come along
    assert page.count('class="nngrader-report"') == 1


# ---------------------------------------------------------------- misuse, and import cost

def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_import_grader_stays_cheap():
    out = python("import sys, grader\nprint(sorted(m for m in sys.modules if m.startswith('grader')),"
                 " 'IPython' in sys.modules, 'numpy' in sys.modules)")
    assert out.stdout.strip() == "['grader'] False False"


def test_no_path_outside_ipython_is_a_clear_error():
    out = python("import grader\ntry:\n    grader.check()\nexcept grader.CheckError as e:\n    print(e)")
    assert "grader.check() with no path grades the code a Jupyter/IPython kernel has run" in out.stdout
    assert "grader.check('hw2.py')" in out.stdout


def test_bad_arguments_are_one_line_errors(tmp_path):
    with pytest.raises(api.CheckError, match=r"nope\.py: no such file or folder"):
        grader.check(tmp_path / "nope.py")
    with pytest.raises(api.CheckError, match="'lineer' is not a check nngrader has"):
        grader.check(CORRECT, only="lineer")
    assert api.CheckError("x")._render_traceback_() == ["nngrader: x"]  # IPython shows this line only


def test_cli_check_only(tmp_path):
    proc = run_cli("check", CORRECT, "--only", "relu", "--only", "linear.forward", "--json")
    assert proc.returncode == 0, proc.stderr
    import json
    data = json.loads(proc.stdout)
    assert [c["id"] for c in data["checks"]] == ["linear.forward", "relu.forward", "relu.backward"]
    assert data["max_score"] == 2 + 1 + 2 and data["meta"]["only"] == [c["id"] for c in data["checks"]]
    text = run_cli("check", CORRECT, "--only", "relu")
    assert "only 2 checks ran (relu.forward, relu.backward): the score covers these only" in text.stdout
    bad = run_cli("check", CORRECT, "--only", "lineer")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("nngrader: --only: 'lineer' is not a check nngrader has")
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
