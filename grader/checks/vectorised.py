"""Vectorisation (tip 6): is each layer written with whole-array operations?

Two kinds of evidence, either one enough to fail:

- timing: the `timing` probe ran each layer's forward and backward at a batch of 512,
  interleaved with numpy calibration calls of the same shapes in the same process
  (x @ W + b; g @ W.T, x.T @ g, g.sum(0) for the linear layer), and returned the raw
  seconds. Here the minimum of each is taken and the layer's forward + backward is compared
  with the calibration's: a ratio above the rubric's threshold fails.
- source: the layer class's methods (definitions-only sources, parsed here, never run)
  loop over the batch (`for i in range(x.shape[0])`, `range(len(x))`, `for row in x`,
  `range(n)` after `n = x.shape[0]`, `map(f, x)`), nest one loop in another, or hide a
  Python loop in np.vectorize / np.frompyfunc / np.apply_along_axis.
"""
from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass

from ..observe import step
from .. import load, pyparse
from .base import Context, Verdict, exception_verdict, probe_failure, rename
from .families import DESCRIBE
from .network import stubs

PROBE = "timing"
CALIBRATION = {
    "linear": "x @ W + b forward; g @ W.T, x.T @ g and g.sum(0) backward",
    "relu": "np.maximum(x, 0) forward; g * (x > 0) backward",
    "loss": "sigmoid + cross-entropy in a few numpy calls forward; (sigmoid(z) - y) / N backward",
}
SKIP_METHODS = {"__init__", "__repr__", "__str__", "__getstate__", "__setstate__"}
HYPER = re.compile(r"^(self|cls|lr|eta|alpha|learning_?rate|step_?size|mu|beta|rho|momentum|"
                   r"moment|l2\w*|reg|lam\w*|weight_?decay|wd|decay|penalty|eps\w*|epsilon|"
                   r"training|train|verbose|debug|axis|dims?|size|n_\w+|in_\w+|out_\w+)$", re.I)


@dataclass(frozen=True)
class Loop:
    file: str
    line: int
    method: str            # Class.method
    kind: str              # "batch" | "nested" | "batch, nested"
    code: str

    def describe(self) -> str:
        what = {"batch": "loops over the batch", "nested": "nests one loop in another",
                "batch, nested": "loops over the batch with a loop nested inside",
                "hidden": "runs a Python function once per entry"}[self.kind]
        return f"{self.method} {what} (line {self.line}: `{self.code}`)"


# ---------------------------------------------------------------- source: loops

def parse(source: str) -> ast.Module | None:
    """The tree of code the box ran, as loading parsed it (the same cache)."""
    try:
        return load.parse(source, load.KEPT)
    except (SyntaxError, ValueError):
        return None


def role_class_names(ctx: Context, role: str) -> list[str]:
    name = ctx.roles.get(role)
    return [n for n in (name if isinstance(name, list) else [name]) if n]


def class_loops(ctx: Context, role: str) -> list[Loop]:
    """Batch loops and nested loops in the methods of the classes playing `role`."""
    wanted = set(role_class_names(ctx, role))
    where = {c.name: c.source_file for c in ctx.submission.classes}
    found: list[Loop] = []
    for fname, source in ctx.submission.files.items():
        if not any(where.get(n) == fname for n in wanted):
            continue
        tree = parse(source)
        if tree is None:
            continue
        lines = source.splitlines()
        last = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
        for name in sorted(wanted & set(last)):  # the last definition, as Python binds it
            found += loops_in_class(last[name], rename(ctx, fname), lines)
    return found


