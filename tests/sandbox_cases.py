"""Adversarial boxes every isolating backend must contain, shared by the backend test files.

Each test file defines a `sandbox` fixture and star-imports these tests. A box here holds
a tiny stand-in harness (the real one lives on main): a prelude that puts the LIBDIR
arguments on sys.path and offers `done(**facts)` to write out/results.json, then the
attack. The tests read what the harness saw from the host side afterwards.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import signal
import socket
import textwrap
import threading
import time
from pathlib import Path

import pytest

from grader.sandbox.base import Limits
from grader.sandbox.embedded import UID_COUNT, UID_FIRST

PRELUDE = """\
import sys, os, json
sys.path[:0] = sys.argv[2:]
plan = json.load(open(sys.argv[1]))
def done(**facts):
    os.makedirs("out", exist_ok=True)
    with open("out/results.json", "w") as f:
        json.dump(facts, f)
"""

FAST = Limits(wall_s=3, cpu_s=3, memory_mb=256, processes=16, output_kb=16, tmp_mb=16,
              file_size_mb=4)


def make_box(root: Path, body: str, plan: dict | None = None, name: str = "box") -> Path:
    box = root / name
    (box / "src").mkdir(parents=True)
    (box / "harness.py").write_text(PRELUDE + textwrap.dedent(body))
    (box / "plan.json").write_text(json.dumps(plan or {}))
    return box


def results(box: Path) -> dict:
    return json.loads((box / "out" / "results.json").read_text())


def pool_processes() -> list[tuple[int, str]]:
    """(pid, cgroup text, uid) of every process owned by a sandbox uid, anywhere on the host."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
            cgroup = Path(entry.path, "cgroup").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
        if sandbox_uid(uid) and not other_graders_worker(cmdline) \
                and not other_graders_worker(parent_cmdline(status)) and not others_zombie(status):
            found.append((int(entry.name), cgroup, uid))
    return found


def sandbox_uid(uid: int) -> bool:
    """A uid of the namespace tier's pool or of the container tier's wide range."""
    from grader.sandbox.container import UID_BASE, UID_SPAN
    return UID_FIRST <= uid < UID_FIRST + UID_COUNT or UID_BASE <= uid < UID_BASE + UID_SPAN


def other_graders_worker(cmdline: str) -> bool:
    """A pre-started worker (or a process forked from one, which keeps its command line) of
    another nngrader installation on this machine, e.g. a second checkout's test run: it is
    that grader's business, even in the moment before its run joins a cgroup."""
    from grader.sandbox.embedded import ZYGOTE
    return "/grader/sandbox/zygote.py" in cmdline and str(ZYGOTE) not in cmdline


def field(status: str, name: str) -> str:
    return next((line.split(":", 1)[1].strip() for line in status.splitlines()
                 if line.startswith(name + ":")), "")


