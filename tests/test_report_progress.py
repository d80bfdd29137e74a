import io
import os
import pty
import select
import subprocess
import sys

from builders import alice, broken, mallory
from grader.report.colour import paint, supports_colour
from grader.report.progress import Progress, outcome
from grader.result import CheckResult, Result


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_outcomes():
    ok = Result("ok", (CheckResult("linear.forward", "pass", 3, 3),))
    assert [outcome(r) for r in (ok, alice(), broken())] == ["passed", "failed", "errored"]


def test_plain_lines_when_not_a_terminal():
    buf = io.StringIO()
    with Progress(3, stream=buf) as p:
        for r in (alice(), mallory(), broken()):
            p.update(r)
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("[1/3] alice_classic: failed 16/22, ETA")
    assert lines[2] == "[3/3] carol_syntax: errored"
    assert lines[-1].startswith("Graded 3 of 3 in") and "0 passed, 2 failed, 1 errored" in lines[-1]
    assert "\x1b" not in buf.getvalue()


def test_bar_on_a_terminal_counts_and_eta():
    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as tty:
        p = Progress(2, stream=tty)
        assert p._bar is not None
        p.update(alice())
        p.update(broken())
        p.close()
    chunks = []
    while select.select([master], [], [], 0.2)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end is closed: everything was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    out = b"".join(chunks).decode(errors="replace")
    assert "1 failed" in out and "1 errored" in out and "Graded 2 of 2" in out


def test_importing_does_not_load_rich():
    code = "import sys, grader.report.progress, grader.report.colour; print('rich' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_colour_rules():
    assert supports_colour(Tty(), env={}) is True
    assert supports_colour(io.StringIO(), env={}) is False
    assert supports_colour(Tty(), env={"NO_COLOR": "1"}) is False
    assert supports_colour(Tty(), env={"TERM": "dumb"}) is False
    assert supports_colour(io.StringIO(), env={"FORCE_COLOR": "1"}) is True
    assert paint("ok", "pass", True) == "\x1b[32mok\x1b[0m" and paint("ok", "pass", False) == "ok"
