"""Calling student code: fitting a call to whatever parameters a method declares."""
import importlib
import inspect
import re

import numpy as np

from .boundary import ProbeError


LR_NAMES = re.compile(r"^(lr|eta|alpha|learning_?rate|step_?size)$", re.I)


MOMENTUM_NAMES = re.compile(r"^(mu|beta|rho|gamma|mom|momentum|moment|momentum_?(rate|coef|factor))$", re.I)


L2_NAMES = re.compile(r"^(l2|l2_?penalty|l2_?reg|reg|reg_?(lambda|strength|rate)|lam|lamb|lambd|lambda_|weight_?decay|wd|decay|penalty|l2_?lambda|l2_?coef|regularization)$", re.I)


X_NAMES = re.compile(r"^(x|xs|inp|input|inputs|a|a_?prev|x_?in|data|z|logits|scores)$", re.I)


Y_NAMES = re.compile(r"^(y|ys|t|target|targets|label|labels|y_?true|y_?batch|gt|truth)$", re.I)


UPDATE_METHODS = ("update", "step", "update_params", "update_parameters", "update_weights",
                  "weight_update", "apply_gradients", "sgd", "sgd_update", "optimize")


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


def role_class(roles, role):
    ref = roles.get(role)
    if not ref:
        raise ProbeError(f"no class plays the {role} role")
    return resolve(ref)


def resolve(ref):
    """'module:Class' -> the class, importing the student's module on first use."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)
