"""The student's network: built, traced, its parameters planted, driven one step at a time."""
import functools
import re

import numpy as np

from .boundary import ProbeError, describe, encode, step
from .calling import (L2_NAMES, LR_NAMES, MOMENTUM_NAMES, UPDATE_METHODS, all_params, arr,
                      bind_with, call_with, first_arg_call, hyper_kwargs, loss_call, method, resolve,
                      role_class)
from .layer_probes import loss_objects, student_loss
from .params import array_attrs, construct_linear, get_attr, plant_linear


# ---------------------------------------------------------------- the student's MLP

TRAIN_X = re.compile(r"^(x|xs|x_?batch|x_?train|batch_?x|inputs?|data|features|train_?x|images|samples)$", re.I)


TRAIN_Y = re.compile(r"^(y|ys|y_?batch|y_?train|batch_?y|labels?|targets?|train_?y|t|y_?true)$", re.I)


EPOCH_NAMES = re.compile(r"^(epochs?|n_?epochs|num_?epochs|iters?|iterations|n_?iter|steps)$", re.I)


BATCH_NAMES = re.compile(r"^(batch_?size|bs|mini_?batch(_?size)?|num_?batches|n_?batches)$", re.I)


HIDDEN_NAMES = re.compile(r"^(hidden|hidden_?(units|dims?|size|neurons|layer_?size)|n_?hidden|num_?hidden|h|n_?h|units|width|neurons)$", re.I)


IN_NAMES = re.compile(r"^(in|inputs?|n_?in|d_?in|dim_?in|in_?dims?|input_?(dims?|size|units|features|shape|dim)|n_?features|num_?features|n_?inputs?|num_?inputs?|d|dims?|n_?x|fan_?in|in_?features|in_?size)$", re.I)


OUT_NAMES = re.compile(r"^(out|outputs?|output_?(dims?|size|units)|n_?out|num_?out|n_?classes|num_?classes|out_?dims?|out_?features|n_?outputs?|num_?outputs?)$", re.I)


SEED_NAMES = re.compile(r"seed|random_?state|rng", re.I)


TRAIN_METHODS = ("train", "train_step", "train_batch", "fit", "step")


EVAL_METHODS = ("evaluate", "eval", "test", "score", "accuracy")


class Tracer:
    """Wraps the role classes' methods to record who calls what, and what comes back.

    Wrapping the classes (not instances) also sees layers an MLP builds inside train and
    layers held inside other layers. `depth` counts enclosing role-method calls: a layer
    method running inside another layer's method is a separation problem.
    """

    def __init__(self):
        self.events, self.stack, self.labels = [], [], {}
        self.captured = {}  # (label, method) -> {"args": first array arg, "out": return}
        self.calls = []     # every (label, method, first array arg, return), in call order

    def label(self, obj):
        return self.labels.get(id(obj), type(obj).__name__)

    def wrap_class(self, cls, methods):
        for name in methods:
            original = cls.__dict__.get(name) or getattr(cls, name, None)
            original = getattr(original, "_nn_original", original)  # re-wrap for this tracer
            if callable(original):
                setattr(cls, name, self._wrapped(original, name))

    def _wrapped(self, fn, name):
        tracer = self
        mname = "forward" if name == "__call__" else name  # layer(x) is its forward pass

        @functools.wraps(fn)  # keeps the signature visible, so calls can still be fitted to it
        def traced(obj, *args, **kwargs):
            label = tracer.label(obj)
            parent = tracer.stack[-1] if tracer.stack else None
            tracer.events.append([label, mname, len(tracer.stack), parent])
            tracer.stack.append(f"{label}.{mname}")
            try:
                out = fn(obj, *args, **kwargs)
            finally:
                tracer.stack.pop()
            if parent and parent.split(".")[0] == label:
                return out  # a layer delegating to itself (__call__ -> forward): seen once
            first = next((a for a in args if isinstance(a, np.ndarray)), None)
            first = None if first is None else first.copy()
            tracer.captured.setdefault((label, mname), {"args": first, "out": out})
            tracer.calls.append((label, mname, first, out))
            return out

        traced._nn_original = fn
        return traced

    def reset(self):
        self.events, self.captured, self.calls = [], {}, []

    def all_of(self, labels, mname):
        return [(a, out) for label, m, a, out in self.calls if m == mname and label in labels]


def role_classes(roles):
    out = {}
    for role in ("linear", "relu", "loss"):
        ref = roles.get(role)
        if isinstance(ref, list):
            out["sigmoid"], out["crossentropy"] = resolve(ref[0]), resolve(ref[1])
        elif ref:
            out[role] = resolve(ref)
    return out


