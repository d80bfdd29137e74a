"""mlp.evaluate: the accuracy the student's evaluate reports, against the accuracy of the
network's own outputs on the same labelled samples (tip 8: a network that "always gives
50%" may be a broken evaluate, not a broken network).

The gradcheck probe plants the grader's weights, calls evaluate on a labelled set chosen so
that the true accuracy differs from every look-alike (the rate of positive predictions or
labels, the error rate, a threshold at 0.5 on the scores), and records the scores the
network's output layer produced meanwhile. evaluate may return the accuracy alone or with
the loss, in any order, as a fraction, a percentage or a count.
"""
from __future__ import annotations

import re

import numpy as np

from ..observe import step
from ..reference import mlp as ref_mlp
from .base import Context, Verdict, exception_verdict
from .families import DESCRIBE
from .network import network_run

SCALES = {"fraction": 1.0, "percent": 100.0}
# a number printed next to "acc"/"accuracy" (either side), or followed by a percent sign
ACCURACY_SAID = re.compile(r"(?i)(?:acc\w*\W{0,3}\s*(?:is|=|:)?\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?))"
                           r"|([-+]?\d*\.?\d+)\s*%")


def numbers(value) -> list[float]:
    """Every number evaluate returned: alone, in a tuple or list, or in a dict."""
    if isinstance(value, float):
        return [value]
    if isinstance(value, np.ndarray) and value.size == 1:
        return [float(value.ravel()[0])]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else []
    return [n for v in items for n in numbers(v) if not isinstance(v, (tuple, list, dict))]


def reported_as(got: float, rate: float, n: int) -> str | None:
    """'fraction', 'percent' or 'count' when got is `rate` in that scale."""
    for scale, k in SCALES.items():
        if abs(got - rate * k) <= 1e-6 * k:
            return scale
    return "count" if abs(got - rate * n) < 1e-6 else None


def scores(ctx: Context, run) -> np.ndarray:
    """The scores evaluate saw: the network's own output layer (in the grader's row order),
    else the reference network at the planted weights."""
    i = ctx.inputs["gradcheck"]
    z = run.value.get("evaluate_logits")
    order = run.value.get("evaluate_order")
    if isinstance(z, np.ndarray) and z.size == len(i["eval_y"]):
        z = z.reshape(-1, 1)
        if isinstance(order, (list, tuple)) and sorted(int(k) for k in order) == list(range(len(z))):
            out = np.empty_like(z)
            out[[int(k) for k in order]] = z
            return out
        return z
    return ref_mlp.logits(i["eval_x"], i["W1"], i["b1"], i["W2"], i["b2"])


def other_weights(ctx: Context, run) -> bool:
    """evaluate scored the samples with other weights than the network holds (it rebuilt
    or re-initialised the layers): the network's own training step at the planted weights
    gives the reference scores, evaluate's scores are not those of the same weights. Sorted
    values are compared, so the rows' order does not matter."""
    i = ctx.inputs["gradcheck"]
    base, z_eval = run.value.get("base") or {}, run.value.get("evaluate_logits")
    z_train = base.get("logits")
    if not (isinstance(z_train, np.ndarray) and isinstance(z_eval, np.ndarray)
            and z_train.size == len(i["x"]) and z_eval.size == len(i["eval_y"])):
        return False
    weights = (i["W1"], i["b1"], i["W2"], i["b2"])
    same = lambda got, want: np.allclose(np.sort(got.ravel()), np.sort(want.ravel()),  # noqa: E731
                                         rtol=1e-6, atol=1e-9)
    return same(z_train, ref_mlp.logits(i["x"], *weights)) \
        and not same(z_eval, ref_mlp.logits(i["eval_x"], *weights))


def look_alikes(z: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """What a wrong evaluate reports instead of the accuracy, by mistake family."""
    return {"eval_positive_rate": float(np.mean(z > 0)),
            "eval_threshold_scores": float(np.mean((z > 0.5) == (y > 0.5))),
            "eval_error_rate": float(np.mean((z > 0) != (y > 0.5))),
            "eval_label_rate": float(np.mean(y > 0.5))}


def evaluate(ctx: Context) -> Verdict:
    who = ctx.who("mlp", "evaluate")
    run, failed = network_run(ctx, "gradcheck", who, need_mlp=True)
    if failed:
        return failed
    rec = run.value.get("evaluate")
    if rec is None:
        return Verdict("fail", f"{who}: there is no evaluate method (nor a module-level "
                       "evaluate(model, X, Y)) to report the accuracy", family="no_evaluate")
    ok, returned, err = step(run.value, "evaluate")
    if not ok:
        return exception_verdict(ctx, err, who)
    if other_weights(ctx, run):
        return Verdict("fail", f"{DESCRIBE['eval_other_weights']}: the scores {who} computed are "
                       "not those of the network's weights (the training step at the same weights "
                       "gives the expected ones)", family="eval_other_weights")
    y = ctx.inputs["gradcheck"]["eval_y"]
    z = scores(ctx, run)
    n, acc = len(y), float(np.mean((z > 0) == (y > 0.5)))
    got = numbers(returned)
    printed = run.value.get("evaluate_printed") or ""
    from_print = not got and isinstance(printed, str)
    if from_print:  # it prints the accuracy rather than returning it: numbers said to be one
        got = [float(m.group(1) or m.group(2)) for m in ACCURACY_SAID.finditer(printed)][:20]
    details = {"returned": got, "accuracy": acc, "samples": n}
    for v in got:
        scale = reported_as(v, acc, n)
        if scale and not (from_print and scale == "count"):
            return Verdict("pass", f"{who} reports the accuracy of the network's outputs "
                           f"({v:g}, as a {scale})", {**details, "scale": scale})
    if not got:
        return Verdict("fail", f"{who} returned no number: it should return the accuracy "
                       f"(here {acc:.3g})", details, family="eval_no_accuracy")
    for family, rate in look_alikes(z, y).items():
        for v in got:
            if reported_as(v, rate, n):
                details["suspected"] = DESCRIBE[family]
                return Verdict("fail", f"{DESCRIBE[family]}: {who} reports {v:g} where the "
                               f"network's outputs give an accuracy of {acc:.4g} on these "
                               f"{n} samples", details, family=family)
    shown = ", ".join(f"{v:g}" for v in got[:4])
    return Verdict("fail", f"{who} reports {shown}, but the network's outputs give an "
                   f"accuracy of {acc:.4g} on these {n} samples (as a fraction; "
                   f"{acc * 100:.4g} as a percent)", details, family="eval_wrong")
