"""The student's network: built, traced, its parameters found and planted.

A network may keep its layers as attributes, in a list or dict, build them on the fly each
step, or hold raw weight arrays (W1, b1, ...) with no layer objects at all. `ParamMap`
finds the four parameters wherever they live, by shape (the grader's sizes make every
shape distinct) and by name, and reads or replaces them through their paths. `Tracer`
records which layer methods run, inside which layer or network method, so the grader can
judge who drives what. Training the network is drivers.py's job.
"""
import functools
import inspect
import re

import numpy as np

from . import names
from .boundary import ProbeError
from .calling import ByMeaning, Choices, Keep, Made, bindings, hyper, name_parts, seeded_generators
from .params import (B_PREFERRED, GRADISH, W_PREFERRED, Path, arrays, instances, is_param_path,
                     pick, put, walk)

NET_METHODS = tuple(dict.fromkeys(names.FORWARD + names.BACKWARD + names.TRAIN + names.UPDATE
                                  + names.EVALUATE + names.ZERO_GRAD + (
                                      "predict", "logits", "scores", "predict_logits", "loss",
                                      "compute_loss", "get_loss", "output")))


# ---------------------------------------------------------------- tracing

# the layers whose forward input is read back (all_of(...)[0]): the first layer's rows
# (row order, dx alignment) and what a loss or sigmoid was fed (scores, when no output
# layer's output is seen); no other call's input is kept
INPUTS_READ = frozenset({"linear1", "sigmoid", "loss", "crossentropy"})

class Tracer:
    """Wraps the layer classes' and the network class's methods to record who calls what.

    Wrapping classes (not instances) also sees layers a network builds on the fly and layers
    held inside other layers. An event is [label, job, depth, parent, driver]: `depth`
    counts enclosing layer-method calls (a layer running inside another layer's method is a
    separation problem), `driver` is the network method the call ran in (None: the grader
    called it directly).
    """

    def __init__(self, d_in, hidden):
        self.d_in, self.hidden = d_in, hidden
        self.kinds = []           # (class, label) of the layer classes, checked in order
        self.known = {}           # id -> (object, label) of layers seen
        self.snapshots = True     # keep the gradients each backward leaves (not while training)
        self.reset()

    def reset(self):
        self.events, self.calls, self.layer_stack, self.net_stack = [], [], [], []

    def label(self, obj, args=()):
        if isinstance(obj, type):  # a static method's class
            kind = next((label for cls, label in self.kinds if issubclass(obj, cls)), obj.__name__)
            if kind == "linear":
                k = linear_index(None, self.d_in, self.hidden, args)
                kind = f"linear{k}" if k else "linear"
            return kind
        known = self.known.get(id(obj))
        if known is not None and known[0] is obj:  # (the object itself is kept: ids are reused)
            return known[1]
        kind = next((label for cls, label in self.kinds if isinstance(obj, cls)), type(obj).__name__)
        if kind == "linear":
            k = linear_index(obj, self.d_in, self.hidden, args)
            kind = f"linear{k}" if k else "linear"
            if linear_index(obj, self.d_in, self.hidden) is None:
                return kind  # told by the weights it was handed: one object may serve both layers
        if kind != "linear" and len(self.known) < 256:  # a layer's weights keep their shapes
            self.known[id(obj)] = (obj, kind)
        return kind

    def wrap_layer(self, cls, label, jobs):
        """jobs: method name -> job (forward, backward, update)."""
        self.kinds.append((cls, label))
        for name, job in jobs.items():
            raw = cls.__dict__.get(name)
            if isinstance(raw, staticmethod):  # cs231n style: Affine.forward(x, w, b) -> (out, cache)
                fn = getattr(raw.__func__, "_nn_original", raw.__func__)
                setattr(cls, name, staticmethod(self._static_method(fn, job, cls)))
                continue
            original = original_of(cls, name)
            if original is not None:
                setattr(cls, name, self._layer_method(original, job))

    def _static_method(self, fn, job, cls):
        """A static layer method traced as if called on its class (labelled by its arguments)."""
        method_of_class = self._layer_method(lambda _cls, *a, **k: fn(*a, **k), job)

        @functools.wraps(fn)
        def traced(*args, **kwargs):
            return method_of_class(cls, *args, **kwargs)

        traced._nn_original = fn
        return traced

    def wrap_network(self, cls, extra=()):
        for name in tuple(extra) + NET_METHODS:
            original = original_of(cls, name)
            if original is not None:
                setattr(cls, name, self._net_method(original, name))

    def _layer_method(self, fn, job):
        tracer = self

        @functools.wraps(fn)  # keeps the signature visible, so calls can still be fitted to it
        def traced(obj, *args, **kwargs):
            label = tracer.label(obj, args)
            stack, nets = tracer.layer_stack, tracer.net_stack
            parent = stack[-1] if stack else None
            tracer.events.append([label, job, len(stack), parent, nets[-1] if nets else None])
            stack.append(f"{label}.{job}")
            try:
                out = fn(obj, *args, **kwargs)
            finally:
                stack.pop()
            if parent and parent.split(".")[0] == label:
                return out  # a layer delegating to itself (__call__ -> forward): seen once
            first = None
            if job == "forward" and label in INPUTS_READ:  # (copied: code may change it later)
                for a in args:
                    if isinstance(a, np.ndarray):
                        first = a.copy()
                        break
            kept = gradient_arrays(obj) if job == "backward" and tracer.snapshots else None
            tracer.calls.append((label, job, first, out, obj, kept))
            return out

        traced._nn_original = fn
        return traced

    def _net_method(self, fn, name):
        tracer = self

        @functools.wraps(fn)
        def traced(obj, *args, **kwargs):
            tracer.net_stack.append(name)
            try:
                return fn(obj, *args, **kwargs)
            finally:
                tracer.net_stack.pop()

        traced._nn_original = fn
        return traced

    def all_of(self, labels, job):
        """(input, output) of each call of `job` by those layers; the input is None unless
        the layer is one of INPUTS_READ and the job is forward."""
        return [(c[2], c[3]) for c in self.calls if c[1] == job and c[0] in labels]

    def objects(self, labels, job):
        return [c[4] for c in self.calls if c[1] == job and c[0] in labels]

    def backward_calls(self, label):
        """(returned, object, gradient arrays it held right after) of each backward call."""
        return [(c[3], c[4], c[5]) for c in self.calls if c[1] == "backward" and c[0] == label]


