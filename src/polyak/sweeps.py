"""`sweep`: metrics of a grid (or a random search) of momentum configurations on quadratics.

A sweep runs every configuration of learning rate × momentum × nesterov on a problem's
spectrum and keeps, per configuration, a few numbers instead of its iterates: the final loss,
the steps to a loss threshold, whether it diverged, the theory's rate, and optionally the loss
every `every` steps. It runs in the eigenbasis of Q on the error e = x − x* (a dense Q is
rotated once, with :func:`polyak.analysis.eigendecompose`), where f(x) − f* = ½ Σ λᵢ eᵢ², in a
kernel that advances blocks of configurations together in the vector lanes
(``polyak._kernels._sweep``), with a constant learning rate by the two-term recurrence that
each coordinate's error obeys (Cayley–Hamilton on its 2×2 iteration matrix).

>>> import numpy as np, polyak
>>> result = polyak.sweep(polyak.problems.ill_conditioned_2d(), 100, lr=np.linspace(0.05, 0.6, 12),
...                       beta=np.linspace(0.0, 0.9, 10), tol=1e-8)
>>> result.dims, result.final_loss.shape
(('lr', 'beta'), (12, 10))
"""

import time

import numpy as np

from polyak import plans
from polyak._config import kernels, resolve_threads
from polyak._memory import require_memory
from polyak._validation import as_int, finite_real_array, require_shape
from polyak.plans import COLUMNS, DIVERGENCE_BOUND, MAX_STEPS
from polyak.problems import Quadratic
from polyak.rules import as_dampening, check_form, resolve_convention

__all__ = ["sweep", "SweepResult", "METRICS"]

#: The per-configuration arrays of a SweepResult (loss and steps_to_tol when asked for).
METRICS = ("final_loss", "steps_to_tol", "diverged", "rate", "loss")
#: The axes a sweep may have, in the order of the result's dimensions.
AXES = ("problem", "lr", "beta", "nesterov")


