"""The check registry: every check id, its probe, default points and threshold.

Like pytest's hookspec, this one table lists every check the grader can run, in report
order. The rubric may change points, thresholds and hints, but not invent checks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import layers


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
    ]
}
