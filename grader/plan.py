"""Build the probe plan for a submission and lay out its box (harness, plan, sources).

Inputs are drawn from one seeded generator per probe, so every submission sees the same
numbers and a regrade sees them again. Sizes are small primes chosen so every array has a
distinct shape: the grader can tell dx from dW from db by shape alone.
"""
from __future__ import annotations

import functools
import json
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .load import Submission

N, D_IN, D_OUT, D_HID = 7, 5, 3, 4


@dataclass(frozen=True, eq=False)  # hashed by identity: cached per batch
class Probe:
    id: str
    kind: str
    args: dict
    timeout_s: float

    def to_json(self) -> dict:
        return {"id": self.id, "kind": self.kind, "timeout_s": self.timeout_s,
                "args": {k: np.asarray(v).tolist() if isinstance(v, np.ndarray) else v
                         for k, v in self.args.items()}}


def rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def away_from_zero(r: np.random.Generator, shape, low=0.1, high=2.0) -> np.ndarray:
    return r.uniform(low, high, shape) * r.choice([-1.0, 1.0], shape)


def linear_inputs(seed: int) -> dict:
    r = rng(seed, "linear")
    return {"x": r.normal(size=(N, D_IN)), "W": r.normal(size=(D_IN, D_OUT)),
            "b": r.normal(size=D_OUT), "grad": r.normal(size=(N, D_OUT)), "lr": 1.0}


def relu_inputs(seed: int) -> dict:
    r = rng(seed, "relu")
    x = away_from_zero(r, (N, D_HID))
    x[0, 0] = x[3, 2] = 0.0  # the kink itself: any subgradient in [0, 1] is accepted there
    return {"x": x, "grad": r.normal(size=(N, D_HID))}


def loss_inputs(seed: int) -> dict:
    r = rng(seed, "loss")
    y = np.array([[1.0], [0.0], [1.0], [1.0], [0.0], [0.0], [1.0]])
    return {"z": r.uniform(-3, 3, (N, 1)), "y": y}