class GraderDriver:
    """Drives the student's layers when there is no MLP class: forward through linear, ReLU,
    linear, loss; backward in reverse; each layer updates itself (backward's learning-rate
    arguments or its update method). The report says the grader, not an MLP, drove them."""

    def __init__(self, roles, d_in, hidden):
        classes = role_classes(roles)
        r = np.random.RandomState(0)
        self.layer1, _, _ = construct_linear(classes["linear"], r.randn(d_in, hidden) * 0.1, np.zeros(hidden))
        self.act = classes["relu"]()
        self.layer2, _, _ = construct_linear(classes["linear"], r.randn(hidden, 1) * 0.1, np.zeros(1))
        self.sigmoid, self.loss = loss_objects(roles)

    def forward(self, x, y):
        h = first_arg_call(method(self.layer1, "forward", "__call__"), x)
        a = first_arg_call(method(self.act, "forward", "__call__"), h)
        z = first_arg_call(method(self.layer2, "forward", "__call__"), a)
        return z, student_loss(self.sigmoid, self.loss, z, y)

    def train(self, x, y, learning_rate, momentum, l2_penalty):
        _, loss = self.forward(x, y)
        hyper = dict(lr=learning_rate, momentum=momentum, l2=l2_penalty)
        g = loss_call(method(self.loss, "backward", "bprop"), None, y, upstream=np.ones((len(x), 1)))
        if self.sigmoid is not None:
            g = first_arg_call(method(self.sigmoid, "backward", "bprop"), g)
        for layer in (self.layer2, self.act, self.layer1):
            bwd = method(layer, "backward", "bprop", "backprop")
            g = first_arg_call(bwd, g, (), hyper_kwargs(bwd, **hyper))
            g = g[0] if isinstance(g, tuple) else g
            upd = next((getattr(layer, m) for m in UPDATE_METHODS if callable(getattr(layer, m, None))), None)
            if upd is not None:
                call_with(upd, [(LR_NAMES, learning_rate), (MOMENTUM_NAMES, momentum), (L2_NAMES, l2_penalty)])
        return loss

    def evaluate(self, x, y):
        z, loss = self.forward(x, y)
        return loss, float(np.mean((z > 0) == (y > 0.5)))


def build_mlp(roles, d_in, hidden, seed):
    """The student's MLP built with (input dims, hidden units) found by parameter name."""
    if not roles.get("mlp"):
        np.random.seed(seed)
        return GraderDriver(roles, d_in, hidden)
    cls = role_class(roles, "mlp")
    np.random.seed(seed)
    named = [(HIDDEN_NAMES, hidden), (IN_NAMES, d_in), (OUT_NAMES, 1), (SEED_NAMES, seed),
             (LR_NAMES, 0.0), (MOMENTUM_NAMES, 0.0), (L2_NAMES, 0.0)]
    # unknown names fall back to the template's order: (input dims, hidden units, outputs)
    return call_with(cls, named, order=(d_in, hidden, 1))


def held_layers(obj, classes):
    """Instances of role classes reachable from obj's attributes (lists/dicts one level)."""
    found = []
    for name, value in list(vars(obj).items()):
        items = [(name, value)]
        if isinstance(value, (list, tuple)):
            items = [(f"{name}[{i}]", v) for i, v in enumerate(value[:32])]
        elif isinstance(value, dict):
            items = [(f"{name}[{k!r}]", v) for k, v in list(value.items())[:32]]
        for path, v in items:
            for role, cls in classes.items():
                if isinstance(v, cls):
                    found.append((path, role, v))
    return found


def map_network(mlp, classes, tracer, d_in, hidden):
    """Label the MLP's layers (linear1, linear2, relu, loss...) and find the two linear
    layers by the shapes of their weights."""
    layers = held_layers(mlp, classes)
    linears = [v for _, role, v in layers if role == "linear"]
    order = {}
    for lin in linears:
        shapes = {v.shape for v in array_attrs(lin).values()}
        if shapes & {(d_in, hidden), (hidden, d_in)}:
            order.setdefault(1, lin)
        elif shapes & {(hidden, 1), (1, hidden)}:
            order.setdefault(2, lin)
    for k, lin in order.items():
        tracer.labels[id(lin)] = f"linear{k}"
    for path, role, v in layers:
        if role != "linear":
            tracer.labels.setdefault(id(v), role)
    return order, [(path, tracer.label(v)) for path, _, v in layers]


