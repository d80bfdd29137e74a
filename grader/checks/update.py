"""Checks of the update rule, through the student's own MLP.train.

The `update` probe runs three scenarios from the same weights: plain SGD for two steps,
one step with L2, two steps with momentum. Differences between them isolate each rule
without knowing the student's convention: with the same start, the L2 step differs from
the plain one by -c·W (c > 0 for any correct convention: L2 in the gradient, weight decay,
λ or 2λ), and the second momentum step differs from the second plain step by μ times the
first step (v = μv - ηg, W += v and v = μv + g, W -= ηv give the same trajectory).
"""
from __future__ import annotations

import numpy as np

from ..plan import UPDATE_L2, UPDATE_LR, UPDATE_MOMENTUM
from ..reference import mlp as ref_mlp
from .base import Context, Verdict
from .families import DESCRIBE
from .network import network_run

WEIGHTS, BIASES = ("W1", "W2"), ("b1", "b2")


def params_at(sc: dict, step: int) -> dict:
    """Parameters before (step 0) or after step k, as arrays (None where unreadable)."""
    p = sc.get("before") if step == 0 else (sc.get("steps") or [{}] * step)[step - 1].get("params")
    return {k: v if isinstance(v, np.ndarray) else None for k, v in (p or {}).items()}


def delta(sc: dict, step: int, key: str):
    a, b = params_at(sc, step - 1).get(key), params_at(sc, step).get(key)
    if a is None or b is None or a.shape != b.shape:
        return None
    return b - a


def norm(a) -> float:
    return float(np.linalg.norm(a)) if a is not None else 0.0


def scenario_or_verdict(ctx: Context, who: str, *names: str, needs: str | None = None):
    run, failed = network_run(ctx, "update", who)
    if failed:
        return None, failed
    scs = {}
    for n in names:
        sc = run.value.get(n)
        if not (isinstance(sc, dict) and sc.get("ok")):
            err = (sc or {}).get("error") or {}
            return None, Verdict("error", f"{who}: training the MLP raised {err.get('type', 'an error')}: "
                                 f"{err.get('message', 'no result')}", {"scenario": n})
        scs[n] = sc
    return scs, unreachable(scs, needs, who) if needs else None


def unreachable(scs: dict, name: str, who: str) -> Verdict | None:
    """An error, not a fail, when train could not be given this hyper-parameter at all."""
    for sc in scs.values():
        for st in sc.get("steps") or []:
            reached = st.get("hyper")
            if isinstance(reached, (list, tuple)) and name not in reached:
                words = {"lr": "learning rate", "momentum": "momentum", "l2": "L2 penalty"}[name]
                return Verdict("error", f"{who}: nngrader found no way to set the {words} of "
                               "your train: take it as an argument of train (or keep it as an "
                               "attribute of the MLP), so it can be checked", {"reached": list(reached)})
    return None


def direction(ctx: Context) -> Verdict:
    who = "update direction"
    scs, failed = scenario_or_verdict(ctx, who, "plain")
    if failed:
        return failed
    plain = scs["plain"]
    i = ctx.inputs["update"]
    _, g = ref_mlp.loss_and_grads(i["x"], i["y"], i["W1"], i["b1"], i["W2"], i["b2"])
    cosines = {}
    for key in WEIGHTS:
        d = delta(plain, 1, key)
        if d is None or norm(d) == 0:
            continue
        ref = g[key] if d.shape == g[key].shape else g[key].T
        cosines[key] = float(np.sum(d * -ref) / (norm(d) * norm(ref)))
    details = {"cosine_with_minus_gradient": cosines, "learning_rate": UPDATE_LR}
    if not cosines:
        return Verdict("fail", "one training step changed no weight at all", details, family="no_update")
    if min(cosines.values()) < -0.5:
        bad = min(cosines, key=cosines.get)
        details["suspected"] = DESCRIBE["gradient_ascent"]
        return Verdict("fail", f"{DESCRIBE['gradient_ascent']}: the step on {bad} points up the "
                       f"gradient (cosine with the descent direction {cosines[bad]:.2f})", details,
                       family="gradient_ascent")
    if min(cosines.values()) < 0.5:
        bad = min(cosines, key=cosines.get)
        return Verdict("fail", f"the step on {bad} is not along the negative gradient (cosine "
                       f"{cosines[bad]:.2f})", details)
    return Verdict("pass", "weights move against the gradient (gradient descent)", details)


def bias(ctx: Context) -> Verdict:
    who = "bias update"
    scs, failed = scenario_or_verdict(ctx, who, "plain")
    if failed:
        return failed
    plain = scs["plain"]
    before, after = params_at(plain, 0), params_at(plain, 1)
    problems, family = [], None
    for key in BIASES:
        b0, b1 = before.get(key), after.get(key)
        if b0 is None or b1 is None:
            problems.append(f"{key} could not be read")
        elif b0.shape != b1.shape:
            problems.append(f"{key} changed shape from {b0.shape} to {b1.shape} after one step")
            family = "bias_shape_grows"
        elif norm(b1 - b0) == 0:
            problems.append(f"{key} did not change in a training step")
            family = family or "bias_frozen"
    if problems:
        return Verdict("fail", "; ".join(problems), {"suspected": DESCRIBE.get(family)}, family=family)
    return Verdict("pass", "both biases are updated and keep their shape")


