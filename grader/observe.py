"""Observe: validate the harness's out/results.json into plain Python values.

Everything here came from the student's process, so nothing is trusted: arrays are rebuilt
as float64 from JSON lists (no pickle, no eval), strings are cut to a bounded length, and
anything malformed becomes a missing observation rather than an exception.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np

MAX_RESULTS_BYTES = 64 * 1024 * 1024
MAX_TEXT = 2000
MAX_LIST = 5000  # a learning curve has one entry per epoch


@dataclass(frozen=True)
class ProbeRun:
    """One probe as the harness reported it; `value` holds decoded observations."""
    id: str
    status: str                   # ok | error | timeout | crash | missing
    value: dict = field(default_factory=dict)
    error: dict | None = None     # {"type", "message", "name", "frames", "probe_error"}
    elapsed_s: float = 0.0
    limit_s: float | None = None
    exit_code: int | None = None


class Opaque(str):
    """A value the student returned that is not a number or array (its description)."""


def decode(obj, depth: int = 0):
    """JSON from the harness -> numbers, float64 arrays, tuples, dicts or Opaque text."""
    if depth > 8:
        return Opaque("a value nested too deeply")
    if type(obj) is dict:  # the commonest value (every array is one): straight to its branch
        return _decode_dict(obj, depth)
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, (int, float)):
        return to_float(obj)
    if isinstance(obj, str):
        return obj[:MAX_TEXT]
    if isinstance(obj, list):
        items = obj[:MAX_LIST]
        types = set(map(type, items))
        if types <= _FLOAT or depth < 8 and types <= _FLOAT_OR_NONE:  # a curve: nothing to rebuild
            return items
        # (an empty dict decodes to an empty dict: a loss that keeps no number, every epoch)
        return [{} if depth < 8 and type(v) is dict and not v else decode(v, depth + 1) for v in items]
    if not isinstance(obj, dict):
        return Opaque("an unreadable value")
    return _decode_dict(obj, depth)


def _decode_dict(obj: dict, depth: int):
    if "__ndarray__" in obj:
        return decode_array(obj)
    if "__stack__" in obj:
        return decode_stack(obj)
    if "__seq__" in obj:
        return tuple(decode(v, depth + 1) for v in (obj.get("items") or [])[:16])
    if "__dict__" in obj:
        inner = obj["__dict__"] if isinstance(obj["__dict__"], dict) else {}
        return {str(k)[:100]: decode(v, depth + 1) for k, v in islice(inner.items(), 32)}
    if "__repr__" in obj:
        return Opaque(str(obj["__repr__"])[:200])
    return {str(k)[:100]: decode(v, depth + 1) for k, v in islice(obj.items(), 64)}


def decode_array(obj: dict):
    shape, data = obj.get("__ndarray__"), obj.get("data")
    if not (isinstance(shape, list) and _sizes(shape) and isinstance(data, list) and len(shape) <= 4):
        return Opaque("a malformed array")
    if math.prod(shape) != len(data) or not _numbers(data):
        return Opaque("a malformed array")
    try:
        arr = np.asarray(data, dtype=np.float64).reshape(shape)
    except (OverflowError, ValueError, TypeError):  # an integer too large for a float64,
        return Opaque("a malformed array")             # a dimension numpy refuses (true)
    return arr


def decode_stack(obj: dict) -> list:
    """A learning curve of same-shaped arrays sent as one (harness/training.py: stacked):
    the list of per-epoch float64 arrays decode_array would have given, at most MAX_LIST;
    a malformed one is a curve whose one entry is unreadable. The numbers are read as
    little-endian float64 bytes from base64 text: data, never code."""
    shape, count, f8 = obj.get("__stack__"), obj.get("count"), obj.get("f8")
    if not (isinstance(shape, list) and _sizes(shape) and len(shape) <= 4 and type(count) is int
            and count >= 0 and isinstance(f8, str)):
        return [Opaque("a malformed array")]
    try:
        raw = base64.b64decode(f8, validate=True)
    except (binascii.Error, ValueError):
        return [Opaque("a malformed array")]
    if len(raw) != 8 * count * math.prod(shape):
        return [Opaque("a malformed array")]
    try:
        rows = np.frombuffer(bytearray(raw), dtype="<f8").astype(np.float64, copy=False)
        rows = rows.reshape([count, *shape])[:MAX_LIST]
    except (OverflowError, ValueError, TypeError):  # a dimension numpy refuses (2**63, true)
        return [Opaque("a malformed array")]
    return [rows[i, ...] for i in range(len(rows))]  # (a 0-d array for a scalar, as decode_array gives)


# The exact types json.loads gives for numbers (bool too: isinstance(True, int)). Most arrays
# are a few entries, so one C pass over their types beats a generator of isinstance calls;
# anything else (a subclass, from a caller other than json) takes the isinstance path.
_INTS, _NUMBERS = frozenset((int, bool)), frozenset((int, float, bool))
_FLOAT, _FLOAT_OR_NONE = frozenset((float,)), frozenset((float, type(None)))


def _sizes(shape: list) -> bool:
    """Every dimension an int >= 0 (as isinstance(n, int) and n >= 0)."""
    if set(map(type, shape)) <= _INTS:
        return not shape or min(shape) >= 0
    return all(isinstance(n, int) and n >= 0 for n in shape)


def _numbers(data: list) -> bool:
    """Every entry an int or float (as isinstance(v, (int, float)))."""
    return set(map(type, data)) <= _NUMBERS or all(isinstance(v, (int, float)) for v in data)


def to_float(v):
    """A JSON number as a float; an integer beyond float range (JSON allows any number of
    digits) becomes Opaque instead of raising OverflowError."""
    try:
        return float(v)
    except OverflowError:
        return Opaque("a number too large to represent")


def text(value, limit: int = MAX_TEXT) -> str:
    return str(value)[:limit] if value is not None else ""


def read_results(box: Path) -> dict[str, ProbeRun] | None:
    """probe id -> ProbeRun, or None when the harness left no readable results."""
    path = Path(box) / "out" / "results.json"
    try:
        if path.stat().st_size > MAX_RESULTS_BYTES:
            return None
        raw = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError):
        return None
    probes = raw.get("probes") if isinstance(raw, dict) else None
    if not isinstance(probes, dict):
        return None
    return {str(pid): probe_run(str(pid), p) for pid, p in probes.items() if isinstance(p, dict)}


def probe_run(pid: str, p: dict) -> ProbeRun:
    status = p.get("status") if p.get("status") in ("ok", "error", "timeout", "crash") else "crash"
    value = decode(p.get("value")) if status == "ok" else {}
    return ProbeRun(
        id=pid, status=status, value=value if isinstance(value, dict) else {},
        error=clean_error(p.get("error")), elapsed_s=number(p.get("elapsed_s")),
        limit_s=number(p.get("limit_s")) or None, exit_code=p.get("exit_code") if isinstance(p.get("exit_code"), int) else None,
    )


def clean_error(e) -> dict | None:
    if not isinstance(e, dict):
        return None
    frames = [f for f in (e.get("frames") or []) if isinstance(f, dict)][:8]
    return {
        "type": text(e.get("type"), 80), "message": text(e.get("message"), 600),
        "name": text(e.get("name"), 80) or None, "probe_error": bool(e.get("probe_error")),
        "frames": [{"file": text(f.get("file"), 120), "line": line_number(f.get("line")),
                    "function": text(f.get("function"), 120), "code": text(f.get("code"), 200)} for f in frames],
    }


def line_number(v) -> int | None:
    # A step's error travels inside the step's value, which decode() turned into floats.
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return int(v) if isinstance(v, int) or (math.isfinite(v) and v.is_integer()) else None


def number(v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return 0.0
    v = to_float(v)
    return v if isinstance(v, float) and math.isfinite(v) else 0.0


def step(value: dict, name: str) -> tuple[bool, object, dict | None]:
    """(ok, decoded value, error) of one recorded step of a probe, e.g. 'forward'."""
    rec = value.get(name)
    if not isinstance(rec, dict):
        return False, None, None
    if rec.get("ok") is True:
        return True, rec.get("value"), None
    return False, None, clean_error(rec.get("error")) if isinstance(rec.get("error"), dict) else rec.get("error")
