"""The embedded namespace tier: isolation without Docker, as contest judges do it.

Per run: a uid from a pool, a cgroup (memory + pids) when the host has one, and the
launcher script (launcher.py) which builds new mount/PID/net/IPC/UTS namespaces around
the harness. The grader thread only spawns the launcher with subprocess (no preexec_fn),
pumps the capped output, enforces the wall clock by killing the launcher (which takes the
whole PID namespace with it) and classifies how the run ended.
"""
from __future__ import annotations

import contextlib
import fcntl
import itertools
import marshal
import os
import select
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

from . import cgroups
from .base import Limits, OutputCap, RunOutcome
from .plain import kill_group, numpy_libdir, outcome, pump, scrubbed_env

LAUNCHER = Path(__file__).with_name("launcher.py")
STATE_DIR = Path("/run/nngrader") if os.geteuid() == 0 else Path(f"/tmp/nngrader-{os.getuid()}")
LIBDIR = "/nnlib"            # where numpy alone is bound inside the box
WORKDIR = "/sandbox/box"     # the box's copy inside, on the private tmpfs
UID_FIRST, UID_COUNT = 61000, 1000
INNER_UID = 1000             # the one uid mapped in a user namespace (non-root host)


class UidPool:
    """Hands out a uid no other run (thread or grader process) is using right now."""

    def __init__(self, first: int = UID_FIRST, count: int = UID_COUNT):
        self.ids = itertools.cycle(range(first, first + count))
        self.count = count
        self.lock = threading.Lock()
        self.busy: set[int] = set()

    @contextlib.contextmanager
    def lease(self):
        uid, lock_fd = self._take()
        try:
            yield uid
        finally:
            with self.lock:
                self.busy.discard(uid)
            os.close(lock_fd)  # drops the flock

    def _take(self) -> tuple[int, int]:
        (STATE_DIR / "uids").mkdir(parents=True, exist_ok=True, mode=0o700)
        with self.lock:
            for _ in range(self.count):
                uid = next(self.ids)
                if uid in self.busy:
                    continue
                fd = os.open(STATE_DIR / "uids" / str(uid), os.O_CREAT | os.O_RDWR, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another grader process?
                except BlockingIOError:
                    os.close(fd)
                    continue
                self.busy.add(uid)
                return uid, fd
        raise RuntimeError("every sandbox uid is in use")


def host_layout() -> tuple[list, list, list]:
    """Read-only binds, symlinks and hidden folders that make up the box's root."""
    binds, links = [["/usr", "/usr"]], []
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            links.append([top, os.readlink(top)])
        elif os.path.isdir(top):
            binds.append([top, top])
    if os.path.exists("/etc/ld.so.cache"):
        binds.append(["/etc/ld.so.cache", "/etc/ld.so.cache"])
    prefix = os.path.realpath(sys.base_prefix)
    if not prefix.startswith("/usr/"):  # e.g. pyenv under /root (0700): expose it alone
        binds.append([prefix, prefix])
    site = Path(numpy_libdir())
    for part in ("numpy", "numpy.libs"):
        if (site / part).is_dir():
            binds.append([str(site / part), f"{LIBDIR}/{part}"])
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    hide = [sysconfig.get_path("purelib", vars={"base": prefix}),
            sysconfig.get_path("platlib", vars={"platbase": prefix}),
            "/usr/lib/python3/dist-packages", f"/usr/local/lib/{ver}"]
    return binds, links, sorted(set(hide))


class EmbeddedSandbox:
    name = "embedded"
    isolated = True

    def __init__(self, userns: bool = False, cgroup_kind: str | None = None):
        self.userns = userns
        self.cgroup_kind = None if userns else cgroup_kind
        self.tier = "namespaces-userns" if userns else "namespaces"
        self.protections = self._protections()
        self.pool = UidPool()
        self.python = os.path.realpath(sys.executable)
        self.binds, self.links, self.hide = host_layout()
        self.counter = itertools.count()
        (STATE_DIR / "root").mkdir(parents=True, exist_ok=True, mode=0o700)
        cgroups.sweep_stale(self.cgroup_kind)

    def _protections(self) -> tuple[str, ...]:
        p = ["namespaces:mount,pid,net,ipc,uts", "read-only-root", "private-tmpfs-workdir",
             "no-network", "pid1-reaper", "rlimits", "no-new-privs", "no-capabilities",
             "wall-clock-kill", "scrubbed-env", "output-cap"]
        p.insert(1, "user-namespace" if self.userns else "own-uid")
        if self.cgroup_kind:
            p.append(f"cgroup-{self.cgroup_kind}:memory,pids")
        return tuple(p)

    def run(self, box: Path, limits: Limits) -> RunOutcome:
        if self.userns:
            return self._run(box, limits, INNER_UID)
        with self.pool.lease() as uid:
            return self._run(box, limits, uid)

    def _run(self, box: Path, limits: Limits, uid: int) -> RunOutcome:
        group = None
        if self.cgroup_kind:
            name = f"{os.getpid()}-{next(self.counter)}"
            # +2: the launcher and PID 1 sit in the group too
            group = cgroups.RunGroup.create(self.cgroup_kind, name, limits.memory_mb,
                                            limits.processes + 2)
        r, w = os.pipe()            # status lines from the launcher and PID 1
        go_r, go_w = os.pipe()      # "1" once the launcher sits in the cgroups
        proc = None
        try:
            cfg = self._config(box.resolve(), limits, uid, w, go_r)
            start = time.monotonic()
            proc = subprocess.Popen(
                [self.python, "-I", "-S", "-B", str(LAUNCHER), marshal.dumps(cfg).hex()],
                env={"PATH": "/usr/bin:/bin"}, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(w, go_r),
                start_new_session=True, close_fds=True)
            for fd in (w, go_r):
                os.close(fd)
            w = go_r = -1
            for procs in group.procs_files if group else ():
                Path(procs).write_text(str(proc.pid))
            os.write(go_w, b"1")
            out, err = OutputCap(limits.output_kb * 1024), OutputCap(limits.output_kb * 1024)
            timed_out = pump(proc, {proc.stdout: out, proc.stderr: err}, start + limits.wall_s)
            kill_group(proc.pid)  # the launcher: PID 1 follows it (PR_SET_PDEATHSIG)
            _, _, usage = os.wait4(proc.pid, 0)
            proc.returncode = 0  # reaped above; keeps Popen from waiting again
            wall = time.monotonic() - start
            return self._classify(read_status(r), timed_out, wall, usage, limits, group,
                                  out.text(), err.text())
        finally:
            if proc is not None and proc.returncode is None:  # failed mid-way: no leftovers
                kill_group(proc.pid)
                proc.wait()
            for fd in (r, w, go_r, go_w):
                if fd >= 0:
                    os.close(fd)
            if group:
                group.destroy()  # waits until the namespace's processes are really gone

    def _config(self, box: Path, limits: Limits, uid: int, status_fd: int, go_fd: int) -> dict:
        mb = 2**20
        rl = {"RLIMIT_CPU": [int(limits.cpu_s + 0.999), int(limits.cpu_s + 0.999) + 1],
              "RLIMIT_NPROC": [limits.processes] * 2,
              "RLIMIT_FSIZE": [limits.file_size_mb * mb] * 2,
              "RLIMIT_NOFILE": [limits.open_files] * 2,
              "RLIMIT_CORE": [0, 0]}
        if not self.cgroup_kind:  # no memory cgroup: the address-space limit is all there is
            rl["RLIMIT_AS"] = [limits.memory_mb * mb] * 2
        env = scrubbed_env(Path(WORKDIR)) | {"TMPDIR": "/tmp", "NNGRADER_SOLE_UID": "1"}
        return {
            "status_fd": status_fd, "userns": self.userns, "uid": uid, "box": str(box),
            "root": str(STATE_DIR / "root"), "binds": self.binds, "symlinks": self.links,
            "hide": self.hide, "tmp_mb": limits.tmp_mb, "rlimits": rl, "env": env,
            "go_fd": go_fd,
            "argv": [self.python, "-I", "-S", "-B", "harness.py", "plan.json", LIBDIR],
        }

    def _classify(self, status: dict, timed_out: bool, wall: float, usage, limits: Limits,
                  group, stdout: str, stderr: str) -> RunOutcome:
        common = dict(tier=self.tier, protections=self.protections)
        cpu = usage.ru_utime + usage.ru_stime
        peak = group.peak_mb() if group else usage.ru_maxrss / 1024
        if not timed_out and group and group.oom_killed():
            # the OOM killer may have picked one probe's process: the harness can still
            # have finished (exit 0), and then its results stand
            return RunOutcome("memory", exit_code=status.get("exit"),
                              signal=status.get("signal"), wall_s=wall, cpu_s=cpu, max_rss_mb=peak,
                              stdout=stdout, stderr=stderr,
                              message=f"ran out of memory (limit {limits.memory_mb} MB)",
                              **common)
        if not timed_out and "exit" not in status and "signal" not in status:
            why = status.get("internal", "the sandbox ended without a status")
            return RunOutcome("internal", wall_s=wall, cpu_s=cpu, stdout=stdout,
                              stderr=stderr, message=why, **common)
        code = -status["signal"] if "signal" in status else status.get("exit", 0)
        res = outcome(code, timed_out, wall, usage, limits, stdout, stderr, **common)
        return RunOutcome(**{**res.__dict__, "max_rss_mb": peak})


def read_status(fd: int, timeout: float = 1.0) -> dict:
    """The "kind value" lines the launcher or PID 1 wrote on the status pipe, as a dict."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    status: dict = {}
    for line in data.decode("utf-8", "replace").splitlines():
        kind, _, value = line.partition(" ")
        if kind in ("exit", "signal"):
            with contextlib.suppress(ValueError):
                status[kind] = int(value)
        elif kind == "internal":
            status[kind] = value
    return status
