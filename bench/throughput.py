"""Batch throughput, self-check latency and peak memory of nngrader, end to end.

    python bench/throughput.py [--sizes 10,100] [--big] [--jobs 2] [--sandbox auto]
                               [--check-runs 7] [--json FILE] [--keep DIR]

For each size N it builds N distinct submissions (the bundled correct and buggy fixtures,
cycled, each made distinct by a comment naming its copy) in a temporary folder, runs
`nngrader grade DIR --out OUT --jobs J` as a fresh process with the full default rubric
and the default sandbox, and reports the wall time per submission (start-up, dashboard and
summary included). `--big` adds N = 1000. It also times `nngrader check FILE` on a correct
submission (wall, interpreter start-up included, median of --check-runs), and reports the
peak resident memory of the grader process (VmHWM, sampled while it runs) and of one
sandboxed submission (meta.sandbox.max_rss_mb of the graded results).

Every figure is also given as a ratio to `python -c "import numpy"` timed in the same run
(machines differ 2-3x; ratios compare): for a batch, the mean of the imports timed right
before and right after it; for `check`, the median of per-run ratios, each check paired
with an import just before it (a machine's speed drifts by tens of percent within an hour). Targets (issue 15): a batch at --jobs 2 costs at
most 1.0x a numpy import per submission, `check` at most 3x; a sandboxed correct
submission stays under 300 MB. It also splits the box's CPU time per submission into the
probes themselves (meta.probes, summed) and the overhead around them.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
TARGETS = {"batch_ratio": 1.0, "check_ratio": 3.0, "sandbox_rss_mb": 300.0}


def numpy_import_s(runs: int = 5) -> float:
    """Median wall time of `python -c "import numpy"` (the unit of every ratio)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import numpy"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def box_split(out: Path, kinds: dict[str, str]) -> dict:
    """Per submission: the box's CPU seconds, the probes' own seconds, the rest."""
    cpu, probes = [], []
    for sid in kinds:
        meta = json.loads((out / sid / "result.json").read_text())["meta"]
        cpu.append((meta.get("sandbox") or {}).get("cpu_s") or 0.0)
        probes.append(sum(p.get("elapsed_s", 0.0) for p in (meta.get("probes") or {}).values()))
    med = statistics.median
    return {"box_cpu_s": round(med(cpu), 4), "probes_s": round(med(probes), 4),
            "overhead_s": round(med([c - p for c, p in zip(cpu, probes)]), 4)}


def nngrader() -> list[str]:
    exe = Path(sys.executable).with_name("nngrader")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "grader"]


def fixture_files() -> tuple[list[Path], list[Path]]:
    correct = sorted((FIXTURES / "correct").glob("*.py"))
    buggy = sorted((FIXTURES / "buggy").glob("*.py"))
    if not correct or not buggy:
        sys.exit(f"bench: no fixtures under {FIXTURES}")
    return correct, buggy


def build_batch(n: int, folder: Path) -> dict[str, str]:
    """n distinct submissions, correct and buggy interleaved; returns id -> 'correct'/'buggy'."""
    correct, buggy = fixture_files()
    pool = [(p, "correct") for p in correct] + [(p, "buggy") for p in buggy]
    folder.mkdir(parents=True, exist_ok=True)
    kinds = {}
    for k in range(n):
        src, kind = pool[k % len(pool)]
        sid = f"s{k:05d}_{src.stem}"
        text = src.read_text(encoding="utf-8")
        (folder / f"{sid}.py").write_text(f"# bench copy {k} of {src.name}\n{text}", encoding="utf-8")
        kinds[sid] = kind
    return kinds


