"""Checks of the student's whole network: the numerical gradient check and layer structure.

Both read the `gradcheck` probe: one traced train step of the student's own MLP at the
grader's weights (learning rate 0), plus the loss at weights nudged by ±h.
"""
from __future__ import annotations

import numpy as np

from ..observe import ProbeRun
from .base import Context, Verdict, probe_failure
from ..harness import names as method_names
from ..load import LAYER_METHODS
from .families import DESCRIBE, constant_ratio
from .layers import by_shape, grad_attr, linear_backward, loss_rule, loss_value, pieces

PARAMS = ("W1", "b1", "W2", "b2", "x")


def network_run(ctx: Context, probe: str, who: str,
                need_mlp: bool = False) -> tuple[ProbeRun | None, Verdict | None]:
    """The probe's run, or the verdict when it cannot be judged. Without an MLP class the
    grader drives the student's layers itself, which is enough for every check except
    those about the MLP's own code (need_mlp)."""
    if need_mlp and not ctx.roles.get("mlp"):
        return None, Verdict("fail", "no MLP class found, so there is no network of yours to "
                             "train or inspect: an MLP should own the layers, call their forward "
                             "and backward, and train them", family="no_mlp")
    failed = probe_failure(ctx, probe, who)
    return ctx.probes.get(probe), failed


def driver_note(ctx: Context) -> str:
    return "" if ctx.roles.get("mlp") else " (no MLP class: the grader drove your layers)"


def scalar_loss(value, returned=None, attrs=None, rule=None) -> float | None:
    """The objective the student's train minimises, from what its loss layer gave back
    (read by the loss probe's rule): a scalar as it is; per-sample losses as the MLP
    reduced them (train's own scalar return when it has one, else their sum); when the
    loss layer hands back no loss at all, what train returned."""
    v, form = loss_value(value, attrs, rule)
    if form == "scalar":
        return v
    if form == "missing":
        r, rform = loss_value(returned)
        return r if rform == "scalar" else None
    if isinstance(v, np.ndarray) and v.size:
        r, rform = loss_value(returned)
        return r if rform == "scalar" and r is not None else float(v.sum())
    return None


def layer_gradients(run: ProbeRun, inputs: dict, k: int) -> dict:
    """dW and db of linear layer k as (in, out) and (out,) arrays, with where they came from."""
    where, W, b = run.value.get("where"), inputs[f"W{k}"], inputs[f"b{k}"]
    rate0 = gradients_of(where, run.value.get("gradients"), None, W, b, k)
    return gradients_of(where, run.value.get(gradients_key(run)), run.value.get("update"), W, b, k, rate0)


def gradients_of(where_all, gradients, update, W, b, k: int, rate0: dict | None = None) -> dict:
    """Layer k's dW and db from a step's evidence: what backward returned, the gradients
    the layer (or the network) kept, else the parameter change of a step at learning rate 1
    (`update`: the parameters after it, in the grader's layout)."""
    n_in, n_out = W.shape
    where = (where_all or {}).get(str(k)) or {}
    out_in = where.get("layout") == "out_in"
    folded = bool(where.get("folded"))
    w_shape = (n_out, n_in + folded) if out_in else (n_in + folded, n_out)
    evidence = (gradients or {}).get(str(k)) or {}
    got, attrs = pieces(evidence.get("returned")), evidence.get("attrs") or {}
    index = k if evidence.get("owner_is_network") else None  # dW1 on the network itself
    found = {}
    for name, shapes, param in (("W", {w_shape}, "W"), ("b", {(n_out,), (1, n_out), (n_out, 1)}, "b")):
        arr = by_shape(got, shapes) if not (folded and name == "b") else None
        src = "returned by backward"
        if arr is None and not (folded and name == "b"):
            hit = grad_attr(attrs, param, shapes, index)
            arr, src = (hit[1], f"attribute {hit[0]}") if hit else (None, None)
        if arr is not None and name == "W":
            arr = arr.T if out_in else arr
            if folded:  # the bias row of a folded W: its gradient is db
                row = 0 if where.get("folded") == "first" else -1
                found[f"b{k}"] = (arr[row], src + " (bias row)")
                arr = arr[1:] if row == 0 else arr[:-1]
        after = (update or {}).get(f"{name}{k}")
        before = W if name == "W" else b
        change = before - after.reshape(before.shape) \
            if isinstance(after, np.ndarray) and after.size == before.size else None
        if arr is None and change is not None:  # a step at learning rate 1, grader's layout
            arr, src = change, "parameter change of one step (lr 1)"
        elif is_the_step(arr, change, src, (rate0 or {}).get(f"{name}{k}")):
            arr, src = change, f"parameter change of one step (lr 1; {src} is not the gradient: it holds the step or stays zero)"
        if name == "b" and folded and f"b{k}" in found:
            continue
        if arr is not None and name == "b":
            arr = arr.reshape(n_out)
        found[f"{name}{k}"] = (arr, src)
    return found


