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
from .layers import loss_convention
from .network import failing_backward_checks, gradients_of, network_run

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


def close(a, b, rel: float = 1e-4) -> bool:
    if a is None or b is None or a.size != b.size:
        return False
    a, b = a.reshape(-1), b.reshape(-1)
    return norm(a - b) <= rel * max(norm(b), 1e-12)


def reference_gradients(ctx: Context, params: dict, convention: str | None = None) -> dict | None:
    """The reference gradients at these parameters, scaled to an objective (a summed loss
    has N times the gradient of a mean one; by default the student's loss convention)."""
    i = ctx.inputs["update"]
    if any(params.get(k) is None for k in WEIGHTS + BIASES):
        return None
    try:
        _, g = ref_mlp.loss_and_grads(i["x"], i["y"], params["W1"], params["b1"].reshape(-1),
                                      params["W2"], params["b2"].reshape(-1))
    except ValueError:  # parameters of the wrong shape (a bias grown to one row per sample)
        return None
    k = len(i["x"]) if (convention or loss_convention(ctx)) == "sum" else 1.0
    return {key: g[key] * k for key in WEIGHTS + BIASES}


def own_gradients(ctx: Context, sc: dict, step: int) -> dict | None:
    """The gradients the student's own backward produced during that step."""
    st = (sc.get("steps") or [])[step - 1] if len(sc.get("steps") or []) >= step else {}
    before = params_at(sc, step - 1)
    out = {}
    for k in (1, 2):
        W, b = before.get(f"W{k}"), before.get(f"b{k}")
        if W is None or b is None or b.size != W.shape[1]:
            return None
        found = gradients_of(sc.get("where"), st.get("gradients"), None, W, b.reshape(-1), k)
        out.update({name: arr for name, (arr, _) in found.items()})
    return out if all(out.get(k) is not None for k in WEIGHTS) else None


OWN = "your backprop's gradient"


def gradient_sources(ctx: Context, sc: dict, step: int) -> list[tuple[str, dict]]:
    """(label, gradients) to compare a step with: the student's own backprop first, then
    the reference (a step is right when it follows either: a wrong gradient is the
    gradient checks' business, not the update rule's)."""
    out = []
    own = own_gradients(ctx, sc, step)
    if own is not None:
        out.append((OWN, own))
    ref = reference_gradients(ctx, params_at(sc, step - 1))
    if ref is not None:
        out.append(("the exact gradient", ref))
    if loss_convention(ctx) == "sum":  # a summed loss stepped at lr/N: a mean loss's step
        mean = reference_gradients(ctx, params_at(sc, step - 1), "mean")
        if mean is not None:
            out.append(("the exact gradient of the mean loss", mean))
    return out


def moved(sc: dict, step: int, keys=WEIGHTS) -> list[str]:
    """The parameters this step changed (a frozen one is update.layers' business)."""
    return [k for k in keys if norm(delta(sc, step, k)) > 0]


def matching_source(sc: dict, step: int, sources, scale: float, keys=WEIGHTS):
    """The first gradient source under which every step of `keys` that moved equals
    -scale·gradient."""
    keys = moved(sc, step, keys)
    for label, g in sources:
        if keys and all(close(delta(sc, step, k), -scale * g[k].reshape(-1)) for k in keys):
            return label, g
    return None


