"""Per-layer checks: each layer fed the grader's float64 inputs, judged against the reference.

Every layer is judged on reference inputs, never on another student layer's output, so one
bug costs the points of the check it breaks and nothing downstream.
"""
from __future__ import annotations

import re

import numpy as np

from ..compare import compare
from ..reference import layers as ref
from ..observe import step
from .base import Context, Verdict, as_array, mismatch_verdict, probe_failure, step_failure
from . import lossvalue
from .families import DESCRIBE, constant_ratio, matches, recognise
from .lossvalue import LossRule


def setup(ctx: Context, role: str, probe: str, method: str):
    """(who, probe run, early verdict): the verdict is set when nothing can be compared."""
    who = ctx.who(role, method)
    if not ctx.roles.get(role):
        return who, None, Verdict("error", f"no class plays the {role} role: the grader looked "
                                  f"for a class named like it with forward and backward methods "
                                  f"(name it in the rubric's [roles] table if yours is unusual)")
    failed = probe_failure(ctx, probe, who)
    return who, ctx.probes.get(probe), failed


def observed(ctx: Context, role: str, probe: str, method: str, step: str | None = None):
    """(who, probe run, the step's value, early verdict) for one method of one layer."""
    who, run, failed = setup(ctx, role, probe, method)
    if failed:
        return who, run, None, failed
    value, failed = step_failure(ctx, run, step or method, who)
    return who, run, value, failed


def judged(got, expected, check_id: str, ctx: Context, who: str, quantity: str,
           families: dict | None = None) -> Verdict:
    th = ctx.settings(check_id)["threshold"]
    m = compare(as_array(got) if as_array(got) is not None else got, expected, th, quantity)
    if m.ok:
        return Verdict.passed(m.sentence(who), **m.details())
    family = recognise(as_array(got), families or {}, th)
    return mismatch_verdict(m, who, family, DESCRIBE.get(family))


# ---------------------------------------------------------------- linear

def linear_forward(ctx: Context) -> Verdict:
    who, run, got, failed = observed(ctx, "linear", "linear", "forward")
    if failed:
        return failed
    i = ctx.inputs["linear"]
    x, W, b = i["x"], i["W"], i["b"]
    return judged(got, ref.linear_forward(x, W, b), "linear.forward", ctx, who, "output", {
        "no_bias": x @ W, "relu_in_linear": ref.relu_forward(x @ W + b)})


GRAD_PREFIX = re.compile(r"^(dl_?d|gradient_?|grad_?|d_?|g_?)", re.I)
GRAD_SUFFIX = re.compile(r"_?grad(ient)?s?$", re.I)