class SweepResult:
    """The metrics of a sweep, one entry per configuration, on the sweep's axes.

    Attributes
    ----------
    final_loss : ndarray of float
        f(x_T) − f* = ½ Σ λᵢ eᵢ² after the last step (inf where diverged). The kernel runs
        with flush-to-zero: a loss, or an error, below the smallest normal float (about
        2.2e-308) is 0.
    steps_to_tol : ndarray of int64, or None
        The first t in 0..T with f(x_t) − f* <= tol; −1 where never (None without `tol`).
    diverged : ndarray of bool
        Some |eᵢ| was beyond the divergence bound at a check (after every 128th step and the
        last), the magnitude test of :func:`polyak.run`. A configuration whose rate is above
        1 but whose error is still within the bound after T steps is not diverged.
    rate : ndarray of float, or None
        The worst spectral radius over the spectrum (:func:`polyak.analysis.rate`), for a
        constant learning rate; None with a schedule.
    loss : ndarray, shape dims + (K,), or None
        f − f* every `every` steps (t = 0, every, …); NaN after a divergence was found.
    recorded_at : ndarray of int64, shape (K,)
    dims : tuple of str
        The axis names, in the order (problem, lr, beta, nesterov) of those given as arrays,
        or ("config",) for a random search (``grid=False``).
    coords : dict
        The values along each axis (for "config": the lr, beta and nesterov of each).
    constants : dict
        The hyperparameters given as scalars (shared by every configuration).
    steps : int
    seconds : float
    """

    def __init__(self, *, final_loss, steps_to_tol, diverged, rate, loss, recorded_at, dims, coords, steps, seconds,
                 tol, constants=None):
        self.constants = dict(constants or {})
        self.final_loss, self.steps_to_tol, self.diverged, self.rate = final_loss, steps_to_tol, diverged, rate
        self.loss, self.recorded_at, self.dims, self.coords = loss, recorded_at, dims, coords
        self.steps, self.seconds, self.tol = steps, seconds, tol

    @property
    def shape(self):
        return self.final_loss.shape

    def _configuration(self, index):
        """The hyperparameters and metrics of the configuration at `index` (a tuple), as a dict."""
        values = dict(self.constants)
        if self.dims == ("config",):
            values.update({name: _item(self.coords[name][index[0]]) for name in self.coords})
        else:
            values.update({dim: _item(self.coords[dim][i]) for dim, i in zip(self.dims, index)})
        for name in ("final_loss", "steps_to_tol", "diverged", "rate"):
            array = getattr(self, name)
            if array is not None:
                values[name] = _item(array[index])
        return values

    def best(self, by="steps_to_tol"):
        """The winning configuration: fewest steps to tol (ties: lower final loss), or lowest
        final_loss (``by="final_loss"``), or lowest rate (``by="rate"``); a dict of its
        hyperparameters and metrics. None when no configuration qualifies (none reached tol)."""
        if by == "steps_to_tol":
            if self.steps_to_tol is None:
                raise ValueError("best(by='steps_to_tol') needs a sweep run with tol=; use by='final_loss'")
            steps = np.where(self.steps_to_tol < 0, np.iinfo(np.int64).max, self.steps_to_tol)
            order = np.lexsort((self.final_loss.ravel(), steps.ravel()))
            if steps.ravel()[order[0]] == np.iinfo(np.int64).max:
                return None
            flat = order[0]
        elif by in ("final_loss", "rate"):
            values = getattr(self, by)
            if values is None:
                raise ValueError(f"this sweep has no {by} (a schedule has no rate)")
            flat = int(np.argmin(np.where(np.isnan(values), np.inf, values)))
        else:
            raise ValueError(f"by must be 'steps_to_tol', 'final_loss' or 'rate'; got {by!r}")
        return self._configuration(np.unravel_index(flat, self.shape))

    def to_xarray(self):
        """An ``xarray.Dataset``: one data variable per metric, named dims with coordinates."""
        try:
            import xarray  # noqa: PLC0415 -- optional
        except ImportError as error:
            raise ImportError("SweepResult.to_xarray needs xarray: pip install 'polyak[sweep]'") from error
        variables = {name: (self.dims, getattr(self, name)) for name in METRICS[:-1] if getattr(self, name) is not None}
        if self.loss is not None:
            variables["loss"] = ((*self.dims, "t"), self.loss)
        coords = {name: (("config",) if self.dims == ("config",) else (name,), values)
                  for name, values in self.coords.items()}
        if self.loss is not None:
            coords["t"] = ("t", self.recorded_at)
        return xarray.Dataset(variables, coords=coords, attrs=dict(steps=self.steps, tol=-1.0 if self.tol is None
                                                                    else self.tol))

    def to_dataframe(self):
        """A ``pandas.DataFrame``, one row per configuration (through :meth:`to_xarray`)."""
        try:
            import pandas  # noqa: F401, PLC0415 -- optional
        except ImportError as error:
            raise ImportError("SweepResult.to_dataframe needs pandas: pip install 'polyak[sweep]'") from error
        return self.to_xarray().drop_vars(["loss", "t"], errors="ignore").to_dataframe()

    def __repr__(self):
        grid = " × ".join(f"{dim} {size}" for dim, size in zip(self.dims, self.shape)) or "one configuration"
        best = self.best("steps_to_tol") if self.steps_to_tol is not None else self.best("final_loss")
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in (best or {}).items())
        return (f"SweepResult({grid}, steps={self.steps}, diverged {np.mean(self.diverged):.1%}, "
                f"best: {shown or 'none reached tol'}, {self.seconds:.3g} s)")


def _item(value):
    return value.item() if isinstance(value, np.generic) else value


