"""Judge: run every enabled check on the observations, on the grader's side only.

A check that raises is the grader's fault, not the student's: it becomes an `error` verdict
whose message says so, and is listed apart by the batch summary.
"""
from __future__ import annotations

import traceback

from .checks import REGISTRY
from .checks.base import Context, Verdict

INTERNAL = "internal grader error"


def judge(ctx: Context, check_ids: list[str]) -> dict[str, Verdict]:
    verdicts = {}
    for cid in check_ids:
        try:
            verdicts[cid] = REGISTRY[cid].run(ctx)
        except Exception as e:  # a bug in nngrader: never blame the student for it
            verdicts[cid] = Verdict("error", f"{INTERNAL} in {cid} ({type(e).__name__}: {e}); "
                                    "please report it", {"internal": traceback.format_exc(limit=4)})
    return verdicts
