"""The container tier: isolation for root without CAP_SYS_ADMIN (Docker's default
capabilities and seccomp profile, Gradescope, most CI), where no namespace can be made.

Per run, with what such a container still allows:
  - a uid of its own, drawn at random from a wide pool (CAP_SETUID/SETGID), so that
    RLIMIT_NPROC counts this run alone and "every process of the uid" means this run
    (the kernel counts processes per uid across containers: a wide pool keeps two
    containers on one host from sharing a uid);
  - a chroot (CAP_SYS_CHROOT) into a slot of the prepared tree (jail.py): the interpreter,
    its standard library and numpy, read-only to that uid; the box copied into
    /sandbox/box and a fresh /tmp, both the uid's and the only writable places. The
    grader's installation, rubric, reference, other submissions and the output folder
    are not in the tree at all;
  - no_new_privs and the seccomp filter of syscalls.py (no sockets, no ptrace, no
    namespaces or mounts, setsid/setpgid as no-ops so one killpg reaches every process);
  - rlimits: address space (there is no memory cgroup), CPU, processes, file size, open
    files, no core files;
  - a watchdog on the writable folders (there is no tmpfs to size): past the tmp limit
    their folders are frozen (no new files, as on a full disk), past twice the limit the
    run is stopped;
  - the wall clock kills the launcher's process group, then every process of the uid;
  - the namespace tier's scrubbed environment, capped output and pre-started worker.

Without a libseccomp binding the tier still runs, with every protection above but the
filter, and says so: its protections name what is missing and it counts as not isolated.
"""
from __future__ import annotations

import contextlib
import os
import random
import shutil
import stat
import sys
import time
from pathlib import Path

from . import syscalls
from .base import Limits, OutputCap, RunOutcome, SandboxUnavailable
from .embedded import ExecRun, UidPool, ZygoteError, ZygoteRun, box_env, read_status
from .jail import Jail
from .container_launcher import alive
from .launcher import copy_in, copy_out
from .plain import numpy_libdir, outcome, pump

LAUNCHER = Path(__file__).with_name("container_launcher.py")
# A wide uid range, each grader process starting at a random place in it (see above).
UID_BASE, UID_SPAN = 200_000_000, 100_000_000
MAX_ENTRIES = 4096  # files and folders a run may create, as the namespace tier's tmpfs


def uid_pool() -> UidPool:
    return UidPool(first=random.randrange(UID_BASE, UID_BASE + UID_SPAN - 10_000), count=10_000)