def parent_cmdline(status: str) -> str:
    try:
        ppid = field(status, "PPid")
        return Path(f"/proc/{ppid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def others_zombie(status: str) -> bool:
    """A zombie whose parent is not a descendant of this test process. A zombie has left
    its cgroup (it shows the root one), so only its parent tells whose it was; one of ours
    still counts, since unreaped zombies use up the uid's process limit."""
    if not field(status, "State").startswith("Z"):
        return False
    pid = int(field(status, "PPid") or 0)
    while pid > 1:
        if pid == os.getpid():
            return False
        try:
            pid = int(field(Path(f"/proc/{pid}/status").read_text(), "PPid") or 0)
        except OSError:
            return True
    return True


def describe_process(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        ppid = field(status, "PPid")
        parent = Path(f"/proc/{ppid}/cmdline").read_bytes().replace(b"\0", b" ")[:120]
    except OSError:
        return ""
    return f" state {field(status, 'State')}, parent {ppid} {parent!r}"


def docker_ids() -> set[str]:
    try:
        ids = subprocess.run(["docker", "ps", "-aq", "--no-trunc"], capture_output=True,
                             text=True, timeout=20).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return set()
    return set(ids)


def leftovers(grader_pid: int) -> list[str]:
    """Sandboxed processes of this grader still alive. Other graders may run on the same
    machine at the same time, so a pool process counts as ours when its cgroup was this
    grader's (nngrader-PID-N), when it belongs to a container that no longer exists, or
    when it carries no sandbox cgroup at all (tiers without cgroups)."""
    live = None
    found = []
    for pid, cgroup, uid in pool_processes():
        containers = re.findall(r"docker[/-]([0-9a-f]{64})", cgroup)
        if containers:
            live = docker_ids() if live is None else live
            found += [f"pid {pid} of removed container {c[:12]}" for c in containers if c not in live]
        elif f"nngrader-{grader_pid}-" in cgroup or "nngrader-" not in cgroup:
            found.append(f"pid {pid} uid {uid} ({cgroup.strip().splitlines()[0] if cgroup.strip() else 'no cgroup'})"
                         + describe_process(pid))
    return found


@pytest.fixture(autouse=True)
def nothing_left_behind():
    yield
    deadline = time.monotonic() + 2
    while leftovers(os.getpid()) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = leftovers(os.getpid())
    assert left == [], f"a sandboxed process outlived its run: {left}"


def test_honest_run_returns_results_and_tier(sandbox, tmp_path):
    box = make_box(tmp_path, """
        import numpy as np
        print("hello from the box")
        done(total=float(np.arange(10).sum()), uid=os.getuid(), cwd=os.getcwd())
    """)
    res = sandbox.run(box, FAST)
    assert res.status == "ok", res
    assert results(box)["total"] == 45.0
    assert results(box)["uid"] != 0
    assert "hello from the box" in res.stdout
    assert res.tier == sandbox.tier and res.protections == sandbox.protections


def test_infinite_loop_hits_cpu_limit(sandbox, tmp_path):
    box = make_box(tmp_path, "while True: pass\n")
    res = sandbox.run(box, Limits(wall_s=5, cpu_s=1, memory_mb=256, processes=16))
    assert res.status == "timeout", res
    assert res.wall_s < 4


def test_sleeper_hits_wall_clock(sandbox, tmp_path):
    box = make_box(tmp_path, "import time\ntime.sleep(60)\n")
    res = sandbox.run(box, Limits(wall_s=1.5, cpu_s=5, memory_mb=256, processes=16))
    assert res.status == "timeout" and "wall-clock" in res.message, res
    assert res.wall_s < 4


def test_memory_bomb_is_reported_as_memory(sandbox, tmp_path):
    box = make_box(tmp_path, """
        hog = []
        while True:
            hog.append(b"x" * 10_000_000)
    """)
    res = sandbox.run(box, FAST)
    assert res.status == "memory", res
    assert res.message == "ran out of memory (limit 256 MB)"


def test_fork_bomb_is_contained(sandbox, tmp_path):
    box = make_box(tmp_path, """
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """)
    res = sandbox.run(box, Limits(wall_s=2, cpu_s=5, memory_mb=256, processes=16))
    assert res.status in ("timeout", "error", "signal"), res
    assert res.wall_s < 5
    # the autouse fixture then checks that no process of the pool uids survived


def test_no_network_even_to_host_loopback(sandbox, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    box = make_box(tmp_path, """
        import socket
        try:
            socket.create_connection(("127.0.0.1", plan["port"]), timeout=2).close()
            done(connected=True)
        except OSError as exc:
            done(connected=False, error=str(exc))
    """, {"port": port})
    try:
        res = sandbox.run(box, FAST)
        with pytest.raises(socket.timeout):
            listener.accept()
    finally:
        listener.close()
    assert res.status == "ok", res
    assert results(box)["connected"] is False


def test_host_files_outside_the_box_are_unreadable(sandbox, tmp_path):
    secret = tmp_path / "reference" / "solution.py"
    secret.parent.mkdir()
    secret.write_text("W = 42\n")
    other = make_box(tmp_path, "pass\n", name="other")
    (other / "src" / "answer.py").write_text("mine\n")
    import grader
    targets = [str(secret), str(other / "src" / "answer.py"), grader.__file__,
               "/etc/passwd", "/root/.bashrc", str(tmp_path)]
    box = make_box(tmp_path, """
        seen = {}
        for path in plan["targets"]:
            try:
                with open(path) as f:
                    seen[path] = f.read(100)
            except OSError as exc:
                seen[path] = None
        try:
            import pytest
            seen["import pytest"] = "imported"
        except ImportError:
            seen["import pytest"] = None
        done(seen=seen, tmp=os.listdir("/tmp"))
    """, {"targets": targets})
    res = sandbox.run(box, FAST)
    assert res.status == "ok", res
    assert all(v is None for v in results(box)["seen"].values()), results(box)
    assert results(box)["tmp"] == []


def test_files_outside_the_workdir_are_read_only(sandbox, tmp_path):
    box = make_box(tmp_path, """
        import numpy
        wrote = []
        for path in ["/usr/evil", os.path.join(os.path.dirname(numpy.__file__), "evil"),
                     "/evil", "/etc/evil", sys.executable + ".evil"]:
            try:
                open(path, "w").close()
                wrote.append(path)
            except OSError:
                pass
        done(wrote=wrote)
    """)
    res = sandbox.run(box, FAST)
    assert res.status == "ok", res
    assert results(box)["wrote"] == []


def test_grader_environment_does_not_leak(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("CANVAS_TOKEN", "s3cret-token")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "8")  # the box's own value, not the host's
    box = make_box(tmp_path, "done(env=dict(os.environ))\n")
    res = sandbox.run(box, FAST)
    env = results(box)["env"]
    assert res.status == "ok"
    assert "CANVAS_TOKEN" not in env and "s3cret-token" not in json.dumps(env)
    assert env.get("OPENBLAS_NUM_THREADS") == "1"


def test_killing_parent_and_group_spares_the_grader(sandbox, tmp_path):
    box = make_box(tmp_path, """
        import signal
        for target in (lambda: os.kill(os.getppid(), signal.SIGKILL),
                       lambda: os.killpg(0, signal.SIGKILL),
                       lambda: os.kill(-1, signal.SIGKILL)):
            try:
                target()
            except OSError:
                pass
        done(survived=True)
    """)
    res = sandbox.run(box, FAST)
    os.kill(os.getpid(), 0)  # still here
    assert res.status in ("ok", "signal", "internal"), res


def test_setsid_double_fork_daemon_is_gone_after_run(sandbox, tmp_path):
    box = make_box(tmp_path, """
        import time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(60)  # a daemon holding stdout open
            os._exit(0)
        done(parent=True)
    """)
    start = time.monotonic()
    res = sandbox.run(box, FAST)
    assert res.status == "ok", res
    assert time.monotonic() - start < 2.5


def test_huge_output_is_capped(sandbox, tmp_path):
    box = make_box(tmp_path, """
        chunk = "y" * 1_000_000
        for _ in range(50):
            sys.stdout.write(chunk)
        done(printed=True)
    """)
    res = sandbox.run(box, FAST)
    assert res.status == "ok", res
    assert len(res.stdout) < FAST.output_kb * 1024 + 200
    assert "bytes of output cut" in res.stdout


def test_segfault_is_a_signal(sandbox, tmp_path):
    box = make_box(tmp_path, "import ctypes\nctypes.string_at(0)\n")
    res = sandbox.run(box, FAST)
    assert res.status == "signal" and res.signal == signal.SIGSEGV, res


def test_spinning_non_daemon_thread_is_bounded(sandbox, tmp_path):
    box = make_box(tmp_path, """
        import threading
        def spin():
            while True:
                pass
        threading.Thread(target=spin).start()
        done(main_returned=True)
    """)
    res = sandbox.run(box, Limits(wall_s=2, cpu_s=5, memory_mb=256, processes=16))
    assert res.status == "timeout", res
    assert res.wall_s < 4


def test_filling_the_disk_is_bounded(sandbox, tmp_path):
    box = make_box(tmp_path, """
        import errno
        stops = []
        with open("big", "wb") as f:          # one huge file: RLIMIT_FSIZE
            try:
                while True:
                    f.write(b"z" * 1_000_000)
                    f.flush()
            except OSError as exc:
                stops.append(errno.errorcode[exc.errno])
        os.remove("big")
        try:                                  # many files: the tmpfs size
            for i in range(10_000):
                with open(f"/tmp/f{i}", "wb") as f:
                    f.write(b"z" * 1_000_000)
        except OSError as exc:
            stops.append(errno.errorcode[exc.errno])
        for i in range(10_000):
            try:
                os.remove(f"/tmp/f{i}")
            except OSError:
                break
        done(stops=stops)
    """)
    res = sandbox.run(box, FAST)
    assert res.status == "ok", res
    stops = results(box)["stops"]
    assert stops[0] in ("EFBIG", "ENOSPC") and stops[1] in ("ENOSPC", "EDQUOT", "EFBIG"), stops


def test_two_runs_in_parallel_threads(sandbox, tmp_path):
    boxes = [make_box(tmp_path, "import time\ntime.sleep(0.3)\ndone(n=plan['n'])\n", {"n": n},
                      name=f"box{n}") for n in range(2)]
    outcomes = [None, None]

    def go(n):
        outcomes[n] = sandbox.run(boxes[n], FAST)

    threads = [threading.Thread(target=go, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [o.status for o in outcomes] == ["ok", "ok"], outcomes
    assert [results(b)["n"] for b in boxes] == [0, 1]
