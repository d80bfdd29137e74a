"""Latency of the student's self-check: grader.check() against `nngrader check`.

    .venv/bin/python bench/selfcheck.py [--runs 7] [--json FILE]

Times, in this one run and on the same correct submission (median of --runs, min and max):

- `python -c "import numpy"`: the floor of any Python tool here, the unit of the ratios;
- `nngrader check FILE`: the CLI, interpreter start-up included;
- `python -c "import grader; grader.check(FILE)"`: the API from a fresh interpreter, so
  comparable with the CLI;
- grader.check(FILE) inside one process, the first call (imports, sandbox probe and worker
  start) and the calls after it (what a student re-running a notebook cell waits for);
- the same with only="linear";
- grader.check() on the code an IPython shell has run (the submission typed in as cells),
  the first and later calls: the notebook case, history assembly included.

Each figure is also given as a multiple of the numpy import timed in the same run, so
numbers from machines of different speed can be compared.
"""
from __future__ import annotations

import argparse
import ast
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "tests" / "fixtures" / "correct" / "classic_template.py"
BIN = Path(sys.executable).parent


def wall(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=REPO)
        times.append(time.perf_counter() - start)
    return times


def in_process(code: str, runs: int) -> dict[str, list[float]]:
    """Run `code` (which prints a JSON dict of lists of seconds) in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", code, str(TARGET), str(runs)], capture_output=True,
                         text=True, check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


CALLS = """
import json, sys, time
path, runs = sys.argv[1], int(sys.argv[2])
t = time.perf_counter(); import grader; r = grader.check(path); first = [time.perf_counter() - t]
assert r.error is None and r.max_score > 0
warm, only = [], []
for _ in range(runs):
    t = time.perf_counter(); grader.check(path); warm.append(time.perf_counter() - t)
for _ in range(runs):
    t = time.perf_counter(); grader.check(path, only="linear"); only.append(time.perf_counter() - t)
print(json.dumps({"api_first_call": first, "api_warm": warm, "api_only_linear_warm": only}))
"""

KERNEL = """
import ast, json, sys, time
from IPython.core.interactiveshell import InteractiveShell
path, runs = sys.argv[1], int(sys.argv[2])
source = open(path).read()
shell = InteractiveShell.instance()
lines = source.splitlines()
for node in ast.parse(source).body:          # the submission typed in, one cell per statement
    if isinstance(node, ast.If):
        continue                             # not the training script: nothing to load here
    cell = "\\n".join(lines[node.lineno - 1:node.end_lineno])
    res = shell.run_cell(cell, store_history=True)
    assert res.success, cell
shell.run_cell("!true\\nfiles = !ls", store_history=True)
t = time.perf_counter(); import grader; r = grader.check(); first = [time.perf_counter() - t]
assert r.error is None and r.max_score > 0, r
warm = []
for _ in range(runs):
    t = time.perf_counter(); grader.check(); warm.append(time.perf_counter() - t)
print(json.dumps({"kernel_first_call": first, "kernel_warm": warm}))
"""


def summary(times: list[float], unit: float) -> dict:
    med = statistics.median(times)
    return {"median_s": round(med, 3), "min_s": round(min(times), 3), "max_s": round(max(times), 3),
            "runs": len(times), "x_numpy_import": round(med / unit, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    raw = {
        "numpy_import": wall([sys.executable, "-c", "import numpy"], args.runs),
        "cli_check": wall([str(BIN / "nngrader"), "check", str(TARGET)], args.runs),
        "api_fresh_interpreter": wall([sys.executable, "-c", "import sys, grader; grader.check(sys.argv[1])",
                                       str(TARGET)], args.runs),
    }
    raw.update(in_process(CALLS, args.runs))
    raw.update(in_process(KERNEL, args.runs))
    unit = statistics.median(raw["numpy_import"])
    report = {name: summary(times, unit) for name, times in raw.items()}
    print(f"{'what':34} {'median s':>9} {'min':>7} {'max':>7} {'x numpy import':>15}")
    for name, s in report.items():
        print(f"{name:34} {s['median_s']:9.3f} {s['min_s']:7.3f} {s['max_s']:7.3f} {s['x_numpy_import']:15.1f}")
    cli, warm = report["cli_check"]["median_s"], report["kernel_warm"]["median_s"]
    print(f"\ngrader.check() in a notebook (warm) takes {warm / cli:.2f}x the time of `nngrader check`")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
