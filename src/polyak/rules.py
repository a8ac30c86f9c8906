"""Update rules: gradient descent and heavy-ball momentum in every convention users meet.

With gₜ the gradient at xₜ₋₁, ηₜ = lr · schedule[t−1] (ηₜ = lr without a schedule; a schedule
of :mod:`polyak.schedules` gives schedule[t] = its learning rate at epoch t over lr) and
v₀ = 0, the conventions are:

============  ==================================  ===================================
convention    velocity                            parameters
============  ==================================  ===================================
d2l, optax    vₜ = β vₜ₋₁ + gₜ                      xₜ = xₜ₋₁ − ηₜ vₜ
torch         b₁ = g₁;  bₜ = β bₜ₋₁ + (1 − τ) gₜ     xₜ = xₜ₋₁ − ηₜ bₜ
mxnet, gluon  vₜ = β vₜ₋₁ + ηₜ gₜ                    xₜ = xₜ₋₁ − vₜ
goodfellow,   vₜ = β vₜ₋₁ − ηₜ gₜ                    xₜ = xₜ₋₁ + vₜ
keras
============  ==================================  ===================================

With a constant learning rate all four trace the same iterates (τ = 0); their velocities
differ by the factor η and the sign. Under a schedule they differ: in the d2l and torch rows
ηₜ scales the whole velocity, past gradients included, while in the mxnet and goodfellow rows
each past gradient keeps the η of its own step.

Nesterov (``nesterov=True``): PyTorch's form for d2l and torch,
xₜ = xₜ₋₁ − ηₜ (gₜ + β vₜ); Keras' form for goodfellow, xₜ = xₜ₋₁ + β vₜ − ηₜ gₜ. MXNet's NAG
evaluates the gradient at the look-ahead point xₜ₋₁ − β vₜ₋₁, a change of variables of Keras'
form rather than a rule of its own, so ``convention="mxnet"`` with ``nesterov=True`` is an error
that points to ``convention="goodfellow"``.

The canonical update
--------------------
Every row above is one update on a canonical velocity u (v = u, or v = −u for goodfellow)::

    uₜ = β uₜ₋₁ + aₜ gₜ,    xₜ = xₜ₋₁ − kₜ uₜ − eₜ gₜ

with (aₜ, kₜ, eₜ) from :func:`canonical_coefficients`, the one place that maps a
convention to numbers: the compiled kernels, their NumPy twins, the closed forms of
:mod:`polyak.analysis` and :class:`polyak.optim.SGD` all take their coefficients from it.
"""

from typing import NamedTuple

import numpy as np

from polyak._lr_scheduler import LRScheduler, check_schedule, schedule_multipliers
from polyak._validation import finite_real_array, read_only

__all__ = ["GD", "Momentum", "CONVENTIONS", "Coefficients", "canonical_coefficients", "resolve_convention"]

#: Accepted convention names and the canonical name each one stands for.
CONVENTIONS = {
    "d2l": "d2l",
    "optax": "d2l",
    "torch": "torch",
    "pytorch": "torch",
    "mxnet": "mxnet",
    "gluon": "mxnet",
    "goodfellow": "goodfellow",
    "keras": "goodfellow",
}
#: The conventions whose velocity carries the learning rate.
LR_INSIDE_VELOCITY = frozenset({"mxnet", "goodfellow"})
#: The convention whose velocity has the opposite sign (v = −u): Goodfellow's / Keras'.
NEGATED_VELOCITY = "goodfellow"
#: The convention whose first step takes the whole gradient (b₁ = g₁): PyTorch's.
UNDAMPED_FIRST_STEP = "torch"


def resolve_convention(name):
    """The canonical name of convention `name` (case-insensitive; see CONVENTIONS)."""
    if not isinstance(name, str) or name.lower() not in CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(CONVENTIONS)}; got {name!r}")
    return CONVENTIONS[name.lower()]


class Coefficients(NamedTuple):
    """(a, k, e) of one step of the canonical update u ← β u + a g;  x ← x − k u − e g."""

    a: np.ndarray
    k: np.ndarray
    e: np.ndarray


