"""loss.nonnegative and loss.stable on synthetic probe records (no sandbox, no student code).

The records are shaped as observe.read_results() returns them: steps {"ok", "value"} or
{"ok": False, "error"}, with "warnings" lists as the harness's step() writes them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader.checks.base import Context
from grader.checks.sanity import loss_nonnegative, loss_stable
from grader.load import Submission
from grader.observe import ProbeRun
from grader.plan import loss_sanity_inputs
from grader.reference import layers as ref
from grader.rubric import load_rubric

RUBRIC = load_rubric()
INPUTS = loss_sanity_inputs(RUBRIC.seed)
ZD, YD = INPUTS["z_draws"], INPUTS["y_draws"]
ZE, YE = INPUTS["z_extreme"], INPUTS["y_extreme"]
OVERFLOW = "RuntimeWarning: overflow encountered in exp"


def ok(value, warnings=None):
    rec = {"ok": True, "value": value}
    if warnings:
        rec["warnings"] = warnings
    return rec


def raised(type_, message, line=12, code="s = 1 / (1 + math.exp(-z))"):
    return {"ok": False, "error": {"type": type_, "message": message, "name": None, "probe_error": False,
                                   "frames": [{"file": "submission.py", "line": line, "function": "forward",
                                               "code": code}]}}


def good_pass(z, y, attrs=True):
    """What a correct one-class loss (mean convention, keeps self.s) records."""
    rec = {"forward": ok(float(ref.bce(z, y))), "backward": ok((ref.sigmoid(z) - y) / len(z))}
    if attrs:
        rec["attrs"] = {"s": ref.sigmoid(z), "x": z.copy()}
    return rec


def ctx_for(draws=None, extreme=None, status="ok", roles=None):
    draws = [good_pass(z, y) for z, y in zip(ZD, YD)] if draws is None else draws
    extreme = good_pass(ZE, YE) if extreme is None else extreme
    run = ProbeRun("loss_sanity", status, {"draws": draws, "extreme": extreme} if status == "ok" else {},
                   limit_s=5.0 if status == "timeout" else None, elapsed_s=5.0 if status == "timeout" else 0.01)
    return Context(submission=Submission(id="s", path=Path("s.py"), graded_file="s.py"),
                   roles=roles or {"loss": "SigmoidCrossEntropy"}, probes={"loss_sanity": run},
                   inputs={"loss_sanity": INPUTS}, settings=RUBRIC.settings, memory_mb=1024)


# ---------------------------------------------------------------- loss.nonnegative

def test_inputs_are_moderate_random_batches_with_both_labels():
    assert ZD.shape == (4, 16, 1) and YD.shape == ZD.shape
    for y in YD:
        assert set(np.unique(y)) == {0.0, 1.0}
    assert 1.5 < ZD.std() < 4.5
    assert {1e3, -1e3, 1e4, -1e4} <= set(ZE.ravel())
    for z in (1e3, -1e3, 1e4, -1e4):  # confidently right and confidently wrong at each
        assert set(YE[ZE == z]) == {0.0, 1.0}


def test_nonnegative_passes_a_correct_loss():
    v = loss_nonnegative(ctx_for())
    assert v.status == "pass", v.message
    assert v.details["batches"] == 4 and len(v.details["losses"]) == 4


def test_nonnegative_passes_a_per_sample_loss_and_a_sum():
    draws = [{"forward": ok(ref.bce_per_sample(z, y))} for z, y in zip(ZD, YD)]
    assert loss_nonnegative(ctx_for(draws)).status == "pass"
    draws = [{"forward": ok(float(ref.bce(z, y, "sum")))} for z, y in zip(ZD, YD)]
    assert loss_nonnegative(ctx_for(draws)).status == "pass"


def test_a_loss_rounding_just_below_zero_is_not_negative():
    draws = [{"forward": ok(-1e-13)} for _ in ZD]
    assert loss_nonnegative(ctx_for(draws)).status == "pass"


def test_negative_loss_is_loss_sign():
    draws = [{"forward": ok(-float(ref.bce(z, y)))} for z, y in zip(ZD, YD)]
    v = loss_nonnegative(ctx_for(draws))
    assert v.status == "fail" and v.family == "loss_sign"
    assert "wrong sign" in v.message and "SigmoidCrossEntropy.forward" in v.message
    assert v.details["most_negative"] < 0 and v.details["negative_batches"] == [0, 1, 2, 3]


def test_one_negative_entry_of_a_per_sample_loss_fails():
    draws = [{"forward": ok(ref.bce_per_sample(z, y))} for z, y in zip(ZD, YD)]
    draws[2]["forward"]["value"][5, 0] = -0.25
    v = loss_nonnegative(ctx_for(draws))
    assert v.family == "loss_sign" and v.details["negative_batches"] == [2]


def test_nan_with_a_log_of_a_negative_number_is_no_sigmoid():
    warn = ["RuntimeWarning: invalid value encountered in log"]
    draws = [{"forward": ok(float("nan"), warn)} for _ in ZD]
    v = loss_nonnegative(ctx_for(draws))
    assert v.status == "fail" and v.family == "no_sigmoid"
    assert "without a sigmoid" in v.message and "log of a negative number" in v.message


def test_nan_exactly_where_the_raw_log_is_nan_is_no_sigmoid_even_without_warnings():
    draws = []
    for z, y in zip(ZD, YD):
        with np.errstate(all="ignore"):
            draws.append({"forward": ok(-(y * np.log(z + 1e-15) + (1 - y) * np.log(1 - z + 1e-15)))})
    v = loss_nonnegative(ctx_for(draws))
    assert v.family == "no_sigmoid"
    assert "NaN exactly where" in v.message


def test_split_sigmoid_returning_raw_scores_is_no_sigmoid():
    draws = [{"split": True, "sigmoid": ok(z.copy()), "forward": ok(float("nan"))} for z in ZD]
    v = loss_nonnegative(ctx_for(draws, roles={"loss": ["Sigmoid", "CrossEntropy"]}))
    assert v.family == "no_sigmoid" and "outside [0, 1]" in v.message
    assert "Sigmoid + CrossEntropy.forward" in v.message


def test_nan_without_evidence_fails_without_naming_a_mistake():
    draws = [{"forward": ok(float("inf"))} for _ in ZD]
    v = loss_nonnegative(ctx_for(draws))
    assert v.status == "fail" and v.family is None and "inf" in v.message


def test_an_exception_in_forward_is_an_error_naming_the_line():
    draws = [{"forward": raised("ValueError", "shapes (16,1) and (16,) not aligned")} for _ in ZD]
    v = loss_nonnegative(ctx_for(draws))
    assert v.status == "error" and "ValueError" in v.message and "s.py line 12" in v.message


def test_a_probe_timeout_is_a_timeout():
    v = loss_nonnegative(ctx_for(status="timeout"))
    assert v.status == "timeout"


def test_no_loss_class_is_an_error():
    c = ctx_for()
    c = Context(c.submission, {"loss": None}, c.probes, c.inputs, c.settings)
    assert loss_nonnegative(c).status == "error"


# ---------------------------------------------------------------- loss.stable

def test_stable_passes_a_stable_loss():
    v = loss_stable(ctx_for())
    assert v.status == "pass", v.message
    assert v.details["sigmoid"]["where"] == "attribute s"


def test_underflow_warnings_are_fine():
    ex = good_pass(ZE, YE)
    ex["forward"]["warnings"] = ["RuntimeWarning: underflow encountered in exp"]
    assert loss_stable(ctx_for(extreme=ex)).status == "pass"


def test_overflow_warning_is_unstable_sigmoid():
    ex = good_pass(ZE, YE)
    ex["forward"]["warnings"] = [OVERFLOW]
    v = loss_stable(ctx_for(extreme=ex))
    assert v.status == "fail" and v.family == "unstable_sigmoid"
    assert "overflow encountered in exp" in v.message and "±1e3" in v.message
    assert v.details["warnings"] == {"forward": [OVERFLOW]}


def test_infinite_loss_from_log_of_zero_is_unstable_log():
    ex = good_pass(ZE, YE)
    ex["forward"] = ok(float("inf"), ["RuntimeWarning: divide by zero encountered in log"])
    v = loss_stable(ctx_for(extreme=ex))
    assert v.family == "unstable_log" and "the loss is inf" in v.message


def test_a_finite_loss_with_a_nan_sigmoid_attribute_fails():
    ex = good_pass(ZE, YE)
    s = ex["attrs"]["s"].copy()
    s[0, 0] = np.nan  # exp(z) / (1 + exp(z)) at z = 1000: inf / inf
    ex["attrs"]["s"] = s
    v = loss_stable(ctx_for(extreme=ex))
    assert v.family == "unstable_sigmoid" and "attribute s" in v.message and "nan" in v.message


def test_the_sigmoid_attribute_is_found_by_value_not_by_name():
    # `p` is named like a sigmoid but held the raw logits on the random batches: not it
    draws = [dict(good_pass(z, y), attrs={"p": z.copy(), "cache": ref.sigmoid(z)}) for z, y in zip(ZD, YD)]
    ex = good_pass(ZE, YE)
    ex["attrs"] = {"p": ZE.copy(), "cache": ref.sigmoid(ZE)}
    v = loss_stable(ctx_for(draws, ex))
    assert v.status == "pass" and v.details["sigmoid"]["where"] == "attribute cache"


def test_an_unobservable_sigmoid_does_not_fail():
    draws = [good_pass(z, y, attrs=False) for z, y in zip(ZD, YD)]
    v = loss_stable(ctx_for(draws, good_pass(ZE, YE, attrs=False)))
    assert v.status == "pass" and v.details["sigmoid"]["where"] == "not observable"


def test_a_non_finite_gradient_fails():
    ex = good_pass(ZE, YE)
    g = ex["backward"]["value"].copy()
    g[1, 0] = np.nan
    ex["backward"] = ok(g)
    v = loss_stable(ctx_for(extreme=ex))
    assert v.status == "fail" and "gradient" in v.message and "nan in 1 of 9" in v.message


def test_split_sigmoid_is_read_from_the_sigmoid_layer():
    def split(z, y, sig):
        return {"split": True, "sigmoid": ok(sig), "forward": ok(float(ref.bce(z, y))),
                "ce_backward": ok(np.zeros_like(z)), "backward": ok((ref.sigmoid(z) - y) / len(z))}
    roles = {"loss": ["Sigmoid", "CrossEntropy"]}
    draws = [split(z, y, ref.sigmoid(z)) for z, y in zip(ZD, YD)]
    assert loss_stable(ctx_for(draws, split(ZE, YE, ref.sigmoid(ZE)), roles=roles)).status == "pass"
    bad = ref.sigmoid(ZE)
    bad[4, 0] = np.nan
    v = loss_stable(ctx_for(draws, split(ZE, YE, bad), roles=roles))
    assert v.family == "unstable_sigmoid" and "returned by the sigmoid layer" in v.message


def test_math_overflow_error_is_unstable_sigmoid():
    ex = {"forward": raised("OverflowError", "math range error")}
    v = loss_stable(ctx_for(extreme=ex))
    assert v.status == "fail" and v.family == "unstable_sigmoid" and "OverflowError" in v.message


def test_other_exceptions_at_large_logits_are_errors():
    ex = {"forward": raised("IndexError", "index 9 is out of bounds")}
    assert loss_stable(ctx_for(extreme=ex)).status == "error"


def test_raw_scores_are_named_even_at_large_logits():
    warn = ["RuntimeWarning: invalid value encountered in log"]
    draws = [{"forward": ok(float("nan"), warn), "attrs": {"sigma": z.copy()}} for z in ZD]
    ex = {"forward": ok(float("nan"), warn), "attrs": {"sigma": ZE.copy()}}
    v = loss_stable(ctx_for(draws, ex))
    assert v.family == "no_sigmoid"


@pytest.mark.parametrize("check", [loss_nonnegative, loss_stable])
def test_checks_are_deterministic(check):
    assert check(ctx_for()) == check(ctx_for())
