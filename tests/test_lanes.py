"""Probes side by side (grader/harness/lanes.py): the same verdicts as one by one.

`nngrader check` runs a submission's probes in two lanes when its box has the cores and
its code starts no process, thread or signal and writes no file (grader/side_by_side.py);
`grade` runs them one by one. Only the wall time may change.
"""
from __future__ import annotations

import os

import pytest

from conftest import FIXTURES
from grader.harness import lanes
from grader.harness.process import Job

SAMPLES = ["correct/classic_template.py", "correct/no_mlp_class.py", "buggy/dx_sign.py",
           "buggy/first_layer_frozen.py", "buggy/relu_no_mask.py",
           # attacks the screen lets through (they start no process, write no file)
           "adversarial/forged_stdout.py", "adversarial/html_injection.py",
           "adversarial/huge_output.py", "adversarial/memory_bomb.py",
           # and one it does not: one by one whatever was asked
           "adversarial/daemon.py"]


@pytest.fixture(scope="module")
def graders():
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core here: nothing runs side by side")
    from grader.rubric import load_rubric
    from grader.sandbox import open_sandbox
    return load_rubric(), open_sandbox("auto")


def graded(graders, rel: str, n: int) -> dict:
    from grader.pipeline import grade_submission
    rubric, sandbox = graders
    path = FIXTURES / rel
    result = grade_submission(path, path.stem, rubric, sandbox, lanes=n).to_json()
    one_by_one = "one_by_one" in result["meta"]["sandbox"] or sandbox.tier != "namespaces"
    assert result["meta"]["sandbox"]["lanes"] == (1 if one_by_one else n)
    return result


@pytest.mark.parametrize("rel", SAMPLES)
def test_side_by_side_and_one_by_one_give_the_same_verdicts(graders, rel):
    one, two = graded(graders, rel, 1), graded(graders, rel, 2)
    assert [(c["id"], c["status"], c["score"], c["message"]) for c in two["checks"]] == \
        [(c["id"], c["status"], c["score"], c["message"]) for c in one["checks"]]
    assert two["meta"]["probes"].keys() == one["meta"]["probes"].keys()


# The cheap layer probes share one child; this ReLU ends its process once the linear layer
# has run in it, so one by one relu's probe crashes and its checks fail: a rerun of relu
# alone (in a fresh child) would pass them. Side by side, the group runs again as a whole.
GROUP_STATE = """
_LINEAR_RAN = []
_real_linear_forward = LinearTransform.forward
def _forward(self, x):
    _LINEAR_RAN.append(1)
    return _real_linear_forward(self, x)
LinearTransform.forward = _forward
_real_relu_forward = ReLU.forward
def _relu_forward(self, x):
    if _LINEAR_RAN:
        import os
        os._exit(3)
    return _real_relu_forward(self, x)
ReLU.forward = _relu_forward
"""


def test_a_crash_in_the_group_of_cheap_probes_costs_the_same_side_by_side(graders, tmp_path):
    source = (FIXTURES / "correct" / "classic_template.py").read_text()
    path = tmp_path / "group_state.py"
    path.write_text(source.replace("\nif __name__", GROUP_STATE + "\nif __name__", 1)
                    if "\nif __name__" in source else source + GROUP_STATE)
    from grader.pipeline import grade_submission
    rubric, sandbox = graders
    one, two = (grade_submission(path, "g", rubric, sandbox, lanes=n).to_json() for n in (1, 2))
    relu = {c["id"]: c["status"] for c in one["checks"] if c["id"].startswith("relu.")}
    assert "pass" not in relu.values(), relu  # the crash costs relu its points one by one
    assert [(c["id"], c["status"], c["score"]) for c in two["checks"]] == \
        [(c["id"], c["status"], c["score"]) for c in one["checks"]]


def probe(pid: str, kind: str) -> dict:
    return {"id": pid, "kind": kind, "timeout_s": 5, "args": {}}


