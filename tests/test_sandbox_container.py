"""The container tier (root without namespaces) against every adversarial box
(tests/sandbox_cases.py), plus what is its own: the chroot tree, the seccomp filter, the
kill by uid, the watchdog on its writable folders.

Here the tier runs on the host, where namespaces would work too; tests/test_adversarial.py
runs it the way it is deployed, inside `docker run` with Docker's default capabilities.
"""
from __future__ import annotations

import os

import pytest

from grader.sandbox import Limits, SandboxUnavailable, open_sandbox
from sandbox_cases import *  # noqa: F401,F403 - the shared adversarial tests
from sandbox_cases import FAST, make_box, results

try:
    _BACKEND = open_sandbox("container")
except SandboxUnavailable as exc:
    pytest.skip(f"container tier unavailable: {exc}", allow_module_level=True)


@pytest.fixture(scope="module")
def sandbox():
    return _BACKEND


def test_the_tier_says_what_protects_it(sandbox):
    assert sandbox.tier == "container"
    if sandbox.seccomp is None:
        pytest.skip(f"no libseccomp here: {sandbox.seccomp_why}")
    assert sandbox.isolated
    for p in ("own-uid", "no-network", "kill-by-uid", "chroot:interpreter+stdlib+numpy"):
        assert p in sandbox.protections
    assert any(p.startswith("seccomp:") for p in sandbox.protections)


def test_filling_the_disk_is_bounded(sandbox, tmp_path):
    """No tmpfs to size here: past the folder limit no new file can be made (EACCES, as
    on a full disk the harness still writes its results), one file stops at RLIMIT_FSIZE."""
    box = make_box(tmp_path, """
        import errno, time
        stops = []
        with open("big", "wb") as f:          # one huge file: RLIMIT_FSIZE
            try:
                while True:
                    f.write(b"z" * 1_000_000)
                    f.flush()
            except OSError as exc:
                stops.append(errno.errorcode[exc.errno])
        os.remove("big")
        made = 0
        try:                                  # many files: the watchdog's freeze
            for i in range(10_000):
                with open(f"/tmp/f{i}", "wb") as f:
                    f.write(b"z" * 1_000_000)
                made += 1
                time.sleep(0.001)
        except OSError as exc:
            stops.append(errno.errorcode[exc.errno])
        done(stops=stops, made=made)
    """)
    res = sandbox.run(box, FAST)
    assert res.status == "ok", res
    got = results(box)
    assert got["stops"][0] == "EFBIG" and got["stops"][1] in ("EACCES", "EPERM"), got
    assert got["made"] <= 2 * FAST.tmp_mb, got


def test_writing_on_past_twice_the_limit_stops_the_run(sandbox, tmp_path):
    box = make_box(tmp_path, """
        import time
        files = [open(f"/tmp/f{i}", "wb") for i in range(16)]  # opened before the freeze
        while True:
            for f in files:
                try:
                    f.write(b"z" * 1_000_000)
                except OSError:
                    pass
            time.sleep(0.001)
    """)
    res = sandbox.run(box, Limits(wall_s=10, cpu_s=10, memory_mb=256, processes=16,
                                  tmp_mb=16, file_size_mb=8))
    assert res.status == "error" and "wrote more than 32 MB" in res.message, res
    assert res.wall_s < 5


def test_seccomp_blocks_what_it_says(sandbox, tmp_path):
    if sandbox.seccomp is None:
        pytest.skip(f"no libseccomp here: {sandbox.seccomp_why}")
    box = make_box(tmp_path, """
        import ctypes, socket
        libc = ctypes.CDLL(None, use_errno=True)
        seen = {}
        for name, call in [("inet", lambda: socket.socket()),
                           ("unix", lambda: socket.socket(socket.AF_UNIX)),
                           ("pair", lambda: socket.socketpair())]:
            try:
                call()
                seen[name] = "ok"
            except OSError as exc:
                seen[name] = exc.errno
        seen["unshare"] = libc.unshare(0x10000000)  # CLONE_NEWUSER
        seen["ptrace"] = libc.ptrace(16, os.getppid(), 0, 0)  # PTRACE_ATTACH
        before = (os.getpgid(0), os.getsid(0))
        os.setsid()                          # a no-op: the run stays one process group
        os.setpgid(0, 0)
        seen["group_kept"] = (os.getpgid(0), os.getsid(0)) == before
        done(**seen)
    """)
    res = sandbox.run(box, FAST)
    assert res.status == "ok", res
    got = results(box)
    assert got["inet"] == got["unix"] == 13 and got["pair"] == "ok", got
    assert got["unshare"] == -1 and got["ptrace"] == -1 and got["group_kept"], got


def test_the_tree_holds_only_the_interpreter_and_numpy(sandbox, tmp_path):
    import grader
    box = make_box(tmp_path, """
        import numpy
        tops = sorted(os.listdir("/"))
        site = os.path.dirname(os.path.dirname(numpy.__file__))
        done(tops=tops, site=sorted(os.listdir(site)),
             grader=os.path.exists(plan["grader"]), cwd=os.getcwd(), tmp=os.environ["TMPDIR"],
             procs=os.listdir("/proc"))
    """, {"grader": os.path.dirname(grader.__file__)})
    res = sandbox.run(box, FAST)
    assert res.status == "ok", res
    got = results(box)
    assert got["site"] == sorted(n for n in ("numpy", "numpy.libs") if n in got["site"]), got
    assert not got["grader"], got
    assert got["cwd"] == "/sandbox/box" and got["tmp"] == "/tmp"
    assert "sandbox" in got["tops"] and got["procs"] == []  # an empty /proc
