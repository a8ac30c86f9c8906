"""The parameter groups of :class:`polyak.optim.SGD`: what a group may hold, checked where it enters.

A group is a dict, as in ``torch.optim.SGD``: ``"params"`` (a list of arrays) and the
hyperparameters, those it leaves out taken from the optimizer's defaults. A scheduler of
:mod:`polyak.schedules` adds the keys it keeps per group (``initial_lr``; OneCycleLR's
``max_lr``, ``min_lr``, ``max_momentum``, ``base_momentum``), as torch's schedulers do. Any
other key is an error: a misspelt ``"learning_rate"`` would otherwise do nothing.
"""

import functools

import numpy as np

from polyak._scalars import flag, real_number
from polyak.rules import NEGATED_VELOCITY, canonical_coefficients, check_form

#: The hyperparameters of a group, in the order of torch's SGD.
HYPERPARAMETERS = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")
#: The keys the schedulers of polyak.schedules (and torch's) keep in a group.
SCHEDULER_KEYS = ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum")
#: Every key a group may hold.
GROUP_KEYS = frozenset(("params",) + HYPERPARAMETERS + SCHEDULER_KEYS)
#: Keys of torch's SGD groups that mean nothing here (how torch runs its kernels, parameter
#: names): a torch state's groups may carry them; they are dropped on loading.
TORCH_ONLY_KEYS = frozenset(("foreach", "differentiable", "fused", "capturable", "param_names"))


def check_hyperparameters(settings, convention, where=""):
    """torch.optim.SGD's checks of one group's hyperparameters, plus the convention's.

    `settings` holds every name of HYPERPARAMETERS; `where` prefixes the messages (which
    group). ValueError or TypeError saying what was received and what is allowed.
    """
    for name in ("lr", "momentum", "dampening", "weight_decay"):
        real_number(settings[name], f"{where}{name}")
    for name in ("nesterov", "maximize"):
        flag(settings[name], f"{where}{name}")
    if settings["lr"] < 0:
        raise ValueError(f"{where}Invalid learning rate (lr): {settings['lr']} (must be >= 0)")
    if settings["momentum"] < 0:
        raise ValueError(f"{where}Invalid momentum value: {settings['momentum']} (must be >= 0)")
    if settings["weight_decay"] < 0:
        raise ValueError(f"{where}Invalid weight_decay value: {settings['weight_decay']} (must be >= 0)")
    if settings["nesterov"] and (settings["momentum"] <= 0 or settings["dampening"] != 0):
        raise ValueError(f"{where}Nesterov momentum requires a momentum and zero dampening")
    check_form(convention, settings["dampening"], settings["nesterov"])  # what each convention allows


def check_group_values(group, convention, where):
    """A group's keys and values (not its params): all of GROUP_KEYS' kinds, nothing else."""
    unknown = sorted(str(key) for key in group if key not in GROUP_KEYS)
    if unknown:
        raise ValueError(f"{where}has unknown keys {unknown}; a group holds 'params', the hyperparameters "
                         f"{list(HYPERPARAMETERS)} and the schedulers' {list(SCHEDULER_KEYS)}")
    missing = [name for name in HYPERPARAMETERS if name not in group]
    if missing:
        raise ValueError(f"{where}lacks {missing}")
    check_hyperparameters(group, convention, where)
    for key in SCHEDULER_KEYS:
        if key in group:
            real_number(group[key], f"{where}{key}")


def group_list(params):
    """The raw groups `params` describes: a list of arrays is one group; a list of dicts, one each."""
    if isinstance(params, (np.ndarray, dict)) or not hasattr(params, "__iter__"):
        raise TypeError(f"params must be a list of NumPy arrays or of parameter groups (dicts with 'params'); "
                        f"got {type(params).__name__}")
    items = list(params)
    if not items:
        raise ValueError("params is empty: give at least one array or parameter group")
    dicts = [isinstance(item, dict) for item in items]
    if all(dicts):
        return items
    if any(dicts):
        raise TypeError("params must be a list of arrays or a list of parameter groups (dicts), not both")
    return [{"params": items}]


def new_group(raw, defaults, convention, index):
    """The group `raw` (a dict) made whole: its params a list, the defaults filled in, checked.

    ``raw["params"]`` may be one array or an iterable of them (not a set: its order is not
    fixed); the arrays themselves are checked by the caller.
    """
    where = f"param_groups[{index}]: "
    if not isinstance(raw, dict):
        raise TypeError(f"a parameter group must be a dict with 'params'; got {type(raw).__name__}")
    if "params" not in raw:
        raise ValueError(f"{where}a parameter group needs 'params' (the list of its arrays); got keys {sorted(raw)}")
    params = raw["params"]
    if isinstance(params, (set, frozenset)):
        raise TypeError(f"{where}params must be an ordered list (a set's order changes between runs)")
    if isinstance(params, np.ndarray):
        params = [params]
    elif not hasattr(params, "__iter__") or isinstance(params, (str, dict)):
        raise TypeError(f"{where}params must be a list of NumPy arrays; got {type(params).__name__}")
    group = {**defaults, **raw, "params": list(params)}
    check_group_values(group, convention, where)
    return group


def hyperparameter_values(group):
    """The group's hyperparameters as a tuple in HYPERPARAMETERS' order (KeyError if one is gone)."""
    return tuple(group[name] for name in HYPERPARAMETERS)


@functools.lru_cache(maxsize=256)
def _coefficient_basis(convention, momentum, dampening, nesterov, first):
    """(a, k, e) at η = 0 and their change per unit η: each is affine in η (canonical_coefficients)."""
    at_zero = canonical_coefficients(convention, 0.0, momentum, nesterov=nesterov, dampening=dampening,
                                     first_step=first)
    at_one = canonical_coefficients(convention, 1.0, momentum, nesterov=nesterov, dampening=dampening,
                                    first_step=first)
    return tuple((float(zero), float(one) - float(zero)) for zero, one in zip(at_zero, at_one))


def kernel_rows(convention, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """The fused kernel's two rows of constants for a group: its later steps, and a buffer's first.

    Columns as ``_kernels._sgd.COLUMN_NAMES``: sign (−1 when maximizing), coupled weight decay,
    decoupled weight decay (lr·wd, Keras), β, and the canonical update's (a, k, e) at η = lr
    (from :func:`polyak.rules.canonical_coefficients`, which is affine in η: evaluated at 0
    and 1 once per form, so a new lr each step costs no call into it). Without momentum
    there is no buffer and the step is p −= lr·g in every convention.
    """
    keras = convention == NEGATED_VELOCITY  # Keras' weight decay is decoupled
    rows = []
    for first in (False, True):
        (a0, da), (k0, dk), (e0, de) = _coefficient_basis(convention, float(momentum), float(dampening),
                                                          bool(nesterov), first)
        rows.append((-1.0 if maximize else 1.0, 0.0 if keras else float(weight_decay),
                     lr * weight_decay if keras else 0.0, float(momentum), a0 + da * lr,
                     k0 + dk * lr if momentum != 0 else float(lr), e0 + de * lr, float(momentum != 0),
                     float(first)))
    return rows
