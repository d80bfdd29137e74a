"""The namespace tier as a non-root service would get it (user namespace, no own uid).

Runs a small grader script as uid 65534 through setpriv with Debian's python3 (the pyenv
interpreter under /root is not executable by other uids), boxes under a fresh folder.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PY = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
if os.geteuid() != 0 or not shutil.which("setpriv") or not os.path.exists(PY):
    pytest.skip(f"needs root (to drop to uid 65534), setpriv and {PY}", allow_module_level=True)

SCRIPT = """
import json, socket, sys, tempfile
sys.path[:0] = [ROOT, SITE]
from pathlib import Path
from grader.sandbox import Limits, open_sandbox
sb = open_sandbox("auto")
box = Path(tempfile.mkdtemp())
(box / "plan.json").write_text("{}")
(box / "harness.py").write_text(HARNESS)
res = sb.run(box, Limits(wall_s=5))
print(json.dumps({"tier": sb.tier, "protections": sb.protections, "status": res.status,
                  "seen": json.loads((box / "out" / "r.json").read_text())}))
"""

HARNESS = """
import json, os, socket, sys
sys.path[:0] = sys.argv[2:]
import numpy
seen = {"uid": os.getuid(), "numpy": numpy.__version__}
try:
    socket.create_connection(("127.0.0.1", 22), timeout=1)
    seen["net"] = "connected"
except OSError as exc:
    seen["net"] = type(exc).__name__
for path in (ROOTFILE, "/etc/passwd"):
    try:
        open(path).read()
        seen[path] = "read"
    except OSError:
        seen[path] = None
try:
    open("/usr/evil", "w")
    seen["wrote"] = True
except OSError:
    seen["wrote"] = False
json.dump(seen, open("out/r.json", "w"))
"""


def test_userns_tier_as_non_root():
    site = str(Path(__import__("numpy").__file__).resolve().parent.parent)
    harness = HARNESS.replace("ROOTFILE", repr(str(ROOT / "pyproject.toml")))
    script = (SCRIPT.replace("ROOT, SITE", f"{str(ROOT)!r}, {site!r}")
              .replace("HARNESS)", f"{harness!r})"))
    out = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                          PY, "-I", "-c", script], capture_output=True, text=True, timeout=60)
    if "namespaces-userns" not in out.stdout:
        pytest.skip(f"user namespaces unavailable to uid 65534: {out.stderr[-300:]}")
    got = json.loads(out.stdout.splitlines()[-1])
    assert got["status"] == "ok" and "user-namespace" in got["protections"]
    seen = got["seen"]
    assert seen["uid"] != 0 and seen["net"] != "connected" and seen["wrote"] is False
    assert seen[str(ROOT / "pyproject.toml")] is None and seen["/etc/passwd"] is None
