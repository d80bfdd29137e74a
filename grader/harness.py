"""nngrader's in-sandbox harness: loads a submission and runs the probes the grader asks for.

Usage (from the box folder): python -I -S -B harness.py plan.json [LIBDIR ...]

It imports only the standard library and numpy, never the grader: it is copied alone into
each box. It judges nothing. Each probe runs in a child forked from this clean process
(numpy imported, student code never loaded here), under its own wall-clock limit; the
child loads the student's definitions, makes the calls and sends back *raw* observations
(returned values, array attributes, parameters after an update) as JSON through a pipe.
This process then writes them all to out/results.json. Arrays travel as
{"__ndarray__": shape, "dtype": ..., "data": [...]}; nothing is pickled.
"""
import functools
import inspect
import json
import os
import re
import select
import shutil
import signal
import sys
import time
import traceback
import warnings

np = None  # imported in main(), after LIBDIR is on sys.path
PERF_COUNTER = time.perf_counter  # bound before any student code: patching time.* won't reach it
MAX_PAYLOAD = 16 * 1024 * 1024
LR_NAMES = re.compile(r"^(lr|eta|alpha|learning_?rate|step_?size)$", re.I)
MOMENTUM_NAMES = re.compile(r"^(mu|beta|rho|gamma|mom|momentum|moment|momentum_?(rate|coef|factor))$", re.I)
L2_NAMES = re.compile(r"^(l2|l2_?penalty|l2_?reg|reg|reg_?(lambda|strength|rate)|lam|lamb|lambd|lambda_|weight_?decay|wd|decay|penalty|l2_?lambda|l2_?coef|regularization)$", re.I)
X_NAMES = re.compile(r"^(x|xs|inp|input|inputs|a|a_?prev|x_?in|data|z|logits|scores)$", re.I)
Y_NAMES = re.compile(r"^(y|ys|t|target|targets|label|labels|y_?true|y_?batch|gt|truth)$", re.I)
UPDATE_METHODS = ("update", "step", "update_params", "update_parameters", "update_weights",
                  "weight_update", "apply_gradients", "sgd", "sgd_update", "optimize")


class ProbeError(Exception):
    """The harness could not call the student's code the way it expected (not a crash)."""


# ---------------------------------------------------------------- boundary: JSON out

def encode(value, depth=0):
    """Turn what student code returned into plain JSON data, never trusting its type."""
    if depth > 4:
        return {"__repr__": "nested too deeply"}
    if value is None or isinstance(value, (bool, str)):
        return value if not isinstance(value, str) else value[:2000]
    if isinstance(value, (int, float)):
        return float(value) if isinstance(value, float) else int(value)
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf" or arr.size > 200_000:
            return {"__repr__": f"array of dtype {arr.dtype} and shape {arr.shape}"}
        return {"__ndarray__": list(arr.shape), "dtype": str(arr.dtype),
                "data": arr.astype(float).ravel().tolist()}
    if isinstance(value, (list, tuple)):
        return {"__seq__": type(value).__name__, "items": [encode(v, depth + 1) for v in value[:16]]}
    if isinstance(value, dict):
        return {"__dict__": {str(k)[:100]: encode(v, depth + 1) for k, v in list(value.items())[:32]}}
    return {"__repr__": f"object of type {type(value).__name__}"}


def describe(exc):
    """An exception as data: type, message, and the traceback frames of student files only."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if os.path.basename(f.filename) != "harness.py"]
    return {
        "type": type(exc).__name__,
        "message": str(exc)[:1000],
        "name": getattr(exc, "name", None) if isinstance(exc, NameError) else None,
        "frames": [{"file": os.path.basename(f.filename), "line": f.lineno, "function": f.name,
                    "code": (f.line or "")[:200]} for f in frames[-6:]],
        "probe_error": isinstance(exc, ProbeError),
    }


# ---------------------------------------------------------------- calling student code

def arr(data):
    # A fresh float64 array each time: student code may modify its inputs in place.
    return np.array(data, dtype=np.float64)


def required_params(fn):
    """Names of the required positional parameters of a bound callable (self excluded)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    return [p.name for p in params
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]


def all_params(fn):
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return []