def gradient_arrays(obj):
    """Copies of the gradient-like arrays a layer holds (dW, grad_b, W.grad), taken right
    after its backward returns: an update or a reset later in the step may change them."""
    return {p: v.copy() for p, v in arrays(obj, 2).items() if v.size <= 10_000 and (
        GRADISH.search(p.leaf().lstrip("_")) or any(GRADISH.search(str(k)) for _, k in p[:-1]))}


def original_of(cls, name):
    """The method as the student wrote it (a previous tracer's wrapper removed), or None:
    looked up in the class and its own bases only, never object's or type's (a class with
    no __call__ must not get the metaclass's, which would construct a new object)."""
    fn = next((k.__dict__[name] for k in cls.__mro__ if k is not object and name in k.__dict__), None)
    fn = getattr(fn, "_nn_original", fn)
    return fn if callable(fn) and not isinstance(fn, (type, staticmethod, classmethod)) else None


def linear_index(obj, d_in, hidden, args=()):
    """1 for the hidden layer, 2 for the output layer, by the shape of the weights it holds
    (or is handed, for forward(x, W, b)); None when it cannot tell."""
    first = {(d_in, hidden), (hidden, d_in), (d_in + 1, hidden), (hidden, d_in + 1)}
    second = {(hidden, 1), (1, hidden), (hidden + 1, 1), (1, hidden + 1)}
    held = {} if obj is None else {p: v.shape for p, v in arrays(obj, 2).items()
                                   if is_param_path(p) and not bias_named(p)}
    named = {s for p, s in held.items() if W_PREFERRED.match(p.leaf())}
    passed = {a.shape for a in flat(args[1:]) if isinstance(a, np.ndarray) and a.ndim == 2}
    # what it holds, else what its name says is a weight, else (forward(x, W, b)) what it is handed
    for shapes in (set(held.values()), named, passed):
        if shapes & first and not shapes & second:
            return 1
        if shapes & second and not shapes & first:
            return 2
    return None