class ContainerSandbox:
    name = "container"
    tier = "container"
    # No cpu cgroup of its own, and inside a container's cpu cgroup the kernel's per-session
    # autogroups do not apply: a fork bomb's 30 spinning processes would take the CPU from
    # a submission graded beside it, into timeouts. One run at a time keeps verdicts fair.
    max_parallel = 1
    max_lanes = 1  # no PID namespace: a probe's strays cannot be told from another's

    @property
    def preloads_harness(self) -> bool:
        """Runs start from a worker that has imported the harness package: the box then
        needs only its entry script (plan.write_box leaves nnharness/ out)."""
        return bool(self.zygote)

    def __init__(self, zygote: bool | None = None, jail: Jail | None = None):
        if os.geteuid() != 0:
            raise SandboxUnavailable("the container tier needs root (to switch to a uid of "
                                     "its own and chroot)")
        if zygote is None:
            from .embedded import zygote_possible
            zygote = zygote_possible()
        self.zygote = zygote
        self.seccomp, self.seccomp_why = syscalls.compiled()
        self.isolated = self.seccomp is not None
        self.protections = self._protections()
        self.warning = "" if self.isolated else (
            "This submission ran in the 'container' tier without its seccomp filter "
            f"({self.seccomp_why}): it had its own user and a private file tree, but its "
            "network connections and new sessions were not blocked.")
        self.python = os.path.realpath(sys.executable)
        try:
            self.jail = jail or Jail(self.python)
        except (OSError, RuntimeError, ValueError) as exc:
            raise SandboxUnavailable(f"cannot prepare the container tier's file tree: {exc}") from exc
        self.pool = uid_pool()

    def _protections(self) -> tuple[str, ...]:
        p = ["chroot:interpreter+stdlib+numpy", "own-uid", "no-capabilities", "no-new-privs"]
        if self.seccomp:
            p += [syscalls.PROTECTION, "no-network"]
        else:
            p += ["no seccomp: network NOT blocked, new sessions possible"]
        p += ["rlimits:as,cpu,nproc,fsize,nofile,core", "private-workdir",
              "workdir-size-watchdog", "kill-by-uid", "wall-clock-kill", "scrubbed-env",
              "output-cap"]
        return tuple(p)

    def run(self, box: Path, limits: Limits) -> RunOutcome:
        with self.pool.lease() as uid, self.jail.slot() as root:
            return self._run(box.resolve(), limits, uid, root)

    def _run(self, box: Path, limits: Limits, uid: int, root: Path) -> RunOutcome:
        writable = [root / "sandbox" / "box", root / "tmp"]
        for path in writable:  # a run that crashed the grader may have left them
            shutil.rmtree(path, ignore_errors=True)
        copy_in(str(box), str(writable[0]), uid)
        for path in (writable[0] / "out", writable[1]):
            path.mkdir(mode=0o700, exist_ok=True)
            os.chown(path, uid, uid)
        r, w = os.pipe()            # status lines from the launcher
        go_r, go_w = os.pipe()      # the launcher's go (no cgroups to wait for here)
        proc, clean = None, False
        try:
            watch = DiskWatch(writable, uid, limits.tmp_mb * 2**20, spare=writable[0] / "out")
            cfg = self._config(limits, uid, root, w, go_r)
            start = time.monotonic()
            proc = (ZygoteRun(cfg, (w, go_r)) if self.zygote
                    else ExecRun(self.python, cfg, (w, go_r), script=LAUNCHER))
            for fd in (w, go_r):
                os.close(fd)
            w = go_r = -1
            os.write(go_w, b"1")
            out, err = OutputCap(limits.output_kb * 1024), OutputCap(limits.output_kb * 1024)
            stopped = pump(proc, {proc.stdout: out, proc.stderr: err}, start + limits.wall_s,
                           proc.ended, tick=watch.tick, every=DiskWatch.EVERY_S)
            usage = proc.stop()  # the launcher's group; then the worker, or else the
            # launcher itself when the harness ended, kills every process of the uid
            clean = self.zygote or not stopped
            if not clean:
                kill_uid_from_host(uid)
                clean = True
            wall = time.monotonic() - start
            box_fd = os.open(box, os.O_RDONLY | os.O_DIRECTORY)
            try:
                copy_out(str(writable[0] / "out"), box_fd, limits.tmp_mb * 2**20)
            finally:
                os.close(box_fd)
            return self._classify(read_status(r), stopped, watch, wall, usage, limits,
                                  out.text(), err.text())
        except ZygoteError as e:
            return RunOutcome("internal", message=str(e), tier=self.tier,
                              protections=self.protections)
        finally:
            if proc is not None:
                proc.abort()
                if not clean:  # failed mid-way: nothing of the run may outlive its lease
                    kill_uid_from_host(uid)
            for fd in (r, w, go_r, go_w):
                if fd >= 0:
                    os.close(fd)
            for path in writable:
                shutil.rmtree(path, ignore_errors=True)

    def _config(self, limits: Limits, uid: int, root: Path, status_fd: int, go_fd: int) -> dict:
        mb = 2**20
        cpu = int(limits.cpu_s + 0.999)
        rl = {"RLIMIT_AS": [limits.memory_mb * mb] * 2, "RLIMIT_CPU": [cpu, cpu + 1],
              "RLIMIT_NPROC": [limits.processes] * 2,
              "RLIMIT_FSIZE": [limits.file_size_mb * mb] * 2,
              "RLIMIT_NOFILE": [limits.open_files] * 2, "RLIMIT_CORE": [0, 0]}
        return {
            "launcher": "container", "status_fd": status_fd, "go_fd": go_fd, "uid": uid,
            "root": str(root), "rlimits": rl, "seccomp": self.seccomp,
            "env": box_env() | {"NNGRADER_SOLE_UID": "shared-pids"},
            "argv": [self.python, "-I", "-S", "-B", "harness.py", "plan.json", numpy_libdir()],
        }

    def _classify(self, status: dict, stopped: bool, watch: "DiskWatch", wall: float, usage,
                  limits: Limits, stdout: str, stderr: str) -> RunOutcome:
        common = dict(tier=self.tier, protections=self.protections)
        cpu = usage.ru_utime + usage.ru_stime
        if watch.killed:
            return RunOutcome("error", wall_s=wall, cpu_s=cpu, stdout=stdout, stderr=stderr,
                              message=f"stopped: it wrote more than {2 * limits.tmp_mb} MB "
                              "of files (twice the working folder's limit)", **common)
        if not stopped and "exit" not in status and "signal" not in status:
            why = status.get("internal", "the sandbox ended without a status")
            return RunOutcome("internal", wall_s=wall, cpu_s=cpu, stdout=stdout,
                              stderr=stderr, message=why, **common)
        code = -status["signal"] if "signal" in status else status.get("exit")
        res = outcome(code, stopped, wall, usage, limits, stdout, stderr, **common)
        if res.status == "error" and stderr.rstrip().rsplit("\n", 1)[-1].startswith("MemoryError"):
            # no memory cgroup here: the address-space limit makes the harness itself raise
            return RunOutcome(**{**res.__dict__, "status": "memory",
                                 "message": f"ran out of memory (limit {limits.memory_mb} MB)"})
        return res