def direction(ctx: Context) -> Verdict:
    """One plain step moves the weights by exactly -η times the gradient (tips 7, 8b)."""
    who = "update direction"
    scs, failed = scenario_or_verdict(ctx, who, "plain")
    if failed:
        return failed
    plain = scs["plain"]
    eta = UPDATE_LR
    sources = gradient_sources(ctx, plain, 1)
    details = {"learning_rate": eta}
    steps = {k: delta(plain, 1, k) for k in WEIGHTS}
    if all(d is None or norm(d) == 0 for d in steps.values()):
        return Verdict("fail", "one training step changed no weight at all", details, family="no_update")
    hit = matching_source(plain, 1, sources, eta)
    if hit:
        return Verdict("pass", f"each step is −η·gradient (η = {eta:g}; checked against "
                       f"{hit[0]})", {**details, "compared_with": hit[0]})
    if matching_source(plain, 1, sources, eta * eta):
        details["suspected"] = DESCRIBE["lr_squared"]
        return Verdict("fail", f"{DESCRIBE['lr_squared']}: with η = {eta:g} the weights move by "
                       f"{eta * eta:g}·gradient", details, family="lr_squared")
    g = sources[0][1] if sources else None
    cosines = {}
    for key, d in steps.items():
        if d is None or norm(d) == 0 or g is None:
            continue
        ref = g[key].reshape(d.shape) if g[key].size == d.size else None
        if ref is not None and norm(ref):
            cosines[key] = float(np.sum(d * -ref) / (norm(d) * norm(ref)))
    details["cosine_with_minus_gradient"] = cosines
    if cosines and min(cosines.values()) < -0.5:
        bad = min(cosines, key=cosines.get)
        details["suspected"] = DESCRIBE["gradient_ascent"]
        return Verdict("fail", f"{DESCRIBE['gradient_ascent']}: the step on {bad} points up the "
                       f"gradient (cosine with the descent direction {cosines[bad]:.2f})", details,
                       family="gradient_ascent")
    if not sources:
        return Verdict("error", f"{who}: the gradients could not be read, so the step cannot be "
                       "compared with them", details)
    if sources[0][0] != OWN and (min(cosines.values(), default=1.0) >= 0.5 or failing_backward_checks(ctx)):
        # backprop's own gradient is not visible, and the exact one may differ from it by a
        # gradient bug (the gradient checks' business, or a layer check that already fails):
        # judge only that the step does not climb
        return Verdict("pass", f"weights move against the gradient (cosine with the exact "
                       f"gradient {min(cosines.values(), default=1.0):.2f}; your backprop's own "
                       "gradient is not visible, so the step's size was not compared)", details)
    key = min(cosines, key=cosines.get) if cosines else WEIGHTS[0]
    d, ref = steps.get(key), sources[0][1][key]
    scale = float(np.sum(d.reshape(-1) * -ref.reshape(-1)) / max(np.sum(ref * ref), 1e-300)) if d is not None else 0.0
    return Verdict("fail", f"the step on {key} is not −η·gradient: it is {scale / eta:.3g}·η times "
                   f"the gradient along it (cosine {cosines.get(key, float('nan')):.2f})", details)


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
    wrong = wrong_bias_steps(plain, gradient_sources(ctx, plain, 1))
    if wrong:
        family = "gradient_ascent" if "+η" in wrong else "bias_wrong_grad"
        return Verdict("fail", f"{DESCRIBE[family]}: {wrong}", {"suspected": DESCRIBE[family]},
                       family=family)
    return Verdict("pass", "both biases are updated by −η·db and keep their shape")


def wrong_bias_steps(plain: dict, sources) -> str | None:
    """How a bias step differs from -η·db, when the weights' steps follow some gradient
    source exactly (so the convention is known); None when the biases follow it too."""
    hit = matching_source(plain, 1, sources, UPDATE_LR)
    if hit is None:
        return None  # the weights' own step is off: update.direction says how
    label, g = hit
    for key, other in (("b1", "b2"), ("b2", "b1")):
        d = delta(plain, 1, key)
        if d is None or g.get(key) is None or g.get(other) is None \
                or close(d, -UPDATE_LR * g[key].reshape(-1)):
            continue  # (a wrong db itself is linear.backward's and the gradient check's business)
        if close(d, UPDATE_LR * g[key].reshape(-1)):
            return f"{key} moves by +η·d{key}: up its gradient, not down"
        theirs = -UPDATE_LR * g[other].reshape(-1)
        if theirs.size == 1 and np.allclose(d, theirs[0], rtol=1e-4) or close(d, theirs):
            return f"{key} moves by −η·d{other} (the other layer's bias gradient) instead of −η·d{key}"
    return None


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
    weights = {k: factors[k]["c"] for k in moved(scs["plain"], 1) or WEIGHTS}
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
    if any(factors[k]["residual"] > 1e-3 for k in weights):
        return Verdict("fail", "with L2 on, the update changes by something other than a multiple "
                       "of the weights", details)
    first = next(iter(weights))
    return Verdict("pass", f"L2 shrinks the weights it updates (by {weights[first] / scale:.3g}·ηλ·W "
                   "per step)", details)


def accumulated(ctx: Context, plain: dict) -> bool:
    """Whether the second plain step carries the first step's gradient again (gradients
    summed into dW and never reset): -η·(g0 + g1) instead of -η·g1."""
    first = reference_gradients(ctx, params_at(plain, 0))
    second = reference_gradients(ctx, params_at(plain, 1))
    if first is None or second is None or not matching_source(plain, 1, [("ref", first)], UPDATE_LR):
        return False
    both = {k: first[k] + second[k] for k in WEIGHTS}
    return bool(matching_source(plain, 2, [("sum", both)], UPDATE_LR)) and \
        not matching_source(plain, 2, [("ref", second)], UPDATE_LR)


def momentum(ctx: Context) -> Verdict:
    who = "momentum"
    scs, failed = scenario_or_verdict(ctx, who, "plain", "momentum", needs="momentum")
    if failed:
        return failed
    if accumulated(ctx, scs["plain"]):
        return Verdict("fail", f"{DESCRIBE['grad_accumulated']}: without momentum the second "
                       "step is −η·(g₀ + g₁), carrying the first step's gradient again, as a "
                       "momentum of 1 that never decays would", {"suspected": DESCRIBE["grad_accumulated"]},
                       family="grad_accumulated")
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