def flat(items, depth=2):
    """Arrays among call arguments, also inside tuples (a cs231n cache: (x, w, b))."""
    out = []
    for a in items:
        if isinstance(a, (tuple, list)) and depth:
            out += flat(a, depth - 1)
        else:
            out.append(a)
    return out


def layer_jobs(student, role):
    """method name -> job (forward, backward, update) for a layer role, as the tracer wraps
    them: the [interface] table's names first, then the usual ones."""
    lossy = role in ("loss", "crossentropy", "sigmoid")
    keys = (("forward", "loss_forward" if lossy else "forward"),
            ("backward", "loss_backward" if lossy else "backward"), ("update", "update"))
    jobs = {}
    for job, key in keys:
        for n in student.methods("loss" if lossy else role, key):
            jobs.setdefault(n, job)
    return jobs


# ---------------------------------------------------------------- finding the parameters

BIAS_NAME = re.compile(r"^(b|bias(es)?|b_?\d+|bias(es)?_?\d+|intercept)$", re.I)
GENERIC_LEAF = ("value", "data", "val", "param", "params")


def bias_named(path):
    """Whether a path names a bias: b, bias2, b_hidden, or b.value / params['b'] by its
    owner (and not a weight: w_b, weights_bias)."""
    keys = [str(k) for _, k in path]
    leaf = keys[-1] if keys else ""
    if leaf.lower() in GENERIC_LEAF and len(keys) > 1:
        leaf = keys[-2]
    parts = name_parts(leaf)
    return bool(BIAS_NAME.match(leaf)) or bool(parts & {"b", "bias", "biases", "intercept"}) \
        and not parts & {"w", "weight", "weights", "kernel"}


