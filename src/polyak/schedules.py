"""Learning-rate schedules with the formulas of ``torch.optim.lr_scheduler``, in closed form.

With η₀ a parameter group's ``initial_lr`` (its lr when the scheduler was made) and t the
epoch (``last_epoch``: how many times ``step()`` was called), a fresh run's learning rate is

=====================  ==============================================================
StepLR                 η₀ · γ^⌊t / step_size⌋
MultiStepLR            η₀ · γ^(number of milestones ≤ t)
ExponentialLR          η₀ · γ^t
LinearLR               η₀ · (s + (e − s) · min(t, T) / T)        s, e: start/end factor
CosineAnnealingLR      η_min + (η₀ − η_min) · (1 + cos(π t / T_max)) / 2
OneCycleLR             from max_lr / div_factor up to max_lr (the first pct_start of
                       total_steps), then down to that / final_div_factor: each phase a
                       cosine (or linear) interpolation; momentum the other way round
=====================  ==============================================================

Each is usable two ways, with the same formula:

- **over an optimizer**, as in torch: ``scheduler = CosineAnnealingLR(optimizer, T_max=100)``
  sets each group's lr to its value at t = 0; call ``scheduler.step()`` after each
  ``optimizer.step()``; ``get_last_lr()``; ``last_epoch=k`` resumes a run whose optimizer
  state (with its groups' ``initial_lr``) was loaded, continuing from the lr the optimizer
  holds, as torch's recursion does (so ExponentialLR, LinearLR and CosineAnnealingLR keep
  that lr at construction, StepLR and MultiStepLR apply a decay that falls on k + 1);
- **as a rule's schedule**: ``polyak.Momentum(0.1, 0.9, schedule=CosineAnnealingLR(T_max=100))``
  takes ηₜ = 0.1 · m[t − 1] at step t with m[t] = lr(t)/0.1 (``multipliers``): the learning
  rates this schedule would set on an optimizer with lr 0.1, so a schedule studied on a
  quadratic is the one used in training. A rule's lr may be one per problem when the
  multipliers do not depend on it (all but CosineAnnealingLR with eta_min ≠ 0 and OneCycleLR
  with max_lr given: in a rule, OneCycleLR's max_lr defaults to the rule's lr).

Torch's recursion and these closed forms agree to rounding (tests/test_schedules.py compares
them over 300 steps, with restarts); a value written into ``group["lr"]`` by hand is replaced
at the next ``step()`` instead of being carried on. See :mod:`polyak._lr_scheduler`.
"""

import numpy as np

from polyak._lr_scheduler import LRScheduler
from polyak._scalars import flag, real_number
from polyak._validation import as_int

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "LinearLR", "CosineAnnealingLR", "OneCycleLR"]


def _required(value, name, schedule):
    if value is None:
        raise TypeError(f"{schedule} needs {name}")
    return value


class _Factor(LRScheduler):
    """A schedule that multiplies each group's lr: lr(t) = L · ratio(t, r), with L the group's lr
    when the scheduler was made and r the epoch that lr stands for (``_reference``)."""

    def _reference(self, last_epoch):
        raise NotImplementedError

    def _ratio(self, t, reference):
        raise NotImplementedError

    def _anchor(self, last_epoch, group):
        return (float(group["lr"]), self._reference(last_epoch))

    def _lr(self, t, anchor, group):
        lr, reference = anchor
        return lr * self._ratio(np.asarray(t), reference)


