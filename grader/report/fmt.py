"""Never-raising formatting of values found in `details`.

`details` comes from checks that observed student code, so any key may be missing and any
value may have an odd type ("nan" as a string, None, a nested dict). Every helper here turns
such a value into something printable and never raises, as pytest's saferepr does.
"""
from __future__ import annotations

import math
from typing import Any

MAX_TEXT = 300


def number(x: Any) -> float | None:
    """A float for real numbers (and "nan"/"inf" strings); None for anything else."""
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str) and x.strip().lower() in ("nan", "inf", "-inf", "+inf"):
        return float(x)
    return None


def num(x: Any) -> str:
    """A number at a precision a student can compare by eye: 0.12, 3.2e-07, 1.5e+03."""
    v = number(x)
    if v is None:
        return text(x)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0 or (1e-3 <= abs(v) < 1e4):
        return f"{v:.4g}"
    return f"{v:.2e}"


def text(x: Any, limit: int = MAX_TEXT) -> str:
    """Any value as one bounded line; long text is cut in the middle so both ends show."""
    try:
        s = x if isinstance(x, str) else _compact(x)
    except Exception as e:  # a value whose str() fails still gets a line
        s = f"<unprintable {type(x).__name__}: {type(e).__name__}>"
    s = s.replace("\r", "\\r")
    if len(s) > limit:
        half = limit // 2 - 2
        s = f"{s[:half]} … {s[-half:]}"
    return s


def _compact(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return num(x)
    if isinstance(x, (list, tuple)):
        inner = ", ".join(_compact(v) for v in list(x)[:12])
        return f"[{inner}{', …' if len(x) > 12 else ''}]"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k}: {_compact(v)}" for k, v in list(x.items())[:12]) + "}"
    return str(x)


def shape(x: Any) -> str:
    """[5, 3] -> "(5, 3)"; anything else as text."""
    if isinstance(x, (list, tuple)) and all(isinstance(d, int) for d in x):
        return "(" + ", ".join(str(d) for d in x) + ("," if len(x) == 1 else "") + ")"
    return text(x)
