"""Every adversarial fixture, graded in ONE batch beside honest submissions, is contained.

The batch (tests/fixtures/adversarial/*, three correct submissions and a buggy control)
goes through the real CLI once per backend: `auto` (the namespace tier as root), `docker`
and `container`: `nngrader grade --sandbox auto` run INSIDE a `docker run` with Docker's
default capabilities and seccomp profile, where no namespace can be made and auto picks
the container tier (tests/docker_grading.py; both skipped, with the reason, only when no
engine answers). The test plays the
victim: it sets a token in the grader's environment, listens on the loopback port range
the network fixture scans, plants markers in the honest submissions and the rubric, and
afterwards looks for any of it in OUT, for files the fixtures try to create outside OUT,
and for processes the batch left behind.

The rubric is a copy of the default with shorter per-check timeouts, a shorter
submission wall clock and less memory (stricter than the default, never looser), so a
batch with an endless loop and a memory bomb in it stays well under a minute.
"""
from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import FIXTURES, REPO, validate_result
from sandbox_cases import leftovers

ADVERSARIAL = FIXTURES / "adversarial"
HONEST = ["classic_template.py", "renamed_classes.py", "optimizer_object.py"]
CONTROL = "buggy/relu_no_mask.py"  # the bug forged_stdout/result_files/monkeypatch carry
HOSTILE_ID = '=HYPERLINK("x")<img src=y onerror=alert(3)>'  # no "/" in a file name  # html_injection.py is graded under this name
PORTS = range(47310, 47330)  # what network.py scans
TIMEOUT_S, WALL_S, MEMORY_MB = 3, 40, 256  # wall >= 9 probes x 3 s + 5 s, as rubrics must
LEAK_TOKEN = "LEAKED"  # fixtures build it as "LEA" + "KED" when they found something

# What the fixtures try to create outside the box (besides paths relative to their box).
WATCHED = ["/tmp/result.json", "/tmp/results.json", "/var/tmp/result.json",
           "/dev/shm/result.json", "/tmp/out", "/tmp/nngrader_adv_pickle_ran",
           "/tmp/nngrader_adv_daemon_marker", "/var/tmp/nngrader_adv_daemon_marker",
           "/dev/shm/nngrader_adv_daemon_marker", "/tmp/nngrader_adv_pth_ran"]
FILL_GLOBS = ["/tmp/nngrader_adv_fill_*", "/var/tmp/nngrader_adv_fill_*",
              "/dev/shm/nngrader_adv_fill_*", "/root/nngrader_adv_fill_*", "/nngrader_adv_fill_*"]

# Attacks on the machine whose layers are correct: once contained, they keep full marks.
FULL_MARKS = ["network", "snoop", "env_leak", "daemon", "fill_disk", "huge_output",
              "pickle_payload", "tamper"]
# These burn their own CPU while the probe runs (Docker gives a box one CPU): a long
# training probe may run out of time, the quick layer probes may not.
CPU_BURNERS = ["fork_bomb", "spin_thread"]
LAYER_CHECKS = ["linear.forward", "linear.backward", "relu.forward", "relu.backward",
                "loss.forward", "loss.backward"]