def is_the_step(arr, change, src, at_rate0=None) -> bool:
    """An attribute named like a gradient (state['dW']) that is not the gradient: it stays
    zero while a step at learning rate 1 moves the weights, or it was zero after the step at
    rate 0 and now holds the step itself (a velocity, -lr·gradient, kept under that name; a
    step that climbs the gradient also equals the gradient, but that is not zero at rate 0)."""
    if arr is None or change is None or not (src or "").startswith("attribute") \
            or arr.size != change.size or not np.any(change):
        return False
    if not np.any(arr):
        return True
    held0, src0 = at_rate0 or (None, None)
    return src0 == src and isinstance(held0, np.ndarray) and not np.any(held0) \
        and bool(np.allclose(arr.reshape(change.shape), -change, rtol=1e-6, atol=1e-12))


def gradients_key(run: ProbeRun) -> str:
    """The gradients of a step at learning rate 1 (what training really uses: an update
    made before dx is computed shows there), else those of the step at rate 0."""
    return "update_gradients" if isinstance(run.value.get("update_gradients"), dict) else "gradients"


def analytic_gradients(run: ProbeRun, inputs: dict) -> dict:
    found = {**layer_gradients(run, inputs, 1), **layer_gradients(run, inputs, 2)}
    dx = unshuffle(run.value.get("update_dx"), run.value.get("update_order"), inputs["x"].shape)
    if dx is None:
        dx = unshuffle(run.value.get("dx"), (run.value.get("base") or {}).get("order"), inputs["x"].shape)
    found["x"] = (dx, "returned by the first layer's backward" if dx is not None else None)
    return found


def unshuffle(rows, order, shape) -> np.ndarray | None:
    """Rows the student's train produced in its own order (shuffled, or batch by batch)
    put back in the order of x, using the row order the harness saw."""
    if not isinstance(rows, np.ndarray) or rows.ndim != 2 or rows.shape[1] != shape[1]:
        return None
    if order is None:
        return rows if rows.shape == tuple(shape) else None
    idx = [int(i) for i in order] if isinstance(order, (list, tuple)) else []
    if len(idx) != len(rows) or sorted(idx) != list(range(shape[0])):
        return None
    out = np.empty(tuple(shape))
    out[idx] = rows
    return out


def numerical_gradients(run: ProbeRun, h: float, rule=None) -> dict:
    out = {}
    for name, pairs in (run.value.get("nudged") or {}).items():
        vals = []
        for pair in pairs if isinstance(pairs, (list, tuple)) else []:
            up, down = (objective(v, rule) for v in pair) if len(pair) == 2 else (None, None)
            vals.append(None if up is None or down is None else (up - down) / (2 * h))
        out[name] = vals
    return out


def objective(entry, rule=None) -> float | None:
    if isinstance(entry, dict):
        return scalar_loss(entry.get("loss"), entry.get("returned"), entry.get("loss_attrs"), rule)
    return scalar_loss(entry, rule=rule)


