"""Per-run cost of each sandbox tier over the plain tier, with a harness that imports numpy.

    python bench/sandbox_overhead.py [RUNS]

Runs the tiers interleaved (plain, embedded, docker, plain, ...) so drift and noise hit
them alike, and prints the median and spread of the wall time per run in milliseconds.
"""
from __future__ import annotations

import statistics
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
    try:
        tiers["docker"] = open_sandbox("docker")
    except SandboxUnavailable as exc:
        print(f"docker: skipped ({exc})")
    times: dict[str, list[float]] = {name: [] for name in tiers}
    with tempfile.TemporaryDirectory() as tmp:
        box = Path(tmp)
        (box / "harness.py").write_text(HARNESS)
        (box / "plan.json").write_text("{}")
        (box / "src").mkdir()
        for sb in tiers.values():  # warm-up: page cache, image, probe
            sb.run(box, Limits())
        for _ in range(runs):
            for name, sb in tiers.items():
                start = time.perf_counter()
                res = sb.run(box, Limits())
                times[name].append((time.perf_counter() - start) * 1000)
                assert res.status == "ok", (name, res)
    base = statistics.median(times["plain"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:7s} tier={tiers[name].tier:18s} median {med:6.1f} ms  "
              f"(p10 {sorted(ts)[len(ts) // 10]:6.1f}, max {max(ts):6.1f})  "
              f"overhead vs plain {med - base:+6.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
