"""The host probe's remembered answer (grader/sandbox/probe.py): `check` skips the trial
run in a context it has seen, and never trusts a file it should not."""
from __future__ import annotations

import json
import os

import pytest

from conftest import FIXTURES, run_cli
from grader.sandbox import failed_as_recalled, probe

ISOLATED = probe.HostCaps(root=True, namespaces=True, userns=False, cgroup_kind="v1", why="",
                          zygote=True)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    path = tmp_path / "host-caps.json"
    monkeypatch.setattr(probe, "cache_file", lambda: path)
    probe.probe.cache_clear()
    yield path
    probe.probe.cache_clear()


def test_an_isolating_answer_is_recalled_in_the_same_context_only(cache):
    probe.remember("key-a", ISOLATED)
    assert cache.stat().st_mode & 0o077 == 0
    got = probe.recall("key-a")
    assert got is not None and got.remembered and got.namespaces and got.cgroup_kind == "v1"
    assert probe.recall("key-b") is None
    assert probe.recall("") is None


def test_a_file_others_could_write_or_a_weaker_answer_is_not_trusted(cache):
    probe.remember("k", ISOLATED)
    os.chmod(cache, 0o666)
    assert probe.recall("k") is None
    plain = probe.HostCaps(root=True, namespaces=False, userns=False, cgroup_kind=None, why="no")
    cache.write_text(json.dumps({"key": "k", "caps": {**plain.__dict__}}))
    os.chmod(cache, 0o600)
    assert probe.recall("k") is None  # a forged "no isolation" must not downgrade a run
    cache.write_text("{not json")
    assert probe.recall("k") is None


def test_the_context_key_is_stable_and_names_the_interpreter(monkeypatch):
    key = probe.context_key()
    assert key and key == probe.context_key()
    monkeypatch.setattr(probe.sys, "executable", "/elsewhere/python3")
    assert probe.context_key() != key


def test_a_failed_run_in_a_recalled_tier_forgets_the_answer(cache):
    probe.remember("k", ISOLATED)

    class Box:
        recalled = True
    assert not failed_as_recalled(Box(), "ok")
    assert cache.exists()
    assert failed_as_recalled(Box(), "internal")
    assert not cache.exists()
    Box.recalled = False
    assert not failed_as_recalled(Box(), "internal")


def test_check_recovers_from_a_remembered_tier_that_no_longer_runs():
    """A remembered answer naming cgroup v2 on a host whose cgroups are v1 (or none): the
    run fails, `check` probes for real, grades normally, and remembers the right answer."""
    from grader.sandbox import open_sandbox
    sandbox = open_sandbox("auto")
    if sandbox.tier != "namespaces" or getattr(sandbox, "cgroup_kind", None) != "v1":
        pytest.skip("needs the namespace tier with cgroup v1 (root)")
    path = probe.cache_file()
    wrong = {**ISOLATED.__dict__, "cgroup_kind": "v2"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": probe.context_key(), "caps": wrong}))
    os.chmod(path, 0o600)
    out = run_cli("check", FIXTURES / "correct" / "renamed_classes.py", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["meta"]["sandbox"]["status"] == "ok" and result["score"] == result["max_score"]
    assert json.loads(path.read_text())["caps"]["cgroup_kind"] == "v1"


def test_a_cgroup_folder_on_a_plain_filesystem_is_refused_and_removed(tmp_path):
    """A cgroup kind the host does not have (v2 folders made on v1's tmpfs root) would
    limit nothing: creating the run's group fails with OSError, leaving nothing behind."""
    from grader.sandbox import cgroups
    fake = tmp_path / "nngrader-x"
    fake.mkdir()
    (fake / "memory.max").write_text("1")
    with pytest.raises(OSError, match="not a cgroup"):
        cgroups.real_cgroups(fake)
    assert not fake.exists()
