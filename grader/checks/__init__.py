"""The check registry: every check id, its probe, default points and threshold.

Like pytest's hookspec, this one table lists every check the grader can run, in report
order. The rubric may change points, thresholds and hints, but not invent checks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from . import evaluate, layers, network, sanity, training, update, vectorised


@dataclass(frozen=True)
class CheckSpec:
    id: str
    probe: str            # which harness probe feeds it
    run: Callable         # Context -> Verdict
    points: float
    threshold: float
    params: dict = field(default_factory=dict)  # check-specific settings the rubric may change
    reads: tuple[str, ...] = ()  # other probes it reads when they ran (for `--only` runs)


# A gradient check that fails names the layer check to fix first, so it reads their probes;
# a loss convention (mean or sum) comes from the loss probe; a split loss's backward is
# judged with the MLP's calls from the gradcheck probe.
LAYERS = ("linear", "relu", "loss")

REGISTRY: dict[str, CheckSpec] = {
    spec.id: spec for spec in [
        CheckSpec("linear.forward", "linear", layers.linear_forward, 2, 1e-6),
        CheckSpec("linear.backward", "linear", layers.linear_backward, 3, 1e-6),
        CheckSpec("relu.forward", "relu", layers.relu_forward, 1, 1e-6),
        CheckSpec("relu.backward", "relu", layers.relu_backward, 2, 1e-6),
        CheckSpec("loss.forward", "loss", layers.loss_forward, 2, 1e-6),
        CheckSpec("loss.backward", "loss", layers.loss_backward, 2, 1e-6, reads=("gradcheck",)),
        # loss sanity (tips 1, 4, 5); threshold: how far below 0 a loss may round
        CheckSpec("loss.nonnegative", "loss_sanity", sanity.loss_nonnegative, 1, 1e-9, reads=("loss",)),
        CheckSpec("loss.stable", "loss_sanity", sanity.loss_stable, 1, 0.0, reads=("loss",)),
        # vectorisation (tip 6); threshold: the slowdown ratio allowed against numpy
        CheckSpec("vectorised.linear", "timing", vectorised.vectorised_linear, 1, 10.0),
        CheckSpec("vectorised.relu", "timing", vectorised.vectorised_relu, 1, 10.0),
        CheckSpec("vectorised.loss", "timing", vectorised.vectorised_loss, 1, 10.0),
        # the whole network (issue 4)
        CheckSpec("structure.separation", "gradcheck", network.separation, 2, 0.0),
        CheckSpec("structure.mlp_drives", "gradcheck", network.mlp_drives, 2, 0.0),
        CheckSpec("gradcheck.W1", "gradcheck", network.gradcheck("W1"), 1, 1e-5, reads=LAYERS),
        CheckSpec("gradcheck.b1", "gradcheck", network.gradcheck("b1"), 1, 1e-5, reads=LAYERS),
        CheckSpec("gradcheck.W2", "gradcheck", network.gradcheck("W2"), 1, 1e-5, reads=LAYERS),
        CheckSpec("gradcheck.b2", "gradcheck", network.gradcheck("b2"), 1, 1e-5, reads=LAYERS),
        CheckSpec("gradcheck.x", "gradcheck", network.gradcheck("x"), 1, 1e-5, reads=LAYERS),
        CheckSpec("update.direction", "update", update.direction, 1, 0.0),
        CheckSpec("update.momentum", "update", update.momentum, 1, 0.0),
        CheckSpec("update.l2", "update", update.l2, 1, 0.0),
        CheckSpec("update.bias", "update", update.bias, 1, 0.0),
        CheckSpec("update.layers", "update", update.layers, 1, 0.0),
        CheckSpec("train.xor", "train_xor", training.xor, 2, 0.0, params={
            "seeds": [0, 1, 2, 3, 4], "required": 3, "hidden": 8, "lr": 0.5, "momentum": 0.8,
            "max_epochs": 500, "patience": 5, "stall": 150}, reads=("loss",)),
        CheckSpec("train.overfit20", "train_overfit20", training.overfit20, 2, 0.0, params={
            "seeds": [0], "required": 1, "hidden": 16, "lr": 0.5, "momentum": 0.8,
            "max_epochs": 800, "patience": 40, "stall": 150, "loss_target": 0.1}, reads=("loss",)),
        CheckSpec("mlp.evaluate", "gradcheck", evaluate.evaluate, 1, 0.0),
        CheckSpec("mlp.init_loss", "train_overfit20", training.init_loss, 0.5, 0.0, params={
            "tolerance": 0.3}, reads=("loss",)),
    ]
}
