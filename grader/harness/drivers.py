"""Training the student's network one step at a time, the student's way whenever possible.

Drivers, tried in this order:
  student-train   the network's own train method, in whatever form it takes (MLP.train(x, y,
                  lr, momentum, l2), with epochs, a batch index, the whole data set plus a
                  batch size, a train-or-test flag, ...)
  module-train    a training function of the module that takes the model
                  (train(model, X, Y, epochs, batch_size, ...), the current skeleton's way)
  grader-loop     the network's own forward and backward, then its step/update method, an
                  optimizer object or each layer's update: a network with no train method
  grader-layers   the student's layers, driven by the grader (no network class, or one that
                  cannot be called at all)
A step is one full batch (epochs 1, batch size N, batch index 0). The driver and the way
its call is bound are chosen once per probe, on a scratch network: the first binding that
runs and moves the weights (a train-or-test flag has to be right for that). What could not
be called is kept in `notes`: structure.mlp_drives reports it.
"""

import itertools

import numpy as np

from . import names
from .boundary import ProbeError, describe
from .calling import (MISSING, Binding, Bindings, ByMeaning, Choices, Keep, bind, bindings, call,
                      fresh, has_method, hyper, meaning_of, method, params_of, qualname)
from .layer_probes import DX_ATTR, Layer, Loss, construct, kept_by, linear_layer
from .network import ParamMap, Tracer, build_network, held_layers, layer_jobs, linear_index, mapped
from .hyperattrs import apply_hyper, hyper_targets, set_hyper_attrs
from .params import arrays, instances, walk, walkable

NET_FORWARD = names.FORWARD + ("predict_logits", "logits", "scores", "get_logits", "compute_logits",
                               "output", "net_output", "predict_scores")
HYPER_KEYS = ("lr", "momentum", "l2")


def step_offer(x, y, lr, momentum, l2, seed=0, cols=False):
    """The values a training call may ask for, by meaning (one full-batch step); with
    `cols`, the samples go in as columns (x as (features, batch))."""
    offer = {"x": x.T if cols else x, "y": y.T if cols else y, **hyper(lr, momentum, l2), "epochs": 1, "epoch": Choices([0, 1]),
             "batch_size": len(x), "batch": Choices([(x.T, y.T) if cols else (x, y), len(x)]),
             "num_batches": 1, "batch_index": 0, "train_flag": Choices([MISSING, True, False, "train", "test"]),
             "quiet": Keep(False), "seed": seed}
    offer["config"] = ByMeaning(offer)
    return offer


class Looped:
    """What a grader-driven step returns: the loss it saw and the hyper-parameters reached."""

    def __init__(self, value, reached):
        self.value, self.reached = value, set(reached)


def reached_by(binding):
    return {m for m in HYPER_KEYS if binding.given(m)}


# ---------------------------------------------------------------- the drivers

class StudentTrain:
    kind = "student-train"
    cols = False

    def __init__(self, net, student):
        self.fn = next((getattr(net.net, n) for n in student.methods("mlp", "train")
                        if callable(getattr(net.net, n, None)) and takes_data(getattr(net.net, n))), None)
        if self.fn is None:
            raise ProbeError(f"{type(net.net).__name__} has no train method taking the data")
        self.label = f"{type(net.net).__name__}.{self.fn.__name__}"
        self.name = self.fn.__name__

    def options(self, net, offer):
        fn = getattr(net.net, self.name)
        return bindings(fn, offer, ("x", "y", "lr", "momentum", "l2"), net.student.args("mlp"))


class ModuleTrain:
    kind = "module-train"
    cols = False

    def __init__(self, net, student):
        named = (((student.interface.get("module") or {}).get("methods") or {}).get("train"),)
        for module in student.modules():
            for n in tuple(filter(None, named)) + names.MODULE_TRAIN:
                fn = getattr(module, n, None)
                if callable(fn) and not isinstance(fn, type) and takes_model(fn):
                    self.fn, self.label = fn, f"{n}(model, ...)"
                    return
        raise ProbeError("the module has no training function taking the model")

    def options(self, net, offer):
        offer = {**offer, "model": net.net, "loss_fn": Loss(net.student).ce,
                 "optimizer": net.optimizer(offer["lr"], offer["momentum"], offer["l2"], build=True)}
        offer = {k: v for k, v in offer.items() if v is not None}
        return bindings(self.fn, offer, ("model", "x", "y"), net.student.args("module"))


