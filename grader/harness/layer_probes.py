"""Layer probes: each layer on the grader's inputs, alone (linear, ReLU, the loss).

`Layer` and `Loss` are adapters: a student's layer called the way the grader needs
(forward(x), backward(grad)) whatever its method names, parameter order, batch layout
(samples in rows, or in columns: x as (features, batch)) and way of handing results back
(returned, or left in an attribute such as self.out or self.dx). The network driver and the
timing probe use the same adapters, so every probe calls a layer the same way.
"""
import re

import numpy as np

from .boundary import ProbeError, describe, encode, step
from .calling import (Choices, Keep, Made, bind, bindings, call, has_method, hyper, meanings, method,
                      seeded_generators, unexplained)
from .hyperattrs import set_hyper_attrs
from .params import arrays, plant_linear, public

OUT_ATTR = re.compile(r"^(out|output|outputs|y|z|a|h|result|res|activation|act|fwd|forward_?out|"
                      r"cache_?out|o|out_?put|value|ret)$", re.I)
DX_ATTR = re.compile(r"^(dx|d_?x|grad_?x|grad_?in(put)?|d_?in(put)?|dinput|delta|delta_?in|"
                     r"grad_?prev|d_?prev|dA_?prev|da_?prev|back|backward_?out|grad|dz|d_?z|dlogits|"
                     r"d_?scores|grad_?(z|logits|scores)|dl_?dz)$", re.I)


# ---------------------------------------------------------------- the linear layer

def left_in_attribute(obj, before, names, n, want=None):
    """A result left in an attribute (self.out, self.dx) instead of returned: (name, array)
    of an array the call set or changed, with one row (or column) per sample, a
    conventional name first; None when there is none."""
    after = arrays(obj, 1)
    changed = [p for p, v in after.items() if p not in before or before[p] is not v
               or not np.array_equal(before[p], v)]
    fits = [p for p in changed if n in after[p].shape[:2] and (want is None or want in after[p].shape)]
    fits.sort(key=lambda p: (not names.match(p.leaf().lstrip("_")), str(p)))
    return (str(fits[0]), after[fits[0]]) if fits else None


def construct(cls, student, role):
    """An instance of a layer class whatever its constructor asks for (most take nothing; a
    loss may want the layers whose L2 term it adds: it gets none)."""
    offered = {"layers": Choices([[], ()]), "seed": 0, "rng": Made(lambda: np.random.default_rng(0)),
               "quiet": Keep(False), **hyper()}
    return call(cls, offered, (), student.args(role))


def takes_weights(layer, student):
    """Whether the layer's forward is handed W (and b) rather than holding them."""
    try:
        fwd = method(layer, student.methods("linear", "forward"))
        return "W" in meanings(fwd, {"x": None, "W": None, "b": None}, ("x",), student.args("linear")).values()
    except ProbeError:
        return False


def construct_linear(student, W, b, transposed=False, bias_row="last"):
    """Build the student's linear layer whatever its constructor takes ((W, b), (in, out),
    nothing, or more) and plant W and b into it. With `transposed`, a constructor that
    takes arrays gets W as (out, in); one that takes W and no b gets b as an extra row of
    W (`bias_row`: a constant input column)."""
    cls = student.cls("linear")
    n_in, n_out = W.shape
    Wgiven = W.T if transposed else W
    try:
        wanted = set(meanings(cls, {"W": 1, "b": 1}, (), student.args("linear")).values())
    except ProbeError:
        wanted = set()
    if "W" in wanted and "b" not in wanted:  # LinearTransform(W) with the bias folded into W
        full = np.vstack([W, b.reshape(1, -1)] if bias_row == "last" else [b.reshape(1, -1), W])
        Wgiven = full.T if transposed else full
    offered = {"W": Wgiven, "b": b, "d_in": n_in, "d_out": n_out, "seed": 0,
               "rng": seeded_generators(0),
               "quiet": Keep(False), **hyper()}
    errors, seen = [], set()
    for order in (("d_in", "d_out"), ("W", "b")):
        try:
            options = bindings(cls, offered, order, student.args("linear"), limit=2)
        except ProbeError as e:
            errors.append(str(e))
            continue
        for how in options:
            key = tuple(sorted(how.meanings.items()))
            if key in seen:
                continue
            seen.add(key)
            try:
                layer = how()
                if takes_weights(layer, student):  # forward(x, W, b): nothing to plant
                    return layer, how, {"W": "argument", "layout": "in_out", "b": "argument",
                                        "b_shape": [n_out], "_paths": (None, None)}
                return layer, how, plant_linear(layer, W, b, bias_row)
            except ProbeError as e:
                errors.append(str(e))
            except Exception as e:  # a constructor convention that does not fit: try the next
                errors.append(f"{cls.__name__}({', '.join(how.meanings.values())}) raised "
                              f"{type(e).__name__}: {e}")
    raise ProbeError("could not build the linear layer: " + "; ".join(dict.fromkeys(errors)))