def hyper_kwargs(fn, lr=0.0, momentum=0.0, l2=0.0):
    """Keyword values for the hyper-parameters a method names (learning rate, momentum, L2)."""
    out = {}
    for p in all_params(fn):
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            continue
        if LR_NAMES.match(p.name):
            out[p.name] = lr
        elif MOMENTUM_NAMES.match(p.name):
            out[p.name] = momentum
        elif L2_NAMES.match(p.name):
            out[p.name] = l2
    return out


def call_with(fn, named, hyper=None, order=()):
    """Call fn, filling each parameter by name from `named` (a list of (regex, value))."""
    args, kwargs = bind_with(fn, named, hyper, order)
    return fn(*args, **kwargs)


def bind_with(fn, named, hyper=None, order=()):
    """The (args, kwargs) call_with would pass: bound once, a call can be replayed cheaply.

    A required parameter whose name matches nothing takes the value at its position in
    `order`, the template's own order (e.g. x, y, lr, momentum, l2 for train), so an
    unusual name such as `gamma` for the momentum still gets the right value."""
    hyper = hyper or {}
    args, kwargs = [], {}
    positional_open = True
    for i, p in enumerate(all_params(fn)):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in hyper:
            kwargs[p.name] = hyper[p.name]
            positional_open = False
            continue
        value = next((v for rx, v in named if rx.match(p.name)), _MISSING)
        if value is _MISSING and p.default is p.empty and i < len(order):
            value = order[i]
        if value is _MISSING:
            if p.default is not p.empty:
                positional_open = False
                continue
            raise ProbeError(f"cannot tell what to pass for parameter '{p.name}' of "
                             f"{qualname(fn)}")
        if positional_open and p.kind != p.KEYWORD_ONLY:
            args.append(value)
        else:
            kwargs[p.name] = value
    return args, kwargs


_MISSING = object()


def qualname(fn):
    return getattr(fn, "__qualname__", getattr(fn, "__name__", "a method"))


def method(obj, *names):
    for name in names:
        m = getattr(obj, name, None)
        if callable(m):
            return m
    raise ProbeError(f"{type(obj).__name__} has no method {' or '.join(names)}")


def first_arg_call(fn, first, extra=(), hyper=None):
    """Call fn with `first` as its first required parameter and the rest filled by name."""
    args, kwargs = first_arg_bind(fn, first, extra, hyper)
    return fn(*args, **kwargs)


def first_arg_bind(fn, first, extra=(), hyper=None):
    req = required_params(fn) or []
    named = list(extra)
    if req:
        named = [(re.compile("^" + re.escape(req[0]) + "$"), first)] + named
    return bind_with(fn, named, hyper)


# ---------------------------------------------------------------- finding parameters

def array_attrs(obj):
    """Every ndarray the object holds: as an attribute, one dict level down ("params['W']"),
    or inside a small parameter object ("W.value", "W.grad")."""
    found = {}
    for name, value in list(vars(obj).items()):
        if isinstance(value, np.ndarray):
            found[name] = value
        elif isinstance(value, dict):
            for k, v in list(value.items())[:64]:
                if isinstance(v, np.ndarray) and isinstance(k, (str, int)):
                    found[f"{name}[{k!r}]"] = v
        elif hasattr(value, "__dict__") and not isinstance(value, type) and not callable(value):
            for k, v in list(vars(value).items())[:64]:
                if isinstance(v, np.ndarray):
                    found[f"{name}.{k}"] = v
    return found


def get_attr(obj, key):
    if "[" in key:
        name, k = key.split("[", 1)
        return getattr(obj, name)[parse_key(k[:-1])]
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def set_attr(obj, key, value):
    if "[" in key:
        name, k = key.split("[", 1)
        getattr(obj, name)[parse_key(k[:-1])] = value
        return
    *path, last = key.split(".")
    for part in path:
        obj = getattr(obj, part)
    setattr(obj, last, value)


def parse_key(text):
    # keys were written with repr() of a str or an int; read them back without eval
    if text[:1] in "'\"":
        return text[1:-1]
    return int(text)