class DiskWatch:
    """Keeps the run's writable folders near their limit, with no tmpfs to size them.

    Past `limit` bytes (the box's own files included, as on the namespace tier's tmpfs) or
    MAX_ENTRIES files, every folder and file in them but `spare` (box/out, where the
    harness writes its results) becomes root's and read-only: no file can be made or
    rewritten, writes fail as on a full disk. A file the run still holds open can grow, up
    to RLIMIT_FSIZE; past twice the limit the run is stopped."""

    EVERY_S = 0.02

    def __init__(self, folders: list[Path], uid: int, limit: int, spare: Path):
        self.folders, self.uid, self.limit, self.spare = folders, uid, limit, spare
        self.frozen = self.killed = False
        self.last = 0.0

    def usage(self) -> tuple[int, int]:
        size = entries = 0
        stack = [str(f) for f in self.folders]
        while stack and entries <= 2 * MAX_ENTRIES:
            try:
                it = os.scandir(stack.pop())
            except OSError:
                continue
            with it:
                for entry in it:
                    entries += 1
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    size += st.st_blocks * 512
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(entry.path)
        return size, entries

    def tick(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.EVERY_S:
            return False
        self.last = now
        size, entries = self.usage()
        if size > 2 * self.limit or entries > 2 * MAX_ENTRIES:
            self.killed = True
            return True
        if not self.frozen and (size > self.limit or entries > MAX_ENTRIES):
            self.frozen = True
            for folder in self.folders:
                freeze(str(folder), self.uid, self.spare)
        return False


def freeze(path: str, uid: int, spare: Path) -> None:
    """Make every folder and file under `path` (but in `spare`) root's and read-only,
    through file descriptors opened without following links, so a folder swapped for a
    symlink while we walk can never turn this root process onto a file outside the run.
    Only what the run's uid owns is touched, and a file only when it has one link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    spare_id = None
    with contextlib.suppress(OSError):
        st = os.stat(spare, follow_symlinks=False)
        spare_id = (st.st_dev, st.st_ino)
    _freeze(fd, uid, spare_id, 0)


def _freeze(fd: int, uid: int, spare_id, depth: int) -> None:
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) == spare_id:
            return
        if st.st_uid in (uid, 0):
            os.fchown(fd, 0, 0)
            os.fchmod(fd, 0o555)
        if depth > 64:
            return
        for entry in os.scandir(fd):
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    sub = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                                  dir_fd=fd)
                    _freeze(sub, uid, spare_id, depth + 1)
                elif entry.is_file(follow_symlinks=False):
                    _freeze_file(entry.name, fd, uid)
    except OSError:
        pass
    finally:
        os.close(fd)


def _freeze_file(name: str, dir_fd: int, uid: int) -> None:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_uid == uid and st.st_nlink == 1:
            os.fchown(fd, 0, 0)
            os.fchmod(fd, 0o444)
    finally:
        os.close(fd)


def kill_uid_from_host(uid: int, timeout: float = 2.0) -> None:
    """The grader's backstop, with no fork (it has threads): SIGKILL through a pidfd each
    process whose real uid is `uid`, until none is left but zombies."""
    import signal
    deadline = time.monotonic() + timeout
    while alive(uid) and time.monotonic() < deadline:
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                fd = os.pidfd_open(int(name))
            except OSError:
                continue
            try:  # the pidfd pins the process: the uid read next is that process's
                if Path(f"/proc/{name}/status").read_text().split("Uid:")[1].split()[0] == str(uid):
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
            except (OSError, IndexError):
                pass
            finally:
                os.close(fd)
        time.sleep(0.005)
