"""The container tier's launcher, run as root (stdlib only, like launcher.py):

    python -I -S -B container_launcher.py CONFIG_HEX     (marshal.dumps(config).hex())

or called as `launch(cfg)` in a child of the pre-started worker (zygote.py). It is for
hosts where the namespace launcher cannot run: root without CAP_SYS_ADMIN (Docker's
default capabilities and seccomp profile, Gradescope, most CI). Two processes:

  launcher (root)  a child subreaper in its own session: forks the harness, reaps every
                   orphan of the run, and when the harness ends kills every process of the
                   run's uid (kill_uid) and reports "exit N" / "signal N" on the status fd;
  harness          chroot into the prepared tree (jail.py), rlimits, no groups, the run's
                   pool uid (no capabilities left), parent-death signal, no_new_privs, the
                   seccomp filter (syscalls.py), only fds 0-2, then exec of the
                   interpreter, or the worker's in-process ENTER hook.

The seccomp filter turns setsid/setpgid into no-ops, so every process of the run stays in
the launcher's process group: killing that group (the grader's wall clock) reaches them
all, and kill_uid is the backstop that needs no filter at all.
"""
import ctypes
import marshal
import os
import resource
import sys
import time

PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 1, 38, 22
PR_SET_CHILD_SUBREAPER = 36
SECCOMP_MODE_FILTER = 2
SIGKILL = 9
WORKDIR = "/sandbox/box"

libc = ctypes.CDLL(None, use_errno=True)
ENTER = None  # set by zygote.py: ENTER(cfg) runs the harness in-process and never returns


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def report(fd, kind, value):
    os.write(fd, f"{kind} {value}".replace("\n", " ").encode() + b"\n")


def main():
    launch(marshal.loads(bytes.fromhex(sys.argv[1])))


def launch(cfg):
    fd = cfg["status_fd"]
    try:
        if os.read(cfg["go_fd"], 1) != b"1":
            raise RuntimeError("the grader did not start the run")
        os.close(cfg["go_fd"])
        check(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "subreaper")
        me = os.getpid()
        pid = os.fork()
        if pid == 0:
            become_harness(cfg, me)
        status = reap_until(pid)
        kill_uid(cfg["uid"])  # daemons, forks, leftovers: nothing of the run outlives it
        if os.WIFSIGNALED(status):
            report(fd, "signal", os.WTERMSIG(status))
        else:
            report(fd, "exit", os.WEXITSTATUS(status))
    except Exception as exc:  # noqa: BLE001 - the sandbox failed, not the submission
        report(fd, "internal", f"launcher: {exc}")
        sys.exit(2)


def become_harness(cfg, launcher):
    """Last steps before the harness, in isolate's order; never returns."""
    try:
        os.chroot(cfg["root"])
        os.chdir(WORKDIR)
        for name, value in cfg["rlimits"].items():
            resource.setrlimit(getattr(resource, name), tuple(value))
        uid = cfg["uid"]
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # from root to a uid of its own: no capabilities left
        check(libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "pdeathsig")  # after setuid,
        if os.getppid() != launcher:  # which clears it; the launcher may already be gone
            os._exit(1)
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        if cfg.get("seccomp"):
            load_filter(cfg["seccomp"])
        # Only stdin, stdout and stderr go on (the status pipe, the worker's socket stay out)
        os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        if ENTER is not None:
            ENTER(cfg)
        os.execve(cfg["argv"][0], cfg["argv"], cfg["env"])
    except BaseException as exc:  # noqa: BLE001
        os.write(2, f"sandbox: could not start the harness: {exc}\n".encode())
        os._exit(127)


def load_filter(prog):
    """Install a BPF program exported by libseccomp (grader side) with one prctl()."""
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "seccomp")


def kill_uid(uid, rounds=100):
    """SIGKILL every process of `uid` and reap them all. The caller is a child subreaper
    with no other children, so every process of the run is its descendant (an orphan comes
    back to it): once waitpid() says no child is left, none is. A helper switched to the
    uid sends kill(-1), which reaches every process of the uid at once (the run's uid is
    its alone), again while any child is still alive after a moment."""
    for _ in range(rounds):
        pid = os.fork()
        if pid == 0:
            try:
                os.setresuid(uid, uid, uid)
                os.kill(-1, SIGKILL)
            finally:
                os._exit(0)
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    time.sleep(0.0005)
            except ChildProcessError:
                return
            except InterruptedError:
                continue


def alive(uid):
    """Whether a process (not a zombie) of `uid` is left: True/False, None without /proc."""
    try:
        names = [n for n in os.listdir("/proc") if n.isdigit()]
    except OSError:
        return None
    for name in names:
        try:
            with open(f"/proc/{name}/status", "rb") as f:
                fields = dict(line.split(b":", 1) for line in f.read().splitlines() if b":" in line)
            if int(fields[b"Uid"].split()[0]) == uid and not fields[b"State"].strip().startswith(b"Z"):
                return True
        except (OSError, KeyError, ValueError):
            continue
    return False


def reap_until(target):
    """Reap orphans (a subreaper's duty) until `target` ends; return its wait status."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            raise RuntimeError("harness vanished")
        except InterruptedError:
            continue
        if pid == target:
            return status


def reap_all():
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


if __name__ == "__main__":
    main()
