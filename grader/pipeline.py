"""The grading pipeline, read top to bottom: load -> sandbox -> observe -> judge -> score.

`grade_submission` is everything that happens to one submission; grader/batch.py runs it
over a folder (threads or a Dask cluster, a content-hash cache, resuming).
Reports and exports only read what this writes.
"""
from __future__ import annotations

import tempfile
import time
import traceback
from pathlib import Path

from . import __version__, load, observe, plan
from .checks import REGISTRY
from .checks.base import Context, Verdict
from .judge import INTERNAL, judge
from .result import Result
from .roles import match_roles
from .rubric import Rubric
from .sandbox import Sandbox
from .score import score
from .selection import probes_read
from .side_by_side import why_one_by_one


def grade_submission(path: Path, sid: str, rubric: Rubric, sandbox: Sandbox,
                     checks: list[str] | None = None, loaded: load.Submission | None = None,
                     lanes: int = 1) -> Result:
    """`checks`: a selection of the enabled checks (`--only`, grader/selection.py), else all;
    `loaded`: a Submission already read (the code a notebook's kernel ran), else `path`'s;
    `lanes`: cores this submission has to itself, for probes side by side (same verdicts)."""
    start = time.monotonic()
    sub = loaded or load.load(path, sid, rubric.python2, rubric.prefer)
    meta = {"source": str(path), "grader_version": __version__, "rubric": rubric.name,
            "rubric_digest": rubric.digest, "seed": rubric.seed}
    if checks is not None:
        meta["only"] = list(checks)
    if sub.problem:
        return not_graded(sid, rubric, sub.problem, meta, start, checks)
    roles = match_roles(list(sub.classes), rubric.roles)
    meta.update(graded_file=sub.graded_file, roles=roles, left_out=list(sub.left_out),
                notes=list(sub.notes))
    if sub.choice:
        meta["choice"] = sub.choice
    checks = rubric.enabled() if checks is None else checks
    # the probes a full run sends for these checks, and for those they consult
    read = probes_read(checks)
    probes = plan.probes(rubric.seed, {pid: need for pid, need in
                                       needed_probes(rubric, rubric.enabled()).items() if pid in read})
    lanes = min(lanes, getattr(sandbox, "max_lanes", None) or lanes)
    one_by_one = why_one_by_one(sub) if lanes > 1 else ""  # code that could tell the difference
    lanes = 1 if one_by_one else lanes
    with tempfile.TemporaryDirectory(prefix="nngrader-box-") as tmp:
        box = Path(tmp)
        plan.write_box(box, sub, roles, probes, rubric.limits, rubric.seed, rubric.interface,
                       lanes, package=not getattr(sandbox, "preloads_harness", False))
        outcome = sandbox.run(box, rubric.limits)
        # Only a harness that ran to its end wrote results.json: if it was killed (e.g. by
        # the student's code, right after writing a forged file there), nothing is trusted.
        # results count only from a harness that ran to its end: a timeout or a kill may
        # leave behind whatever student code wrote (a forged out/results.json)
        finished = outcome.status in ("ok", "memory") and outcome.exit_code == 0
        runs = (observe.read_results(box) or {}) if finished else {}
    meta["sandbox"] = {**outcome.to_json(), "isolated": sandbox.isolated, "lanes": lanes}
    if one_by_one:
        meta["sandbox"]["one_by_one"] = one_by_one
    if getattr(sandbox, "warning", ""):  # what this tier did not block, in a sentence
        meta["sandbox"]["warning"] = sandbox.warning
    meta["probes"] = {pid: {"status": r.status, "elapsed_s": round(r.elapsed_s, 4)} for pid, r in runs.items()}
    meta["output"] = (outcome.stdout[-2000:] + outcome.stderr[-2000:]).strip()
    if outcome.status == "internal":
        return not_graded(sid, rubric, f"{INTERNAL}: the sandbox failed ({outcome.message})",
                          meta, start)
    ctx = Context(submission=sub, roles=roles, probes=runs,
                  inputs={p.id: p.args for p in probes}, settings=rubric.settings,
                  memory_mb=rubric.limits.memory_mb,
                  run_message=outcome.message or "the harness reported nothing")
    result = Result(id=sid, checks=score(judge(ctx, checks), rubric), meta=meta)
    return result.with_meta(elapsed_s=round(time.monotonic() - start, 3))


def needed_probes(rubric: Rubric, checks: list[str]) -> dict[str, tuple[float, dict]]:
    """probe id -> (its wall-clock limit: the largest of its checks', the checks' params)."""
    out: dict[str, tuple[float, dict]] = {}
    for cid in checks:
        probe, settings = REGISTRY[cid].probe, rubric.settings(cid)
        # a probe shared by several checks (train_overfit20 feeds mlp.init_loss too) gets
        # its defaults from all of them, enabled or not
        defaults = {k: v for spec in REGISTRY.values() if spec.probe == probe for k, v in spec.params.items()}
        timeout, params = out.get(probe, (0.0, defaults))
        out[probe] = (max(timeout, settings["timeout_s"]), {**params, **settings["params"]})
    return out


def not_graded(sid: str, rubric: Rubric, reason: str, meta: dict, start: float,
               checks: list[str] | None = None) -> Result:
    """Every check present with score 0, so max_score is the same for the whole class."""
    checks = rubric.enabled() if checks is None else checks
    verdicts = {cid: Verdict("skipped", f"not run: {reason}") for cid in checks}
    meta = {**meta, "elapsed_s": round(time.monotonic() - start, 3)}
    return Result(id=sid, checks=score(verdicts, rubric), error=reason, meta=meta)


def safe_grade(path: Path, sid: str, rubric: Rubric, sandbox: Sandbox,
               checks: list[str] | None = None, loaded: load.Submission | None = None,
               lanes: int = 1) -> Result:
    """grade_submission, with any grader failure turned into that submission's error row."""
    try:
        return grade_submission(path, sid, rubric, sandbox, checks, loaded, lanes)
    except Exception as e:  # one broken submission (or grader bug) must not stop a batch
        meta = {"source": str(path), "internal": traceback.format_exc(limit=6)}
        return not_graded(sid, rubric, f"{INTERNAL} while grading {path.name} "
                          f"({type(e).__name__}: {e})", meta, time.monotonic(), checks)