def sweep(problem, steps, *, lr, beta=0.0, nesterov=False, convention="d2l", dampening=0.0, schedule=None, x0=None,
          tol=None, every=None, grid=True, n_threads=None, chunk_size=None):
    """Run every configuration of a grid of (lr, β, nesterov) on `problem`; keep its metrics.

    Parameters
    ----------
    problem : Quadratic
        Diagonal or dense (a dense Q is rotated once into its eigenbasis with
        :func:`polyak.analysis.eigendecompose`); one problem, or a batch (an axis "problem").
        Every eigenvalue must be >= 0, and 0 only where the linear term is 0 in that
        eigendirection (else f has no minimum).
    steps : int
        T >= 0.
    lr, beta : float or 1-D array_like
        Learning rates (finite, > 0) and momenta (in [0, 1]): a scalar, or an axis of values.
    nesterov : bool or 1-D array of bool
        An axis too (β = 0 with nesterov is gradient descent).
    convention, dampening, schedule
        As for :class:`polyak.Momentum` (the schedule: one multiplier per step, shared).
    x0 : array_like, shape (n,), optional
        The start; ones by default (every eigendirection of a diagonal problem excited equally).
    tol : float > 0, optional
        Track the first step with f(x_t) − f* <= tol (steps_to_tol).
    every : int >= 1, optional
        Also record the loss every `every` steps.
    grid : bool
        True: the outer product of the array-valued axes, dims in the order (problem, lr,
        beta, nesterov). False: a random search, the arrays (and a batch of problems) paired
        entry by entry, one axis "config".
    n_threads : int, optional
        As for :func:`polyak.run`; results do not depend on it, nor on `chunk_size`.
    chunk_size : int, optional
        Configurations per kernel call (by default as many as fit comfortably in memory).

    Returns
    -------
    SweepResult
    """
    if not isinstance(problem, Quadratic):
        raise TypeError(f"problem must be a polyak.Quadratic; got {type(problem).__name__}")
    steps = as_int(steps, "steps", minimum=0, maximum=MAX_STEPS)
    axes = {"lr": _axis(lr, "lr", float), "beta": _axis(beta, "beta", float),
            "nesterov": _axis(nesterov, "nesterov", bool)}
    if not np.all((axes["lr"] > 0)):
        raise ValueError(f"lr must be > 0; got {axes['lr'][axes['lr'] <= 0][0]}")
    if not np.all((axes["beta"] >= 0) & (axes["beta"] <= 1)):
        raise ValueError(f"beta must be in [0, 1]; got {axes['beta'][(axes['beta'] < 0) | (axes['beta'] > 1)][0]}")
    convention = resolve_convention(convention)
    dampening = as_dampening(dampening)
    check_form(convention, dampening, bool(np.any(axes["nesterov"])))
    if tol is not None:
        tol = float(require_shape(finite_real_array(tol, "tol"), [()], "tol"))
        if tol <= 0:
            raise ValueError(f"tol must be > 0; got {tol}")
    if every is not None:
        every = as_int(every, "every", minimum=1)
    multipliers = _schedule(schedule, steps)
    lam, e0 = _error_coordinates(problem, x0)
    if not isinstance(grid, (bool, np.bool_)):
        raise TypeError(f"grid must be True or False; got {grid!r}")
    dims, coords, configurations = _configurations(axes, problem, bool(grid))
    chunk_size = None if chunk_size is None else as_int(chunk_size, "chunk_size", minimum=1)
    threads = resolve_threads(n_threads)
    result = _run(lam, e0, configurations, dims, coords, convention, dampening, multipliers, steps, tol, every,
                  threads, chunk_size)
    result.constants = {name: values.item() for name, values in axes.items() if values.ndim == 0}
    return result


def _axis(value, name, kind):
    """A scalar or a non-empty 1-D axis of finite values (bools for `kind` bool)."""
    if kind is bool:
        array = np.asarray(value)
        if array.dtype != bool:
            raise TypeError(f"{name} must be True, False or a 1-D array of them; got {value!r}")
    else:
        array = np.asarray(finite_real_array(value, name), dtype=np.float64)
    if array.ndim > 1 or array.size == 0:
        raise ValueError(f"{name} must be a scalar or a non-empty 1-D array; got shape {array.shape}")
    return array


