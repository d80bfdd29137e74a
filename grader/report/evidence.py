"""Turn a check's `details` into display blocks, suspected mistake first.

The contract names three shapes of details (array comparison, gradient check, training
curves). Each recogniser takes the keys it knows and leaves the rest for a generic
key/value table ("other details"), so a new key a check adds later still shows up, and a
missing or oddly typed key never breaks a page. Nested values there are drawn as small
tables or plain lists, never as raw dictionaries; keys that mean nothing to a student (the
mistake's internal family id, said in words by "Suspected mistake") are left out.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import svg
from .fmt import num, number, shape, text

ARRAY_KEYS = ("quantity", "expected_shape", "got_shape", "mismatched", "total",
              "max_abs_diff", "max_rel_error", "worst", "threshold")
GRAD_KEYS = ("rel_error", "threshold", "ratio")
TRAIN_KEYS = ("curves", "chance_loss", "verdict")
# internal ids (the suspected-mistake sentence says it in words) and the instructor's
# override, which the page shows on its own
HIDDEN_KEYS = ("family", "override")
LABELS = {"entries": "sampled entries", "likely_cause": "likely cause", "h": "step h",
          "max_epochs": "max epochs", "learning_rate": "learning rate", "batch_size": "batch size"}


@dataclass
class Block:
    """One piece of evidence; `kind` picks the template macro that draws it."""
    kind: str
    title: str = ""
    rows: list = field(default_factory=list)
    charts: list = field(default_factory=list)
    note: str = ""
    ref: tuple[str, str] | None = None   # (anchor, check id) of a block shown in full elsewhere


@dataclass
class Detail:
    """One row of "other details": a label and a value drawn as text, pairs or samples."""
    label: str
    kind: str = "text"      # "text": value; "pairs": rows of (key, text); "samples": rows + note
    value: str = ""
    rows: list = field(default_factory=list)
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
    rest = [_detail(str(k), v) for k, v in d.items() if k not in used and k not in HIDDEN_KEYS]
    if rest:
        out.append(Block("other", "Other details", rows=rest))
    return out


def _detail(key: str, v: Any) -> Detail:
    label = LABELS.get(key, key.replace("_", " "))
    if isinstance(v, Mapping) and isinstance(v.get("analytic"), list) and isinstance(v.get("numerical"), list):
        return _samples(label, v)
    if isinstance(v, Mapping):
        return Detail(label, "pairs", rows=[(LABELS.get(str(k), str(k).replace("_", " ")), _words(x))
                                            for k, x in list(v.items())[:12]])
    return Detail(label, value=_words(v))


def _words(v: Any) -> str:
    """A value as plain words: lists comma-separated, pairs as "key value", no braces."""
    if isinstance(v, Mapping):
        return "; ".join(f"{k} {_words(x)}" for k, x in list(v.items())[:12]) or "none"
    if isinstance(v, (list, tuple)):
        if not v:
            return "none"
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            inner = ", ".join(num(x) for x in v[:12])
            return ("(" + inner + ")") if len(v) <= 4 and all(isinstance(x, int) for x in v) else inner
        return ", ".join(_words(x) for x in v[:12]) + (", …" if len(v) > 12 else "")
    return text(v)


def _samples(label: str, v: Mapping) -> Detail:
    """Gradient-check samples: per entry, the student's backprop next to the numerical one."""
    idx = v.get("entries") if isinstance(v.get("entries"), list) else []
    rows = []
    for i, (a, n) in enumerate(zip(v["analytic"], v["numerical"])):
        where = idx[i] if i < len(idx) else i
        rows.append((_words(where) if isinstance(where, (list, tuple)) else text(where), num(a), num(n)))
    bits = []
    if v.get("source"):
        bits.append(f"backprop read from: {text(v['source'])}")
    if v.get("rel_error") is not None:
        bits.append(f"relative error {num(v['rel_error'])}")
    return Detail(label, "samples", rows=rows[:12], note="; ".join(bits))


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
