"""What the harness remembers between training steps (layers found, layer adapters,
signatures) is found again as soon as the student's network changes what it holds."""
from __future__ import annotations

import types

import numpy as np

from conftest import GOOD_LAYERS
from grader.harness.calling import params_of
from grader.harness.drivers import Network


class Linear:
    def __init__(self, d_in, d_out):
        self.W, self.b = np.zeros((d_in, d_out)), np.zeros(d_out)


class ReLU:
    pass


class Parts:
    pass


class Net:
    def __init__(self):
        self.parts = Parts()  # layers one level down: the network's own attributes do not change
        self.parts.first, self.parts.act, self.parts.second = Linear(3, 4), ReLU(), Linear(4, 1)
        self.extra = []


def network(net):
    shell = Network.__new__(Network)
    shell.net, shell.d_in, shell.hidden = net, 3, 4
    shell.classes = {"linear": Linear, "relu": ReLU}
    shell.student = types.SimpleNamespace(methods=lambda *a: (), args=lambda role: {})
    return shell


def labels(shell):
    return {label: obj for _, label, obj in shell.layers()}


def test_layers_found_again_when_a_nested_layer_is_rebuilt():
    net = Net()
    shell = network(net)
    assert labels(shell)["linear1"] is net.parts.first
    net.parts.first = Linear(3, 4)  # rebuilt in place of the old one, two levels down
    assert labels(shell)["linear1"] is net.parts.first


def test_layers_found_again_when_a_list_gains_one():
    net = Net()
    shell = network(net)
    assert len(shell.layers()) == 3
    net.extra.append(Linear(3, 4))
    assert len(shell.layers()) == 4


def test_adapters_kept_while_the_layers_are_the_same():
    net = Net()
    shell = network(net)
    first = shell.layer_objects()
    first[0].cols = True  # what an adapter learned about the layer (a column layout) is kept
    assert shell.layer_objects() is first
    net.parts.second = Linear(4, 1)
    again = shell.layer_objects()
    assert again is not first and again[2].obj is net.parts.second


def test_signatures_of_bound_and_plain_functions_are_told_apart():
    class Layer:
        def forward(self, x, train=True):
            return x
    bound, plain = Layer().forward, Layer.forward
    assert [p.name for p in params_of(bound)] == ["x", "train"]
    assert [p.name for p in params_of(plain)] == ["self", "x", "train"]
    assert [p.name for p in params_of(bound)] == ["x", "train"]  # from the cache, unchanged
    params_of(bound).pop()  # a caller changing its list changes nothing remembered
    assert len(params_of(bound)) == 2


# ---------------------------------------------------------------- the bound train call

MLP = '''
class MLP:
    SEEN = []
    def __init__(self, d_in, hidden):
        self.l1 = LinearTransform(np.random.randn(d_in, hidden) * 0.1, np.zeros(hidden))
        self.l2 = LinearTransform(np.random.randn(hidden, 1) * 0.1, np.zeros(1))
        self.act, self.loss = ReLU(), SigmoidCrossEntropy()
    def step_layers(self, x, y, lr):
        value = self.loss.forward(self.l2.forward(self.act.forward(self.l1.forward(x))), y)
        self.l1.backward(self.act.backward(self.l2.backward(self.loss.backward(1.0))))
        for layer in (self.l1, self.l2):
            layer.W -= lr * layer.dW
            layer.b -= lr * layer.db
        return value
'''

TRAIN_IN_PLACE = '''
    def train(self, x_batch, y_batch, learning_rate, momentum, l2_penalty):
        MLP.SEEN.append(float(x_batch.sum()))
        x_batch *= 2  # changes its own input in place
        return self.step_layers(x_batch, y_batch, learning_rate)
'''

TRAIN_CONFIG = '''
    def train(self, x_batch, y_batch, config):
        MLP.SEEN.append(config["learning_rate"])
        config["learning_rate"] *= 0.5  # a decay kept in the dict it was handed
        return self.step_layers(x_batch, y_batch, MLP.SEEN[-1])
'''


def student_network(tmp_path, monkeypatch, train: str, name: str):
    import sys
    from grader.harness.student import Student
    (tmp_path / f"{name}.py").write_text(GOOD_LAYERS + MLP + train)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(Network, "CHOSEN", {})
    roles = {r: f"{name}:{c}" for r, c in (("linear", "LinearTransform"), ("relu", "ReLU"),
                                             ("loss", "SigmoidCrossEntropy"), ("mlp", "MLP"))}
    student = Student({"module": name, "roles": roles})
    x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    net = Network(student, x, y, 4, seed=0)
    sys.modules[name].MLP.SEEN.clear()
    return net, sys.modules[name].MLP, x, y


def test_a_repeated_train_call_gets_fresh_arrays_every_step(tmp_path, monkeypatch):
    net, mlp, x, y = student_network(tmp_path, monkeypatch, TRAIN_IN_PLACE, "inplace_student")
    for _ in range(4):
        net.step(x, y, 0.5, 0.0, 0.0)
    assert mlp.SEEN == [4.0] * 4  # x as the grader made it, each time
    assert net._step_call is not None  # bound once, repeated
    assert x.sum() == 4.0


def test_a_config_dict_is_offered_anew_every_step(tmp_path, monkeypatch):
    net, mlp, x, y = student_network(tmp_path, monkeypatch, TRAIN_CONFIG, "config_student")
    for _ in range(4):
        net.step(x, y, 0.5, 0.0, 0.0)
    assert mlp.SEEN == [0.5] * 4  # what one step did to its dict does not reach the next
    assert getattr(net, "_step_call", None) is None