def canonical_coefficients(convention, eta, beta, *, nesterov=False, dampening=0.0, first_step=False):
    """The canonical update's (a, k, e) for a step of size η in `convention`, broadcast.

    ==========================  =============================  ==================  ==========
    velocity                    a                              k                   e
    ==========================  =============================  ==================  ==========
    without η (d2l, torch)      1 − τ (1 on torch's first      η  (βη: nesterov)   η: nesterov
                                step, b₁ = g₁)
    with η (mxnet, goodfellow)  η                              1  (β: nesterov)    η: nesterov
    ==========================  =============================  ==================  ==========

    (e = 0 without nesterov; τ is torch's dampening, 0 elsewhere.) Every coefficient is
    affine in η, which the kernels use: a run evaluates this at η = 0 and at η = lr to get
    each configuration's a_t = a(0) + (a(lr) − a(0))·schedule[t], and likewise k_t, e_t.

    Parameters
    ----------
    convention : str
        A name of CONVENTIONS.
    eta, beta : float or array_like
        Step size(s) η and momentum β, broadcast against each other.
    nesterov : bool
    dampening : float
        Torch's τ.
    first_step : bool
        True for the first step of a fresh run (torch's undamped b₁ = g₁).
    """
    convention = resolve_convention(convention)
    check_form(convention, dampening, nesterov)
    eta, beta = np.broadcast_arrays(np.asarray(eta, dtype=float), np.asarray(beta, dtype=float))
    zero, one = np.zeros_like(eta), np.ones_like(eta)
    if convention in LR_INSIDE_VELOCITY:
        a = eta
        k = beta if nesterov else one
    else:
        a = one if first_step and convention == UNDAMPED_FIRST_STEP else (1.0 - dampening) * one
        k = beta * eta if nesterov else eta
    e = eta if nesterov else zero
    return Coefficients(*(np.asarray(v, dtype=float) for v in (a, k, e)))


def check_form(convention, dampening, nesterov):
    """ValueError/TypeError unless this form of the update exists in `convention`.

    Dampening is torch's alone and excludes nesterov; MXNet's NAG is Keras' form (use
    "goodfellow"). `convention` is a canonical name (:func:`resolve_convention`).
    """
    if not isinstance(nesterov, (bool, np.bool_)):
        raise TypeError(f"nesterov must be True or False; got {nesterov!r}")
    if dampening and convention != "torch":
        raise ValueError(f"dampening is PyTorch's parameter: use convention='torch' (got convention={convention!r})")
    if nesterov and dampening:
        raise ValueError(f"nesterov momentum requires zero dampening; got dampening={dampening}")
    if nesterov and convention == "mxnet":
        raise ValueError(
            "convention='mxnet' has no nesterov form here: MXNet's NAG takes the gradient at "
            "the look-ahead point x - beta*v, a change of variables of Keras' form; use "
            "convention='goodfellow' (its iterates are MXNet NAG's look-ahead points)"
        )


def as_dampening(value):
    """Torch's dampening τ as a float in [0, 1]; ValueError otherwise."""
    if np.ndim(value) != 0 or not 0 <= float(finite_real_array(value, "dampening")) <= 1:
        raise ValueError(f"dampening must be a number in [0, 1]; got {value!r}")
    return float(value)


def _hyperparameter(value, name):
    # a finite scalar (0-d array) or a non-empty 1-D array, one entry per problem
    array = finite_real_array(value, name)
    if array.ndim > 1 or array.size == 0:
        raise ValueError(f"{name} must be a scalar or a 1-D array with one entry per problem; got shape {array.shape}")
    return read_only(np.array(array, dtype=np.float64))


def _show(array):
    return f"{float(array):g}" if array.ndim == 0 else f"array of {array.size}"


def _show_schedule(schedule):
    return repr(schedule) if isinstance(schedule, LRScheduler) else f"<{schedule.size} steps>"


def _same(mine, theirs):
    # two arguments of rules: None, arrays, or schedules (compared by their parameters)
    if mine is None or theirs is None:
        return mine is theirs
    if isinstance(mine, LRScheduler) or isinstance(theirs, LRScheduler):
        return type(mine) is type(theirs) and mine == theirs
    return np.array_equal(mine, theirs)


def _rebuild(cls, arguments):
    # unpickling and copying: construct anew, which validates and makes the arrays read-only
    return cls(**arguments)


