"""The check registry: every check id, its probe, default points and threshold.

Like pytest's hookspec, this one table lists every check the grader can run, in report
order. The rubric may change points, thresholds and hints, but not invent checks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import layers, sanity, vectorised


@dataclass(frozen=True)
class CheckSpec:
    id: str
    probe: str            # which harness probe feeds it
    run: Callable         # Context -> Verdict
    points: float
    threshold: float


REGISTRY: dict[str, CheckSpec] = {
    spec.id: spec for spec in [
        CheckSpec("linear.forward", "linear", layers.linear_forward, 2, 1e-6),
        CheckSpec("linear.backward", "linear", layers.linear_backward, 3, 1e-6),
        CheckSpec("relu.forward", "relu", layers.relu_forward, 1, 1e-6),
        CheckSpec("relu.backward", "relu", layers.relu_backward, 2, 1e-6),
        CheckSpec("loss.forward", "loss", layers.loss_forward, 2, 1e-6),
        CheckSpec("loss.backward", "loss", layers.loss_backward, 2, 1e-6),
        # loss sanity (tips 1, 4, 5) and vectorisation (tip 6); threshold: for loss.nonnegative
        # how far below 0 a loss may round, for vectorised.* the slowdown ratio allowed
        CheckSpec("loss.nonnegative", "loss_sanity", sanity.loss_nonnegative, 1, 1e-9),
        CheckSpec("loss.stable", "loss_sanity", sanity.loss_stable, 1, 0.0),
        CheckSpec("vectorised.linear", "timing", vectorised.vectorised_linear, 1, 10.0),
        CheckSpec("vectorised.relu", "timing", vectorised.vectorised_relu, 1, 10.0),
        CheckSpec("vectorised.loss", "timing", vectorised.vectorised_loss, 1, 10.0),
    ]
}
