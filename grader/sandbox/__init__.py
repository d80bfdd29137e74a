"""Sandbox backends behind one interface (see base.py): pick one by name."""
from __future__ import annotations

from .base import Limits, RunOutcome, Sandbox, SandboxUnavailable
from .plain import PlainSandbox

__all__ = ["Limits", "RunOutcome", "Sandbox", "SandboxUnavailable", "open_sandbox", "NAMES"]

NAMES = ("auto", "strict", "plain", "docker")


def open_sandbox(name: str = "auto") -> Sandbox:
    """Return the backend called `name`; raise SandboxUnavailable when it cannot run here."""
    if name in ("auto", "plain"):
        return PlainSandbox()
    if name == "strict":
        raise SandboxUnavailable("full isolation is not available on this host")
    if name == "docker":
        raise SandboxUnavailable("the Docker backend is not available on this host")
    raise SandboxUnavailable(f"unknown sandbox {name!r}; choose one of {', '.join(NAMES)}")
