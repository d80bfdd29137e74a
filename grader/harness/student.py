"""What the plan tells the harness about a submission: which class plays which role, the
module to import, and the rubric's [interface] table, which names a course's own methods
and constructor arguments when nngrader cannot guess them."""
import importlib

from . import names
from .boundary import ProbeError

JOBS = {"forward": names.FORWARD, "backward": names.BACKWARD, "update": names.UPDATE,
        "loss_forward": names.LOSS_FORWARD, "loss_backward": names.LOSS_BACKWARD,
        "train": names.TRAIN, "evaluate": names.EVALUATE, "zero_grad": names.ZERO_GRAD}


class Student:
    def __init__(self, plan):
        self.roles = plan.get("roles") or {}
        self.module_name = plan.get("module")
        self.module_names = plan.get("modules") or [self.module_name]
        self.interface = plan.get("interface") or {}
        self.resets_gradients = bool(plan.get("resets_gradients"))  # calls zero_grad() itself

    def module(self):
        return importlib.import_module(self.module_name)

    def modules(self):
        """The graded module, then the submission's other modules (a package's training.py
        may hold the training loop or evaluate), each importable one."""
        out = [self.module()]
        for name in self.module_names:
            if name != self.module_name and not name.endswith("__init__"):
                try:
                    out.append(importlib.import_module(name))
                except Exception:  # noqa: BLE001 - a helper module that cannot load alone
                    continue
        return out

    def config_keys(self):
        """Keys of the configuration dicts the student's modules define (CONFIG = {...})."""
        keys = []
        for m in self.modules():
            for v in list(vars(m).values()):
                if isinstance(v, dict) and 0 < len(v) <= 64 and all(isinstance(k, str) for k in v):
                    keys += list(v)
        return tuple(dict.fromkeys(keys))

    def cls(self, role):
        ref = self.roles.get(role)
        if not ref:
            raise ProbeError(f"no class plays the {role} role")
        return resolve(ref[1] if isinstance(ref, list) and role == "crossentropy" else ref)

    def loss_classes(self):
        """(Sigmoid class or None, loss class): the loss may be split in two classes."""
        ref = self.roles.get("loss")
        if isinstance(ref, list):
            return resolve(ref[0]), resolve(ref[1])
        if not ref:
            raise ProbeError("no class plays the loss role")
        return None, resolve(ref)

    def layer_classes(self):
        """label -> class for every layer role present (linear, relu, loss or sigmoid and
        crossentropy): the classes the tracer watches."""
        out = {}
        for role in ("linear", "relu", "loss"):
            ref = self.roles.get(role)
            if isinstance(ref, list):
                out["sigmoid"], out["crossentropy"] = resolve(ref[0]), resolve(ref[1])
            elif ref:
                out[role] = resolve(ref)
        return out

    def methods(self, role, job):
        """Method names to try for a job (forward, backward, update, train, ...) of a role,
        the [interface] table's name first."""
        named = ((self.interface.get(role) or {}).get("methods") or {}).get(job)
        default = JOBS.get(job, (job,))
        return (named,) + default if named else default

    def args(self, role):
        """[interface] parameter name -> meaning or fixed value, for one role's methods."""
        return dict((self.interface.get(role) or {}).get("args") or {})


def resolve(ref):
    """'module:Class' -> the class, importing the student's module on first use."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)