class Layer:
    """A student's layer (linear or ReLU) called as forward(x) -> out, backward(g) -> raw."""

    def __init__(self, obj, student, role, params=None):
        self.obj, self.student, self.role = obj, student, role
        self.params = params or {}   # W and b for a layer whose methods take them as arguments
        self.cols = False            # samples in columns: x is (features, batch)
        self.read_from = {}          # forward/backward -> attribute its result was read from
        self.x = self.out = self.cache = None

    def fwd_method(self):
        return method(self.obj, self.student.methods(self.role, "forward"), "forward method")

    def bwd_method(self):
        return method(self.obj, self.student.methods(self.role, "backward"), "backward method")

    def forward_binding(self, x):
        offered = {"x": x.T if self.cols else x, **self.params}
        return bind(self.fwd_method(), offered, ("x",), self.student.args(self.role))

    def forward(self, x):
        """The layer's output for rows x, as rows; detects a column layout on first use."""
        try:
            out = self._forward(x)
        except (ValueError, ProbeError) as first:  # a shape error: maybe samples in columns
            if self.cols or x.ndim != 2:
                raise
            self.cols = True  # retry once with x transposed
            try:
                out = self._forward(x)
            except Exception:
                self.cols = False
                raise first from None  # report the call as the student's code sees it
        self.x, self.out = x, out
        return out

    def _forward(self, x):
        before = arrays(self.obj, 1)
        out = self.forward_binding(x)()
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], np.ndarray):
            out, self.cache = out  # cs231n style: (out, cache), the cache handed to backward
        if out is None or isinstance(out, type(self.obj)):  # kept in an attribute, or `return self`
            out = self.from_attribute("forward", before, OUT_ATTR, x.shape[0])
        if isinstance(out, np.ndarray) and self.cols:
            out = out.T
        if isinstance(out, np.ndarray) and out.ndim == 2 and out.shape[0] != x.shape[0] and not self.cols:
            raise ProbeError(f"forward returned shape {out.shape} for {x.shape[0]} samples")
        return out

    def backward_binding(self, g, x=None, lr=0.0, momentum=0.0, l2=0.0):
        x = self.x if x is None else x
        t = (lambda a: a.T) if self.cols else (lambda a: a)
        offered = {"grad": t(g), "x": t(x) if x is not None else None, **self.params,
                   **hyper(lr, momentum, l2)}
        if self.out is not None and self.role == "relu":
            offered["logits"] = t(self.out)  # ReLU.backward(activation, grad): its output
        if self.cache is not None:
            offered["cache"] = self.cache
        offered = {k: v for k, v in offered.items() if v is not None}
        return bind(self.bwd_method(), offered, ("grad", "x"), self.student.args(self.role))

    def backward(self, g, x=None, lr=0.0, momentum=0.0, l2=0.0):
        """What backward returned (dx, a tuple, a dict), as rows; dx read from an attribute
        when it returned nothing."""
        before = arrays(self.obj, 1)
        got = self.backward_binding(g, x, lr, momentum, l2)()
        if got is None or isinstance(got, type(self.obj)):
            got = self.from_attribute("backward", before, DX_ATTR, g.shape[0], want=self.in_dim(g))
        return self.rows(got)

    def in_dim(self, g):
        return self.x.shape[1] if self.x is not None else None

    def rows(self, got):
        if not self.cols:
            return got
        if isinstance(got, np.ndarray):
            return got.T if got.ndim == 2 else got
        if isinstance(got, tuple):
            return tuple(self.rows(v) for v in got)
        return got

    def from_attribute(self, which, before, names, n, want=None):
        found = left_in_attribute(self.obj, before, names, n, want)
        if found is None:
            return None
        self.read_from[which] = found[0]
        return found[1]

    def update_method(self):
        return next((getattr(self.obj, m) for m in self.student.methods(self.role, "update")
                     if callable(getattr(self.obj, m, None))), None)

    def update(self, lr, momentum, l2):
        upd = self.update_method()
        if upd is not None:
            call(upd, {**hyper(lr, momentum, l2), "quiet": Keep(False)}, ("lr", "momentum", "l2"),
                 self.student.args(self.role))
        return upd


