"""The one sandbox interface: a box folder in, an isolate-style RunOutcome out.

A box is a folder the grader prepared: `harness.py`, `plan.json` and `src/` (the
submission's definitions). A backend runs `python harness.py plan.json` inside it under
`Limits`, and reports how the run ended. It never judges anything: the harness leaves its
raw observations in `box/out/results.json`, which the grader validates afterwards.
"""
from __future__ import annotations

import os

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

# How a run ended, as isolate's meta-file says it: the student's program failing
# (error/signal/timeout/memory) is kept apart from the sandbox failing (internal).
RUN_STATUSES = ("ok", "error", "signal", "timeout", "memory", "internal")


@dataclass(frozen=True)
class Limits:
    wall_s: float = 120.0       # whole submission, wall clock (room for every probe's limit)
    cpu_s: float = 120.0        # whole submission, CPU seconds
    memory_mb: int = 1024       # address space / cgroup memory
    processes: int = 32         # processes and threads of the box's uid
    file_size_mb: int = 16      # largest file the box may write
    open_files: int = 128
    output_kb: int = 64         # stdout/stderr kept (head and tail), the rest dropped
    tmp_mb: int = 64            # size of the private working folder, where enforceable
    probe_wall_s: float = 10.0  # default per-check wall clock, enforced by the harness


@dataclass(frozen=True)
class RunOutcome:
    status: str                          # one of RUN_STATUSES
    exit_code: int | None = None
    signal: int | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    max_rss_mb: float = 0.0
    stdout: str = ""
    stderr: str = ""
    message: str = ""                    # for people, e.g. "ran out of memory (limit 1024 MB)"
    tier: str = ""                       # which backend/tier ran it
    protections: tuple[str, ...] = ()    # protections actually active for this run

    def to_json(self) -> dict:
        return {
            "status": self.status, "exit_code": self.exit_code, "signal": self.signal,
            "wall_s": round(self.wall_s, 4), "cpu_s": round(self.cpu_s, 4),
            "max_rss_mb": round(self.max_rss_mb, 1), "message": self.message,
            "tier": self.tier, "protections": list(self.protections),
        }


class Sandbox(Protocol):
    name: str
    tier: str
    protections: tuple[str, ...]
    isolated: bool  # True when the submission cannot see the host (namespaces or a container)

    def run(self, box: Path, limits: Limits) -> RunOutcome:
        """Run `python harness.py plan.json` with `box` as the harness's folder."""
        ...


def host_cores() -> int:
    """The cores this process may use (its CPU affinity), else the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def lanes_for(jobs: int) -> int:
    """Probes one submission may run side by side when `jobs` submissions share the host:
    two when each has two cores to itself (one lane for the long training probe, one for
    the rest: a third gained nothing measurable), else one."""
    return 2 if host_cores() // max(1, jobs) >= 2 else 1


class SandboxUnavailable(RuntimeError):
    """The requested backend cannot run on this host (no engine, no namespaces, ...)."""


@dataclass
class OutputCap:
    """Keeps the head and tail of a stream, dropping the middle past `limit` bytes."""
    limit: int
    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    dropped: int = 0

    def feed(self, chunk: bytes) -> None:
        half = self.limit // 2
        room = half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        if len(self.tail) > half:
            self.dropped += len(self.tail) - half
            del self.tail[: len(self.tail) - half]

    def text(self) -> str:
        mid = f"\n[... {self.dropped} bytes of output cut ...]\n" if self.dropped else ""
        return (bytes(self.head).decode("utf-8", "replace") + mid
                + bytes(self.tail).decode("utf-8", "replace"))
