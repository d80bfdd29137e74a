"""`nngrader grade --executor dask`: a LocalCluster started here (scheduler on TCP, one
worker with two threads in this process, so it starts in about a second) grades a batch
through the real CLI in a subprocess; result.json must equal the local run's, timing
fields aside. The files travel with each task, as they would to another machine."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import run_cli
from test_batch_resume import make_batch, results, untimed

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  protocol="tcp", host="127.0.0.1", dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask")
    folder = root / "subs"
    ids = make_batch(folder, 5)
    nested = folder / "zz_folder_submission"  # a folder submission travels file by file
    nested.mkdir()
    src = sorted((Path(__file__).parent / "fixtures" / "correct").glob("*.py"))[0]
    (nested / "layers.py").write_text(src.read_text())
    local = root / "local"
    proc = run_cli("grade", folder, "--out", local, "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    return folder, ids + [nested.name], results(local), local


def test_dask_run_matches_the_local_run(cluster, batch, tmp_path):
    folder, ids, local, local_out = batch
    out = tmp_path / "dask"
    proc = run_cli("grade", folder, "--out", out, "--executor", "dask",
                   "--scheduler", cluster.scheduler_address)
    assert proc.returncode == 0, proc.stderr
    remote = results(out)
    assert sorted(remote) == sorted(ids)
    assert {i: untimed(r) for i, r in remote.items()} == {i: untimed(r) for i, r in local.items()}
    assert (out / "summary.csv").read_text() == (local_out / "summary.csv").read_text()
    for i in ids:
        assert (out / i / "feedback.html").is_file() and (out / i / "feedback.md").is_file()


def test_dask_run_resumes_from_the_cache(cluster, batch, tmp_path):
    folder, ids, local, _ = batch
    out = tmp_path / "dask"
    first = run_cli("grade", folder, "--out", out, "--executor", "dask",
                    "--scheduler", cluster.scheduler_address)
    assert first.returncode == 0, first.stderr
    (out / ids[0] / "result.json").unlink()
    again = run_cli("grade", folder, "--out", out, "--executor", "dask",
                    "--scheduler", cluster.scheduler_address)
    assert again.returncode == 0, again.stderr
    assert "graded 1 submissions" in again.stderr
    assert untimed(json.loads((out / ids[0] / "result.json").read_text())) == untimed(local[ids[0]])


def test_dask_needs_a_scheduler_and_a_reachable_one(tmp_path, batch):
    folder, *_ = batch
    missing = run_cli("grade", folder, "--out", tmp_path / "o", "--executor", "dask")
    assert missing.returncode == 2 and "--scheduler" in missing.stderr
    unreachable = run_cli("grade", folder, "--out", tmp_path / "o", "--executor", "dask",
                          "--scheduler", "tcp://127.0.0.1:9",
                          env={**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"})
    assert unreachable.returncode == 2 and "cannot reach the Dask scheduler" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