class ParamMap:
    """Where W1, b1, W2 and b2 live in a network (any depth), and in which layout:
    'in_out' (in, out), 'out_in' (out, in), with the bias folded in as an extra row
    ('+b': a constant input column) when there is no separate bias."""

    def __init__(self, net, d_in, hidden):
        self.net, self.d_in, self.hidden = net, d_in, hidden
        found = {p: v for p, v in arrays(net, 4).items()}
        self.slots = {}
        taken = set()
        for k, (n_in, n_out) in ((1, (d_in, hidden)), (2, (hidden, 1))):
            self.slots[f"W{k}"] = self.weight(found, n_in, n_out, taken)
        missing = [f"W{k}" for k in (1, 2) if self.slots[f"W{k}"]["path"] is None]
        if missing:
            held = ", ".join(f"{p} {v.shape}" for p, v in list(found.items())[:12]) or "no arrays"
            raise ProbeError(f"could not find the weights ({d_in}, {hidden}) and ({hidden}, 1) in "
                             f"{type(net).__name__} (it holds {held})")
        for k, n_out in ((1, hidden), (2, 1)):
            w = self.slots[f"W{k}"]
            self.slots[f"b{k}"] = None if w["folded"] else self.bias(found, k, n_out, w, taken)
        self.shadows = self.same_shaped(found, taken)

    def weight(self, found, n_in, n_out, taken):
        layouts = {(n_in, n_out): ("in_out", None), (n_out, n_in): ("out_in", None),
                   (n_in + 1, n_out): ("in_out", "+b"), (n_out, n_in + 1): ("out_in", "+b")}
        cands = [p for p, v in found.items() if v.shape in layouts and p not in taken]
        plain = [p for p in cands if not bias_named(p)] or cands
        best = pick(plain, W_PREFERRED)
        if best is None:
            return {"path": None, "layout": None, "folded": None}
        taken.add(best)
        layout, folded = layouts[found[best].shape]
        if n_in == n_out:  # a square layer cannot tell its layout by shape: assume (in, out)
            layout = "in_out"
        return {"path": best, "layout": layout, "folded": "last" if folded else None}

    def bias(self, found, k, n_out, w, taken):
        shapes = {(n_out,), (1, n_out), (n_out, 1)}
        cands = [p for p, v in found.items() if v.shape in shapes and p not in taken]
        owner = w["path"].owner()
        near = [p for p in cands if p.owner() == owner] or cands
        indexed = [p for p in near if str(k) in p.leaf()] or near
        best = pick(indexed, B_PREFERRED) or pick(near, B_PREFERRED)
        if best is not None:
            taken.add(best)
        return {"path": best} if best is not None else None

    def same_shaped(self, found, taken):
        """Arrays shaped like a parameter that are not one (velocities, stored gradients):
        zeroed when the grader plants its weights, so an update starts from rest."""
        params = {id(self.get(name)) for name in self.slots if self.slots[name]}
        shapes = {found[s["path"]].shape for s in self.slots.values() if s and s.get("path")}
        return [p for p, v in found.items() if p not in taken and v.shape in shapes
                and id(v) not in params and not is_param_path(p)]

    def get(self, name):
        slot = self.slots.get(name)
        return slot["path"].get(self.net) if slot and slot.get("path") is not None else None

    def plant(self, W1, b1, W2, b2):
        for k, W, b in ((1, W1, b1), (2, W2, b2)):
            w = self.slots[f"W{k}"]
            full = W
            if w["folded"]:
                full = np.vstack([b.reshape(1, -1), W] if w["folded"] == "first" else [W, b.reshape(1, -1)])
            put(self.net, w["path"], full.T if w["layout"] == "out_in" else full)
            slot = self.slots[f"b{k}"]
            if slot:
                put(self.net, slot["path"], b.reshape(self.bias_shape(k)).copy())
        for p in self.shadows:
            try:
                v = p.get(self.net)
                put(self.net, p, np.zeros(v.shape))
            except (AttributeError, KeyError, IndexError, TypeError):
                pass

    def bias_shape(self, k):
        held = self.get(f"b{k}")
        n_out = self.hidden if k == 1 else 1
        if isinstance(held, np.ndarray):  # (its size, not np.prod of its shape: ~5 us a call)
            return held.shape if held.size == n_out else (n_out,)
        shape = getattr(held, "shape", None)
        return shape if shape is not None and int(np.prod(shape)) == n_out else (n_out,)

    def read(self, name):
        """A parameter as the grader's (in, out) W or (out,) b; None when unreadable. A
        folded bias is read off its row of W."""
        k = int(name[1])
        w = self.slots[f"W{k}"]
        W = self.get(f"W{k}")
        if not isinstance(W, np.ndarray):
            return None
        W = W.T if w["layout"] == "out_in" else W
        row = 0 if w["folded"] == "first" else -1
        if name[0] == "W":
            return (W[1:] if row == 0 else W[:-1]) if w["folded"] else W
        if w["folded"]:
            return W[row]
        b = self.get(name)
        return b if isinstance(b, np.ndarray) else None

    def where(self):
        """Per layer, where its parameters were found (for the report)."""
        out = {}
        for k in (1, 2):
            w, b = self.slots[f"W{k}"], self.slots[f"b{k}"]
            bias = self.get(f"b{k}")
            out[str(k)] = {"W": str(w["path"]), "layout": w["layout"], "folded": w["folded"],
                           "b": str(b["path"]) if b else None,
                           "b_shape": list(bias.shape) if isinstance(bias, np.ndarray) else None}
        return out

    def owners(self):
        """k -> the object that holds layer k's weights (a layer object, or the network)."""
        return {k: self.slots[f"W{k}"]["path"].owner().get(self.net) for k in (1, 2)}


# ---------------------------------------------------------------- building the network