def relative_errors(run: ProbeRun, inputs: dict, rule=None) -> dict:
    """param -> {"rel_error", "analytic", "numerical", "source", "entries"} for every param."""
    samples = inputs["samples"]
    analytic = analytic_gradients(run, inputs)
    numerical = numerical_gradients(run, inputs["h"], rule)
    table = {}
    for p in PARAMS:
        grad, src = analytic.get(p, (None, None))
        nums = numerical.get(p, [])
        idxs = [tuple(i) for i in samples[p]]
        if grad is None or len(nums) != len(idxs) or any(n is None for n in nums):
            missing = "analytic" if grad is None else "numerical"
            table[p] = {"rel_error": None, "source": src, "missing": missing}
            continue
        a = np.array([grad[i] for i in idxs])
        n = np.array(nums)
        denom = np.maximum(np.abs(a), np.abs(n))
        rel = np.where(denom < 1e-12, 0.0, np.abs(a - n) / np.where(denom < 1e-12, 1.0, denom))
        table[p] = {"rel_error": float(rel.max()), "source": src, "analytic": a.tolist(),
                    "numerical": n.tolist(), "entries": [list(i) for i in idxs]}
    return table


def ratio(entry: dict, n: int) -> str | None:
    """'×2', '×½', '×−1', '×N' … when the analytic gradient is a constant multiple of the
    numerical one (the same words as the per-layer checks use)."""
    a, num = np.array(entry.get("analytic") or []), np.array(entry.get("numerical") or [])
    if not (a.size and np.all(np.isfinite(a)) and np.all(np.isfinite(num))) or not np.any(a):
        return None
    return constant_ratio(a, num, n, 1e-5)


def gradcheck(param: str):
    cid = f"gradcheck.{param}"

    def check(ctx: Context) -> Verdict:
        who = f"gradient of {param}{driver_note(ctx)}"
        run, failed = network_run(ctx, "gradcheck", who)
        if failed:
            return failed
        table = ctx.once("gradcheck.table", lambda: relative_errors(
            run, ctx.inputs["gradcheck"], loss_rule(ctx)))
        th = ctx.settings(cid)["threshold"]
        summary = {p: e["rel_error"] for p, e in table.items()}
        details = {"rel_error": summary, "threshold": th, "entries": table[param],
                   "h": ctx.inputs["gradcheck"]["h"]}
        entry = table[param]
        if entry["rel_error"] is None and entry.get("missing") == "numerical":
            return Verdict("fail", f"{who}: the loss your network computes could not be read as "
                           "a number, so there is nothing to differentiate numerically (does the "
                           "loss layer's forward return the loss?)", details)
        if entry["rel_error"] is None and param == "x" and not dx_passed_back(run) \
                and ctx.once("linear.backward", lambda: linear_backward(ctx)).status == "pass":
            return Verdict("pass", f"{who}: your network does not pass a gradient back to its "
                           "inputs (nothing needs it there); the linear layer's own dx is right "
                           "(linear.backward)", details)
        if entry["rel_error"] is None:
            return Verdict("fail", f"{who}: no gradient found (not returned by backward, not kept "
                           "as an attribute, no parameter change after an update)", details)
        if entry["rel_error"] <= th:
            return Verdict("pass", f"{who} matches the numerical gradient (relative error "
                           f"{entry['rel_error']:.1e})", details)
        r = ratio(entry, len(ctx.inputs["gradcheck"]["x"]))
        family = None
        if r and r.startswith("×−"):
            family = "grad_sign"
        elif r:
            family = "grad_factor"
        partner = {"b1": "W1", "b2": "W2"}.get(param)
        if family is None and partner and (summary.get(partner) or 1) <= th:
            family = "bias_grad"
        details["ratio"] = r
        details["suspected"] = DESCRIBE.get(family)
        say = (f"the analytic gradient is {r} the numerical one" if r
               else f"relative error {entry['rel_error']:.2g} (threshold {th:g})")
        worst = int(np.argmax(np.abs(np.array(entry["analytic"]) - np.array(entry["numerical"]))))
        culprits = failing_backward_checks(ctx)
        details["likely_cause"] = culprits
        cause = f" (fix {', '.join(culprits)} first: this follows from it)" if culprits else ""
        return Verdict("fail", f"{who}: {say}; at {entry['entries'][worst]} backprop gives "
                       f"{entry['analytic'][worst]:.6g}, centred differences give "
                       f"{entry['numerical'][worst]:.6g}{cause}", details, family=family)

    check.__name__ = f"gradcheck_{param}"
    return check


def dx_passed_back(run: ProbeRun) -> bool:
    """Whether the first layer's backward handed anything back during the step."""
    return run.value.get("dx") is not None or run.value.get("update_dx") is not None


