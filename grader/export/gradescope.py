"""Gradescope: results.json per the autograder specification, and the autograder zip.

results.json: top-level `score`, `execution_time`, `output`, `output_format`,
`visibility`, `stdout_visibility` and `tests[]`, one per check, each with `name`,
`number`, `score`, `max_score`, `status` ("passed"/"failed": Gradescope knows no other),
`output`, `output_format` and `visibility`. The top-level score is the nngrader total
(instructor overrides included), so Gradescope shows the same number as every other export.
The top-level output says which file was graded (and which were not, when several could
be the submission), the sandbox tier and whether the code ran isolated (from result.json's
meta.sandbox), and the instructor's adjustments.

The zip (see `build_zip`) carries `setup.sh` and `run_autograder` at its root. It vendors
a wheel of the nngrader that built it (`pip wheel --no-deps` of the installed source), so
the course runs exactly the grader version the instructor tried, released on PyPI or not,
and `requirements.txt`: every package nngrader needs, pinned (`==`) to the version
installed where the zip was built, so Gradescope installs what the instructor tried, not
whatever PyPI has that week. setup.sh installs the Python version that built the zip when
the image has it. run_autograder copies /autograder/submission in as one sub-folder
submission, grades it with `nngrader grade DIR --out OUT --rubric FILE`, printing the
grading log on its stdout (Gradescope shows run_autograder's output to the instructor; a
copy stays in results/grade.log), and turns the result.json into
/autograder/results/results.json with `python3 -m grader.export.gradescope convert`.
"""
from __future__ import annotations

import argparse
import json
import platform
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from .. import overrides
from ..report import hints
from ..report.student_paths import scrub
from ..result import Result, write_atomic
from . import feedback_text

VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")


def results_json(result: Result, *, execution_time: float | None = None,
                 visibility: str = "visible") -> dict:
    """One submission's results.json as a dict."""
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility {visibility!r} is not one of {', '.join(VISIBILITIES)}")
    result = scrub(result)
    meta = result.meta if isinstance(result.meta, Mapping) else {}
    elapsed = execution_time if execution_time is not None else meta.get("elapsed_s")
    tips = hints.once(c for c in result.checks if c.status != "pass")
    tips.update({c.id: hints.once([c])[c.id] for c in result.checks if c.status == "pass"})
    return {
        "score": result.score,
        "execution_time": round(float(elapsed), 3) if isinstance(elapsed, (int, float)) else 0,
        "output": _top_output(result),
        "output_format": "text",
        "visibility": visibility,
        "stdout_visibility": "hidden",
        "tests": [_test(c, i, tips[c.id]) for i, c in enumerate(result.checks, 1)],
    }


def dumps(result: Result, **kw) -> str:
    return json.dumps(results_json(result, **kw), indent=2, ensure_ascii=False) + "\n"


def _top_output(result: Result) -> str:
    meta = result.meta if isinstance(result.meta, Mapping) else {}
    lines = [f"nngrader: {result.score:g} / {result.max_score:g} points."]
    lines += overrides.lines(result)
    if result.error:
        lines.append(f"Could not grade everything: {result.error}")
    if meta.get("graded_file"):
        lines.append(f"Graded file: {meta['graded_file']}")
    choice = meta.get("choice") if isinstance(meta.get("choice"), Mapping) else {}
    if choice.get("not_graded"):
        lines.append(f"Not graded: {', '.join(map(str, choice['not_graded']))} (several files could "
                     f"be the submission; {choice.get('why') or 'the one above was graded'}).")
    lines.append(sandbox_line(meta.get("sandbox")))
    return "\n".join(lines)


def sandbox_line(sandbox) -> str:
    """Which sandbox tier ran the code, whether it was isolated, and what protected it."""
    sb = sandbox if isinstance(sandbox, Mapping) else {}
    tier = sb.get("tier")
    if not tier:
        return "Sandbox: not recorded (the code did not run)."
    isolated = sb.get("isolated")
    state = ("isolated" if isolated else "NOT isolated: resource limits only, no separate user, "
             "file system or network") if isinstance(isolated, bool) else "isolation not recorded"
    protections = ", ".join(map(str, sb.get("protections") or [])) or "none recorded"
    return f"Sandbox: {tier} ({state}); protections: {protections}."