def loops_in_class(cls: ast.ClassDef, fname: str, lines: list[str]) -> list[Loop]:
    methods = [m for m in cls.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))
               and m.name not in SKIP_METHODS]
    data_attrs = set()  # self.<attr> holding a batch: self.x = x, self.mask = x > 0, ...
    for m in methods:
        params = data_params(m)
        for node in pyparse.nodes(m):
            if isinstance(node, ast.Assign) and batch_shaped(node.value, params):
                data_attrs |= {t.attr for t in node.targets if is_self_attr(t)}
    out = []
    for m in methods:
        out += loops_in_method(m, f"{cls.name}.{m.name}", data_params(m), data_attrs, fname, lines)
    return out


ELEMENTWISE = {"copy", "astype", "reshape", "array", "asarray", "atleast_2d", "maximum", "minimum",
               "where", "clip", "exp", "log", "abs", "sign", "tanh", "ravel", "squeeze"}


def batch_shaped(expr, params: set[str]) -> bool:
    """An expression keeping the batch axis of a data argument: x, x.copy(), x > 0,
    np.maximum(x, 0), x * mask. Products (x.T @ g, np.dot) and reductions do not count."""
    if isinstance(expr, ast.Name):
        return expr.id in params
    if isinstance(expr, ast.Subscript):
        return batch_shaped(expr.value, params)
    if isinstance(expr, ast.BinOp):
        return not isinstance(expr.op, ast.MatMult) and (batch_shaped(expr.left, params)
                                                         or batch_shaped(expr.right, params))
    if isinstance(expr, ast.UnaryOp):
        return batch_shaped(expr.operand, params)
    if isinstance(expr, ast.Compare):
        return batch_shaped(expr.left, params) or any(batch_shaped(c, params) for c in expr.comparators)
    if isinstance(expr, ast.Call):
        f = expr.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        if name not in ELEMENTWISE:
            return False
        if isinstance(f, ast.Attribute) and batch_shaped(f.value, params):
            return True  # x.copy(), x.astype(float)
        return bool(expr.args) and batch_shaped(expr.args[0], params)
    return False


def data_params(fn) -> set[str]:
    args = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
    return {a.arg for a in args if not HYPER.match(a.arg)}


def is_self_attr(node) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"


def is_data(expr, params: set[str], attrs: set[str]) -> bool:
    """x, self.x, x[...] (a batch array or a slice of one)."""
    while isinstance(expr, ast.Subscript):
        expr = expr.value
    if isinstance(expr, ast.Name):
        return expr.id in params
    return is_self_attr(expr) and expr.attr in attrs


def batch_size_expr(expr, params, attrs, sizes: set[str]) -> bool:
    """x.shape[0], len(x), x.shape[0] - 1, n (a name bound to one of those)."""
    for node in ast.walk(expr):
        if isinstance(node, ast.Name) and node.id in sizes:
            return True
        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
                and node.value.attr == "shape" and is_data(node.value.value, params, attrs)
                and isinstance(node.slice, ast.Constant) and node.slice.value == 0):
            return True
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len"
                and node.args and is_data(node.args[0], params, attrs)):
            return True
    return False


def batch_size_names(fn, params, attrs) -> set[str]:
    """Names bound to the batch size: n = x.shape[0]; n, d = x.shape; n, k = len(x), 3."""
    sizes: set[str] = set()
    for node in pyparse.nodes(fn):
        if not isinstance(node, ast.Assign):
            continue
        for t in node.targets:
            if isinstance(t, ast.Name) and batch_size_expr(node.value, params, attrs, sizes):
                sizes.add(t.id)
            elif isinstance(t, ast.Tuple) and t.elts and isinstance(t.elts[0], ast.Name):
                v = node.value
                if isinstance(v, ast.Attribute) and v.attr == "shape" and is_data(v.value, params, attrs):
                    sizes.add(t.elts[0].id)  # n, d = x.shape
                elif isinstance(v, ast.Tuple) and len(v.elts) == len(t.elts):
                    for tt, vv in zip(t.elts, v.elts):
                        if isinstance(tt, ast.Name) and batch_size_expr(vv, params, attrs, sizes):
                            sizes.add(tt.id)
    return sizes


