"""
Alice -- HW2
"""
from __future__ import division, print_function
import numpy as np
import pickle


class LinearTransform(object):

    def __init__(self, W, b):
        self.W = W
        self.b = b
        self.dW_prev = np.zeros_like(W)     # momentum terms
        self.db_prev = np.zeros_like(b)

    def forward(self, x):
        self.x = x
        return np.dot(x, self.W) + self.b

    def backward(self, grad_output, learning_rate=0.0, momentum=0.0, l2_penalty=0.0):
        dx = np.dot(grad_output, self.W.T)
        dW = np.dot(self.x.T, grad_output) + l2_penalty * self.W
        db = np.sum(grad_output, axis=0)
        self.dW_prev = momentum * self.dW_prev - learning_rate * dW
        self.db_prev = momentum * self.db_prev - learning_rate * db
        self.W += self.dW_prev
        self.b += self.db_prev
        return dx


class ReLU(object):

    def forward(self, x):
        self.x = x
        return np.maximum(0, x)

    def backward(self, grad_output, learning_rate=0.0, momentum=0.0, l2_penalty=0.0):
        return grad_output * (self.x > 0)


class SigmoidCrossEntropy(object):

    def forward(self, x, y):
        self.y = y
        # sigmoid without overflow: exp only ever sees -|x|
        e = np.exp(-np.abs(x))
        self.sg = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        # log(1 + e^x) - y*x, written with logaddexp so big scores stay finite (tip 1)
        return np.mean(np.logaddexp(0, x) - y * x)

    def backward(self, grad_output, learning_rate=0.0, momentum=0.0, l2_penalty=0.0):
        return grad_output * (self.sg - self.y) / self.y.shape[0]


class MLP(object):

    def __init__(self, input_dims, hidden_units):
        self.lt1 = LinearTransform(np.random.randn(input_dims, hidden_units) * 0.1, np.zeros(hidden_units))
        self.relu = ReLU()
        self.lt2 = LinearTransform(np.random.randn(hidden_units, 1) * 0.1, np.zeros(1))
        self.sce = SigmoidCrossEntropy()

    def train(self, x_batch, y_batch, learning_rate, momentum, l2_penalty):
        out = self.lt2.forward(self.relu.forward(self.lt1.forward(x_batch)))
        loss = self.sce.forward(out, y_batch)
        grad = self.sce.backward(1)
        grad = self.lt2.backward(grad, learning_rate, momentum, l2_penalty)
        grad = self.relu.backward(grad)
        self.lt1.backward(grad, learning_rate, momentum, l2_penalty)
        return loss

    def evaluate(self, x, y):
        out = self.lt2.forward(self.relu.forward(self.lt1.forward(x)))
        loss = self.sce.forward(out, y)
        acc = np.mean((out > 0) == y)
        return loss, acc


if __name__ == '__main__':

    data = pickle.load(open('cifar_2class_py2.p', 'rb'), encoding='latin1')

    train_x = data['train_data'] / 255.
    train_y = data['train_labels']
    test_x = data['test_data'] / 255.
    test_y = data['test_labels']
    train_x -= train_x.mean(axis=0)
    test_x -= test_x.mean(axis=0)

    num_examples, input_dims = train_x.shape
    num_epochs = 10
    num_batches = 1000
    hidden_units = 10
    batch_size = num_examples // num_batches
    mlp = MLP(input_dims, hidden_units)

    train_acc, test_acc = [], []
    for epoch in range(num_epochs):
        total_loss = 0.0
        for b in range(num_batches):
            xb = train_x[b * batch_size:(b + 1) * batch_size]
            yb = train_y[b * batch_size:(b + 1) * batch_size]
            total_loss += mlp.train(xb, yb, 0.01, 0.8, 0.001)
            print('\r[Epoch {}, mb {}]    Avg.Loss = {:.3f}'.format(epoch + 1, b + 1, total_loss / (b + 1)), end='')
        train_loss, train_accuracy = mlp.evaluate(train_x, train_y)
        test_loss, test_accuracy = mlp.evaluate(test_x, test_y)
        train_acc.append(train_accuracy)
        test_acc.append(test_accuracy)
        print()
        print('    Train Loss: {:.3f}    Train Acc.: {:.2f}%'.format(train_loss, 100. * train_accuracy))
        print('    Test Loss:  {:.3f}    Test Acc.:  {:.2f}%'.format(test_loss, 100. * test_accuracy))

    import matplotlib.pyplot as plt
    plt.plot(train_acc, label='train')
    plt.plot(test_acc, label='test')
    plt.legend()
    plt.title('accuracy vs epoch')
    plt.savefig('alice_acc.png')