def _test(c, number: int, tips: list) -> dict:
    lines = [c.message] if c.message else []
    suspected = c.details.get("suspected") if isinstance(c.details, Mapping) else None
    if suspected:
        lines.append(f"Suspected mistake: {suspected}")
    lines += [hints.line(*t) for t in tips]
    if c.status not in ("pass", "fail"):
        lines.append(f"({feedback_text.WORDS.get(c.status, c.status)})")
    return {"name": c.id, "number": str(number), "score": c.score, "max_score": c.max_score,
            "status": "passed" if c.status == "pass" else "failed",
            "output": "\n".join(lines), "output_format": "text", "visibility": "visible"}


def fallback(message: str) -> dict:
    """What Gradescope shows when grading produced no result at all: zero, and why."""
    return {"score": 0, "execution_time": 0, "output": message, "output_format": "text",
            "visibility": "visible", "stdout_visibility": "visible", "tests": []}


def convert(out_dir: Path, dest: Path) -> int:
    """Write dest from the one result.json under out_dir (a fallback when there is none)."""
    found = sorted(Path(out_dir).glob("*/result.json"))
    if not found:
        data = fallback("nngrader produced no result for this submission. Check that you "
                        "uploaded your .py or .ipynb file, then ask your instructor.")
    else:
        data = results_json(Result.read(found[0]))
        if len(found) > 1:
            names = ", ".join(p.parent.name for p in found)
            data["output"] += f"\nSeveral submissions were found ({names}); graded {found[0].parent.name}."
    write_atomic(Path(dest), json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return 0


# ---- the autograder zip -------------------------------------------------------------------

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once while building the autograder image.
set -euo pipefail
apt-get update
# The zip was built and tried with Python {pyver}; its pinned packages are that Python's.
if apt-get install -y --no-install-recommends python{pyver} python{pyver}-venv; then
    PY=python{pyver}
else
    echo "setup.sh: Python {pyver} is not available here; using python3 (the pins in" \
         "requirements.txt may have no build for it)" >&2
    apt-get install -y --no-install-recommends python3 python3-pip python3-venv
    PY=python3
fi
$PY -m venv /opt/nngrader
/opt/nngrader/bin/pip install --upgrade pip
# Exactly the nngrader this zip was built with, and exactly the versions of its
# dependencies that were installed there (requirements.txt, == pins).
/opt/nngrader/bin/pip install -r /autograder/source/requirements.txt /autograder/source/{wheel}
"""

# nngrader's container tier: Gradescope's containers grant no CAP_SYS_ADMIN (no namespaces),
# so submissions run as their own uid, chroot'ed into a tree built here once, in the image.
SETUP_SH += """# The sandbox's container tier: its seccomp library, its file tree (the interpreter, the
# standard library and numpy) built now rather than for every submission, and nngrader's
# own files and this folder readable by root alone.
apt-get install -y --no-install-recommends libseccomp2
/opt/nngrader/bin/python -m grader.sandbox.jail prepare
chmod -R go-rwx /autograder/source /opt/nngrader/lib/python3*/site-packages/grader
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission: grade it, then write results.json.
set -uo pipefail
export PATH=/opt/nngrader/bin:$PATH
WORK=$(mktemp -d)
mkdir -p "$WORK/in" /autograder/results
# The whole upload is one submission: nngrader grades a sub-folder as one, whatever files
# the student added next to their homework.
cp -r /autograder/submission "$WORK/in/submission"
# The grading log goes to stdout, which Gradescope shows; a copy stays in grade.log.
nngrader grade "$WORK/in" --out "$WORK/out" --rubric /autograder/source/{rubric} 2>&1 \\
    | tee /autograder/results/grade.log
python3 -m grader.export.gradescope convert "$WORK/out" /autograder/results/results.json
"""


def source_dir() -> Path | None:
    """The source tree of the installed nngrader, when it was installed from one."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "grader").is_dir() else None


def build_wheel(dest_dir: Path) -> Path:
    """`pip wheel --no-deps` of the installed nngrader's source, into dest_dir."""
    src = source_dir()
    if src is None:
        raise RuntimeError("nngrader is not installed from a source tree, so no wheel can be "
                           "built; pass --wheel with an nngrader wheel file.")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(dest_dir), str(src)], check=True)
    return max(Path(dest_dir).glob("nngrader-*.whl"), key=lambda p: p.stat().st_mtime)


