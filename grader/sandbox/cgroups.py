"""Per-run cgroups for the embedded tier: v1 memory + pids controllers, or cgroup v2.

The grader (root) creates the group and writes the limits; the launcher moves itself in
before it forks, so every process of the submission is counted from its first
instruction without a preexec_fn in the threaded grader. Afterwards the grader reads
whether the OOM killer fired, kills whatever is still listed and removes the group.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PREFIX = "nngrader"


def _writable(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


def detect(root: Path = ROOT) -> str | None:
    """'v2' when the unified hierarchy has memory+pids, 'v1' for the legacy pair, else None."""
    ctrl = root / "cgroup.controllers"
    if ctrl.exists() and {"memory", "pids"} <= set(ctrl.read_text().split()) and _writable(root):
        return "v2"
    if _writable(root / "memory") and _writable(root / "pids"):
        return "v1"
    return None


def real_cgroups(*dirs: Path) -> None:
    """The kernel fills every new cgroup with its control files: a folder without them was
    made on a plain filesystem (a cgroup kind this host does not have), and writing limits
    there would limit nothing. Removed again, and an OSError says so."""
    fake = [d for d in dirs if not (d / "cgroup.procs").exists()]
    if not fake:
        return
    for d in dirs:
        for f in d.iterdir() if d in fake else ():
            f.unlink()
        d.rmdir()
    raise OSError(f"{fake[0]} is not a cgroup (no cgroup.procs in it)")


@dataclass
class RunGroup:
    """The cgroup directories of one run (one per v1 controller, or one v2 directory)."""
    kind: str
    dirs: tuple[Path, ...]
    memory_mb: int

    @classmethod
    def create(cls, kind: str, name: str, memory_mb: int, pids: int) -> "RunGroup":
        mem = memory_mb * 1024 * 1024
        if kind == "v2":
            d = ROOT / f"{PREFIX}-{name}"
            d.mkdir()
            real_cgroups(d)
            (d / "memory.max").write_text(str(mem))
            (d / "memory.swap.max").write_text("0")
            (d / "pids.max").write_text(str(pids))
            return cls(kind, (d,), memory_mb)
        mdir, pdir = ROOT / "memory" / f"{PREFIX}-{name}", ROOT / "pids" / f"{PREFIX}-{name}"
        mdir.mkdir()
        pdir.mkdir()
        real_cgroups(mdir, pdir)
        group = cls(kind, (mdir, pdir), memory_mb)
        (mdir / "memory.limit_in_bytes").write_text(str(mem))
        swap = mdir / "memory.memsw.limit_in_bytes"
        if swap.exists():  # no swapping past the limit either (only writable after the above)
            swap.write_text(str(mem))
        (pdir / "pids.max").write_text(str(pids))
        return group

    @property
    def procs_files(self) -> list[str]:
        """The cgroup.procs files the launcher writes its own pid into."""
        return [str(d / "cgroup.procs") for d in self.dirs]

    def oom_killed(self) -> bool:
        d = self.dirs[0]
        name = "memory.events" if self.kind == "v2" else "memory.oom_control"
        for line in (d / name).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and int(value) > 0:
                return True
        return False

    def peak_mb(self) -> float:
        name = "memory.peak" if self.kind == "v2" else "memory.max_usage_in_bytes"
        try:
            return int((self.dirs[0] / name).read_text()) / 2**20
        except (OSError, ValueError):
            return 0.0

    def pids(self) -> set[int]:
        found: set[int] = set()
        for f in self.procs_files:
            try:
                found |= {int(p) for p in Path(f).read_text().split()}
            except OSError:
                pass
        return found

    def destroy(self, timeout: float = 2.0) -> None:
        """Kill anything left (there should be nothing: the PID namespace died) and rmdir."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.pids()
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if time.monotonic() > deadline:
                break
            time.sleep(0.005)
        for d in self.dirs:
            try:
                d.rmdir()
            except OSError:
                pass


def sweep_stale(kind: str | None) -> None:
    """Remove empty groups left by a grader process that was killed mid-run."""
    if kind is None:
        return
    parents = [ROOT] if kind == "v2" else [ROOT / "memory", ROOT / "pids"]
    for parent in parents:
        for d in parent.glob(f"{PREFIX}-*"):
            owner = d.name.split("-")[1]
            if owner.isdigit() and Path(f"/proc/{owner}").exists():
                continue  # its grader process is alive: maybe mid-run
            try:
                d.rmdir()
            except OSError:
                pass
