"""Per-run cost of each sandbox tier over the plain tier, with a harness that imports numpy.

    python bench/sandbox_overhead.py [RUNS]

Runs the tiers interleaved (plain, auto, container, docker, plain, ...) so drift and noise hit
them alike, and prints the median and spread of the wall time per run in milliseconds,
and each overhead as a multiple of `python -c "import numpy"` timed in the same rounds.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.sandbox import Limits, SandboxUnavailable, open_sandbox

HARNESS = """\
import sys, os
sys.path[:0] = sys.argv[2:]
import numpy
os.makedirs("out", exist_ok=True)
open("out/results.json", "w").write("{}")
"""


def main(runs: int = 20) -> None:
    tiers = {"plain": open_sandbox("plain"), "auto": open_sandbox("auto")}
    for extra in ("container", "docker"):
        try:
            tiers[extra] = open_sandbox(extra)
        except SandboxUnavailable as exc:
            print(f"{extra}: skipped ({exc})")
    times: dict[str, list[float]] = {name: [] for name in tiers}
    numpy_ms: list[float] = []  # `python -c "import numpy"`, timed in the same rounds
    with tempfile.TemporaryDirectory() as tmp:
        box = Path(tmp)
        (box / "harness.py").write_text(HARNESS)
        (box / "plan.json").write_text("{}")
        (box / "src").mkdir()
        for sb in tiers.values():  # warm-up: page cache, image, probe
            sb.run(box, Limits())
        for _ in range(runs):
            numpy_ms.append(time_numpy_import())
            for name, sb in tiers.items():
                start = time.perf_counter()
                res = sb.run(box, Limits())
                times[name].append((time.perf_counter() - start) * 1000)
                assert res.status == "ok", (name, res)
    base = statistics.median(times["plain"])
    imp = statistics.median(numpy_ms)
    print(f"python -c 'import numpy': median {imp:6.1f} ms")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:9s} tier={tiers[name].tier:18s} median {med:6.1f} ms  "
              f"(p10 {sorted(ts)[len(ts) // 10]:6.1f}, max {max(ts):6.1f})  "
              f"overhead vs plain {med - base:+6.1f} ms = {(med - base) / imp:+5.2f} x the numpy import")


def time_numpy_import() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-I", "-c", "import numpy"], check=True)
    return (time.perf_counter() - start) * 1000


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
