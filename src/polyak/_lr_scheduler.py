"""The base of the schedules of :mod:`polyak.schedules`, and a rule's schedule turned into numbers.

A schedule is a closed form ηₜ = lr(t) of the epoch t (``last_epoch``: the number of
``scheduler.step()`` calls), written once per class (``_lr``), and used two ways:

- over an optimizer (:class:`polyak.optim.SGD`), torch's way: construction sets each group's
  lr to lr(0) (or, resuming with ``last_epoch=k``, to lr(k + 1)); each ``step()``, called
  after ``optimizer.step()``, advances t by one and sets lr(t);
- as a rule's per-step multipliers (``polyak.Momentum(lr, beta, schedule=...)``): step t of a
  run (1-based) takes ηₜ = lr · m[t − 1] with m[t] = lr(t) / lr, the learning rates of a
  fresh scheduler over an optimizer whose lr is the rule's.

Torch computes most schedules recursively, lr(t) from the group's lr(t − 1); here each
class has the closed form of that recursion from its start (the epoch and the group's lr
when the scheduler was made: its *anchor*), so a run's learning rates carry no accumulated
rounding, and equal torch's to rounding: from a fresh start (``_get_closed_form_lr``'s
values) and when resuming with ``last_epoch``, where torch's recursion continues from the
lr the optimizer holds. A value written into ``group["lr"]`` by hand is replaced at the
next ``step()`` (torch's recursion would carry it on): the closed form is the schedule.
"""

import warnings

import numpy as np

from polyak._scalars import real_number
from polyak._validation import as_int, finite_real_array, read_only

__all__ = ["LRScheduler", "check_schedule", "schedule_multipliers"]


