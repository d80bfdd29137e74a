"""Sandbox backends behind one interface (see base.py): pick one by name.

auto    the strongest tier this host allows, probed once (probe.py): namespaces with an
        own uid and cgroups as root, namespaces in a user namespace otherwise, and the
        plain rlimit tier (reported as not isolated) where there are no namespaces;
strict  the root namespace tier or nothing (SandboxUnavailable);
plain   rlimits, a new session and a wall-clock kill only;
docker  a fresh container per submission (docker.py).
"""
from __future__ import annotations

from .base import Limits, RunOutcome, Sandbox, SandboxUnavailable
from .plain import PlainSandbox

__all__ = ["Limits", "RunOutcome", "Sandbox", "SandboxUnavailable", "open_sandbox", "NAMES"]

NAMES = ("auto", "strict", "plain", "docker")


def open_sandbox(name: str = "auto") -> Sandbox:
    """Return the backend called `name`; raise SandboxUnavailable when it cannot run here."""
    if name == "plain":
        return PlainSandbox()
    if name in ("auto", "strict"):
        return _namespaced(strict=name == "strict")
    if name == "docker":
        from .docker import DockerSandbox
        return DockerSandbox()
    raise SandboxUnavailable(f"unknown sandbox {name!r}; choose one of {', '.join(NAMES)}")


def _namespaced(strict: bool) -> Sandbox:
    from .embedded import POOL, EmbeddedSandbox
    from .probe import probe
    POOL.prestart()  # no-op when the CLI started one already (cli.warm_sandbox)
    caps = probe()
    if caps.namespaces and (caps.root or not strict):
        return EmbeddedSandbox(userns=caps.userns, cgroup_kind=caps.cgroup_kind,
                               zygote=caps.zygote)
    if strict:
        why = caps.why or "not running as root (only user namespaces are available)"
        raise SandboxUnavailable(f"full isolation is not available on this host: {why}")
    return PlainSandbox()  # its protections already say "not isolated"