def linear_layer(student, W, b, transposed=False, bias_row="last"):
    """(Layer, where its parameters live, how it was built) for the grader's W and b."""
    layer, how, where = construct_linear(student, W, b, transposed, bias_row)
    adapter = Layer(layer, student, "linear")
    if takes_weights(layer, student):  # forward(x, W, b): the weights go in as arguments
        adapter.params = {"W": W.copy(), "b": b.copy()}
    return adapter, where, ", ".join(how.meanings.values())


# how the grader's W and b may have to be handed over: as they are, transposed (a layer
# built from arrays cannot say its layout), or with the bias folded in as W's first row
LINEAR_VARIANTS = ((False, "last"), (True, "last"), (False, "first"))


def probe_linear(student, args):
    x, W, b, g = (np.array(args[k], dtype=float) for k in ("x", "W", "b", "grad"))
    first = None
    for transposed, bias_row in LINEAR_VARIANTS:
        rec = {}
        layer, where, how = linear_layer(student, W, b, transposed, bias_row)
        rec["construct"] = {"how": how, **public(where)}
        out, ok = step(rec, "forward", lambda: layer.forward(x.copy()))
        first = first or rec
        retry = "W" in how or where.get("folded")  # our arrays may be wanted another way
        if not ok and retry or ok and where.get("folded") and not reproduces(out, x @ W + b):
            continue
        break
    if not ok:
        return first
    rec["construct"].update(batch_axis=1 if layer.cols else 0, read_from=layer.read_from)
    step(rec, "backward", lambda: layer.backward(g.copy(), x.copy()))
    rec["read_from"] = layer.read_from
    rec["attrs"] = {str(k): encode(v) for k, v in arrays(layer.obj).items() if v.size <= 10_000}
    rec["update"] = update_step(student, W, b, x, g, lr=float(args.get("lr", 1.0)),
                                transposed=transposed, bias_row=bias_row)
    return rec


def reproduces(out, expected):
    """Adapter decision only (which row of a folded W is the bias), never a verdict."""
    return isinstance(out, np.ndarray) and out.shape == expected.shape and np.allclose(out, expected)


def update_step(student, W, b, x, g, lr, momentum=0.0, l2=0.0, steps=1, transposed=False,
                bias_row="last"):
    """Parameters after `steps` forward/backward/update rounds with known hyper-parameters,
    and what backward returned in the first round (computed before or after the update?)."""
    rec = {"lr": lr, "momentum": momentum, "l2": l2}
    try:
        layer, where, _ = linear_layer(student, W, b, transposed, bias_row)
        w_path, b_path = where["_paths"]
        # Linear(n_in, n_out, lr, ...) keeps them; or its class, or the module, as globals
        set_hyper_attrs(layer.obj, lr, momentum, l2, [type(layer.obj), *student.modules()])
        upd = layer.update_method()
        rec["via"] = upd.__name__ if upd else "backward"
        for i in range(steps):
            layer.forward(x.copy())
            returned = layer.backward(g.copy(), x.copy(), lr, momentum, l2)
            if i == 0:
                rec["returned"] = encode(returned)
            layer.update(lr, momentum, l2)
        rec["W"] = encode(w_path.get(layer.obj) if w_path else layer.params["W"])
        rec["b"] = encode(b_path.get(layer.obj) if b_path else layer.params.get("b"))
        rec["ok"] = True
    except Exception as e:
        rec.update(ok=False, error=describe(e))
    return rec


def probe_relu(student, args):
    x, g = np.array(args["x"], dtype=float), np.array(args["grad"], dtype=float)
    rec = {}
    layer = Layer(construct(student.cls("relu"), student, "relu"), student, "relu")
    _, ok = step(rec, "forward", lambda: layer.forward(x.copy()))
    if ok:
        step(rec, "backward", lambda: layer.backward(g.copy(), x.copy()))
    rec["read_from"] = layer.read_from
    return rec


# ---------------------------------------------------------------- sigmoid + cross-entropy

