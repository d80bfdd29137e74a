"""Hyper-parameters a student keeps as attributes (self.lr, a solver's momentum, a config
dict's l2): found by whole name and set to the values a probe needs."""
import re

from .calling import hyper
from .params import walk, walkable


# attribute names that hold a hyper-parameter (whole names only: self.epsilon or
# self.lr_decay must never be overwritten with a learning rate)
HYPER_ATTRS = {
    "lr": re.compile(r"^_?(lr|eta|alpha|learning_?rate|step_?size|lr_?rate|l_?rate|learn_?rate|lrate)$", re.I),
    "momentum": re.compile(r"^_?(mu|momentum|mom|mtm|beta|rho|momentum_?(rate|coef|factor|term))$", re.I),
    "l2": re.compile(r"^_?(l2|l2_?penalty|l2_?reg|l2_?lambda|l2_?coef|l2_?p|reg|reg_?lambda|reg_?strength|"
                     r"lam|lamb|lambd|lambda_|lmbda|weight_?decay|wd|penalty|regularization|regularisation)$", re.I),
}


def set_hyper_attrs(obj, lr, momentum, l2, extra=()):
    """Set hyper-parameters the student keeps (self.lr, self.solver.momentum,
    self.config['lr'], each layer's self.learning_rate; in `extra`, the classes and
    modules whose own attributes or globals hold them: MLP.lr = 0.1, LEARNING_RATE = 0.1);
    returns which of lr, momentum, l2 found a place."""
    offered = hyper(lr, momentum, l2)
    found = set()
    holders = [obj] + [v for _, v in walk(obj, 3) if walkable(v)] + list(extra)
    for value in holders:
        if isinstance(value, (list, tuple)):
            continue
        if isinstance(value, dict):
            items = list(value.items())
        else:
            try:
                items = list(vars(value).items())
            except TypeError:
                continue
        for name, item in items:
            if not isinstance(name, str) or isinstance(item, bool) or not isinstance(item, (int, float)):
                continue
            m = next((k for k, rx in HYPER_ATTRS.items() if rx.match(name)), None)
            if m is None:
                continue
            new = float(offered[m]) if isinstance(item, float) else offered[m]
            try:
                if isinstance(value, dict):
                    value[name] = new
                else:
                    setattr(value, name, new)
            except (AttributeError, TypeError):  # a read-only attribute or mapping proxy
                continue
            found.add(m)
    return found
