"""`run`: an update rule on a batch of problems, by the compiled kernel (or its NumPy twin)."""

import os
import time

import numpy as np

from polyak import reference
from polyak._config import resolve_threads
from polyak._validation import FLOAT_DTYPES, as_int, finite_real_array, require_shape, resolve_dtype
from polyak.problems import Quadratic
from polyak.rules import _Rule

__all__ = ["run", "RunResult", "DIVERGENCE_BOUND"]

#: The most steps one run takes (steps and records are indexed with 64-bit integers).
MAX_STEPS = 2**62
#: Default bound on |xᵢ| beyond which a problem counts as diverged, per dtype.
DIVERGENCE_BOUND = {np.dtype(np.float64): 1e100, np.dtype(np.float32): 1e15}
_RECORDABLE = ("loss", "trajectory")


class RunResult:
    """The outcome of :func:`run`, with per-problem arrays (unbatched for a single problem).

    Attributes
    ----------
    x : ndarray, shape (B, n)
        The final iterate (for a diverged problem: the iterate at the step it stopped).
    velocity : ndarray, shape (B, n), or None
        The velocity in the rule's own convention, usable as `v0` to continue; None for GD,
        and for the torch convention before its first step (no momentum buffer exists yet).
    loss : ndarray, shape (B, K), or None
        f(xₜ) for t = 0, every, 2·every, …, K = steps // every + 1; NaN after a stop.
    trajectory : ndarray, shape (K, B, n), or None
        The iterates at the same steps; NaN after a stop.
    diverged : ndarray of bool, shape (B,)
        True where a problem diverged: at a check (after every 128th step and after the last)
        some |xᵢ| was beyond the bound, or NaN. It stopped there.
    steps_taken : ndarray of int, shape (B,)
        The steps each problem ran: `steps`, or fewer where it diverged before the last check
        (a problem found diverged at the last check ran them all: test `diverged`, not this).
    steps, every, n_threads : int
        As asked (n_threads: as used).
    seconds : float
        Wall-clock time of the kernel call.
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def __repr__(self):
        shape = "x".join(map(str, self.x.shape))
        diverged = int(np.count_nonzero(self.diverged))
        problems = np.size(self.diverged)
        recorded = [name for name in _RECORDABLE if getattr(self, name) is not None]
        return (
            f"RunResult(x: {shape} {self.x.dtype}, steps={self.steps}, diverged={diverged} of {problems}, "
            f"recorded={recorded or None}, n_threads={self.n_threads}, seconds={self.seconds:.3g})"
        )


def _recorded(record):
    if record is None:
        return set()
    names = [record] if isinstance(record, str) else record
    try:
        names = list(names)
    except TypeError:
        names = [record]
    if not all(isinstance(name, str) and name in _RECORDABLE for name in names):
        raise ValueError(f"record must be None, 'loss', 'trajectory' or both as a tuple; got {record!r}")
    return set(names)


def _kernel(implementation, problem):
    if implementation not in ("kernel", "reference"):
        raise ValueError(f"implementation must be 'kernel' or 'reference'; got {implementation!r}")
    if problem.kind == "diagonal":
        if implementation == "reference":
            return reference.run_diagonal
        from polyak._kernels._diagonal import run_diagonal  # noqa: PLC0415

        return run_diagonal
    if implementation == "reference":
        return reference.run_dense
    from polyak._kernels import _dense  # noqa: PLC0415

    return _dense.run_dense_shared if problem.shared else _dense.run_dense_batched


def run(problem, rule, x0, steps, *, v0=None, record=None, every=1, n_threads=None, dtype=None,
        divergence_bound=None, implementation="kernel"):
    """Run an update rule for `steps` steps on every problem of a batch at once.

    Parameters
    ----------
    problem : Quadratic
        One problem or a batch of B, diagonal or dense (a dense Q shared by the batch takes
        one BLAS matrix product per step for all problems).
    rule : GD or Momentum
        The update rule; array hyperparameters give one value per problem. A single problem
        with hyperparameter arrays of length B runs as a batch of B copies of it.
    x0 : array_like, shape (n,) or (B, n)
        The starting point, shared by the batch or one per problem.
    steps : int
        Number of steps T >= 0.
    v0 : array_like, shape (n,) or (B, n), optional
        The starting velocity in the rule's convention (e.g. a previous result's
        `velocity`); zero when omitted. Given, a torch-convention run continues an existing
        momentum buffer (no undamped first step). Not for GD.
    record : None, "loss", "trajectory" or ("loss", "trajectory")
        What to record every `every` steps, starting with t = 0.
    every : int
        Recording interval >= 1.
    n_threads : int, optional
        Threads over problems (1 to 1024; at most B are used); the OpenMP default
        (OMP_NUM_THREADS) when None. Results do not depend on it. A dense Q shared by the
        batch is the exception: the BLAS threads its one matrix product per step (its own
        setting, e.g. OPENBLAS_NUM_THREADS) and the rest runs on one thread.
    dtype : float32 or float64, optional
        Arithmetic precision; float32 when the problem and x0 (and v0) are float32, else float64.
        The reference implementation also takes np.longdouble, for accuracy checks.
    divergence_bound : float, optional
        |xᵢ| beyond which a problem counts as diverged: 1e100 (float64) or 1e15 (float32) by
        default. Checked after every 128th step and after the last; a diverged problem stops.
    implementation : "kernel" or "reference"
        The compiled kernel, or its NumPy twin in :mod:`polyak.reference` (the specification).

    Returns
    -------
    RunResult
    """
    if not isinstance(problem, Quadratic):
        raise TypeError(f"problem must be a polyak.Quadratic; got {type(problem).__name__}")
    if not isinstance(rule, _Rule):
        raise TypeError(f"rule must be polyak.GD or polyak.Momentum; got {type(rule).__name__}")
    steps = as_int(steps, "steps", minimum=0, maximum=MAX_STEPS)
    every = as_int(every, "every", minimum=1)
    recorded = _recorded(record)
    kernel = _kernel(implementation, problem)

    batched = problem.batched or rule.batch_length is not None
    B = problem.batch_size if problem.batched else (rule.batch_length or 1)
    n = problem.dim
    starts = [(n,), (B, n)] if batched else [(n,)]
    x0 = require_shape(finite_real_array(x0, "x0"), starts, "x0")
    if v0 is not None:
        if not rule.has_velocity:
            raise ValueError("v0 is not used by GD, which has no velocity; omit it")
        v0 = require_shape(finite_real_array(v0, "v0"), starts, "v0")
    allowed = FLOAT_DTYPES + ((np.dtype(np.longdouble),) if implementation == "reference" else ())
    dtype = resolve_dtype(dtype, problem.lam, x0, v0, allowed=allowed)
    bound = _divergence_bound(divergence_bound, dtype)
    threads = min(resolve_threads(n_threads), B)  # more threads than problems would idle
    if problem.shared:
        threads = 1  # the BLAS threads the product; the update runs on the calling thread
    kernel_rule = rule._resolve(B, steps, dtype, continuing=v0 is not None)
    inputs = dict(lr=rule.lr, beta=rule.beta, lam=problem.lam, Q=problem.Q, c=problem.c, b=problem.b, x0=x0, v0=v0)
    if rule.schedule is not None:
        inputs["schedule"] = rule.schedule[:steps]
    for name, values in inputs.items():
        if values is not None:
            _require_representable(values, name, dtype)

    def batch_array(value, shape=(B, n)):
        return np.ascontiguousarray(np.broadcast_to(value, shape), dtype=dtype)

    c, b = batch_array(problem.c), batch_array(problem.b, (B,))
    x = np.array(np.broadcast_to(x0, (B, n)), dtype=dtype, order="C")
    u = np.zeros((B, n), dtype) if v0 is None else kernel_rule.velocity_sign * batch_array(v0)
    records = steps // every + 1
    loss_shape = (B, records if "loss" in recorded else 0)
    trajectory_shape = (records if "trajectory" in recorded else 0, B, n)
    _require_memory(dtype.itemsize * (np.prod(loss_shape) + np.prod(trajectory_shape)))
    loss, trajectory = np.empty(loss_shape, dtype), np.empty(trajectory_shape, dtype)
    steps_taken = np.empty(B, np.int64)
    diverged = np.empty(B, np.uint8)

    if problem.kind == "diagonal":
        operands = (batch_array(problem.lam), c, b, x, u)
    else:
        Q = np.ascontiguousarray(problem.Q if problem.shared else np.broadcast_to(problem.Q, (B, n, n)), dtype=dtype)
        operands = (Q, c, b, x, u, np.empty((B, n), dtype))  # the last: the product's workspace

    start = time.perf_counter()
    kernel(*operands, kernel_rule.lr, kernel_rule.beta, kernel_rule.schedule, steps,
           kernel_rule.lr_inside, kernel_rule.nesterov, kernel_rule.dampening,
           kernel_rule.first_step_undamped, min(every, steps + 1), bound, loss, trajectory,
           steps_taken, diverged, threads)
    seconds = time.perf_counter() - start

    if kernel_rule.velocity_sign < 0:
        np.negative(u, out=u)
    # torch keeps no momentum buffer before its first step: none to continue from
    no_buffer = kernel_rule.first_step_undamped and steps == 0
    outputs = dict(
        x=x,
        velocity=u if rule.has_velocity and not no_buffer else None,
        loss=loss if "loss" in recorded else None,
        trajectory=trajectory if "trajectory" in recorded else None,
        diverged=diverged.view(bool),
        steps_taken=steps_taken,
    )
    if not batched:
        outputs = {key: _unbatch(key, value) for key, value in outputs.items()}
    return RunResult(**outputs, steps=steps, every=every, n_threads=threads, seconds=seconds)


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


def _require_memory(nbytes):
    # a recording that cannot fit is an error now, not an out-of-memory kill later
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return
    if nbytes > physical // 2:
        raise ValueError(
            f"the recording would take {nbytes / 2**30:.1f} GiB, more than half of this machine's "
            f"{physical / 2**30:.1f} GiB; record less often (every=k), record only 'loss', or run fewer problems"
        )


def _unbatch(key, value):
    if value is None:
        return None
    if key == "trajectory":
        return value[:, 0]
    return value[0]