def is_batch_iter(it, params, attrs, sizes) -> bool:
    if is_data(it, params, attrs):
        return True  # for row in x
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Name):
        if it.func.id == "range":
            return any(batch_size_expr(a, params, attrs, sizes) for a in it.args)
        if it.func.id in ("enumerate", "zip", "reversed", "list", "tuple", "iter"):
            return any(is_batch_iter(a, params, attrs, sizes) for a in it.args)
        if it.func.id == "map":  # map(f, x): a loop over the rows of x
            return any(is_batch_iter(a, params, attrs, sizes) for a in it.args[1:])
    return False


LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def loop_iters(node) -> list:
    if isinstance(node, (ast.For, ast.AsyncFor)):
        return [node.iter]
    if isinstance(node, ast.While):
        return []
    return [g.iter for g in node.generators]


HIDDEN_LOOPS = {"vectorize", "frompyfunc", "apply_along_axis", "apply_over_axes"}


def called_name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def outermost_loops(node):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, LOOPS):
            yield child
        elif not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            yield from outermost_loops(child)


def loops_in_method(fn, qual, params, attrs, fname, lines) -> list[Loop]:
    """Each outermost loop that runs over the batch, or holds another loop, reported once at
    its own line (a batch loop nested inside an innocent loop counts for the outer one)."""
    sizes = batch_size_names(fn, params, attrs)
    out = []
    for node in pyparse.nodes(fn):  # loops in disguise: np.vectorize(f)(x), map(f, x), ...
        if isinstance(node, ast.Call) and (called_name(node) in HIDDEN_LOOPS or (
                called_name(node) == "map" and is_batch_iter(node, params, attrs, sizes))):
            code = lines[node.lineno - 1].strip() if node.lineno <= len(lines) else ""
            out.append(Loop(fname, node.lineno, qual, "hidden", code[:120]))
    for loop in outermost_loops(fn):
        inner = [n for n in ast.walk(loop) if isinstance(n, LOOPS)]
        kinds = set()
        if any(is_batch_iter(it, params, attrs, sizes) for n in inner for it in loop_iters(n)):
            kinds.add("batch")
        if len(inner) > 1 or len(getattr(loop, "generators", ())) > 1:
            kinds.add("nested")
        if kinds:
            code = lines[loop.lineno - 1].strip() if loop.lineno <= len(lines) else ""
            out.append(Loop(fname, loop.lineno, qual, ", ".join(sorted(kinds)), code[:120]))
    return out


# ---------------------------------------------------------------- timing

def fastest(value) -> float | None:
    """The minimum of a list of seconds from the probe (None when unusable)."""
    if not isinstance(value, (list, tuple)):
        return None
    xs = [float(v) for v in value if isinstance(v, float) and math.isfinite(v) and v >= 0]
    return min(xs) if xs else None


def timing_of(rec) -> dict | None:
    """{forward: (student_s, calib_s, n), backward: ..., ratio} from a layer's raw timings."""
    if not isinstance(rec, dict):
        return None
    out = {}
    for d in ("forward", "backward"):
        r = rec.get(d)
        if not isinstance(r, dict):
            return None
        s, c = fastest(r.get("student_s")), fastest(r.get("calibration_s"))
        if s is None or c is None or c <= 0:
            return None
        out[d] = (s, c, len(r.get("student_s")))
    out["ratio"] = (out["forward"][0] + out["backward"][0]) / (out["forward"][1] + out["backward"][1])
    return out


# ---------------------------------------------------------------- the checks