def failing_backward_checks(ctx: Context) -> list[str]:
    """Per-layer checks that already fail: the network's gradient inherits their bugs."""
    from .layers import linear_backward, loss_backward, relu_backward

    checks = {"loss.backward": loss_backward, "relu.backward": relu_backward,
              "linear.backward": linear_backward}
    return [cid for cid, run in checks.items()
            if ctx.once(cid, lambda run=run: run(ctx)).status != "pass"]


# ---------------------------------------------------------------- structure

def layer_class_names(ctx: Context) -> dict[str, str]:
    out = {}
    for role in ("linear", "relu", "loss"):
        v = ctx.roles.get(role)
        for name in (v if isinstance(v, list) else [v] if v else []):
            out[name] = role
    return out


def static_violations(ctx: Context) -> list[str]:
    """A layer class (the loss included) whose methods name another layer class (tip 2.1),
    from the source."""
    names = layer_class_names(ctx)
    found = []
    for c in ctx.submission.classes:
        if c.name not in names:
            continue
        for other in sorted(set(names) - {c.name}):
            if other in c.names_used and names[other] != names[c.name]:
                found.append(f"{c.name} mentions {other} in its methods ({c.source_file} line {c.line})")
    return found


def stubs(ctx: Context, roles=("linear", "relu", "loss")) -> list[str]:
    """Layer methods that do nothing yet (pass, only print, return None or their input).
    A split loss's Sigmoid.backward may pass its gradient through on purpose (its
    CrossEntropy.backward returns the fused gradient): not a stub."""
    names = layer_class_names(ctx)
    loss = ctx.roles.get("loss")
    sigmoid = loss[0] if isinstance(loss, list) else None
    return [f"{c.name}.{m}" for c in ctx.submission.classes
            if names.get(c.name) in roles for m in c.stubs
            if not (c.name == sigmoid and m in method_names.LOSS_BACKWARD)]


LAYER_LABELS = ("linear1", "linear2", "relu", "loss", "sigmoid", "crossentropy")


def events_of(value) -> list:
    """Tracer events [label, job, depth, parent, driver] (older records have no driver)."""
    return [list(e) + [None] * (5 - len(e)) for e in value or []
            if isinstance(e, (list, tuple)) and len(e) in (4, 5)]


def dynamic_violations(run: ProbeRun) -> list[str]:
    s = run.value.get("structure") or {}
    found = []
    for holder, path, role in s.get("holds") or []:
        found.append(f"{holder} holds a {role} layer in self.{path}")
    for ev in events_of(s.get("events")):
        if ev[2] and isinstance(ev[3], str) and ev[3].split(".")[0] != ev[0]:
            found.append(f"{ev[0]}.{ev[1]} ran inside {ev[3]}")  # (a layer calling itself is fine)
    return sorted(set(found))


def separation(ctx: Context) -> Verdict:
    who = "layer separation"
    empty = stubs(ctx)
    layer_methods = sum(len([m for m in c.methods if m in LAYER_METHODS]) for c in ctx.submission.classes
                        if c.name in layer_class_names(ctx))
    if empty and (stubs(ctx, ("linear",)) or 2 * len(empty) >= layer_methods):
        return Verdict("fail", f"the layers are not implemented yet ({', '.join(empty[:4])} "
                       "does nothing), so there is no separation to credit",
                       {"stubs": empty}, family="stub_methods")
    violations = static_violations(ctx)
    run = ctx.probes.get("gradcheck")
    if ctx.roles.get("mlp") and run is not None and run.status == "ok":
        violations += dynamic_violations(run)
    if violations:
        return Verdict("fail", f"a layer knows another layer: {violations[0]}"
                       + (f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""),
                       {"violations": violations, "suspected": DESCRIBE["layer_holds_layer"]},
                       family="layer_holds_layer")
    return Verdict("pass", "no layer holds or calls another layer")


def expected_calls(ctx: Context) -> list[tuple[str, str]]:
    """The layer calls one training step must make."""
    loss = ctx.roles.get("loss")
    calls = [("linear1", "forward"), ("relu", "forward"), ("linear2", "forward"),
             ("linear2", "backward"), ("relu", "backward"), ("linear1", "backward")]
    if isinstance(loss, list):
        calls += [("sigmoid", "forward"), ("crossentropy", "forward"), ("crossentropy", "backward")]
    else:
        calls += [("loss", "forward")]
        if has_backward(ctx, loss):  # (a fused loss returns its gradient from forward)
            calls += [("loss", "backward")]
    return calls


