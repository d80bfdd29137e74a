"""Layers for HW2 (Henry)."""
import numpy as np


class LinearTransform(object):
    """Fully-connected layer.  Parameters are updated in `update`."""

    def __init__(self, W, b):
        self.W = W
        self.b = b
        self.dW = np.zeros_like(W)
        self.db = np.zeros_like(b)
        self.velocity_W = np.zeros_like(W)
        self.velocity_b = np.zeros_like(b)

    def forward(self, x):
        self.x = x
        return np.dot(x, self.W) + self.b

    def backward(self, grad_output):
        self.dW = np.dot(self.x.T, grad_output)
        self.db = np.sum(grad_output, axis=0)
        return np.dot(grad_output, self.W.T)

    def update(self, learning_rate, momentum, l2_penalty):
        self.velocity_W = momentum * self.velocity_W - learning_rate * (self.dW + l2_penalty * self.W)
        self.velocity_b = momentum * self.velocity_b - learning_rate * self.db
        self.W += self.velocity_W
        self.b += self.velocity_b


class ReLU(object):

    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, grad_output):
        return grad_output * self.mask