W_PREFERRED = re.compile(r"^(w|weights?|kernel|\w+\['w'\]|\w+\[.weights?.\]|w\.(value|data|val|param))$", re.I)
B_PREFERRED = re.compile(r"^(b|bias(es)?|\w+\[.b.\]|\w+\[.bias.\]|b\.(value|data|val|param))$", re.I)
PARAM_LEAF = re.compile(r"^(value|values|data|val|param|w|b|weights?|bias(es)?)$", re.I)
NOT_PARAM = re.compile(r"(^d|^v|grad|vel|mom|delta|prev|cache|old|_v$|update|change|^m_|^g_)", re.I)


def pick(cands, preferred):
    """The parameter among same-shaped arrays: a preferred name first (W, weights,
    params['W'], W.value), but never one kept under a gradient or velocity name
    (grads['W'], dW, vW)."""
    names = sorted(cands)

    def plain(n):
        owner, leaf = n.split("[")[0].split(".")[0], n.split(".")[-1] if "." in n else ""
        return not NOT_PARAM.search(owner) and (not leaf or PARAM_LEAF.match(leaf)
                                                or not NOT_PARAM.search(leaf))

    plain = [n for n in names if plain(n)]
    for n in plain:
        if preferred.match(n):
            return n
    return (plain or names or [None])[0]


def put(obj, key, value):
    """Set an array the student holds: in place when it is float64 of the same shape, so
    whoever else holds that very array (an MLP's params dict, an optimizer keyed by id)
    sees the grader's values too; replaced otherwise (float32 is upgraded for precision)."""
    old = get_attr(obj, key)
    if isinstance(old, np.ndarray) and old.dtype == np.float64 and old.shape == value.shape \
            and old.flags.writeable:
        old[...] = value
    else:
        set_attr(obj, key, value)


def plant_linear(layer, W, b):
    """Find the layer's weight and bias arrays by shape and set the grader's values into them.

    Other arrays of the same shapes (momentum buffers, stored gradients) are zeroed so an
    update starts from rest. Returns where the parameters live and in which layout.
    """
    n_in, n_out = W.shape
    attrs = array_attrs(layer)
    w_cands = {k: v for k, v in attrs.items() if v.shape in ((n_in, n_out), (n_out, n_in))}
    b_cands = {k: v for k, v in attrs.items()
               if v.shape in ((n_out,), (1, n_out), (n_out, 1))}
    w_name = pick(w_cands, W_PREFERRED)
    if w_name is None:
        found = ", ".join(f"{k} {v.shape}" for k, v in attrs.items()) or "no arrays at all"
        raise ProbeError(f"found no weight matrix of shape ({n_in}, {n_out}) or ({n_out}, "
                         f"{n_in}) in {type(layer).__name__} (it holds {found})")
    layout = "in_out" if w_cands[w_name].shape == (n_in, n_out) else "out_in"
    b_name = pick({k: v for k, v in b_cands.items() if k != w_name}, B_PREFERRED)
    for k, v in w_cands.items():
        put(layer, k, (W if layout == "in_out" else W.T).copy() if k == w_name else np.zeros(v.shape))
    for k, v in b_cands.items():
        if k != w_name:
            put(layer, k, b.reshape(v.shape).copy() if k == b_name else np.zeros(v.shape))
    return {"W": w_name, "layout": layout, "b": b_name,
            "b_shape": list(b_cands[b_name].shape) if b_name else None}


DIM_IN = re.compile(r"(in|input|fan_?in|n_?in|d_?in|inp|dim_?in|in_?dim|num_?in|prev|size_?in|input_?size|input_?dims?)", re.I)
DIM_OUT = re.compile(r"(out|output|fan_?out|n_?out|d_?out|dim_?out|out_?dim|num_?out|units|hidden|size_?out|output_?size|output_?dims?|neurons|n_?units)", re.I)
ARRAY_PARAM = re.compile(r"^(w|weight|weights|W_?init|init_?w|b|bias|biases|b_?init|init_?b)$", re.I)


