"""What the harness remembers between training steps (layers found, layer adapters,
signatures) is found again as soon as the student's network changes what it holds."""
from __future__ import annotations

import types

import numpy as np

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
