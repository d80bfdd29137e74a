"""The embedded namespace tier: isolation without Docker, as contest judges do it.

Per run: a uid from a pool, a cgroup (memory + pids) when the host has one, and the
launcher script (launcher.py) which builds new mount/PID/net/IPC/UTS namespaces around
the harness. The grader thread only starts the launcher (no preexec_fn), pumps the capped
output, enforces the wall clock by killing the launcher (which takes the whole PID
namespace with it) and classifies how the run ended.

The launcher starts one of two ways. By default a pre-started worker (zygote.py: an
interpreter that has imported numpy and nothing of the grader or of any student) forks it,
and its harness process runs harness.py in-process, so interpreter start-up and the numpy
import (~0.1 s) are paid once per worker instead of once per submission; isolation is the
same, step for step. With `zygote=False` (or NNGRADER_ZYGOTE=0) each run execs
`python launcher.py` and `python harness.py` as separate interpreters.
"""
from __future__ import annotations

import atexit
import contextlib
import fcntl
import itertools
import marshal
import os
import select
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

from . import cgroups
from .base import Limits, OutputCap, RunOutcome
from .plain import exited, kill_group, numpy_libdir, outcome, pump, scrubbed_env

LAUNCHER = Path(__file__).with_name("launcher.py")
ZYGOTE = Path(__file__).with_name("zygote.py")
HARNESS = Path(__file__).resolve().parent.parent / "harness"  # the package, preloaded by the zygote
STATE_DIR = Path("/run/nngrader") if os.geteuid() == 0 else Path(f"/tmp/nngrader-{os.getuid()}")
LIBDIR = "/nnlib"            # where numpy alone is bound inside the box
WORKDIR = "/sandbox/box"     # the box's copy inside, on the private tmpfs
UID_FIRST, UID_COUNT = 61000, 1000
INNER_UID = 1000             # the one uid mapped in a user namespace (non-root host)
RUN_NUMBERS = itertools.count()  # names this process's cgroups, whichever sandbox runs


def zygote_possible() -> bool:
    """Runs may start from a pre-started worker (NNGRADER_ZYGOTE=0 turns it off)."""
    return os.environ.get("NNGRADER_ZYGOTE", "1") != "0" and hasattr(os, "pidfd_open")


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


def lib_binds(target: str) -> list:
    """numpy (and its bundled libraries) alone, bound read-only at `target`."""
    site = Path(numpy_libdir())
    return [[str(site / part), f"{target}/{part}"] for part in ("numpy", "numpy.libs")
            if (site / part).is_dir()]


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
    binds += lib_binds(LIBDIR)
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    hide = [sysconfig.get_path("purelib", vars={"base": prefix}),
            sysconfig.get_path("platlib", vars={"platbase": prefix}),
            "/usr/lib/python3/dist-packages", f"/usr/local/lib/{ver}"]
    return binds, links, sorted(set(hide))


