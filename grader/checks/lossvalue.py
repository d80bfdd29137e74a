"""Finding the loss in what a student's loss layer gave back.

A forward pass may return the loss, a tuple (loss, p) or (p, loss), the probabilities while
it keeps the loss in an attribute (self.loss), or nothing at all. The loss probe's
reference inputs tell which it is: the candidate that equals the cross-entropy of those
inputs (mean, sum or per sample) fixes a `LossRule`, and every other check (loss sanity,
the gradient check's objective, the training curves) reads its own observations by the
same rule. Never the first element of a tuple blindly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..compare import compare
from ..reference import layers as ref

LOSS_NAME = re.compile(r"^(loss|cost|l|j|value|total|total_?loss|loss_?value|ce|bce|err|error|"
                       r"out|output|result|res)$", re.I)


@dataclass(frozen=True)
class LossRule:
    source: str          # returned | item | attr
    key: object = None   # the tuple index, or the attribute's name
    convention: str | None = None  # mean | sum | per-sample, when the reference confirmed it

    def apply(self, returned, attrs=None):
        if self.source == "none":
            return None
        if self.source == "item":
            return returned[self.key] if isinstance(returned, tuple) and len(returned) > self.key else None
        if self.source == "attr":
            return (attrs or {}).get(self.key)
        return returned

    def where(self) -> str:
        return {"item": f"element {self.key} of what forward returns",
                "attr": f"the attribute {self.key}"}.get(self.source, "forward's return value")


DEFAULT = LossRule("returned")
NONE = LossRule("none")  # the layer hands back no loss (probabilities only): use train's return


def is_number(v) -> bool:
    return isinstance(v, float) or isinstance(v, np.ndarray) and v.size == 1


def candidates(returned, attrs) -> list[tuple[LossRule, object]]:
    """Every place the loss might be, most likely first."""
    out = []
    if isinstance(returned, tuple):
        out += [(LossRule("item", i), v) for i, v in enumerate(returned) if is_number(v)]
        out += [(LossRule("item", i), v) for i, v in enumerate(returned)
                if isinstance(v, np.ndarray) and v.size > 1]
    elif returned is not None:
        out.append((DEFAULT, returned))
    named = sorted((attrs or {}).items(), key=lambda kv: not LOSS_NAME.match(kv[0]))
    out += [(LossRule("attr", k), v) for k, v in named if is_number(v) or isinstance(v, np.ndarray)]
    return out


def identify(returned, attrs, z, y, threshold: float) -> LossRule | None:
    """The rule under which the layer's output equals the cross-entropy of (z, y)."""
    per = ref.bce_per_sample(z, y)
    for rule, v in candidates(returned, attrs):
        arr = np.asarray(v, dtype=float)
        if arr.size == 1:
            for conv, exp in (("mean", per.mean()), ("sum", per.sum())):
                if compare(arr.reshape(()), np.asarray(exp), threshold, "loss").ok:
                    return LossRule(rule.source, rule.key, conv)
        elif arr.size == per.size and compare(arr.reshape(per.shape), per, threshold, "loss").ok:
            return LossRule(rule.source, rule.key, "per-sample")
    return None


def probabilities(returned, z) -> bool:
    """Whether forward handed back sigmoid(z) (alone or as the only array of a tuple)."""
    s = ref.sigmoid(z)
    arrays = [v for v in (returned if isinstance(returned, tuple) else (returned,))
              if isinstance(v, np.ndarray) and v.size == s.size]
    return any(np.allclose(v.reshape(s.shape), s, rtol=1e-6, atol=1e-9) for v in arrays)


def fallback(returned, attrs) -> LossRule:
    """The rule when the reference could not confirm one: a number returned, else the
    number in a returned tuple, else a loss-named number kept as an attribute."""
    if is_number(returned) or isinstance(returned, np.ndarray):
        return DEFAULT
    for rule, v in candidates(returned, attrs):
        if is_number(v):
            return rule
    return DEFAULT


def loss_value(got, attrs=None, rule: LossRule | None = None):
    """(the loss, its form): a float for a scalar loss, an array for per-sample losses;
    (None, 'missing') when there is none."""
    rule = rule or fallback(got, attrs)
    v = rule.apply(got, attrs)
    if v is None:
        return None, "missing"
    if is_number(v):
        return float(np.asarray(v).ravel()[0]), "scalar"
    return v, "per-sample"