class ObjectTrain:
    """A trainer object of the student's own (Solver(lr, momentum, ...).step(model, X, Y),
    Trainer(...).train(model, X, Y)) takes the step, as in their training script."""
    kind = "object-train"
    cols = False
    METHODS = ("step", "train_step", "train_batch", "train_on_batch", "update", "train", "fit",
               "run", "optimize")

    def __init__(self, net, student):
        layer_types = tuple(net.classes.values())
        mlp = student.cls("mlp") if student.roles.get("mlp") else None
        for cls in student_classes(student):
            if cls is mlp or issubclass(cls, layer_types):
                continue
            name = next((m for m in self.METHODS if callable(getattr(cls, m, None))
                         and takes_model(getattr(cls, m))), None)
            if name:
                self.cls, self.name, self.label = cls, name, f"{cls.__name__}.{name}(model, ...)"
                return
        raise ProbeError("the module has no trainer class with a method taking the model")

    def options(self, net, offer):
        if net._trainer is None:  # built once per network: it may keep velocities
            made = {**offer, "model": net.net, "loss_fn": Loss(net.student).ce}
            net._trainer = call(self.cls, made, (), net.student.args("module"))
        fn = getattr(net._trainer, self.name)
        return bindings(fn, {**offer, "model": net.net, "loss_fn": Loss(net.student).ce},
                        ("model", "x", "y"), net.student.args("module"))


class GraderLoop:
    """forward, loss, backward, update of the student's network, called by the grader."""
    kind = "grader-loop"
    cols = False

    def __init__(self, net, student):
        obj = net.net
        self.fwd = next((n for n in student.methods("mlp", "forward") + NET_FORWARD
                         if callable(getattr(obj, n, None))), None)
        self.bwd = next((n for n in student.methods("mlp", "backward")
                         if callable(getattr(obj, n, None))), None)
        if self.fwd is None or self.bwd is None:
            raise ProbeError(f"{type(obj).__name__} has no forward and backward methods to drive")
        self.label = f"{type(obj).__name__}.{self.fwd}/{self.bwd}"
        self.cols = False

    def options(self, net, offer):
        return [lambda: self.step(net, offer)]

    def step(self, net, offer):
        obj, student = net.net, net.student
        x, y = offer["x"], offer["y"]
        if student.resets_gradients:  # the student's own code resets them: so does this loop
            targets = [obj] if has_method(obj, names.ZERO_GRAD) else [v for _, _, v in net.layers()]
            for target in targets:
                if has_method(target, names.ZERO_GRAD):
                    method(target, names.ZERO_GRAD)()
        out = self.forward(obj, student, x, y)
        loss = net.loss_for(obj, out, offer)
        if isinstance(out, np.ndarray) and out.size == len(x):
            value = loss.forward(self.rows(out, len(x)), y)
            dz = loss.backward()
            dz = dz[0] if isinstance(dz, tuple) else dz
            grad = dz.T if self.cols and isinstance(dz, np.ndarray) and dz.ndim == 2 else dz
        else:  # forward(x, y) returned the loss: backward needs no upstream gradient
            value, grad = out, None
        bwd = getattr(obj, self.bwd)
        offered = {"y": y.T if self.cols else y, "x": x.T if self.cols else x, "quiet": Keep(False),
                   **hyper(offer["lr"], offer["momentum"], offer["l2"])}
        if grad is not None:
            offered["grad"] = grad
        b = bind(bwd, offered, ("grad",), student.args("mlp"))
        b()  # (a backward(grad, lr, momentum, l2) may update the weights itself)
        return Looped(value, reached_by(b) | net.update(offer["lr"], offer["momentum"], offer["l2"]))

    def forward(self, obj, student, x, y):
        fwd = getattr(obj, self.fwd)
        offered = {"x": x, "y": y, "quiet": Keep(False), "train_flag": True}
        if self.cols:
            offered.update(x=x.T, y=y.T)
        try:
            return self.first_array(call(fwd, offered, ("x",), student.args("mlp")))
        except ValueError as first:  # a shape error: maybe samples in columns, x (features, batch)
            if self.cols:
                raise
            try:
                out = self.first_array(call(fwd, {**offered, "x": x.T, "y": y.T}, ("x",), student.args("mlp")))
            except Exception:
                raise first from None  # the student's own call, not the transposed attempt
            self.cols = True
            return out

    @staticmethod
    def first_array(out):
        if isinstance(out, tuple):
            return next((v for v in out if isinstance(v, np.ndarray)), out)
        return out

    def rows(self, out, n):
        return out.T if self.cols and out.ndim == 2 and out.shape[0] != n else out


