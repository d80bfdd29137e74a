"""
Frank
CS 519 - HW2
python 2.7
"""

import cPickle
import numpy as np
import matplotlib.pyplot as plt


class LinearTransform(object):

    def __init__(self, W, b):
        self.W = W
        self.b = b
        self.delta_W = np.zeros(W.shape)
        self.delta_b = np.zeros(b.shape)

    def forward(self, x):
        self.x = x
        return np.dot(x, self.W) + self.b

    def backward(self, grad_output, learning_rate=0.0, momentum=0.0, l2_penalty=0.0):
        grad_x = np.dot(grad_output, self.W.T)
        grad_W = np.dot(self.x.T, grad_output)
        grad_b = np.sum(grad_output, axis=0)
        self.delta_W = momentum * self.delta_W - learning_rate * (grad_W + l2_penalty * self.W)
        self.delta_b = momentum * self.delta_b - learning_rate * grad_b
        self.W += self.delta_W
        self.b += self.delta_b
        return grad_x


class ReLU(object):

    def forward(self, x):
        self.x = x
        return np.maximum(0., x)

    def backward(self, grad_output, learning_rate=0.0, momentum=0.0, l2_penalty=0.0):
        return grad_output * (self.x > 0.)


class SigmoidCrossEntropy(object):

    def forward(self, x, y):
        self.y = y
        self.sigmoid = 1. / (1. + np.exp(-x))
        return -np.mean(y * np.log(self.sigmoid + 1e-12) + (1. - y) * np.log(1. - self.sigmoid + 1e-12))

    def backward(self, grad_output, learning_rate=0.0, momentum=0.0, l2_penalty=0.0):
        return grad_output * (self.sigmoid - self.y) / float(self.y.shape[0])


class MLP(object):

    def __init__(self, input_dims, hidden_units):
        self.hidden = LinearTransform(np.random.randn(input_dims, hidden_units) * 0.1, np.zeros(hidden_units))
        self.relu = ReLU()
        self.output = LinearTransform(np.random.randn(hidden_units, 1) * 0.1, np.zeros(1))
        self.loss = SigmoidCrossEntropy()

    def train(self, x_batch, y_batch, learning_rate, momentum, l2_penalty):
        out = self.output.forward(self.relu.forward(self.hidden.forward(x_batch)))
        loss = self.loss.forward(out, y_batch)
        grad = self.loss.backward(1.)
        grad = self.output.backward(grad, learning_rate, momentum, l2_penalty)
        grad = self.relu.backward(grad)
        self.hidden.backward(grad, learning_rate, momentum, l2_penalty)
        return loss

    def evaluate(self, x, y):
        out = self.output.forward(self.relu.forward(self.hidden.forward(x)))
        loss = self.loss.forward(out, y)
        correct = np.sum((out > 0) == (y == 1))
        return loss, correct / float(y.shape[0])


if __name__ == '__main__':

    data = cPickle.load(open('cifar_2class_py2.p', 'rb'))

    train_x = data['train_data'] / 255.
    train_y = data['train_labels']
    test_x = data['test_data'] / 255.
    test_y = data['test_labels']

    num_examples, input_dims = train_x.shape
    num_epochs = 10
    num_batches = 1000
    hidden_units = 10
    batch_size = num_examples / num_batches

    mlp = MLP(input_dims, hidden_units)
    print "input dims:", input_dims, "batch size:", batch_size

    acc_hist = []
    for epoch in xrange(num_epochs):
        total_loss = 0.0
        for b in xrange(num_batches):
            x_b = train_x[b * batch_size:(b + 1) * batch_size]
            y_b = train_y[b * batch_size:(b + 1) * batch_size]
            total_loss += mlp.train(x_b, y_b, 0.01, 0.8, 0.001)
        train_loss, train_accuracy = mlp.evaluate(train_x, train_y)
        test_loss, test_accuracy = mlp.evaluate(test_x, test_y)
        acc_hist.append(test_accuracy)
        print '[Epoch %d] Avg.Loss = %.3f' % (epoch + 1, total_loss / num_batches)
        print '    Train Loss: %.3f    Train Acc.: %.2f%%' % (train_loss, 100. * train_accuracy)
        print '    Test Loss:  %.3f    Test Acc.:  %.2f%%' % (test_loss, 100. * test_accuracy)

    plt.plot(acc_hist)
    plt.show()
