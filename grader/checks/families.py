"""Known mistakes, each a one-sentence description, recognised by what they would return.

A check computes, from the reference inputs, the value each mistake would produce and asks
whether the student's value is that one. The sentence names the mistake; the hint (tip id
and advice) lives in the rubric's [families] table, so instructors can reword it.
"""
from __future__ import annotations

import numpy as np

from ..compare import compare

DESCRIBE = {
    "sigmoid_derivative": "the sigmoid derivative is written s(z)*s(1-z) instead of s(z)*(1-s(z))",
    "extra_sigmoid_derivative": "the gradient is multiplied by the sigmoid derivative once more (it cancels against the cross-entropy's)",
    "relu_no_mask": "ReLU backward multiplies by the activation instead of a 0/1 mask",
    "relu_sigmoid_derivative": "ReLU backward uses the sigmoid's derivative",
    "relu_clip": "ReLU backward uses clip(activation, 0, 1) instead of a 0/1 mask",
    "relu_forgot_upstream": "ReLU backward returns the mask without multiplying by the upstream gradient",
    "leaky_forward": "the ReLU forward leaks negative inputs (a leaky ReLU) instead of zeroing them",
    "no_bias": "the bias is not added in the forward pass",
    "relu_in_linear": "the linear layer applies a ReLU itself",
    "dw_factor": "dW is off by a constant factor",
    "db_mean": "db is averaged over the batch instead of summed",
    "db_factor": "db is off by a constant factor",
    "db_not_summed": "db keeps one row per sample instead of summing over the batch",
    "dx_sign": "dx has the wrong sign",
    "dx_factor": "dx is off by a constant factor",
    "loss_sign": "the loss has the wrong sign (it comes out negative)",
    "no_sigmoid": "the cross-entropy is computed on the raw scores, without a sigmoid first",
    "mean_grad_not_divided": "the loss is a mean over the batch but its gradient is not divided by the batch size",
    "sum_grad_divided": "the loss is a sum over the batch but its gradient is divided by the batch size",
    "loss_grad_sign": "the loss gradient has the wrong sign (sigmoid(z) - y flipped)",
    # loss sanity and vectorisation (issue 4)
    "unstable_sigmoid": "the sigmoid overflows for large logits: exp is taken of a large positive number (the log-sum-exp trick avoids it)",
    "unstable_log": "the loss takes the log of a sigmoid that has rounded to exactly 0 or 1, so it is infinite for large logits",
    "batch_loops": "the layer loops over the samples of the batch in Python instead of using whole-array operations",
    "nested_loops": "the layer has nested Python loops",
    "not_vectorised": "the layer is many times slower than the same numpy array operations",
    "script_global": "a method reads a global variable defined only by the training script",
}

RATIOS = {2.0: "×2", 0.5: "×½", -1.0: "×−1", -2.0: "×−2", -0.5: "×−½"}


def matches(got, candidate, threshold: float = 1e-6) -> bool:
    if not isinstance(got, np.ndarray) or candidate is None:
        return False
    candidate = np.asarray(candidate, dtype=float)
    if got.shape != candidate.shape or not np.all(np.isfinite(candidate)):
        return False
    return compare(got, candidate, max(threshold, 1e-6), "").ok


def recognise(got, candidates: dict, threshold: float) -> str | None:
    """The first family whose would-be value the student's value equals."""
    for family, value in candidates.items():
        if matches(got, value, threshold):
            return family
    return None


def constant_ratio(got, expected, n: int, threshold: float) -> str | None:
    """'×2', '×½', '×−1', '×N' or '×1/N' when got is that multiple of expected."""
    ratios = dict(RATIOS)
    ratios.update({float(n): f"×N (N={n})", 1.0 / n: f"×1/N (N={n})", -float(n): f"×−N (N={n})"})
    for c, label in ratios.items():
        if matches(got, c * np.asarray(expected), threshold):
            return label
    return None