class StepLR(_Factor):
    """η₀ · γ^⌊t / step_size⌋: the learning rate times γ every step_size epochs.

    Parameters
    ----------
    optimizer : polyak.optim.SGD, optional
        None for a rule's schedule.
    step_size : int >= 1
    gamma : float >= 0
    last_epoch : int
        -1 (a fresh start) or the epoch a resumed run had reached.
    """

    def __init__(self, optimizer=None, step_size=None, gamma=0.1, last_epoch=-1):
        step_size = as_int(_required(step_size, "step_size", "StepLR"), "step_size", minimum=1)
        super().__init__(optimizer, last_epoch, step_size=step_size, gamma=real_number(gamma, "gamma", low=0))

    def _reference(self, last_epoch):
        return last_epoch  # torch applies the decay that falls on the first epoch it steps to

    def _ratio(self, t, reference):
        return self.gamma ** (np.maximum(t, 0) // self.step_size - max(reference, 0) // self.step_size)


class MultiStepLR(_Factor):
    """η₀ · γ^(number of milestones ≤ t): the learning rate times γ at each milestone.

    Parameters
    ----------
    optimizer : polyak.optim.SGD, optional
    milestones : iterable of int >= 0
        Epochs; one listed n times decays by γⁿ there (torch counts them so).
    gamma : float >= 0
    last_epoch : int
    """

    def __init__(self, optimizer=None, milestones=None, gamma=0.1, last_epoch=-1):
        milestones = _required(milestones, "milestones", "MultiStepLR")
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
            raise TypeError(f"milestones must be a list of epochs (integers >= 0); got {milestones!r}")
        milestones = tuple(sorted(as_int(m, "milestones", minimum=0) for m in milestones))
        super().__init__(optimizer, last_epoch, milestones=milestones, gamma=real_number(gamma, "gamma", low=0))

    def _reference(self, last_epoch):
        return last_epoch

    def _ratio(self, t, reference):
        passed = np.searchsorted(self.milestones, t, side="right") - np.searchsorted(self.milestones, reference,
                                                                                      side="right")
        return self.gamma ** passed


class ExponentialLR(_Factor):
    """η₀ · γ^t: the learning rate times γ every epoch.

    Parameters
    ----------
    optimizer : polyak.optim.SGD, optional
    gamma : float >= 0
    last_epoch : int
    """

    def __init__(self, optimizer=None, gamma=None, last_epoch=-1):
        gamma = real_number(_required(gamma, "gamma", "ExponentialLR"), "gamma", low=0)
        super().__init__(optimizer, last_epoch, gamma=gamma)

    def _reference(self, last_epoch):
        return last_epoch + 1  # torch keeps the optimizer's lr at construction

    def _ratio(self, t, reference):
        return self.gamma ** (t - reference)


class LinearLR(_Factor):
    """η₀ · (s + (e − s) · min(t, T) / T): the factor from s to e over T epochs, then e.

    Parameters
    ----------
    optimizer : polyak.optim.SGD, optional
    start_factor : float in (0, 1]
    end_factor : float in [0, 1]
    total_iters : int >= 1
    last_epoch : int
    """

    def __init__(self, optimizer=None, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        super().__init__(optimizer, last_epoch,
                         start_factor=real_number(start_factor, "start_factor", low=0, low_open=True, high=1),
                         end_factor=real_number(end_factor, "end_factor", low=0, high=1),
                         total_iters=as_int(total_iters, "total_iters", minimum=1))

    def _factor(self, t):
        return self.start_factor + (self.end_factor - self.start_factor) * np.minimum(self.total_iters, t) \
            / self.total_iters

    def _reference(self, last_epoch):
        return -1 if last_epoch == -1 else last_epoch + 1  # fresh: lr(0) = L·s; resumed: L kept

    def _ratio(self, t, reference):
        if reference == -1:
            return self._factor(t)
        if reference >= self.total_iters:  # past the ramp: torch leaves the lr as it is
            return np.ones(np.shape(t))
        return self._factor(t) / self._factor(reference)


class CosineAnnealingLR(LRScheduler):
    """η_min + (η₀ − η_min) · (1 + cos(π t / T_max)) / 2: half a cosine from η₀ down to η_min
    over T_max epochs, and back up over the next T_max (torch's curve, periodic).

    Parameters
    ----------
    optimizer : polyak.optim.SGD, optional
    T_max : int >= 1
    eta_min : float >= 0
        An absolute learning rate: in a rule, the multipliers then depend on the rule's lr.
    last_epoch : int

    Resumed (or made on a group whose lr is not η₀), it follows torch's recursion in
    closed form: η_min + (L − η_min)·g(t)/g(a) with g(t) = 1 + cos(π t/T_max), from the epoch
    a it was made at and the lr L then, until g reaches 0 (t an odd multiple of T_max), after
    which torch's recursion, and this, is the formula above.
    """

    def __init__(self, optimizer=None, T_max=None, eta_min=0.0, last_epoch=-1):  # noqa: N803 -- torch's name
        T_max = as_int(_required(T_max, "T_max", "CosineAnnealingLR"), "T_max", minimum=1)  # noqa: N806
        super().__init__(optimizer, last_epoch, T_max=T_max, eta_min=real_number(eta_min, "eta_min", low=0))

    @property
    def depends_on_lr(self):
        return self.eta_min != 0

    def _g(self, t):
        return 1 + np.cos(np.pi * t / self.T_max)

    def _anchor(self, last_epoch, group):
        return (last_epoch + 1, float(group["lr"]), float(group["initial_lr"]))

    def _lr(self, t, anchor, group):
        t = np.asarray(t)
        start, lr, base = anchor
        low, period = self.eta_min, self.T_max
        closed = low + (base - low) * self._g(t) / 2
        zero = period * (2 * max(0, -(-(start - period) // (2 * period))) + 1)  # first odd multiple of T_max >= start
        if start < zero:
            return np.where(t <= zero, low + self._g(t) / self._g(start) * (lr - low), closed)
        # made at a zero of g: torch's recursion adds (η₀ − η_min)(1 − cos(π/T_max))/2, then goes on from there
        after = lr + (base - low) * (1 - np.cos(np.pi / period)) / 2
        resumed = low + self._g(t) / self._g(start + 1) * (after - low)
        return np.where(t == start, lr, np.where(t <= zero + 2 * period, resumed, closed))


class OneCycleLR(LRScheduler):
    """The 1cycle policy (torch's OneCycleLR): up from max_lr/div_factor to max_lr over the first
    pct_start of total_steps, then down to max_lr/(div_factor·final_div_factor); with
    three_phase, back to max_lr/div_factor first. Each phase anneals from its start value a to
    its end value b as p goes from 0 to 1: cos: b + (a − b)(1 + cos πp)/2; linear: a + (b − a)p.

    Parameters
    ----------
    optimizer : polyak.optim.SGD, optional
    max_lr : float > 0, or a list of them (one per group); optional in a rule (the rule's lr)
    total_steps : int >= 1, or epochs and steps_per_epoch (their product)
    pct_start : float in [0, 1]
    anneal_strategy : "cos" or "linear"
    cycle_momentum : bool
        Cycle each group's momentum from max_momentum down to base_momentum and back, as torch
        does (its default, True). A rule's β is constant: in a rule this must be False.
    base_momentum, max_momentum : float >= 0, or lists (one per group)
    div_factor, final_div_factor : float > 0
    three_phase : bool
    last_epoch : int

    Over an optimizer it sets each group's initial_lr, max_lr, min_lr (and with
    cycle_momentum, momentum, max_momentum, base_momentum), and reads them at every step, as
    torch does; stepping past total_steps is a ValueError.
    """

    def __init__(self, optimizer=None, max_lr=None, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, last_epoch=-1):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR needs total_steps, or epochs and steps_per_epoch")
            total_steps = as_int(epochs, "epochs", minimum=1) * as_int(steps_per_epoch, "steps_per_epoch", minimum=1)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear'; got {anneal_strategy!r}")
        super().__init__(
            optimizer, last_epoch, max_lr=_per_group(max_lr, "max_lr", low_open=True),
            total_steps=as_int(total_steps, "total_steps", minimum=1),
            pct_start=real_number(pct_start, "pct_start", low=0, high=1), anneal_strategy=anneal_strategy,
            cycle_momentum=flag(cycle_momentum, "cycle_momentum"),
            base_momentum=_per_group(base_momentum, "base_momentum"),
            max_momentum=_per_group(max_momentum, "max_momentum"),
            div_factor=real_number(div_factor, "div_factor", low=0, low_open=True),
            final_div_factor=real_number(final_div_factor, "final_div_factor", low=0, low_open=True),
            three_phase=flag(three_phase, "three_phase"))
        self._check_phases()

    def _phases(self):
        """(end step, lr from, lr to, momentum from, momentum to) of each phase, as torch's."""
        steps, pct = self.total_steps, self.pct_start
        if self.three_phase:
            return [(float(pct * steps) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                    (float(2 * pct * steps) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                    (steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        return [(float(pct * steps) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]

    def _check_phases(self):
        start = 0.0
        for end, *_ in self._phases():
            if end == start:  # torch would divide by zero at that step
                raise ValueError(f"OneCycleLR with total_steps={self.total_steps}, pct_start={self.pct_start} "
                                 f"(three_phase={self.three_phase}) has a phase of no steps; change pct_start")
            start = end

    @property
    def depends_on_lr(self):
        return self.max_lr is not None

    def _prepare_groups(self, groups, last_epoch):
        if self.max_lr is None:
            raise TypeError("OneCycleLR over an optimizer needs max_lr")
        values = {name: _for_groups(getattr(self, name), name, len(groups))
                  for name in ("max_lr", "max_momentum", "base_momentum")}
        needed = ["initial_lr", "max_lr", "min_lr"] + (["max_momentum", "base_momentum"] if self.cycle_momentum else [])
        if last_epoch != -1:
            for i, group in enumerate(groups):
                missing = [key for key in needed if key not in group]
                if missing:
                    raise ValueError(f"param_groups[{i}] lacks {missing}: resuming OneCycleLR with last_epoch="
                                     f"{last_epoch} needs the optimizer's state from the run it resumes")
            return
        for i, group in enumerate(groups):
            group["initial_lr"] = values["max_lr"][i] / self.div_factor
            group["max_lr"] = values["max_lr"][i]
            group["min_lr"] = group["initial_lr"] / self.final_div_factor
            if self.cycle_momentum:
                group["momentum"] = group["max_momentum"] = values["max_momentum"][i]
                group["base_momentum"] = values["base_momentum"][i]

    def _anchor(self, last_epoch, group):
        return ()  # read from the group at every step, as torch does

    def _fresh_group(self, lr):
        top = lr if self.max_lr is None else _for_groups(self.max_lr, "max_lr", 1)[0]
        return {"initial_lr": top / self.div_factor, "max_lr": top,
                "min_lr": top / self.div_factor / self.final_div_factor}

    def _check_steps(self, steps):
        if self.cycle_momentum:
            raise ValueError("OneCycleLR cycles momentum (cycle_momentum=True, torch's default), which a rule's "
                             "learning-rate multipliers cannot: pass cycle_momentum=False for a rule's schedule")
        if steps > self.total_steps:
            raise ValueError(f"OneCycleLR(total_steps={self.total_steps}) is shorter than the run of {steps} steps")

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (np.cos(np.pi * pct) + 1)
        return (end - start) * pct + start

    def _interpolate(self, t, group, first, second):
        """The phases' interpolation between the group's values named by columns first/second."""
        t = np.asarray(t, dtype=np.float64)
        phases = self._phases()
        value, start, done = np.zeros(t.shape), 0.0, np.zeros(t.shape, bool)
        for i, phase in enumerate(phases):
            end = phase[0]
            here = ~done & ((t <= end) | (i == len(phases) - 1))
            value = np.where(here, self._anneal(group[phase[first]], group[phase[second]], (t - start) / (end - start)),
                             value)
            done |= here
            start = end
        return value

    def _lr(self, t, anchor, group):
        if np.size(t) and np.max(t) > self.total_steps:
            raise ValueError(f"Tried to step {int(np.max(t))} times. The specified number of total steps is "
                             f"{self.total_steps}")
        return self._interpolate(t, group, 1, 2)

    def _apply(self, group, t, anchor):
        super()._apply(group, t, anchor)
        if self.cycle_momentum:
            group["momentum"] = float(self._interpolate(t, group, 3, 4))


def _per_group(value, name, low_open=False):
    """A number, or a tuple of them (one per parameter group); None passes (max_lr in a rule)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return tuple(real_number(v, name, low=0, low_open=low_open) for v in value)
    return real_number(value, name, low=0, low_open=low_open)


def _for_groups(value, name, count):
    if isinstance(value, tuple):
        if len(value) != count:
            raise ValueError(f"{name} has {len(value)} values; the optimizer has {count} parameter groups")
        return list(value)
    return [value] * count