class GraderLayers:
    """The student's layers, driven by the grader: forward through linear, ReLU, linear and
    the loss; backward in reverse; each layer updates itself."""
    kind = "grader-layers"
    cols = False

    def __init__(self, net, student):
        found = net.layer_objects()
        if not found:
            raise ProbeError("found no layer objects to drive")
        self.label = "the grader's own loop over your layers"

    def options(self, net, offer):
        return [lambda: self.step(net, offer)]

    def step(self, net, offer):
        layer1, act, layer2 = net.layer_objects()
        x, y = offer["x"], offer["y"]
        lr, momentum, l2 = offer["lr"], offer["momentum"], offer["l2"]
        h = layer1.forward(x)
        a = act.forward(h)
        z = layer2.forward(a)
        loss = net.loss_for(None, z, offer)
        value = loss.forward(z, y)
        g = loss.backward()
        g = g[0] if isinstance(g, tuple) else g
        for layer in (layer2, act, layer1):
            got = layer.backward(g, None, lr, momentum, l2)
            g = got[0] if isinstance(got, tuple) else got
            layer.update(lr, momentum, l2)
        return Looped(value, HYPER_KEYS)


DRIVERS = (StudentTrain, ModuleTrain, ObjectTrain, GraderLoop, GraderLayers)


def takes_data(fn):
    """A train method takes the samples and their labels (a network's step(lr, ...) does not)."""
    ps = [p.name for p in params_of(fn)]
    return any(meaning_of(n, ("x",)) for n in ps) and any(meaning_of(n, ("y",)) for n in ps) \
        or len([p for p in params_of(fn) if p.default is p.empty]) >= 2 \
        and not any(meaning_of(n, HYPER_KEYS) for n in ps[:2])


def takes_model(fn):
    ps = params_of(fn)
    return bool(ps) and (any(meaning_of(p.name, ("model",)) for p in ps))


# ---------------------------------------------------------------- the network facade

class GraderNet:
    """Stands in for a network when the submission has none: the grader holds the layers."""

    def __init__(self, student, d_in, hidden, seed):
        r = np.random.RandomState(seed)
        self.layer1 = linear_layer(student, r.randn(d_in, hidden) * 0.1, np.zeros(hidden))[0].obj
        self.act = construct(student.cls("relu"), student, "relu")
        self.layer2 = linear_layer(student, r.randn(hidden, 1) * 0.1, np.zeros(1))[0].obj


SCALARS = (int, float, str, np.ndarray, np.generic, type(None))  # a new one each step changes no holder


def signature(value):
    """What of a network's attribute decides where its layers and hyper-parameters live: the
    object held, and for a container which objects it holds (a lazy network appends its
    layers to a list it already has; numbers and arrays may change freely)."""
    if isinstance(value, SCALARS):
        return None
    if isinstance(value, (list, tuple, dict)):
        items = list(value.values() if isinstance(value, dict) else value)[:64]
        return id(value), len(value), tuple(None if isinstance(v, SCALARS) else id(v) for v in items)
    return id(value)


def still_held(net, path, obj):
    """Whether obj still sits where it was found (a network may rebuild a layer it keeps)."""
    try:
        return path.get(net) is obj
    except Exception:  # noqa: BLE001 - a path the student's code removed or a raising property
        return False


