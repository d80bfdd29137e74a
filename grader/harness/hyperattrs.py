"""Hyper-parameters a student keeps as attributes (self.lr, a solver's momentum, a config
dict's l2): found by whole name and set to the values a probe needs."""
import functools
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


@functools.lru_cache(maxsize=4096)
def hyper_key(name):
    """'lr', 'momentum' or 'l2' for an attribute name that holds one, else None (cached:
    the same few names are asked about at every training step)."""
    return next((k for k, rx in HYPER_ATTRS.items() if rx.match(name)), None)


def set_hyper_attrs(obj, lr, momentum, l2, extra=()):
    """Set hyper-parameters the student keeps (self.lr, self.solver.momentum,
    self.config['lr'], each layer's self.learning_rate; in `extra`, the classes and
    modules whose own attributes or globals hold them: MLP.lr = 0.1, LEARNING_RATE = 0.1);
    returns which of lr, momentum, l2 found a place."""
    return apply_hyper(hyper_targets(obj, extra), lr, momentum, l2)


def hyper_targets(obj, extra=()):
    """(holder, name, which) for every number kept under a hyper-parameter's name in obj,
    what it holds (3 levels deep) and `extra`. Found once, set at every step."""
    targets = []
    holders = [obj] + [v for _, v in walk(obj, 3) if walkable(v)] + list(extra)
    for value in holders:
        if isinstance(value, (list, tuple)):
            continue
        try:
            items = list(value.items()) if isinstance(value, dict) else list(vars(value).items())
        except TypeError:
            continue
        for name, item in items:
            if not isinstance(item, (int, float)) or isinstance(item, bool) or not isinstance(name, str):
                continue
            which = hyper_key(name)
            if which is not None:
                targets.append((value, name, which))
    return targets


def apply_hyper(targets, lr, momentum, l2):
    offered = hyper(lr, momentum, l2)
    found = set()
    for holder, name, which in targets:
        is_dict = isinstance(holder, dict)
        current = holder.get(name) if is_dict else getattr(holder, name, None)
        new = float(offered[which]) if isinstance(current, float) else offered[which]
        try:
            if is_dict:
                holder[name] = new
            else:
                setattr(holder, name, new)
        except (AttributeError, TypeError):  # a read-only attribute or mapping proxy
            continue
        found.add(which)
    return found