class LRScheduler:
    """Base class: a learning-rate schedule over an optimizer, or a rule's multipliers.

    Subclasses check their parameters, pass them to ``__init__`` by name, and define
    ``_anchor(last_epoch, group)`` (what a group's schedule starts from) and
    ``_lr(t, anchor, group)`` (its learning rate at epochs t, an int or an int array).

    Attributes (over an optimizer)
    ------------------------------
    optimizer : polyak.optim.SGD or None
    last_epoch : int
        The epoch whose learning rates the groups hold (0 after construction, fresh).
    base_lrs : list of float
        Each group's ``initial_lr``.
    """

    def __init__(self, optimizer, last_epoch, **parameters):
        object.__setattr__(self, "_parameters", parameters)
        self.optimizer = None
        last_epoch = as_int(last_epoch, "last_epoch", minimum=-1)
        if optimizer is None:
            if last_epoch != -1:
                raise ValueError(f"last_epoch={last_epoch} resumes a scheduler over an optimizer; a schedule for a "
                                 f"rule (optimizer=None) starts at the first step")
            return
        self._bind(optimizer, last_epoch)

    # --- parameters: read as attributes, fixed at construction -------------------------------

    def __getattr__(self, name):
        parameters = self.__dict__.get("_parameters", {})
        if name in parameters:
            return parameters[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name in self.__dict__.get("_parameters", {}):
            raise AttributeError(f"{name} is fixed at construction; make a new {type(self).__name__}")
        object.__setattr__(self, name, value)

    def __repr__(self):
        shown = ", ".join(f"{name}={value!r}" for name, value in self._parameters.items())
        return f"{type(self).__name__}({shown})"

    def __eq__(self, other):
        # schedules for rules compare by their parameters; those over optimizers are each their own
        if type(other) is not type(self):
            return NotImplemented
        if self.optimizer is not None or other.optimizer is not None:
            return self is other
        return self._parameters == other._parameters

    __hash__ = None

    def unbound(self):
        """This schedule without an optimizer (its parameters only): what a rule keeps."""
        return type(self)(**self._parameters)

    # --- over an optimizer ---------------------------------------------------------------------

    def _bind(self, optimizer, last_epoch):
        from polyak.optim import SGD  # noqa: PLC0415 -- the optimizer is a layer above the rules

        if not isinstance(optimizer, SGD):
            raise TypeError(f"optimizer must be a polyak.optim.SGD (or None: a schedule for a rule); "
                            f"got {type(optimizer).__name__}")
        groups = optimizer.param_groups
        self._prepare_groups(groups, last_epoch)
        self.optimizer = optimizer
        self.base_lrs = [group["initial_lr"] for group in groups]
        self._anchors = [self._anchor(last_epoch, group) for group in groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._optimizer_steps = optimizer.steps
        self.step()

    def _prepare_groups(self, groups, last_epoch):
        """torch's: a fresh scheduler sets each group's initial_lr (if it has none) to its lr;
        a resumed one needs them (set by the run it resumes, in the optimizer's state)."""
        for i, group in enumerate(groups):
            if last_epoch == -1:
                real_number(group.get("lr"), f"param_groups[{i}]['lr']", low=0)
            elif "initial_lr" not in group:
                raise ValueError(f"param_groups[{i}] has no 'initial_lr': resuming with last_epoch={last_epoch} needs "
                                 f"the optimizer's state from the run it resumes (optimizer.load_state_dict first)")
        if last_epoch == -1:
            for group in groups:
                group.setdefault("initial_lr", group["lr"])

    def _groups(self):
        if self.optimizer is None:
            raise TypeError(f"{self!r} has no optimizer: it is a rule's schedule (pass it as schedule=); "
                            f"give an optimizer to step it")
        groups = self.optimizer.param_groups
        if len(groups) != len(self._anchors):
            raise ValueError(f"the optimizer has {len(groups)} parameter groups; this scheduler was made for "
                             f"{len(self._anchors)} (make schedulers after add_param_group)")
        return groups

    def step(self):
        """Advance one epoch and set each group's learning rate: call after ``optimizer.step()``."""
        groups = self._groups()
        if self._step_count == 1 and self.optimizer.steps == self._optimizer_steps:
            warnings.warn("scheduler.step() was called before optimizer.step(): call them in the opposite order "
                          "(as torch does), or the first value of the schedule is skipped", UserWarning, stacklevel=2)
        self._step_count += 1
        self.last_epoch += 1
        for group, anchor in zip(groups, self._anchors):
            self._apply(group, self.last_epoch, anchor)
        self._last_lr = [group["lr"] for group in groups]

    def _apply(self, group, t, anchor):
        group["lr"] = float(self._lr(t, anchor, group))

    def get_last_lr(self):
        """The learning rates the last ``step()`` (or the construction) set, one per group."""
        self._groups()
        return list(self._last_lr)

    def state_dict(self):
        """The scheduler's state (not the optimizer's): parameters, epoch, anchors, last lrs."""
        self._groups()
        return {"parameters": dict(self._parameters), "last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs),
                "anchors": [tuple(anchor) for anchor in self._anchors], "_last_lr": list(self._last_lr),
                "_step_count": self._step_count}

    def load_state_dict(self, state):
        """Restore what ``state_dict()`` returned, for a scheduler of the same class and parameters."""
        groups = self._groups()
        keys = {"parameters", "last_epoch", "base_lrs", "anchors", "_last_lr", "_step_count"}
        if not isinstance(state, dict) or set(state) != keys:
            found = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"a scheduler state is a dict with the keys {sorted(keys)} (from state_dict()); got {found}")
        if state["parameters"] != self._parameters:
            raise ValueError(f"the state is of a {type(self).__name__} with {state['parameters']}; this one has "
                             f"{self._parameters}")
        anchors = state["anchors"]
        if not isinstance(anchors, (list, tuple)) or len(anchors) != len(groups):
            raise ValueError(f"the state's anchors must be one per parameter group ({len(groups)})")
        epoch = as_int(state["last_epoch"], "the state's last_epoch", minimum=0)
        for name in ("base_lrs", "_last_lr"):
            if not isinstance(state[name], (list, tuple)) or len(state[name]) != len(groups):
                raise ValueError(f"the state's {name} must be one number per parameter group ({len(groups)})")
        self.last_epoch, self._anchors = epoch, [tuple(anchor) for anchor in anchors]
        self.base_lrs, self._last_lr = list(state["base_lrs"]), list(state["_last_lr"])
        self._step_count = as_int(state["_step_count"], "the state's _step_count", minimum=0)

    # --- as a rule's multipliers -------------------------------------------------------------

    @property
    def depends_on_lr(self):
        """True when the multipliers lr(t)/lr change with lr (absolute learning rates in the schedule)."""
        return False

    def _fresh_group(self, lr):
        """The group of a fresh optimizer with learning rate lr, before the scheduler is made."""
        return {"lr": lr, "initial_lr": lr}

    def _check_steps(self, steps):
        """A ValueError when this schedule cannot give `steps` steps (it is shorter than the run)."""

    def multipliers(self, steps, lr=1.0):
        """m[t] = lr(t) / lr for t = 0 … steps − 1: a fresh run's learning rates over `lr`.

        Step t of a rule's run (1-based) takes ηₜ = lr · m[t − 1]; these are the learning
        rates a fresh scheduler of these parameters sets on an optimizer whose lr is `lr`.
        """
        steps = as_int(steps, "steps", minimum=0)
        lr = real_number(lr, "lr", low=0, low_open=True)
        self._check_steps(steps)
        group = self._fresh_group(lr)
        return np.asarray(self._lr(np.arange(steps), self._anchor(-1, group), group), dtype=np.float64) / lr


def check_schedule(schedule):
    """A rule's schedule, checked: None, a read-only copy of an array of per-step multipliers
    (1-D, finite, >= 0), or a schedule of :mod:`polyak.schedules` without its optimizer."""
    if schedule is None:
        return None
    if isinstance(schedule, LRScheduler):
        return schedule.unbound()
    values = finite_real_array(schedule, "schedule")
    if values.ndim != 1:
        raise ValueError(f"schedule must be a 1-D array of per-step multipliers or a polyak.schedules schedule; "
                         f"got shape {values.shape}")
    if not np.all(values >= 0):
        raise ValueError(f"schedule multipliers must be >= 0; got {values.min()}")
    return read_only(np.array(values, dtype=np.float64))


def schedule_multipliers(schedule, steps, lr):
    """The (steps,) multipliers a checked schedule gives a run of `steps` steps (ones(1) for
    a constant rate or no steps, as plans hold them); `lr`: the run's learning rate(s)."""
    if schedule is None or steps == 0:
        return np.ones(1)
    if isinstance(schedule, np.ndarray):
        if schedule.size < steps:
            raise ValueError(f"schedule has {schedule.size} multipliers but steps={steps} needs {steps} "
                             f"(the schedule is shorter than the run)")
        return schedule[:steps]
    if not schedule.depends_on_lr:
        return schedule.multipliers(steps)
    rates = np.unique(np.asarray(lr, dtype=np.float64))
    if rates.size > 1:
        raise ValueError(f"{schedule!r} holds absolute learning rates, so each of the {rates.size} learning rates "
                         f"would take its own multipliers: run them one at a time, or make it relative "
                         f"(CosineAnnealingLR with eta_min=0; OneCycleLR without max_lr, each lr its peak)")
    return schedule.multipliers(steps, float(rates[0]))
