import numpy as np

from layers import LinearTransform, ReLU
from loss import SigmoidCrossEntropy


class MLP(object):

    def __init__(self, input_dims, hidden_units):
        self.layers = [
            LinearTransform(np.random.randn(input_dims, hidden_units) * 0.1, np.zeros(hidden_units)),
            ReLU(),
            LinearTransform(np.random.randn(hidden_units, 1) * 0.1, np.zeros(1)),
        ]
        self.loss_layer = SigmoidCrossEntropy()

    def _logits(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def train(self, x_batch, y_batch, learning_rate, momentum, l2_penalty):
        loss = self.loss_layer.forward(self._logits(x_batch), y_batch)
        grad = self.loss_layer.backward(1.0)
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        for layer in self.layers:
            if hasattr(layer, 'update'):
                layer.update(learning_rate, momentum, l2_penalty)
        return loss

    def evaluate(self, x, y):
        z = self._logits(x)
        return self.loss_layer.forward(z, y), np.mean((z > 0) == (y == 1))
