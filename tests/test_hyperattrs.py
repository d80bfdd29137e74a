"""Hyper-parameters kept as attributes: found once, set at every step, found again when the
network's own attributes change."""
from __future__ import annotations

import types

import numpy as np

from grader.harness.drivers import Network
from grader.harness.hyperattrs import apply_hyper, hyper_key, hyper_targets, set_hyper_attrs


class Layer:
    def __init__(self):
        self.learning_rate = 0.5
        self.mu = 0.9
        self.name = "lr"  # a string under a hyper name's value is not a hyper-parameter


class Net:
    def __init__(self):
        self.layers = [Layer()]
        self.config = {"weight_decay": 0.01, "epochs": 10}
        self.flag = True


def test_names_read_by_whole_name():
    assert hyper_key("learning_rate") == "lr"
    assert hyper_key("_mtm") == "momentum"
    assert hyper_key("l2_penalty") == "l2"
    assert hyper_key("lr_schedule") is None and hyper_key("epochs") is None


def test_targets_found_in_layers_and_dicts_and_set_as_offered():
    net = Net()
    targets = hyper_targets(net)
    assert {(name, which) for _, name, which in targets} == \
        {("learning_rate", "lr"), ("mu", "momentum"), ("weight_decay", "l2")}
    assert apply_hyper(targets, 0.1, 0.0, 0.2) == {"lr", "momentum", "l2"}
    assert net.layers[0].learning_rate == 0.1 and net.layers[0].mu == 0.0
    assert net.config == {"weight_decay": 0.2, "epochs": 10} and net.layers[0].name == "lr"


def test_module_globals_and_class_attributes_as_extra_holders():
    module = types.SimpleNamespace(LEARNING_RATE=0.3)
    assert set_hyper_attrs(object(), 0.05, 0.0, 0.0, extra=[module]) == {"lr"}
    assert module.LEARNING_RATE == 0.05


def test_floats_stay_floats_and_read_only_holders_are_skipped():
    class Frozen:
        __slots__ = ()
        lr = 1  # a class attribute on a slotted class: read through the class, not settable here
    holder = {"lr": 1.0}
    assert apply_hyper([(holder, "lr", "lr"), (Frozen(), "lr", "lr")], 2, 0, 0) == {"lr"}
    assert holder["lr"] == 2.0 and isinstance(holder["lr"], float)


def test_network_finds_targets_again_when_a_lazy_network_adds_layers():
    net = Net()
    shell = Network.__new__(Network)  # only the cache is under test
    shell.net, shell.hyper_holders = net, lambda: []
    shell.classes, shell.d_in, shell.hidden = {"layer": Layer}, 3, 4
    first = shell.hyper_targets()
    assert shell.hyper_targets() is first  # nothing changed: the walk is not repeated
    net.layers.append(Layer())  # appended to the list it already had
    assert len(shell.hyper_targets()) == len(first) + 2
    net.config = {"lr": 0.1}  # a new object under an old name
    assert ("lr", "lr") in {(n, w) for _, n, w in shell.hyper_targets()}


def test_network_finds_targets_again_when_a_nested_layer_is_rebuilt():
    class Linear:
        def __init__(self):
            self.W, self.b, self.lr = np.zeros((3, 4)), np.zeros(4), 0.5

    class Holder:
        pass

    class Rebuilds:
        def __init__(self):
            self.parts = Holder()  # the network's own attributes never change
            self.parts.first = Linear()

    net = Rebuilds()
    shell = Network.__new__(Network)
    shell.net, shell.hyper_holders = net, lambda: []
    shell.classes, shell.d_in, shell.hidden = {"linear": Linear}, 3, 4
    apply_hyper(shell.hyper_targets(), 0.01, 0.0, 0.0)
    assert net.parts.first.lr == 0.01
    net.parts.first = Linear()  # rebuilt two levels down, with its own rate again
    apply_hyper(shell.hyper_targets(), 0.01, 0.0, 0.0)
    assert net.parts.first.lr == 0.01
