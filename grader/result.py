"""The result.json contract: Result, CheckResult, Hint and their one to/from JSON pair.

Every stage after `score` reads these objects (or result.json on disk) and never re-runs
anything. Keys and the status vocabulary are a contract other tools read: change them only
together with ../shared/tools/check_contract.py and the schema in result.schema.json.
"""
from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
STATUSES = ("pass", "fail", "error", "timeout", "skipped")
TIP_IDS = tuple([str(i) for i in range(1, 9)] + ["8" + c for c in "abcdefghi"])
CHECK_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[A-Za-z0-9_]+)+$")


@dataclass(frozen=True)
class Hint:
    tip: str
    text: str

    def __post_init__(self):
        if self.tip not in TIP_IDS:
            raise ValueError(f"hint tip {self.tip!r} is not a tips-list id (1..8, 8a..8i)")


@dataclass(frozen=True)
class CheckResult:
    id: str
    status: str
    score: float
    max_score: float
    message: str = ""
    hints: tuple[Hint, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not CHECK_ID.match(self.id):
            raise ValueError(f"check id {self.id!r} is not dotted, family first")
        if self.status not in STATUSES:
            raise ValueError(f"check {self.id}: status {self.status!r} not in {STATUSES}")
        if not (0 <= self.score <= self.max_score):
            raise ValueError(f"check {self.id}: score {self.score} outside [0, {self.max_score}]")

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "status": self.status,
            "score": _num(self.score),
            "max_score": _num(self.max_score),
            "message": self.message,
            "hints": [{"tip": h.tip, "text": h.text} for h in self.hints],
            "details": _plain(self.details),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "CheckResult":
        return cls(
            id=d["id"], status=d["status"], score=d["score"], max_score=d["max_score"],
            message=d.get("message") or "",
            hints=tuple(Hint(h["tip"], h["text"]) for h in d.get("hints") or ()),
            details=d.get("details") or {},
        )


@dataclass(frozen=True)
class Result:
    id: str
    checks: tuple[CheckResult, ...] = ()
    error: str | None = None
    # What was graded (file, roles, left-out script code), sandbox record, timings.
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return round(sum(c.score for c in self.checks), 6)

    @property
    def max_score(self) -> float:
        return round(sum(c.max_score for c in self.checks), 6)

    def check(self, check_id: str) -> CheckResult | None:
        return next((c for c in self.checks if c.id == check_id), None)

    def with_meta(self, **more) -> "Result":
        return replace(self, meta={**self.meta, **more})

    def to_json(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "id": self.id,
            "score": _num(self.score),
            "max_score": _num(self.max_score),
            "error": self.error,
            "checks": [c.to_json() for c in self.checks],
            "meta": _plain(self.meta),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Result":
        return cls(
            id=d["id"],
            checks=tuple(CheckResult.from_json(c) for c in d.get("checks") or ()),
            error=d.get("error"),
            meta=d.get("meta") or {},
        )

    def dumps(self) -> str:
        """result.json's text: a top-level key per line, a check per line and a meta key per
        line, each value compact. Laid out by hand because json's `indent` switches to its
        pure-Python encoder, several times slower than the C one on a result's curves."""
        lines = []
        for key, value in self.to_json().items():
            if key in LINE_PER_ITEM and value:
                value = _lines(value, LINE_PER_ITEM[key])
            else:
                value = _ENCODER.encode(value)
            lines.append(f"  {_ENCODER.encode(key)}: {value}")
        return "{\n" + ",\n".join(lines) + "\n}"

    def write(self, path: Path) -> None:
        write_atomic(path, self.dumps() + "\n")

    @classmethod
    def read(cls, path: Path) -> "Result":
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


_ENCODER = json.JSONEncoder(allow_nan=False, ensure_ascii=False)  # one C-encoder pass per value
LINE_PER_ITEM = {"checks": "[]", "meta": "{}"}  # top-level keys spread one item per line


def _lines(value: list | dict, brackets: str) -> str:
    """A list or dict with each item compact on its own line, indented under its key."""
    items = ([_ENCODER.encode(v) for v in value] if isinstance(value, list) else
             [f"{_ENCODER.encode(k)}: {_ENCODER.encode(v)}" for k, v in value.items()])
    return f"{brackets[0]}\n    " + ",\n    ".join(items) + f"\n  {brackets[1]}"


def write_atomic(path: Path, text: str, durable: bool = True) -> None:
    """Write text so that readers see the old file or the new one, never half of one;
    `durable`: on disk before this returns (not for pages every run rewrites anyway)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            _fsync_dir(path.parent)  # the rename itself survives a power cut
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _num(x: float) -> float | int:
    x = float(x)
    return int(x) if x.is_integer() else round(x, 6)


def _plain(value: Any) -> Any:
    """Make details JSON-safe: numpy scalars/arrays to lists, non-finite floats to strings."""
    kind = type(value)
    if kind is float:  # exact types first: the same answers, without the Mapping ABC check
        return value if math.isfinite(value) else repr(value)
    if kind in _AS_IS:
        return value
    if kind is list and _finite_floats(value):  # a learning curve
        return list(value)
    if kind is dict or isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # 'nan', 'inf': JSON has no literal for them
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


_AS_IS = (str, int, bool, type(None))


def _finite_floats(values: list) -> bool:
    return set(map(type, values)) <= {float} and all(map(math.isfinite, values))
