"""`--only`: run some checks, and only the probes they need.

A selection names check families (`linear`, `relu`, `loss`, `gradcheck`, ...) or full check
ids (`linear.backward`), so a student can check one layer as soon as it is written. The
probes are those the full run would send for these checks (same inputs, limits and
parameters), so every verdict is the one the full run gives; only the total differs.
"""
from __future__ import annotations

from typing import Iterable

from .checks import REGISTRY


class SelectionError(ValueError):
    """`only` names no check nngrader has: one line listing the valid names."""


def families() -> list[str]:
    return list(dict.fromkeys(cid.split(".")[0] for cid in REGISTRY))


def names(only: str | Iterable[str] | None) -> list[str] | None:
    """'linear,relu' or ['linear', 'relu'] -> ['linear', 'relu']; None when empty."""
    if only is None:
        return None
    items = [only] if isinstance(only, str) else list(only)
    if not all(isinstance(i, str) for i in items):
        raise SelectionError(f"only= takes check names as text, got {only!r}")
    out = [p.strip() for item in items for p in item.split(",") if p.strip()]
    return list(dict.fromkeys(out)) or None


def select(enabled: list[str], only: str | Iterable[str] | None) -> list[str]:
    """The enabled checks the selection names, in report order (all of them for None)."""
    wanted = names(only)
    if wanted is None:
        return list(enabled)
    for name in wanted:
        if not any(matches(cid, name) for cid in REGISTRY):
            raise SelectionError(f"{name!r} is not a check nngrader has: choose from "
                                 f"{', '.join(families())} (or a full check id such as "
                                 "linear.backward)")
    chosen = [cid for cid in enabled if any(matches(cid, n) for n in wanted)]
    if not chosen:
        raise SelectionError(f"the rubric turns off every check in {', '.join(wanted)}")
    return chosen


def matches(check_id: str, name: str) -> bool:
    return check_id == name or check_id.startswith(name + ".")


def probes_read(checks: Iterable[str]) -> set[str]:
    """Every probe these checks read: their own, and those they consult."""
    return {p for cid in checks for p in (REGISTRY[cid].probe, *REGISTRY[cid].reads)}
