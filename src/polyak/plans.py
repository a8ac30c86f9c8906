"""`Plan`: what to compute, validated once, frozen, picklable, and splittable.

A plan holds everything an execution needs: the problem (its arrays are shared by all
configurations and never copied per configuration: a problem index column says which
problem each configuration runs), each configuration's learning rate and momentum with the
bilinear forms that turn them into its row of canonical coefficients (see
:func:`polyak.rules.canonical_coefficients` and COLUMNS), the learning-rate schedule, the
starting state, the steps, what to record and the divergence bound. It says nothing of how
to compute: :func:`polyak.execute` runs it with the compiled kernel, the NumPy reference or
the closed form, on any number of threads, here or (pickled) in another process, whole or in
pieces (:meth:`Plan.split`).

>>> import polyak
>>> job = polyak.plan(polyak.problems.ill_conditioned_2d(), polyak.Momentum([0.1, 0.6], 0.5),
...                   x0=[-5.0, -2.0], steps=20)
>>> len(job), [len(piece) for piece in job.split(2)]
(2, [1, 1])
"""

import numpy as np

from polyak._config import resolve_threads
from polyak._kernels import _tables
from polyak._memory import require_memory
from polyak._validation import FLOAT_DTYPES, as_int, finite_real_array, require_shape, resolve_dtype
from polyak.least_squares import MinibatchLeastSquares
from polyak.problems import Quadratic
from polyak.rules import _Rule, canonical_coefficients

__all__ = ["Plan", "plan", "COLUMNS", "DIVERGENCE_BOUND", "RECORDABLE", "KINDS"]

#: The columns of a plan's coefficient table. For configuration p at step t (0-based) with
#: learning-rate multiplier s = schedule[t]: a_t = (a_first if t == 0 else a_fixed) +
#: a_scaled·s, k_t = k_fixed + k_scaled·s, e_t = e_fixed + e_scaled·s; β = beta.
COLUMNS = ("beta", "a_fixed", "a_scaled", "a_first", "k_fixed", "k_scaled", "e_fixed", "e_scaled")
#: Default bound on |xᵢ| beyond which a configuration counts as diverged, per dtype.
DIVERGENCE_BOUND = {np.dtype(np.float64): 1e100, np.dtype(np.float32): 1e15}
#: What a run can record.
RECORDABLE = ("loss", "trajectory")
#: The kinds of plan, by the problems they run.
KINDS = ("diagonal", "dense", "dense-shared", "least-squares")
#: The problems a plan runs.
PROBLEMS = (Quadratic, MinibatchLeastSquares)
#: The most steps one run takes (steps and records are indexed with 64-bit integers).
MAX_STEPS = 2**62

_ARRAYS = ("problem_index", "lr", "beta", "forms", "schedule", "x0", "u0", "recorded_at")
_PER_CONFIGURATION = ("problem_index", "lr", "beta", "x0", "u0")


def _largest_finite_magnitude(array):
    # max |array| (0 when empty), or None where some entry is not finite: from the minimum and
    # the maximum (which NaN propagates to), two passes without a temporary array
    if array.size == 0:
        return 0.0
    low, high = np.min(array), np.max(array)  # (NumPy scalars: a longdouble keeps its range)
    if array.dtype.kind not in "fc":  # (a hand-made plan's integers or booleans: no wrapping)
        low, high = float(low), float(high)
    return max(-low, high) if np.isfinite(low) and np.isfinite(high) else None


def _restore(fields):
    return Plan(**fields)


def _own(array):
    # a read-only copy that nothing else refers to: a plan checked once stays as it was checked
    array = np.array(array, copy=True)
    array.flags.writeable = False
    return array