def _schedule(schedule, steps):
    if schedule is None:
        return np.ones(1)
    values = np.asarray(finite_real_array(schedule, "schedule"), dtype=np.float64)
    if values.ndim != 1 or values.size < steps:
        raise ValueError(f"schedule must be a 1-D array of at least steps={steps} multipliers; got shape {values.shape}")
    if np.any(values < 0):
        raise ValueError("schedule multipliers must be >= 0")
    return values[:steps] if steps else np.ones(1)


def _error_coordinates(problem, x0):
    """(λ, e₀), each (P, n) float64: the spectrum and the start's error in the eigenbasis."""
    n = problem.dim
    x0 = np.ones(n) if x0 is None else require_shape(finite_real_array(x0, "x0"), [(n,)], "x0")
    lam, rotation = problem.eigenbasis()
    lam = lam.astype(np.float64)
    c = problem.c.astype(np.float64)
    if rotation is None:
        z0, c_eigen = np.broadcast_to(x0, c.shape), c
    else:
        rotation = rotation.astype(np.float64)
        noise = 64 * np.finfo(np.float64).eps * np.max(np.abs(lam), axis=-1, keepdims=True)
        lam = np.where(np.abs(lam) <= noise, 0.0, lam)  # eigh's ±1e-16·max|λ| for a zero eigenvalue
        if rotation.ndim == 2:
            z0, c_eigen = np.broadcast_to(x0 @ rotation, c.shape), c @ rotation
        else:
            z0, c_eigen = np.einsum("i,bij->bj", x0, rotation), np.einsum("bi,bij->bj", c, rotation)
    lam = np.broadcast_to(lam, c.shape)
    if np.any(lam < 0):
        raise ValueError(f"the problem is unbounded below: an eigenvalue is {lam[lam < 0][0]:.6g} < 0 "
                         f"(a sweep measures f − f*)")
    flat = (lam == 0) & (c_eigen != 0)
    if np.any(flat):
        raise ValueError("the problem is unbounded below: an eigenvalue is 0 where the linear term is not "
                         "(no minimizer)")
    z_star = np.where(lam > 0, -c_eigen / np.where(lam > 0, lam, 1.0), z0)  # λ = 0: any point; e = 0
    return np.ascontiguousarray(lam), np.ascontiguousarray(z0 - z_star)


def _configurations(axes, problem, grid):
    """(dims, coords, (problem_index, lr, beta, nesterov) per configuration, problem-major)."""
    arrays = {name: values for name, values in axes.items() if values.ndim == 1}
    if problem.batched:
        arrays = {"problem": np.arange(problem.batch_size), **arrays}
    if grid:
        dims = tuple(name for name in AXES if name in arrays)
        mesh = np.meshgrid(*(arrays[d] for d in dims), indexing="ij") if dims else []
        columns = {d: m.ravel() for d, m in zip(dims, mesh)}
        coords = {d: arrays[d] for d in dims}
        size = int(np.prod([arrays[d].size for d in dims])) if dims else 1
    else:
        lengths = {name: values.size for name, values in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"grid=False pairs the arrays entry by entry: they must have one length; got {lengths}")
        size = next(iter(lengths.values()), 1)
        dims = ("config",)
        columns = dict(arrays)
        coords = {name: values for name, values in arrays.items()}
    full = {name: np.broadcast_to(columns[name] if name in columns else axes[name][()], (size,))
            for name in ("lr", "beta", "nesterov")}
    index = np.asarray(columns["problem"], np.int64) if "problem" in columns else np.broadcast_to(np.int64(0), (size,))
    return dims, coords, (index, full["lr"], full["beta"], full["nesterov"])


