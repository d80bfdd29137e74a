"""Incremental and resumable batches: the content-hash cache, --force, and a grader killed
mid-batch (SIGKILL, as a power cut would) or interrupted (SIGINT), then run again.

Nothing here times anything: "fast" is the benchmark's business (bench/throughput.py);
these tests check what is regraded and that no finished result is lost or changed.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, run_cli

FIXTURES = REPO / "tests" / "fixtures"
TIMING = {"elapsed_s", "probes"}
# how the run went, not what it found: "lanes" is how many probes ran side by side (a
# resumed batch at --jobs 1 runs them in lanes, the reference at --jobs 2 one by one)
SANDBOX_TIMING = {"wall_s", "cpu_s", "max_rss_mb", "lanes"}


def make_batch(folder: Path, n: int) -> list[str]:
    """n distinct submissions (correct and buggy fixtures, each with its own comment)."""
    pool = sorted((FIXTURES / "correct").glob("*.py"))[:4] + sorted((FIXTURES / "buggy").glob("*.py"))[:4]
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for k in range(n):
        src = pool[k % len(pool)]
        sid = f"s{k:02d}_{src.stem}"
        (folder / f"{sid}.py").write_text(f"# copy {k}\n" + src.read_text(encoding="utf-8"),
                                          encoding="utf-8")
        ids.append(sid)
    return ids


def results(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(out.glob("*/result.json"))}


def untimed(result: dict) -> dict:
    """A result.json without its measured times, which differ from run to run: the run's
    and each probe's durations, and the vectorised checks' timings (their verdicts and
    messages carry no measured numbers, so those are still compared)."""
    meta = {k: v for k, v in result["meta"].items() if k not in TIMING}
    if isinstance(meta.get("sandbox"), dict):
        meta["sandbox"] = {k: v for k, v in meta["sandbox"].items() if k not in SANDBOX_TIMING}
    checks = [{**c, "details": {}} if c["id"].startswith("vectorised.") else c
              for c in result["checks"]]
    return {**result, "meta": meta, "checks": checks}


def stamps(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/result.json")}


def grade(folder: Path, out: Path, *extra) -> subprocess.CompletedProcess:
    proc = run_cli("grade", folder, "--out", out, "--jobs", "2", *extra)
    assert proc.returncode == 0, proc.stderr
    return proc


def summary_ids(out: Path) -> list[str]:
    lines = (out / "summary.csv").read_text().splitlines()[1:]
    return sorted(line.split(",")[0] for line in lines)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A batch of 6 graded once, uninterrupted: what every later run must reproduce."""
    root = tmp_path_factory.mktemp("resume")
    folder, out = root / "subs", root / "reference"
    ids = make_batch(folder, 6)
    grade(folder, out)
    return folder, ids, results(out)