class Network:
    """The student's network (or the grader's stand-in), traced, its parameters mapped, and
    a driver chosen to take one training step at a time."""

    CHOSEN = {}  # per probe process: driver kind -> (binding index or None, why not)

    def __init__(self, student, x, y, hidden, seed=0):
        self.student, self.hidden, self.seed = student, hidden, seed
        self.d_in = x.shape[1]
        self.classes = student.layer_classes()
        self.tracer = Tracer(self.d_in, hidden)
        for label, cls in self.classes.items():
            self.tracer.wrap_layer(cls, label, layer_jobs(student, label))
        self.notes, self.failed = [], []
        ByMeaning.KNOWN_KEYS = student.config_keys()
        self.net = self.params = None
        self._optimizer = self._trainer = None
        self.sample = (x, y)
        if student.roles.get("mlp"):
            named = ((student.interface.get("mlp") or {}).get("methods") or {}).values()
            self.tracer.wrap_network(student.cls("mlp"), named)
            try:
                self.net, self.params, self.how = build_network(student, x, y, hidden, seed)
            except ProbeError as e:
                self.notes.append(str(e))
        if self.net is None:
            np.random.seed(seed)
            self.net = GraderNet(student, self.d_in, hidden, seed)
            self.params, self.how = ParamMap(self.net, self.d_in, hidden), None
        self.driver, self.chosen = self.choose()
        self.find_bias_rows()

    # ------------------------------------------------------------ choosing a driver

    def choose(self):
        """The first driver whose call runs on a scratch network, and the binding that
        moves its weights (else the first binding that runs). A driver the submission has
        but that could not be called is kept in `failed` for the report."""
        x, y = self.sample
        absent = []
        for kind in DRIVERS:
            if kind is not GraderLayers and isinstance(self.net, GraderNet):
                continue
            try:
                driver = kind(self, self.student)
            except ProbeError as e:
                absent.append(str(e))
                continue
            if kind.kind not in Network.CHOSEN:  # decided once per probe
                Network.CHOSEN[kind.kind] = (*self.trial(driver, x, y), driver.cols)
            index, error, driver.cols = Network.CHOSEN[kind.kind]
            if index is not None:
                return driver, index
            self.failed.append({"driver": kind.kind, "label": driver.label, "error": error})
        tried = [f"{f['label']} could not be called: {f['error']}" for f in self.failed]
        raise ProbeError("could not train the network: " + "; ".join(tried + absent)[:900])

    def trial(self, driver, x, y):
        """(index of the binding to use, first error): samples in rows first, then, when no
        binding runs that way, in columns (x as (features, batch)) for a student train."""
        index, error = self.trial_layout(driver, x, y)
        if index is None and driver.kind in ("student-train", "module-train", "object-train"):
            cols, _ = self.trial_layout(driver, x, y, cols=True)
            if cols is not None:
                driver.cols = True
                return cols, None
        return index, error

    def trial_layout(self, driver, x, y, cols=False):
        ran, first_error = None, None
        for i in range(12):
            scratch = self.scratch()
            offer = step_offer(x, y, 0.1, 0.0, 0.0, self.seed, cols)
            try:
                options = driver.options(scratch, offer)
            except ProbeError as e:
                return None, str(e)
            if i >= len(options):
                break
            before = {k: scratch.params.read(k) for k in ("W1", "W2")}
            try:
                set_hyper_attrs(scratch.net, 0.1, 0.0, 0.0)
                options[i]()
            except Exception as e:  # noqa: BLE001 - a binding that does not fit: try the next
                first_error = first_error or f"{type(e).__name__}: {e}"
                continue
            ran = i if ran is None else ran
            after = {k: scratch.params.read(k) for k in ("W1", "W2")}
            if any(isinstance(after[k], np.ndarray) and isinstance(before[k], np.ndarray)
                   and (after[k].shape != before[k].shape or not np.array_equal(after[k], before[k]))
                   for k in after):
                return i, None
        return ran, first_error

    def scratch(self):
        """Another network built the same way, for trying calls that may change it."""
        x, y = self.sample
        other = object.__new__(Network)
        other.__dict__.update(self.__dict__)
        other._optimizer = other._trainer = None
        np.random.seed(self.seed)
        if isinstance(self.net, GraderNet):
            other.net = GraderNet(self.student, self.d_in, self.hidden, self.seed)
        else:
            # (fresh copies: a constructor that keeps the arrays it is given must not share
            # them with the real network)
            other.net = self.how.fn(*map(fresh, self.how.args), **{k: fresh(v) for k, v in self.how.kwargs.items()})
        other.params = ParamMap(other.net, self.d_in, self.hidden) if isinstance(self.net, GraderNet) \
            else mapped(other.net, self.student, x, y, self.hidden)
        return other

    def find_bias_rows(self):
        """Where a bias folded into W sits (its last row, for x with a ones column appended,
        or its first, prepended): the choice whose network reproduces x·W + b. An adapter
        decision only, made on a scratch network."""
        folded = [k for k in (1, 2) if self.params.slots[f"W{k}"]["folded"]]
        if not folded:
            return
        x, y = self.sample
        r = np.random.RandomState(1)
        W1, b1, W2, b2 = r.randn(self.d_in, self.hidden), r.randn(self.hidden), r.randn(self.hidden, 1), r.randn(1)
        want = np.maximum(x @ W1 + b1, 0) @ W2 + b2
        for rows in itertools.product(("last", "first"), repeat=len(folded)):
            try:
                other = self.scratch()
                for k, row in zip(folded, rows):
                    other.params.slots[f"W{k}"]["folded"] = row
                other.plant(W1, b1, W2, b2)
                other.step(x, y)
                got = other.captured_logits()
            except Exception:  # noqa: BLE001 - this layout does not run: try the next
                continue
            if isinstance(got, np.ndarray) and got.size == want.size and np.allclose(got.reshape(want.shape), want):
                for k, row in zip(folded, rows):
                    self.params.slots[f"W{k}"]["folded"] = row
                return

    # ------------------------------------------------------------ parameters

    def plant(self, W1, b1, W2, b2):
        self.params.plant(W1, b1, W2, b2)

    def read(self):
        return {k: self.params.read(k) for k in ("W1", "b1", "W2", "b2")}

    def where(self):
        return self.params.where()

    # ------------------------------------------------------------ one step

    def step(self, x, y, lr=0.0, momentum=0.0, l2=0.0):
        """One training step; returns (what the call returned, hyper-parameters reached)."""
        self.tracer.reset()
        reached = apply_hyper(self.hyper_targets(), lr, momentum, l2)
        option, given = self.step_call(x, y, lr, momentum, l2)
        for helper in (self._optimizer, self._trainer):  # the network's, or built for a trainer
            if helper is not None:
                reached |= set_hyper_attrs(helper, lr, momentum, l2)
        returned = option()
        if isinstance(returned, Looped):  # the grader's loops report what they reached
            returned, reached = returned.value, reached | returned.reached
        else:
            reached |= given
        return returned, sorted(reached)

    def step_call(self, x, y, lr, momentum, l2):
        """(the chosen binding, the hyper-parameters it passes). A training run calls the
        student's train with the same x, y and rates at every step: that call is bound once
        and repeated with fresh copies of its arrays, as long as the network's train method
        and every value passed stay the same."""
        # (cols: the student's train wants the samples as columns, x as (features, batch))
        cols = getattr(self.driver, "cols", False)
        fn = getattr(self.net, self.driver.name, None) if self.driver.kind == "student-train" else None
        key = (fn, lr, momentum, l2, cols, self.chosen)
        held = getattr(self, "_step_call", None)
        if fn is not None and held is not None and held[0] is x and held[1] is y and held[2] == key:
            return held[3].again(), held[4]
        offer = step_offer(x, y, lr, momentum, l2, self.seed, cols)
        options = self.driver.options(self, offer)
        planned = options.planned_call(self.chosen) if isinstance(options, Bindings) else None
        if fn is not None and planned is not None and planned.immutable():
            self._step_call = (x, y, key, planned, reached_by(planned))
            return planned.again(), self._step_call[4]
        option = options[self.chosen]
        return option, (reached_by(option) if isinstance(option, Binding) else set())

    def signature(self):
        return tuple((k, signature(v)) for k, v in vars(self.net).items()) \
            if hasattr(self.net, "__dict__") else ()

    def hyper_targets(self):
        """Where the network keeps hyper-parameters, found again only when its own
        attributes or its layers change (a lazy network builds its layers during the first
        step; another rebuilds a layer that keeps its own learning rate)."""
        held = self.layers()  # (it leaves the network's signature in self._layers)
        shape = (self._layers[0], tuple(id(obj) for _, _, obj in held))
        if getattr(self, "_hyper", None) is None or self._hyper[0] != shape:
            self._hyper = (shape, hyper_targets(self.net, self.hyper_holders()))
        return self._hyper[1]

    def hyper_holders(self):
        """Classes and modules whose own attributes may hold a hyper-parameter (MLP.lr = 0.1
        as a class attribute, LEARNING_RATE = 0.1 at module level)."""
        if getattr(self, "_holders", None) is None:
            self._holders = [type(self.net), *self.classes.values(), *self.student.modules()]
        return self._holders

    def update(self, lr, momentum, l2):
        """The update after a grader-driven backward: the network's own step/update method,
        else an optimizer object, else each layer's update. Returns what it reached."""
        upd = next((getattr(self.net, n) for n in self.student.methods("mlp", "update")
                    if callable(getattr(self.net, n, None)) and not takes_data(getattr(self.net, n))), None)
        offered = {**hyper(lr, momentum, l2), "quiet": Keep(False)}
        if upd is not None:
            b = bindings(upd, offered, ("lr", "momentum", "l2"), self.student.args("mlp"))[0]
            b()
            return reached_by(b)
        opt = self.optimizer(lr, momentum, l2)
        if opt is not None:
            call(method(opt, names.UPDATE), offered, (), {})
            return set_hyper_attrs(opt, lr, momentum, l2) | {"lr"}
        reached = set()
        for _, label, obj in self.layers():
            if label.startswith("linear"):
                layer = Layer(obj, self.student, "linear")
                if layer.update(lr, momentum, l2) is not None:
                    reached |= set(HYPER_KEYS)
        return reached

    def optimizer(self, lr, momentum, l2, build=True):
        """The optimizer object the network holds, else one built from the student's own
        optimizer class (SGD, Solver, ...) over the network's layers."""
        if self._optimizer is not None:
            return self._optimizer
        layer_types = tuple(self.classes.values())
        for _, v in walk_objects(self.net):
            if has_method(v, names.UPDATE) and not isinstance(v, layer_types) and v is not self.net:
                self._optimizer = v
                return v
        if not build:
            return None
        for cls in optimizer_classes(self.student, layer_types):
            layers = [obj for _, _, obj in self.layers()]
            linears = [obj for _, label, obj in self.layers() if label.startswith("linear")]
            listed = [p for p in (own_list(self.net, n) for n in ("parameters", "params", "get_params"))
                      if p is not None]
            offered = {**hyper(lr, momentum, l2), "layers": Choices(listed + [layers, linears, self.net]),
                       "model": self.net, "quiet": Keep(False)}
            try:
                self._optimizer = call(cls, offered, ("layers", "lr", "momentum", "l2"), {})
                return self._optimizer
            except Exception:  # noqa: BLE001 - not an optimizer for this network
                continue
        return None

    def loss_for(self, obj, out, offer):
        """The Loss adapter for a grader-driven step: the network's own loss object when it
        holds one (its backward may read that object's state), else a fresh one; fed
        probabilities when the network's forward already applied its Sigmoid."""
        held = {label: v for _, label, v in held_layers(obj, self.classes)} if obj is not None else {}
        ran_sigmoid = any(e[0] == "sigmoid" and e[1] == "forward" for e in self.tracer.events)
        if "crossentropy" in self.classes and ran_sigmoid:
            return Loss(self.student, ce=held.get("crossentropy"), split=False)
        return Loss(self.student, ce=held.get("crossentropy") or held.get("loss"),
                    sig=held.get("sigmoid"))

    # ------------------------------------------------------------ what the step showed

    def layers(self):
        """(path, label, instance) of the layer objects the network holds, linear layers
        labelled linear1/linear2 by their weights. Asked at every step of a grader-driven
        loop: found again only when the network's attributes changed or a layer moved."""
        shape, cached = self.signature(), getattr(self, "_layers", None)
        if cached is not None and cached[0] == shape and \
                all(still_held(self.net, p, obj) for p, _, obj in cached[1]):
            return list(cached[2])
        found = []
        for path, label, obj in instances(self.net, self.classes):
            if obj is self.net:
                continue
            if label == "linear":
                k = linear_index(obj, self.d_in, self.hidden)
                label = f"linear{k}" if k else label
            found.append((path, label, obj))
        named = [(str(p), label, obj) for p, label, obj in found]
        self._layers = (shape, found, named)
        return list(named)

    def layer_objects(self):
        """(Layer, Layer, Layer) adapters for linear1, relu, linear2 held by the network,
        the same adapters for as long as the same layers (a column layout found once)."""
        by = {}
        for _, label, obj in self.layers():
            by.setdefault(label, obj)
        if not all(k in by for k in ("linear1", "relu", "linear2")):
            return None
        held = (by["linear1"], by["relu"], by["linear2"])
        cached = getattr(self, "_adapters", None)
        if cached is None or any(a.obj is not b for a, b in zip(cached, held)):
            cached = self._adapters = (Layer(held[0], self.student, "linear"),
                                       Layer(held[1], self.student, "relu"),
                                       Layer(held[2], self.student, "linear"))
        return cached

    def loss_labels(self):
        return ("loss", "crossentropy")

    def captured_loss(self):
        got = self.tracer.all_of(self.loss_labels(), "forward")
        return got[0][1] if got else None

    def loss_evidence(self, numbers_only=False):
        """What the loss layer's first forward call kept (self.loss, ...)."""
        objs = self.tracer.objects(self.loss_labels(), "forward")
        return kept_by(objs[0], numbers_only) if objs else None

    def captured_logits(self):
        """The scores the network produced: its output layer's outputs, else what its loss
        (or Sigmoid) was fed (a loss taking (y, z) would otherwise hand back the labels).
        Asked twice per training step: remembered until the tracer records another call."""
        calls, cached = self.tracer.calls, getattr(self, "_logits", None)
        if cached is None or cached[0] is not calls or cached[1] != len(calls):
            self._logits = (calls, len(calls), self._captured_logits())
        return self._logits[2]

    def _captured_logits(self):
        parts = [o for _, o in self.tracer.all_of(("linear2",), "forward") if isinstance(o, np.ndarray)]
        if not parts:
            want = ("sigmoid",) if "sigmoid" in self.classes else self.loss_labels()
            parts = [a for a, _ in self.tracer.all_of(want, "forward") if isinstance(a, np.ndarray)]
        return np.concatenate([p.reshape(-1, 1) for p in parts]) if parts else None

    def first_layer_inputs(self):
        parts = []
        for a, _ in self.tracer.all_of(("linear1",), "forward"):
            if isinstance(a, np.ndarray) and a.ndim == 2:
                parts.append(a.T if a.shape[0] == self.d_in and a.shape[1] != self.d_in else a)
        return parts

    def row_order(self, x):
        """Index into x of every row the first layer saw, in order; None when the rows were
        transformed (normalised, a bias column added, ...) and cannot be matched exactly."""
        cached = getattr(self, "_row_index", None)
        if cached is None or cached[0] is not x:  # the same x at every step of a training run
            rows = np.ascontiguousarray(x, dtype=np.float64)
            index = {row.tobytes(): i for i, row in enumerate(rows)}
            self._row_index = (x, index, rows.tobytes() if len(index) == len(rows) else None)
        _, index, whole = self._row_index
        parts = self.first_layer_inputs()
        if whole is not None and len(parts) == 1 and parts[0].shape == x.shape and \
                np.ascontiguousarray(parts[0], dtype=np.float64).tobytes() == whole:
            return list(range(len(x)))  # all of x, in order (its rows are distinct)
        order = []
        for part in parts:
            if part.shape[1] != x.shape[1]:
                return None
            for row in np.ascontiguousarray(part, dtype=np.float64):
                if row.tobytes() not in index:
                    return None
                order.append(index[row.tobytes()])
        return order or None

    def input_gradient(self):
        """dx of the first layer, every backward call's rows in call order (read from an
        attribute such as self.dx when backward returned nothing)."""
        rows = []
        for out, obj, _ in self.tracer.backward_calls("linear1"):
            parts = out if isinstance(out, tuple) else (out,)
            dx = next((p for p in parts if isinstance(p, np.ndarray) and p.ndim == 2
                       and self.d_in in p.shape and p.shape != (self.d_in, self.hidden)
                       and p.shape != (self.hidden, self.d_in)), None)
            if dx is None and out is None:
                dx = next((v for p, v in sorted(arrays(obj, 1).items(), key=lambda kv: not DX_ATTR.match(kv[0].leaf()))
                           if v.ndim == 2 and self.d_in in v.shape and DX_ATTR.match(p.leaf())), None)
            if dx is None:
                return None
            rows.append(dx.T if dx.shape[0] == self.d_in and dx.shape[1] != self.d_in else dx)
        return np.concatenate(rows) if rows else None

    def gradients(self):
        """Raw gradient evidence per linear layer: backward's return and the arrays held by
        the object that holds the layer's weights (a layer, or the network itself)."""
        from .boundary import encode
        out = {}
        owners = self.params.owners()
        for k in (1, 2):
            got = self.tracer.backward_calls(f"linear{k}")
            held = {str(n): v for n, v in arrays(owners[k], 2).items() if v.size <= 10_000}
            if got and owners[k] is got[0][1]:  # as they were right after backward
                held.update({str(n): v for n, v in got[0][2].items()})
            out[str(k)] = {"returned": encode(got[0][0]) if got else None,
                           "owner_is_network": owners[k] is self.net,
                           "attrs": {n: encode(v) for n, v in held.items()}}
        return out

    def structure(self):
        holds = []
        for path, label, obj in self.layers():
            for inner_path, inner_label, _ in held_layers(obj, self.classes, depth=2):
                holds.append([label, inner_path, inner_label])
        return {"events": self.tracer.events[:300], "layout": [[p, l] for p, l, _ in self.layers()],
                "holds": holds, "mlp_class": type(self.net).__name__,
                "driver": self.driver.kind, "driver_label": self.driver.label,
                "failed": self.failed[:4], "notes": self.notes[:6],
                "built": self.how.describe() if self.how else None}

    def evaluate(self, x, y):
        """The student's evaluate (a method, or a module function taking the model):
        (what it returned, its name), or (None, None) when there is none."""
        if isinstance(self.net, GraderNet):
            return None, None  # no network of the student's to evaluate
        if getattr(self.driver, "cols", False):  # trained on (features, batch): evaluated so too
            x, y = x.T, y.T
        offered = {"x": x, "y": y, "batch_size": len(x), "quiet": Keep(False), "train_flag": False,
                   "seed": self.seed, **hyper()}
        try:
            offered["loss_fn"] = Loss(self.student).ce  # for an evaluate(model, loss_fn, X, Y)
        except Exception:  # noqa: BLE001 - a loss that cannot be built: evaluate may not need it
            pass
        fn = next((getattr(self.net, n) for n in self.student.methods("mlp", "evaluate")
                   if callable(getattr(self.net, n, None))), None)
        order, overrides = ("x", "y"), self.student.args("mlp")
        if fn is None:
            fn = next((getattr(m, n) for m in self.student.modules() for n in names.MODULE_EVALUATE
                       if callable(getattr(m, n, None)) and not isinstance(getattr(m, n), type)
                       and takes_model(getattr(m, n))), None)
            offered, order, overrides = {**offered, "model": self.net}, ("model", "x", "y"), \
                self.student.args("module")
        if fn is None:
            return None, None
        try:
            binding = bind(fn, offered, order, overrides)
        except ProbeError as e:
            shown = ", ".join(p.name for p in params_of(fn))
            raise ProbeError(f"could not call {qualname(fn)}({shown}): {e}") from None
        return binding(), qualname(fn)


def own_list(obj, name):
    """What a zero-argument method such as model.parameters() returns, as a list; None when
    there is no such method or it wants arguments."""
    fn = getattr(obj, name, None)
    if not callable(fn) or any(p.default is p.empty for p in params_of(fn)):
        return None
    try:
        got = fn()
        return list(got) if got is not None else None
    except Exception:  # noqa: BLE001 - not a listing method after all
        return None


def walk_objects(obj):
    from .params import walk, walkable
    return [(p, v) for p, v in walk(obj, 2) if walkable(v) and not isinstance(v, (list, tuple, dict))]


def student_classes(student):
    """The classes the student's own modules define, graded module first."""
    out = []
    for m in student.modules():
        out += [v for _, v in sorted(vars(m).items()) if isinstance(v, type) and v.__module__ == m.__name__]
    return out


def optimizer_classes(student, layer_types):
    """Classes of the student's modules with an update method that are no layer or network."""
    mlp = student.cls("mlp") if student.roles.get("mlp") else None
    return [v for v in student_classes(student) if v is not mlp and not issubclass(v, layer_types)
            and has_method(v, names.UPDATE)]


__all__ = ["Network", "GraderNet", "describe"]
