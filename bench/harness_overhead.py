"""Per-submission cost of each sandbox with the real harness on a correct submission.

    python bench/harness_overhead.py [RUNS] [SUBMISSION]

Builds the box the pipeline builds (grader/harness.py, plan.json with every probe of the
default rubric, the submission's definitions), then runs it through plain, the namespace
tier (auto), the container tier and Docker, interleaved so drift and noise hit them alike. Prints the median
wall time per submission and the extra cost over plain, which runs the same harness with
rlimits only. Every run must end "ok" with results for every probe.
"""
from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader import load, observe, plan
from grader.pipeline import needed_probes
from grader.roles import match_roles
from grader.rubric import load_rubric
from grader.sandbox import SandboxUnavailable, open_sandbox

REPO = Path(__file__).resolve().parent.parent
DEFAULT = REPO / "tests" / "fixtures" / "correct" / "classic_template.py"


def make_box(box: Path, path: Path, rubric) -> int:
    sub = load.load(path, path.stem)
    roles = match_roles(list(sub.classes), rubric.roles)
    probes = plan.probes(rubric.seed, needed_probes(rubric, rubric.enabled()))
    plan.write_box(box, sub, roles, probes, rubric.limits, rubric.seed)
    return len(probes)


def main(runs: int = 10, path: Path = DEFAULT) -> None:
    rubric = load_rubric(None)
    tiers = {"plain": open_sandbox("plain"), "auto": open_sandbox("auto")}
    for extra in ("container", "docker"):
        try:
            tiers[extra] = open_sandbox(extra)
        except SandboxUnavailable as exc:
            print(f"{extra}: skipped ({exc})")
    times: dict[str, list[float]] = {name: [] for name in tiers}
    numpy_ms: list[float] = []  # `python -c "import numpy"`, timed in the same rounds
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template"
        template.mkdir()
        n = make_box(template, path, rubric)
        for i in range(runs + 1):  # the first round warms caches, the image and the probe
            if i:
                start = time.perf_counter()
                subprocess.run([sys.executable, "-I", "-c", "import numpy"], check=True)
                numpy_ms.append((time.perf_counter() - start) * 1000)
            for name, sb in tiers.items():
                box = Path(tmp) / f"{name}-{i}"
                shutil.copytree(template, box)
                start = time.perf_counter()
                res = sb.run(box, rubric.limits)
                wall = (time.perf_counter() - start) * 1000
                got = observe.read_results(box) or {}
                assert res.status == "ok" and len(got) == n, (name, res.status, res.message, len(got))
                if i:
                    times[name].append(wall)
    base = statistics.median(times["plain"])
    imp = statistics.median(numpy_ms)
    print(f"{path.name}: {n} probes, {runs} runs per tier; python -c 'import numpy': {imp:.0f} ms")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:9s} tier={tiers[name].tier:11s} median {med:6.0f} ms  "
              f"(min {min(ts):6.0f}, max {max(ts):6.0f})  overhead vs plain {med - base:+5.0f} ms"
              f" = {(med - base) / imp:+5.2f} x the numpy import")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10,
         Path(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT)
