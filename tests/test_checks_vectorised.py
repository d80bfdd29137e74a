"""vectorised.* on synthetic timings and real (loaded, never run) sources."""
from __future__ import annotations

import textwrap

import pytest

from grader.checks.base import Context
from grader.checks.vectorised import class_loops, vectorised_linear, vectorised_loss, vectorised_relu
from grader.load import load
from grader.observe import ProbeRun
from grader.rubric import load_rubric

RUBRIC = load_rubric()

HEADER = "import numpy as np\n\n"
RELU = '''
class ReLU:
    def forward(self, x):
        self.x = x
        return np.maximum(x, 0)

    def backward(self, grad):
        return grad * (self.x > 0)
'''
LOSS = '''
class SigmoidCrossEntropy:
    def forward(self, x, y):
        self.y = y
        self.s = 1 / (1 + np.exp(-x))
        return -np.mean(y * np.log(self.s) + (1 - y) * np.log(1 - self.s))

    def backward(self, grad):
        return grad * (self.s - self.y) / len(self.y)
'''
LINEAR = '''
class LinearTransform:
    def __init__(self, W, b):
        self.W, self.b = W, b
        for i in range(W.shape[0]):   # loops in __init__ are not judged
            for j in range(W.shape[1]):
                self.W[i, j] *= 1.0

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, grad, learning_rate=0.0, momentum=0.0, l2_penalty=0.0):
        self.dW = self.x.T @ grad
        self.db = grad.sum(axis=0)
        for p in (self.W, self.b):    # one short loop over parameters: fine
            p -= learning_rate * 0
        return grad @ self.W.T
'''
MLP = '''
class MLP:
    def __init__(self):
        self.layers = [LinearTransform(np.zeros((2, 2)), np.zeros(2)), ReLU()]

    def forward(self, x):
        for layer in self.layers:     # the MLP is not a layer: its loops are not judged
            for i in range(len(x)):
                pass
        return x
'''


def submission(tmp_path, linear=LINEAR, relu=RELU, loss=LOSS, extra=MLP):
    path = tmp_path / "hw2.py"
    path.write_text(HEADER + textwrap.dedent(linear) + relu + loss + extra)
    return load(path)


def timings(student_f, calib_f, student_b, calib_b, n=9):
    return {"forward": {"student_s": (student_f,) * n, "calibration_s": (calib_f,) * n},
            "backward": {"student_s": (student_b,) * n, "calibration_s": (calib_b,) * n}}


FAST = timings(6e-6, 5e-6, 12e-6, 11e-6)


def ctx(sub, layers=None, status="ok", roles=None):
    layers = {"linear": {"ok": True, "value": FAST}, "relu": {"ok": True, "value": FAST},
              "loss": {"ok": True, "value": FAST}} if layers is None else layers
    run = ProbeRun("timing", status, layers if status == "ok" else {}, limit_s=10.0, elapsed_s=0.02)
    roles = roles or {"linear": "LinearTransform", "relu": "ReLU", "loss": "SigmoidCrossEntropy", "mlp": "MLP"}
    return Context(submission=sub, roles=roles, probes={"timing": run}, inputs={"timing": {}},
                   settings=RUBRIC.settings, memory_mb=1024)


def loops_of(tmp_path, role="linear", **sources):
    c = ctx(submission(tmp_path, **sources))
    return [(lp.method, lp.kind, lp.code) for lp in class_loops(c, role)]


# ---------------------------------------------------------------- source

def test_vectorised_layers_have_no_loops(tmp_path):
    for role in ("linear", "relu", "loss"):
        assert loops_of(tmp_path, role) == []


@pytest.mark.parametrize("body, code", [
    ("for i in range(x.shape[0]):\n            out[i] = x[i] @ self.W", "for i in range(x.shape[0]):"),
    ("for i in range(len(x)):\n            out[i] = x[i] @ self.W", "for i in range(len(x)):"),
    ("for i, row in enumerate(x):\n            out[i] = row @ self.W", "for i, row in enumerate(x):"),
    ("n = x.shape[0]\n        for i in range(n):\n            out[i] = x[i] @ self.W", "for i in range(n):"),
    ("n, d = x.shape\n        for i in range(0, n):\n            out[i] = x[i] @ self.W", "for i in range(0, n):"),
    ("out = np.array([row @ self.W for row in x])", "out = np.array([row @ self.W for row in x])"),
])
def test_batch_loops_in_forward(tmp_path, body, code):
    linear = f'''
class LinearTransform:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        out = np.zeros((len(x), self.W.shape[1]))
        {body}
        return out + self.b

    def backward(self, grad):
        return grad @ self.W.T
'''
    assert loops_of(tmp_path, linear=linear) == [("LinearTransform.forward", "batch", code)]


