"""The Docker backend against every adversarial box (tests/sandbox_cases.py).

Skips, with the reason, only where no engine answers (run sandbox/start-dockerd.sh first).
"""
from __future__ import annotations

import pytest

from grader.sandbox import SandboxUnavailable, open_sandbox
from sandbox_cases import *  # noqa: F401,F403 - the shared adversarial tests

try:
    _BACKEND = open_sandbox("docker")
except SandboxUnavailable as exc:
    pytest.skip(f"Docker backend unavailable: {exc}", allow_module_level=True)


@pytest.fixture(scope="module")
def sandbox():
    return _BACKEND


def test_containers_are_removed(sandbox, tmp_path):
    from grader.sandbox.docker import LABEL
    make_box(tmp_path, "done()\n")  # noqa: F405
    sandbox.run(tmp_path / "box", FAST)  # noqa: F405
    assert sandbox.client().containers.list(all=True, filters={"label": LABEL}) == []
