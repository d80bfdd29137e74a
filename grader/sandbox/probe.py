"""Probe the host once for the strongest isolation it allows, and cache the answer.

The probe does not guess from kernel versions or sysctls: it runs a trivial box through
the namespace launcher for real (about 0.05 s) and keeps the tier that worked, so a
half-working host (no user namespaces in a container, a read-only cgroupfs) falls back
instead of failing mid-batch.

An isolating answer is also remembered on disk (STATE_DIR/host-caps.json, the grader's
own folder), keyed by everything that decides it: boot, kernel, credentials and
capabilities, seccomp, the namespaces and cgroup this process is in, the interpreter and
the sandbox's own code. A `check` in the same context then skips the trial run. A weaker
answer (no isolation) is never remembered, and a run that fails in a remembered tier
forgets it (`forget`), so the next start probes again.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import cgroups
from .base import Limits
from .embedded import zygote_possible

PROBE_HARNESS = "import sys\nsys.exit(0)\n"


@dataclass(frozen=True)
class HostCaps:
    root: bool
    namespaces: bool       # the launcher ran a box in new namespaces
    userns: bool           # ... through a user namespace (non-root)
    cgroup_kind: str | None
    why: str               # one line on what failed, empty when all went well
    zygote: bool = False   # runs start from a pre-started worker (embedded.py)
    container: bool = False  # no namespaces, but the container tier ran a box (container.py)
    remembered: bool = False  # read from host-caps.json, not probed by this process


def try_embedded(userns: bool, cgroup_kind: str | None, zygote: bool = False) -> str:
    """Run a trivial box through the launcher; '' on success, else why it failed."""
    from .embedded import EmbeddedSandbox
    return try_run(lambda: EmbeddedSandbox(userns=userns, cgroup_kind=cgroup_kind, zygote=zygote))


def try_container(zygote: bool) -> str:
    from .container import ContainerSandbox
    return try_run(lambda: ContainerSandbox(zygote=zygote))


def try_run(make) -> str:
    try:
        sandbox = make()
        with tempfile.TemporaryDirectory(prefix="nngrader-probe-") as tmp:
            box = Path(tmp)
            (box / "harness.py").write_text(PROBE_HARNESS)
            (box / "plan.json").write_text("{}")
            res = sandbox.run(box, Limits(wall_s=10, cpu_s=10, memory_mb=256))
    except Exception as exc:  # noqa: BLE001 - any failure just means "not this tier"
        return f"{type(exc).__name__}: {exc}"
    return "" if res.status == "ok" else f"{res.status}: {res.message} {res.stderr[-200:]}"


@functools.lru_cache(maxsize=2)
def probe(recalled: bool = False) -> HostCaps:
    """The host's capabilities, probed once per process; with `recalled`, first from the
    answer remembered for this very context (a single `check` starts faster)."""
    if sys.platform != "linux":
        return measure()
    key = context_key()
    caps = recall(key) if recalled else None
    if caps is None:
        caps = measure()
        if first_choice(caps):
            remember(key, caps)
    return caps


def first_choice(caps: HostCaps) -> bool:
    """Whether the answer is the strongest this host's kind allows, reached with no fallback
    (one trial that failed for a passing reason, a loaded host, must not be remembered as
    "no cgroups" or "no worker"). The container tier is never remembered: it is where a
    trial failed by definition."""
    root = os.geteuid() == 0
    return caps.namespaces and caps.zygote == zygote_possible() and \
        caps.cgroup_kind == (cgroups.detect() if root else None)


def measure() -> HostCaps:
    if sys.platform != "linux":
        return HostCaps(False, False, False, None, f"{sys.platform} has no namespaces")
    root = os.geteuid() == 0
    kind = cgroups.detect() if root else None
    # Through the pre-started worker first (the way runs will go, and the cheaper trial);
    # if that fails where a fresh launcher works, runs exec the launcher instead.
    zygote = zygote_possible()
    why = try_embedded(userns=not root, cgroup_kind=kind, zygote=zygote)
    if why and zygote:
        zygote, why = False, try_embedded(userns=not root, cgroup_kind=kind)
    if why and kind:  # cgroups present but unusable (e.g. read-only): try without
        kind, why2 = None, try_embedded(userns=not root, cgroup_kind=None, zygote=zygote)
        why = why2 and f"{why}; without cgroups: {why2}"
    if not why:
        return HostCaps(root, True, not root, kind, "", zygote)
    if not root:
        return HostCaps(root, False, False, None, why)
    # Root without namespaces: a container with Docker's default capabilities, most likely.
    zygote = zygote_possible()
    why_c = try_container(zygote)
    if why_c and zygote:
        zygote, why_c = False, try_container(zygote=False)
    if why_c:
        return HostCaps(root, False, False, None, f"{why}; container tier: {why_c}")
    return HostCaps(root, False, False, None, why, zygote, container=True)




# ---------------------------------------------------------------- remembered answers

STATUS_FIELDS = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
                 "NoNewPrivs", "Seccomp", "Seccomp_filters")


def cache_file() -> Path:
    from .embedded import STATE_DIR
    return STATE_DIR / "host-caps.json"


def context_key() -> str:
    """Everything the probe's answer depends on, as one string; '' when it cannot be read."""
    try:
        status = {k: v.strip() for k, _, v in (line.partition(":") for line in
                  Path("/proc/self/status").read_text().splitlines()) if k in STATUS_FIELDS}
        parts = {
            "boot": Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
            "kernel": os.uname().release, "status": status,
            "ns": {n: os.stat(f"/proc/self/ns/{n}").st_ino
                   for n in ("user", "mnt", "pid", "net", "ipc", "uts", "cgroup")},
            "cgroup": Path("/proc/self/cgroup").read_text(),
            "python": os.path.realpath(sys.executable),
            "zygote": zygote_possible(),
            "code": [[p.name, *stat_of(p)] for p in sorted(Path(__file__).parent.glob("*.py"))],
            "env": {k: v for k, v in os.environ.items() if k.startswith("NNGRADER_")},
        }
    except OSError:
        return ""
    return json.dumps(parts, sort_keys=True)


def stat_of(path: Path) -> list:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def ours(st: os.stat_result) -> bool:
    """Owned by us and writable by nobody else."""
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def recall(key: str) -> HostCaps | None:
    """The remembered answer for this context, if the file and its folder are ours and
    nobody else's (another user may have made /tmp/nngrader-UID first)."""
    if not key:
        return None
    path = cache_file()
    try:
        if not ours(os.lstat(path.parent)):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not ours(st):
            return None  # someone else could have written it
        data = json.loads(os.read(fd, 1 << 16))
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        caps = HostCaps(**{f.name: data["caps"][f.name] for f in dataclasses.fields(HostCaps)
                           if f.name != "remembered"}, remembered=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    finally:
        os.close(fd)
    return caps if caps.namespaces or caps.container else None


def remember(key: str, caps: HostCaps) -> None:
    if not key:
        return
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not ours(os.lstat(path.parent)):
            return
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".host-caps.")
        with os.fdopen(fd, "w") as f:
            json.dump({"key": key, "caps": dataclasses.asdict(caps)}, f)
        os.replace(tmp, path)
    except OSError:
        pass  # only a cache: the next start probes again


def forget() -> None:
    """A run failed in the remembered tier: probe again next time (and now, if asked)."""
    try:
        cache_file().unlink()
    except OSError:
        pass
    probe.cache_clear()