class EmbeddedSandbox:
    name = "embedded"
    isolated = True

    @property
    def preloads_harness(self) -> bool:
        """Runs start from a worker that has imported the harness package: the box then
        needs only its entry script (plan.write_box leaves nnharness/ out)."""
        return bool(self.zygote)

    def __init__(self, userns: bool = False, cgroup_kind: str | None = None,
                 zygote: bool | None = None):
        if zygote is None:
            zygote = zygote_possible()
        self.zygote = zygote
        self.userns = userns
        self.cgroup_kind = None if userns else cgroup_kind
        self.tier = "namespaces-userns" if userns else "namespaces"
        self.protections = self._protections()
        self.pool = UidPool()
        self.python = os.path.realpath(sys.executable)
        self.binds, self.links, self.hide = host_layout()
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
            name = f"{os.getpid()}-{next(RUN_NUMBERS)}"  # unique across instances too
            try:  # +2: the launcher and PID 1 sit in the group too
                group = cgroups.RunGroup.create(self.cgroup_kind, name, limits.memory_mb,
                                                limits.processes + 2)
            except OSError as e:  # e.g. cgroups that changed since the host was probed
                return RunOutcome("internal", message=f"could not make the run's cgroup: {e}",
                                  tier=self.tier, protections=self.protections)
        r, w = os.pipe()            # status lines from the launcher and PID 1
        go_r, go_w = os.pipe()      # "1" once the launcher sits in the cgroups
        proc = None
        try:
            cfg = self._config(box.resolve(), limits, uid, w, go_r)
            start = time.monotonic()
            proc = ZygoteRun(cfg, (w, go_r)) if self.zygote else ExecRun(self.python, cfg, (w, go_r))
            for fd in (w, go_r):
                os.close(fd)
            w = go_r = -1
            for procs in group.procs_files if group else ():
                Path(procs).write_text(str(proc.pid))
            os.write(go_w, b"1")
            out, err = OutputCap(limits.output_kb * 1024), OutputCap(limits.output_kb * 1024)
            timed_out = pump(proc, {proc.stdout: out, proc.stderr: err}, start + limits.wall_s,
                             proc.ended)
            usage = proc.stop()  # kills the launcher (PID 1 follows it) and reaps it
            wall = time.monotonic() - start
            return self._classify(read_status(r), timed_out, wall, usage, limits, group,
                                  out.text(), err.text())
        except ZygoteError as e:
            return RunOutcome("internal", message=str(e), tier=self.tier,
                              protections=self.protections)
        finally:
            if proc is not None:  # failed mid-way: no leftovers
                proc.abort()
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
        binds, late, libdir = self.binds, [], LIBDIR
        if self.zygote:  # the worker imported numpy from the host's site dir: same path inside
            libdir = numpy_libdir()
            binds = [b for b in self.binds if not b[1].startswith(LIBDIR + "/")]
            late = lib_binds(libdir)
        return {
            "status_fd": status_fd, "userns": self.userns, "uid": uid, "box": str(box),
            "root": str(STATE_DIR / "root"), "binds": binds, "lib_binds": late,
            "symlinks": self.links, "hide": self.hide, "tmp_mb": limits.tmp_mb, "rlimits": rl,
            "env": box_env(), "go_fd": go_fd,
            "argv": [self.python, "-I", "-S", "-B", "harness.py", "plan.json", libdir],
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
        code = -status["signal"] if "signal" in status else status.get("exit")
        res = outcome(code, timed_out, wall, usage, limits, stdout, stderr, **common)
        return RunOutcome(**{**res.__dict__, "max_rss_mb": peak})


def box_env() -> dict[str, str]:
    # NNGRADER_SOLE_UID: every process of the box's uid is the submission's, so the harness
    # may kill them all between probes (it never does so as root)
    return scrubbed_env(Path(WORKDIR)) | {"TMPDIR": "/tmp", "NNGRADER_SOLE_UID": "1"}


class Usage:
    """The rusage fields a RunOutcome needs, as the worker reported them."""

    def __init__(self, utime: float = 0.0, stime: float = 0.0, maxrss_kb: int = 0):
        self.ru_utime, self.ru_stime, self.ru_maxrss = utime, stime, maxrss_kb


class ExecRun:
    """The launcher as its own interpreter: `python launcher.py CONFIG`."""

    def __init__(self, python: str, cfg: dict, fds: tuple[int, int], script: Path = LAUNCHER):
        self.proc = subprocess.Popen(
            [python, "-I", "-S", "-B", str(script), marshal.dumps(cfg).hex()],
            env={"PATH": "/usr/bin:/bin"}, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=fds,
            start_new_session=True, close_fds=True)
        self.pid, self.stdout, self.stderr = self.proc.pid, self.proc.stdout, self.proc.stderr

    def ended(self) -> bool:
        return exited(self.pid)

    def stop(self):
        kill_group(self.pid)  # the launcher: PID 1 follows it (PR_SET_PDEATHSIG)
        _, _, usage = os.wait4(self.pid, 0)
        self.proc.returncode = 0  # reaped above; keeps Popen from waiting again
        return usage

    def abort(self) -> None:
        if self.proc.returncode is None:
            kill_group(self.pid)
            self.proc.wait()
        for stream in (self.stdout, self.stderr):
            stream.close()


class ZygoteError(RuntimeError):
    """The pre-started worker did not answer as it should; it is discarded."""


class Zygote:
    """One pre-started worker process (zygote.py) and our end of its socket."""

    START_S = 20.0   # first answer: interpreter start + numpy import, on a loaded host
    ANSWER_S = 10.0  # any later answer

    def __init__(self):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [os.path.realpath(sys.executable), "-I", "-S", "-B", str(ZYGOTE),
                 str(theirs.fileno()), numpy_libdir(), str(HARNESS)],
                env=box_env(), cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, pass_fds=(theirs.fileno(),), start_new_session=True,
                close_fds=True)
        finally:
            theirs.close()
        self.sock = ours
        self.ready = False
        self.broken = False

    def send(self, data: bytes, fds: tuple[int, ...] = ()) -> None:
        try:
            socket.send_fds(self.sock, [data], list(fds)) if fds else self.sock.send(data)
        except OSError as e:
            self.broken = True
            raise ZygoteError(f"the sandbox worker is gone ({e})") from None

    def receive(self, timeout: float, block: bool = True) -> bytes | None:
        """The next message; None when `block` is off and nothing has arrived."""
        if not self.ready:
            ready, _, _ = select.select([self.sock], [], [], self.START_S if block else 0)
            if not ready:
                return self._fail("did not start", block)
            if self.sock.recv(16) != b"R":
                return self._fail("did not start", True)
            self.ready = True
        ready, _, _ = select.select([self.sock], [], [], timeout if block else 0)
        if not ready:
            return self._fail("stopped answering", block)
        msg = self.sock.recv(4096)
        if not msg:
            return self._fail("exited", True)
        return msg

    def _fail(self, what: str, fatal: bool):
        if not fatal:
            return None
        self.broken = True
        raise ZygoteError(f"the sandbox worker {what}")

    def close(self) -> None:
        self.sock.close()  # EOF: the worker ends its run (if any) and exits
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=0.2)
        if self.proc.returncode is None:
            kill_group(self.proc.pid)
            self.proc.wait()


