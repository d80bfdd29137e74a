"""Turn a check's `details` into display blocks, suspected mistake first.

The contract names three shapes of details (array comparison, gradient check, training
curves). Each recogniser takes the keys it knows and leaves the rest for a generic
key/value table, so a new key a check adds later still shows up, and a missing or oddly
typed key never breaks a page.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from . import svg
from .fmt import num, number, shape, text

ARRAY_KEYS = ("quantity", "expected_shape", "got_shape", "mismatched", "total",
              "max_abs_diff", "max_rel_error", "worst", "threshold")
GRAD_KEYS = ("rel_error", "threshold", "ratio")
TRAIN_KEYS = ("curves", "chance_loss", "verdict")


@dataclass
class Block:
    """One piece of evidence; `kind` picks the template macro that draws it."""
    kind: str
    title: str = ""
    rows: list = field(default_factory=list)
    charts: list = field(default_factory=list)
    note: str = ""


def blocks(details: Any) -> list[Block]:
    """All evidence blocks of one check, in reading order."""
    if not isinstance(details, Mapping) or not details:
        return []
    d, used, out = dict(details), {"suspected"}, []
    if d.get("suspected"):
        out.append(Block("suspected", "Suspected mistake", note=text(d["suspected"])))
    if isinstance(d.get("rel_error"), Mapping):
        out.append(_gradcheck(d))
        used.update(GRAD_KEYS)
    elif any(k in d for k in ("worst", "expected_shape", "max_abs_diff", "mismatched")):
        out.append(_array(d))
        used.update(ARRAY_KEYS)
    if isinstance(d.get("curves"), list):
        out.append(_training(d))
        used.update(TRAIN_KEYS)
    rest = [(str(k), text(v)) for k, v in d.items() if k not in used]
    if rest:
        out.append(Block("other", "Other details", rows=rest))
    return out


def _array(d: dict) -> Block:
    q = text(d.get("quantity") or "value")
    rows = []
    exp_s, got_s = d.get("expected_shape"), d.get("got_shape")
    if exp_s is not None or got_s is not None:
        same = exp_s == got_s
        rows.append(("shape", shape(exp_s), shape(got_s), "" if same else "shapes differ"))
    w = d.get("worst")
    if isinstance(w, Mapping):
        idx = w.get("index")
        where = f"{q}{list(idx)}" if isinstance(idx, (list, tuple)) else f"{q} (worst entry)"
        rows.append((f"worst entry {where}", num(w.get("expected")), num(w.get("got")), ""))
    summary = []
    if d.get("mismatched") is not None:
        total = d.get("total")
        pct = ""
        if number(total) and number(d["mismatched"]) is not None:
            pct = f" ({100 * number(d['mismatched']) / number(total):.0f}%)"
        summary.append(f"{text(d['mismatched'])} of {text(total)} entries differ{pct}")
    if d.get("max_abs_diff") is not None:
        summary.append(f"max abs diff {num(d['max_abs_diff'])}")
    if d.get("max_rel_error") is not None:
        summary.append(f"max rel error {num(d['max_rel_error'])}")
    if d.get("threshold") is not None:
        summary.append(f"tolerance {num(d['threshold'])}")
    return Block("array", f"Expected vs got: {q}", rows=rows, note="; ".join(summary))


def _gradcheck(d: dict) -> Block:
    thr = number(d.get("threshold"))
    ratios = d.get("ratio") if isinstance(d.get("ratio"), Mapping) else {}
    rows = []
    for name, err in d["rel_error"].items():
        e = number(err)
        bad = e is None or math.isnan(e) or (thr is not None and e > thr)
        ratio = ratios.get(name)
        rows.append((text(name), num(err), "off" if bad else "ok",
                     f"yours ≈ {num(ratio)} × numerical" if ratio is not None else ""))
    note = f"relative error above {num(thr)} is off" if thr is not None else ""
    return Block("gradcheck", "Gradient check: relative error per parameter", rows=rows, note=note)


def _training(d: dict) -> Block:
    curves = [c for c in d["curves"] if isinstance(c, Mapping)]
    chance = number(d.get("chance_loss"))
    chance = chance if chance is not None and math.isfinite(chance) and chance > 0 else None
    cap = (chance or 1.0) * 4
    charts = [svg.line_chart(curves, "loss", title="loss per epoch", ref=chance,
                             ref_label="chance (ln 2)" if chance and abs(chance - math.log(2)) < 1e-3
                             else "chance", cap=cap)]
    if any(c.get("accuracy") for c in curves):
        charts.append(svg.line_chart(curves, "accuracy", title="accuracy per epoch",
                                     ref=0.5, ref_label="chance", y_max=1.0))
    verdict = text(d.get("verdict")) if d.get("verdict") else ""
    return Block("training", "Learning curves", charts=[c for c in charts if c], note=verdict)