def loss_sanity_inputs(seed: int) -> dict:
    """A few random batches of moderate logits (N(0, 3), both labels in each), and logits
    of +-1e3 and +-1e4 with both labels, so the loss is confidently right and wrong."""
    r = rng(seed, "loss_sanity")
    draws, n = 4, 16
    y = np.tile((np.arange(n) % 2).astype(float).reshape(1, n, 1), (draws, 1, 1))
    y = r.permuted(y, axis=1)
    big = [1e3, -1e3, 1e3, -1e3, 1e4, -1e4, 1e4, -1e4, 0.0]
    labels = [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    return {"z_draws": r.normal(0.0, 3.0, (draws, n, 1)), "y_draws": y,
            "z_extreme": np.array(big).reshape(-1, 1), "y_extreme": np.array(labels).reshape(-1, 1)}


# Timing sizes: a per-row Python loop over 512 samples costs ~50-150x numpy here, while
# vectorised variants (einsum, np.where, boolean masks) stay within ~1-5x. Wider layers
# would favour BLAS over einsum and widen that gap for correct code.
TIMING_N, TIMING_IN, TIMING_OUT, TIMING_RELU = 512, 8, 4, 16


def timing_inputs(seed: int) -> dict:
    """What the timing probe times on. Only the shapes matter, and the grader never reads
    the values, so the harness draws them from this seed (half a megabyte of JSON less to
    encode, write and parse per box): each name -> (shape, scale) of normal values; loss_y
    alternates the labels 0 and 1."""
    n = TIMING_N
    return {
        "seed": int(zlib.crc32(f"{seed}:timing".encode())),
        "normal": {"linear_x": [[n, TIMING_IN], 1.0], "linear_W": [[TIMING_IN, TIMING_OUT], 1.0],
                   "linear_b": [[TIMING_OUT], 1.0], "linear_grad": [[n, TIMING_OUT], 1.0],
                   "relu_x": [[n, TIMING_RELU], 1.0], "relu_grad": [[n, TIMING_RELU], 1.0],
                   "loss_z": [[n, 1], 2.0]},
        "labels": {"loss_y": [n, 1]},
        # up to 9 interleaved rounds; stop once two calls took > 5 ms each or 20 ms in all;
        # a layer still running after 2 s is stopped (the probe's own timeout stays the backstop)
        "repeats": 9, "slow_s": 0.005, "budget_s": 0.02, "limit_s": 2.0,
    }


INPUTS = {
    "linear": linear_inputs,
    "relu": relu_inputs,
    "loss": loss_inputs,
    "loss_sanity": loss_sanity_inputs,
    "timing": timing_inputs,
    "gradcheck": lambda seed: gradcheck_inputs(seed),
    "update": lambda seed: update_inputs(seed),
}


def probes(seed: int, needed: dict[str, tuple[float, dict]]) -> list[Probe]:
    """The probes the enabled checks need: probe id -> (timeout, check parameters). The same
    for every submission of a batch, so made once (their arrays read-only) and reused."""
    return list(cached_probes(seed, json.dumps(needed, sort_keys=True, default=str)))


@functools.lru_cache(maxsize=8)
def cached_probes(seed: int, needed_json: str) -> tuple[Probe, ...]:
    out = []
    for pid, (timeout, params) in json.loads(needed_json).items():
        if pid in INPUTS:
            out.append(Probe(pid, pid, frozen(INPUTS[pid](seed)), timeout))
        else:
            kind, make = WITH_PARAMS[pid]
            out.append(Probe(pid, kind, frozen(make(seed, params)), timeout))
    return tuple(out)


def frozen(args: dict) -> dict:
    for v in args.values():
        if isinstance(v, np.ndarray):
            v.flags.writeable = False  # shared by every submission: no check may change them
    return args


@functools.lru_cache(maxsize=8)
def probes_json(plan_probes: tuple) -> str:
    """The probes as plan.json holds them, encoded once per batch."""
    return json.dumps([p.to_json() for p in plan_probes])


def qualified_roles(sub: Submission, roles: dict) -> dict:
    """role -> 'module:Class' (or a list for a split loss), as the harness imports them."""
    where = {c.name: module_name(c.source_file) for c in sub.classes}

    def q(name):
        return f"{where.get(name, sub.module)}:{name}"

    return {role: ([q(n) for n in v] if isinstance(v, list) else q(v) if v else None)
            for role, v in roles.items()}


def module_name(relpath: str) -> str:
    return Path(relpath).with_suffix("").as_posix().replace("/", ".")


def copy_harness(box: Path, package: bool = True) -> None:
    """The harness's entry script as box/harness.py and, unless the sandbox's worker has
    imported it already, the package as box/nnharness/."""
    files = harness_files()
    (box / "harness.py").write_bytes(files["entry.py"])
    if package:
        (box / "nnharness").mkdir()
        for name, data in files.items():
            if name != "entry.py":
                (box / "nnharness" / name).write_bytes(data)


@functools.lru_cache(maxsize=1)
def harness_files() -> dict[str, bytes]:
    """The harness package's modules, read once per grader process."""
    return {item.name: item.read_bytes() for item in resources.files("grader.harness").iterdir()
            if item.name.endswith(".py")}


def write_box(box: Path, sub: Submission, roles: dict, plan_probes: list[Probe], limits,
              seed: int, interface: dict | None = None, lanes: int = 1,
              package: bool = True) -> None:
    """Everything the harness needs, and nothing of the grader besides the harness itself.
    `lanes`: how many probes may run at once (a box with cores to itself); `package`:
    False when the sandbox's worker has the harness package imported already."""
    (box / "src").mkdir(parents=True)
    for rel, source in sub.files.items():
        target = box / "src" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source, encoding="utf-8")
    copy_harness(box, package)
    plan = {
        "version": 1, "seed": seed, "module": sub.module, "src_dir": "src", "work_dir": "work",
        "roles": qualified_roles(sub, roles), "interface": interface or {},
        "resets_gradients": sub.resets_gradients, "lanes": max(1, int(lanes)),
        "modules": sorted({module_name(rel) for rel in sub.files if rel.endswith(".py")}),
        "limits": {"memory_mb": limits.memory_mb, "cpu_s": limits.cpu_s,
                   "file_size_mb": limits.file_size_mb, "open_files": limits.open_files,
                   "processes": limits.processes},
    }
    text = json.dumps(plan)[:-1] + ', "probes": ' + probes_json(tuple(plan_probes)) + "}"
    (box / "plan.json").write_text(text, encoding="utf-8")


# ---------------------------------------------------------------- the whole network

# N = 7: no array of the network probes is (MLP_IN + 1, MLP_HID), the shape of a first
# layer with its bias folded in, so a layer's inputs are never taken for its weights
MLP_N, MLP_IN, MLP_HID = 7, 5, 4