def coefficient_forms(convention, dampening, nesterov=True):
    """(2, 8, 4): each column of a fresh configuration's coefficient table (polyak.plans.COLUMNS)
    as the bilinear form A + B lr + C β + D lr β it is in every convention, without (0) and
    with (1) nesterov (NaN where `nesterov` is False: not asked for, maybe not defined): the
    values at the corners lr, β ∈ {0, 1}. The sweep kernel builds each configuration's row
    from these, exactly (the forms' coefficients are 0, 1, 1 − τ or the like, and the products
    with them exact), instead of reading a (C, 8) table."""
    lr, beta = np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0, 1.0])
    forms = np.full((2, len(COLUMNS), 4), np.nan)
    for accelerated in (0, 1) if nesterov else (0,):
        table = plans.coefficient_rows(convention, lr, beta, 4, nesterov=bool(accelerated), dampening=dampening,
                                       fresh=True)
        f00, f10, f01, f11 = table
        forms[accelerated] = np.stack([f00, f10 - f00, f01 - f00, f11 - f10 - f01 + f00], axis=-1)
    return forms


def _chunks(index, lanes):
    """(chunk_problem, chunk_start) for configurations ordered by problem: chunks of at most
    `lanes` consecutive configurations of one problem."""
    if index.strides[0] == 0:  # one problem (a broadcast index)
        bounds = np.array([0, len(index)])
    else:
        bounds = np.concatenate([[0], np.flatnonzero(np.diff(index)) + 1, [len(index)]])
    starts = np.concatenate([np.arange(lo, hi, lanes) for lo, hi in zip(bounds[:-1], bounds[1:])])
    starts = starts.astype(np.int64)
    return index[starts].astype(np.int64), np.append(starts, len(index)).astype(np.int64)


def _run(lam, e0, configurations, dims, coords, convention, dampening, multipliers, steps, tol, every, threads,
         chunk_size):
    index, lr, beta, nesterov = configurations
    C = len(index)
    K = steps // every + 1 if every else 0
    require_memory(C * (8.0 * (2 + 4 + K)), "this sweep's results",  # lr, β; 4 results; records
                   ["fewer configurations", "a larger `every`, or none"])
    chunk = chunk_size or max(1, min(C, 2**20))
    final_loss, diverged = np.empty(C), np.empty(C, np.uint8)
    steps_to_tol = np.empty(C, np.int64)
    loss = np.empty((C, K))
    constant = bool(np.all(multipliers == multipliers[0]))
    rate = np.empty(C if constant else 0)
    module = kernels("_sweep")
    bound = DIVERGENCE_BOUND[np.dtype(np.float64)]
    accelerated = (np.asarray(nesterov, bool) & (np.asarray(beta) > 0)).view(np.uint8)  # β = 0: it is GD
    forms = coefficient_forms(convention, dampening, nesterov=bool(accelerated.any()))
    start = time.perf_counter()
    for lo in range(0, C, chunk):
        hi = min(C, lo + chunk)
        chunk_problem, chunk_start = _chunks(index[lo:hi], module.lanes())
        module.sweep_diagonal(lam=lam, e0=e0, chunk_problem=chunk_problem, chunk_start=chunk_start,
                              lr=np.ascontiguousarray(lr[lo:hi], np.float64),
                              beta=np.ascontiguousarray(beta[lo:hi], np.float64),
                              accelerated=accelerated[lo:hi], forms=forms, schedule=multipliers, steps=steps,
                              tol=-1.0 if tol is None else tol, every=every or 0, bound=bound,
                              final_loss=final_loss[lo:hi], steps_to_tol=steps_to_tol[lo:hi],
                              diverged=diverged[lo:hi], loss=loss[lo:hi], rate=rate[lo:hi] if constant else rate,
                              n_threads=threads, stop=np.zeros(1, np.intc))
    seconds = time.perf_counter() - start
    shape = tuple(len(coords[d]) for d in dims) if dims != ("config",) else (C,)
    rate = rate.reshape(shape) if constant else None
    return SweepResult(final_loss=final_loss.reshape(shape), steps_to_tol=steps_to_tol.reshape(shape) if tol else None,
                       diverged=diverged.view(bool).reshape(shape), rate=rate,
                       loss=loss.reshape(shape + (K,)) if every else None,
                       recorded_at=np.arange(0, steps + 1, every, dtype=np.int64) if every else np.zeros(0, np.int64),
                       dims=dims, coords=coords, steps=steps, seconds=seconds, tol=tol)
