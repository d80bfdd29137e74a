"""Per-layer checks on synthetic observations: verdicts, families, partial credit, scoring.

Expected values are written out here (x @ W + b, g @ W.T, ...) rather than taken from
reference/, so a wrong reference would show up too.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader import plan
from grader.checks import REGISTRY
from grader.checks.base import Context, Verdict
from grader.judge import judge
from grader.load import Submission
from grader.observe import ProbeRun
from grader.rubric import load_rubric
from grader.score import score

SEED = 20261124
INPUTS = {"linear": plan.linear_inputs(SEED), "relu": plan.relu_inputs(SEED), "loss": plan.loss_inputs(SEED)}
ROLES = {"linear": "LinearTransform", "relu": "ReLU", "loss": "SigmoidCrossEntropy", "mlp": "MLP"}
RUBRIC = load_rubric()

L = INPUTS["linear"]
X, W, B, G = L["x"], L["W"], L["b"], L["grad"]
N = len(X)
DX, DW, DB = G @ W.T, X.T @ G, G.sum(axis=0)
RX, RG = INPUTS["relu"]["x"], INPUTS["relu"]["grad"]
Z, Y = INPUTS["loss"]["z"], INPUTS["loss"]["y"]
S = 1 / (1 + np.exp(-Z))
PER = -(Y * np.log(S) + (1 - Y) * np.log(1 - S))


def sub(**kw) -> Submission:
    return Submission(id="s", path=Path("hw.py"), graded_file="hw.py", **kw)


def ctx(probes: dict, roles=None, submission=None) -> Context:
    return Context(submission=submission or sub(), roles=ROLES if roles is None else roles,
                   probes=probes, inputs=INPUTS, settings=RUBRIC.settings, memory_mb=512,
                   run_message="the harness exited with code 1")


def ok(value):
    return {"ok": True, "value": value}


def linear_run(forward=None, backward=None, attrs=None, update=None, layout="in_out") -> dict:
    value = {"construct": {"how": "(W, b)", "W": "W", "layout": layout, "b": "b", "b_shape": [3]},
             "forward": ok(X @ W + B if forward is None else forward),
             "backward": ok(backward), "attrs": attrs or {}, "update": update or {"ok": False}}
    return {"linear": ProbeRun("linear", "ok", value)}


def run(check_id: str, probes: dict, **kw) -> Verdict:
    return REGISTRY[check_id].run(ctx(probes, **kw))


# ---------------------------------------------------------------- linear forward

def test_linear_forward_correct():
    v = run("linear.forward", linear_run())
    assert v.status == "pass", v.message


def test_linear_forward_without_bias_names_family():
    v = run("linear.forward", linear_run(forward=X @ W))
    assert v.status == "fail" and v.family == "no_bias" and "bias" in v.message


def test_linear_forward_transposed_output():
    v = run("linear.forward", linear_run(forward=(X @ W + B).T))
    assert v.status == "fail" and "transposed" in v.message and "(3, 7)" in v.message


def test_linear_forward_returning_nothing():
    probes = linear_run()
    probes["linear"].value["forward"] = ok(None)
    v = run("linear.forward", probes)
    assert v.status == "fail" and "nothing was returned" in v.message


# ---------------------------------------------------------------- linear backward

def test_linear_backward_tuple_correct():
    v = run("linear.backward", linear_run(backward=(DX, DW, DB)))
    assert v.status == "pass", v.message
    assert v.details["sources"] == {"dx": "returned", "dW": "returned", "db": "returned"}


def test_correct_dx_wrong_db_gives_two_thirds_and_db_mean():
    v = run("linear.backward", linear_run(backward=(DX, DW, DB / N)))
    assert v.status == "fail" and v.family == "db_mean"
    assert v.fraction == pytest.approx(2 / 3)
    assert "averaged" in v.message
    (cr,) = score({"linear.backward": v}, RUBRIC)
    assert cr.score == pytest.approx(2.0) and cr.max_score == 3
    assert cr.hints[0].tip == "8h" and cr.hints[0] == RUBRIC.families["db_mean"]
    assert cr.details["family"] == "db_mean"


def test_dx_sign_family():
    v = run("linear.backward", linear_run(backward=(-DX, DW, DB)))
    assert v.status == "fail" and v.family == "dx_sign" and v.fraction == pytest.approx(2 / 3)


def test_dw_factor_family_with_ratio():
    v = run("linear.backward", linear_run(backward=(DX, 2 * DW, DB)))
    assert v.family == "dw_factor" and v.details["quantities"]["dW"]["ratio"] == "×2"


def test_db_not_summed_family():
    v = run("linear.backward", linear_run(backward=(DX, DW, G.copy())))
    assert v.family == "db_not_summed"


@pytest.mark.parametrize("dw_name,db_name", [
    ("dW", "db"), ("grad_W", "grad_b"), ("W_grad", "b_grad"), ("gW", "gb"), ("gradient_W", "gradient_b"),
    ("grads['W']", "grads['b']"), ("W.grad", "b.grad"),
])
def test_gradients_kept_as_attributes(dw_name, db_name):
    attrs = {"W": W, "b": B, "x": X, dw_name: DW, db_name: DB}
    v = run("linear.backward", linear_run(backward=DX, attrs=attrs))
    assert v.status == "pass", v.message
    assert v.details["sources"]["dW"] == f"attribute {dw_name}"


def test_gradients_from_parameter_change():
    update = {"ok": True, "lr": 1.0, "via": "update", "W": W - DW, "b": B - DB}
    v = run("linear.backward", linear_run(backward=DX, update=update))
    assert v.status == "pass", v.message
    assert v.details["sources"]["dW"] == "parameter change through update"


def test_zero_gradient_attribute_is_a_step_kept_at_rate_0():
    """state['dW'] = -lr * g: zero after a backward at rate 0; the step at rate 1 is read."""
    attrs = {"W": W, "b": B, "state['dW']": np.zeros_like(DW), "state['db']": np.zeros_like(DB)}
    update = {"ok": True, "lr": 1.0, "via": "backward", "W": W - DW, "b": B - DB}
    v = run("linear.backward", linear_run(backward=DX, attrs=attrs, update=update))
    assert v.status == "pass", v.message
    assert v.details["sources"]["dW"].startswith("parameter change through backward (state['dW'] holds")


def test_zero_gradient_attribute_with_no_step_still_fails():
    attrs = {"W": W, "b": B, "dW": np.zeros_like(DW), "db": DB}
    update = {"ok": True, "lr": 1.0, "via": "update", "W": W.copy(), "b": B - DB}
    v = run("linear.backward", linear_run(backward=DX, attrs=attrs, update=update))
    assert v.status == "fail" and "dW" in v.message


def test_weights_stored_out_in():
    attrs = {"W": W.T, "b": B, "dW": DW.T, "db": DB}
    v = run("linear.backward", linear_run(backward=DX, attrs=attrs, layout="out_in"))
    assert v.status == "pass", v.message


def test_backward_returning_nothing_and_no_gradients_anywhere():
    v = run("linear.backward", linear_run(backward=None))
    assert v.status == "fail" and "no dx found" in v.message
    assert not v.fraction


# ---------------------------------------------------------------- failures before comparing

def test_timeout():
    probes = {"linear": ProbeRun("linear", "timeout", elapsed_s=5.2, limit_s=5.0)}
    v = run("linear.forward", probes)
    assert v.status == "timeout" and "5 s" in v.message


def test_crash():
    v = run("relu.forward", {"relu": ProbeRun("relu", "crash", exit_code=3)})
    assert v.status == "error" and "crashed" in v.message and "3" in v.message


def test_missing_probe_is_error_never_pass():
    v = run("loss.forward", {})
    assert v.status == "error" and "harness exited with code 1" in v.message


def test_missing_role():
    v = run("relu.backward", {}, roles={**ROLES, "relu": None})
    assert v.status == "error" and "relu role" in v.message


def test_script_global_named():
    err = {"type": "NameError", "message": "name 'y_batch' is not defined", "name": "y_batch",
           "probe_error": False,
           "frames": [{"file": "submission.py", "line": 42, "function": "backward", "code": "return y_batch"}]}
    probes = {"loss": ProbeRun("loss", "ok", {"forward": ok(float(PER.mean())),
                                               "backward": {"ok": False, "error": err}})}
    v = run("loss.backward", probes, submission=sub(script_globals={"y_batch": ["SigmoidCrossEntropy.backward"]}))
    assert v.status == "error" and v.family == "script_global" and "`y_batch`" in v.message
    assert v.details["traceback"] == ["hw.py line 42 in backward: return y_batch"]


def test_unavailable_module_named():
    err = {"type": "NameError", "message": "name 'torch' is not defined", "name": "torch",
           "probe_error": False, "frames": []}
    probes = {"relu": ProbeRun("relu", "ok", {"forward": {"ok": False, "error": err}})}
    v = run("relu.forward", probes, submission=sub(missing_modules={"torch": "torch (imported on line 1 of hw.py)"}))
    assert v.status == "error" and "torch (imported on line 1" in v.message


def test_python2_builtin_named():
    err = {"type": "NameError", "message": "name 'xrange' is not defined", "name": "xrange",
           "probe_error": False, "frames": []}
    probes = {"relu": ProbeRun("relu", "ok", {"forward": {"ok": False, "error": err}})}
    v = run("relu.forward", probes)
    assert v.status == "error" and "`xrange`" in v.message and "Python 2" in v.message
    assert "use range" in v.message


def test_plain_exception_names_student_line():
    err = {"type": "ValueError", "message": "shapes (7,5) and (3,5) not aligned", "name": None,
           "probe_error": False,
           "frames": [{"file": "submission.py", "line": 12, "function": "forward", "code": "x.dot(self.W)"}]}
    probes = {"linear": ProbeRun("linear", "error", error=err)}
    v = run("linear.forward", probes)
    assert v.status == "error" and "ValueError" in v.message and "hw.py line 12" in v.message


def test_skipped_when_earlier_step_failed():
    probes = {"relu": ProbeRun("relu", "ok", {"forward": ok(np.maximum(RX, 0))})}  # no backward record
    v = run("relu.backward", probes)
    assert v.status == "skipped"


# ---------------------------------------------------------------- relu

def relu_run(forward=None, backward=None):
    return {"relu": ProbeRun("relu", "ok", {"forward": ok(np.maximum(RX, 0) if forward is None else forward),
                                            "backward": ok(RG * (RX > 0) if backward is None else backward)})}


def test_relu_correct_and_any_subgradient_at_the_kink():
    assert run("relu.forward", relu_run()).status == "pass"
    assert (RX == 0).sum() == 2  # the plan puts the kink in the inputs
    at_kink_one = np.where(RX >= 0, RG, 0.0)
    assert run("relu.backward", relu_run(backward=at_kink_one)).status == "pass"
    half = np.where(RX == 0, 0.5 * RG, RG * (RX > 0))
    assert run("relu.backward", relu_run(backward=half)).status == "pass"
    outside = np.where(RX == 0, 2.0 * RG, RG * (RX > 0))
    assert run("relu.backward", relu_run(backward=outside)).status == "fail"


@pytest.mark.parametrize("family,got", [
    ("relu_no_mask", RG * np.maximum(RX, 0)),
    ("relu_forgot_upstream", (RX > 0) * 1.0),
    ("relu_sigmoid_derivative", RG * (1 / (1 + np.exp(-RX))) * (1 - 1 / (1 + np.exp(-RX)))),
])
def test_relu_backward_families(family, got):
    v = run("relu.backward", relu_run(backward=got))
    assert v.status == "fail" and v.family == family


def test_relu_sigmoid_derivative_of_the_output_recognised():
    a = np.maximum(RX, 0)
    s = 1 / (1 + np.exp(-a))
    v = run("relu.backward", relu_run(backward=RG * s * (1 - s)))
    assert v.status == "fail" and v.family == "relu_sigmoid_derivative"


def test_leaky_forward_family():
    v = run("relu.forward", relu_run(forward=np.where(RX > 0, RX, 0.01 * RX)))
    assert v.status == "fail" and v.family == "leaky_forward"


# ---------------------------------------------------------------- loss

def loss_run(forward, backward=None):
    return {"loss": ProbeRun("loss", "ok", {"forward": ok(forward),
                                            "backward": ok((S - Y) / N if backward is None else backward)})}


@pytest.mark.parametrize("value,conv", [(PER.mean(), "mean"), (PER.sum(), "sum"), (PER, "per-sample")])
def test_loss_forward_conventions(value, conv):
    v = run("loss.forward", loss_run(value))
    assert v.status == "pass" and v.details["convention"] == conv


def test_loss_forward_sign_family():
    v = run("loss.forward", loss_run(-PER.mean()))
    assert v.status == "fail" and v.family == "loss_sign"


def test_loss_backward_follows_forward_convention():
    assert run("loss.backward", loss_run(PER.mean(), (S - Y) / N)).status == "pass"
    assert run("loss.backward", loss_run(PER.sum(), S - Y)).status == "pass"
    v = run("loss.backward", loss_run(PER.mean(), S - Y))
    assert v.status == "fail" and v.family == "mean_grad_not_divided"
    v = run("loss.backward", loss_run(PER.sum(), (S - Y) / N))
    assert v.status == "fail" and v.family == "sum_grad_divided"


def test_loss_backward_sigmoid_derivative_family():
    bad = (S - Y) / (S * (1 - S)) * S * (1 / (1 + np.exp(-(1 - Z)))) / N
    v = run("loss.backward", loss_run(PER.mean(), bad))
    assert v.status == "fail" and v.family == "sigmoid_derivative"
    (cr,) = score({"loss.backward": v}, RUBRIC)
    assert cr.score == 0 and [h.tip for h in cr.hints][:2] == ["8e", "8g"]


def test_loss_backward_flat_shape():
    v = run("loss.backward", loss_run(PER.mean(), ((S - Y) / N).ravel()))
    assert v.status == "fail" and "(7,)" in v.message and "(7, 1)" in v.message


# ---------------------------------------------------------------- judge and score

def test_judge_turns_a_crashing_check_into_internal_error(monkeypatch):
    from grader.checks import CheckSpec

    def broken(ctx):
        raise KeyError("oops")

    monkeypatch.setitem(REGISTRY, "relu.forward", CheckSpec("relu.forward", "relu", broken, 1, 1e-6))
    v = judge(ctx(relu_run()), ["relu.forward", "relu.backward"])
    assert v["relu.forward"].status == "error" and "internal grader error" in v["relu.forward"].message
    assert v["relu.backward"].status == "pass"


def test_score_gives_no_credit_to_error_and_clamps_fraction():
    verdicts = {"linear.forward": Verdict("error", "boom", fraction=0.9),
                "linear.backward": Verdict("fail", "x", fraction=7.0),
                "relu.forward": Verdict("skipped", "not run"),
                "relu.backward": Verdict("pass", "ok")}
    out = {c.id: c for c in score(verdicts, RUBRIC)}
    assert out["linear.forward"].score == 0 and out["linear.forward"].hints
    assert out["linear.backward"].score == out["linear.backward"].max_score
    assert out["relu.forward"].score == 0 and out["relu.forward"].hints == ()
    assert out["relu.backward"].score == out["relu.backward"].max_score and out["relu.backward"].hints == ()
