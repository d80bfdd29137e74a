"""Finding the weight and bias arrays a student's objects hold, and planting the grader's.

Students keep parameters as attributes (self.W), in dicts (self.params['W1']), in small
parameter objects (self.W.value), in lists of layers (self.layers[0].W), or as raw arrays
of the network itself. `walk` visits all of these; a Path names where an array lives and
can read or replace it later, even after the student's code rebound it.
"""
import functools
import inspect
import re

import numpy as np

from .boundary import ProbeError

MAX_ITEMS = 64


class Path(tuple):
    """Steps from an object to a value: ('.', name), ('[]', index) or ('{}', key)."""

    def get(self, obj):
        for kind, key in self:
            obj = getattr(obj, key) if kind == "." else obj[key]
        return obj

    def set(self, obj, value):
        *head, (kind, key) = self
        owner = Path(head).get(obj)
        if kind == ".":
            setattr(owner, key, value)
        else:
            owner[key] = value

    def owner(self):
        return Path(self[:-1])

    def leaf(self):
        return str(self[-1][1]) if self else ""

    def __str__(self):
        out = ""
        for kind, key in self:
            out += f".{key}" if kind == "." else f"[{key!r}]"
        return out.lstrip(".")


def children(obj):
    """(step, value) for what an object holds: attributes, list items, dict entries."""
    if isinstance(obj, dict):
        return [(("{}", k), v) for k, v in list(obj.items())[:MAX_ITEMS] if isinstance(k, (str, int))]
    if isinstance(obj, (list, tuple)):
        return [(("[]", i), v) for i, v in enumerate(obj[:MAX_ITEMS])]
    out = []
    try:
        out = [((".", k), v) for k, v in list(vars(obj).items())[:MAX_ITEMS]]
    except TypeError:  # no __dict__: slots only, or a builtin
        pass
    for name in slot_names(type(obj)):  # attributes kept in __slots__
        try:
            out.append(((".", name), getattr(obj, name)))
        except AttributeError:
            continue
    return out


def slot_names(cls):
    """The __slots__ names a class and its bases declare (their own, not object's); a tuple,
    cached per class (asked for every object the parameter walk meets)."""
    try:
        return class_slots(cls)
    except TypeError:  # a metaclass that makes its classes unhashable
        return class_slots.__wrapped__(cls)


@functools.lru_cache(maxsize=1024)
def class_slots(cls):
    names = []
    for k in getattr(cls, "__mro__", ())[:-1]:
        slots = k.__dict__.get("__slots__", ())
        names += [slots] if isinstance(slots, str) else [n for n in slots if n not in ("__dict__", "__weakref__")]
    return tuple(names[:MAX_ITEMS])


def walkable(value):
    """Containers and the student's own objects; never classes, functions, modules or numpy."""
    if isinstance(value, (list, tuple, dict)):
        return True
    cls = type(value)
    module = cls.__module__ or ""
    if module == "builtins" or module.startswith("numpy") or isinstance(value, type) \
            or inspect.isroutine(value) or inspect.ismodule(value):
        return False
    return hasattr(value, "__dict__") or bool(slot_names(cls))


def walk(obj, depth=3, path=Path()):
    """Every (Path, value) reachable from obj within `depth` steps, each object once."""
    seen = {id(obj)}
    frontier = [(path, obj)]
    for _ in range(depth):
        nxt = []
        for p, o in frontier:
            for step, v in children(o):
                q = Path(p + (step,))
                yield q, v
                if id(v) not in seen and walkable(v):
                    seen.add(id(v))
                    nxt.append((q, v))
        frontier = nxt


def arrays(obj, depth=2):
    """Path -> ndarray for every float array an object holds (within `depth` steps)."""
    if depth == 1:  # a layer's own attributes, around each of its calls: no walk to set up
        return {Path((step,)): v for step, v in children(obj) if numeric_array(v)}
    return {p: v for p, v in walk(obj, depth) if numeric_array(v)}


def numeric_array(v):
    return isinstance(v, np.ndarray) and v.dtype.kind in "fiu" and v.ndim <= 2


def instances(obj, classes, depth=3):
    """(Path, label, instance) for every instance of the given classes reachable from obj."""
    found = []
    for p, v in walk(obj, depth):
        for label, cls in classes.items():
            if isinstance(v, cls):
                found.append((p, label, v))
                break
    return found


W_PREFERRED = re.compile(r"^(w|weights?|kernel|theta|w_?\d|weights?_?\d|value|data|val|param|w_?mat)$", re.I)
B_PREFERRED = re.compile(r"^(b|bias(es)?|b_?\d|bias(es)?_?\d|value|data|val|param|intercept)$", re.I)
# gradients, velocities and caches (dW, grad_W, vW, W_velocity, cache['W']): never a parameter
GRADISH = re.compile(r"((?-i:^d[A-Z_0-9])|^d(w|b|x|weights?|bias(es)?)\d*$|^[vmsg]_?(w|b|weights?|bias(es)?)\d*$|"
                     r"^[vmsg]_?d(w|b|weights?|bias(es)?)\d*$|"
                     r"^v_|(?-i:^v[A-Z])|^v$|^vel|"
                     r"^m_|^g_|grad|vel|mom|delta|prev|cache|old|update|change|^last|_v$|_m$|^s_|"
                     r"^acc|^sum|^mean|^best|^init|history)", re.I)
