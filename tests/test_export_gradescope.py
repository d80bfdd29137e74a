"""Gradescope: results.json against the spec's fields, the zip's layout, run_autograder."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from builders import alice, broken, class_results, mallory, write_out
from grader.export import gradescope

TOP = {"score", "execution_time", "output", "output_format", "visibility", "stdout_visibility", "tests"}
TEST = {"name", "number", "score", "max_score", "status", "output", "output_format", "visibility"}


def check_spec(data: dict) -> None:
    """The fields and types the Gradescope autograder specification names."""
    assert TOP <= set(data)
    assert isinstance(data["score"], (int, float)) and isinstance(data["execution_time"], (int, float))
    assert isinstance(data["output"], str) and data["output_format"] in ("text", "md", "html", "simple_format", "ansi")
    for t in data["tests"]:
        assert set(t) == TEST
        assert isinstance(t["name"], str) and isinstance(t["number"], str)
        assert 0 <= t["score"] <= t["max_score"]
        assert t["status"] in ("passed", "failed")
        assert t["visibility"] in gradescope.VISIBILITIES


def test_results_json_follows_the_spec():
    for r in (alice(), mallory(), broken()):
        data = json.loads(gradescope.dumps(r))
        check_spec(data)
        assert data["score"] == r.score
        assert sum(t["max_score"] for t in data["tests"]) == r.max_score
    data = gradescope.results_json(alice())
    t = {x["name"]: x for x in data["tests"]}
    assert t["linear.backward"]["status"] == "failed" and t["linear.forward"]["status"] == "passed"
    assert "Suspected mistake: dW is twice" in t["linear.backward"]["output"]
    assert "Tip 8e:" in t["linear.backward"]["output"]
    assert data["execution_time"] == 0.42
    timeout = gradescope.results_json(mallory())["tests"][2]
    assert timeout["status"] == "failed" and "(timed out)" in timeout["output"]
    assert "could not grade" in gradescope.results_json(broken())["output"].lower()


def test_convert_and_fallback(tmp_path):
    out = write_out(tmp_path / "out", [alice()])
    gradescope.convert(out, tmp_path / "results.json")
    check_spec(json.loads((tmp_path / "results.json").read_text()))
    (tmp_path / "empty").mkdir()
    gradescope.main(["convert", str(tmp_path / "empty"), str(tmp_path / "fb.json")])
    fb = json.loads((tmp_path / "fb.json").read_text())
    check_spec(fb)
    assert fb["score"] == 0 and "no result" in fb["output"]


def test_export_gradescope_writes_one_file_per_submission(tmp_path, cli):
    out = write_out(tmp_path / "out", class_results())
    assert cli("export", out, "--format", "gradescope") == 0
    files = sorted((out / "export" / "gradescope").glob("*/results.json"))
    assert len(files) == len(class_results())
    for f in files:
        check_spec(json.loads(f.read_text()))


@pytest.fixture
def fake_zip(tmp_path):
    wheel = tmp_path / "nngrader-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK fake wheel")
    return gradescope.build_zip(tmp_path / "autograder.zip", None, wheel)


def test_zip_layout_and_modes(fake_zip, tmp_path):
    dest = tmp_path / "unzipped"
    with zipfile.ZipFile(fake_zip) as z:
        names = set(z.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in z.infolist()}
        z.extractall(dest)
    assert names == {"setup.sh", "run_autograder", "rubric.toml", "requirements.txt",
                     "nngrader-0.1.0-py3-none-any.whl"}
    assert modes["setup.sh"] == 0o755 and modes["run_autograder"] == 0o755
    setup = (dest / "setup.sh").read_text()
    assert setup.startswith("#!/usr/bin/env bash") and "/autograder/source/nngrader-0.1.0-py3-none-any.whl" in setup
    run = (dest / "run_autograder").read_text()
    assert "/autograder/submission" in run and "/autograder/results/results.json" in run
    assert subprocess.run(["bash", "-n", str(dest / "setup.sh")]).returncode == 0
    assert subprocess.run(["bash", "-n", str(dest / "run_autograder")]).returncode == 0


def test_run_autograder_end_to_end_with_a_stand_in_grader(fake_zip, tmp_path):
    """Run the real run_autograder with /autograder moved into tmp and `nngrader grade` faked."""
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "submission" / "hw2.py").write_text("class MLP: pass\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    sample = tmp_path / "sample.json"
    sample.write_text(alice().dumps())
    fake = bindir / "nngrader"
    fake.write_text("#!/usr/bin/env bash\n# nngrader grade SUB --out OUT --rubric R\n"
                    f'test -f "$2/submission/hw2.py" || exit 3\n'
                    f'mkdir -p "$4/submission" && cp {sample} "$4/submission/result.json"\n')
    fake.chmod(0o755)
    with zipfile.ZipFile(fake_zip) as z:
        script = z.read("run_autograder").decode()
    script = script.replace("/autograder", str(root)).replace("/opt/nngrader/bin", str(bindir))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run(["bash", "-c", script], env=env, check=True)
    data = json.loads((root / "results" / "results.json").read_text())
    check_spec(data)
    assert data["score"] == alice().score and "Several submissions" not in data["output"]


def test_real_wheel_build(tmp_path):
    """Builds nngrader's own wheel as `gradescope-zip` does (skips when pip cannot build)."""
    if gradescope.source_dir() is None:
        pytest.skip("nngrader is not installed from a source tree")
    try:
        whl = gradescope.build_wheel(tmp_path)
    except subprocess.CalledProcessError as e:
        pytest.skip(f"pip could not build the wheel here: {e}")
    names = zipfile.ZipFile(whl).namelist()
    assert "grader/templates/student.html" in names and "grader/export/gradescope.py" in names
    assert "grader/rubrics/default.toml" in names
