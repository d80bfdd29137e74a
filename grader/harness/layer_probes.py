"""Layer probes: each layer on the grader's inputs, alone (linear, ReLU, the loss)."""
import numpy as np

from .boundary import bound_step, describe, encode, step
from .calling import (L2_NAMES, LR_NAMES, MOMENTUM_NAMES, UPDATE_METHODS, X_NAMES, arr, call_with,
                      first_arg_bind, first_arg_call, hyper_kwargs, loss_bind, loss_call, method,
                      resolve, role_class)
from .params import array_attrs, construct_linear, get_attr


def probe_linear(roles, args):
    cls = role_class(roles, "linear")
    x, W, b, g = arr(args["x"]), arr(args["W"]), arr(args["b"]), arr(args["grad"])
    for transposed in (False, True):
        rec = {}
        layer, how, where = construct_linear(cls, W, b, transposed)
        rec["construct"] = {"how": how, **where}
        fwd = method(layer, "forward", "__call__", "fprop")
        out, ok = step(rec, "forward", lambda: first_arg_call(fwd, x.copy()))
        if ok or how != "(W, b)":
            break
    if not ok:
        return rec
    bwd = method(layer, "backward", "bprop", "backprop")
    step(rec, "backward", lambda: first_arg_call(bwd, g.copy(), [(X_NAMES, x.copy())], hyper_kwargs(bwd)))
    rec["attrs"] = {k: encode(v) for k, v in array_attrs(layer).items() if v.size <= 10_000}
    rec["update"] = update_step(cls, W, b, x, g, lr=args.get("lr", 1.0), transposed=transposed)
    return rec


def update_step(cls, W, b, x, g, lr, momentum=0.0, l2=0.0, steps=1, transposed=False):
    """Parameters after `steps` forward/backward/update rounds with known hyper-parameters."""
    rec = {"lr": lr, "momentum": momentum, "l2": l2}
    try:
        layer, _, where = construct_linear(cls, W, b, transposed)
        fwd = method(layer, "forward", "__call__", "fprop")
        bwd = method(layer, "backward", "bprop", "backprop")
        upd = next((getattr(layer, m) for m in UPDATE_METHODS if callable(getattr(layer, m, None))), None)
        rec["via"] = upd.__name__ if upd else "backward"
        hyper = dict(lr=lr, momentum=momentum, l2=l2)
        for _ in range(steps):
            first_arg_call(fwd, x.copy())
            first_arg_call(bwd, g.copy(), [(X_NAMES, x.copy())], hyper_kwargs(bwd, **hyper))
            if upd is not None:
                call_with(upd, [(LR_NAMES, lr), (MOMENTUM_NAMES, momentum), (L2_NAMES, l2)])
        rec["W"] = encode(get_attr(layer, where["W"]))
        rec["b"] = encode(get_attr(layer, where["b"])) if where["b"] else None
        rec["ok"] = True
    except Exception as e:
        rec.update(ok=False, error=describe(e))
    return rec


def probe_relu(roles, args):
    cls = role_class(roles, "relu")
    x, g = arr(args["x"]), arr(args["grad"])
    rec = {}
    layer = cls()
    out, ok = step(rec, "forward", lambda: first_arg_call(method(layer, "forward", "__call__"), x.copy()))
    if ok:
        bwd = method(layer, "backward", "bprop", "backprop")
        step(rec, "backward", lambda: first_arg_call(bwd, g.copy(), [(X_NAMES, x.copy())], hyper_kwargs(bwd)))
    return rec


def loss_objects(roles):
    """(sigmoid, loss) instances of the student's loss; sigmoid is None for one class."""
    name = roles.get("loss")
    if isinstance(name, list):  # Sigmoid and CrossEntropy as two classes
        return resolve(name[0])(), resolve(name[1])()
    return None, role_class(roles, "loss")()


def student_loss(sig, ce, z, y):
    """The loss the student's classes compute for logits z: through the Sigmoid first when
    the loss is split in two classes."""
    if sig is not None:
        s_ = first_arg_call(method(sig, "forward", "__call__"), z)
        return loss_call(method(ce, "forward", "__call__"), s_, y)
    return loss_call(method(ce, "forward", "__call__", "loss"), z, y)


def loss_pass(sig, ce, z, y, rec):
    """Forward and backward through the student's loss with its own calling conventions,
    each call recorded as a step of `rec`. Returns the bound calls of both passes,
    {"forward": [...], "backward": [...]}, or None when a step failed."""
    if sig is not None:
        rec["split"] = True
        sfwd = lambda: method(sig, "forward", "__call__")  # noqa: E731 (inside the step)
        s, ok, sig_call = bound_step(rec, "sigmoid", lambda: (sfwd(), *first_arg_bind(sfwd(), z.copy())))
        if not ok:
            return None
        cfwd = lambda: method(ce, "forward", "__call__")  # noqa: E731
        _, fwd_ok, ce_call = bound_step(rec, "forward", lambda: (cfwd(), *loss_bind(cfwd(), s, y)))
        ce_bwd = method(ce, "backward", "bprop")
        dce, ok, ce_back = bound_step(rec, "ce_backward", lambda: (ce_bwd, *loss_bind(ce_bwd, s, y, upstream=1.0)))
        if not ok:
            return None
        sbwd = method(sig, "backward", "bprop")
        _, ok, sig_back = bound_step(rec, "backward", lambda: (
            sbwd, *first_arg_bind(sbwd, dce, [(X_NAMES, z)], hyper_kwargs(sbwd))))
        return {"forward": [sig_call, ce_call], "backward": [ce_back, sig_back]} if ok and fwd_ok else None
    ones = np.ones_like(z)
    fwd = lambda: method(ce, "forward", "__call__", "loss")  # noqa: E731
    _, ok, fwd_call = bound_step(rec, "forward", lambda: (fwd(), *loss_bind(fwd(), z, y)))
    if not ok:
        return None
    bwd = method(ce, "backward", "bprop", "backprop", "gradient")
    _, ok, bwd_call = bound_step(rec, "backward", lambda: (bwd, *loss_bind(bwd, z, y, upstream=ones)))
    return {"forward": [fwd_call], "backward": [bwd_call]} if ok else None


def probe_loss(roles, args):
    z, y = arr(args["z"]), arr(args["y"])
    rec = {}
    loss_pass(*loss_objects(roles), z, y, rec)
    return rec


# ---- probes: loss sanity and timing

def per_sample_attrs(obj, n):
    """The arrays a loss object holds with one entry per sample (self.p, self.s, ...)."""
    return {k: encode(v) for k, v in array_attrs(obj).items() if v.size == n and v.shape[:1] == (n,)}


def probe_loss_sanity(roles, args):
    """The loss on a few random batches of moderate logits, then at logits of +-1e3 and
    +-1e4: each pass on a fresh instance, with the per-sample arrays it keeps afterwards
    (for one class, where its sigmoid is only visible as an attribute)."""
    def one_pass(z, y):
        rec = {}
        sig, ce = loss_objects(roles)
        loss_pass(sig, ce, z, y, rec)
        if sig is None:
            rec["attrs"] = per_sample_attrs(ce, len(z))
        return rec

    draws = [one_pass(z, y) for z, y in zip(arr(args["z_draws"]), arr(args["y_draws"]))]
    return {"draws": draws, "extreme": one_pass(arr(args["z_extreme"]), arr(args["y_extreme"]))}