class Loss:
    """The student's loss, one class or Sigmoid + CrossEntropy, called as the grader needs.

    forward(z, y) returns what the loss layer returned; `evidence()` adds what it keeps in
    attributes (a loss stored in self.loss while forward returns the probabilities), so
    the grader can find the loss value whatever form it takes."""

    def __init__(self, student, ce=None, sig=None, split=None):
        """Fresh instances of the student's loss classes, or the ones a network holds (`ce`,
        `sig`); split=False treats a split loss's CrossEntropy alone (fed probabilities)."""
        self.student = student
        sig_cls, ce_cls = student.loss_classes()
        if split is False:
            sig_cls = None
        self.sig = sig if sig is not None else (construct(sig_cls, student, "loss") if sig_cls else None)
        self.ce = ce if ce is not None else construct(ce_cls, student, "loss")
        self.on_probabilities = split is False and student.loss_classes()[0] is not None
        self.z = self.y = self.s = self.fused = None

    def fwd(self, obj, role_job="loss_forward"):
        return method(obj, self.student.methods("loss", role_job), "forward method")

    def bwd(self, obj):
        return method(obj, self.student.methods("loss", "loss_backward"), "backward method")

    def sigmoid_binding(self, z):
        return bind(method(self.sig, self.student.methods("loss", "forward"), "forward method"),
                    {"logits": z, "x": z}, ("logits",), self.student.args("loss"))

    def forward_binding(self, z, y, s=None):
        if self.sig is not None or self.on_probabilities:
            offered = {"y": y, "prob": s, "logits": s, "x": s}
        else:
            offered = {"y": y, "logits": z, "x": z, "prob": z}
        return bind(self.fwd(self.ce), offered, ("logits", "y") if self.sig is None else ("prob", "y"),
                    self.student.args("loss"))

    def forward(self, z, y):
        self.z, self.y = z, y
        if self.sig is not None:
            self.s = self.sigmoid_binding(z.copy())()
        elif self.on_probabilities:
            self.s = z
        value = self.forward_binding(z.copy(), y.copy(), self.s)()
        self.fused = fused_gradient(value, z)
        return value

    def backward_binding(self, upstream=None):
        z, y = self.z, self.y
        ones = np.ones_like(z) if upstream is None else upstream
        if self.sig is not None or self.on_probabilities:
            offered = {"y": y, "grad": 1.0 if upstream is None else upstream, "prob": self.s,
                       "logits": self.s, "x": self.s}
        else:
            offered = {"y": y, "grad": ones, "logits": z, "x": z, "prob": z}
        if self.fused is not None and not has_method(self.ce, self.student.methods("loss", "loss_backward")):
            return Given(self.fused)  # its forward returned (loss, dz): there is no backward
        fn = self.bwd(self.ce)
        offered.update(quiet=Keep(False), **hyper())
        # one parameter whose name says nothing is most likely the labels (backward(t))
        order = ("y",) if unexplained(fn, offered, self.student.args("loss")) == 1 else ("grad", "y")
        return bind(fn, offered, order, self.student.args("loss"))

    def sigmoid_backward_binding(self, dce):
        fn = self.bwd(self.sig)
        return bind(fn, {"grad": dce, "logits": self.z, "x": self.z, "prob": self.s, **hyper()},
                    ("grad",), self.student.args("loss"))

    def backward(self, upstream=None):
        """dL/dz: through CrossEntropy.backward then Sigmoid.backward when split (read from
        an attribute such as self.dz when backward returns nothing)."""
        before = arrays(self.ce, 1)
        d = self.backward_binding(upstream)()
        if d is None:
            kept = left_in_attribute(self.ce, before, DX_ATTR, len(self.z))
            d = kept[1] if kept else None
        if self.sig is not None:  # (fed probabilities, the network's own sigmoid comes next)
            d = d[0] if isinstance(d, tuple) else d
            d = self.sigmoid_backward_binding(d)()
        return d

    def evidence(self):
        return kept_by(self.ce)


class Given:
    """A bound call that hands back what the student's code already returned (the gradient
    a fused loss's forward returned with the loss)."""
    fn = None

    def __init__(self, value):
        self.value = value

    def __call__(self):
        return self.value


def fused_gradient(value, z):
    """dz from a forward that returns (loss, dz), else None."""
    if isinstance(value, tuple) and isinstance(z, np.ndarray):
        return next((v for v in value if isinstance(v, np.ndarray) and v.size == z.size and v.size > 1), None)
    return None


def kept_by(obj, numbers_only=False):
    """Scalars and small arrays a loss object keeps (self.loss, self.p), as data; with
    `numbers_only`, the scalars alone (a training epoch's record keeps no more)."""
    out = {}
    try:
        items = list(vars(obj).items())[:64]
    except TypeError:
        return out
    for name, v in items:
        if isinstance(v, (float, int, np.floating)) and not isinstance(v, bool):
            out[name] = float(v)
        elif not numbers_only and isinstance(v, np.ndarray) and v.size <= 4096:
            out[name] = encode(v)
    return out


