"""The same verdicts under every tier: a submission that prints a lot (100 MB per probe,
tests/fixtures/adversarial/huge_output.py) loses nothing under Docker, whose log path is
slow, nor under the container tier. What a probe prints is cut at the source, in the
harness (each probe's output goes to a pipe the harness drains and truncates), so no
tier's own pipe or log carries it.

Graded with the adversarial batch's strict rubric (3 s per check), where a slow output
path shows as timeouts. Tiers that cannot run here skip, with the reason.
"""
from __future__ import annotations

import json

import pytest

from conftest import FIXTURES, run_cli, validate_result
from test_adversarial import make_rubric

TIERS = ("auto", "docker", "container")
CHATTY = FIXTURES / "adversarial" / "huge_output.py"


@pytest.fixture(scope="module")
def rubric(tmp_path_factory):
    path = tmp_path_factory.mktemp("rubric") / "strict.toml"
    make_rubric(path, "same-verdicts")
    return path


def verdicts(tier: str, rubric) -> dict:
    from grader.sandbox import SandboxUnavailable, open_sandbox
    try:
        sandbox = open_sandbox(tier)
    except SandboxUnavailable as exc:
        pytest.skip(f"{tier} unavailable here: {exc}")
    if tier == "auto" and sandbox.tier != "namespaces":
        pytest.skip(f"auto picks {sandbox.tier!r} here, not the namespace tier")
    out = run_cli("check", CHATTY, "--json", "--sandbox", tier, "--rubric", rubric, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    validate_result(result)
    return {"tier": result["meta"]["sandbox"]["tier"], "score": result["score"],
            "statuses": {c["id"]: c["status"] for c in result["checks"]},
            "output": result["meta"]["output"]}


def test_a_chatty_submission_gets_the_same_verdicts_in_every_tier(rubric):
    seen = {}
    for tier in TIERS:
        try:
            seen[tier] = verdicts(tier, rubric)
        except pytest.skip.Exception as exc:
            print(f"{tier}: skipped ({exc})")
    if len(seen) < 2:
        pytest.skip(f"fewer than two tiers run here: {sorted(seen)}")
    first = next(iter(seen.values()))
    for tier, got in seen.items():
        assert got["statuses"] == first["statuses"], (tier, got["tier"], got["statuses"])
        assert got["score"] == first["score"], (tier, got["score"], first["score"])
        # cut in the harness, the same way everywhere: the same text reaches each tier
        assert got["output"] == first["output"] and len(got["output"]) <= 4000, tier
    assert "timeout" not in first["statuses"].values()
