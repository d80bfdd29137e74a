"""In-namespace setup for the embedded tier, run as its own script (stdlib only).

    python -I -S -B launcher.py CONFIG_HEX     (marshal.dumps(config).hex())

The grader execs this in a fresh process instead of forking itself: the grader has
threads, and forking a threaded process is unsafe. Three processes, as isolate has them:

  launcher (host PID namespace)  waits to be put in the cgroups, unshares the namespaces,
                                 forks PID 1,
                                 waits for it and reports on the status fd;
  PID 1 (new PID namespace)      builds the read-only root, copies the box into a private
                                 tmpfs, forks the harness, reaps every orphan; when the
                                 harness ends it kills the rest and copies box/out back;
  harness                        pool uid, no groups, no capabilities, no_new_privs,
                                 rlimits, scrubbed env, then exec of the interpreter.

The same three steps also run without an exec at the top: a worker (zygote.py) that has
imported numpy (never student code) forks a child per run that calls `launch(cfg)`, and
its harness process runs the box's harness.py in-process (the `ENTER` hook) instead of
exec'ing a new interpreter, so start-up and the numpy import are paid once per worker.

When PID 1 dies the kernel kills everything in its namespace, and PID 1 dies with the
launcher (PR_SET_PDEATHSIG), so killing the launcher ends the whole submission.
Status lines on the status fd: "exit N", "signal N" or "internal WHY".

Start-up time is part of every submission's cost, so this script imports only builtins
and ctypes (no json, shutil, socket or signal: their imports alone cost ~10 ms).
"""
import ctypes
import marshal
import os
import resource
import stat
import sys

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
SIGKILL = 9
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}

libc = ctypes.CDLL(None, use_errno=True)
ENTER = None  # set by zygote.py: ENTER(cfg) runs the harness in-process and never returns


def check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(src, dst, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    check(libc.mount(enc(src), enc(dst), enc(fstype), ctypes.c_ulong(flags), enc(data)),
          f"mount {src} on {dst}")


def bind_ro(src, dst):
    """Bind `src` at `dst`, then remount it read-only: a bind cannot be ro in one step."""
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "a").close()
    mount(src, dst, None, MS_BIND)
    mount(None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def report(fd, kind, value):
    os.write(fd, f"{kind} {value}".replace("\n", " ").encode() + b"\n")


# ---------------------------------------------------------------- launcher (host side)

def main():
    launch(marshal.loads(bytes.fromhex(sys.argv[1])))


def launch(cfg):
    fd = cfg["status_fd"]
    try:
        # The grader moves us into the run's cgroups while this interpreter starts (the
        # move waits ~10-15 ms for an RCU grace period): wait for its go before forking,
        # so every process of the submission is born inside the groups.
        if os.read(cfg["go_fd"], 1) != b"1":
            raise RuntimeError("the grader could not set up the cgroups")
        os.close(cfg["go_fd"])
        flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
        if cfg["userns"]:
            flags |= CLONE_NEWUSER
            real_uid, real_gid = os.getuid(), os.getgid()
        check(libc.unshare(flags), "unshare")
        if cfg["userns"]:
            map_user(cfg["uid"], real_uid, real_gid)
        alive_r, alive_w = os.pipe()  # EOF on alive_r means the launcher is gone
        pid = os.fork()
        if pid == 0:
            os.close(alive_w)
            init(cfg, fd, alive_r)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):  # PID 1 itself crashed: that is our fault, not theirs
            report(fd, "internal", f"sandbox init died of signal {os.WTERMSIG(status)}")
    except Exception as exc:  # die(), not err(): the sandbox failed
        report(fd, "internal", f"launcher: {exc}")
        sys.exit(2)


