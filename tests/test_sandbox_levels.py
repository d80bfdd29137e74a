"""Which tier `auto` and `strict` pick, and what a tier says about itself (no runs here
but the container tier's own, which skips where it cannot run)."""
from __future__ import annotations

import pytest

from grader import sandbox as sb
from grader.sandbox import LEVELS, SandboxUnavailable, level, open_sandbox
from grader.sandbox.plain import PlainSandbox
from grader.sandbox.probe import HostCaps


class Fake:
    def __init__(self, tier, isolated=True):
        self.tier, self.isolated = tier, isolated


def test_levels_are_ordered_weakest_first():
    assert LEVELS == ("plain", "container", "namespaces-userns", "namespaces")
    assert [level(Fake(t)) for t in LEVELS[1:]] == [1, 2, 3]
    assert level(PlainSandbox()) == 0
    assert level(Fake("container", isolated=False)) == 0  # no seccomp: counts as plain
    assert level(Fake("docker")) > level(Fake("namespaces"))


@pytest.fixture
def host(monkeypatch):
    """Make probe() answer what a test says, and the tiers it names cheap fakes."""
    def set_caps(**kw):
        caps = HostCaps(**{"root": True, "namespaces": False, "userns": False,
                           "cgroup_kind": None, "why": "unshare: Operation not permitted", **kw})
        monkeypatch.setattr("grader.sandbox.probe.probe", lambda recalled=False: caps)
    monkeypatch.setattr("grader.sandbox.embedded.POOL.prestart", lambda n=1: None)
    monkeypatch.setattr("grader.sandbox.embedded.EmbeddedSandbox",
                        lambda userns, cgroup_kind, zygote: Fake("namespaces-userns" if userns else "namespaces"))
    monkeypatch.setattr("grader.sandbox.container.ContainerSandbox", lambda zygote=None: Fake("container"))
    return set_caps


def test_auto_picks_the_container_tier_where_namespaces_fail(host):
    host(container=True)
    assert open_sandbox("auto").tier == "container"
    assert open_sandbox("strict").tier == "container"


def test_strict_refuses_below_its_minimum(host):
    host(container=False)
    assert open_sandbox("auto").tier == "plain"
    with pytest.raises(SandboxUnavailable, match="below 'container'"):
        open_sandbox("strict")
    host(container=True)
    with pytest.raises(SandboxUnavailable, match="below 'namespaces'"):
        open_sandbox("strict:namespaces")
    host(namespaces=True, cgroup_kind="v1")
    assert open_sandbox("strict:namespaces").tier == "namespaces"


def test_strict_names_are_checked():
    assert "strict:namespaces" in sb.NAMES and "container" in sb.NAMES
    with pytest.raises(SandboxUnavailable, match="unknown tier 'chroot'"):
        open_sandbox("strict:chroot")


def test_without_libseccomp_the_container_tier_says_so(monkeypatch):
    from grader.sandbox import container, syscalls
    monkeypatch.setattr(syscalls, "compiled", lambda: (None, "no libseccomp binding (test)"))
    try:
        box = container.ContainerSandbox()
    except SandboxUnavailable as exc:
        pytest.skip(f"container tier unavailable here: {exc}")
    assert box.isolated is False and level(box) == 0
    assert "no-network" not in box.protections
    assert any("network NOT blocked" in p for p in box.protections)
    assert "network connections and new sessions were not blocked" in box.warning


def test_the_filter_compiles_where_libseccomp_is_installed():
    from grader.sandbox import syscalls
    prog, why = syscalls.compiled()
    if prog is None:
        pytest.skip(why)
    assert len(prog) % 8 == 0 and len(prog) // 8 < 4096  # sock_filter entries, kernel max


def test_the_container_tier_grades_one_submission_at_a_time():
    """No cpu cgroup there: a CPU hog beside an honest run would turn its checks into
    timeouts, so the executor runs one at a time whatever --jobs says."""
    from grader.batch import LocalExecutor
    from grader.sandbox.container import ContainerSandbox
    assert ContainerSandbox.max_parallel == 1
    capped = Fake("container")
    capped.max_parallel = 1
    assert LocalExecutor(capped, 4).jobs == 1
    assert LocalExecutor(Fake("namespaces"), 4).jobs == 4
