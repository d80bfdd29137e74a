"""Loss sanity: the cross-entropy is never negative (tip 4) and survives huge logits (tip 1).

Both checks read the `loss_sanity` probe: a few random batches of moderate logits
(`draws`), then one batch of logits at +-1e3 and +-1e4 (`extreme`), each pass on a fresh
instance of the student's loss. The harness only records what came back, with the
RuntimeWarnings each call raised; everything is judged here.
"""
from __future__ import annotations

import math
import re

import numpy as np

from ..observe import step
from ..reference import layers as ref
from .base import Context, Verdict, exception_verdict
from .families import DESCRIBE
from .layers import loss_forward, loss_rule, loss_value, pieces, setup

PROBE = "loss_sanity"
# Floating-point trouble that means the computation left the numbers (underflow to 0 is fine)
BAD_WARNING = re.compile(r"(overflow|divide by zero|invalid value)", re.I)
SIGMOID_NAME = re.compile(r"^(p|s|sig|sigma|sigmoid|prob|probs|probabilities|y_?hat|yhat|pred|"
                          r"preds|a|h|out|output|activation)$", re.I)


def fmt(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else str(v)


def step_warnings(rec: dict) -> dict[str, list[str]]:
    """step name -> its RuntimeWarnings, for every recorded step of one pass."""
    out = {}
    for name, s in rec.items():
        if isinstance(s, dict) and isinstance(s.get("warnings"), list):
            out[name] = [str(w) for w in s["warnings"]]
    return out


def first_error(ctx: Context, rec: dict, names: tuple[str, ...], who: str) -> Verdict | None:
    for name in names:
        ok, _, err = step(rec, name)
        if not ok and err is not None:
            return exception_verdict(ctx, err, who)
    return None


# ---------------------------------------------------------------- loss.nonnegative

def loss_nonnegative(ctx: Context) -> Verdict:
    """The loss is >= 0 and finite on random batches of moderate logits and both labels."""
    who, run, failed = setup(ctx, "loss", PROBE, "forward")
    if failed:
        return failed
    draws = run.value.get("draws")
    if not isinstance(draws, list) or not draws:
        return Verdict("error", f"{who} was not run: the probe returned no batches")
    split = bool(draws[0].get("split"))
    inputs = ctx.inputs[PROBE]
    tol = ctx.settings("loss.nonnegative")["threshold"]
    shape = ctx.once("loss.forward", lambda: loss_forward(ctx))
    if shape.family in ("loss_returns_probabilities", "loss_returns_nothing") and not shape.fraction:
        return Verdict("fail", f"{who}: {DESCRIBE[shape.family]}, so there is no loss to check "
                       "(see loss.forward)", {"suspected": DESCRIBE[shape.family]}, family=shape.family)
    rule = loss_rule(ctx)
    values, negative, nonfinite, evidence = [], [], [], []
    for i, rec in enumerate(draws):
        if not isinstance(rec, dict):
            continue
        names = ("sigmoid", "forward") if split else ("forward",)
        failed = first_error(ctx, rec, names, who)
        if failed:
            return failed
        ok, got, _ = step(rec, "forward")
        if not ok:
            return Verdict("skipped", f"{who} was not called: an earlier step failed")
        value, form = loss_value(got, rec.get("forward_attrs"), rule)
        if value is None:
            return Verdict("fail", f"{who} returned nothing (None) instead of the loss",
                           {"returned": None}, family="loss_returns_nothing")
        arr = np.atleast_1d(np.asarray(value, dtype=float)) if not isinstance(value, str) else None
        if arr is None or arr.dtype.kind != "f" or arr.size == 0:
            return Verdict("fail", f"{who} returned {value!r} instead of a number", {"returned": str(value)})
        values.append(arr.ravel().tolist() if form == "per-sample" else float(arr[0]))
        z, y = inputs["z_draws"][i], inputs["y_draws"][i]
        if not np.all(np.isfinite(arr)):
            nonfinite.append(i)
            evidence += raw_score_evidence(rec, arr, z, y, split)
        elif arr.min() < -tol:
            negative.append((i, float(arr.min())))
    details = {"batches": len(values), "batch_size": int(inputs["z_draws"].shape[1]),
               "logits": "N(0, 3)", "losses": values, "tolerance": tol}
    if negative:
        i, v = min(negative, key=lambda t: t[1])
        details.update(negative_batches=[j for j, _ in negative], most_negative=v,
                       suspected=DESCRIBE["loss_sign"])
        return Verdict("fail", f"{DESCRIBE['loss_sign']} — {who} returned a loss of {fmt(v)} on "
                       f"random batch {i + 1} of {len(values)} (moderate logits, both labels); "
                       "cross-entropy is never below 0", details, family="loss_sign")
    if nonfinite:
        i = nonfinite[0]
        shown = values[i] if isinstance(values[i], float) else "non-finite entries"
        details["nonfinite_batches"] = nonfinite
        if evidence:
            details.update(evidence=sorted(set(evidence)), suspected=DESCRIBE["no_sigmoid"])
            return Verdict("fail", f"{DESCRIBE['no_sigmoid']} — {who} returned {shown} on random "
                           f"batch {i + 1} of {len(values)} of moderate logits ({'; '.join(sorted(set(evidence)))})",
                           details, family="no_sigmoid")
        return Verdict("fail", f"{who} returned {shown} on random batch {i + 1} of {len(values)} "
                       "of moderate logits (N(0, 3)); the cross-entropy there is a finite "
                       "number >= 0", details)
    lowest = min(min(v) if isinstance(v, list) else v for v in values)
    return Verdict.passed(f"{who} returns a finite loss >= 0 on {len(values)} random batches "
                          f"(smallest {fmt(lowest)})", **details)


def raw_score_evidence(rec: dict, got: np.ndarray, z: np.ndarray, y: np.ndarray, split: bool) -> list[str]:
    """Why a non-finite loss at moderate logits points to a log of the raw scores."""
    found = []
    for name, ws in step_warnings(rec).items():
        if name in ("forward", "sigmoid") and any("invalid value encountered in log" in w for w in ws):
            found.append("numpy warned of a log of a negative number, which a sigmoid output never is")
    if split:
        ok, s, _ = step(rec, "sigmoid")
        s = pieces(s)[0] if pieces(s) else s
        if ok and isinstance(s, np.ndarray) and np.any((s < 0) | (s > 1)):
            found.append("the sigmoid layer returned values outside [0, 1]")
    with np.errstate(all="ignore"):
        raw = -(y * np.log(z) + (1 - y) * np.log(1 - z))
    if got.size == raw.size and np.array_equal(np.isnan(got).ravel(), np.isnan(raw).ravel()) and np.isnan(raw).any():
        found.append("the loss is NaN exactly where the log of the raw score is")
    return found


# ---------------------------------------------------------------- loss.stable

def loss_stable(ctx: Context) -> Verdict:
    """At logits of +-1e3 and +-1e4: finite loss and gradient, a sigmoid within [0, 1], and
    no overflow, divide-by-zero or invalid-value warning (tip 1, the log-sum-exp trick)."""
    who, run, failed = setup(ctx, "loss", PROBE, "forward")
    if failed:
        return failed
    rec = run.value.get("extreme")
    if not isinstance(rec, dict):
        return Verdict("error", f"{who} was not run at large logits: the probe returned nothing")
    split = bool(rec.get("split"))
    inputs = ctx.inputs[PROBE]
    z = inputs["z_extreme"]
    names = ("sigmoid", "forward", "ce_backward", "backward") if split else ("forward", "backward")
    problems, details = [], {"logits": z.ravel().tolist(), "labels": inputs["y_extreme"].ravel().tolist()}
    overflowed = False
    for name in names:
        ok, _, err = step(rec, name)
        if not ok and err is not None:
            if err.get("type") in ("OverflowError", "FloatingPointError", "ZeroDivisionError"):
                problems.append(f"{label(name, split)} raised {err['type']}: {err['message']}")
                overflowed = overflowed or err["type"] == "OverflowError"
                details.setdefault("exceptions", {})[name] = f"{err['type']}: {err['message']}"
                break
            return exception_verdict(ctx, err, who)
    warned = {k: [w for w in v if BAD_WARNING.search(w)] for k, v in step_warnings(rec).items()}
    warned = {k: v for k, v in warned.items() if v}
    if warned:
        details["warnings"] = warned
        overflowed = overflowed or any("overflow" in w for ws in warned.values() for w in ws)
        problems.append("numpy warned: " + "; ".join(f"{label(k, split)}: {', '.join(v)}" for k, v in warned.items()))
    ok, got, _ = step(rec, "forward")
    if ok:
        value, form = loss_value(got, rec.get("forward_attrs"), loss_rule(ctx))
        if form == "missing":
            return Verdict("fail", f"{who} returned nothing (None) instead of the loss, so there "
                           "is no loss to check (see loss.forward)", details, family="loss_returns_nothing")
        else:
            arr = np.asarray(value, dtype=float) if not isinstance(value, str) else np.asarray(np.nan)
            details["loss"] = arr.tolist()
            if not np.all(np.isfinite(arr)):
                problems.append(f"the loss is {describe_nonfinite(arr)}")
    sig_values, where = sigmoid_output(ctx, rec, split)
    if sig_values is not None:
        details["sigmoid"] = {"where": where, "values": sig_values.ravel().tolist()}
        if not np.all((sig_values >= 0) & (sig_values <= 1)):  # NaN fails this too
            problems.append(f"the sigmoid ({where}) leaves [0, 1]: {describe_bad_sigmoid(sig_values)}")
            overflowed = True
    else:
        details["sigmoid"] = {"where": "not observable"}
    ok, grad, _ = step(rec, "backward")
    if ok:
        g = pieces(grad)[0] if pieces(grad) else grad
        if isinstance(g, np.ndarray) or isinstance(g, float):
            g = np.asarray(g, dtype=float)
            details["gradient"] = g.ravel().tolist()
            if not np.all(np.isfinite(g)):
                problems.append(f"the gradient with respect to the logits is {describe_nonfinite(g)}")
    if not problems:
        return Verdict.passed(f"{who} stays finite at logits of ±1e3 and ±1e4: loss, sigmoid "
                              "and gradient finite, no overflow warning", **details)
    # No sigmoid at all (seen on the random batches) explains everything; else an overflowing
    # exp is the sigmoid's, and otherwise a log (or a division) met a sigmoid of 0 or 1.
    family = ("no_sigmoid" if raw_scores_seen(ctx) else "unstable_sigmoid" if overflowed
              else "unstable_log")
    details["suspected"] = DESCRIBE[family]
    return Verdict("fail", f"{DESCRIBE[family]} — {who} at logits of ±1e3 and ±1e4: " + "; ".join(problems),
                   details, family=family)


def raw_scores_seen(ctx: Context) -> bool:
    """Whether the random batches showed a loss computed on raw scores (see loss.nonnegative)."""
    run = ctx.probes.get(PROBE)
    draws = run.value.get("draws") if run is not None else None
    inputs = ctx.inputs[PROBE]
    for i, rec in enumerate(draws if isinstance(draws, list) else []):
        ok, got, _ = step(rec, "forward") if isinstance(rec, dict) else (False, None, None)
        value = loss_value(got, rec.get("forward_attrs"), loss_rule(ctx))[0] if ok else None
        if isinstance(value, (float, np.ndarray)) and i < len(inputs["z_draws"]):
            arr = np.atleast_1d(np.asarray(value, dtype=float))
            if not np.all(np.isfinite(arr)) and raw_score_evidence(
                    rec, arr, inputs["z_draws"][i], inputs["y_draws"][i], bool(rec.get("split"))):
                return True
    return False


def label(step_name: str, split: bool) -> str:
    return {"sigmoid": "sigmoid forward", "forward": "cross-entropy forward" if split else "forward",
            "ce_backward": "cross-entropy backward", "backward": "sigmoid backward" if split else "backward"}[step_name]


def describe_nonfinite(a: np.ndarray) -> str:
    kinds = [k for k, m in (("nan", np.isnan(a)), ("inf", np.isposinf(a)), ("-inf", np.isneginf(a))) if m.any()]
    if a.size == 1:
        return kinds[0]
    return f"{' / '.join(kinds)} in {int((~np.isfinite(a)).sum())} of {a.size} entries"


def describe_bad_sigmoid(s: np.ndarray) -> str:
    flat = s.ravel()
    bad = [i for i, v in enumerate(flat) if not (0 <= v <= 1)]
    return ", ".join(f"{fmt(float(flat[i]))} at entry {i}" for i in bad[:3])


def sigmoid_output(ctx: Context, rec: dict, split: bool) -> tuple[np.ndarray | None, str]:
    """The sigmoid's output at the extreme logits: returned by a Sigmoid class, or the
    attribute of a one-class loss that held sigmoid(z) on the random batches (by value,
    falling back to its name). (None, '') when it cannot be seen."""
    if split:
        ok, s, _ = step(rec, "sigmoid")
        s = pieces(s)[0] if pieces(s) else s
        return (np.asarray(s, dtype=float), "returned by the sigmoid layer") if ok and isinstance(s, np.ndarray) else (None, "")
    attrs = {k: v for k, v in (rec.get("attrs") or {}).items() if isinstance(v, np.ndarray)}
    if not attrs:
        return None, ""
    name = sigmoid_attr(ctx, set(attrs))
    if name is None:
        return None, ""
    return attrs[name], f"attribute {name}"


def sigmoid_attr(ctx: Context, candidates: set[str]) -> str | None:
    run = ctx.probes.get(PROBE)
    draws = run.value.get("draws") if run is not None else None
    draws = draws if isinstance(draws, list) else []
    z_draws = ctx.inputs[PROBE]["z_draws"]
    for i, d in enumerate(draws[:len(z_draws)]):
        attrs = d.get("attrs") if isinstance(d, dict) else None
        if not isinstance(attrs, dict):
            continue
        s = ref.sigmoid(z_draws[i])
        for name in sorted(candidates):
            v = attrs.get(name)
            if isinstance(v, np.ndarray) and v.size == s.size and np.allclose(v.ravel(), s.ravel(), rtol=1e-6, atol=1e-9):
                return name
    if any(isinstance(d, dict) and d.get("attrs") for d in draws):
        return None  # seen on the random batches, and none of them held sigmoid(z)
    return next((n for n in sorted(candidates) if SIGMOID_NAME.match(n)), None)
