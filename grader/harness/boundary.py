"""The boundary out of the box: what student code returned, as plain JSON data.

Arrays travel as {"__ndarray__": shape, "dtype": ..., "data": [...]}; nothing is pickled.
Exceptions travel as data too, with the traceback frames of the student's files only."""
import os
import traceback
import warnings

import numpy as np

HARNESS_DIR = os.path.dirname(os.path.abspath(__file__))


MAX_PAYLOAD = 16 * 1024 * 1024


class ProbeError(Exception):
    """The harness could not call the student's code the way it expected (not a crash)."""


# ---------------------------------------------------------------- boundary: JSON out

DTYPE_NAMES = {}
F64 = np.dtype(np.float64)


def dtype_name(dtype):
    """str(dtype), remembered: numpy builds the name anew each time, for every array of
    every training epoch."""
    name = DTYPE_NAMES.get(dtype)
    if name is None:
        name = DTYPE_NAMES[dtype] = str(dtype)
    return name


def encode(value, depth=0):
    """Turn what student code returned into plain JSON data, never trusting its type."""
    if depth > 6:
        return {"__repr__": "a value nested more than 6 levels deep"}
    kind = type(value)
    if kind is np.ndarray and value.dtype is F64 and value.size <= 200_000:
        # the usual case, at every training step: no float copy of a float array
        return {"__ndarray__": list(value.shape), "dtype": "float64", "data": value.ravel().tolist()}
    if kind is np.float64:  # what np.mean returns: a float subclass, sent as a plain number
        return float(value)
    if value is None or isinstance(value, (bool, str)):
        return value if not isinstance(value, str) else value[:2000]
    if isinstance(value, (int, float)):
        return float(value) if isinstance(value, float) else int(value)
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf" or arr.size > 200_000:
            return {"__repr__": f"array of dtype {arr.dtype} and shape {arr.shape}"}
        return {"__ndarray__": list(arr.shape), "dtype": dtype_name(arr.dtype),
                "data": arr.astype(float).ravel().tolist()}
    if isinstance(value, (list, tuple)):
        return {"__seq__": type(value).__name__, "items": [encode(v, depth + 1) for v in value[:16]]}
    if isinstance(value, dict):
        return {"__dict__": {str(k)[:100]: encode(v, depth + 1) for k, v in list(value.items())[:32]}}
    return {"__repr__": f"object of type {type(value).__name__}"}


def in_harness(filename):
    """Whether a traceback frame is the harness's own (entry script or this package)."""
    path = os.path.abspath(filename)
    return os.path.basename(path) == "harness.py" or os.path.dirname(path) == HARNESS_DIR


def describe(exc):
    """An exception as data: type, message, and the traceback frames of student files only."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not in_harness(f.filename)]
    return {
        "type": type(exc).__name__,
        "message": str(exc)[:1000],
        "name": getattr(exc, "name", None) if isinstance(exc, NameError) else None,
        "frames": [{"file": os.path.basename(f.filename), "line": f.lineno, "function": f.name,
                    "code": (f.line or "")[:200]} for f in frames[-6:]],
        "probe_error": isinstance(exc, ProbeError),
    }


# ---------------------------------------------------------------- probes

def step(record, name, fn):
    """Run one step of a probe, recording its value or its exception under `name`."""
    caught = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with np.errstate(all="warn"):
                value = fn()
        record[name] = {"ok": True, "value": encode(value)}
        ok = True
    except (Exception, SystemExit) as e:  # sys.exit() in student code ends only this step
        record[name] = {"ok": False, "error": describe(e)}
        value, ok = None, False
    if caught:
        record[name]["warnings"] = sorted({f"{w.category.__name__}: {str(w.message)[:300]}" for w in caught})[:5]
    return value, ok


def bound_step(record, name, bind):
    """step() for a call worked out first: `bind()` gives (fn, args, kwargs). Returns the
    value, whether it worked, and the bound call (to replay it, e.g. for timing) or None."""
    calls = []

    def run():
        fn, args, kwargs = bind()
        calls.append(lambda: fn(*args, **kwargs))
        return calls[0]()

    value, ok = step(record, name, run)
    return value, ok, (calls[0] if ok and calls else None)
