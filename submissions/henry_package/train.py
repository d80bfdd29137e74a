# run:  python train.py   (expects cifar_2class_py2.p next to it)
import pickle
import numpy as np
import matplotlib.pyplot as plt

from network import MLP

data = pickle.load(open('cifar_2class_py2.p', 'rb'), encoding='latin1')
train_x = data['train_data'] / 255.0
train_y = data['train_labels']
test_x = data['test_data'] / 255.0
test_y = data['test_labels']
mean = np.mean(train_x, axis=0)
train_x = train_x - mean
test_x = test_x - mean

num_examples, input_dims = train_x.shape
num_epochs = 10
num_batches = 1000
hidden_units = 10
batch_size = num_examples // num_batches

mlp = MLP(input_dims, hidden_units)
train_accs, test_accs = [], []
for epoch in range(num_epochs):
    perm = np.random.permutation(num_examples)
    total_loss = 0.0
    for b in range(num_batches):
        idx = perm[b * batch_size:(b + 1) * batch_size]
        total_loss += mlp.train(train_x[idx], train_y[idx], 0.01, 0.8, 0.001)
    train_loss, train_acc = mlp.evaluate(train_x, train_y)
    test_loss, test_acc = mlp.evaluate(test_x, test_y)
    train_accs.append(train_acc)
    test_accs.append(test_acc)
    print('Epoch %d: loss %.4f, train acc %.3f, test acc %.3f' % (epoch + 1, total_loss / num_batches, train_acc, test_acc))

plt.plot(train_accs, label='train')
plt.plot(test_accs, label='test')
plt.legend()
plt.savefig('henry_accuracy.png')