class _Rule:
    """Common machinery: immutable, validated hyperparameters; the canonical coefficients."""

    __slots__ = ("lr", "beta", "convention", "dampening", "nesterov", "schedule")

    def __init__(self, lr, beta, convention, dampening, nesterov, schedule):
        lr = _hyperparameter(lr, "lr")
        if not np.all(lr > 0):
            raise ValueError(f"lr must be > 0; got {lr.min() if lr.ndim else float(lr)}")
        beta = _hyperparameter(beta, "beta")
        if not np.all((beta >= 0) & (beta <= 1)):
            bad = beta[~((beta >= 0) & (beta <= 1))][0] if beta.ndim else float(beta)
            raise ValueError(f"beta must be in [0, 1]; got {bad}")
        if lr.ndim and beta.ndim and lr.size != beta.size:
            raise ValueError(f"lr and beta arrays must have the same length (one per problem); got {lr.size} and {beta.size}")
        convention = resolve_convention(convention)
        dampening = as_dampening(dampening)
        check_form(convention, dampening, nesterov)
        if nesterov and not np.all(beta > 0):
            raise ValueError("nesterov momentum requires beta > 0")
        schedule = check_schedule(schedule)
        for name, value in zip(_Rule.__slots__, (lr, beta, convention, dampening, bool(nesterov), schedule)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable; make a new one")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} is immutable; make a new one")

    def __reduce__(self):
        return _rebuild, (type(self), self._arguments())

    def _arguments(self):
        """The constructor's keyword arguments that rebuild this rule."""
        raise NotImplementedError

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        mine, theirs = self._arguments(), other._arguments()
        return mine.keys() == theirs.keys() and all(_same(mine[key], theirs[key]) for key in mine)

    __hash__ = None  # equal rules may hold equal arrays: no hash, as for arrays

    @property
    def batch_length(self):
        """The number of problems the hyperparameter arrays describe, or None if all are scalars."""
        sizes = {a.size for a in (self.lr, self.beta) if a.ndim}
        return sizes.pop() if sizes else None

    @property
    def has_velocity(self):
        return True

    @property
    def velocity_sign(self):
        """The rule's velocity is this times the canonical u (−1: Goodfellow's v = −u)."""
        return -1.0 if self.convention == NEGATED_VELOCITY else 1.0

    @property
    def undamped_first_step(self):
        """True when a fresh run's first step takes the whole gradient (torch's b₁ = g₁)."""
        return self.convention == UNDAMPED_FIRST_STEP

    def multipliers(self, steps):
        """The learning-rate multipliers of a run of `steps` steps: (steps,), or ones(1) for a
        constant rate; a ValueError when the schedule is shorter than the run."""
        return schedule_multipliers(self.schedule, steps, self.lr)

    def coefficients(self, eta=None, *, first_step=False):
        """The canonical (a, k, e) of a step of size `eta` (default: lr), one per problem.

        See :func:`canonical_coefficients`; β is this rule's.
        """
        return canonical_coefficients(self.convention, self.lr if eta is None else eta, self.beta,
                                      nesterov=self.nesterov, dampening=self.dampening, first_step=first_step)


class GD(_Rule):
    """Gradient descent: xₜ = xₜ₋₁ − ηₜ gₜ with ηₜ = lr · schedule[t−1].

    Parameters
    ----------
    lr : float or array_like of shape (B,)
        Learning rate(s) > 0, one per problem when an array.
    schedule : array_like or polyak.schedules schedule, optional
        Per-step multipliers >= 0 of the learning rate (at least `steps` of them), or a
        schedule such as ``polyak.schedules.CosineAnnealingLR(T_max=100)``, whose learning
        rates over lr give them (see :mod:`polyak.schedules`).
    """

    __slots__ = ()

    def __init__(self, lr, *, schedule=None):
        super().__init__(lr, 0.0, "d2l", 0.0, False, schedule)

    def _arguments(self):
        return {"lr": self.lr, "schedule": self.schedule}

    @property
    def has_velocity(self):
        return False

    def __repr__(self):
        schedule = "" if self.schedule is None else f", schedule={_show_schedule(self.schedule)}"
        return f"GD(lr={_show(self.lr)}{schedule})"


class Momentum(_Rule):
    """Heavy-ball momentum (Polyak) or Nesterov, in the convention of a given library.

    Parameters
    ----------
    lr : float or array_like of shape (B,)
        Learning rate(s) η > 0.
    beta : float or array_like of shape (B,)
        Momentum β in [0, 1] (γ in MXNet, α in Goodfellow, μ in PyTorch).
    convention : str
        "d2l" (also "optax"), "torch" ("pytorch"), "mxnet" ("gluon") or "goodfellow"
        ("keras"); see the table in this module's docstring.
    dampening : float
        PyTorch's τ in [0, 1], only with convention="torch".
    nesterov : bool
        PyTorch's Nesterov form (d2l, torch) or Keras' (goodfellow); needs β > 0 and τ = 0.
    schedule : array_like or polyak.schedules schedule, optional
        Per-step multipliers >= 0: ηₜ = lr · schedule[t−1]; or a schedule of
        :mod:`polyak.schedules` (``schedule=polyak.schedules.StepLR(step_size=30)``), whose
        learning rates over lr are the multipliers.
    """

    __slots__ = ()

    def __init__(self, lr, beta, *, convention="d2l", dampening=0.0, nesterov=False, schedule=None):
        super().__init__(lr, beta, convention, dampening, nesterov, schedule)

    def _arguments(self):
        return {"lr": self.lr, "beta": self.beta, "convention": self.convention, "dampening": self.dampening,
                "nesterov": self.nesterov, "schedule": self.schedule}

    def __repr__(self):
        extras = [f"convention={self.convention!r}"]
        if self.dampening:
            extras.append(f"dampening={self.dampening:g}")
        if self.nesterov:
            extras.append("nesterov=True")
        if self.schedule is not None:
            extras.append(f"schedule={_show_schedule(self.schedule)}")
        return f"Momentum(lr={_show(self.lr)}, beta={_show(self.beta)}, {', '.join(extras)})"
