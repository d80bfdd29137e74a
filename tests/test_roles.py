"""roles.py: which class plays linear / relu / loss / mlp, by name and by shape."""
from __future__ import annotations

import ast
import textwrap

import pytest

from grader.load import class_infos
from grader.roles import match_roles, rank_files


def classes(src: str):
    return class_infos(ast.parse(textwrap.dedent(src)), "s.py")


PASS = "    def forward(self, x): pass\n    def backward(self, g): pass\n"


def cls(name: str, init: str = "", extra: str = "") -> str:
    head = f"class {name}:\n"
    if init:
        head += f"    def __init__(self, {init}): pass\n"
    return head + PASS + extra


def test_classic_template():
    src = cls("LinearTransform", "W, b") + cls("ReLU") + cls("SigmoidCrossEntropy") + \
        "class MLP:\n    def __init__(self, input_dims, hidden_units): pass\n    def train(self, x, y): pass\n    def evaluate(self, x, y): pass\n"
    assert match_roles(classes(src)) == {"linear": "LinearTransform", "relu": "ReLU",
                                         "loss": "SigmoidCrossEntropy", "mlp": "MLP"}


@pytest.mark.parametrize("linear,relu,loss,mlp", [
    ("Dense", "Relu", "SigmoidCrossEntropyLoss", "FeedForwardNeuralNetwork"),
    ("LinearLayer", "ReLULayer", "SigmoidCrossEntropy", "NN"),
    ("Linear", "Relu", "SigmoidBCELoss", "Network"),
])
def test_renamed_classes_by_name(linear, relu, loss, mlp):
    src = cls(linear, "in_dims, out_dims") + cls(relu) + cls(loss) + \
        f"class {mlp}:\n    def train(self, x, y): pass\n"
    assert match_roles(classes(src)) == {"linear": linear, "relu": relu, "loss": loss, "mlp": mlp}


def test_split_sigmoid_and_cross_entropy():
    src = cls("LinearTransform", "W, b") + cls("ReLU") + cls("Sigmoid") + cls("CrossEntropy") + \
        "class Network:\n    def train(self, x, y): pass\n"
    roles = match_roles(classes(src))
    assert roles["loss"] == ["Sigmoid", "CrossEntropy"]
    assert roles["linear"] == "LinearTransform"     # Sigmoid is never taken for the linear layer


def test_no_mlp_class():
    roles = match_roles(classes(cls("LinearTransform", "W, b") + cls("ReLU") + cls("SigmoidCrossEntropy")))
    assert roles["mlp"] is None and roles["linear"] == "LinearTransform"


def test_linear_found_by_shape_alone():
    # No name hint at all: two array parameters and forward/backward make it the linear layer.
    roles = match_roles(classes(cls("Thing", "weights, bias") + cls("ReLU")))
    assert roles["linear"] == "Thing"
    roles = match_roles(classes(cls("Thing", "n_in, n_out") + cls("ReLU")))
    assert roles["linear"] == "Thing"


def test_class_without_backward_plays_no_layer_role():
    src = "class LinearTransform:\n    def __init__(self, W, b): pass\n    def forward(self, x): pass\n" + cls("ReLU")
    roles = match_roles(classes(src))
    assert roles["linear"] is None and roles["relu"] == "ReLU"


def test_relu_named_class_never_the_linear_layer():
    roles = match_roles(classes(cls("ReLULayer", "in_dims, out_dims")))
    assert roles["linear"] is None and roles["relu"] == "ReLULayer"


def test_rubric_overrides():
    src = cls("FC", "a, b") + cls("Rectifier") + cls("Sig") + cls("BinaryXent") + "class Model:\n    pass\n"
    found = classes(src)
    roles = match_roles(found, {"linear": "FC", "loss": ["Sig", "BinaryXent"], "mlp": "Model"})
    assert roles["linear"] == "FC" and roles["loss"] == ["Sig", "BinaryXent"] and roles["mlp"] == "Model"
    assert roles["relu"] == "Rectifier"               # not overridden: still found by name


def test_override_naming_a_class_this_submission_lacks_falls_back_to_detection():
    # the course calls it FullyConnected; this student kept LinearTransform
    roles = match_roles(classes(cls("LinearTransform", "W, b")), {"linear": "FullyConnected"})
    assert roles["linear"] == "LinearTransform"


def test_override_takes_the_class_away_from_other_roles():
    # "ReLU" forced as the loss must not also be the relu.
    roles = match_roles(classes(cls("ReLU") + cls("LinearTransform", "W, b")), {"loss": "ReLU"})
    assert roles["loss"] == "ReLU" and roles["relu"] is None


def test_rank_files_prefers_the_file_with_layers():
    by_file = {
        "train.py": classes("class Trainer:\n    def train(self): pass\n"),
        "layers.py": classes(cls("LinearTransform", "W, b") + cls("ReLU")),
        "utils.py": [],
    }
    assert rank_files(by_file) == "layers.py"
    assert rank_files({"a.py": [], "b.py": classes("class A:\n    pass\n")}) is None
