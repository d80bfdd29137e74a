"""The reference two-layer network (linear -> ReLU -> linear -> sigmoid cross-entropy)."""
from __future__ import annotations

from . import layers


def logits(x, W1, b1, W2, b2):
    """The network's output scores (before the sigmoid)."""
    return layers.linear_forward(layers.relu_forward(layers.linear_forward(x, W1, b1)), W2, b2)


def loss_and_grads(x, y, W1, b1, W2, b2, reduction="mean"):
    """The loss and its gradients with respect to W1, b1, W2, b2 and x."""
    h = layers.linear_forward(x, W1, b1)
    a = layers.relu_forward(h)
    z = layers.linear_forward(a, W2, b2)
    loss = layers.bce(z, y, reduction)
    dz = layers.bce_grad(z, y, reduction)
    da, dW2, db2 = layers.linear_backward(a, W2, dz)
    dh = layers.relu_backward(h, da)
    dx, dW1, db1 = layers.linear_backward(x, W1, dh)
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2, "x": dx}