def has_backward(ctx: Context, class_name: str) -> bool:
    return any(c.name == class_name and set(c.methods) & set(method_names.LOSS_BACKWARD)
               for c in ctx.submission.classes)


DRIVER_WORDS = {"student-train": "its train method", "module-train": "your training function",
                "object-train": "your trainer object",
                "grader-loop": "nngrader's loop over its forward, backward and update methods"}


def mlp_drives(ctx: Context) -> Verdict:
    """The network calls every layer's forward and backward itself (tip 2.2), and evaluate
    runs through the layers (tip 2.3). The loss may be computed outside the network when the
    training step is not a method of it (the current skeleton's training function)."""
    who = ctx.who("mlp", "train")
    run, failed = network_run(ctx, "gradcheck", who, need_mlp=True)
    if failed:
        return failed
    s = run.value.get("structure") or {}
    mlp = s.get("mlp_class") or "the MLP"
    driver = s.get("driver")
    details = {"driver": driver, "trained_by": s.get("driver_label"),
               "calls_during_train": [f"{e[0]}.{e[1]}" for e in events_of(s.get("events"))][:40]}
    if driver == "grader-layers":
        why = "; ".join(s.get("notes") or [f["error"] for f in s.get("failed") or []]) or "no usable method"
        return Verdict("fail", f"nngrader could not drive {mlp} ({why}), so it drove your layers "
                       "itself: the network's own code was not checked", details, family="mlp_not_driving")
    events = events_of(s.get("events"))
    inside = {(normal_label(e[0], ctx), e[1]) for e in events if e[2] == 0 and e[4]}
    anywhere = {(normal_label(e[0], ctx), e[1]) for e in events if e[2] == 0}
    loss_labels = ("loss", "sigmoid", "crossentropy")
    missing = [f"{l}.{m}" for l, m in expected_calls(ctx)
               if (l, m) not in (anywhere if l in loss_labels and driver != "student-train" else inside)]
    problems = []
    for f in s.get("failed") or []:
        if f.get("driver") == "student-train":
            problems.append(f"{f.get('label')} could not be called ({f.get('error')}); nngrader "
                            f"trained the network through {DRIVER_WORDS.get(driver, driver)} instead")
    if missing:
        problems.append(f"during a training step {mlp} never calls {', '.join(missing)} itself")
    problems += evaluate_problems(ctx, run, mlp, details)
    if problems:
        return Verdict("fail", "; ".join(problems), details, family="mlp_not_driving")
    return Verdict("pass", f"{mlp} calls every layer's forward and backward itself (trained "
                   f"through {DRIVER_WORDS.get(driver, driver)}), and evaluate goes through the layers",
                   details)


def evaluate_problems(ctx: Context, run: ProbeRun, mlp: str, details: dict) -> list[str]:
    eval_events = events_of(run.value.get("evaluate_events"))
    details["calls_during_evaluate"] = [f"{e[0]}.{e[1]}" for e in eval_events][:20]
    rec = run.value.get("evaluate")
    if not isinstance(rec, dict):
        return [f"{mlp} has no evaluate method (nor a module-level evaluate(model, ...))"]
    if not rec.get("ok"):
        err = rec.get("error") or {}
        if err.get("probe_error"):
            return [err.get("message", "evaluate could not be called")]
        return [f"evaluate raised {err.get('type', 'an error')}: {err.get('message', '')}"]
    if not any(normal_label(e[0], ctx) == "linear1" and e[1] == "forward" for e in eval_events):
        return ["evaluate does not run the data through the layers"]
    return []


def normal_label(label: str, ctx: Context) -> str:
    """Map a class name (a layer the MLP created on the fly) to its role label."""
    if label in LAYER_LABELS:
        return label
    if label == "linear":
        return "linear1"  # a linear layer whose weights did not say which one it is
    role = layer_class_names(ctx).get(label)
    if role == "loss" and isinstance(ctx.roles.get("loss"), list):
        return "sigmoid" if label == ctx.roles["loss"][0] else "crossentropy"
    return role or label