def grad_target(name: str) -> str | None:
    """'dW', 'grad_W', 'W_grad', 'bias_grad_vec', "grads['W']", 'W.grad' -> the parameter
    it is the gradient of; "grads[0]" -> '*' (a list of gradients: the shape decides);
    a name that is no gradient -> None."""
    parts = [p for p in re.split(r"[.\[\]'\"]+", name) if p]
    if not parts:
        return None
    leaf, owners = parts[-1], parts[:-1]
    if owners and re.fullmatch(r"d|g|grad(ient)?s?|delta", leaf, re.I):  # W.grad
        return owners[-1]
    if owners and (GRAD_PREFIX.match(owners[-1]) and len(owners[-1]) > 1 or GRAD_SUFFIX.search(owners[-1])):
        return "*" if leaf.isdigit() else leaf  # grads['W'], grads[0]
    if GRAD_SUFFIX.search(leaf):
        return GRAD_SUFFIX.sub("", leaf)
    if GRAD_PREFIX.match(leaf):
        return GRAD_PREFIX.sub("", leaf, count=1)
    words = set(re.split(r"_+", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", leaf).lower()))
    if words & {"grad", "grads", "gradient", "gradients"}:  # bias_grad_vec, weight_grad_sum
        return next((w for w in words if singular(w) in ("w", "weight", "b", "bias")), None)
    return None


def singular(word: str) -> str:
    """'weights' -> 'weight', 'biases' -> 'bias', 'bias' stays 'bias'."""
    w = word.lower()
    if w.endswith("ses"):
        return w[:-2]
    return w[:-1] if w.endswith("s") and not w.endswith("ss") and w != "bias" else w


def grad_attr(attrs: dict, param: str, shapes: set, index: int | None = None
              ) -> tuple[str, np.ndarray] | None:
    """The attribute holding the gradient of `param` (W or b), matched by name and shape.
    With `index` (the network keeps every layer's gradients: dW1, grads['b2']), the name
    must carry that layer's number."""
    want = {param.lower(), "weight" if param == "W" else "bias"}
    for name, value in sorted(attrs.items()):
        if isinstance(value, np.ndarray) and value.shape in shapes:
            target = (grad_target(name) or "").strip("_")
            if index is not None:
                digits = re.search(r"_?(\d+)$", target)
                if not digits or int(digits.group(1)) != index:
                    continue
                target = target[:digits.start()]
            if target == "*" or target and singular(target) in want:
                return name, value
    return None


def pieces(returned) -> list:
    if isinstance(returned, tuple):
        return [p for p in returned if isinstance(p, np.ndarray)]
    if isinstance(returned, dict):
        return [p for p in returned.values() if isinstance(p, np.ndarray)]
    return [returned] if isinstance(returned, np.ndarray) else []


def by_shape(arrays: list, shapes) -> np.ndarray | None:
    return next((a for a in arrays if a.shape in shapes), None)


def linear_backward(ctx: Context) -> Verdict:
    who, run, returned, failed = observed(ctx, "linear", "linear", "backward")
    if failed:
        return failed
    i = ctx.inputs["linear"]
    x, W, b, g = i["x"], i["W"], i["b"], i["grad"]
    n, (n_in, n_out) = len(x), W.shape
    built = run.value.get("construct") or {}
    out_in = built.get("layout") == "out_in"
    dx_exp, dW_exp, db_exp = ref.linear_backward(x, W, g)
    if out_in:
        dW_exp = dW_exp.T
    found = locate_gradients(run, returned, x, W, b, out_in, built.get("folded"))
    th = ctx.settings("linear.backward")["threshold"]
    results, sources = {}, {}
    for q, exp in (("dx", dx_exp), ("dW", dW_exp), ("db", db_exp)):
        got, src = found[q]
        sources[q] = src
        if q == "db" and isinstance(got, np.ndarray) and got.size == n_out:
            got = got.reshape(n_out)  # (out,) and (1, out) are both fine for a bias gradient
        results[q] = (got, exp, compare(got, exp, th, q) if got is not None else None)
    ok = [q for q, (_, _, m) in results.items() if m is not None and m.ok]
    if len(ok) == 3:
        late = dx_after_update(run, dx_exp, th, n, n_in)
        if late is not None:
            return Verdict("fail", f"{DESCRIBE['update_before_dx']} — {late.sentence(who)} "
                           f"(backward called with learning rate {run.value['update'].get('lr'):g}; "
                           "with rate 0 dx is right)", {"sources": sources, "dx_with_update": late.details(),
                                                        "suspected": DESCRIBE["update_before_dx"]},
                           family="update_before_dx", fraction=2 / 3)
        worst = max(results.values(), key=lambda r: r[2].max_rel_error)[2]
        return Verdict.passed(f"{who} returns correct dx, dW and db (max relative error "
                              f"{worst.max_rel_error:.1e})", sources=sources)
    return backward_failure(who, results, sources, n, len(ok) / 3, th)


def dx_after_update(run, dx_exp, th, n, n_in):
    """The mismatch of the dx backward returns when it also updates the weights (learning
    rate > 0): computed after the update, it uses the new W. None when it is right."""
    upd = run.value.get("update") or {}
    if not upd.get("ok") or not upd.get("lr"):
        return None
    dx = by_shape(pieces(upd.get("returned")), {(n, n_in)})
    if dx is None:
        return None
    m = compare(dx, dx_exp, th, "dx")
    return None if m.ok else m


def unfold(dW, out_in: bool, folded: str | None):
    """A folded W's gradient (the bias as an extra row) split into (dW, db)."""
    axis = 1 if out_in else 0
    k = 0 if folded == "first" else dW.shape[axis] - 1
    db = np.take(dW, k, axis=axis)
    return np.delete(dW, k, axis=axis), db


def locate_gradients(run, returned, x, W, b, out_in: bool, folded: str | None = None) -> dict:
    """Where the student keeps dx, dW and db: returned, kept as attributes, or implied by
    the parameter change of one update with learning rate 1 and no momentum or L2."""
    n, (n_in, n_out) = len(x), W.shape
    if folded:  # W carries the bias as an extra row: find its gradient whole, then split it
        full = np.vstack([W, b.reshape(1, -1)] if folded == "last" else [b.reshape(1, -1), W])
        found = locate_gradients(run, returned, np.hstack([x, np.zeros((n, 1))]), full,
                                 np.zeros(n_out), out_in)
        found["dx"] = (by_shape(pieces(returned), {(n, n_in)}), "returned")
        if found["dW"][0] is not None:
            dW, db = unfold(found["dW"][0], out_in, folded)
            found["dW"], found["db"] = (dW, found["dW"][1]), (db, f"{found['dW'][1]} (its bias row)")
        return found
    w_shapes = {(n_out, n_in)} if out_in else {(n_in, n_out)}
    b_shapes = {(n_out,), (1, n_out), (n_out, 1)}
    got = pieces(returned)
    attrs = {k: v for k, v in (run.value.get("attrs") or {}).items() if isinstance(v, np.ndarray)}
    found = {"dx": (by_shape(got, {(n, n_in)}), "returned")}
    for q, shapes, param in (("dW", w_shapes, "W"), ("db", b_shapes | {(n, n_out)}, "b")):
        arr = by_shape(got, shapes)
        if arr is not None:
            found[q] = (arr, "returned")
            continue
        hit = grad_attr(attrs, param, shapes)
        found[q] = (hit[1], f"attribute {hit[0]}") if hit else (None, None)
    upd = run.value.get("update") or {}
    if not upd.get("ok"):
        return found
    lr = float(upd.get("lr") or 1.0)
    W0 = W.T if out_in else W
    changes = {"dW": (W0, upd.get("W"), W0.shape), "db": (b, upd.get("b"), None)}
    for q, (before, after, shape) in changes.items():
        if not isinstance(after, np.ndarray) or after.size != before.size or shape and after.shape != shape:
            continue
        d = (before - after.reshape(before.shape)) / lr
        if not np.any(d):
            continue  # no update at all is no evidence
        held, src = found[q]
        if held is None:
            found[q] = (d, f"parameter change through {upd.get('via')}")
        elif src != "returned" and not np.any(held):
            # all zeros after backward at rate 0, yet a real step moves the weights: the
            # attribute holds the step (-lr * gradient), which is 0 at rate 0, not the gradient
            found[q] = (d, f"parameter change through {upd.get('via')} ({src[len('attribute '):]} "
                        "holds the step, zero at learning rate 0)")
    return found


def backward_failure(who, results, sources, n, fraction, th) -> Verdict:
    parts, details, family = [], {"sources": sources, "quantities": {}}, None
    for q, (got, exp, m) in results.items():
        if m is None:
            parts.append(f"no {q} found" + (" (backward returned nothing)" if q == "dx" else
                         " (not returned, not kept as an attribute, no parameter change)"))
            details["quantities"][q] = {"found": False}
            continue
        details["quantities"][q] = m.details()
        if m.ok:
            continue
        fam = None
        if q == "dx" and matches(got, -exp, th):
            fam = "dx_sign"
        elif q == "db" and matches(got, exp / n, th):
            fam = "db_mean"
        elif q == "db" and m.got_shape and len(m.got_shape) == 2 and m.got_shape[0] == n:
            fam = "db_not_summed"
        ratio = constant_ratio(got, exp, n, th) if fam is None else None
        if ratio:
            fam = f"{q.lower()}_factor" if q != "dW" else "dw_factor"
            details["quantities"][q]["ratio"] = ratio
        family = family or fam
        text = m.sentence(who)
        if fam:
            text = DESCRIBE.get(fam, text) + (f" ({ratio})" if ratio else "") + f" — {text}"
        parts.append(text)
    details["suspected"] = DESCRIBE.get(family) if family else None
    return Verdict("fail", "; ".join(parts), details, family=family, fraction=fraction)


# ---------------------------------------------------------------- relu

def relu_forward(ctx: Context) -> Verdict:
    who, run, got, failed = observed(ctx, "relu", "relu", "forward")
    if failed:
        return failed
    x = ctx.inputs["relu"]["x"]
    return judged(got, ref.relu_forward(x), "relu.forward", ctx, who, "output",
                  {"leaky_forward": np.where(x > 0, x, 0.01 * x)})


def relu_backward(ctx: Context) -> Verdict:
    who, run, got, failed = observed(ctx, "relu", "relu", "backward")
    if failed:
        return failed
    x, g = ctx.inputs["relu"]["x"], ctx.inputs["relu"]["grad"]
    got = pieces(got)[0] if pieces(got) else got
    expected = ref.relu_backward(x, g)
    if isinstance(got, np.ndarray) and got.shape == x.shape:
        # At x == 0 any subgradient in [0, 1] is right (tip 3): accept what lies in range.
        kink = (x == 0) & (np.minimum(0, g) <= got) & (got <= np.maximum(0, g))
        expected = np.where(kink, got, expected)
    s, sa = ref.sigmoid(x), ref.sigmoid(ref.relu_forward(x))  # of the input, or of the output
    return judged(got, expected, "relu.backward", ctx, who, "dx", {
        "relu_no_mask": g * ref.relu_forward(x),
        "relu_sigmoid_derivative": [g * s * (1 - s), g * sa * (1 - sa)],
        "relu_clip": g * np.clip(ref.relu_forward(x), 0, 1), "relu_forgot_upstream": (x > 0) * 1.0})


# ---------------------------------------------------------------- sigmoid + cross-entropy

def loss_rule(ctx: Context) -> LossRule:
    """Where this student's loss layer puts the loss, as the loss probe showed it."""
    def find():
        run = ctx.probes.get("loss")
        if run is None or run.status != "ok":
            return lossvalue.DEFAULT
        ok, got, _ = step(run.value, "forward")
        attrs = run.value.get("forward_attrs") or {}
        i = ctx.inputs["loss"]
        th = ctx.settings("loss.forward")["threshold"]
        found = lossvalue.identify(got, attrs, i["z"], i["y"], th)
        if found is None and lossvalue.probabilities(got, i["z"]):
            return lossvalue.NONE
        return found or lossvalue.fallback(got, attrs)
    return ctx.once("loss_rule", find)


def results_in_attributes(ctx: Context) -> bool:
    """Whether the submission's layers keep their outputs in attributes by design (the
    linear layer's forward returns nothing and sets self.out): a loss doing the same is
    consistent with it, not a forgotten return."""
    run = ctx.probes.get("linear")
    return bool(run and run.status == "ok" and "forward" in (run.value.get("read_from") or {}))


def loss_value(got, attrs=None, rule=None):
    return lossvalue.loss_value(got, attrs, rule)


def loss_forward(ctx: Context) -> Verdict:
    who, run, got, failed = observed(ctx, "loss", "loss", "forward")
    if failed:
        return failed
    z, y = ctx.inputs["loss"]["z"], ctx.inputs["loss"]["y"]
    attrs = run.value.get("forward_attrs") or {}
    th = ctx.settings("loss.forward")["threshold"]
    rule = lossvalue.identify(got, attrs, z, y, th)
    per = ref.bce_per_sample(z, y)
    if rule is not None and rule.source == "attr" and (got is None or lossvalue.probabilities(got, z)) \
            and not results_in_attributes(ctx):
        family = "loss_returns_nothing" if got is None else "loss_returns_probabilities"
        returned = "nothing (None)" if got is None else "the probabilities sigmoid(z)"
        return Verdict("fail", f"{who} computes the right {rule.convention} cross-entropy but "
                       f"keeps it in {rule.where()} and returns {returned}: return the loss",
                       {"convention": rule.convention, "read_from": rule.where(),
                        "suspected": DESCRIBE[family]}, family=family, fraction=0.5)
    if rule is not None:
        value, form = loss_value(got, attrs, rule)
        where = "" if rule.source == "returned" else f", read from {rule.where()}"
        shown = f" ({value:.6g})" if form == "scalar" else ""
        return Verdict.passed(f"{who} computes the {rule.convention} cross-entropy{shown}{where}",
                              convention=rule.convention, read_from=rule.where())
    if got is None and not attrs:
        return Verdict("fail", f"{who} returned nothing (None) and kept no loss: it should return "
                       "the cross-entropy", {"returned": None}, family="loss_returns_nothing")
    if lossvalue.probabilities(got, z):
        return Verdict("fail", f"{DESCRIBE['loss_returns_probabilities']}: {who} returned "
                       "sigmoid(z), and no loss was found in what it returned or kept",
                       {"suspected": DESCRIBE["loss_returns_probabilities"]},
                       family="loss_returns_probabilities")
    value, form = loss_value(got, attrs)
    if form == "scalar":
        with np.errstate(all="ignore"):
            per_raw = -(y * np.log(z) + (1 - y) * np.log(1 - z))  # the cross-entropy of raw scores
        finite = np.isfinite(per_raw)
        raw = per_raw[finite].mean() if finite.any() else np.nan
        fam = ("loss_sign" if value < 0 else
               "no_sigmoid" if not np.isfinite(value) or matches(np.asarray(value), np.asarray(raw), th)
               else None)
        m = compare(np.asarray(value), np.asarray(per.mean()), th, "loss")
        return mismatch_verdict(m, who, fam, DESCRIBE.get(fam))
    for shape in (per.shape, per.shape[:1]):
        if isinstance(value, np.ndarray) and value.shape == shape:
            v = judged(value, per.reshape(shape), "loss.forward", ctx, who, "per-sample loss",
                       {"loss_sign": -per.reshape(shape)})
            return Verdict(v.status, v.message, {**v.details, "convention": "per-sample"}, v.family)
    return judged(value, per.mean(), "loss.forward", ctx, who, "loss")


def loss_convention(ctx: Context) -> str | None:
    """mean, sum or per-sample, as the student's forward showed (None when unknown)."""
    run = ctx.probes.get("loss")
    if run is None or run.status != "ok":
        return None
    v = ctx.once("loss.forward", lambda: loss_forward(ctx))
    return v.details.get("convention") if v.status == "pass" or v.fraction else None


def loss_backward(ctx: Context) -> Verdict:
    who, run, got, failed = observed(ctx, "loss", "loss", "backward")
    if failed:
        return failed
    z, y = ctx.inputs["loss"]["z"], ctx.inputs["loss"]["y"]
    n = len(z)
    got = pieces(got)[0] if pieces(got) else got
    conv = loss_convention(ctx)
    scales = {"mean": [1.0 / n], "sum": [1.0], "per-sample": [1.0]}.get(conv, [1.0 / n, 1.0])
    th = ctx.settings("loss.backward")["threshold"]
    s = ref.sigmoid(z)
    arr_got = as_array(got) if as_array(got) is not None else got
    for k in scales:
        if compare(arr_got, (s - y) * k, th, "dz").ok:
            return Verdict.passed(f"{who} returns the right gradient with respect to the logits"
                                  f" ({'mean' if k < 1 else 'sum'} convention)")
    if run.value.get("split") and fused_gradient(run, s - y, scales, th):
        # CrossEntropy.backward already returns sigmoid(z) - y: right, as long as the MLP
        # does not pass it through Sigmoid.backward as well
        if not mlp_calls(ctx, "sigmoid", "backward"):
            return Verdict.passed(f"{who}: CrossEntropy.backward returns the fused gradient "
                                  "sigmoid(z) - y with respect to the logits")
        return Verdict("fail", f"{DESCRIBE['extra_sigmoid_derivative']}: CrossEntropy.backward "
                       "already returns sigmoid(z) - y, and your MLP then calls Sigmoid.backward "
                       "on it, which multiplies by the sigmoid derivative again",
                       {"suspected": DESCRIBE["extra_sigmoid_derivative"]},
                       family="extra_sigmoid_derivative")
    k = scales[0]
    with np.errstate(all="ignore"):
        families = {
            "sigmoid_derivative": (s - y) / (s * (1 - s)) * ref.sigmoid(z) * ref.sigmoid(1 - z) * k,
            "extra_sigmoid_derivative": (s - y) * s * (1 - s) * k,
            "loss_grad_sign": (y - s) * k,
            "no_sigmoid": (z - y) * k,
        }
    if conv == "mean":
        families["mean_grad_not_divided"] = s - y
    if conv in ("sum", "per-sample"):
        families["sum_grad_divided"] = (s - y) / n
    return judged(got, (s - y) * k, "loss.backward", ctx, who, "dz (gradient with respect to the logits)", families)


def fused_gradient(run, expected, scales, th) -> bool:
    rec = run.value.get("ce_backward")
    if not (isinstance(rec, dict) and rec.get("ok")):
        return False
    fused = rec.get("value")
    fused = pieces(fused)[0] if pieces(fused) else fused
    return any(matches(fused, expected * k, th) for k in scales)


def mlp_calls(ctx: Context, label: str, method: str) -> bool:
    """Whether the student's MLP called that layer method during a training step."""
    run = ctx.probes.get("gradcheck")
    events = ((run.value.get("structure") or {}).get("events") or []) if run and run.status == "ok" else []
    return any(isinstance(e, (list, tuple)) and len(e) >= 4 and e[0] == label and e[1] == method
               for e in events)


CHECKS = {
    "linear.forward": linear_forward,
    "linear.backward": linear_backward,
    "relu.forward": relu_forward,
    "relu.backward": relu_backward,
    "loss.forward": loss_forward,
    "loss.backward": loss_backward,
}