WORDS, CAMEL = re.compile(r"[_\W]+"), re.compile(r"(?<=[a-z0-9])(?=[A-Z])")  # outW -> out, w
# a layer's remembered input or output (self.x, self.out, self.z1): no parameter either
ACTIVATIONISH = re.compile(r"(^x|^inp|^out|^a$|^a_|^a\d|^z$|^z_|^z\d|^h$|^h_|^h\d|^mask|^act|^relu)", re.I)
NOT_PARAM_OWNER = re.compile(r"(grad|vel|mom|delta|cache|old|prev|optim|solver|history|best|"
                             r"init|saved|copy)", re.I)


def is_param_path(p):
    """Whether a path could hold a parameter (not a gradient, velocity, cache or copy)."""
    names = [str(key).lstrip("_") for kind, key in p if kind != "[]"]  # self._x is self.x
    if not names:
        return True
    leaf = names[-1]
    owners_ok = not any(NOT_PARAM_OWNER.search(n) for n in names[:-1])
    if leaf.lower() in ("value", "data", "val", "param", "params", "w", "b"):
        # W.value, params['W']: the owner's name decides (grads['W'] is no parameter)
        return owners_ok and not any(GRADISH.search(n) for n in names[-2:-1])
    weighty = set(WORDS.split(CAMEL.sub("_", leaf).lower())) & {
        "w", "weight", "weights", "kernel", "b", "bias", "biases"}
    # out_W, output_weights, input_weights: a weight, whatever layer its name mentions
    return owners_ok and not GRADISH.search(leaf) and bool(weighty or not ACTIVATIONISH.search(leaf))


def pick(cands, preferred):
    """The parameter among same-shaped arrays: a preferred name first (W, weights,
    params['W'], W.value), never one kept under a gradient or velocity name."""
    ranked = sorted(cands, key=lambda p: (not is_param_path(p), not preferred.match(p.leaf()),
                                          len(p), str(p)))
    return ranked[0] if ranked and is_param_path(ranked[0]) else None


def put(obj, path, value):
    """Set an array the student holds: in place when it is float64 of the same shape (so
    whoever else holds that very array, an optimizer keyed by id, sees it too), replaced
    otherwise (float32 and int arrays are upgraded for precision)."""
    try:
        old = path.get(obj)
    except (AttributeError, KeyError, IndexError, TypeError):
        old = None
    if isinstance(old, np.ndarray) and old.dtype == np.float64 and old.shape == value.shape \
            and old.flags.writeable:
        old[...] = value
    else:
        path.set(obj, value.copy())


def w_shapes(n_in, n_out):
    return {(n_in, n_out): "in_out", (n_out, n_in): "out_in"}


def b_shapes(n_out):
    return {(n_out,), (1, n_out), (n_out, 1)}


def plant_linear(layer, W, b, bias_row="last"):
    """Find a layer's weight and bias arrays by shape and set the grader's values into them.

    A layer with no bias of its own whose W has one extra row (a constant input column)
    gets b as that row, at the end or (bias_row="first") at the start. Other arrays of the
    same shapes (momentum buffers, stored gradients) are zeroed so an update starts from
    rest. Returns where the parameters live and in which layout.
    """
    n_in, n_out = W.shape
    found = arrays(layer)
    layouts = {**w_shapes(n_in, n_out), **{s: f"{l}+b" for s, l in w_shapes(n_in + 1, n_out).items()}}
    w_cands = [p for p, v in found.items() if v.shape in layouts]
    plain = [p for p in w_cands if "+b" not in layouts[found[p].shape]]
    w_path = pick(plain, W_PREFERRED) or pick(w_cands, W_PREFERRED)
    if w_path is None:
        held = ", ".join(f"{p} {v.shape}" for p, v in found.items()) or "no arrays at all"
        raise ProbeError(f"found no weight matrix of shape ({n_in}, {n_out}) or ({n_out}, "
                         f"{n_in}) in {type(layer).__name__} (it holds {held})")
    layout = layouts[found[w_path].shape]
    folded = layout.endswith("+b")
    layout = layout.replace("+b", "")
    full = W
    if folded:
        full = np.vstack([W, b.reshape(1, -1)] if bias_row == "last" else [b.reshape(1, -1), W])
    b_cands = [] if folded else [p for p, v in found.items() if v.shape in b_shapes(n_out) and p != w_path]
    b_path = pick(b_cands, B_PREFERRED)
    same = [p for p in w_cands if found[p].shape == found[w_path].shape]
    for p in same:
        put(layer, p, (full if layout == "in_out" else full.T) if p == w_path else np.zeros(found[p].shape))
    for p in b_cands:
        put(layer, p, b.reshape(found[p].shape) if p == b_path else np.zeros(found[p].shape))
    return {"W": str(w_path), "layout": layout, "b": str(b_path) if b_path else None,
            "b_shape": list(found[b_path].shape) if b_path else None,
            "folded": bias_row if folded else None, "_paths": (w_path, b_path)}


def public(where):
    """A plant_linear record without its Path objects (for JSON)."""
    return {k: v for k, v in where.items() if not k.startswith("_")}
