"""The plain sandbox tier: wall-clock kill, output cap, scrubbed environment, exit classes.

Each test puts its own tiny `harness.py` into a box, since the backend only promises to run
`python harness.py plan.json` there.
"""
from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from grader.sandbox import Limits, PlainSandbox, open_sandbox, SandboxUnavailable
from grader.sandbox.base import OutputCap


def box_with(tmp_path: Path, script: str) -> Path:
    box = tmp_path / "box"
    box.mkdir()
    (box / "harness.py").write_text(textwrap.dedent(script))
    (box / "plan.json").write_text("{}")
    return box


def test_env_scrubbed(tmp_path, monkeypatch):
    monkeypatch.setenv("CANVAS_TOKEN", "s3cr3t-canvas-token")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-aws")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "evil"))
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "8")  # the box's own value, not the host's
    box = box_with(tmp_path, """\
        import json, os, sys
        json.dump({"env": dict(os.environ), "path": sys.path}, open("env.json", "w"))
        """)
    out = PlainSandbox().run(box, Limits(wall_s=20))
    assert out.status == "ok", out
    seen = json.loads((box / "env.json").read_text())
    env = seen["env"]
    assert "CANVAS_TOKEN" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert not any("s3cr3t" in v for v in env.values())
    assert "PYTHONPATH" not in env and not any("evil" in p for p in seen["path"])
    assert env["HOME"] == str(box) and env["OPENBLAS_NUM_THREADS"] == "1"


def test_wall_clock_timeout(tmp_path):
    box = box_with(tmp_path, "import time\nwhile True:\n    time.sleep(0.05)\n")
    start = time.monotonic()
    out = PlainSandbox().run(box, Limits(wall_s=1.0))
    assert out.status == "timeout" and "wall-clock" in out.message
    assert time.monotonic() - start < 10


def test_timeout_even_when_pipes_are_closed(tmp_path):
    box = box_with(tmp_path, "import os, time\nos.close(1)\nos.close(2)\nwhile True:\n    time.sleep(0.05)\n")
    start = time.monotonic()
    out = PlainSandbox().run(box, Limits(wall_s=1.0))
    assert out.status == "timeout"
    assert time.monotonic() - start < 10


def test_grandchild_left_behind_is_killed(tmp_path):
    box = box_with(tmp_path, """\
        import os, subprocess, sys, time
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        open("grandchild.pid", "w").write(str(p.pid))
        """)
    out = PlainSandbox().run(box, Limits(wall_s=20))
    assert out.status == "ok"
    pid = int((box / "grandchild.pid").read_text())
    for _ in range(100):  # the kill is asynchronous: give the kernel a moment
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        # a zombie still answers kill(0): check its state
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"grandchild {pid} still running after the harness ended")


def test_output_capped_head_and_tail(tmp_path):
    box = box_with(tmp_path, """\
        import sys
        sys.stdout.write("HEAD" + "x" * 3_000_000 + "TAIL")
        sys.stderr.write("E" * 500_000)
        """)
    out = PlainSandbox().run(box, Limits(wall_s=20, output_kb=4))
    assert out.status == "ok"
    assert out.stdout.startswith("HEAD") and out.stdout.endswith("TAIL")
    assert len(out.stdout) < 4 * 1024 + 200 and "cut" in out.stdout
    assert len(out.stderr) < 4 * 1024 + 200


def test_nonzero_exit_is_error(tmp_path):
    out = PlainSandbox().run(box_with(tmp_path, "raise SystemExit(3)\n"), Limits(wall_s=20))
    assert out.status == "error" and out.exit_code == 3 and out.signal is None


def test_signal_is_reported(tmp_path):
    box = box_with(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    out = PlainSandbox().run(box, Limits(wall_s=20))
    assert out.status == "signal" and out.signal == signal.SIGSEGV and "SIGSEGV" in out.message


def test_outcome_is_isolate_shaped(tmp_path):
    out = PlainSandbox().run(box_with(tmp_path, "print('hi')\n"), Limits(wall_s=20))
    d = out.to_json()
    assert d["status"] == "ok" and d["exit_code"] == 0 and d["tier"] == "plain"
    assert {"wall_s", "cpu_s", "max_rss_mb", "protections", "message"} <= set(d)
    assert out.stdout == "hi\n"
    assert PlainSandbox.isolated is False and "scrubbed-env" in PlainSandbox.protections


def test_runs_with_isolated_interpreter_flags(tmp_path):
    box = box_with(tmp_path, "import sys, json\njson.dump([sys.flags.isolated, sys.flags.no_site, sys.argv[1]], open('f.json', 'w'))\n")
    PlainSandbox().run(box, Limits(wall_s=20))
    assert json.loads((box / "f.json").read_text()) == [1, 1, "plan.json"]


def test_open_sandbox_names():
    assert isinstance(open_sandbox("plain"), PlainSandbox)
    assert open_sandbox("auto").tier in ("plain", "namespaces", "namespaces-userns")
    for name in ("nonsense",):
        with pytest.raises(SandboxUnavailable):
            open_sandbox(name)


def test_output_cap_unit():
    cap = OutputCap(10)
    for chunk in (b"abc", b"defgh", b"ijklmnop", b"qrstuvwxyz"):
        cap.feed(chunk)
    text = cap.text()
    assert text.startswith("abcde") and text.endswith("vwxyz") and "16 bytes" in text