def copy_folder(folder: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for p in folder.iterdir():
        (target / p.name).write_bytes(p.read_bytes())
    return target


def test_results_carry_a_cache_key(reference):
    _, ids, ref = reference
    assert sorted(ref) == ids
    keys = {r["meta"]["cache_key"] for r in ref.values()}
    assert len(keys) == len(ids) and all(k.startswith("sha256:") for k in keys)


def test_second_run_grades_nothing_new(reference, tmp_path):
    folder, ids, ref = reference
    out = tmp_path / "out"
    grade(folder, out)
    before = stamps(out)
    second = grade(folder, out)
    assert "6 submissions up to date" in second.stderr and "graded 0 submissions" in second.stderr
    assert stamps(out) == before  # not one result.json rewritten
    assert summary_ids(out) == ids and (out / "index.html").is_file()


def test_changed_file_is_regraded_alone(reference, tmp_path):
    folder, ids, ref = reference
    folder = copy_folder(folder, tmp_path / "subs")
    out = tmp_path / "out"
    grade(folder, out)
    before = stamps(out)
    changed = folder / f"{ids[1]}.py"
    changed.write_text(changed.read_text() + "\n# one more comment\n")
    again = grade(folder, out)
    assert "graded 1 submissions" in again.stderr, again.stderr
    after = stamps(out)
    assert [i for i in ids if after[i] != before[i]] == [ids[1]]
    new = results(out)[ids[1]]
    assert new["meta"]["cache_key"] != ref[ids[1]]["meta"]["cache_key"]
    assert untimed(new)["checks"] == untimed(ref[ids[1]])["checks"] and new["score"] == ref[ids[1]]["score"]


def test_changed_rubric_regrades_everything(reference, tmp_path):
    folder, ids, ref = reference
    out = tmp_path / "out"
    grade(folder, out)
    from grader.rubric import default_path
    rubric = tmp_path / "rubric.toml"
    text = default_path().read_text()
    rubric.write_text(text.replace("[checks.\"linear.forward\"]\npoints = 2",
                                   "[checks.\"linear.forward\"]\npoints = 3", 1))
    assert rubric.read_text() != text
    again = grade(folder, out, "--rubric", rubric)
    assert "graded 6 submissions" in again.stderr, again.stderr
    regraded = results(out)
    assert all(regraded[i]["meta"]["rubric_digest"] != ref[i]["meta"]["rubric_digest"] for i in ids)
    # and back to the default rubric: regraded again, to the reference's scores
    back = grade(folder, out)
    assert "graded 6 submissions" in back.stderr
    assert {i: r["score"] for i, r in results(out).items()} == {i: r["score"] for i, r in ref.items()}


def test_force_regrades_everything(reference, tmp_path):
    folder, ids, ref = reference
    out = tmp_path / "out"
    grade(folder, out)
    before = stamps(out)
    forced = grade(folder, out, "--force")
    assert "graded 6 submissions" in forced.stderr
    after = stamps(out)
    assert all(after[i] != before[i] for i in ids)
    assert {i: untimed(r) for i, r in results(out).items()} == {i: untimed(r) for i, r in ref.items()}


def test_a_torn_or_foreign_result_is_regraded(reference, tmp_path):
    folder, ids, ref = reference
    out = tmp_path / "out"
    grade(folder, out)
    (out / ids[0] / "result.json").write_text('{"schema_version": 1, "id": ')  # torn
    (out / ids[2] / "feedback.html").unlink()  # a derived page lost
    (out / ids[3] / ".result.json.abc.tmp").write_text("half")  # a write cut short
    again = grade(folder, out)
    assert "graded 1 submissions" in again.stderr
    assert untimed(results(out)[ids[0]]) == untimed(ref[ids[0]])
    assert (out / ids[2] / "feedback.html").is_file()
    assert not list((out / ids[3]).glob(".*.tmp"))


def start_grading(folder: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "grader", "grade", str(folder), "--out", str(out),
                             "--jobs", "1"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_results(out: Path, proc: subprocess.Popen, at_least: int) -> None:
    deadline = time.monotonic() + 120
    while len(list(out.glob("*/result.json"))) < at_least:
        assert proc.poll() is None, f"the batch ended before it could be interrupted: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "no results appeared"
        time.sleep(0.005)


@pytest.fixture(scope="module")
def long_batch(tmp_path_factory):
    """12 submissions and their uninterrupted results."""
    root = tmp_path_factory.mktemp("killed")
    folder = root / "subs"
    ids = make_batch(folder, 12)
    grade(folder, root / "reference")
    return folder, ids, results(root / "reference")


def test_kill_9_mid_batch_then_resume_gives_identical_results(long_batch, tmp_path):
    folder, ids, ref = long_batch
    out = tmp_path / "out"
    proc = start_grading(folder, out)
    wait_for_results(out, proc, 3)
    proc.send_signal(signal.SIGKILL)  # no handler, no cleanup: as a power cut
    proc.wait()
    survivors = results(out)  # every result.json present parses: none is torn
    assert 3 <= len(survivors) < len(ids)
    kept = stamps(out)
    resumed = run_cli("grade", folder, "--out", out, "--jobs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(survivors)} submissions up to date" in resumed.stderr
    final = results(out)
    assert sorted(final) == ids
    assert all(stamps(out)[i] == kept[i] for i in kept)  # finished results untouched
    assert {i: untimed(r) for i, r in final.items()} == {i: untimed(r) for i, r in ref.items()}
    assert summary_ids(out) == ids


def test_ctrl_c_keeps_finished_results_and_writes_the_summary(long_batch, tmp_path):
    folder, ids, ref = long_batch
    out = tmp_path / "out"
    proc = start_grading(folder, out)
    wait_for_results(out, proc, 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again" in err
    done = results(out)
    assert summary_ids(out) == sorted(done) and len(done) < len(ids)
    resumed = run_cli("grade", folder, "--out", out, "--jobs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert {i: untimed(r) for i, r in results(out).items()} == {i: untimed(r) for i, r in ref.items()}


def test_jobs_defaults_to_the_number_of_cores():
    from grader.cli import build_parser
    args = build_parser().parse_args(["grade", "somewhere", "--out", "x"])
    assert args.jobs == len(os.sched_getaffinity(0))