def loss_pass(loss, z, y, rec):
    """Forward and backward through the student's loss, each call recorded as a step of
    `rec`. Returns the bound calls of both passes, {"forward": [...], "backward": [...]},
    to replay them (timing), or None when a step failed."""
    calls = {"forward": [], "backward": []}

    def run(name, binding, kind):
        b = binding()
        calls[kind].append(b)
        owner = getattr(b.fn, "__self__", None)
        before = arrays(owner, 1) if owner is not None else {}
        value = b()
        if kind == "forward" and name == "forward":
            loss.fused = fused_gradient(value, z)
        if value is None and kind == "backward" and owner is not None:  # kept as self.dz?
            kept = left_in_attribute(owner, before, DX_ATTR, len(z))
            if kept is not None:
                rec.setdefault("read_from", {})[name] = kept[0]
                return kept[1]
        return value

    if loss.sig is not None:
        rec["split"] = True
        loss.z, loss.y = z, y
        s, ok = step(rec, "sigmoid", lambda: run("sigmoid", lambda: loss.sigmoid_binding(z.copy()), "forward"))
        if not ok:
            return None
        loss.s = s
        _, fwd_ok = step(rec, "forward", lambda: run("forward", lambda: loss.forward_binding(z, y.copy(), s), "forward"))
        rec["forward_attrs"] = loss.evidence()
        dce, ok = step(rec, "ce_backward", lambda: run("ce", lambda: loss.backward_binding(), "backward"))
        if not ok:
            return None
        dce = dce[0] if isinstance(dce, tuple) else dce
        _, ok = step(rec, "backward", lambda: run("sig", lambda: loss.sigmoid_backward_binding(dce), "backward"))
        return calls if ok and fwd_ok else None
    loss.z, loss.y = z, y
    _, ok = step(rec, "forward", lambda: run("forward", lambda: loss.forward_binding(z, y), "forward"))
    rec["forward_attrs"] = loss.evidence()
    if not ok:
        return None
    _, ok = step(rec, "backward", lambda: run("backward", lambda: loss.backward_binding(), "backward"))
    return calls if ok else None


def probe_loss(student, args):
    z, y = np.array(args["z"], dtype=float), np.array(args["y"], dtype=float)
    rec = {}
    loss_pass(Loss(student), z, y, rec)
    return rec


def per_sample_attrs(obj, n):
    """The arrays a loss object holds with one entry per sample (self.p, self.s, ...)."""
    return {str(k): encode(v) for k, v in arrays(obj, 1).items() if v.size == n and v.shape[:1] == (n,)}


def probe_loss_sanity(student, args):
    """The loss on a few random batches of moderate logits, then at logits of +-1e3 and
    +-1e4: each pass on a fresh instance, with the per-sample arrays it keeps afterwards
    (for one class, where its sigmoid is only visible as an attribute)."""
    def one_pass(z, y):
        rec = {}
        loss = Loss(student)
        loss_pass(loss, z, y, rec)
        if loss.sig is None:
            rec["attrs"] = per_sample_attrs(loss.ce, len(z))
        return rec

    zs, ys = np.array(args["z_draws"], dtype=float), np.array(args["y_draws"], dtype=float)
    draws = [one_pass(z, y) for z, y in zip(zs, ys)]
    extreme = one_pass(np.array(args["z_extreme"], dtype=float), np.array(args["y_extreme"], dtype=float))
    return {"draws": draws, "extreme": extreme}


LOSS_ATTR = re.compile(r"^(loss|cost|l|j|value|total|total_?loss|loss_?value|ce|bce|err|error|out|output)$", re.I)


def scalar_loss(value, evidence=None):
    """A loss call's scalar, for the harness's own adapter decisions and budget rules
    (never for judging): the number returned, the scalar element of a returned tuple, or
    a loss-named number the object kept when it returned none. None for per-sample losses."""
    if isinstance(value, tuple):
        value = next((v for v in value if np.ndim(v) == 0 and isinstance(v, (int, float, np.number))
                      or isinstance(v, np.ndarray) and v.size == 1), None)
    if value is None and evidence:
        kept = {k: v for k, v in evidence.items() if isinstance(v, float)}
        value = next((v for k, v in kept.items() if LOSS_ATTR.match(k)), None)
    if isinstance(value, (int, float, np.number)) or isinstance(value, np.ndarray) and value.size == 1:
        return float(np.asarray(value).ravel()[0])
    return None


def loss_number(value, evidence=None):
    """The loss as one number for the harness's budget rules: the scalar, else the sum of
    per-sample losses, else infinity."""
    kind = type(value)
    if kind is float or kind is np.float64:  # the usual case, at every training step
        return float(value)
    v = scalar_loss(value, evidence)
    if v is not None:
        return v
    try:
        return float(np.sum(np.asarray(value, dtype=float)))
    except (TypeError, ValueError):
        return float("inf")


__all__ = ["Layer", "Loss", "Choices", "construct_linear", "linear_layer", "loss_pass"]