def construct_linear(cls, W, b, transposed=False):
    """Build the student's linear layer whatever its constructor takes: (W, b) or (in, out).

    With `transposed`, a constructor that takes arrays gets W as (out, in): a layer built
    from arrays cannot tell us its layout, so the caller retries this way when the first
    forward call fails.
    """
    n_in, n_out = W.shape
    req = required_params(cls) or []
    Wc = W.T.copy() if transposed else W.copy()
    if len(req) == 2 and all(ARRAY_PARAM.match(n) for n in req):
        attempts = [("(W.T, b)" if transposed else "(W, b)", lambda: cls(Wc, b.copy()))]
    elif len(req) == 2:
        attempts = [("(in_dims, out_dims)", lambda: cls(n_in, n_out)),
                    ("(W, b)", lambda: cls(Wc, b.copy()))]
    elif not req:
        attempts = [("()", lambda: cls())]
    else:
        named = [(DIM_IN, n_in), (DIM_OUT, n_out), (LR_NAMES, 0.0), (MOMENTUM_NAMES, 0.0),
                 (L2_NAMES, 0.0), (re.compile("^(w|weights?)$", re.I), W.copy()),
                 (re.compile("^(b|bias(es)?)$", re.I), b.copy())]
        attempts = [(f"({', '.join(req)})", lambda: call_with(cls, named))]
    errors = []
    for how, make in attempts:
        try:
            layer = make()
            return layer, how, plant_linear(layer, W, b)
        except ProbeError as e:
            errors.append(str(e))
        except Exception as e:  # a constructor convention that does not fit: try the next
            errors.append(f"{cls.__name__}{how} raised {type(e).__name__}: {e}")
    raise ProbeError("could not build the linear layer: " + "; ".join(errors))


# ---------------------------------------------------------------- probes

def step(record, name, fn):
    """Run one step of a probe, recording its value or its exception under `name`."""
    caught = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with np.errstate(all="warn"):
                value = fn()
        record[name] = {"ok": True, "value": encode(value)}
        ok = True
    except Exception as e:
        record[name] = {"ok": False, "error": describe(e)}
        value, ok = None, False
    if caught:
        record[name]["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})[:5]
    return value, ok


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


def loss_call(fn, z, y, upstream=None):
    """Call a loss method whatever order it takes logits, labels and the upstream gradient."""
    args, kwargs = loss_bind(fn, z, y, upstream)
    return fn(*args, **kwargs)


def loss_bind(fn, z, y, upstream=None):
    """The (args, kwargs) loss_call passes, worked out once from fn's parameter names."""
    z, y = (None if z is None else np.array(z)), np.array(y)  # copies: inputs may be modified
    req = required_params(fn) or []
    named = [(Y_NAMES, y), (re.compile(r"^(grad|grad_?out(put)?|dout|upstream|g|dl|delta)$", re.I), upstream),
             (X_NAMES, z), (re.compile(r"^(pred|preds|prediction|predictions|output|out|y_?hat|yhat|p|prob|probs|s|sig)$", re.I), z)]
    if len(req) == 1 and not any(rx.match(req[0]) for rx, _ in named):
        return [y if upstream is not None or z is None else z], {}
    if len(req) == 2 and not all(any(rx.match(n) for rx, _ in named) for n in req):
        return ([z, y] if upstream is None else [upstream, y]), {}
    return bind_with(fn, [(rx, v) for rx, v in named if v is not None] +
                     [(rx, v) for rx, v in named if v is None], hyper_kwargs(fn))


def bound_step(record, name, bind):
    """step() for a call worked out first: `bind()` gives (fn, args, kwargs). Returns the
    value, whether it worked, and the bound call (to replay it, e.g. for timing) or None."""
    calls = []

    def run():
        fn, args, kwargs = bind()
        calls.append(lambda: fn(*args, **kwargs))
        return calls[0]()

    value, ok = step(record, name, run)
    return value, ok, (calls[0] if ok and calls else None)


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


class TooSlow(BaseException):
    """A layer ran past its time limit in the timing probe. A BaseException, so neither
    step() nor a student's `except Exception` swallows it."""


class time_limit:
    """Raise TooSlow in whatever Python code runs when `seconds` of wall time have passed."""

    def __init__(self, seconds):
        self.seconds = seconds

    def __enter__(self):
        def ring(signum, frame):
            raise TooSlow(f"still running after {self.seconds:g} s")
        self.previous = signal.signal(signal.SIGALRM, ring)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous)
        return False


def clock(fn):
    start = PERF_COUNTER()
    fn()
    return PERF_COUNTER() - start


