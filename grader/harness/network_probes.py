"""Probes of the whole network: one traced step at the grader's weights with the loss at
nudged weights (gradcheck), short training runs with known hyper-parameters (update), and
the student's evaluate on a labelled set."""
import contextlib
import io

import numpy as np

from .boundary import describe, encode, step
from .drivers import Network


def arrays_of(args, *keys):
    return [np.array(args[k], dtype=float) for k in keys]


def step_record(net, x, y, lr=0.0, momentum=0.0, l2=0.0, epoch=False):
    """One training step as data: what the call returned, the losses the loss layer
    computed (and what it kept), the logits it saw, and the order in which the first layer
    saw the rows of x (train may shuffle or split the batch: accuracy and dx are aligned
    with it on the grader's side). `epoch`: a training run's step, whose record keeps only
    the numbers the loss layer kept and its first loss (a run records no more per epoch)."""
    returned, reached = net.step(x, y, lr, momentum, l2)
    losses = [out for _, out in net.tracer.all_of(net.loss_labels(), "forward")]
    return {"returned": encode(returned), "loss": encode(losses[0] if losses else None),
            "loss_attrs": net.loss_evidence(numbers_only=epoch),
            "losses": [encode(v) for v in losses[1:16]] if len(losses) > 1 and not epoch else None,
            "logits": encode(net.captured_logits()), "order": net.row_order(x), "hyper": reached}


def probe_gradcheck(student, args):
    """Loss and gradients of one step at the grader's weights, the parameters after one
    step at learning rate 1, the student's evaluate, then the loss with single entries
    nudged by ±h (centred differences are computed on the grader's side)."""
    x, y, W1, b1, W2, b2 = arrays_of(args, "x", "y", "W1", "b1", "W2", "b2")
    net = Network(student, x, y, W1.shape[1], int(args.get("seed", 0)))
    net.plant(W1, b1, W2, b2)
    rec = {"where": net.where()}
    rec["base"] = step_record(net, x, y)
    rec["gradients"] = net.gradients()
    rec["dx"] = encode(net.input_gradient())
    rec["structure"] = net.structure()
    net.plant(W1, b1, W2, b2)  # evaluate at the planted weights, whatever the step left behind
    evaluate_record(net, args, rec)
    net.plant(W1, b1, W2, b2)
    _, ok = step(rec, "update_step", lambda: net.step(x, y, lr=1.0))
    rec["update"] = {k: encode(v) for k, v in net.read().items()}
    if ok:  # the gradients a real (lr > 0) step uses: an update may come before dx is computed
        rec["update_gradients"] = net.gradients()
        rec["update_dx"] = encode(net.input_gradient())
        rec["update_order"] = net.row_order(x)
    h = float(args.get("h", 1e-5))
    net.tracer.snapshots = False  # a nudged step is read for its loss only, not its gradients
    nudged = {}
    for name, indices in args["samples"].items():
        nudged[name] = []
        for idx in indices:
            losses = []
            for sign in (1.0, -1.0):
                p = {"W1": W1.copy(), "b1": b1.copy(), "W2": W2.copy(), "b2": b2.copy(), "x": x.copy()}
                p[name][tuple(idx)] += sign * h
                net.plant(p["W1"], p["b1"], p["W2"], p["b2"])  # by path: a grown bias is reset too
                got = step_record(net, p["x"], y)
                losses.append({"loss": got["loss"], "returned": got["returned"],
                               "loss_attrs": got["loss_attrs"]})
            nudged[name].append(losses)
    rec["nudged"] = nudged
    return rec


def evaluate_record(net, args, rec):
    """The student's evaluate on the grader's labelled set, with the logits the network
    produced meanwhile (its accuracy is judged against them)."""
    if "eval_x" not in args:
        return
    ex, ey = arrays_of(args, "eval_x", "eval_y")
    net.tracer.reset()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # an evaluate may print the accuracy instead
        got, ok = step(rec, "evaluate", lambda: net.evaluate(ex, ey))
    rec["evaluate_printed"] = printed.getvalue()[-2000:]
    rec["evaluate_events"] = net.tracer.events[:100]
    if ok:
        returned, how = got
        rec["evaluate"] = {"ok": True, "value": encode(returned)} if how else None
        rec["evaluate_how"] = how
        outs = [o for _, o in net.tracer.all_of(("linear2",), "forward") if isinstance(o, np.ndarray)]
        rec["evaluate_logits"] = encode(np.concatenate([o.reshape(-1, 1) for o in outs]) if outs else None)
        rec["evaluate_order"] = net.row_order(ex)


def probe_update(student, args):
    """Parameters after each training step, for several (lr, momentum, l2) scenarios."""
    x, y, W1, b1, W2, b2 = arrays_of(args, "x", "y", "W1", "b1", "W2", "b2")
    out = {}
    for sc in args["scenarios"]:
        rec = {"steps": []}
        try:
            net = Network(student, x, y, W1.shape[1], int(args.get("seed", 0)))
            net.plant(W1, b1, W2, b2)
            rec["before"] = {k: encode(v) for k, v in net.read().items()}
            rec["driver"], rec["where"] = net.driver.kind, net.where()
            for _ in range(int(sc.get("steps", 1))):
                s = step_record(net, x, y, sc["lr"], sc["momentum"], sc["l2"])
                s["params"] = {k: encode(v) for k, v in net.read().items()}
                s["gradients"] = net.gradients()  # as backward left them, before the update
                rec["steps"].append(s)
            rec["ok"] = True
        except Exception as e:
            rec.update(ok=False, error=describe(e))
        out[sc["name"]] = rec
    return out