class ZygotePool:
    """Idle workers, shared by every EmbeddedSandbox of this process; one per busy thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.idle: list[Zygote] = []
        self.busy: set[Zygote] = set()

    def take(self) -> Zygote:
        with self.lock:
            z = self.idle.pop() if self.idle else None
        z = z or Zygote()
        with self.lock:
            self.busy.add(z)
        return z

    def give(self, z: Zygote) -> None:
        with self.lock:
            self.busy.discard(z)
            if not z.broken:
                self.idle.append(z)
                return
        z.close()

    def kill_all(self) -> None:
        """Stop every worker now, busy ones too: their runs end (the launchers die with
        their worker) and the waiting grader threads get an internal outcome."""
        with self.lock:
            workers = list(self.busy) + self.idle
            self.idle = []
        for z in workers:
            z.broken = True
            kill_group(z.proc.pid)

    def prestart(self, n: int = 1) -> None:
        """Start workers now, so their numpy import overlaps the grader's own start-up."""
        if not zygote_possible():
            return
        with self.lock:
            missing = n - len(self.idle)
        for _ in range(max(0, missing)):
            self.give(Zygote())

    def close(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for z in idle:
            z.close()


POOL = ZygotePool()
atexit.register(POOL.close)  # workers end with the grader (and are reaped, for rusage)


class ZygoteRun:
    """The launcher as a child of a pre-started worker."""

    def __init__(self, cfg: dict, fds: tuple[int, int]):
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        self.stdout, self.stderr = open(out_r, "rb", buffering=0), open(err_r, "rb", buffering=0)
        self.usage = None
        self.zygote = None
        try:
            self.pid = self._start(cfg, (out_w, err_w, *fds))
        except BaseException:
            self.abort()
            raise
        finally:
            os.close(out_w)
            os.close(err_w)

    def _start(self, cfg: dict, fds: tuple[int, ...]) -> int:
        data = marshal.dumps(cfg)
        for attempt in (1, 2):  # an idle worker may have died (OOM killer): one more try
            self.zygote = POOL.take()
            try:
                self.zygote.send(data, fds)
                msg = self.zygote.receive(Zygote.ANSWER_S)
            except ZygoteError:
                POOL.give(self.zygote)
                self.zygote = None
                if attempt == 2:
                    raise
                continue
            if not msg.startswith(b"P"):
                self.zygote.broken = True
                raise ZygoteError(f"unexpected answer from the sandbox worker: {msg[:40]!r}")
            return int(msg[1:])
        raise AssertionError("unreachable")

    def _done(self, msg: bytes | None) -> bool:
        if msg is None:
            return False
        if not msg.startswith(b"D"):
            self.zygote.broken = True
            raise ZygoteError(f"unexpected answer from the sandbox worker: {msg[:40]!r}")
        _status, utime, stime, maxrss = marshal.loads(msg[1:])
        self.usage = Usage(utime, stime, maxrss)
        return True

    def ended(self) -> bool:
        return self.usage is not None or self._done(self.zygote.receive(0, block=False))

    def stop(self):
        if self.usage is None:
            self.zygote.send(b"k")  # kill the launcher's group; the worker then reaps it
            while not self._done(self.zygote.receive(Zygote.ANSWER_S)):
                pass
        usage = self.usage
        self.abort()
        return usage

    def abort(self) -> None:
        z, self.zygote = self.zygote, None
        if z is not None:
            if self.usage is None:
                z.broken = True  # mid-run: closing its socket makes it kill the run
            POOL.give(z)
        for stream in (self.stdout, self.stderr):
            if not stream.closed:
                stream.close()


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
        if kind in ("exit", "signal") and not ({"exit", "signal"} & set(status)):
            # one ending only, the first: nothing may add a second, kinder one
            with contextlib.suppress(ValueError):
                n = int(value)
                if kind == "exit" and 0 <= n <= 255 or kind == "signal" and 0 < n < 128:
                    status[kind] = n
        elif kind == "internal" and "internal" not in status:
            status[kind] = value
    return status