def test_records_that_may_come_from_a_shared_limit_run_again_alone():
    assert lanes.shared_limit({"status": "crash", "exit_code": -9})
    assert lanes.shared_limit({"status": "error", "error": {"type": "MemoryError"}})
    assert lanes.shared_limit({"status": "error", "error": {"type": "ProcessLimit"}})
    assert not lanes.shared_limit({"status": "error", "error": {"type": "ValueError"}})
    assert not lanes.shared_limit({"status": "ok", "value": {}})
    assert not lanes.shared_limit({"status": "timeout", "limit_s": 5})
    # a step the probe recorded (its own record stays "ok"): a fork or a thread refused
    step = {"ok": False, "error": {"type": "BlockingIOError", "message": "[Errno 11]"}}
    assert lanes.shared_limit({"status": "ok", "value": {"runs": [{"steps": [step]}]}})
    thread = {"type": "RuntimeError", "message": "can't start new thread"}
    assert lanes.shared_limit({"status": "ok", "value": {"forward": {"error": thread}}})
    plain = {"type": "RuntimeError", "message": "shapes do not match"}
    assert not lanes.shared_limit({"status": "ok", "value": {"forward": {"error": plain}}})


def test_the_longest_probes_start_first():
    jobs = [Job([probe("linear", "linear"), probe("relu", "relu")]), Job([probe("timing", "timing")]),
            Job([probe("update", "update")]), Job([probe("train_xor", "train")]),
            Job([probe("gradcheck", "gradcheck")])]
    assert [j.label for j in lanes.in_order(jobs)] == \
        ["train_xor", "gradcheck", "update", "timing", "linear,relu"]


def test_strays_are_swept_only_in_a_box_of_their_own(monkeypatch):
    """Outside a PID namespace of the box's own (the grader's tests, the container tier)
    /proc lists other people's processes: nothing may be signalled."""
    killed = []
    monkeypatch.setattr(lanes.os, "kill", lambda pid, sig: killed.append(pid))
    for mode in ("", "shared-pids"):
        monkeypatch.setattr(lanes, "sole_uid", lambda mode=mode: mode)
        assert lanes.end_strays(set()) is False
    assert killed == []


def test_strays_are_the_processes_outside_the_kept_groups(monkeypatch):
    monkeypatch.setattr(lanes, "sole_uid", lambda: "1")
    monkeypatch.setattr(lanes.os, "getpid", lambda: 2)
    monkeypatch.setattr(lanes.os, "getpgrp", lambda: 2)
    table = [[(1, 1), (2, 2), (7, 7), (8, 7), (9, 9)], []]  # then none left alive
    monkeypatch.setattr(lanes, "processes", lambda: table.pop(0) if table else [])
    killed = []
    monkeypatch.setattr(lanes.os, "kill", lambda pid, sig: killed.append(pid))
    assert lanes.end_strays({7}) is True  # 8 and 9 are the submission's own
    assert killed == [9]  # not PID 1, not the harness, not the running probe's group
    table[:] = [[(1, 1), (2, 2), (7, 7)]]
    assert lanes.end_strays({7}) is False  # only the probe child itself


@pytest.mark.parametrize("code, why", [
    ("import os\ndef f():\n    os.fork()\n", "fork"),
    ("import threading\n", "threading"),
    ("from signal import SIGSTOP\n", "signal"),
    ("def f(x):\n    return getattr(x, 'fo' + 'rk')()\n", "getattr"),
    ("import os\ndef f():\n    return os.__getattribute__('fork')\n", "__getattribute__"),
    ("import sys\ndef f():\n    return sys.modules['_thread']\n", "modules"),
    ("import numpy as np\ndef f():\n    return np.ctypeslib\n", "ctypeslib"),
    ("def f(w):\n    open('state.json', 'w').write(str(w))\n", "open for writing"),
    ("import numpy as np\ndef f(w):\n    np.save('w.npy', w)\n", "save"),
    ("def f():\n    return open('/tmp/x').read()\n", "/tmp/x"),
])
def test_code_that_could_tell_lanes_apart_runs_one_by_one(tmp_path, code, why):
    from grader.load import load
    from grader.side_by_side import why_one_by_one
    path = tmp_path / "hw.py"
    path.write_text((FIXTURES / "correct" / "classic_template.py").read_text() + "\n" + code)
    assert why in why_one_by_one(load(path))


def test_homework_code_runs_side_by_side(tmp_path):
    from grader.load import load
    from grader.side_by_side import why_one_by_one
    for rel in ("correct/classic_template.py", "correct/optimizer_object.py", "buggy/dx_sign.py"):
        assert why_one_by_one(load(FIXTURES / rel)) == "", rel
    path = tmp_path / "hw.py"
    path.write_text((FIXTURES / "correct" / "classic_template.py").read_text() + "\nimport os\n"
                    "def f(p):\n    return '/'.join([p, 'x']), open(p).read()\n")
    assert why_one_by_one(load(path)) == ""  # reading, and a lone "/", are fine