def network_params(seed: int, name: str, margin: float = 0.05) -> dict:
    """x, y and weights with every hidden pre-activation at least `margin` from zero, so
    a centred difference of h = 1e-5 never crosses a ReLU kink (course notes: kinks)."""
    r = rng(seed, name)
    y = np.array([[1.0], [0.0], [0.0], [1.0], [1.0], [0.0], [1.0]])
    for _ in range(1000):
        x = r.normal(size=(MLP_N, MLP_IN))
        W1, b1 = r.normal(scale=0.6, size=(MLP_IN, MLP_HID)), r.normal(scale=0.3, size=MLP_HID)
        if np.abs(x @ W1 + b1).min() >= margin:
            break
    W2, b2 = r.normal(scale=0.6, size=(MLP_HID, 1)), r.normal(scale=0.3, size=1)
    return {"x": x, "y": y, "W1": W1, "b1": b1, "W2": W2, "b2": b2}


def gradcheck_inputs(seed: int) -> dict:
    args = network_params(seed, "gradcheck")
    r = rng(seed, "gradcheck-samples")

    def some(shape, k):
        flat = r.choice(int(np.prod(shape)), size=min(k, int(np.prod(shape))), replace=False)
        return [[int(j) for j in np.unravel_index(int(i), shape)] for i in sorted(flat)]

    args.update(h=1e-5, seed=seed, samples={
        "W1": some((MLP_IN, MLP_HID), 4), "b1": some((MLP_HID,), 3), "W2": some((MLP_HID, 1), 3),
        "b2": some((1,), 1), "x": some((MLP_N, MLP_IN), 3)})
    args.update(evaluation_set(seed, args))
    return args


EVAL_N = 12


def evaluation_set(seed: int, weights: dict) -> dict:
    """Labelled samples for the student's evaluate, drawn until, at the planted weights,
    the accuracy differs from every number a wrong evaluate might report instead (the
    positive rate of its predictions or labels, the error rate, a threshold at 0.5 on the
    logits, ...), in every scale (fraction, percent, count)."""
    from .reference import mlp as ref_mlp

    r = rng(seed, "evaluate")
    for _ in range(1000):
        x = r.normal(size=(EVAL_N, MLP_IN))
        y = (r.permutation(EVAL_N) < r.integers(3, EVAL_N - 2)).astype(float).reshape(-1, 1)
        z = ref_mlp.logits(x, weights["W1"], weights["b1"], weights["W2"], weights["b2"])
        acc = np.mean((z > 0) == (y > 0.5))
        wrong = [np.mean(z > 0), np.mean(y), 1 - acc, np.mean((z > 0.5) == (y > 0.5)),
                 np.mean(z < 0), np.mean((z > 0) == (y < 0.5))]
        if 0.2 < acc < 0.9 and all(abs(acc - w) > 1.5 / EVAL_N for w in wrong):
            return {"eval_x": x, "eval_y": y}
    raise RuntimeError("no evaluation set separates the accuracy from its look-alikes")


UPDATE_LR, UPDATE_MOMENTUM, UPDATE_L2 = 0.1, 0.9, 0.1


def update_inputs(seed: int) -> dict:
    """Three runs from the same start: plain SGD for two steps, one step with L2, two with
    momentum. Their differences isolate each rule whatever convention the student used."""
    args = network_params(seed, "update")
    args.update(seed=seed, scenarios=[
        {"name": "plain", "lr": UPDATE_LR, "momentum": 0.0, "l2": 0.0, "steps": 2},
        {"name": "l2", "lr": UPDATE_LR, "momentum": 0.0, "l2": UPDATE_L2, "steps": 1},
        {"name": "momentum", "lr": UPDATE_LR, "momentum": UPDATE_MOMENTUM, "l2": 0.0, "steps": 2},
    ])
    return args


def xor_inputs(seed: int, settings: dict) -> dict:
    x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    return {"x": x, "y": y, **settings}


def overfit_inputs(seed: int, settings: dict) -> dict:
    r = rng(seed, "overfit20")
    x = r.normal(size=(20, 10))
    y = (r.permutation(20) < 10).astype(float).reshape(20, 1)  # random labels, 10 of each
    return {"x": x, "y": y, **settings}


# Probes whose inputs depend on the rubric's [checks."…".params]: id -> (harness kind, maker).
WITH_PARAMS = {
    "train_xor": ("train", xor_inputs),
    "train_overfit20": ("train", overfit_inputs),
}