def map_user(inner, real_uid, real_gid):
    """Non-root: map one inner uid (not 0, so exec drops the namespace's capabilities)."""
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{inner} {real_uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{inner} {real_gid} 1")


# ---------------------------------------------------------------- PID 1 (inside)

def init(cfg, fd, alive_r):
    try:
        check(libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "pdeathsig")
        # getppid() is 0 across the namespace border, so ask the pipe instead: EOF
        # already means the launcher died before PR_SET_PDEATHSIG took effect.
        os.set_blocking(alive_r, False)
        try:
            if os.read(alive_r, 1) == b"":
                os._exit(1)
        except BlockingIOError:
            pass  # nothing to read yet: the launcher is alive
        os.close(alive_r)
        os.set_inheritable(fd, False)
        box_fd = os.open(cfg["box"], os.O_RDONLY | os.O_DIRECTORY)
        build_root(cfg)
        harness = os.fork()
        if harness == 0:
            become_harness(cfg)
        status = reap_until(harness)
        try:
            os.kill(-1, SIGKILL)  # as PID 1: every other process of the namespace
        except ProcessLookupError:
            pass  # nobody else was left
        reap_all()
        copy_out("/sandbox/box/out", box_fd, cfg["tmp_mb"] * 2**20)
        if os.WIFSIGNALED(status):
            report(fd, "signal", os.WTERMSIG(status))
        else:
            report(fd, "exit", os.WEXITSTATUS(status))
        os._exit(0)
    except BaseException as exc:  # noqa: BLE001 - PID 1 must never unwind into main()
        try:
            report(fd, "internal", f"sandbox init: {exc}")
        finally:
            os._exit(2)


def build_root(cfg):
    """A fresh tmpfs root holding only what the harness needs, all read-only but /sandbox."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing below propagates to the host
    root = cfg["root"]
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for src, dst in cfg["binds"]:
        bind_ro(src, root + dst)
    for link, target in cfg["symlinks"]:
        os.symlink(target, root + link)
    hidden_here = []
    for hidden in cfg["hide"]:  # e.g. the interpreter's own site-packages (sorted: parents
        if os.path.isdir(root + hidden):  # first, which then hide their children)
            mount("tmpfs", root + hidden, "tmpfs", MS_NOSUID | MS_NODEV, "size=4k")
            hidden_here.append(root + hidden)
    for src, dst in cfg.get("lib_binds", ()):  # numpy at its host path, maybe in a hidden dir
        bind_ro(src, root + dst)
    for hidden in hidden_here:
        mount(None, hidden, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for dev in ("null", "zero", "random", "urandom"):
        bind_dev(f"/dev/{dev}", f"{root}/dev/{dev}")
    os.makedirs(root + "/proc")
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    make_workdir(cfg, root)
    mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir(root)
    check(libc.syscall(SYS_PIVOT_ROOT[os.uname().machine], b".", b"."), "pivot_root")
    check(libc.umount2(b".", MNT_DETACH), "detach old root")  # the host is gone for good
    os.chdir("/")
    check(libc.sethostname(b"box", 3), "sethostname")


def bind_dev(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    open(dst, "a").close()
    mount(src, dst, None, MS_BIND)
    mount(None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)


def make_workdir(cfg, root):
    """The only writable place: a size-limited tmpfs holding a copy of the box and /tmp."""
    uid, work = cfg["uid"], root + "/sandbox"
    os.makedirs(work)
    mount("tmpfs", work, "tmpfs", MS_NOSUID | MS_NODEV,
          f"size={cfg['tmp_mb']}m,nr_inodes=4096,mode=0755")
    copy_in(cfg["box"], work + "/box", uid)
    for sub in ("/box/out", "/tmp"):
        if not os.path.isdir(work + sub):
            os.mkdir(work + sub)
            os.chown(work + sub, uid, uid)
    os.makedirs(root + "/tmp")
    mount(work + "/tmp", root + "/tmp", None, MS_BIND)


def copy_in(src, dst, uid):
    """Copy the host box into the tmpfs, owned by the run's uid; links stay links."""
    os.mkdir(dst)
    os.chown(dst, uid, uid)
    for entry in os.scandir(src):
        target = os.path.join(dst, entry.name)
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
        elif entry.is_dir():
            copy_in(entry.path, target, uid)
            continue
        elif entry.is_file():
            out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                copy_file(entry.path, out)
            finally:
                os.close(out)
        else:
            continue  # fifos, sockets, devices: never copied
        os.lchown(target, uid, uid)


def copy_file(path, out_fd):
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return
            os.write(out_fd, chunk)
    finally:
        os.close(fd)


def become_harness(cfg):
    """Last steps before exec, in isolate's order: rlimits, credentials, fds, env, exec."""
    try:
        lim = cfg["rlimits"]
        for name, value in lim.items():
            res = getattr(resource, name)
            resource.setrlimit(res, tuple(value))
        uid = cfg["uid"]
        if not cfg["userns"]:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)  # from root to non-root: all capabilities cleared
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        os.chdir("/sandbox/box")
        # Only stdin, stdout and stderr go on: PID 1's status pipe and its handle on the
        # host's box folder (and, from a pre-started worker, its socket) must not reach
        # student code. close-on-exec alone is not enough when nothing is exec'd.
        os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        if ENTER is not None:
            ENTER(cfg)
        os.execve(cfg["argv"][0], cfg["argv"], cfg["env"])
    except BaseException as exc:  # noqa: BLE001
        os.write(2, f"sandbox: could not start the harness: {exc}\n".encode())
        os._exit(127)


def reap_until(target):
    """Reap orphans (PID 1's duty) until `target` ends; return its wait status."""
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
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def copy_out(src, box_fd, budget):
    """Copy box/out back to the host box: regular files and folders only, never a link."""
    try:
        os.mkdir("out", 0o755, dir_fd=box_fd)
    except FileExistsError:
        pass
    out_fd = os.open("out", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=box_fd)
    try:
        copy_tree(src, out_fd, [budget])
    finally:
        os.close(out_fd)


def copy_tree(src, dst_fd, budget):
    for entry in os.scandir(src):
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            try:
                os.mkdir(entry.name, 0o755, dir_fd=dst_fd)
            except FileExistsError:
                pass
            sub = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dst_fd)
            try:
                copy_tree(entry.path, sub, budget)
            finally:
                os.close(sub)
        elif stat.S_ISREG(st.st_mode) and st.st_size <= budget[0]:
            budget[0] -= st.st_size
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
            out = os.open(entry.name, flags, 0o644, dir_fd=dst_fd)
            try:
                copy_file(entry.path, out)
            finally:
                os.close(out)


if __name__ == "__main__":
    main()