class Listener:
    """A TCP listener on the host's loopback, on the first free port of PORTS."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for port in PORTS:
            try:
                self.sock.bind(("127.0.0.1", port))
                break
            except OSError:
                continue
        else:
            pytest.skip(f"no free port in {PORTS} for the loopback listener")
        self.port = port
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.connections: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, addr = self.sock.accept()
            except OSError:
                continue
            self.connections.append(f"{addr}")
            conn.close()

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@dataclass
class Batch:
    sandbox: str
    out: Path
    proc: subprocess.CompletedProcess
    results: dict
    secret: str
    markers: list[str]
    reference_lines: list[str]
    connections: list[str]
    grader_pid: int | None
    elapsed: float
    input_digest_before: str
    input_digest_after: str
    fixtures_digest_before: str
    fixtures_digest_after: str
    created_outside: list[str] = field(default_factory=list)
    leftover: list[str] = field(default_factory=list)
    installed_before: dict = field(default_factory=dict)  # in the container: hashes of the
    installed_after: dict = field(default_factory=dict)   # grader, site-packages, stdlib


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def outside_files() -> list[str]:
    found = [p for p in WATCHED if os.path.lexists(p)]
    for pattern in FILL_GLOBS:
        found += glob.glob(pattern)
    return found


def own_containers(grader_pid: int) -> list[str]:
    try:
        return subprocess.run(["docker", "ps", "-aq", "--filter",
                               f"label=nngrader.owner={grader_pid}"], capture_output=True,
                              text=True, timeout=20).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return []


def reference_lines() -> list[str]:
    """Distinctive lines of the reference solution (>= 25 characters, not in any input)."""
    inputs = "".join(p.read_text(errors="replace") for p in FIXTURES.rglob("*.py"))
    lines = []
    for p in (REPO / "reference").glob("*.py"):
        for line in p.read_text().splitlines():
            line = line.strip()
            if len(line) >= 25 and line not in inputs and not line.startswith(("#", '"""')):
                lines.append(line)
    return lines


def make_rubric(path: Path, marker: str) -> None:
    text = (REPO / "rubrics" / "default.toml").read_text()
    text = re.sub(r"(?m)^timeout_s = [0-9.]+", f"timeout_s = {TIMEOUT_S}", text)
    text = re.sub(r"(?m)^wall_s = [0-9.]+", f"wall_s = {WALL_S:.1f}", text)
    text = re.sub(r"(?m)^memory_mb = [0-9]+", f"memory_mb = {MEMORY_MB}", text)
    path.write_text(f"# {marker}\n" + text)


