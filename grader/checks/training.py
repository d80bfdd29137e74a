"""Training checks: XOR learnability (tip 8a), overfitting 20 samples (course notes), and the
loss at initialisation. The harness returns the loss and logits of every epoch; accuracy,
convergence, divergence, plateaus at chance and spikes are all judged here.
"""
from __future__ import annotations

import math

import numpy as np

from ..reference import layers as ref
from .base import Context, Verdict
from .families import DESCRIBE
from .layers import loss_convention, loss_rule, loss_value
from .network import network_run

CHANCE = math.log(2.0)


def mean_loss(value, n: int, convention: str | None, attrs=None, rule=None) -> float | None:
    """Per-sample mean loss, whatever the student's convention (mean, sum, per-sample) and
    wherever the loss layer put it (the loss probe's rule)."""
    v, form = loss_value(value, attrs, rule)
    if form == "scalar":
        return v / n if convention == "sum" else v
    if isinstance(v, np.ndarray) and v.size == n:
        return float(v.mean())
    return None


def accuracy(logits, y) -> float | None:
    if not isinstance(logits, np.ndarray) or logits.size != y.size:
        return None
    return float(np.mean((logits.reshape(y.shape) > 0) == (y > 0.5)))


def accuracies(logits: list, y: np.ndarray, orders: list) -> list:
    """accuracy() of every epoch. A run whose rows were never reordered and whose every
    epoch scored each sample once is one comparison of a (epochs, n) matrix: the same
    numbers, without a numpy call per epoch of a 500-epoch run."""
    same = all(isinstance(z, np.ndarray) and z.size == y.size for z in logits)
    if logits and same and not any(o is not None for o in orders[:len(logits)]):
        right = (np.stack([z.reshape(-1) for z in logits]) > 0) == (y.reshape(-1) > 0.5)
        return right.mean(axis=1).tolist()
    return [accuracy(z, aligned(y, orders[i] if i < len(orders) else None))
            for i, z in enumerate(logits)]


def run_convention(run: dict, y: np.ndarray, fallback: str | None, rule=None) -> str | None:
    """mean or sum, as the loss of this run's first epoch shows against the cross-entropy of
    the scores it saw (a loss written for samples in columns may reduce differently than the
    loss probe, fed rows, showed); the loss probe's convention when that cannot tell."""
    losses, logits = run.get("loss") or [], run.get("logits") or []
    kept = (run.get("loss_attrs") or [None])[0]
    if not losses or not logits or not isinstance(logits[0], np.ndarray) or logits[0].size != y.size:
        return fallback
    v, form = loss_value(losses[0], kept, rule)
    if form != "scalar":
        return fallback
    order = (run.get("order") or [None])[0]
    per = ref.bce_per_sample(logits[0].reshape(y.shape), aligned(y, order))
    for conv, exp in (("mean", per.mean()), ("sum", per.sum())):
        if abs(v - exp) <= 1e-6 * max(abs(exp), 1e-12):
            return conv
    return fallback


def curve(run: dict, y: np.ndarray, convention: str | None, rule=None) -> dict:
    n = len(y)
    kept = run.get("loss_attrs") or []
    convention = run_convention(run, y, convention, rule)
    losses = [mean_loss(v, n, convention, kept[i] if i < len(kept) else None, rule)
              for i, v in enumerate(run.get("loss") or [])]
    if all(v is None for v in losses):
        losses = [mean_loss(v, n, convention) for v in run.get("returned") or []]
    accs = accuracies(run.get("logits") or [], y, run.get("order") or [])
    seed = run.get("seed")
    label = f"seed {int(seed)}" if isinstance(seed, (int, float)) else "run"
    return {"label": label, "loss": losses, "accuracy": accs}


def aligned(y: np.ndarray, order) -> np.ndarray:
    """The labels in the order the student's train saw the rows (it may shuffle)."""
    if isinstance(order, (list, tuple)) and order and all(isinstance(i, (int, float)) for i in order):
        idx = [int(i) for i in order]
        if all(0 <= i < len(y) for i in idx):
            return y[idx]
    return y


def diagnose(c: dict) -> str:
    """One word for how a run went: converged, diverged, plateau, spiky or slow."""
    loss = [v for v in c["loss"] if v is not None]
    accs = [a for a in c["accuracy"] if a is not None]
    if any(not math.isfinite(v) for v in loss):
        return "diverged"
    if accs and accs[-1] == 1.0:
        return "converged"
    if loss and abs(loss[-1] - CHANCE) < 0.02:
        return "plateau at chance"
    if len(loss) > 2 and any(b > 2 * a + 0.1 for a, b in zip(loss, loss[1:])):
        return "spiky"
    return "did not converge"