class Plan:
    """What to compute; make one with :func:`plan`.

    Attributes
    ----------
    kind : str
        "diagonal", "dense" (a Q per problem), "dense-shared" (one Q for all) or
        "least-squares": with the implementation, it picks the code that runs it.
    problem
        The problem: a :class:`polyak.Quadratic` or a
        :class:`polyak.train.MinibatchLeastSquares`, shared by the configurations.
    problem_index : ndarray of int64, shape (B,)
        The problem (row of the problem's batch) that each configuration runs.
    lr, beta : ndarray, shape (B,) or (1,)
        Each configuration's learning rate and momentum (one entry: shared), float64.
    forms : ndarray, shape (8, 4)
        Each column of the coefficient table as the bilinear form A + B·lr + C·β + D·lr·β
        of the rule's convention (:func:`coefficient_forms`).
    coefficients : ndarray, shape (B, 8)
        Each configuration's canonical update (columns: COLUMNS), built from the above when
        asked for (the diagonal kernel builds its rows itself, a chunk at a time).
    schedule : ndarray, shape (T,) or (1,)
        The learning-rate multiplier of each step, or one for every step.
    x0 : ndarray, shape (B, n) or (1, n)
        The starting point of each configuration (one row: shared).
    u0 : ndarray, shape (B, n), (1, n) or (0, n)
        The starting canonical velocity u (v₀ = velocity_sign · u₀); no rows: zero.
    steps, every : int
        T, and the interval of the records of a quadratic (t = 0, every, 2·every, …).
    record : tuple of str
        What to record: "loss", "trajectory" (a subset of the problem's `recordable`).
    recorded_at : ndarray of int64, shape (K,)
        The steps after which the records are taken (0: the start), as the problem's
        ``record_steps(steps, every)`` gives them.
    divergence_bound : float
    dtype : numpy.dtype
        The precision of the arithmetic.
    velocity_sign : float
        The rule's velocity is velocity_sign · u (−1 for the goodfellow convention).
    has_velocity : bool
        False for gradient descent (results then carry no velocity).
    buffer_at_start : bool
        False when no velocity exists before the first step (torch's buffer is made by its
        first step): a run of 0 steps then returns none.
    batched : bool
        False for one configuration of one problem: results then drop the batch axis.

    A plan owns its per-configuration arrays (copies, read-only) and checks, when it is made
    (by :func:`plan`, by hand, or unpickled), everything the kernels rely on.
    """

    __slots__ = ("kind", "problem", *_ARRAYS, "steps", "every", "record", "recorded_at", "divergence_bound",
                 "dtype", "velocity_sign", "has_velocity", "buffer_at_start", "batched")

    def __init__(self, **fields):
        self._adopt(fields, fresh=())

    def _adopt(self, fields, fresh):
        # the arrays named in `fresh` were made for this plan, or are a rule's read-only copies
        # (nothing can write them; polyak.plan's index and hyperparameters): kept read-only,
        # not copied
        missing = set(self.__slots__) - set(fields)
        extra = set(fields) - set(self.__slots__)
        if missing or extra:
            raise TypeError(f"Plan fields missing: {sorted(missing)}; unknown: {sorted(extra)}")
        for name, value in fields.items():
            if name in fresh:
                value.flags.writeable = False
            elif name in _ARRAYS:
                value = _own(value)
            object.__setattr__(self, name, value)
        self._check()

    @classmethod
    def _made_for(cls, fresh, **fields):
        plan = cls.__new__(cls)
        plan._adopt(fields, fresh)
        return plan

    def _check(self):
        # what the kernels rely on (shapes that agree, problem indices within the batch, sizes
        # of records, finite numbers), checked once here: a plan may be made by hand or unpickled
        if not isinstance(self.problem, PROBLEMS) or self.kind != self.problem.plan_kind:
            raise ValueError(f"a plan's kind must be its problem's ({getattr(self.problem, 'plan_kind', None)!r}, "
                             f"one of {KINDS}); got {self.kind!r} for {type(self.problem).__name__}")
        as_int(self.steps, "steps", minimum=0, maximum=MAX_STEPS if self.problem.max_steps is None
               else self.problem.max_steps)
        as_int(self.every, "every", minimum=1)
        B, n = self.problem_index.shape[0], self.problem.dim
        shapes_agree = (
            B >= 1 and self.problem_index.ndim == 1 and self.forms.shape == (len(COLUMNS), 4)
            and self.lr.shape in ((1,), (B,)) and self.beta.shape in ((1,), (B,))
            and self.x0.ndim == 2 and self.x0.shape[0] in (1, B) and self.x0.shape[1] == n
            and self.u0.ndim == 2 and self.u0.shape[0] in (0, 1, B) and self.u0.shape[1] == n
            and self.schedule.ndim == 1 and self.schedule.shape[0] in ((1,) if self.steps == 0 else (1, self.steps))
        )
        if not shapes_agree:
            raise ValueError(
                f"the plan's arrays do not fit together: problem_index {self.problem_index.shape}, lr {self.lr.shape}, "
                f"beta {self.beta.shape}, forms {self.forms.shape}, x0 {self.x0.shape}, u0 {self.u0.shape}, "
                f"schedule {self.schedule.shape} "
                f"for {self.steps} steps, problem dimension {n}; make plans with polyak.plan")
        rows = self.problem.batch_size
        if not (np.issubdtype(self.problem_index.dtype, np.integer) and self.problem_index.min() >= 0
                and self.problem_index.max() < rows):
            raise ValueError(f"problem_index must hold integers in [0, {rows}): the problems of the batch")
        largest_magnitude = {}
        for name in ("lr", "beta", "forms", "schedule", "x0", "u0"):
            if getattr(self, name).dtype != np.float64 and name in ("lr", "beta", "forms"):
                raise ValueError(f"the plan's {name} must be float64; got {getattr(self, name).dtype}")
            largest_magnitude[name] = _largest_finite_magnitude(getattr(self, name))
            if largest_magnitude[name] is None:
                raise ValueError(f"the plan's {name} must be finite")
        lr, beta = largest_magnitude["lr"], largest_magnitude["beta"]
        with np.errstate(over="ignore", invalid="ignore"):  # a bound on every |coefficient|
            largest = np.abs(self.forms) @ np.array([1.0, lr, beta, lr * beta])
        if not np.all(np.isfinite(largest)):
            raise ValueError("the plan's coefficients must be finite: its lr and forms overflow them")
        expected = self.problem.record_steps(self.steps, self.every) if self.record else np.zeros(0, np.int64)
        if (not isinstance(self.record, tuple) or not set(self.record) <= set(self.problem.recordable)
                or not np.array_equal(self.recorded_at, expected)):
            raise ValueError(f"the plan's records must be a tuple of {self.problem.recordable} taken at the "
                             f"problem's record_steps(steps, every); got {self.record!r} at {self.recorded_at}")
        if self.velocity_sign not in (1.0, -1.0) or np.dtype(self.dtype) not in FLOAT_DTYPES + (_EXTENDED,):
            raise ValueError(f"the plan's velocity_sign must be ±1 and its dtype float32, float64 or longdouble; "
                             f"got {self.velocity_sign!r} and {self.dtype!r}")
        _divergence_bound(self.divergence_bound, np.dtype(self.dtype))
        if not largest_magnitude["x0"] <= self.divergence_bound:
            raise ValueError("the plan's x0 must lie within its divergence bound")

    @property
    def coefficients(self):
        """The (B, 8) table of COLUMNS (read-only, built anew at each access)."""
        table = coefficient_rows_of(self.forms, self.lr, self.beta, len(self))
        table.flags.writeable = False
        return table

    def __setattr__(self, name, value):
        raise AttributeError("Plan is immutable; make a new one")

    def __delattr__(self, name):
        raise AttributeError("Plan is immutable; make a new one")

    def __reduce__(self):
        return _restore, ({name: getattr(self, name) for name in self.__slots__},)

    def __len__(self):
        """B, the number of configurations."""
        return self.problem_index.shape[0]

    @property
    def dim(self):
        """n, the number of coordinates of each configuration."""
        return self.x0.shape[1]

    def start(self, dtype):
        """(x, u): every configuration's starting point and canonical velocity, (B, n) each,
        as new C-ordered arrays of `dtype` (u zero where the plan has no u0)."""
        shape = (len(self), self.dim)
        x = np.array(np.broadcast_to(self.x0, shape), dtype=dtype, order="C")
        u = np.zeros(shape, dtype) if self.u0.shape[0] == 0 else np.array(np.broadcast_to(self.u0, shape),
                                                                         dtype=dtype, order="C")
        return x, u

    def __repr__(self):
        recorded = f", record={list(self.record)} every {self.every}" if self.record else ""
        configurations = "1 configuration" if len(self) == 1 else f"{len(self)} configurations"
        return (f"Plan({self.kind}, {configurations} of dimension {self.dim}, "
                f"steps={self.steps}{recorded}, dtype={self.dtype})")

    def _fields(self):
        return {name: getattr(self, name) for name in self.__slots__}

    def select(self, start, stop):
        """The plan of configurations start..stop−1 (a batch, whatever this plan is).

        Its problem keeps only the rows those configurations run (views, not copies), so a
        piece carries only its share of a batch of problems.
        """
        start, stop, _ = slice(start, stop).indices(len(self))
        if stop <= start:
            raise ValueError(f"select needs at least one configuration; got {start}..{stop - 1} of {len(self)}")
        fields = self._fields()
        for name in _PER_CONFIGURATION:
            if fields[name].shape[0] == len(self):  # one row per configuration (else shared, or none)
                fields[name] = fields[name][start:stop]
        index = fields["problem_index"]
        first, last = int(index.min()), int(index.max())
        fields["problem"] = self.problem.rows(first, last + 1)
        fields["problem_index"] = index - first
        fields["batched"] = True
        return Plan(**fields)

    def split(self, pieces):
        """This plan cut into `pieces` plans of consecutive configurations, sizes within one.

        Executed with the same implementation at the same instruction-set level and joined
        with :meth:`polyak.Result.concatenate`, the pieces give the result of the whole plan,
        bit for bit; a dense Q shared by the configurations ("dense-shared") is the
        exception, within rounding: its BLAS product X·Q may round a row differently when it
        multiplies another number of rows.
        """
        pieces = as_int(pieces, "pieces", minimum=1, maximum=len(self))
        bounds = np.linspace(0, len(self), pieces + 1).round().astype(int)
        if pieces == 1:
            return [self]
        return [self.select(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]


def plan(problem, rule, x0, steps, *, v0=None, record=None, every=1, dtype=None, divergence_bound=None):
    """The plan of running `rule` on `problem` for `steps` steps: validated, ready to execute.

    Parameters are those of :func:`polyak.run` (which is ``execute(plan(...))``). A single
    problem with hyperparameter arrays of length B makes B configurations of it; a batch of
    B problems takes scalars or arrays of length B. The problem's arrays are not copied.
    `problem` is a :class:`polyak.Quadratic` or a :class:`polyak.train.MinibatchLeastSquares`
    (then x0 is θ₀ = (w₀, b₀), `steps` at most its epochs × minibatches, `record` at most
    "loss", taken where its record_every says, and `dtype` defaults to the data's).
    """
    if not isinstance(problem, PROBLEMS):
        raise TypeError(f"problem must be a polyak.Quadratic or a polyak.train.MinibatchLeastSquares; "
                        f"got {type(problem).__name__}")
    if not isinstance(rule, _Rule):
        raise TypeError(f"rule must be polyak.GD or polyak.Momentum; got {type(rule).__name__}")
    limit = MAX_STEPS if problem.max_steps is None else problem.max_steps
    steps = as_int(steps, "steps", minimum=0, maximum=limit)
    every = as_int(every, "every", minimum=1)
    recorded = _recorded(record, problem.recordable)
    n = problem.dim
    x0 = finite_real_array(x0, "x0")
    batched = problem.batched or rule.batch_length is not None
    B = problem.batch_size if problem.batched else (rule.batch_length or 1)
    if not batched and x0.ndim == 2 and x0.shape[1] == n and x0.shape[0] >= 1:
        batched, B = True, x0.shape[0]  # one problem, one rule, B starting points
    for name in ("lr", "beta"):
        value = getattr(rule, name)
        if value.ndim and value.size != B:
            raise ValueError(f"{name} has {value.size} entries but the batch has {B} problems")
    starts = [(n,), (B, n)] if batched else [(n,)]
    x0 = require_shape(x0, starts, "x0")
    if v0 is not None:
        if not rule.has_velocity:
            raise ValueError("v0 is not used by GD, which has no velocity; omit it")
        v0 = require_shape(finite_real_array(v0, "v0"), starts, "v0")
    operands = problem.operands()
    dtype = _EXTENDED if _is_extended(dtype) else resolve_dtype(dtype, *operands.values(), x0, v0)
    schedule = rule.multipliers(steps)
    for name, values in dict(lr=rule.lr, beta=rule.beta, **operands, x0=x0, v0=v0, schedule=schedule).items():
        if values is not None:
            _require_representable(values, name, dtype)
    bound = _divergence_bound(divergence_bound, dtype)
    if not float(np.max(np.abs(x0), initial=0.0)) <= bound:
        raise ValueError(f"x0 has entries beyond the divergence bound {bound:g} (max |x0| = {np.max(np.abs(x0)):g}); "
                         f"start within it, or raise divergence_bound")
    per_record = ("loss" in recorded) + n * ("trajectory" in recorded)
    records = float(steps // every + 1 if isinstance(problem, Quadratic) else steps + 1) if recorded else 0.0
    require_memory(float(B) * (len(COLUMNS) * 8 + 16 + dtype.itemsize * (2 * n + per_record * records))
                   + 8 * records, "this plan and its run's outputs",
                   ["fewer records (every=k, or record only 'loss')" if recorded else None,
                    "float32 (dtype=np.float32)" if dtype.itemsize > 4 else None,
                    "fewer configurations at a time"])
    recorded_at = problem.record_steps(steps, every) if recorded else np.zeros(0, np.int64)
    return Plan._made_for(
        ("problem_index", "lr", "beta"),
        kind=problem.plan_kind,
        problem=problem,
        problem_index=np.arange(B, dtype=np.int64) if problem.batched else np.zeros(B, np.int64),
        lr=_rule_array(rule.lr), beta=_rule_array(rule.beta),
        forms=coefficient_forms(rule.convention, rule.dampening, nesterov=rule.nesterov, fresh=v0 is None),
        schedule=np.array(schedule, dtype=np.float64),
        x0=np.atleast_2d(x0).astype(np.float64 if dtype in FLOAT_DTYPES else dtype),
        u0=_canonical_velocity(v0, rule.velocity_sign, n, dtype),
        steps=steps, every=min(every, steps + 1), record=tuple(name for name in RECORDABLE if name in recorded),
        recorded_at=recorded_at,
        divergence_bound=bound, dtype=dtype,
        velocity_sign=rule.velocity_sign, has_velocity=rule.has_velocity,
        buffer_at_start=not (rule.undamped_first_step and v0 is None), batched=batched,
    )


_EXTENDED = np.dtype(np.longdouble)


def _is_extended(dtype):
    # np.longdouble, which only the reference implementation runs (for accuracy checks)
    try:
        return dtype is not None and np.dtype(dtype) == _EXTENDED and _EXTENDED not in FLOAT_DTYPES
    except TypeError:
        return False


def _rule_array(value):
    # a rule's lr or beta as a plan holds them: (B,) or (1,), float64; a rule's own arrays are
    # read-only copies that nothing else can write, so they are shared, not copied
    array = np.atleast_1d(value)
    return array if array.dtype == np.float64 and not array.flags.writeable else array.astype(np.float64)


def coefficient_rows(convention, lr, beta, configurations, *, nesterov, dampening, fresh):
    """The (B, 8) table of COLUMNS for learning rates and momenta (scalars or (B,) arrays) in
    one form of `convention`: the canonical coefficients at η = 0 and at η = lr."""
    forms = coefficient_forms(convention, dampening, nesterov=nesterov, fresh=fresh)
    return coefficient_rows_of(forms, lr, beta, configurations)


def coefficient_rows_of(forms, lr, beta, configurations):
    """The (B, 8) table whose column col is forms[col] = (A, B, C, D) at each (lr, β):
    A + B·lr + C·β + D·(lr·β), filled by a compiled loop (lr, beta: scalars or (B,))."""
    table = np.empty((configurations, len(COLUMNS)))
    lr, beta = (np.ascontiguousarray(np.ravel(value), dtype=np.float64) for value in (lr, beta))
    _tables.fill_coefficient_rows(lr=lr, beta=beta, forms=np.ascontiguousarray(forms, dtype=np.float64), table=table,
                                  n_threads=min(resolve_threads(None), max(configurations // _ROWS_PER_THREAD, 1)))
    return table


_ROWS_PER_THREAD = 65536  # fewer rows than this per thread: one thread (starting a team costs more)


def coefficient_forms(convention, dampening, *, nesterov, fresh=True):
    """(8, 4): each column of the coefficient table (COLUMNS) as the bilinear form
    A + B lr + C β + D lr β it is in every convention (the values at the corners lr, β ∈
    {0, 1}). Each column is one monomial of the form (0, 1, 1 − τ, lr, β or lr·β, see
    :func:`polyak.rules.canonical_coefficients`), so a row built from the form is the row of
    the canonical coefficients, bit for bit."""
    columns = _coefficients(convention, _CORNERS_LR, _CORNERS_BETA, nesterov=nesterov, dampening=dampening,
                            fresh=fresh)
    f00, f10, f01, f11 = np.stack([np.broadcast_to(columns[name], (4,)) for name in COLUMNS], axis=-1)
    return np.ascontiguousarray(np.stack([f00, f10 - f00, f01 - f00, f11 - f10 - f01 + f00], axis=-1))


_CORNERS_LR, _CORNERS_BETA = np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0, 1.0])


def _coefficients(convention, lr, beta, *, nesterov, dampening, fresh):
    # each column of the table by name, broadcastable to (B,)
    def at(eta, first_step=False):
        return canonical_coefficients(convention, eta, beta, nesterov=nesterov, dampening=dampening,
                                      first_step=first_step)

    fixed = at(0.0 * np.asarray(lr))
    at_lr = at(lr)
    first = at(0.0 * np.asarray(lr), first_step=True) if fresh else fixed
    return dict(beta=beta, a_fixed=fixed.a, a_scaled=at_lr.a - fixed.a, a_first=first.a,
                k_fixed=fixed.k, k_scaled=at_lr.k - fixed.k, e_fixed=fixed.e, e_scaled=at_lr.e - fixed.e)


def _canonical_velocity(v0, sign, n, dtype):
    if v0 is None:
        return np.zeros((0, n))
    u0 = sign * np.atleast_2d(v0)
    return np.array(u0, dtype=np.float64 if dtype in FLOAT_DTYPES else dtype)


def _recorded(record, recordable):
    if record is None:
        return set()
    names = [record] if isinstance(record, str) else record
    try:
        names = list(names)
    except TypeError:
        names = [record]
    if not all(isinstance(name, str) and name in recordable for name in names):
        allowed = " or ".join(repr(name) for name in recordable)
        both = " or both as a tuple" if len(recordable) > 1 else ""
        raise ValueError(f"record must be None, {allowed}{both}; got {record!r}")
    return set(names)


def _divergence_bound(value, dtype):
    if value is None:
        return DIVERGENCE_BOUND.get(dtype, DIVERGENCE_BOUND[np.dtype(np.float64)])
    if np.ndim(value) != 0:
        raise ValueError(f"divergence_bound must be a number > 0; got {value!r}")
    bound = float(finite_real_array(value, "divergence_bound"))
    largest = float(np.finfo(dtype).max) if dtype in FLOAT_DTYPES else np.inf
    if not 0 < bound < largest:
        raise ValueError(f"divergence_bound must be > 0 and below {dtype}'s largest value {largest:g}; got {bound:g}")
    return bound


def _require_representable(values, name, dtype):
    """ValueError if rounding `values` to `dtype` makes one infinite, or a nonzero one zero."""
    values = np.asarray(values)
    if values.dtype.itemsize <= dtype.itemsize:
        return  # no narrowing, nothing lost
    with np.errstate(over="ignore", under="ignore"):
        rounded = values.astype(dtype)
    lost = ~np.isfinite(rounded) | ((rounded == 0) & (values != 0))
    if np.any(lost):
        raise ValueError(
            f"{name} has values that {dtype} cannot represent (e.g. {values[lost].flat[0]:g}): its finite "
            f"nonzero range is {np.finfo(dtype).tiny:g} to {np.finfo(dtype).max:g} in magnitude"
        )
