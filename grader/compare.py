"""The one array-comparison engine, in numpy.testing's order: type, shape, non-finite, values.

It returns a Mismatch record (never raises) from which checks format a one-line message and
`details`. Values are compared by the course notes' relative error
|a - b| / max(|a|, |b|), with entries where both are (near) zero counted as equal.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Entries whose magnitudes are both below this fraction of the expected array's scale are
# "both zero": float rounding there would otherwise give relative errors near 1.
ZERO_FLOOR = 1e-10


@dataclass(frozen=True)
class Mismatch:
    ok: bool
    quantity: str
    reason: str = ""                 # "", "type", "shape", "nonfinite", "values"
    expected_shape: tuple = ()
    got_shape: tuple | None = None
    mismatched: int = 0
    total: int = 0
    max_abs_diff: float = 0.0
    max_rel_error: float = 0.0
    worst: dict = field(default_factory=dict)
    threshold: float = 0.0
    note: str = ""                   # e.g. "looks transposed", "(7,) where (7, 1) is needed"

    def details(self) -> dict:
        d = {"quantity": self.quantity, "expected_shape": list(self.expected_shape),
             "got_shape": list(self.got_shape) if self.got_shape is not None else None,
             "threshold": self.threshold}
        if self.reason == "values" or self.ok:
            d.update(mismatched=self.mismatched, total=self.total,
                     max_abs_diff=self.max_abs_diff, max_rel_error=self.max_rel_error)
        if self.worst:
            d["worst"] = self.worst
        if self.note:
            d["note"] = self.note
        return d

    def sentence(self, who: str) -> str:
        """One line naming the layer and quantity, going past 'inaccurate'."""
        q = f"{who} {self.quantity}"
        if self.reason == "type":
            return f"{q}: expected an array of shape {fmt_shape(self.expected_shape)}, got {self.note}"
        if self.reason == "shape":
            return (f"{q} has shape {fmt_shape(self.got_shape)}, expected "
                    f"{fmt_shape(self.expected_shape)}" + (f" ({self.note})" if self.note else ""))
        if self.reason == "nonfinite":
            return f"{q} holds {self.note} at {self.worst.get('index')}; expected finite numbers"
        if self.reason == "values":
            w = self.worst
            return (f"{q}: {self.mismatched} of {self.total} entries off (max relative error "
                    f"{self.max_rel_error:.2g}); at {w['index']} expected {w['expected']:.6g}, "
                    f"got {w['got']:.6g}")
        return f"{q} matches (max relative error {self.max_rel_error:.1e})"


def fmt_shape(shape) -> str:
    if shape is None:
        return "none"
    shape = tuple(shape)
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def rel_error(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    scale = max(float(np.max(np.abs(expected), initial=0.0)), 1.0)
    denom = np.maximum(np.abs(got), np.abs(expected))
    both_zero = denom <= ZERO_FLOOR * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(got - expected) / np.where(both_zero, 1.0, denom)
    return np.where(both_zero, 0.0, rel)


def shape_note(got: tuple, expected: tuple) -> str:
    if tuple(reversed(got)) == tuple(expected) and len(got) == 2:
        return "it looks transposed"
    if len(got) + 1 == len(expected) and expected[-1] == 1 and got == expected[:-1]:
        return f"a flat {fmt_shape(got)} where a column {fmt_shape(expected)} is needed"
    if len(got) == len(expected) + 1 and got[-1] == 1 and got[:-1] == expected:
        return f"a column {fmt_shape(got)} where {fmt_shape(expected)} is needed"
    if len(got) == 2 and len(expected) == 1 and got[1] == expected[0]:
        return "one row per sample: the batch was not summed over"
    if len(got) == 2 and len(expected) == 2 and got[1] == expected[1] and got[0] != expected[0]:
        return f"{got[0]} rows where {expected[0]} are needed"
    return ""


def compare(got, expected, threshold: float, quantity: str) -> Mismatch:
    expected = np.asarray(expected, dtype=np.float64)
    base = dict(quantity=quantity, expected_shape=expected.shape, threshold=threshold)
    if isinstance(got, (int, float)) and not isinstance(got, bool) and expected.size == 1:
        got = np.full(expected.shape, float(got))
    if not isinstance(got, np.ndarray):
        return Mismatch(False, reason="type", note=describe_value(got), **base)
    if got.shape != expected.shape:
        return Mismatch(False, reason="shape", got_shape=got.shape,
                        note=shape_note(got.shape, expected.shape), **base)
    base["got_shape"] = got.shape
    bad = ~np.isfinite(got)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(got[idx]) else "inf"
        return Mismatch(False, reason="nonfinite", note=kind, mismatched=int(bad.sum()),
                        total=got.size, worst={"index": list(idx), "expected": float(expected[idx]),
                                               "got": kind}, **base)
    rel = rel_error(got, expected)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(rel)), rel.shape)) if rel.size else ()
    off = rel > threshold
    return Mismatch(
        not off.any(), reason="values" if off.any() else "", mismatched=int(off.sum()),
        total=int(got.size), max_abs_diff=float(np.max(np.abs(got - expected), initial=0.0)),
        max_rel_error=float(np.max(rel, initial=0.0)),
        worst={"index": list(worst), "expected": float(expected[worst]), "got": float(got[worst])} if rel.size else {},
        **base,
    )


def describe_value(v) -> str:
    if v is None:
        return "None (nothing was returned)"
    if isinstance(v, tuple):
        return f"a tuple of {len(v)} values"
    if isinstance(v, dict):
        return "a dict"
    if isinstance(v, str):
        return v if v.startswith(("an ", "a ", "object", "array")) else f"the text {v[:40]!r}"
    return f"a {type(v).__name__}"