def build_offer(student, x, y, hidden, seed, extras):
    """Every value a network constructor may ask for, by meaning. The seeded generators and
    starting weights are made only for a constructor that asks for them: a RandomState
    costs ~160 us to make, and most constructors take none."""
    d_in = x.shape[1]

    def weights():
        r = np.random.RandomState(seed)
        return {"W1": r.randn(d_in, hidden) * 0.1, "b1": np.zeros(hidden),
                "W2": r.randn(hidden, 1) * 0.1, "b2": np.zeros(1)}

    made = Made(weights)
    offer = {"d_in": d_in, "hidden": Choices([hidden, [hidden]]), "d_out": 1,  # (a list of widths)
             "num_layers": Choices([1, 2]), "dims": Choices([[d_in, hidden, 1], (d_in, hidden, 1)]),
             "seed": seed, "rng": seeded_generators(seed),
             "batch_size": len(x), "num_batches": 1, "epochs": 1,
             "x": x, "y": y, "quiet": Keep(False), **hyper(0.0, 0.0, 0.0),
             **{k: Made(lambda k=k: made.value()[k]) for k in ("W1", "b1", "W2", "b2")}, **extras}
    offer["config"] = ByMeaning(offer)
    return offer


def build_network(student, x, y, hidden, seed, extras=None):
    """The student's network class built for (d_in, hidden, 1), whatever its constructor
    takes; returns (network, ParamMap, how it was called). Each constructor binding is
    tried until one builds a network whose two weight matrices can be found."""
    cls = student.cls("mlp")
    offered = build_offer(student, x, y, hidden, seed, extras or {})
    errors = []
    for maker in [cls] + factories(student, cls):
        for order in (("d_in", "hidden", "d_out"), ("dims",), ("d_in", "d_out", "hidden")):
            try:
                options = bindings(maker, offered, order, student.args("mlp"))
            except ProbeError as e:
                errors.append(str(e))
                continue
            for how in options:
                np.random.seed(seed)
                try:
                    net = how()
                    if not isinstance(net, cls):
                        raise ProbeError(f"it returned {type(net).__name__}, not a {cls.__name__}")
                    return net, mapped(net, student, x, y, hidden), how
                except ProbeError as e:
                    errors.append(f"{how.describe()}: {e}")
                except Exception as e:  # a binding that does not fit this constructor: the next
                    errors.append(f"{how.describe()} raised {type(e).__name__}: {e}")
    raise ProbeError(f"could not build {cls.__name__}: " + "; ".join(dict.fromkeys(errors))[:900])


def mapped(net, student, x, y, hidden):
    """The network's ParamMap; a network that makes its weights on first use (lazily, in
    its first forward or train call) gets one forward call first."""
    try:
        return ParamMap(net, x.shape[1], hidden)
    except ProbeError:
        if not warm_up(net, student, x, y):
            raise
        return ParamMap(net, x.shape[1], hidden)


def warm_up(net, student, x, y):
    """One forward call with the data (a lazy network makes its weights then); else its
    evaluate, which changes no weight either."""
    from .calling import call  # (calling is imported lazily here: no cycle at import)
    forwards = student.methods("mlp", "forward") + ("predict", "logits", "scores", "predict_logits")
    for name, order in [(n, ("x",)) for n in forwards] + \
            [(n, ("x", "y")) for n in student.methods("mlp", "evaluate")]:
        fn = getattr(net, name, None)
        if callable(fn) and not isinstance(fn, type):
            try:
                call(fn, {"x": x, "y": y, "quiet": Keep(False)}, order, student.args("mlp"))
                return True
            except Exception:  # noqa: BLE001 - not this method: try the next
                continue
    return False


FACTORY = re.compile(r"(build|make|create|new|construct|get|init)_?\w*|\w*(model|net|network|mlp|"
                     r"classifier)\w*", re.I)


def factories(student, cls):
    """Module functions that may build the network (two_layer_mlp(dims, hidden): a
    Sequential filled with add()), for when its constructor alone gives no weights."""
    return [f for m in student.modules() for name, f in sorted(vars(m).items())
            if inspect.isfunction(f) and f.__module__ == m.__name__ and FACTORY.fullmatch(name)
            and not name.startswith(("train", "fit", "eval", "test", "load", "plot", "save"))]


def held_layers(obj, classes, depth=3):
    """(path, label, instance) of the layer objects a network (or layer) holds."""
    return [(str(p), label, v) for p, label, v in instances(obj, classes, depth) if v is not obj]


__all__ = ["Tracer", "ParamMap", "build_network", "held_layers", "layer_jobs", "Path", "walk"]