def race(student, calibration, opts):
    """Seconds per call of the student's bound call and of a numpy calibration call of the
    same shapes, interleaved (calibration first in each round) so both see the same machine.

    Up to `repeats` rounds; it stops early once two student calls each took over `slow_s`
    or the student's calls add up to `budget_s` (never on one sample: a single call can be
    slow only because the process was preempted). The first student call also warms up.
    """
    student_s, calib_s = [], []
    while len(student_s) < opts["repeats"]:
        calib_s.append(clock(calibration))
        student_s.append(clock(student))
        if len(student_s) >= 2 and (min(student_s) > opts["slow_s"] or sum(student_s) > opts["budget_s"]):
            break
    return {"student_s": student_s, "calibration_s": calib_s}


def chain(calls):
    if len(calls) == 1:
        return calls[0]

    def run():
        for c in calls:
            c()
    return run


def time_linear(roles, args, opts):
    cls = role_class(roles, "linear")
    x, W, b, g = arr(args["linear_x"]), arr(args["linear_W"]), arr(args["linear_b"]), arr(args["linear_grad"])
    xc, Wc, bc, gc = x.copy(), W.copy(), b.copy(), g.copy()

    def calib_backward():
        gc @ Wc.T
        xc.T @ gc
        gc.sum(axis=0)

    for transposed in (False, True):
        layer, how, _ = construct_linear(cls, W, b, transposed)
        fwd = method(layer, "forward", "__call__", "fprop")
        fargs, fkw = first_arg_bind(fwd, x.copy())
        try:  # the first student call of the race is the one that may fail
            forward = race(lambda: fwd(*fargs, **fkw), lambda: xc @ Wc + bc, opts)
            break
        except Exception:
            if transposed or how != "(W, b)":
                raise
    bwd = method(layer, "backward", "bprop", "backprop")
    bargs, bkw = first_arg_bind(bwd, g.copy(), [(X_NAMES, x.copy())], hyper_kwargs(bwd))
    backward = race(lambda: bwd(*bargs, **bkw), calib_backward, opts)
    return {"forward": forward, "backward": backward, "shapes": {"x": list(x.shape), "W": list(W.shape)}}


def time_relu(roles, args, opts):
    x, g = arr(args["relu_x"]), arr(args["relu_grad"])
    xc, gc = x.copy(), g.copy()
    layer = role_class(roles, "relu")()
    fwd = method(layer, "forward", "__call__")
    fargs, fkw = first_arg_bind(fwd, x.copy())
    forward = race(lambda: fwd(*fargs, **fkw), lambda: np.maximum(xc, 0), opts)
    bwd = method(layer, "backward", "bprop", "backprop")
    bargs, bkw = first_arg_bind(bwd, g.copy(), [(X_NAMES, x.copy())], hyper_kwargs(bwd))
    backward = race(lambda: bwd(*bargs, **bkw), lambda: gc * (xc > 0), opts)
    return {"forward": forward, "backward": backward, "shapes": {"x": list(x.shape)}}


def time_loss(roles, args, opts):
    z, y = arr(args["loss_z"]), arr(args["loss_y"])
    zc, yc, n = z.copy(), y.copy(), len(z)
    sig, ce = loss_objects(roles)
    scratch = {}
    calls = loss_pass(sig, ce, z, y, scratch)  # one untimed pass binds every call
    if calls is None:
        name, rec = next(((k, v) for k, v in scratch.items() if isinstance(v, dict) and not v.get("ok")),
                         ("forward", {}))
        err = rec.get("error") or {}
        raise ProbeError(f"the loss could not be called for timing: its {name} step raised "
                         f"{err.get('type', 'an error')}: {err.get('message', '')}")

    def calib_forward():
        s = 1.0 / (1.0 + np.exp(-zc))
        return -np.mean(yc * np.log(s) + (1.0 - yc) * np.log(1.0 - s))

    s0 = 1.0 / (1.0 + np.exp(-zc))
    if sig is None:
        def calib_backward():
            return (s0 - yc) / n
    else:  # mirror the student's two backward calls: cross-entropy, then sigmoid
        def calib_backward():
            d = (-(yc / s0) + (1.0 - yc) / (1.0 - s0)) / n
            return d * s0 * (1.0 - s0)
    forward = race(chain(calls["forward"]), calib_forward, opts)
    backward = race(chain(calls["backward"]), calib_backward, opts)
    return {"forward": forward, "backward": backward, "split": sig is not None,
            "shapes": {"z": list(z.shape)}}


