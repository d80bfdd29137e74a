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
    "loss_returns_probabilities": "the loss layer's forward returns the probabilities sigmoid(z) instead of the loss",
    "loss_returns_nothing": "the loss layer's forward returns nothing",
    # loss sanity and vectorisation (issue 4)
    "unstable_sigmoid": "the sigmoid overflows for large logits: exp is taken of a large positive number (the log-sum-exp trick avoids it)",
    "unstable_log": "the loss takes the log of a sigmoid that has rounded to exactly 0 or 1, so it is infinite for large logits",
    "batch_loops": "the layer loops over the samples of the batch in Python instead of using whole-array operations",
    "nested_loops": "the layer has nested Python loops",
    "not_vectorised": "the layer is many times slower than the same numpy array operations",
    "script_global": "a method reads a global variable defined only by the training script",
    "no_mlp": "there is no MLP class to drive the layers",
    "grad_sign": "the gradient has the wrong sign",
    "grad_factor": "the gradient is off by a constant factor",
    "bias_grad": "the bias gradient is wrong while the weight gradient is right",
    "layer_holds_layer": "a layer holds or calls another layer instead of the MLP doing it",
    "mlp_not_driving": "the MLP does not drive every layer's forward and backward itself",
    "no_update": "a training step does not change the weights",
    "gradient_ascent": "the update climbs the gradient (W += lr * dW) instead of descending it",
    "bias_frozen": "the biases are never updated",
    "bias_shape_grows": "the biases grow to one row per sample (the bias gradient is not summed over the batch)",
    "first_layer_frozen": "the first layer's weights are never updated",
    "layer_frozen": "a layer's weights are never updated",
    "l2_ignored": "the L2 penalty is not applied in the update",
    "l2_sign": "the L2 penalty has the wrong sign",
    "momentum_ignored": "momentum is ignored (the velocity is not kept between steps)",
    "momentum_wrong": "momentum is applied with the wrong formula",
    "zero_init": "the weights start all equal (e.g. zero), so the hidden units never become different",
    "diverged": "training diverges (the loss becomes NaN or infinite)",
    "plateau_chance": "training stays at chance (the loss stays near ln 2)",
    "eval_positive_rate": "evaluate counts the positive predictions instead of the correct ones (a threshold at the wrong scale, e.g. probabilities compared with 0)",
    "eval_threshold_scores": "evaluate thresholds the raw scores at 0.5 (a threshold meant for probabilities)",
    "eval_error_rate": "evaluate reports the error rate instead of the accuracy",
    "eval_label_rate": "evaluate reports the share of positive labels, not the accuracy",
    "eval_wrong": "evaluate's accuracy does not match the network's outputs",
    "eval_no_accuracy": "evaluate returns no accuracy",
    "eval_other_weights": "evaluate does not use the network's current weights (it rebuilds or re-initialises the layers)",
    "no_evaluate": "there is no evaluate to report the accuracy",
    "stub_methods": "some layer methods do nothing yet",
    "lr_squared": "the step is scaled by the learning rate twice (η² instead of η)",
    "bias_wrong_grad": "the hidden bias is updated with another layer's gradient",
    "grad_accumulated": "gradients are accumulated across steps (they are never reset)",
    "update_before_dx": "the weights are updated before the gradient passed back (dx) is computed",
    "init_scale": "the initial weights are too large, so the initial loss is far from ln 2",
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
    """The first family whose would-be value (or one of its values) the student's equals."""
    for family, values in candidates.items():
        for value in values if isinstance(values, list) else [values]:
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