def run_batch(sandbox: str, tmp: Path) -> Batch:
    folder, out = tmp / "submissions", tmp / "out"
    folder.mkdir()
    for f in ADVERSARIAL.glob("*.py"):
        shutil.copy(f, folder / f.name)
    (folder / "html_injection.py").rename(folder / f"{HOSTILE_ID}.py")
    markers = []
    for name in HONEST:
        marker = f"honest-marker-{uuid.uuid4().hex}"
        markers.append(marker)
        src = (FIXTURES / "correct" / name).read_text()
        (folder / f"honest_{name}").write_text(src + f"\n# {marker}\n_NOTE = '{marker}'\n")
    shutil.copy(FIXTURES / CONTROL, folder / "control_relu_no_mask.py")
    rubric_marker = f"rubric-marker-{uuid.uuid4().hex}"
    markers.append(rubric_marker)
    make_rubric(tmp / "rubric.toml", rubric_marker)

    for path in outside_files():  # left by an earlier, failed run: start clean
        shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
    secret = f"canvas-{uuid.uuid4().hex}"
    env = {**os.environ, "CANVAS_TOKEN": secret, "NNGRADER_TEST_SECRET": secret}
    before_inputs, before_fixtures = digest(folder), digest(ADVERSARIAL)
    if sandbox == "container":
        return in_container(tmp, folder, out, secret, markers, before_inputs, before_fixtures)
    listener = Listener()
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "grader", "grade", str(folder), "--out", str(out),
             "--jobs", "2", "--sandbox", sandbox, "--rubric", str(tmp / "rubric.toml")],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stdout, stderr = proc.communicate(timeout=240)
        elapsed = time.monotonic() - start
        time.sleep(1.5)  # a daemon's marker would be written about a second later
    finally:
        listener.close()
    completed = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    results = {}
    for f in out.glob("*/result.json"):
        data = json.loads(f.read_text())
        validate_result(data)
        results[f.parent.name] = data
    batch = Batch(sandbox, out, completed, results, secret, markers, reference_lines(),
                  list(listener.connections), proc.pid, elapsed, before_inputs, digest(folder),
                  before_fixtures, digest(ADVERSARIAL))
    batch.created_outside = outside_files()
    deadline = time.monotonic() + 3
    while (batch_left := leftovers(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    batch.leftover = batch_left + [f"container {c}" for c in own_containers(proc.pid)]
    print(f"\n[{sandbox}] graded {len(results)} submissions in {elapsed:.1f} s")
    return batch


def in_container(tmp: Path, folder: Path, out: Path, secret: str, markers: list[str],
                 before_inputs: str, before_fixtures: str) -> Batch:
    """The same batch graded inside `docker run` with Docker's defaults (root, no
    CAP_SYS_ADMIN), nngrader installed there from a wheel; the victim's view comes from
    the driver's report (tests/docker_grading_driver.py)."""
    from docker_grading import grade_in_container
    report_dir = tmp / "report"
    (report_dir / "wheel").mkdir(parents=True)
    out.mkdir()
    start = time.monotonic()
    proc = grade_in_container(folder, out, report_dir, tmp / "rubric.toml",
                              {"CANVAS_TOKEN": secret, "NNGRADER_TEST_SECRET": secret})
    elapsed = time.monotonic() - start
    assert proc.returncode == 0 and (report_dir / "report.json").exists(), proc.stderr[-3000:]
    report = json.loads((report_dir / "report.json").read_text())
    graded = subprocess.CompletedProcess(proc.args, report["returncode"], report["stdout"],
                                         report["stderr"])
    results = {}
    for f in out.glob("*/result.json"):
        data = json.loads(f.read_text())
        validate_result(data)
        results[f.parent.name] = data
    batch = Batch("container", out, graded, results, secret, markers, reference_lines(),
                  report["connections"], None, report["elapsed"], before_inputs,
                  digest(folder), before_fixtures, digest(ADVERSARIAL),
                  created_outside=report["outside"], leftover=report["leftover"],
                  installed_before=report["before"], installed_after=report["after"])
    print(f"\n[container in docker] graded {len(results)} submissions in "
          f"{report['elapsed']:.1f} s ({elapsed:.1f} s with the container)")
    return batch


def docker_unavailable() -> str:
    from grader.sandbox import SandboxUnavailable
    try:
        from grader.sandbox.docker import connect
        connect()
    except SandboxUnavailable as e:
        return str(e)
    return ""


@pytest.fixture(scope="module", params=["auto", "docker", "container"])
def batch(request, tmp_path_factory) -> Batch:
    if request.param == "auto":
        from grader.sandbox import open_sandbox
        if not open_sandbox("auto").isolated:  # tamper.py would rewrite this checkout
            pytest.fail("this host isolates nothing: the adversarial batch is not run here")
    if request.param in ("docker", "container"):
        why = docker_unavailable()
        if why:
            print(f"\nskipping the Docker batch: {why}")
            pytest.skip(f"Docker backend unavailable: {why}")
    return run_batch(request.param, tmp_path_factory.mktemp(f"adv-{request.param}"))


def all_output_text(out: Path, with_pair_pages: bool = True) -> str:
    skip = set() if with_pair_pages else set(pair_pages(out))
    return "\n".join(p.read_text(errors="replace") for p in out.rglob("*")
                     if p.is_file() and p not in skip)


def pair_pages(out: Path) -> list[Path]:
    """The side-by-side pages `grade` writes for flagged pairs (OUT/similarity/A__B.html)."""
    return sorted(p for p in (out / "similarity").glob("*__*.html") if p.is_file())


def check(result: dict, cid: str) -> dict:
    return next(c for c in result["checks"] if c["id"] == cid)


def statuses(result: dict) -> dict:
    return {c["id"]: c["status"] for c in result["checks"]}


# ---------------------------------------------------------------- the batch itself

def test_batch_completes_with_a_result_per_submission(batch):
    assert batch.proc.returncode == 0, batch.proc.stderr[-2000:]
    expected = {p.stem for p in ADVERSARIAL.glob("*.py")} - {"html_injection"}
    expected |= {HOSTILE_ID, "control_relu_no_mask"} | {f"honest_{Path(n).stem}" for n in HONEST}
    assert set(batch.results) == expected
    assert batch.elapsed < 120, f"the batch took {batch.elapsed:.0f} s"


def all_they_earn(r: dict) -> bool:
    """Every check passes, except loss.stable: these bases (classic_template and friends)
    use a plain 1/(1+exp(-z)), which overflows at ±1000 (manifest: stable = false)."""
    lost = {k for k, v in statuses(r).items() if v != "pass"}
    stable = next(c for c in r["checks"] if c["id"] == "loss.stable")
    return lost <= {"loss.stable"} and r["score"] == r["max_score"] - (stable["max_score"] if lost else 0)


def test_honest_submissions_keep_full_marks(batch):
    for name in HONEST:
        r = batch.results[f"honest_{Path(name).stem}"]
        assert all_they_earn(r), (name, [c for c in r["checks"] if c["status"] != "pass"])


def test_contained_attacks_keep_the_marks_their_layers_earn(batch):
    """Attacks aimed at the machine cost nothing once contained: each of these has correct
    layers, so a wasted probe here would mean the attack reached the grading."""
    for sid in FULL_MARKS:
        r = batch.results[sid]
        bad = {k: v for k, v in statuses(r).items() if v != "pass"}
        assert all_they_earn(r), (sid, bad, r["meta"]["sandbox"])
    for sid in CPU_BURNERS:
        r = batch.results[sid]
        assert {statuses(r)[c] for c in LAYER_CHECKS} == {"pass"}, (sid, statuses(r))


# ---------------------------------------------------------------- nothing gets out

def test_no_connection_reached_the_hosts_loopback(batch):
    assert batch.connections == []


def test_no_secret_submission_rubric_or_reference_text_in_the_output(batch):
    text = all_output_text(batch.out, with_pair_pages=False)
    assert batch.secret not in text
    assert LEAK_TOKEN not in text
    for marker in batch.markers:
        assert marker not in text, marker
    assert batch.reference_lines, "no reference lines to look for"
    for line in batch.reference_lines:
        assert line not in text, line
    # The instructor's side-by-side pages of similar pairs show the two submissions' own
    # code (escaped): an honest submission's marker may be on its own pages, nowhere else.
    owners = dict(zip(batch.markers, [f"honest_{Path(h).stem}" for h in HONEST]))
    for page in pair_pages(batch.out):
        html = page.read_text(errors="replace")
        assert batch.secret not in html and LEAK_TOKEN not in html, page.name
        assert "<script" not in html and "<img src=" not in html, page.name
        for marker in batch.markers:
            assert marker not in html or owners.get(marker, "\0") in page.name, (page.name, marker)
        for line in batch.reference_lines:
            assert line not in html, (page.name, line)


def test_no_file_created_or_changed_outside_the_output(batch):
    assert batch.created_outside == []
    assert batch.input_digest_after == batch.input_digest_before
    assert batch.fixtures_digest_after == batch.fixtures_digest_before
    # OUT holds exactly what the grader writes: no forged results.json anywhere in it
    extra = []
    for p in batch.out.rglob("*"):
        rel = p.relative_to(batch.out)
        if p.is_file() and not (str(rel) in ("summary.csv", "index.html", "similarity.csv") or (
                len(rel.parts) == 2 and rel.parts[1] in ("result.json", "feedback.md", "feedback.html"))
                or p in pair_pages(batch.out)):
            extra.append(str(rel))
    assert extra == []


def test_no_process_of_the_batch_is_left(batch):
    assert batch.leftover == []


def test_the_grader_and_the_test_survived(batch):
    # the grader exited by itself with 0 after writing everything; we are still here
    assert batch.proc.returncode == 0
    assert (batch.out / "summary.csv").exists() and (batch.out / "index.html").exists()
    os.kill(os.getpid(), 0)


# ---------------------------------------------------------------- nothing is forged

def test_forged_stdout_results_and_monkeypatching_score_no_more_than_the_bug_earns(batch):
    control = batch.results["control_relu_no_mask"]
    assert control["score"] < control["max_score"]
    for sid in ("forged_stdout", "result_files", "monkeypatch"):
        r = batch.results[sid]
        assert r["score"] <= control["score"], (sid, r["score"], control["score"])
        assert check(r, "relu.backward")["status"] != "pass", sid
    assert statuses(batch.results["forged_stdout"]) == statuses(control)
    forged = batch.results["result_files"]
    for cid in ("train.xor", "train.overfit20"):  # its made-up training curves were not read
        assert check(forged, cid)["status"] != "pass"


def test_the_pickle_payload_never_ran(batch):
    assert not os.path.exists("/tmp/nngrader_adv_pickle_ran")
    r = batch.results["pickle_payload"]
    assert all_they_earn(r)


def test_html_and_formula_injection_is_neutralised(batch):
    r = batch.results[HOSTILE_ID]
    assert any("<script>alert(1)</script>" in c["message"] for c in r["checks"]), \
        "the injection text should reach the messages (as data)"
    page = (batch.out / HOSTILE_ID / "feedback.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    index = (batch.out / "index.html").read_text()
    for html in (page, index):
        assert "<script>alert" not in html
        assert "<img src=" not in html
    assert "&lt;img src=y onerror=alert(3)&gt;" in index
    rows = list(csv.reader((batch.out / "summary.csv").read_text().splitlines()))
    for row in rows[1:]:
        for cell in row:
            assert cell[:1] not in ("=", "+", "-", "@"), row
    assert [row[0] for row in rows if "HYPERLINK" in row[0]] == ["'" + HOSTILE_ID]


# ---------------------------------------------------------------- how runs ended

def test_memory_and_time_kills_are_reported_as_such(batch):
    bomb = batch.results["memory_bomb"]
    assert any(f"ran out of memory (limit {MEMORY_MB} MB)" in c["message"] for c in bomb["checks"])
    assert f"ran out of memory (limit {MEMORY_MB} MB)" in check(bomb, "linear.forward")["message"]
    loop = check(batch.results["infinite_loop"], "relu.backward")
    assert loop["status"] == "timeout"
    assert f"did not finish within {TIMEOUT_S} s" in loop["message"]


PROTECTIONS = {
    "auto": ("namespaces", {"no-network", "own-uid", "read-only-root", "pid1-reaper",
                            "scrubbed-env", "wall-clock-kill", "output-cap"}),
    "docker": ("docker", {"network-none", "own-uid", "read-only-root", "cap-drop-all",
                          "no-new-privileges", "scrubbed-env", "wall-clock-kill", "output-cap"}),
    "container": ("container", {"no-network", "own-uid", "chroot:interpreter+stdlib+numpy",
                                "no-new-privs", "kill-by-uid", "scrubbed-env",
                                "wall-clock-kill", "output-cap"}),
}


def test_every_result_lists_the_active_protections(batch):
    tier, want = PROTECTIONS[batch.sandbox]
    for sid, r in batch.results.items():
        sb = r["meta"]["sandbox"]
        assert sb["isolated"] is True, sid
        assert sb["tier"] == tier, sid
        assert want <= set(sb["protections"]), (sid, sb["protections"])
        if tier == "container":
            assert any(p.startswith("seccomp:") for p in sb["protections"]), sb["protections"]


def test_the_installed_grader_and_interpreter_are_unchanged(batch):
    """In the container the grader is a writable, root-owned installation, as on
    Gradescope: the tamper fixture must not have changed a byte of it."""
    if batch.sandbox != "container":
        pytest.skip("the grader's installation is hashed inside the container batch only")
    assert batch.installed_before and batch.installed_after == batch.installed_before


def test_kills_and_crashes_cost_only_their_own_checks(batch):
    killed = batch.results["kill_parent"]
    assert killed["meta"]["sandbox"]["status"] == "signal"
    seg = check(batch.results["segfault"], "relu.backward")
    assert "segmentation fault" in seg["message"]
    loud = batch.results["huge_output"]
    assert len(loud["meta"]["output"]) <= 4000
