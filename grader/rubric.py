"""The instructor-editable rubric: points, thresholds, time limits, role names and hints.

A TOML file (rubrics/default.toml ships with the package). Loading validates it against
the check registry and names the bad key, so a typo fails at start-up with one line, not
halfway through a batch.
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .load import DEFAULT_PREFER
from .result import TIP_IDS, Hint
from .sandbox.base import Limits

CHECK_KEYS = {"points", "threshold", "timeout_s", "hints", "enabled", "params"}
LIMIT_KEYS = set(Limits.__dataclass_fields__)
ROLE_KEYS = {"linear", "relu", "loss", "mlp"}
INTERFACE_ROLES = ROLE_KEYS | {"module"}
INTERFACE_JOBS = {"forward", "backward", "update", "train", "evaluate", "zero_grad"}
SIMILARITY_KEYS = {"enabled", "threshold", "templates"}


class RubricError(ValueError):
    """The rubric file is unreadable or names something that does not exist."""


@dataclass(frozen=True)
class SimilaritySettings:
    """[similarity]: flag pairs of submissions that share code beyond the templates."""
    enabled: bool = True
    threshold: float = 0.5               # shared fingerprints over the smaller submission's
    templates: tuple[Path, ...] = ()     # the skeleton handed out (relative to the rubric)


@dataclass(frozen=True)
class Rubric:
    name: str
    seed: int
    checks: dict          # check id -> {"points", "threshold", "timeout_s", "hints": [Hint]}
    families: dict        # family -> Hint
    limits: Limits
    roles: dict = field(default_factory=dict)
    interface: dict = field(default_factory=dict)  # role -> {"methods": {...}, "args": {...}}
    python2: str = "convert"  # [submission] python2: "convert" with fissix, or "refuse"
    digest: str = ""      # content hash, so a cache knows when the rubric changed
    prefer: tuple = DEFAULT_PREFER  # [submission] prefer: which file is graded when several could be
    similarity: SimilaritySettings = field(default_factory=SimilaritySettings)

    def settings(self, check_id: str) -> dict:
        return self.checks[check_id]

    def enabled(self) -> list[str]:
        return [cid for cid, c in self.checks.items() if c["enabled"]]


def default_path() -> Path:
    return Path(str(resources.files("grader.rubrics") / "default.toml"))


def load_rubric(path: Path | None = None) -> Rubric:
    from .checks import REGISTRY

    path = Path(path) if path else default_path()
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except OSError as e:
        raise RubricError(f"{path}: cannot read the rubric ({e.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise RubricError(f"{path}: not valid TOML ({e})") from None
    bad = set(data) - {"rubric", "limits", "roles", "checks", "families", "interface", "submission",
                       "similarity"}
    if bad:
        raise RubricError(f"{path}: unknown table [{sorted(bad)[0]}]")
    meta = data.get("rubric", {})
    checks = {}
    for cid, spec in REGISTRY.items():
        table = data.get("checks", {}).get(cid, {})
        checks[cid] = check_settings(path, cid, table, spec)
    unknown = set(data.get("checks", {})) - set(REGISTRY)
    if unknown:
        raise RubricError(f"{path}: [checks.\"{sorted(unknown)[0]}\"] is not a check nngrader has "
                          f"(known: {', '.join(REGISTRY)})")
    rubric = Rubric(
        name=str(meta.get("name", path.stem)), seed=integer(path, "rubric.seed", meta.get("seed", 0)),
        checks=checks,
        families={k: hint(path, f"families.{k}", v) for k, v in data.get("families", {}).items()},
        limits=limits(path, data.get("limits", {})), roles=roles(path, data.get("roles", {})),
        interface=interface(path, data.get("interface", {})),
        python2=python2_policy(path, data.get("submission", {})),
        digest=rubric_digest(raw, data),
        prefer=submission_prefer(path, data.get("submission", {})),
        similarity=similarity(path, data.get("similarity", {})),
    )
    check_wall_budget(path, rubric)
    return rubric


def rubric_digest(raw: bytes, data: dict) -> str:
    """What grading depends on. [similarity] is left out: changing the threshold or the
    templates must not regrade the class (a rubric without the table hashes as before)."""
    if "similarity" not in data:
        return hashlib.sha256(raw).hexdigest()[:16]
    rest = {k: v for k, v in data.items() if k != "similarity"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:16]


WALL_MARGIN_S = 5.0  # the sandbox's own start and the harness's bookkeeping


def check_wall_budget(path, rubric: Rubric) -> None:
    """Every probe has its own time limit; the whole submission's wall limit must leave
    room for all of them, or one slow probe would cost every check, not its own."""
    from .checks import REGISTRY

    per_probe: dict[str, float] = {}
    for cid in rubric.enabled():
        probe = REGISTRY[cid].probe
        per_probe[probe] = max(per_probe.get(probe, 0.0), rubric.settings(cid)["timeout_s"])
    need = sum(per_probe.values()) + WALL_MARGIN_S
    if rubric.limits.wall_s < need:
        raise RubricError(f"{path}: limits.wall_s = {rubric.limits.wall_s:g} is less than the "
                          f"checks' time limits need ({sum(per_probe.values()):g} s for "
                          f"{len(per_probe)} probes + {WALL_MARGIN_S:g} s): raise it to {need:g}")


def known_table(path, where: str, table, allowed, called: str | None = None) -> dict:
    """`table`, checked to be a TOML table holding only `allowed` keys (`called`: how the
    table is named when it is no table at all, default `where`)."""
    if not isinstance(table, dict):
        raise RubricError(f"{path}: {called or where} must be a table, got {table!r}")
    bad = sorted(set(table) - set(allowed))
    if bad:
        raise RubricError(f"{path}: {where} has unknown key {bad[0]!r} "
                          f"(allowed: {', '.join(sorted(allowed)) or 'none'})")
    return table


def check_settings(path, cid, table, spec) -> dict:
    where = f"checks.\"{cid}\""
    known_table(path, where, table, CHECK_KEYS)
    hints = table.get("hints", [])
    if not isinstance(hints, list):
        raise RubricError(f"{path}: {where}.hints must be a list of {{tip, text}} tables, got {hints!r}")
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RubricError(f"{path}: {where}.enabled must be true or false, got {enabled!r}")
    params = known_table(path, f"{where}.params", table.get("params", {}), spec.params)
    return {
        "params": {**spec.params, **params},
        "points": number(path, f"{where}.points", table.get("points", spec.points)),
        "threshold": number(path, f"{where}.threshold", table.get("threshold", spec.threshold)),
        "timeout_s": number(path, f"{where}.timeout_s", table.get("timeout_s", 10.0)),
        "enabled": enabled,
        "hints": [hint(path, f"{where}.hints", h) for h in hints],
    }


def number(path, where: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise RubricError(f"{path}: {where} must be a number >= 0, got {value!r}")
    return float(value)


def integer(path, where: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RubricError(f"{path}: {where} must be an integer, got {value!r}")
    return value


def hint(path, where: str, h) -> Hint:
    if not isinstance(h, dict) or set(h) != {"tip", "text"}:
        raise RubricError(f"{path}: {where}: a hint is {{tip = \"8e\", text = \"...\"}}, got {h!r}")
    if str(h["tip"]) not in TIP_IDS:
        raise RubricError(f"{path}: {where}: tip {h['tip']!r} is not a tips-list id "
                          f"({', '.join(TIP_IDS)})")
    return Hint(str(h["tip"]), str(h["text"]).strip())


def limits(path, table: dict) -> Limits:
    known_table(path, "limits", table, LIMIT_KEYS)
    try:
        return Limits(**{k: type(getattr(Limits, k))(v) for k, v in table.items()})
    except (TypeError, ValueError) as e:
        raise RubricError(f"{path}: limits: {e}") from None


SUBMISSION_KEYS = {"prefer", "python2"}


def submission_table(path, table) -> dict:
    return known_table(path, "submission", table, SUBMISSION_KEYS, called="[submission]")


def submission_prefer(path, table) -> tuple:
    """[submission] prefer = ["*.ipynb", "*.py"]: file-name patterns, best first, that pick
    the file to grade when a submission holds several that could each be it."""
    table = submission_table(path, table)
    prefer = table.get("prefer", list(DEFAULT_PREFER))
    if not (isinstance(prefer, list) and prefer and all(isinstance(p, str) and p.strip() for p in prefer)):
        raise RubricError(f"{path}: submission.prefer must be a list of file-name patterns such as "
                          f"[\"*.ipynb\", \"*.py\"], got {prefer!r}")
    return tuple(p.strip() for p in prefer)


def roles(path, table: dict) -> dict:
    known_table(path, "roles", table, ROLE_KEYS)
    for key, value in table.items():
        if not (isinstance(value, str) or isinstance(value, list) and value
                and all(isinstance(v, str) for v in value)):
            raise RubricError(f"{path}: roles.{key} must be a class name or a list of class "
                              f"names, got {value!r}")
    return dict(table)


def interface(path, table: dict) -> dict:
    """[interface.ROLE] methods = {job = "name"}, args = {param = "meaning" | value}: how a
    course's own skeleton names its methods and constructor or method arguments. A
    meaning is one of the harness's (x, y, lr, momentum, l2, epochs, batch_size, ...); any
    other value (a number, true/false, {value = "text"}) is passed as it is."""
    from .harness.calling import RULES

    out = {}
    for role, spec in table.items():
        where = f"interface.{role}"
        if role not in INTERFACE_ROLES:
            raise RubricError(f"{path}: [{where}] is not a role (allowed: "
                              f"{', '.join(sorted(INTERFACE_ROLES))})")
        if not isinstance(spec, dict) or set(spec) - {"methods", "args"}:
            raise RubricError(f"{path}: [{where}] takes only methods = {{...}} and args = {{...}}")
        methods = spec.get("methods", {})
        bad = sorted(set(methods) - INTERFACE_JOBS) if isinstance(methods, dict) else ["?"]
        if bad or not all(isinstance(v, str) and v.isidentifier() for v in methods.values()):
            raise RubricError(f"{path}: {where}.methods maps a job ({', '.join(sorted(INTERFACE_JOBS))})"
                              f" to a method name, got {methods!r}")
        if role == "loss":  # the loss's forward and backward are looked up as loss methods
            methods = {("loss_" + k if k in ("forward", "backward") else k): v for k, v in methods.items()}
        args = {}
        for name, value in (spec.get("args") or {}).items():
            if isinstance(value, dict) and set(value) == {"value"}:
                value = ("literal", value["value"])
            elif isinstance(value, str) and value not in RULES:
                raise RubricError(f"{path}: {where}.args.{name} = {value!r} is no meaning nngrader "
                                  f"knows (one of {', '.join(sorted(RULES))}; for a literal text "
                                  f"write {{value = {value!r}}})")
            args[name] = value
        out[role] = {"methods": dict(methods), "args": args}
    return out


def python2_policy(path, table: dict) -> str:
    """[submission] python2 = "convert" (fissix) or "refuse"."""
    value = submission_table(path, table).get("python2", "convert")
    if value not in ("convert", "refuse"):
        raise RubricError(f"{path}: submission.python2 must be \"convert\" or \"refuse\", got {value!r}")
    return value


def similarity(path, table) -> SimilaritySettings:
    known_table(path, "similarity", table, SIMILARITY_KEYS)
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RubricError(f"{path}: similarity.enabled must be true or false, got {enabled!r}")
    threshold = number(path, "similarity.threshold", table.get("threshold", SimilaritySettings.threshold))
    if threshold > 1:
        raise RubricError(f"{path}: similarity.threshold is a fraction of shared code, "
                          f"between 0 and 1; got {threshold:g}")
    templates = table.get("templates", [])
    if isinstance(templates, str):
        templates = [templates]
    if not isinstance(templates, list) or not all(isinstance(t, str) for t in templates):
        raise RubricError(f"{path}: similarity.templates must be a list of file names, got {templates!r}")
    found = tuple((Path(path).parent / t) for t in templates)
    for t, name in zip(found, templates):
        if not t.exists():
            raise RubricError(f"{path}: similarity.templates: {name} not found (looked for {t})")
    return SimilaritySettings(enabled, threshold, found)