def pinned_requirements(root: str = "nngrader") -> list[str]:
    """requirements.txt lines: every package `root` needs at run time (its dependencies and
    theirs, extras left out), pinned to the version installed here. A dependency this
    Python does not install (its marker is false here, e.g. tomli below 3.11) keeps its
    own specifier and marker, since there is no installed version to pin."""
    from importlib.metadata import PackageNotFoundError, distribution
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    todo = [(root, ("",))]
    seen: set[tuple[str, str]] = set()
    while todo:
        name, extras = todo.pop()
        for extra in extras:
            if (canonicalize_name(name), extra) in seen:
                continue
            seen.add((canonicalize_name(name), extra))
            try:
                dist = distribution(name)
            except PackageNotFoundError:
                continue
            for line in dist.requires or []:
                req = Requirement(line)
                if req.marker is not None and not req.marker.evaluate({"extra": extra}):
                    if "extra" not in str(req.marker) and canonicalize_name(req.name) not in pins:
                        pins[canonicalize_name(req.name)] = str(req)   # not for this Python
                    continue
                key = canonicalize_name(req.name)
                try:
                    pins[key] = f"{key}=={distribution(req.name).version}"
                except PackageNotFoundError:
                    pins.setdefault(key, str(req))
                todo.append((req.name, ("",) + tuple(sorted(req.extras))))
    pins.pop(canonicalize_name(root), None)
    return [pins[k] for k in sorted(pins)]


def requirements_txt() -> str:
    head = (f"# Pinned by `nngrader gradescope-zip`: the versions installed where the zip was "
            f"built (Python {platform.python_version()}, {sys.platform} {platform.machine()}).\n")
    return head + "\n".join(pinned_requirements()) + "\n"


def rubric_file(rubric: str | None) -> Path:
    """The rubric TOML: a path, a name shipped with nngrader, or the default."""
    if rubric and Path(rubric).is_file():
        return Path(rubric)
    from importlib.resources import files
    name = (rubric or "default").removesuffix(".toml") + ".toml"
    shipped = files("grader.rubrics") / name
    if not shipped.is_file():
        raise FileNotFoundError(f"No rubric file {rubric} and no shipped rubric named {name}.")
    return Path(str(shipped))


def build_zip(dest: Path, rubric: str | None = None, wheel: Path | None = None) -> Path:
    """Write the autograder zip: setup.sh, run_autograder, requirements.txt, the wheel and the
    rubric at the root."""
    rub = rubric_file(rubric)
    with tempfile.TemporaryDirectory() as tmp:
        whl = Path(wheel) if wheel else build_wheel(Path(tmp))
        pyver = ".".join(platform.python_version_tuple()[:2])
        entries = {
            "setup.sh": (SETUP_SH.format(wheel=whl.name, pyver=pyver), 0o755),
            "run_autograder": (RUN_AUTOGRADER.format(rubric="rubric.toml"), 0o755),
            "requirements.txt": (requirements_txt(), 0o644),
        }
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
            for name, (text, mode) in entries.items():
                _add(z, name, text.encode(), mode)
            _add(z, "rubric.toml", rub.read_bytes(), 0o644)
            _add(z, whl.name, whl.read_bytes(), 0o644)
    return dest


def _add(z: zipfile.ZipFile, name: str, data: bytes, mode: int) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, data)


def main(argv: list[str] | None = None) -> int:
    """`python -m grader.export.gradescope convert OUT results.json`, run inside Gradescope."""
    p = argparse.ArgumentParser(prog="python -m grader.export.gradescope")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="turn OUT/<id>/result.json into Gradescope's results.json")
    c.add_argument("out", type=Path)
    c.add_argument("dest", type=Path)
    args = p.parse_args(argv)
    return convert(args.out, args.dest)


if __name__ == "__main__":
    sys.exit(main())
