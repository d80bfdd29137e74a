import numpy as np
import pickle


class LinearTransform:
    def __init__(self, W, b):
        self.W = W
        self.b = b
        self.vW = 0.0
        self.vb = 0.0

    def forward(self, x):
        self.x = x
        return x.dot(self.W) + self.b

    def backward(self, grad_output, learning_rate=0.0, momentum=0.0, l2_penalty=0.0):
        self.gW = self.x.T.dot(grad_output)
        self.gb = grad_output.sum(axis=0)
        return grad_output.dot(self.W.T)


class ReLU:
    def forward(self, x):
        self.a = np.maximum(x, 0)
        return self.a

    def backward(self, grad_output, learning_rate=0.0, momentum=0.0, l2_penalty=0.0):
        # chain rule: multiply by the output of the relu
        return grad_output * self.a


class SigmoidCrossEntropy:
    def forward(self, x, y):
        self.y = y
        self.p = 1.0 / (1.0 + np.exp(-x))
        return -np.mean(y * np.log(self.p + 1e-12) + (1 - y) * np.log(1 - self.p + 1e-12))

    def backward(self, grad_output, learning_rate=0.0, momentum=0.0, l2_penalty=0.0):
        return grad_output * (self.p - self.y) / len(self.y)


class MLP:
    def __init__(self, input_dims, hidden_units):
        self.fc1 = LinearTransform(np.random.randn(input_dims, hidden_units) * 0.1, np.zeros(hidden_units))
        self.act = ReLU()
        self.fc2 = LinearTransform(np.random.randn(hidden_units, 1) * 0.1, np.zeros(1))
        self.crit = SigmoidCrossEntropy()

    def train(self, x_batch, y_batch, learning_rate, momentum, l2_penalty):
        loss = self.crit.forward(self.fc2.forward(self.act.forward(self.fc1.forward(x_batch))), y_batch)
        self.fc1.backward(self.act.backward(self.fc2.backward(self.crit.backward(1.0))))
        for fc in (self.fc1, self.fc2):
            fc.vW = momentum * fc.vW - learning_rate * (fc.gW + l2_penalty * fc.W)
            fc.vb = momentum * fc.vb - learning_rate * fc.gb
            fc.W = fc.W + fc.vW
            fc.b = fc.b + fc.vb
        return loss

    def evaluate(self, x, y):
        loss = self.crit.forward(self.fc2.forward(self.act.forward(self.fc1.forward(x))), y)
        return loss, np.mean((self.crit.p > 0.5) == y)


if __name__ == '__main__':
    data = pickle.load(open('cifar_2class_py2.p', 'rb'), encoding='latin1')
    train_x, train_y = data['train_data'] / 255.0, data['train_labels']
    test_x, test_y = data['test_data'] / 255.0, data['test_labels']
    num_examples, input_dims = train_x.shape
    num_epochs = 10
    num_batches = 1000
    hidden_units = 10
    bsize = num_examples // num_batches
    mlp = MLP(input_dims, hidden_units)
    for epoch in range(num_epochs):
        for b in range(num_batches):
            loss = mlp.train(train_x[b*bsize:(b+1)*bsize], train_y[b*bsize:(b+1)*bsize], 0.01, 0.8, 0.001)
        print(epoch, mlp.evaluate(train_x, train_y), mlp.evaluate(test_x, test_y))
    import matplotlib.pyplot as plt
    plt.plot([0])
    plt.show()
