"""The timing probe: each layer against numpy doing the same work in the same process."""
import signal
import time

import numpy as np

from .boundary import ProbeError, describe, step
from .layer_probes import Layer, Loss, construct, linear_layer, loss_pass


PERF_COUNTER = time.perf_counter  # bound before any student code: patching time.* won't reach it


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


def time_linear(student, args, opts):
    x, W, b, g = (np.array(args[k], dtype=float) for k in ("linear_x", "linear_W", "linear_b", "linear_grad"))
    xc, Wc, bc, gc = x.copy(), W.copy(), b.copy(), g.copy()

    def calib_backward():
        gc @ Wc.T
        xc.T @ gc
        gc.sum(axis=0)

    for transposed in (False, True):
        layer, _, how = linear_layer(student, W, b, transposed)
        try:  # one untimed call finds the layout; the race replays the student's own call
            layer.forward(x.copy())
            break
        except Exception:
            if transposed or "W" not in how:
                raise
    forward = race(layer.forward_binding(x.copy()), lambda: xc @ Wc + bc, opts)
    backward = race(layer.backward_binding(g.copy(), x.copy()), calib_backward, opts)
    return {"forward": forward, "backward": backward, "shapes": {"x": list(x.shape), "W": list(W.shape)}}


def time_relu(student, args, opts):
    x, g = np.array(args["relu_x"], dtype=float), np.array(args["relu_grad"], dtype=float)
    xc, gc = x.copy(), g.copy()
    layer = Layer(construct(student.cls("relu"), student, "relu"), student, "relu")
    layer.forward(x.copy())
    forward = race(layer.forward_binding(x.copy()), lambda: np.maximum(xc, 0), opts)
    backward = race(layer.backward_binding(g.copy(), x.copy()), lambda: gc * (xc > 0), opts)
    return {"forward": forward, "backward": backward, "shapes": {"x": list(x.shape)}}


def time_loss(student, args, opts):
    z, y = np.array(args["loss_z"], dtype=float), np.array(args["loss_y"], dtype=float)
    zc, yc, n = z.copy(), y.copy(), len(z)
    loss = Loss(student)
    sig = loss.sig
    scratch = {}
    calls = loss_pass(loss, z, y, scratch)  # one untimed pass binds every call
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


def drawn(args):
    """The arrays the plan describes by shape (plan.timing_inputs), drawn from its seed."""
    r = np.random.default_rng(int(args.get("seed", 0)))
    out = {name: r.normal(0.0, float(scale), [int(k) for k in shape])
           for name, (shape, scale) in sorted(args.get("normal", {}).items())}
    for name, shape in sorted(args.get("labels", {}).items()):
        n = int(shape[0])
        out[name] = (np.arange(n) % 2).astype(float).reshape([int(k) for k in shape])
    return out


def probe_timing(student, args):
    """Raw timings of each layer's forward and backward against numpy calibration calls;
    each layer in its own step, under its own wall-clock limit, so one slow or broken
    layer leaves the others timed."""
    opts = {k: args[k] for k in ("repeats", "slow_s", "budget_s")}
    args = {**args, **drawn(args)}
    rec = {}
    for name, timer in TIMED:
        if not student.roles.get(name):
            continue
        try:
            with time_limit(args["limit_s"]):
                step(rec, name, lambda: timer(student, args, opts))
        except TooSlow as e:
            rec[name] = {"ok": False, "error": describe(e), "limit_s": args["limit_s"]}
    return rec