TIMED = (("linear", time_linear), ("relu", time_relu), ("loss", time_loss))


def probe_timing(roles, args):
    """Raw timings of each layer's forward and backward against numpy calibration calls;
    each layer in its own step, under its own wall-clock limit, so one slow or broken
    layer leaves the others timed."""
    opts = {k: args[k] for k in ("repeats", "slow_s", "budget_s")}
    rec = {}
    for name, timer in TIMED:
        if not roles.get(name):
            continue
        try:
            with time_limit(args["limit_s"]):
                step(rec, name, lambda: timer(roles, args, opts))
        except TooSlow as e:
            rec[name] = {"ok": False, "error": describe(e), "limit_s": args["limit_s"]}
    return rec




def role_class(roles, role):
    ref = roles.get(role)
    if not ref:
        raise ProbeError(f"no class plays the {role} role")
    return resolve(ref)


def resolve(ref):
    """'module:Class' -> the class, importing the student's module on first use."""
    import importlib
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


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


def probe_train(roles, args):
    """The student's own MLP and train method on a small task, one run per seed; the loss
    the loss layer saw and the logits of every epoch are returned for judging.

    Budget rules only (the grader re-judges every curve): a run stops once every sample has
    been on the right side for `patience` epochs, when its loss is no longer finite, or when
    it has not improved for `stall` epochs; seeds stop once `required` runs have separated
    the data or too few are left to get there."""
    X, Y = arr(args["x"]), arr(args["y"])
    lr = args["lr"] / len(X) if loss_sums(roles, len(X)) else args["lr"]
    required, seeds = int(args.get("required", len(args["seeds"]))), list(args["seeds"])
    runs, good = [], 0
    for i, seed in enumerate(seeds):
        if good >= required or good + (len(seeds) - i) < required:
            break
        run = train_run(roles, X, Y, seed, lr, args)
        good += bool(run.get("separated"))
        runs.append(run)
    return {"runs": runs, "lr_used": lr}


def train_run(roles, X, Y, seed, lr, args):
    run = {"seed": seed, "loss": [], "returned": [], "logits": [], "order": [], "hyper": None}
    try:
        hidden = int(args["hidden"])
        net = Network(roles, X.shape[1], hidden, seed)
        W1 = get_attr(net.order[1], pick_weight(net.order[1], X.shape[1], hidden))
        run["init"] = {"w1_std": float(np.std(W1)), "w1_symmetric": bool(np.allclose(W1, W1.flat[0]))}
        streak, best, since = 0, np.inf, 0
        for _ in range(int(args["max_epochs"])):
            s = net.step(X, Y, lr, args["momentum"], args.get("l2", 0.0))
            run["loss"].append(s["loss"])
            run["returned"].append(s["returned"])
            run["logits"].append(s["logits"])
            run["order"].append(s["order"] if s["order"] != list(range(len(Y))) else None)
            run["hyper"] = s["hyper"]
            labels = Y[s["order"]] if s["order"] else Y
            streak = streak + 1 if separates(net.captured_logits(), labels) else 0
            total = total_of(net.captured_loss())
            if streak >= int(args.get("patience", 10)) or not np.isfinite(total):
                break
            best, since = (total, 0) if total < best * (1 - 1e-3) else (best, since + 1)
            if since >= int(args.get("stall", 150)):
                break
        run["separated"] = streak > 0
        run["ok"] = True
    except Exception as e:
        run.update(ok=False, error=describe(e))
    return run


def total_of(loss):
    try:
        v = np.asarray(loss[0] if isinstance(loss, tuple) else loss, dtype=float)
        return float(v.sum())
    except (TypeError, ValueError):
        return np.inf


def loss_sums(roles, n):
    """Whether the loss adds up over the batch rather than averaging: such a loss needs a
    learning rate N times smaller for the same step, so the rubric's rate is divided by N.
    (An adapter decision, like reading a signature: nothing is judged here.)"""
    try:
        z = np.linspace(-1.0, 1.0, n).reshape(n, 1)
        y = (np.arange(n) % 2).reshape(n, 1).astype(float)
        totals = []
        for k in (1, 2):
            v = student_loss(*loss_objects(roles), np.vstack([z] * k), np.vstack([y] * k))
            v = np.asarray(v[0] if isinstance(v, tuple) else v, dtype=float)
            totals.append(float(v.sum()) if v.size > 1 else float(v))
        return v.size == 1 and abs(totals[1] - 2 * totals[0]) < 1e-6 * abs(totals[1])
    except Exception:
        return False