def layers(ctx: Context) -> Verdict:
    who = "layers updated"
    scs, failed = scenario_or_verdict(ctx, who, "plain")
    if failed:
        return failed
    frozen = [k for k in WEIGHTS if norm(delta(scs["plain"], 1, k)) == 0]  # norm(None) is 0
    if frozen:
        family = "first_layer_frozen" if "W1" in frozen else "layer_frozen"
        names = {"W1": "the first layer's weights (W1)", "W2": "the second layer's weights (W2)"}
        return Verdict("fail", f"a training step never changes {' or '.join(names[k] for k in frozen)}",
                       {"frozen": frozen, "suspected": DESCRIBE.get(family)}, family=family)
    return Verdict("pass", "a training step updates the weights of both layers")


def l2(ctx: Context) -> Verdict:
    who = "L2 penalty"
    scs, failed = scenario_or_verdict(ctx, who, "plain", "l2", needs="l2")
    if failed:
        return failed
    factors, details = {}, {"l2": UPDATE_L2, "learning_rate": UPDATE_LR}
    for key in WEIGHTS + BIASES:
        W0 = params_at(scs["plain"], 0).get(key)
        d_plain, d_l2 = delta(scs["plain"], 1, key), delta(scs["l2"], 1, key)
        if W0 is None or d_plain is None or d_l2 is None:
            if key in WEIGHTS:
                return Verdict("error", f"{who}: the weights {key} could not be read", details)
            continue
        diff = d_l2 - d_plain
        c = -float(np.sum(diff * W0) / np.sum(W0 * W0)) if np.any(W0) else 0.0
        residual = norm(diff + c * W0) / max(norm(diff), 1e-12)
        factors[key] = {"c": c, "residual": residual}
    scale = UPDATE_LR * UPDATE_L2
    details.update(factors=factors, expected_c=scale)
    weights = {k: factors[k]["c"] for k in WEIGHTS}
    ignored = [k for k, c in weights.items() if abs(c) < 1e-6 * scale]
    if ignored:
        on_bias = [k for k in BIASES if k in factors and abs(factors[k]["c"]) >= 1e-6 * scale]
        where = f" (it is applied to {' and '.join(on_bias)}, the biases, instead)" if on_bias else ""
        return Verdict("fail", f"the L2 penalty has no effect on {' and '.join(ignored)}{where}",
                       details, family="l2_ignored")
    if any(c < 0 for c in weights.values()):
        details["suspected"] = DESCRIBE["l2_sign"]
        return Verdict("fail", f"{DESCRIBE['l2_sign']}: with L2 on, the weights grow (W moves by "
                       f"{-min(weights.values()):+.3g}·W instead of shrinking)", details, family="l2_sign")
    if any(factors[k]["residual"] > 1e-3 for k in WEIGHTS):
        return Verdict("fail", "with L2 on, the update changes by something other than a multiple "
                       "of the weights", details)
    return Verdict("pass", f"L2 shrinks the weights of both layers (by {weights['W1'] / scale:.3g}·ηλ·W "
                   "per step)", details)


def momentum(ctx: Context) -> Verdict:
    who = "momentum"
    scs, failed = scenario_or_verdict(ctx, who, "plain", "momentum", needs="momentum")
    if failed:
        return failed
    mu = UPDATE_MOMENTUM
    details, worst, worst_key = {"momentum": mu}, 0.0, None
    ema = False
    for key in WEIGHTS + BIASES:
        d1p, d2p = delta(scs["plain"], 1, key), delta(scs["plain"], 2, key)
        d1m, d2m = delta(scs["momentum"], 1, key), delta(scs["momentum"], 2, key)
        if any(v is None for v in (d1p, d2p, d1m, d2m)) or (key in BIASES and norm(d1p) == 0):
            if key in BIASES:
                continue  # a bias that cannot be read or never moves is update.bias's concern
            return Verdict("error", f"{who}: the weights {key} could not be read over two steps", details)
        if norm(d1m - (1 - mu) * d1p) < 1e-6 * norm(d1p) and norm(d1p) > 0:
            ema = True  # v = μv + (1-μ)g: a damped momentum, also correct
            expected = mu * d1m + (1 - mu) * d2p
            rel = norm(d2m - expected) / max(norm(expected), 1e-12)
            tol = 0.1
        else:
            extra = d2m - d2p
            if norm(extra) < 1e-6 * norm(d1p):
                details["suspected"] = DESCRIBE["momentum_ignored"]
                what = "bias" if key in BIASES else "weights"
                return Verdict("fail", f"{DESCRIBE['momentum_ignored']}: with momentum {mu} the "
                               f"second step on the {what} {key} is the same as without it", details,
                               family="momentum_ignored")
            rel = norm(extra - mu * d1p) / max(norm(mu * d1p), 1e-12)
            tol = 1e-4
        details[f"{key}_relative_error"] = rel
        if rel / tol > worst:
            worst, worst_key = rel / tol, key
    if worst > 1:
        return Verdict("fail", f"momentum is applied, but on {worst_key} the second step does not "
                       "carry μ times the first (v = μv - ηg, W += v; each parameter keeps its own "
                       "velocity)", details, family="momentum_wrong")
    return Verdict("pass", "momentum carries μ times the previous step into the next"
                   + (" (damped convention)" if ema else ""), details)
