"""Shared paths, the fixture manifest, and fixture folders graded once per session.

Grading goes through the real CLI in a subprocess (`python -m grader grade ...`), exactly as
an instructor runs it; each folder is graded at most once per session and its parsed
results are cached. Every result.json the suite reads is validated against
grader/result.schema.json on the way in.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
SUBMISSIONS = REPO / "submissions"
MANIFEST = FIXTURES / "manifest.toml"
SCHEMA_PATH = REPO / "grader" / "result.schema.json"
CONTRACT_CHECKER = REPO.parent / "shared" / "tools" / "check_contract.py"

# Three layers written as the course template asks, correct: for tests that need a small
# submission of their own (the harness's, the training step's).
GOOD_LAYERS = textwrap.dedent("""\
    import numpy as np

    class LinearTransform:
        def __init__(self, W, b):
            self.W, self.b = W, b
        def forward(self, x):
            self.x = x
            return x @ self.W + self.b
        def backward(self, grad_output):
            self.dW, self.db = self.x.T @ grad_output, grad_output.sum(axis=0)
            return grad_output @ self.W.T

    class ReLU:
        def forward(self, x):
            self.x = x
            return np.maximum(x, 0)
        def backward(self, grad_output):
            return grad_output * (self.x > 0)

    class SigmoidCrossEntropy:
        def forward(self, x, y):
            self.p, self.y = 1 / (1 + np.exp(-x)), y
            return float(np.mean(-(y * np.log(self.p) + (1 - y) * np.log(1 - self.p))))
        def backward(self, grad_output):
            return grad_output * (self.p - self.y) / len(self.y)
    """)

# headless Debian chromium for the pages' layout tests; screenshots for a person to look at
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"  # gitignored
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]

# folder label -> folder graded by the CLI
FOLDERS = {
    "correct": FIXTURES / "correct",
    "buggy": FIXTURES / "buggy",
    "bad_input": FIXTURES / "bad_input",
    "submissions": SUBMISSIONS,
}


def run_cli(*args, timeout: float = 120, cwd: Path = REPO, env=None) -> subprocess.CompletedProcess:
    """Run `python -m grader ARGS` and capture its output as text."""
    return subprocess.run([sys.executable, "-m", "grader", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)


_SCHEMA = None


def validate_result(data: dict) -> None:
    """Raise jsonschema.ValidationError when `data` breaks the result.json schema."""
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(_SCHEMA)
    jsonschema.Draft202012Validator(_SCHEMA).validate(data)


@dataclass(frozen=True)
class Entry:
    """One manifest table, with where its result lands once graded."""
    key: str          # e.g. "correct/classic_template.py" or "../../submissions/bob_notebook.ipynb"
    folder: str       # a FOLDERS label
    id: str           # submission id: file stem or folder name
    path: Path
    spec: dict

    @property
    def kind(self) -> str:
        return self.spec["kind"]


def load_manifest() -> list[Entry]:
    data = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    entries = []
    for key, spec in data["files"].items():
        path = (FIXTURES / key).resolve()
        folder = "submissions" if path.parent == SUBMISSIONS else path.parent.name
        entries.append(Entry(key, folder, path.stem if path.is_file() else path.name, path, spec))
    return entries


MANIFEST_ENTRIES = load_manifest()


def entries(kind: str) -> list[Entry]:
    return [e for e in MANIFEST_ENTRIES if e.kind == kind]


def entry_ids(items: list[Entry]) -> list[str]:
    return [f"{e.folder}/{e.id}" for e in items]


@dataclass
class Graded:
    """A folder graded through the CLI: where it went, what it printed, what it wrote."""
    folder: Path
    out: Path
    proc: subprocess.CompletedProcess
    results: dict     # id -> parsed result.json


def grade_folder(folder: Path, out: Path, *extra) -> Graded:
    proc = run_cli("grade", folder, "--out", out, "--jobs", "2", *extra)
    results = {}
    for path in sorted(out.glob("*/result.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        validate_result(data)
        results[path.parent.name] = data
    return Graded(folder, out, proc, results)


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module; skips, saying why, when playwright or
    chromium is missing."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def manifest() -> list[Entry]:
    return MANIFEST_ENTRIES


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """graded(label) -> Graded, grading each fixture folder at most once per session."""
    cache: dict[str, Graded] = {}

    def get(label: str) -> Graded:
        if label not in cache:
            out = tmp_path_factory.mktemp(f"out-{label}")
            cache[label] = grade_folder(FOLDERS[label], out)
            assert cache[label].proc.returncode == 0, cache[label].proc.stderr
        return cache[label]

    return get


@pytest.fixture(scope="session")
def registry():
    from grader.checks import REGISTRY
    return REGISTRY


# ---- report/export helpers (tests/builders.py is importable as a plain module)
import argparse  # noqa: E402
import socket  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to use the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def cli():
    """A tiny nngrader entry: register() on a plain argparse parser, as grader/cli.py will."""
    from grader.export.cli import register

    def run(*argv) -> int:
        parser = argparse.ArgumentParser(prog="nngrader")
        register(parser.add_subparsers(required=True))
        args = parser.parse_args([str(a) for a in argv])
        return args.func(args)
    return run