def pick_weight(layer, d_in, hidden):
    for name, v in array_attrs(layer).items():
        if v.shape in ((d_in, hidden), (hidden, d_in)) and not NOT_PARAM.search(name):
            return name
    raise ProbeError("no first-layer weight matrix found")


def separates(logits, y):
    """Early-stopping rule only (the grader re-judges): every sample on the right side."""
    if not isinstance(logits, np.ndarray) or logits.size != y.size:
        return False
    return bool(np.all((logits.reshape(y.shape) > 0) == (y > 0.5)))


PROBES = {
    "linear": probe_linear,
    "relu": probe_relu,
    "loss": probe_loss,
    "loss_sanity": probe_loss_sanity,
    "timing": probe_timing,
    "gradcheck": probe_gradcheck,
    "update": probe_update,
    "train": probe_train,
}


# ---------------------------------------------------------------- process plumbing

# Set by the namespace and Docker sandboxes: every process of this uid in this PID
# namespace belongs to this submission, so kill(-1) reaches exactly its processes.
SOLE_UID = os.environ.get("NNGRADER_SOLE_UID") == "1" and os.getuid() != 0


def end_leftovers():
    """Kill what earlier probes left running (setsid daemons, forks): each probe starts
    clean, and no student process is alive while the results are written."""
    if not SOLE_UID:
        return
    for _ in range(100):
        try:
            os.kill(-1, signal.SIGKILL)  # never ourselves; PID 1 is not ours to signal
        except ProcessLookupError:
            return
        time.sleep(0.002)  # killed processes still count until PID 1 has reaped them


def clear_scratch(plan_path):
    """Remove everything student code may have written in the box and in TMPDIR."""
    import shutil
    keep = {"harness.py", os.path.basename(plan_path), "src"}
    for top in (".", os.environ.get("TMPDIR", "/tmp")):
        try:
            names = os.listdir(top)
        except OSError:
            continue
        for name in names:
            path = os.path.join(top, name)
            if top == "." and name in keep:
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass


def fork_retrying(tries=20):
    """os.fork(), waiting a little while the process limit is full of dying leftovers."""
    for _ in range(tries):
        try:
            return os.fork()
        except BlockingIOError:
            end_leftovers()
            time.sleep(0.05)
    return None


def exited(pid):
    """Whether the child has ended, without reaping it."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info is not None and info.si_pid == pid


def drain(fd, room):
    """What is already in the pipe, without waiting for an EOF that may never come."""
    os.set_blocking(fd, False)
    chunks = []
    while room > 0:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk[:room])
        room -= len(chunk)
    return chunks

def apply_limits(limits):
    import resource
    mb = 1024 * 1024
    for res, value in ((resource.RLIMIT_AS, limits.get("memory_mb", 0) * mb),
                       (resource.RLIMIT_CPU, int(limits.get("cpu_s", 0))),
                       (resource.RLIMIT_FSIZE, limits.get("file_size_mb", 0) * mb),
                       (resource.RLIMIT_NOFILE, limits.get("open_files", 0)),
                       (resource.RLIMIT_NPROC, limits.get("processes", 0)),
                       (resource.RLIMIT_CORE, 0)):
        if value or res == resource.RLIMIT_CORE:
            soft, hard = resource.getrlimit(res)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            cpu_hard = value + 1 if res == resource.RLIMIT_CPU else value
            if hard != resource.RLIM_INFINITY:
                cpu_hard = min(cpu_hard, hard)
            try:
                resource.setrlimit(res, (value, cpu_hard))
            except (ValueError, OSError):
                pass  # the outer sandbox may already hold a lower limit


def load_student(plan):
    """Import the graded module first, so an error at import time is reported as such."""
    sys.path.insert(0, os.path.abspath(plan["src_dir"]))
    sys.argv = [plan["module"] + ".py"]
    import importlib
    importlib.import_module(plan["module"])


def child(probe, plan, wfd):
    """In the forked child: load the student's definitions, run one probe, send its record."""
    os.setpgid(0, 0)  # its own group, so a timeout kills whatever it started
    np.random.seed(plan.get("seed", 0))
    try:
        os.chdir(plan["work_dir"])
        load_student(plan)
        payload = {"status": "ok", "value": PROBES[probe["kind"]](plan["roles"], probe.get("args", {}))}
    except BaseException as e:  # SystemExit and KeyboardInterrupt from student code too
        payload = {"status": "error", "error": describe(e)}
    try:
        data = json.dumps(payload, allow_nan=True).encode()
    except Exception as e:
        data = json.dumps({"status": "error", "error": {"type": type(e).__name__,
                          "message": "the probe's result could not be encoded", "frames": []}}).encode()
    view = memoryview(data)
    while view:
        view = view[os.write(wfd, view):]
    os._exit(0)