def test_batch_loop_over_an_attribute_stored_in_forward(tmp_path):
    relu = '''
class ReLU:
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, grad):
        out = grad.copy()
        for i in range(self.mask.shape[0]):
            out[i] *= self.mask[i]
        return out
'''
    assert loops_of(tmp_path, "relu", relu=relu) == [("ReLU.backward", "batch", "for i in range(self.mask.shape[0]):")]


def test_a_loop_over_weight_rows_is_not_a_batch_loop_but_nesting_is_flagged(tmp_path):
    linear = '''
class LinearTransform:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, grad):
        self.dW = self.x.T @ grad          # (in, out): no batch axis
        for row in self.dW:
            row *= 1.0
        for j in range(self.W.shape[1]):
            for k in range(self.W.shape[0]):
                self.dW[k, j] += 0.0
        return grad @ self.W.T
'''
    assert loops_of(tmp_path, linear=linear) == [
        ("LinearTransform.backward", "nested", "for j in range(self.W.shape[1]):")]


def test_a_batch_loop_nested_in_another_loop_is_reported_once(tmp_path):
    loss = '''
class SigmoidCrossEntropy:
    def forward(self, x, y):
        self.y = y
        total = 0.0
        for i in range(len(x)):
            for j in range(x.shape[1]):
                total += np.logaddexp(0, -x[i, j]) if y[i, j] else np.logaddexp(0, x[i, j])
        return total / len(x)

    def backward(self, grad):
        return grad
'''
    assert loops_of(tmp_path, "loss", loss=loss) == [
        ("SigmoidCrossEntropy.forward", "batch, nested", "for i in range(len(x)):")]


def test_split_loss_classes_are_both_read(tmp_path):
    loss = '''
class Sigmoid:
    def forward(self, x):
        return np.array([1 / (1 + np.exp(-v)) for v in x])

    def backward(self, grad):
        return grad


class CrossEntropy:
    def forward(self, p, y):
        return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))

    def backward(self):
        return 0.0
'''
    sub = submission(tmp_path, loss=loss)
    c = ctx(sub, roles={"linear": "LinearTransform", "relu": "ReLU", "loss": ["Sigmoid", "CrossEntropy"]})
    assert [(lp.method, lp.kind) for lp in class_loops(c, "loss")] == [("Sigmoid.forward", "batch")]


# ---------------------------------------------------------------- verdicts

def test_fast_vectorised_code_passes(tmp_path):
    c = ctx(submission(tmp_path))
    for check in (vectorised_linear, vectorised_relu, vectorised_loss):
        v = check(c)
        assert v.status == "pass", v.message
        assert v.details["ratio"] == pytest.approx(18 / 16, rel=1e-2)
        assert v.details["forward"]["samples"] == 9


def test_the_minimum_of_the_repeats_is_used(tmp_path):
    noisy = {"forward": {"student_s": (5e-3, 6e-6, 9e-6), "calibration_s": (5e-6, 4e-3, 5e-6)},
             "backward": {"student_s": (12e-6, 30e-3), "calibration_s": (11e-6, 11e-6)}}
    layers = {"linear": {"ok": True, "value": noisy}}
    v = vectorised_linear(ctx(submission(tmp_path), layers))
    assert v.status == "pass" and v.details["ratio"] == pytest.approx(18 / 16, rel=1e-2)


def test_slow_code_fails_on_timing_alone(tmp_path):
    slow = timings(600e-6, 5e-6, 900e-6, 10e-6)   # 100x: a loop the source check cannot see
    v = vectorised_relu(ctx(submission(tmp_path), {"relu": {"ok": True, "value": slow}}))
    assert v.status == "fail" and v.family == "not_vectorised"
    assert "more than 10× as long" in v.message and "ReLU" in v.message and "np.maximum(x, 0)" in v.message
    assert v.details["evidence"] == ["timing"] and v.details["ratio"] == pytest.approx(100)


def test_the_ratio_threshold_comes_from_the_rubric(tmp_path):
    eight = timings(40e-6, 5e-6, 40e-6, 5e-6)
    c = ctx(submission(tmp_path), {"relu": {"ok": True, "value": eight}})
    assert vectorised_relu(c).status == "pass"
    strict = lambda cid: {**RUBRIC.settings(cid), "threshold": 5.0}  # noqa: E731
    c = Context(c.submission, c.roles, c.probes, c.inputs, strict)
    assert vectorised_relu(c).status == "fail"