def judge_layer(ctx: Context, role: str, check_id: str) -> Verdict:
    names = role_class_names(ctx, role)
    who = " + ".join(names) or role
    if not names:
        return Verdict("error", f"no class plays the {role} role, so its speed cannot be checked")
    empty = stubs(ctx, (role,))
    if empty:
        return Verdict("fail", f"{', '.join(empty[:3])} does nothing yet, so there is no "
                       "computation to time", {"stubs": empty}, family="stub_methods")
    loops = class_loops(ctx, role)
    threshold = ctx.settings(check_id)["threshold"]
    details = {"threshold": threshold, "calibration": CALIBRATION[role],
               "loops": [{"file": lp.file, "line": lp.line, "method": lp.method, "kind": lp.kind,
                          "code": lp.code} for lp in loops]}
    timed, why_untimed = None, None
    failed = probe_failure(ctx, PROBE, f"{who} (timing)")
    if failed is None:
        rec = ctx.probes[PROBE].value.get(role)
        ok, value, err = step(ctx.probes[PROBE].value, role)
        if ok:
            timed = timing_of(value)
            if timed is None:
                why_untimed = Verdict("error", f"{who} could not be timed: the probe returned no usable timings")
        elif isinstance(err, dict) and err.get("type") == "TooSlow":
            limit = rec.get("limit_s") if isinstance(rec, dict) else None
            details["cut_after_s"] = limit
            if err.get("frames"):  # where the alarm caught it: varies run to run, so details only
                f = err["frames"][-1]
                details["interrupted_at"] = f"{rename(ctx, f['file'])} line {f['line']}: {f['code']}"
            return fail(who, loops, [f"one pass through its forward and backward at a batch of "
                                     f"512 was still running after {limit or 0:g} s, where numpy "
                                     "needs well under a millisecond"], details, slow=True)
        else:
            why_untimed = (exception_verdict(ctx, err, f"{who} (timed at a batch of 512)") if err
                           else Verdict("skipped", f"{who} was not timed"))
    else:
        why_untimed = failed
    evidence, slow = [], False
    if timed:
        f, b, ratio = timed["forward"], timed["backward"], timed["ratio"]
        details.update(ratio=round(ratio, 3), forward={"student_s": f[0], "calibration_s": f[1], "samples": f[2],
                                                      "ratio": round(f[0] / f[1], 3)},
                       backward={"student_s": b[0], "calibration_s": b[1], "samples": b[2],
                                 "ratio": round(b[0] / b[1], 3)})
        if ratio > threshold:
            slow = True
            # Measured numbers go to details; the message stays the same from run to run.
            evidence.append(f"its forward + backward at a batch of 512 take more than {threshold:g}× "
                            f"as long as the same numpy operations ({CALIBRATION[role]})")
    if evidence or loops:
        return fail(who, loops, evidence, details, slow)
    if why_untimed is not None:
        return why_untimed
    # The measured ratio stays in details: a regrade gives the same message, word for word.
    return Verdict.passed(f"{who} is vectorised: its forward + backward at a batch of 512 are "
                          f"within {threshold:g}× of the same numpy operations, and no method "
                          "loops over the batch", **details)


def fail(who: str, loops: list[Loop], evidence: list[str], details: dict, slow: bool) -> Verdict:
    kinds = {k for lp in loops for k in lp.kind.split(", ")}
    family = ("batch_loops" if kinds & {"batch", "hidden"} else "nested_loops" if "nested" in kinds
              else "not_vectorised")
    parts = [lp.describe() for lp in loops[:3]] + (["…"] if len(loops) > 3 else [])
    if evidence:
        parts = evidence + parts
    details["suspected"] = DESCRIBE[family]
    details["evidence"] = (["timing"] if slow else []) + (["source"] if loops else [])
    return Verdict("fail", f"{DESCRIBE[family]} — {who}: " + "; ".join(parts), details, family=family)


def vectorised_linear(ctx: Context) -> Verdict:
    return judge_layer(ctx, "linear", "vectorised.linear")


def vectorised_relu(ctx: Context) -> Verdict:
    return judge_layer(ctx, "relu", "vectorised.relu")


def vectorised_loss(ctx: Context) -> Verdict:
    return judge_layer(ctx, "loss", "vectorised.loss")