def runs_of(ctx: Context, probe: str, who: str):
    run, failed = network_run(ctx, probe, who, need_mlp=True)
    if failed:
        return None, failed
    runs = [r for r in run.value.get("runs") or [] if isinstance(r, dict)]
    broken = next((r for r in runs if not r.get("ok")), None)
    if broken is not None:
        err = broken.get("error") or {}
        return None, Verdict("error", f"{who}: training raised {err.get('type', 'an error')}: "
                             f"{err.get('message', '')}".rstrip(": "), {"seed": broken.get("seed")})
    return runs, None


def training_verdict(ctx: Context, cid: str, probe: str, task: str) -> Verdict:
    who = f"{ctx.who('mlp', 'train')} on {task}"
    runs, failed = runs_of(ctx, probe, who)
    if failed:
        return failed
    params = ctx.settings(cid)["params"]
    y = ctx.inputs[probe]["y"]
    curves = [curve(r, y, loss_convention(ctx), loss_rule(ctx)) for r in runs]
    verdicts = [diagnose(c) for c in curves]
    target = params.get("loss_target")
    good = []
    for i, (c, v) in enumerate(zip(curves, verdicts)):
        last = c["loss"][-1] if c["loss"] else None
        low = target is None or (last is not None and last <= target)
        if v == "converged" and not low:
            verdicts[i] = f"separated the data, but the loss stayed above {target:g}"
        good.append(v == "converged" and low)
    need = int(params.get("required", len(runs)))
    details = {"curves": curves, "chance_loss": CHANCE, "runs": verdicts, "required": need,
               "learning_rate": params.get("lr"), "momentum": params.get("momentum"),
               "max_epochs": params.get("max_epochs")}
    if sum(good) >= need:
        epochs = [len(c["loss"]) for c, g in zip(curves, good) if g]
        return Verdict("pass", f"{who}: {runs_phrase(sum(good), len(runs))} 100% training "
                       f"accuracy in {epoch_phrase(epochs)}", details)
    family = training_family(runs, verdicts)
    details["verdict"] = max(sorted(set(verdicts)), key=verdicts.count)
    details["suspected"] = DESCRIBE.get(family)
    last = [c["loss"][-1] for c in curves if c["loss"]]
    shown = ", ".join(f"{v:.3g}" if v is not None else "?" for v in last[:5])
    learn = ("the run does not learn it" if len(runs) == 1 else
             f"none of the {len(runs)} runs learn it" if not sum(good) else
             f"only {sum(good)} of {len(runs)} runs learn it")
    return Verdict("fail", f"{who}: {learn} ({details['verdict']}; "
                   f"final loss{'es' if len(last) > 1 else ''} {shown})"
                   + (f" — {DESCRIBE[family]}" if family else ""), details, family=family)


def runs_phrase(good: int, total: int) -> str:
    """'the run reaches', 'all 3 runs reach', '2 of 3 runs reach'."""
    if total == 1:
        return "the run reaches"
    return f"all {total} runs reach" if good == total else f"{good} of {total} runs reach"


def epoch_phrase(epochs: list[int]) -> str:
    """'45 epochs', '40–52 epochs', '1 epoch'."""
    lo, hi = min(epochs), max(epochs)
    if lo == hi:
        return f"{lo} epoch{'s' if lo != 1 else ''}"
    return f"{lo}–{hi} epochs"


def training_family(runs: list, verdicts: list) -> str | None:
    if any((r.get("init") or {}).get("w1_symmetric") for r in runs):
        return "zero_init"
    if "diverged" in verdicts:
        return "diverged"
    if verdicts.count("plateau at chance") * 2 >= len(verdicts):
        return "plateau_chance"
    return None


def xor(ctx: Context) -> Verdict:
    return training_verdict(ctx, "train.xor", "train_xor", "XOR")


def overfit20(ctx: Context) -> Verdict:
    return training_verdict(ctx, "train.overfit20", "train_overfit20", "20 samples")


def init_loss(ctx: Context) -> Verdict:
    """Loss before any update near ln 2 (course notes: loss at chance)."""
    who = "loss at initialisation"
    runs, failed = runs_of(ctx, "train_overfit20", who)
    if failed:
        return failed
    y = ctx.inputs["train_overfit20"]["y"]
    first = [curve(r, y, loss_convention(ctx), loss_rule(ctx))["loss"][:1] for r in runs]
    values = [v[0] for v in first if v and v[0] is not None]
    if not values:
        return Verdict("error", f"{who}: no loss was observed on the first step")
    tol = ctx.settings("mlp.init_loss")["params"]["tolerance"]
    worst = max(values, key=lambda v: abs(v - CHANCE) if math.isfinite(v) else math.inf)
    details = {"initial_loss": values, "chance_loss": CHANCE, "tolerance": tol}
    if math.isfinite(worst) and abs(worst - CHANCE) <= tol:
        return Verdict("pass", f"{who} is {worst:.3f}, close to ln 2 = {CHANCE:.3f}", details)
    return Verdict("fail", f"{who} is {worst:.3g}, far from ln 2 = {CHANCE:.3f}: the initial "
                   "weights are probably too large (scale them down, e.g. × 0.1)", details,
                   family="init_scale")