def test_a_loop_fails_even_when_the_timing_is_fine(tmp_path):
    relu = '''
class ReLU:
    def forward(self, x):
        self.x = x
        return np.array([np.maximum(row, 0) for row in x])

    def backward(self, grad):
        return grad * (self.x > 0)
'''
    v = vectorised_relu(ctx(submission(tmp_path, relu=relu)))
    assert v.status == "fail" and v.family == "batch_loops"
    assert "ReLU.forward loops over the batch (line" in v.message
    assert v.details["evidence"] == ["source"] and v.details["loops"][0]["method"] == "ReLU.forward"
    assert v.details["loops"][0]["file"] == "hw2.py"


def test_both_kinds_of_evidence_are_named(tmp_path):
    linear = '''
class LinearTransform:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        n, d_out = x.shape[0], self.W.shape[1]
        out = np.zeros((n, d_out))
        for i in range(n):
            for j in range(d_out):
                out[i, j] = np.sum(x[i, :] * self.W[:, j]) + self.b[j]
        return out

    def backward(self, grad):
        return grad @ self.W.T
'''
    slow = timings(4e-3, 5e-6, 11e-6, 10e-6, n=4)
    v = vectorised_linear(ctx(submission(tmp_path, linear=linear), {"linear": {"ok": True, "value": slow}}))
    assert v.status == "fail" and v.family == "batch_loops"
    assert "× as long" in v.message and "for i in range(n):" in v.message
    assert v.details["ratio"] > 100 and v.details["forward"]["samples"] == 4
    assert v.details["evidence"] == ["timing", "source"]


def test_nested_loops_without_a_batch_loop_are_their_own_family(tmp_path):
    relu = '''
class ReLU:
    def forward(self, x):
        self.x = x
        return np.maximum(x, 0)

    def backward(self, grad):
        out = grad.copy()
        for a in range(3):
            for b in range(3):
                pass
        return out * (self.x > 0)
'''
    v = vectorised_relu(ctx(submission(tmp_path, relu=relu)))
    assert v.family == "nested_loops" and "nests one loop in another" in v.message


def test_a_layer_cut_at_its_time_limit_fails_with_where_it_was(tmp_path):
    cut = {"ok": False, "limit_s": 2.0, "error": {
        "type": "TooSlow", "message": "still running after 2 s", "name": None, "probe_error": False,
        "frames": [{"file": "submission.py", "line": 40, "function": "forward", "code": "for k in range(10**9):"}]}}
    v = vectorised_loss(ctx(submission(tmp_path), {"loss": cut}))
    assert v.status == "fail" and v.family == "not_vectorised"
    assert "still running after 2 s" in v.message
    assert v.details["interrupted_at"] == "hw2.py line 40: for k in range(10**9):"


def test_an_exception_while_timing_is_an_error(tmp_path):
    err = {"ok": False, "error": {"type": "ValueError", "message": "shapes (512,8) and (3,4) not aligned",
                                  "name": None, "probe_error": False, "frames": []}}
    v = vectorised_linear(ctx(submission(tmp_path), {"linear": err}))
    assert v.status == "error" and "ValueError" in v.message and "batch of 512" in v.message


def test_a_probe_timeout_still_reports_loops_from_the_source(tmp_path):
    relu = RELU.replace("return np.maximum(x, 0)", "return np.array([max(v, 0) for v in x])")
    v = vectorised_relu(ctx(submission(tmp_path, relu=relu), status="timeout"))
    assert v.status == "fail" and v.family == "batch_loops"
    v = vectorised_linear(ctx(submission(tmp_path), status="timeout"))
    assert v.status == "timeout"


def test_no_class_for_the_role_is_an_error(tmp_path):
    c = ctx(submission(tmp_path), roles={"linear": None, "relu": "ReLU", "loss": "SigmoidCrossEntropy"})
    assert vectorised_linear(c).status == "error"


@pytest.mark.parametrize("expr", [
    "np.vectorize(lambda v: max(v, 0.0))(x)",
    "np.apply_along_axis(lambda r: np.maximum(r, 0), 1, x)",
    "np.array(list(map(lambda r: np.maximum(r, 0), x)))",
])
def test_loops_in_disguise_are_batch_loops(tmp_path, expr):
    relu = RELU.replace("return np.maximum(x, 0)", f"return {expr}")
    c = ctx(submission(tmp_path, relu=relu))
    assert [(lp.method, lp.kind) for lp in class_loops(c, "relu")] == [("ReLU.forward", "hidden")]
    v = vectorised_relu(c)
    assert v.family == "batch_loops" and "runs a Python function once per entry" in v.message
