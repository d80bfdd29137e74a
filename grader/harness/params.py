"""Finding the weight and bias arrays a student's object holds, and planting the grader's."""
import re

import numpy as np

from .boundary import ProbeError
from .calling import L2_NAMES, LR_NAMES, MOMENTUM_NAMES, call_with, required_params


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


def pick_weight(layer, d_in, hidden):
    for name, v in array_attrs(layer).items():
        if v.shape in ((d_in, hidden), (hidden, d_in)) and not NOT_PARAM.search(name):
            return name
    raise ProbeError("no first-layer weight matrix found")