def hyper_attrs(obj, lr, momentum, l2, depth=0):
    """Set hyper-parameters the student keeps (self.lr, self.solver.momentum,
    self.config['lr']); returns which of lr, momentum, l2 it found a place for."""
    found = set()
    rules = (("lr", LR_NAMES, lr), ("momentum", MOMENTUM_NAMES, momentum), ("l2", L2_NAMES, l2))
    for name, value in list(vars(obj).items()):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            for key, rx, v in rules:
                if rx.match(name):
                    setattr(obj, name, float(v) if isinstance(value, float) else v)
                    found.add(key)
        elif isinstance(value, dict):
            for k, item in list(value.items()):
                for key, rx, v in rules:
                    if isinstance(k, str) and isinstance(item, (int, float)) and rx.match(k):
                        value[k] = v
                        found.add(key)
        elif depth == 0 and hasattr(value, "__dict__") and not isinstance(value, (type, np.ndarray)) and not callable(value):
            found |= hyper_attrs(value, lr, momentum, l2, depth + 1)
    return found


def train_once(mlp, x, y, lr, momentum, l2):
    """One call of the student's train; returns (its return, which hyper-parameters the
    call could set: by argument, or as attributes / config entries the student reads)."""
    train = method(mlp, *TRAIN_METHODS)
    reached = hyper_attrs(mlp, lr, momentum, l2)
    named = [(TRAIN_X, x.copy()), (TRAIN_Y, y.copy()), (EPOCH_NAMES, 1), (BATCH_NAMES, len(x))]
    hyper = hyper_kwargs(train, lr, momentum, l2)
    args, kwargs = bind_with(train, named, hyper, order=(x.copy(), y.copy(), lr, momentum, l2))
    given = {p.name for p in all_params(train)[: len(args)]} | set(kwargs)
    for i, p in enumerate(all_params(train)[: len(args)]):
        if not any(rx.match(p.name) for rx, _ in named) and p.name not in hyper and 2 <= i <= 4:
            reached.add(("lr", "momentum", "l2")[i - 2])  # filled by the template's order
    reached |= {k for k, rx in (("lr", LR_NAMES), ("momentum", MOMENTUM_NAMES), ("l2", L2_NAMES))
                if any(rx.match(n) for n in given)}
    return train(*args, **kwargs), sorted(reached)


class Network:
    """The student's MLP with the grader's weights planted, traced, and driven by train()."""

    def __init__(self, roles, d_in, hidden, seed=0):
        self.classes = role_classes(roles)
        self.tracer = Tracer()
        for cls in self.classes.values():
            self.tracer.wrap_class(cls, ("forward", "backward", "__call__") + UPDATE_METHODS)
        self.mlp = build_mlp(roles, d_in, hidden, seed)
        self.order, self.layout = map_network(self.mlp, self.classes, self.tracer, d_in, hidden)
        if set(self.order) != {1, 2}:
            raise ProbeError(f"could not find two linear layers with weights ({d_in}, {hidden}) "
                             f"and ({hidden}, 1) inside {type(self.mlp).__name__}")
        self.where = {}

    def plant(self, W1, b1, W2, b2):
        self.where = {1: plant_linear(self.order[1], W1, b1), 2: plant_linear(self.order[2], W2, b2)}

    def params(self):
        out = {}
        for k in (1, 2):
            lin, where = self.order[k], self.where[k]
            out[f"W{k}"] = encode(get_attr(lin, where["W"]))
            out[f"b{k}"] = encode(get_attr(lin, where["b"])) if where["b"] else None
        return out

    def step(self, x, y, lr=0.0, momentum=0.0, l2=0.0):
        """One train call: its return, the losses the loss layer computed, the logits it
        saw, and `order`, the rows of x in the order train fed them (train may shuffle, or
        split the batch): accuracy and dx are aligned with it on the grader's side."""
        self.tracer.reset()
        returned, reached = train_once(self.mlp, x, y, lr, momentum, l2)
        losses = [out for _, out in self.tracer.all_of(self.loss_labels(), "forward")]
        return {"returned": encode(returned), "loss": encode(losses[0] if losses else None),
                "losses": [encode(v) for v in losses[1:16]] if len(losses) > 1 else None,
                "logits": encode(self.captured_logits()), "order": self.row_order(x),
                "hyper": reached}

    def loss_labels(self):
        return ("loss", "crossentropy", self.loss_classname())

    def captured_loss(self):
        got = self.tracer.all_of(self.loss_labels(), "forward")
        return got[0][1] if got else None

    def captured_logits(self):
        want = ("sigmoid",) if "sigmoid" in self.classes else self.loss_labels()
        parts = [a for a, _ in self.tracer.all_of(want, "forward") if isinstance(a, np.ndarray)]
        return np.concatenate([p.reshape(len(p), -1) for p in parts]) if parts else None

    def row_order(self, x):
        """Index into x of every row the first layer saw, in order; None when the rows were
        transformed (normalised, ...) and cannot be matched exactly."""
        parts = [a for a, _ in self.tracer.all_of(("linear1",), "forward") if isinstance(a, np.ndarray)]
        index = {row.tobytes(): i for i, row in enumerate(np.ascontiguousarray(x, dtype=np.float64))}
        order = []
        for part in parts:
            if part.ndim != 2 or part.shape[1] != x.shape[1]:
                return None
            for row in np.ascontiguousarray(part, dtype=np.float64):
                if row.tobytes() not in index:
                    return None
                order.append(index[row.tobytes()])
        return order or None

    def input_gradient(self, d_in):
        """dx of the first layer, every backward call's rows concatenated in call order."""
        rows = []
        for _, out in self.tracer.all_of(("linear1",), "backward"):
            parts = out if isinstance(out, tuple) else (out,)
            dx = next((p for p in parts if isinstance(p, np.ndarray) and p.ndim == 2 and p.shape[1] == d_in), None)
            if dx is None:
                return None
            rows.append(dx)
        return np.concatenate(rows) if rows else None

    def loss_classname(self):
        cls = self.classes.get("crossentropy") or self.classes.get("loss")
        return cls.__name__ if cls else None

    def gradients(self):
        """Raw gradient evidence per linear layer: backward's return and array attributes."""
        out = {}
        for k in (1, 2):
            cap = self.tracer.captured.get((f"linear{k}", "backward"))
            out[k] = {"returned": encode(cap["out"]) if cap else None,
                      "attrs": {n: encode(v) for n, v in array_attrs(self.order[k]).items() if v.size <= 10_000}}
        return out

    def structure(self):
        holds = []
        for k, lin in list(self.order.items()):
            for path, role, v in held_layers(lin, self.classes):
                holds.append([f"linear{k}", path, role])
        return {"events": self.tracer.events[:200], "layout": self.layout, "holds": holds,
                "mlp_class": type(self.mlp).__name__,
                "driver": "nngrader" if isinstance(self.mlp, GraderDriver) else "student"}


