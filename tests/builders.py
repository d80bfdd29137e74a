"""Realistic result.json samples for the report and export tests.

Built through the real `Result`/`CheckResult` classes so a sample can never drift from the
contract; `write_out` lays them out the way a grading run does (OUT/<id>/result.json plus
OUT/summary.csv).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

from grader.result import CheckResult, Hint, Result

CHANCE = math.log(2)


def _meta(graded_file: str, tier: str = "namespaces", **more) -> dict:
    protections = (["uid-pool", "netns", "mountns", "rlimits", "seccomp"] if tier != "plain"
                   else ["rlimits", "new-session", "wall-clock-kill"])
    meta = {
        "graded_file": graded_file,
        "source": f"submissions/{graded_file}",
        "roles": {"linear": "LinearTransform", "relu": "ReLU",
                  "loss": "SigmoidCrossEntropy", "mlp": "MLP"},
        "left_out": [{"lines": "120-168", "what": "module-level training script"}],
        "notes": ["Found two candidate loss classes; used SigmoidCrossEntropy."],
        "sandbox": {"status": "ok", "tier": tier, "protections": protections,
                    "wall_s": 0.31, "cpu_s": 0.22, "max_rss_mb": 61.5, "message": ""},
        "grader_version": "0.1.0", "rubric": "default", "seed": 1234, "elapsed_s": 0.42,
    }
    meta.update(more)
    return meta


def _curve(n: int, start: float, end: float, spike_at: int | None = None) -> list[float]:
    out = [end + (start - end) * math.exp(-6 * i / n) for i in range(n)]
    if spike_at is not None:
        out[spike_at] = start * 9
    return out


def array_fail(check_id="linear.backward", quantity="dW", score=0, max_score=3,
               message="Linear.backward dW: 12 of 15 entries off, max abs diff 0.8") -> CheckResult:
    return CheckResult(
        check_id, "fail", score, max_score, message,
        hints=(Hint("8e", "dW is the outer product of the upstream gradient and the input, "
                          "averaged over the batch."),),
        details={"quantity": quantity, "expected_shape": [5, 3], "got_shape": [5, 3],
                 "mismatched": 12, "total": 15, "max_abs_diff": 0.8, "max_rel_error": 0.5,
                 "worst": {"index": [2, 1], "expected": 0.12, "got": 0.24},
                 "threshold": 1e-6,
                 "suspected": "dW is twice the expected value: the batch mean is missing a 1/2."})


def gradcheck_fail() -> CheckResult:
    return CheckResult(
        "gradcheck.mlp", "fail", 1, 4, "Gradient check: b1 is off (rel error 0.5), the rest agree.",
        hints=(Hint("8b", "The bias gradient sums the upstream gradient over the batch axis."),),
        details={"rel_error": {"W1": 1e-9, "b1": 0.5, "W2": 2e-9, "b2": 3e-10, "x": 4e-9},
                 "threshold": 1e-5, "ratio": {"b1": 2.0},
                 "suspected": "b1's gradient is doubled: summed twice over the batch."})


def training(status="pass", plateau=False, spike=False, score=4, max_score=4) -> CheckResult:
    n = 60
    if plateau:
        curves = [{"label": f"seed {s}", "loss": [CHANCE + 0.002 * ((i * 7 + s) % 3) for i in range(n)],
                   "accuracy": [0.5] * n} for s in range(2)]
        verdict = "plateau at chance"
    else:
        curves = [{"label": f"seed {s}", "loss": _curve(n, 0.75, 0.02, 25 if spike and s == 0 else None),
                   "accuracy": [min(1.0, 0.5 + i / 30) for i in range(n)]} for s in range(2)]
        verdict = "spike at epoch 25, then converged" if spike else "converged"
    return CheckResult("train.xor", status, score, max_score,
                       f"XOR training: {verdict}.",
                       details={"curves": curves, "chance_loss": CHANCE, "verdict": verdict})


def passing(check_id: str, max_score: float = 2) -> CheckResult:
    return CheckResult(check_id, "pass", max_score, max_score, "Matches the reference.")


def alice() -> Result:
    checks = (passing("linear.forward", 3), array_fail(), passing("relu.forward"),
              passing("relu.backward"), gradcheck_fail(), training(spike=True),
              passing("style.vectorised", 1.5), passing("loss.forward", 2.5))
    return Result("alice_classic", checks, meta=_meta("alice_classic.py"))


def mallory() -> Result:
    """A hostile submission: markup in a message, a spreadsheet formula in free text."""
    checks = (
        CheckResult("linear.forward", "error", 0, 3,
                    "LinearTransform.forward raised ValueError: <script>alert(1)</script>",
                    details={"exception": "ValueError", "traceback_tail": "<b>line 3</b>",
                             "weird": {"nested": [1, None, "nan", {"deep": True}]}}),
        training(status="fail", plateau=True, score=0),
        CheckResult("relu.backward", "timeout", 0, 2, "ReLU.backward ran past 10 s."),
        CheckResult("gradcheck.mlp", "skipped", 0, 4, "Skipped: linear.forward failed.",
                    details=None or {}),
    )
    meta = _meta("=HYPERLINK(\"http://x\")_hw2.py", tier="plain",
                 roles={"linear": ["LinearA", "LinearB"], "relu": None, "loss": "Loss", "mlp": "Net"},
                 notes=["=HYPERLINK(\"http://evil\",\"click\")"])
    return Result("mallory", checks, meta=meta)


def broken() -> Result:
    """The grader could not grade it at all: top-level error, no checks."""
    return Result("carol_syntax", (), error="The file does not parse: line 12 has a SyntaxError.",
                  meta={"graded_file": "carol_syntax.py", "sandbox": {}})


def class_results() -> list[Result]:
    extra = []
    for i, frac in enumerate([1.0, 0.9, 0.75, 0.5, 0.25, 0.95, 0.6]):
        checks = (CheckResult("linear.forward", "pass" if frac > 0.3 else "fail",
                              3 if frac > 0.3 else 0, 3, "ok"),
                  CheckResult("linear.backward", "pass" if frac > 0.8 else "fail",
                              3 if frac > 0.8 else 0, 3, "dW"),
                  training(status="pass" if frac > 0.55 else "fail", plateau=frac <= 0.55,
                           score=4 if frac > 0.55 else 0))
        extra.append(Result(f"student{i:02d}", checks, meta=_meta(f"student{i:02d}.py")))
    return [alice(), mallory(), broken(), *extra]


def write_out(out: Path, results: list[Result]) -> Path:
    """Lay results out as a grading run does."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "score", "max_score", "error"])
        for r in results:
            r.write(out / r.id / "result.json")
            w.writerow([r.id, r.score, r.max_score, r.error or ""])
    return out
