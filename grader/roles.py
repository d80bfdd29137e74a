"""Which student class plays which role (linear, relu, loss, mlp), found by name and shape.

Names vary (LinearTransform / Dense / Linear, Relu, SigmoidCrossEntropyLoss or Sigmoid +
CrossEntropy as two classes, MLP / NN / FeedForwardNeuralNetwork, or no MLP at all), so a
class scores points for its name, its methods and its constructor. The rubric's [roles]
table overrides any of it when a course uses other names. Runs on the grader's side from
the AST; the harness then probes how each class is really called.
"""
from __future__ import annotations

import re
from typing import Iterable

from .load import ClassInfo

ROLE_NAMES = {
    "linear": re.compile(r"linear|dense|affine|fully_?connected|^fc\d*$|transform|layer$", re.I),
    "relu": re.compile(r"relu|rectif", re.I),
    "loss": re.compile(r"sigmoid.*(cross|entropy|loss|bce|xent|nll)|(cross|entropy|loss|bce|xent).*sigmoid|"
                       r"^bce|logistic.*loss|^binary_?cross|^xent", re.I),
    "sigmoid": re.compile(r"sigmoid|logistic", re.I),
    "crossentropy": re.compile(r"cross|entropy|bce|xent|^loss$|log_?loss|nll", re.I),
    "mlp": re.compile(r"mlp|network|^nn$|^net$|net$|model|sequential|perceptron|classifier", re.I),
}
from .harness import names as method_names

# a layer has a forward-like and a backward-like method, under any name students use
PASS_METHODS = (frozenset(method_names.LOSS_FORWARD) - {"__call__"} | {"__call__"},
                frozenset(method_names.LOSS_BACKWARD))
DIM_PARAMS = re.compile(r"dim|size|in|out|units|hidden|fan|n_|num", re.I)
ARRAY_PARAMS = re.compile(r"^(w|weights?|b|bias(es)?)$", re.I)


def has_pass_methods(c: ClassInfo) -> bool:
    methods = set(c.methods)
    return all(methods & group for group in PASS_METHODS)


def score(c: ClassInfo, role: str) -> int:
    """How much a class looks like `role`; 0 means not at all."""
    name_hit = bool(ROLE_NAMES[role].search(c.name))
    if role == "mlp":
        trains = bool(set(method_names.TRAIN) - {"step"} & set(c.methods))
        evaluates = bool(set(method_names.EVALUATE) & set(c.methods))
        return (3 if name_hit else 0) + (2 if trains else 0) + (1 if evaluates else 0)
    if not has_pass_methods(c):
        # a loss whose one method returns the loss and its gradient together (cs231n style)
        fused = role in ("loss", "crossentropy") and name_hit and set(method_names.LOSS_FORWARD) & set(c.methods)
        return 3 if fused else 0
    points = 3 if name_hit else 0
    params = [p for p in c.init_params]
    if role == "linear":
        if len(params) >= 2 and (all(ARRAY_PARAMS.match(p) for p in params[:2])
                                 or all(DIM_PARAMS.search(p) for p in params[:2])):
            points += 2
        if ROLE_NAMES["relu"].search(c.name) or ROLE_NAMES["sigmoid"].search(c.name):
            return 0
    elif role in ("relu", "sigmoid", "crossentropy", "loss"):
        points += 1 if not params else 0
        if role == "sigmoid" and ROLE_NAMES["crossentropy"].search(c.name):
            return 0
        if role == "crossentropy" and ROLE_NAMES["sigmoid"].search(c.name):
            return 0
    return points if name_hit or role == "linear" and points >= 2 else 0


def best(classes: Iterable[ClassInfo], role: str, taken: set[str]) -> str | None:
    scored = [(score(c, role), -i, c.name) for i, c in enumerate(classes) if c.name not in taken]
    scored = [s for s in scored if s[0] > 0]
    return max(scored)[2] if scored else None


def match_roles(classes: list[ClassInfo], overrides: dict | None = None) -> dict:
    """role -> class name (the loss may be [sigmoid, crossentropy]); None when absent."""
    overrides = overrides or {}
    known = {c.name for c in classes}
    roles: dict = {}
    taken: set[str] = set()
    for role in ("loss", "relu", "linear", "mlp"):
        forced = overrides.get(role)
        names = forced if isinstance(forced, list) else [forced] if forced else []
        if names and all(n in known for n in names):
            roles[role] = forced
        else:  # no override, or one this submission does not use: find the class as usual
            roles[role] = best(classes, role, taken)
        if isinstance(roles[role], str):
            taken.add(roles[role])
        elif isinstance(roles[role], list):
            taken.update(roles[role])
        if role == "loss" and roles["loss"] is None:
            sig, ce = best(classes, "sigmoid", taken), best(classes, "crossentropy", taken)
            if sig and ce:
                roles["loss"] = [sig, ce]
                taken |= {sig, ce}
            elif ce:
                roles["loss"] = ce
                taken.add(ce)
    return roles


def rank_files(classes_by_file: dict[str, list[ClassInfo]]) -> str | None:
    """The file that defines the layers: most layer-like classes, then the MLP."""
    best_file, best_score = None, 0
    for name, classes in classes_by_file.items():
        layerish = sum(1 for c in classes if has_pass_methods(c))
        roles = match_roles(classes)
        points = 10 * layerish + sum(1 for r in roles.values() if r)
        if points > best_score:
            best_file, best_score = name, points
    return best_file