def peak_rss_mb(pid: int) -> float:
    """VmHWM (the process's own high-water mark of resident memory) in MB, 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_grade(folder: Path, out: Path, jobs: int, sandbox: str, extra: list[str]) -> dict:
    """One `nngrader grade` as a fresh process: wall time and its own peak RSS."""
    argv = nngrader() + ["grade", str(folder), "--out", str(out), "--jobs", str(jobs),
                         "--sandbox", sandbox, *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, peak_rss_mb(proc.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        sys.exit(f"bench: nngrader grade exited {proc.returncode}:\n{err[-2000:]}")
    return {"wall_s": wall, "grader_rss_mb": peak}


def sandbox_memory(out: Path, kinds: dict[str, str]) -> dict:
    rss = {"correct": [], "buggy": []}
    for sid, kind in kinds.items():
        meta = json.loads((out / sid / "result.json").read_text())["meta"]
        mb = (meta.get("sandbox") or {}).get("max_rss_mb")
        if mb is not None:
            rss[kind].append(mb)
    return {"sandbox_rss_mb_correct_max": max(rss["correct"], default=0.0),
            "sandbox_rss_mb_correct_median": statistics.median(rss["correct"]) if rss["correct"] else 0.0,
            "sandbox_rss_mb_max": max(rss["correct"] + rss["buggy"], default=0.0)}


def check_latency(runs: int, sandbox: str) -> tuple[list[float], list[float]]:
    """`nngrader check` wall times, each run paired with a numpy import right before it:
    (check times, their ratios to the paired import). The machine's speed drifts (by ~30%
    within an hour here): a ratio taken pair by pair is steadier than either median."""
    target = sorted((FIXTURES / "correct").glob("*.py"))[0]
    argv = nngrader() + ["check", str(target), "--sandbox", sandbox]
    times, ratios = [], []
    for k in range(runs + 1):  # the first pair warms the page cache and is dropped
        unit = numpy_import_s(runs=1)
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                       env={**os.environ, "NO_COLOR": "1"})
        if k:
            times.append(time.perf_counter() - start)
            ratios.append(times[-1] / unit)
    return times, ratios


def compile_bytecode() -> None:
    """The grader's bytecode, as an installed wheel has it: a checkout run with
    PYTHONDONTWRITEBYTECODE=1 (this workplace's shells set it) would otherwise compile
    every changed module at every start, ~0.1 s of each `check` measured."""
    import compileall
    compileall.compile_dir(str(ROOT / "grader"), quiet=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,100", help="comma-separated batch sizes (default 10,100)")
    ap.add_argument("--big", action="store_true", help="also grade 1000 submissions (a few minutes)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--sandbox", default="auto")
    ap.add_argument("--check-runs", type=int, default=7)
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--keep", type=Path, help="keep the batches and outputs under this folder")
    ap.add_argument("--grade-arg", action="append", default=[],
                    help="extra argument for nngrader grade (repeatable)")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.big and 1000 not in sizes:
        sizes.append(1000)

    compile_bytecode()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="nngrader-bench-"))
    report = {"machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
              "jobs": args.jobs, "sandbox": args.sandbox, "sizes": {}}
    try:
        for n in sizes:
            folder, out = work / f"batch{n}", work / f"out{n}"
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
            kinds = build_batch(n, folder)
            before = numpy_import_s()
            run = run_grade(folder, out, args.jobs, args.sandbox, args.grade_arg)
            unit = statistics.mean([before, numpy_import_s()])  # around the batch: it drifts
            row = {"n": n, "wall_s": round(run["wall_s"], 2),
                   "s_per_submission": round(run["wall_s"] / n, 4),
                   "numpy_import_s": round(unit, 4),
                   "ratio": round(run["wall_s"] / n / unit, 2),
                   "grader_rss_mb": round(run["grader_rss_mb"], 1),
                   **box_split(out, kinds),
                   **{k: round(v, 1) for k, v in sandbox_memory(out, kinds).items()}}
            report["sizes"][str(n)] = row
            print(f"graded {n:5d}: {row['wall_s']:7.2f} s, {row['s_per_submission']:.3f} s/submission",
                  file=sys.stderr)
        times, ratios = check_latency(args.check_runs, args.sandbox)
        report["check_s"] = {"median": round(statistics.median(times), 3),
                             "min": round(min(times), 3), "max": round(max(times), 3),
                             "runs": len(times),
                             "numpy_import_s": round(statistics.median(times) / statistics.median(ratios), 4),
                             "ratio": round(statistics.median(ratios), 2)}
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print_table(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def print_table(report: dict) -> None:
    rows = report["sizes"].values()
    print(f"\nnngrader throughput: --jobs {report['jobs']}, --sandbox {report['sandbox']}, "
          f"{report['machine']['cores']} cores, python {report['machine']['python']}")
    print(f"{'submissions':>11}  {'wall s':>8}  {'s/submission':>12}  {'x numpy':>7}  "
          f"{'box cpu s':>9}  {'probes s':>8}  {'overhead s':>10}  {'grader MB':>9}  {'box MB max':>10}")
    for r in rows:
        print(f"{r['n']:>11}  {r['wall_s']:>8.2f}  {r['s_per_submission']:>12.3f}  {r['ratio']:>7.2f}  "
              f"{r['box_cpu_s']:>9.3f}  {r['probes_s']:>8.3f}  {r['overhead_s']:>10.3f}  "
              f"{r['grader_rss_mb']:>9.1f}  {r['sandbox_rss_mb_max']:>10.1f}")
    c = report["check_s"]
    print(f"nngrader check (correct submission, wall incl. start-up): median {c['median']:.3f} s "
          f"(min {c['min']:.3f}, max {c['max']:.3f}, {c['runs']} runs); median of the ratios to "
          f"a numpy import run just before each: {c['ratio']:.2f}x")
    verdicts = []
    for r in rows:
        verdicts.append(f"batch@{r['n']} {r['ratio']:.2f}x {'<=' if r['ratio'] <= TARGETS['batch_ratio'] else '>'} "
                        f"{TARGETS['batch_ratio']}x")
        box = r["sandbox_rss_mb_correct_max"]
        verdicts.append(f"box {box:.0f} MB {'<' if box < TARGETS['sandbox_rss_mb'] else '>='} "
                        f"{TARGETS['sandbox_rss_mb']:.0f}")
    verdicts.append(f"check {c['ratio']:.2f}x {'<=' if c['ratio'] <= TARGETS['check_ratio'] else '>'} "
                    f"{TARGETS['check_ratio']}x")
    print("targets: " + "; ".join(verdicts))


if __name__ == "__main__":
    sys.exit(main())
