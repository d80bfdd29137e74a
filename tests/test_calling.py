"""The harness's call binding: parameter meanings from names, parts of names, defaults,
position and the rubric's [interface] table (grader/harness/calling.py)."""
from __future__ import annotations

import numpy as np
import pytest

from grader.harness.boundary import ProbeError
from grader.harness.calling import Choices, Keep, bind, bindings, meaning_of, unexplained


def train_offer(x=1, y=2):
    return {"x": x, "y": y, "lr": 0.1, "momentum": 0.9, "l2": 0.01, "epochs": 1,
            "epoch": Choices([0, 1]), "batch_size": 7, "batch_index": 0,
            "train_flag": Choices([True, "train"]), "quiet": Keep(False), "seed": 0}


@pytest.mark.parametrize("name, meaning", [
    ("learning_rate", "lr"), ("lr_rate", "lr"), ("eta", "lr"), ("learningRate", "lr"),
    ("mtm", "momentum"), ("mu", "momentum"), ("l2_p", "l2"), ("weight_decay", "l2"),
    ("reg_lambda", "l2"), ("num_epochs", "epochs"), ("ep", "epoch"), ("x_batch", "x"),
    ("X_train", "x"), ("y_batch", "y"), ("labels", "y"), ("batch_idx", "batch_index"),
    ("train_or_test", "train_flag"), ("verbose", "quiet"), ("batch_size", "batch_size"),
])
def test_meanings_from_names_and_their_parts(name, meaning):
    assert meaning_of(name, tuple(train_offer())) == meaning


def test_the_offered_meanings_decide_what_a_short_name_means():
    # `b` is a bias for forward(x, W, b) and a batch index for train(x, y, b)
    assert meaning_of("b", ("x", "W", "b")) == "b"
    assert meaning_of("b", ("x", "y", "batch_index")) == "batch_index"


def test_unknown_names_take_the_templates_order_and_defaults_are_kept():
    def train(self, a, c, speed, drag, shrink, verbose=True, plot=None):
        return a, c, speed, drag, shrink, verbose, plot
    got = bind(train.__get__(object()), train_offer("X", "Y"), ("x", "y", "lr", "momentum", "l2"))()
    assert got == ("X", "Y", 0.1, 0.9, 0.01, True, None)


def test_a_required_parameter_nothing_explains_is_named():
    def train(self, x, y, lr, momentum, l2, foo, bar):
        pass
    with pytest.raises(ProbeError, match="'foo'.*\\[interface\\]"):
        bind(train.__get__(object()), train_offer(), ("x", "y", "lr", "momentum", "l2"))


def test_interface_table_names_a_meaning_or_a_fixed_value():
    def train(self, data, target, speed, friction_q, mode):
        return data, target, speed, friction_q, mode
    overrides = {"speed": "lr", "friction_q": "momentum", "mode": ["literal", "fit"]}
    got = bind(train.__get__(object()), train_offer("X", "Y"), ("x", "y"), overrides)()
    assert got == ("X", "Y", 0.1, 0.9, "fit")


def test_choices_give_one_binding_each_in_order():
    def train(self, x, y, train_or_test):
        return train_or_test
    options = bindings(train.__get__(object()), train_offer(), ("x", "y"))
    assert [b() for b in options] == [True, "train"]


def test_arrays_are_copied_for_each_call():
    x = np.zeros(3)

    def f(self, x):
        x += 1
        return x
    b = bind(f.__get__(object()), {"x": x}, ("x",))
    b()
    assert not x.any()


def test_unexplained_counts_required_parameters_by_name_only():
    def backward(self, t):
        pass
    def other(self, grad_output, zzz):
        pass
    offered = {"y": 1, "grad": 2, "logits": 3}
    assert unexplained(backward.__get__(object()), offered) == 0  # t reads as the labels
    assert unexplained(other.__get__(object()), offered) == 1


class Shapes:
    """Signatures bind() meets: defaults kept, keyword-only parameters, a Keep whose
    parameter is required, choices, a parameter the [interface] table fixes."""

    def train(self, x_batch, y_batch, learning_rate, momentum=0.0, *, l2_penalty=0.0, verbose=False):
        return x_batch, y_batch, learning_rate, momentum, l2_penalty, verbose

    def step(self, x, y, verbose, epoch, lr=0.5):
        return x, y, verbose, epoch, lr

    def fit(self, data, labels, mode, eta):
        return data, labels, mode, eta

    def plain(self, a, b=3, *rest, c, **more):
        return a, b, rest, c, more


@pytest.mark.parametrize("name, overrides", [
    ("train", None), ("step", None), ("fit", {"mode": "train_flag"}),
    ("fit", {"mode": 7}), ("plain", {"a": "x", "c": "y"}),
])
def test_bind_is_the_first_of_bindings(name, overrides):
    fn = getattr(Shapes(), name)
    offered = train_offer(np.arange(3.0), np.ones(3))
    one, first = bind(fn, offered, ("x", "y"), overrides), bindings(fn, offered, ("x", "y"), overrides)[0]
    assert (one.args.__len__(), sorted(one.kwargs), one.meanings) == \
        (first.args.__len__(), sorted(first.kwargs), first.meanings)
    assert repr(one()) == repr(first())
    assert one.args[0] is not offered["x"]  # a copy, as every binding's arrays are


def test_a_made_value_is_built_only_when_asked_and_then_shared():
    """construct() offers a seeded generator as Made: built only for a parameter that takes
    one, and the same object for every such parameter, as an offered value would be."""
    from grader.harness.calling import Made, call
    built = []

    def make():
        built.append(np.random.default_rng(0))
        return built[-1]

    class Plain:
        def __init__(self, seed=1):
            self.seed = seed

    class Two:
        def __init__(self, rng, generator):
            self.a, self.b = rng, generator

    assert call(Plain, {"seed": 0, "rng": Made(make)}, ()).seed == 0 and not built
    two = call(Two, {"rng": Made(make)}, ())
    assert two.a is two.b is built[0] and len(built) == 1


def test_made_values_inside_choices_and_a_config_that_is_pickled():
    """A network constructor's offer holds its generators and starting weights as Made, also
    among Choices: a parameter that takes one gets the built value, the first choice first,
    and a config dict handed to the constructor still pickles (as the values it holds)."""
    import pickle

    from grader.harness.calling import ByMeaning, Made, call
    from grader.harness.network import build_offer

    class Net:
        def __init__(self, config, rng, W1):
            self.config, self.rng, self.W1 = config, rng, W1
            self.saved = pickle.dumps(config)  # a student checkpointing what it was given

    x, y = np.zeros((4, 2)), np.zeros((4, 1))
    offer = build_offer(None, x, y, 3, 5, {})
    net = call(Net, offer, ())
    assert isinstance(net.rng, np.random.Generator) and net.W1.shape == (2, 3)
    assert np.array_equal(net.W1, np.random.RandomState(5).randn(2, 3) * 0.1)
    again = pickle.loads(net.saved)
    assert isinstance(again, ByMeaning) and again["hidden"] == 3
    assert pickle.loads(pickle.dumps(Made(lambda: [1, 2]))) == [1, 2]
