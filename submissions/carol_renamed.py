import numpy as np
import pickle
import matplotlib.pyplot as plt


class Dense:
    def __init__(self, in_dims, out_dims):
        limit = np.sqrt(6.0 / (in_dims + out_dims))          # Glorot uniform
        self.W = np.random.uniform(-limit, limit, size=(in_dims, out_dims))
        self.b = np.zeros(out_dims)
        self.W_vel = np.zeros_like(self.W)
        self.b_vel = np.zeros_like(self.b)

    def forward(self, x):
        self.x = x
        return self.x @ self.W + self.b

    def backward(self, grad_output, learning_rate=0.0, momentum=0.0, l2_penalty=0.0):
        grad_in = grad_output @ self.W.T
        gW = self.x.T @ grad_output + l2_penalty * self.W
        gb = grad_output.sum(axis=0)
        self.W_vel = momentum * self.W_vel - learning_rate * gW
        self.b_vel = momentum * self.b_vel - learning_rate * gb
        self.W = self.W + self.W_vel
        self.b = self.b + self.b_vel
        return grad_in


class Relu:
    def forward(self, x):
        self.mask = x > 0
        return np.where(self.mask, x, 0)

    def backward(self, grad_output, learning_rate=0.0, momentum=0.0, l2_penalty=0.0):
        return np.where(self.mask, grad_output, 0)


class SigmoidCrossEntropyLoss:
    def forward(self, logits, y):
        self.y = y
        self.probs = 1 / (1 + np.exp(-logits))
        return -np.mean(y * np.log(self.probs + 1e-8) + (1 - y) * np.log(1 - self.probs + 1e-8))

    def backward(self, grad_output=1.0, learning_rate=0.0, momentum=0.0, l2_penalty=0.0):
        return grad_output * (self.probs - self.y) / len(self.y)


class NeuralNetwork:
    def __init__(self, input_dims, hidden_units):
        self.dense1 = Dense(input_dims, hidden_units)
        self.relu = Relu()
        self.dense2 = Dense(hidden_units, 1)
        self.loss_fn = SigmoidCrossEntropyLoss()

    def _forward(self, x):
        return self.dense2.forward(self.relu.forward(self.dense1.forward(x)))

    def train(self, x_batch, y_batch, learning_rate, momentum, l2_penalty):
        loss = self.loss_fn.forward(self._forward(x_batch), y_batch)
        g = self.loss_fn.backward(1.0)
        g = self.dense2.backward(g, learning_rate, momentum, l2_penalty)
        g = self.relu.backward(g)
        self.dense1.backward(g, learning_rate, momentum, l2_penalty)
        return loss

    def evaluate(self, x, y):
        logits = self._forward(x)
        return self.loss_fn.forward(logits, y), np.mean((logits > 0) == (y == 1))


if __name__ == "__main__":
    with open("cifar_2class_py2.p", "rb") as f:
        data = pickle.load(f, encoding="latin1")
    train_x = data["train_data"] / 255.0
    train_y = data["train_labels"]
    test_x = data["test_data"] / 255.0
    test_y = data["test_labels"]

    num_epochs, num_batches, hidden_units = 10, 1000, 10
    n = train_x.shape[0]
    bs = n // num_batches
    model = NeuralNetwork(train_x.shape[1], hidden_units)

    losses = []
    for epoch in range(num_epochs):
        idx = np.random.permutation(n)
        for b in range(num_batches):
            batch = idx[b * bs:(b + 1) * bs]
            losses.append(model.train(train_x[batch], train_y[batch], 0.01, 0.8, 1e-3))
        print(f"epoch {epoch}: train {model.evaluate(train_x, train_y)} test {model.evaluate(test_x, test_y)}")

    plt.plot(losses, alpha=0.5)
    plt.xlabel("minibatch")
    plt.ylabel("loss")
    plt.show()
