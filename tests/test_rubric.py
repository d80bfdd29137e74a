"""rubric.py: the default rubric loads; every mistake in a rubric is one line naming the key."""
from __future__ import annotations

import pytest

from grader.checks import REGISTRY
from grader.result import Hint
from grader.rubric import RubricError, default_path, load_rubric


def test_default_rubric_loads_and_covers_registry():
    r = load_rubric()
    assert set(r.checks) == set(REGISTRY)
    assert r.enabled() == list(REGISTRY)
    for cid, spec in REGISTRY.items():
        c = r.settings(cid)
        # a relative error for value checks, a slowdown ratio for vectorised.*, and 0 for
        # checks judged otherwise (structure, update, training)
        limit = 100.0 if cid.startswith("vectorised.") else 1e-3
        assert c["points"] > 0 and 0 <= c["threshold"] < limit and c["timeout_s"] > 0
        assert (c["threshold"] > 0) == (spec.threshold > 0)
        assert c["hints"] and all(isinstance(h, Hint) for h in c["hints"])
    assert r.families and all(isinstance(h, Hint) for h in r.families.values())
    assert len(r.digest) == 16 and r.seed == load_rubric(default_path()).seed


def test_families_cover_every_described_mistake():
    from grader.checks.families import DESCRIBE
    assert set(DESCRIBE) <= set(load_rubric().families), set(DESCRIBE) - set(load_rubric().families)


def test_points_and_hints_editable_without_code(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text('[checks."linear.forward"]\npoints = 5\nthreshold = 1e-4\n'
                 'hints = [{ tip = "8a", text = "my words" }]\n'
                 '[checks."relu.forward"]\nenabled = false\n'
                 '[roles]\nlinear = "FullyConnected"\nloss = ["Sig", "Xent"]\n'
                 '[limits]\nwall_s = 95\nmemory_mb = 256\n')
    r = load_rubric(p)
    lf = r.settings("linear.forward")
    assert lf["points"] == 5 and lf["threshold"] == 1e-4 and lf["hints"] == [Hint("8a", "my words")]
    assert "relu.forward" not in r.enabled()
    assert r.roles == {"linear": "FullyConnected", "loss": ["Sig", "Xent"]}
    assert r.limits.wall_s == 95.0 and r.limits.memory_mb == 256
    assert r.settings("linear.backward")["points"] == REGISTRY["linear.backward"].points


BAD = {
    "wall-below-probes": ('[limits]\nwall_s = 20\n', "limits.wall_s"),
    "unknown-table": ('[grading]\nx = 1\n', "grading"),
    "unknown-check-key": ('[checks."linear.forward"]\npionts = 3\n', "pionts"),
    "unknown-check": ('[checks."linear.fwd"]\npoints = 3\n', "linear.fwd"),
    "bad-tip": ('[checks."relu.forward"]\nhints = [{ tip = "9", text = "x" }]\n', "'9'"),
    "hint-extra-key": ('[checks."relu.forward"]\nhints = [{ tip = "3", text = "x", url = "y" }]\n', "relu.forward"),
    "family-bad-tip": ('[families.db_mean]\ntip = "8z"\ntext = "x"\n', "families.db_mean"),
    "negative-points": ('[checks."loss.forward"]\npoints = -1\n', "points"),
    "string-points": ('[checks."loss.forward"]\npoints = "two"\n', "points"),
    "unknown-limit": ('[limits]\nwall_seconds = 3\n', "wall_seconds"),
    "bad-limit-value": ('[limits]\nmemory_mb = "lots"\n', "limits"),
    "unknown-role": ('[roles]\nsoftmax = "Softmax"\n', "softmax"),
    "string-threshold": ('[checks."linear.forward"]\nthreshold = "tight"\n', "threshold"),
    "negative-threshold": ('[checks."linear.forward"]\nthreshold = -1e-6\n', "threshold"),
    "string-timeout": ('[checks."linear.forward"]\ntimeout_s = "5s"\n', "timeout_s"),
    "hints-not-a-list": ('[checks."linear.forward"]\nhints = "be careful"\n', "hints"),
    "enabled-not-bool": ('[checks."linear.forward"]\nenabled = "no"\n', "enabled"),
    "check-not-a-table": ('[checks]\n"linear.forward" = 3\n', "linear.forward"),
    "string-seed": ('[rubric]\nseed = "abc"\n', "seed"),
    "not-toml": ('[checks."linear.forward"\npoints = 2\n', "not valid TOML"),
    "interface-role": ('[interface.softmax]\nmethods = { forward = "go" }\n', "softmax"),
    "interface-job": ('[interface.mlp]\nmethods = { fit = "go" }\n', "interface.mlp.methods"),
    "interface-key": ('[interface.mlp]\nnames = { fit = "go" }\n', "interface.mlp"),
    "interface-meaning": ('[interface.mlp]\nargs = { speed = "velocity" }\n', "velocity"),
    "submission-key": ('[submission]\npython3 = "yes"\n', "python3"),
    "submission-python2": ('[submission]\npython2 = "maybe"\n', "python2"),
}


def test_interface_table_is_read_into_methods_and_meanings(tmp_path):
    p = tmp_path / "course.toml"
    p.write_text('[interface.loss]\nmethods = { forward = "apply" }\n'
                 '[interface.mlp]\nmethods = { train = "learn" }\n'
                 'args = { speed = "lr", depth = 2, mode = { value = "fit" } }\n')
    iface = load_rubric(p).interface
    assert iface["loss"]["methods"] == {"loss_forward": "apply"}  # looked up as the loss's
    assert iface["mlp"] == {"methods": {"train": "learn"},
                            "args": {"speed": "lr", "depth": 2, "mode": ("literal", "fit")}}


@pytest.mark.parametrize("text,key", BAD.values(), ids=BAD.keys())
def test_bad_rubric_is_one_line_naming_the_key(tmp_path, text, key):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(RubricError) as e:
        load_rubric(p)
    msg = str(e.value)
    assert key in msg
    assert "\n" not in msg
    assert str(p) in msg


def test_missing_rubric_file(tmp_path):
    with pytest.raises(RubricError, match="cannot read"):
        load_rubric(tmp_path / "nope.toml")


def test_non_utf8_rubric(tmp_path):
    p = tmp_path / "r.toml"
    p.write_bytes(b'[rubric]\nname = "caf\xe9"\n')
    with pytest.raises(RubricError):
        load_rubric(p)