def params_from(args):
    return arr(args["W1"]), arr(args["b1"]), arr(args["W2"]), arr(args["b2"])


def probe_gradcheck(roles, args):
    """Loss and gradients of one step at the grader's weights, then the loss with single
    entries nudged by ±h (centred differences are computed on the grader's side)."""
    x, y = arr(args["x"]), arr(args["y"])
    W1, b1, W2, b2 = params_from(args)
    net = Network(roles, W1.shape[0], W1.shape[1], args.get("seed", 0))
    net.plant(W1, b1, W2, b2)
    rec = {"layout": net.layout, "where": net.where}
    base = net.step(x, y)
    rec["base"] = base
    rec["gradients"] = net.gradients()
    rec["dx"] = encode(net.input_gradient(W1.shape[0]))
    rec["structure"] = net.structure()
    evaluate = next((getattr(net.mlp, m) for m in EVAL_METHODS if callable(getattr(net.mlp, m, None))), None)
    if evaluate is not None:
        net.tracer.reset()
        step(rec, "evaluate", lambda: call_with(evaluate, [(TRAIN_X, x.copy()), (TRAIN_Y, y.copy())]))
        rec["evaluate_events"] = net.tracer.events[:100]
    rec["update"] = {}
    net.plant(W1, b1, W2, b2)
    step(rec, "update_step", lambda: net.step(x, y, lr=1.0))
    rec["update"] = net.params()
    h = float(args.get("h", 1e-5))
    nudged = {}
    for name, indices in args["samples"].items():
        nudged[name] = []
        for idx in indices:
            losses = []
            for sign in (1.0, -1.0):
                p = {"W1": W1.copy(), "b1": b1.copy(), "W2": W2.copy(), "b2": b2.copy(), "x": x.copy()}
                p[name][tuple(idx)] += sign * h
                net.plant(p["W1"], p["b1"], p["W2"], p["b2"])
                got = net.step(p["x"], y)
                losses.append({"loss": got["loss"], "returned": got["returned"]})
            nudged[name].append(losses)
    rec["nudged"] = nudged
    return rec


def probe_update(roles, args):
    """Parameters after each train call, for several (lr, momentum, l2) scenarios."""
    x, y = arr(args["x"]), arr(args["y"])
    W1, b1, W2, b2 = params_from(args)
    out = {}
    for sc in args["scenarios"]:
        rec = {"steps": []}
        try:
            net = Network(roles, W1.shape[0], W1.shape[1], args.get("seed", 0))
            net.plant(W1, b1, W2, b2)
            rec["before"] = net.params()
            for _ in range(int(sc.get("steps", 1))):
                s = net.step(x, y, sc["lr"], sc["momentum"], sc["l2"])
                s["params"] = net.params()
                s["gradients"] = net.gradients()
                rec["steps"].append(s)
            rec["ok"] = True
        except Exception as e:
            rec.update(ok=False, error=describe(e))
        out[sc["name"]] = rec
    return out
