"""Sandbox backends behind one interface (see base.py): pick one by name.

auto       the strongest tier this host allows, probed once (probe.py): namespaces with an
           own uid and cgroups as root, namespaces in a user namespace otherwise; where no
           namespace can be made (root without CAP_SYS_ADMIN: Docker's defaults,
           Gradescope, most CI) the container tier (container.py: own uid, chroot, seccomp);
           else the plain rlimit tier, reported as not isolated;
strict     the same choice, refused (SandboxUnavailable) below the `container` tier;
strict:T   refused below tier T, e.g. strict:namespaces;
plain      rlimits, a new session and a wall-clock kill only;
container  the container tier, even where namespaces would work;
docker     a fresh container per submission (docker.py).
"""
from __future__ import annotations

from .base import Limits, RunOutcome, Sandbox, SandboxUnavailable
from .plain import PlainSandbox

__all__ = ["Limits", "RunOutcome", "Sandbox", "SandboxUnavailable", "open_sandbox", "NAMES",
           "LEVELS", "level", "failed_as_recalled"]

# Tiers from weakest to strongest, for `strict`; docker (chosen by name only) counts as the top.
LEVELS = ("plain", "container", "namespaces-userns", "namespaces")
STRICT_DEFAULT = "container"
NAMES = ("auto", "strict", *(f"strict:{t}" for t in LEVELS[1:]), "plain", "container", "docker")


def level(sandbox) -> int:
    """Where a sandbox stands in LEVELS; a tier that reports itself not isolated (plain,
    or the container tier without its seccomp filter) stands at the bottom."""
    if not getattr(sandbox, "isolated", False):
        return 0
    return len(LEVELS) if sandbox.tier == "docker" else LEVELS.index(sandbox.tier)


def open_sandbox(name: str = "auto", recalled: bool = False) -> Sandbox:
    """Return the backend called `name`; raise SandboxUnavailable when it cannot run here.
    `recalled`: the tier may come from the answer remembered for this host context
    (probe.py), for a single check; a run that then fails is failed_as_recalled()."""
    if name == "plain":
        return PlainSandbox()
    if name == "auto":
        return _best(recalled)
    if name == "strict" or name.startswith("strict:"):
        minimum = name.partition(":")[2] or STRICT_DEFAULT
        if minimum not in LEVELS[1:]:
            raise SandboxUnavailable(f"unknown tier {minimum!r} after strict:; choose one of "
                                     f"{', '.join(LEVELS[1:])}")
        sandbox = _best(recalled)
        if level(sandbox) < LEVELS.index(minimum):
            from .probe import probe
            why = probe().why or "not running as root"
            raise SandboxUnavailable(f"the best tier on this host is {sandbox.tier!r}"
                                     f"{'' if sandbox.isolated else ' (not isolated)'}, below "
                                     f"{minimum!r} ({why})")
        return sandbox
    if name == "container":
        from .container import ContainerSandbox
        return ContainerSandbox()
    if name == "docker":
        from .docker import DockerSandbox
        return DockerSandbox()
    raise SandboxUnavailable(f"unknown sandbox {name!r}; choose one of {', '.join(NAMES)}")


def _best(recalled: bool = False) -> Sandbox:
    from .embedded import POOL, EmbeddedSandbox
    from .probe import probe
    POOL.prestart()  # no-op when the CLI started one already (cli.warm_sandbox)
    caps = probe(recalled)
    if caps.namespaces:
        sandbox = EmbeddedSandbox(userns=caps.userns, cgroup_kind=caps.cgroup_kind,
                                  zygote=caps.zygote)
    elif caps.container:
        from .container import ContainerSandbox
        sandbox = ContainerSandbox(zygote=caps.zygote)
    else:
        return PlainSandbox()  # its protections already say "not isolated"
    sandbox.recalled = caps.remembered
    return sandbox


def failed_as_recalled(sandbox, outcome_status: str | None) -> bool:
    """Whether a run failed in a tier taken from a remembered answer: then the answer is
    forgotten, and the caller opens the sandbox again (a real probe) and reruns."""
    if outcome_status != "internal" or not getattr(sandbox, "recalled", False):
        return False
    from .probe import forget
    forget()
    return True
