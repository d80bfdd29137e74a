# Dave - homework 2
# I split the chain rule into dL/dp * dp/dz so it is easier to follow
import numpy as np
import pickle
import matplotlib.pyplot as plt


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class LinearTransform(object):

    def __init__(self, W, b):
        self.W = W
        self.b = b
        self.momentum_W = np.zeros(W.shape)
        self.momentum_b = np.zeros(b.shape)

    def forward(self, x):
        self.x = x
        return np.dot(x, self.W) + self.b

    def backward(self, grad_output, learning_rate=0.0, momentum=0.0, l2_penalty=0.0):
        dW = np.dot(self.x.T, grad_output)
        db = np.sum(grad_output, axis=0)
        dx = np.dot(grad_output, self.W.T)
        self.momentum_W = momentum * self.momentum_W - learning_rate * (dW + l2_penalty * self.W)
        self.momentum_b = momentum * self.momentum_b - learning_rate * db
        self.W = self.W + self.momentum_W
        self.b = self.b + self.momentum_b
        return dx


class ReLU(object):

    def forward(self, x):
        self.x = x
        return np.maximum(0, x)

    def backward(self, grad_output, learning_rate=0.0, momentum=0.0, l2_penalty=0.0):
        return grad_output * (self.x > 0)


class SigmoidCrossEntropy(object):

    def forward(self, x, y):
        self.z = x
        self.y = y
        self.p = sigmoid(x)
        return -np.mean(y * np.log(self.p + 1e-10) + (1 - y) * np.log(1 - self.p + 1e-10))

    def backward(self, grad_output, learning_rate=0.0, momentum=0.0, l2_penalty=0.0):
        n = self.y.shape[0]
        # dL/dp
        dp = (-(self.y / (self.p + 1e-10)) + (1 - self.y) / (1 - self.p + 1e-10)) / n
        # dp/dz  (derivative of the sigmoid)
        dz = dp * sigmoid(self.z) * sigmoid(1 - self.z)
        return grad_output * dz


class MLP(object):

    def __init__(self, input_dims, hidden_units):
        self.layer1 = LinearTransform(np.random.randn(input_dims, hidden_units) * 0.1, np.zeros(hidden_units))
        self.relu = ReLU()
        self.layer2 = LinearTransform(np.random.randn(hidden_units, 1) * 0.1, np.zeros(1))
        self.loss = SigmoidCrossEntropy()

    def train(self, x_batch, y_batch, learning_rate, momentum, l2_penalty):
        z = self.layer2.forward(self.relu.forward(self.layer1.forward(x_batch)))
        loss = self.loss.forward(z, y_batch)
        g = self.loss.backward(1.0)
        g = self.layer2.backward(g, learning_rate, momentum, l2_penalty)
        g = self.relu.backward(g)
        self.layer1.backward(g, learning_rate, momentum, l2_penalty)
        return loss

    def evaluate(self, x, y):
        z = self.layer2.forward(self.relu.forward(self.layer1.forward(x)))
        loss = self.loss.forward(z, y)
        return loss, np.mean((sigmoid(z) > 0.5) == y)


if __name__ == '__main__':
    data = pickle.load(open('cifar_2class_py2.p', 'rb'), encoding='latin1')
    train_x = data['train_data'] / 255.0
    train_y = data['train_labels']
    test_x = data['test_data'] / 255.0
    test_y = data['test_labels']

    num_examples, input_dims = train_x.shape
    num_epochs = 10
    num_batches = 1000
    hidden_units = 10
    batch_size = num_examples // num_batches

    mlp = MLP(input_dims, hidden_units)
    test_accuracies = []
    for epoch in range(num_epochs):
        total_loss = 0.0
        for b in range(num_batches):
            s = slice(b * batch_size, (b + 1) * batch_size)
            total_loss += mlp.train(train_x[s], train_y[s], 0.05, 0.8, 0.0001)
        test_loss, test_acc = mlp.evaluate(test_x, test_y)
        test_accuracies.append(test_acc)
        print("epoch", epoch + 1, "avg loss", total_loss / num_batches, "test acc", test_acc)
        print("DEBUG W2 norm", np.linalg.norm(mlp.layer2.W))

    plt.plot(test_accuracies)
    plt.savefig('dave.png')