def run_probe(probe, plan):
    rfd, wfd = os.pipe()
    start = time.monotonic()
    pid = fork_retrying()
    if pid is None:  # the process limit is still full of an earlier probe's leftovers
        for fd in (rfd, wfd):
            os.close(fd)
        return {"status": "error", "elapsed_s": time.monotonic() - start, "error": {
            "type": "ProcessLimit", "message": "the harness could not start this check: "
            "the process limit was still used up by processes an earlier check left behind",
            "frames": []}}
    if pid == 0:
        os.close(rfd)
        try:
            child(probe, plan, wfd)
        finally:
            os._exit(70)
    os.close(wfd)
    chunks, size, deadline = [], 0, start + float(probe.get("timeout_s", 10))
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([rfd], [], [], min(left, 0.05))
        if not ready:
            if exited(pid):  # a process it left behind may hold the pipe open: no EOF
                chunks += drain(rfd, MAX_PAYLOAD - size)
                break
            continue
        chunk = os.read(rfd, 1 << 16)
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_PAYLOAD:
            timed_out = None  # oversized
            break
        chunks.append(chunk)
    os.close(rfd)
    for target in (-pid, pid):
        try:
            os.kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    _, status = os.waitpid(pid, 0)
    elapsed = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    if timed_out:
        return {"status": "timeout", "elapsed_s": elapsed, "limit_s": probe.get("timeout_s", 10)}
    if timed_out is None:
        return {"status": "error", "elapsed_s": elapsed, "error": {
            "type": "OutputTooLarge", "message": "the probe's result exceeded 16 MB", "frames": []}}
    try:
        payload = json.loads(b"".join(chunks))
    except ValueError:
        payload = None
    if not isinstance(payload, dict):  # whatever reached the pipe was not our record
        return {"status": "crash", "elapsed_s": elapsed, "exit_code": code}
    payload["elapsed_s"] = elapsed
    return payload


def main():
    global np
    plan_path, libdirs = sys.argv[1], sys.argv[2:]
    sys.path[:0] = libdirs
    with open(plan_path) as f:
        plan = json.load(f)
    for key in ("src_dir", "work_dir"):  # children chdir into work_dir: fix paths first
        plan[key] = os.path.abspath(plan[key])
    apply_limits(plan.get("limits", {}))
    import numpy
    import numpy.random  # lazy in numpy 2: imported here once (~8 ms), not in every child
    np = numpy
    os.makedirs(plan["work_dir"], exist_ok=True)
    shutil.rmtree("out", ignore_errors=True)  # only what this run writes can be read back
    os.makedirs("out", exist_ok=True)
    results = {"harness": "nngrader", "probes": {}}
    for probe in plan["probes"]:
        end_leftovers()
        results["probes"][probe["id"]] = run_probe(probe, plan)
    end_leftovers()  # nothing of the student's may touch out/ from here on
    if SOLE_UID:
        clear_scratch(plan_path)  # forged files in out/, a full disk: the results need room
    os.makedirs("out", exist_ok=True)
    tmp = os.path.join("out", ".results.json.tmp")
    with open(tmp, "w") as f:
        json.dump(results, f, allow_nan=True)
    os.replace(tmp, os.path.join("out", "results.json"))


if __name__ == "__main__":
    main()
