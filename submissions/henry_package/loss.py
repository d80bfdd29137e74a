"""Sigmoid + binary cross-entropy."""
import numpy as np


class SigmoidCrossEntropy(object):

    def forward(self, x, y):
        self.y = y
        self.p = 1.0 / (1.0 + np.exp(-x))
        p = np.clip(self.p, 1e-12, 1 - 1e-12)
        return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))

    def backward(self, grad_output=1.0):
        return grad_output * (self.p - self.y) / self.y.shape[0]
