"""The container tier's seccomp filter, compiled once in the grader with libseccomp.

The rules are written with libseccomp (through PyPI's pyseccomp, ctypes over the system's
libseccomp.so.2, which apt itself depends on in Debian and Ubuntu images; or Debian's
python3-seccomp, the same API) and exported as raw BPF. The box then loads those bytes with
one prctl() (container_launcher.py): it needs no library, and the filter is compiled once
per grader process, not once per run.

Default allow; per system call:
  socket                       EACCES: no network of any kind (AF_UNIX included: the
                               container's own sockets are not the submission's business)
  socketpair other than AF_UNIX EACCES (a pair of connected local sockets reaches nobody)
  setsid, setpgid              succeed without doing anything: every process of the run
                               stays in the launcher's process group, so one killpg ends
                               them all, and code that daemonises still runs as it would
  clone with a CLONE_NEW* flag EPERM; clone3 ENOSYS (its flags sit in memory a filter
                               cannot read; the C library then falls back to clone)
  ptrace, namespaces, mounts, bpf, keys, io_uring (whose requests bypass seccomp), kernel
  modules, ...                 EPERM (see DENIED)
Other architectures' system calls (e.g. 32-bit int 0x80 on x86_64) kill the process,
libseccomp's default for a foreign architecture.
"""
from __future__ import annotations

import errno
import functools
import socket
import tempfile

DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "move_mount",
    "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "syslog", "vhangup",
    "name_to_handle_at", "open_by_handle_at", "lookup_dcookie", "move_pages",
    "migrate_pages", "fanotify_init",
)
ONE_GROUP = ("setsid", "setpgid")
CLONE_NEW = (0x00020000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000,
             0x02000000)  # NS, UTS, IPC, USER, PID, NET, CGROUP

# What the filter does, as the protections list says it.
PROTECTION = "seccomp:no-sockets,no-ptrace,no-namespaces,no-mounts,no-bpf,no-keys,no-io_uring,one-process-group"


def binding():
    """The libseccomp binding: pyseccomp, else Debian's python3-seccomp (same API)."""
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError, RuntimeError):  # RuntimeError: no libseccomp.so.2
        import seccomp  # noqa: F811 - raises ImportError when neither is there
    return seccomp


@functools.lru_cache(maxsize=1)
def compiled() -> tuple[bytes | None, str]:
    """(the filter as BPF bytes, '') or (None, why it could not be built)."""
    try:
        sc = binding()
    except Exception as exc:  # noqa: BLE001 - ImportError, OSError: no binding, no library
        return None, f"no libseccomp binding ({type(exc).__name__}: {exc})"
    try:
        return _build(sc), ""
    except Exception as exc:  # noqa: BLE001 - a libseccomp too old or broken
        return None, f"libseccomp failed: {type(exc).__name__}: {exc}"


def _build(sc) -> bytes:
    f = sc.SyscallFilter(sc.ALLOW)
    deny = sc.ERRNO(errno.EPERM)
    for name in DENIED:
        _rule(sc, f, deny, name)
    _rule(sc, f, sc.ERRNO(errno.EACCES), "socket")
    _rule(sc, f, sc.ERRNO(errno.EACCES), "socketpair", sc.Arg(0, sc.NE, socket.AF_UNIX))
    for name in ONE_GROUP:
        _rule(sc, f, sc.ERRNO(0), name)
    for flag in CLONE_NEW:
        _rule(sc, f, deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    _rule(sc, f, sc.ERRNO(errno.ENOSYS), "clone3")
    with tempfile.TemporaryFile() as out:
        f.export_bpf(out)
        out.seek(0)
        prog = out.read()
    if not prog or len(prog) % 8:
        raise RuntimeError(f"exported {len(prog)} bytes, not a BPF program")
    return prog


def _rule(sc, f, action, name, *args) -> None:
    try:
        number = sc.resolve_syscall(sc.system_arch(), name)
    except Exception:  # noqa: BLE001 - a name this libseccomp does not know
        return
    if number == -1:  # __NR_SCMP_ERROR: not a system call on this architecture
        return
    f.add_rule(action, name, *args)
