"""Network-level judging on synthetic observations: which evidence is a gradient, and
whether evaluate scored with the network's own weights.

The expected logits are written out here (relu(x @ W1 + b1) @ W2 + b2) rather than taken
from reference/, so a wrong reference would show up too.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from grader import plan
from grader.checks.base import Context
from grader.checks.evaluate import other_weights
from grader.checks.network import is_the_step
from grader.load import Submission
from grader.observe import ProbeRun
from grader.rubric import load_rubric

SEED = 20261201
GC = plan.gradcheck_inputs(SEED)


def scores(x, w):
    return np.maximum(x @ w["W1"] + w["b1"], 0) @ w["W2"] + w["b2"]


def context(run_value: dict) -> tuple[Context, ProbeRun]:
    sub = Submission(id="s", path=Path("hw.py"), graded_file="hw.py")
    ctx = Context(submission=sub, roles={}, probes={"gradcheck": ProbeRun("gradcheck", "ok", run_value)},
                  inputs={"gradcheck": GC}, settings=load_rubric().settings, memory_mb=512,
                  run_message="")
    return ctx, ctx.probes["gradcheck"]


G = np.arange(1.0, 7.0).reshape(2, 3)
SOURCE = "attribute state['dW']"


def test_a_velocity_kept_as_dW_is_the_step_not_the_gradient():
    # zero after the step at rate 0, then -g after a plain step at rate 1 (which moved W by -g)
    assert is_the_step(-G, G, SOURCE, (np.zeros_like(G), SOURCE))


def test_a_step_that_climbs_the_gradient_keeps_its_gradient():
    # W += g: the kept dW (g) equals the step, but it was already g at rate 0
    assert not is_the_step(G, -G, SOURCE, (G, SOURCE))


def test_a_gradient_that_stays_zero_while_the_weights_move_is_not_the_gradient():
    assert is_the_step(np.zeros_like(G), G, SOURCE, (np.zeros_like(G), SOURCE))


def test_an_ordinary_gradient_attribute_is_kept():
    assert not is_the_step(G, G, SOURCE, (G, SOURCE))
    assert not is_the_step(G, None, SOURCE)  # no step to compare with
    assert not is_the_step(-G, G, "returned by backward", (np.zeros_like(G), SOURCE))  # returned: trusted


def test_evaluate_that_rebuilds_the_layers_is_caught():
    trained = scores(GC["x"], GC)
    rebuilt = {k: GC[k] * 0.5 for k in ("W1", "b1", "W2", "b2")}
    ctx, run = context({"base": {"logits": trained}, "evaluate_logits": scores(GC["eval_x"], rebuilt)})
    assert other_weights(ctx, run)


def test_evaluate_with_the_network_weights_passes_whatever_the_row_order():
    z_eval = scores(GC["eval_x"], GC)[::-1]
    ctx, run = context({"base": {"logits": scores(GC["x"], GC)}, "evaluate_logits": z_eval})
    assert not other_weights(ctx, run)


def test_a_network_whose_own_scores_differ_is_not_blamed_on_evaluate():
    # a buggy forward: the training step's scores are not the reference's either, so a
    # mismatch in evaluate says nothing about evaluate
    bent = {**GC, "b2": GC["b2"] + 1.0}
    ctx, run = context({"base": {"logits": scores(GC["x"], bent)},
                        "evaluate_logits": scores(GC["eval_x"], bent)})
    assert not other_weights(ctx, run)


def test_a_runs_accuracy_curve_is_the_same_in_one_pass_as_epoch_by_epoch():
    """training.accuracies takes a whole run at once when no epoch reordered the rows; the
    numbers must be those of accuracy() per epoch, and reordered epochs still align."""
    from grader.checks.training import accuracies, accuracy, aligned
    r = np.random.default_rng(3)
    y = (r.random((20, 1)) > 0.5).astype(float)
    logits = [r.normal(size=(20, 1)) for _ in range(50)]
    per_epoch = [accuracy(z, y) for z in logits]
    assert accuracies(logits, y, []) == per_epoch
    assert accuracies(logits, y, [None] * 50) == per_epoch
    order = list(range(20))[::-1]
    shuffled = accuracies(logits, y, [order] + [None] * 49)
    assert shuffled[0] == accuracy(logits[0], aligned(y, order)) and shuffled[1:] == per_epoch[1:]
    assert accuracies([None, logits[0]], y, []) == [None, per_epoch[0]]
