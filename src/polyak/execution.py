"""`execute`: run a plan with the code that a table picks by (plan kind, implementation).

==============  ==========================  ==============================  =================
plan kind       "kernel"                    "reference"                     "closed-form"
==============  ==========================  ==============================  =================
diagonal        _diagonal.run_diagonal      reference.momentum              eigen-coordinates
dense           _dense.run_dense_batched    reference.momentum              eigen-coordinates
dense-shared    _dense.run_dense_shared     reference.momentum              eigen-coordinates
least-squares   _train.train_linear         reference.momentum              —
==============  ==========================  ==============================  =================

The kernels are those of the instruction-set level in use (``polyak.show_config()``).
"""

import concurrent.futures
import os
import threading
import time
from typing import NamedTuple

import numpy as np

from polyak import _closed_form, reference
from polyak._config import kernels, level, resolve_threads
from polyak._memory import require_memory
from polyak._stability import stability
from polyak._validation import FLOAT_DTYPES
from polyak.plans import Plan
from polyak.results import Result

__all__ = ["execute", "IMPLEMENTATIONS"]

#: The implementations a plan can be executed with (not every kind has every one).
IMPLEMENTATIONS = ("kernel", "reference", "closed-form")
#: BLAS sizes are 32-bit integers (scipy.linalg.cython_blas).
_BLAS_LIMIT = 2**31 - 1
#: Kernel runs with less work than this (multiply-adds: 0.1 to 1 s on a 2-core machine, so
#: that they end by themselves about as soon as an interrupt would end them) run on the
#: calling thread; longer ones on a worker thread, so that the caller can be interrupted.
_INTERRUPTIBLE_WORK = 2 * 10**9


class _Outputs(NamedTuple):
    x: np.ndarray
    u: np.ndarray
    loss: np.ndarray  # or None
    trajectory: np.ndarray  # or None
    steps_taken: np.ndarray
    diverged: np.ndarray
    n_threads: int


def execute(plan, implementation="kernel", *, n_threads=None):
    """Run `plan` and return its :class:`polyak.Result`.

    Parameters
    ----------
    plan : Plan
        From :func:`polyak.plan` (or a piece of one, :meth:`Plan.split`).
    implementation : "kernel", "reference" or "closed-form"
        The compiled kernel; its NumPy twin in :mod:`polyak.reference` (the specification;
        it also runs np.longdouble plans); or, for quadratics with a constant learning rate,
        the iterates in closed form (:mod:`polyak._closed_form`: O(n) per record whatever
        the number of steps, in float64; a configuration that diverges stops at the same
        check as in a run).
    n_threads : int, optional
        Threads over configurations (1 to 1024, reduced to the CPUs this process may use and
        to B); the OpenMP default (OMP_NUM_THREADS, reduced the same way) when None. Results
        do not depend on it. A dense Q shared by all configurations is the exception: the
        BLAS threads its one product per step (its own setting, e.g. OPENBLAS_NUM_THREADS)
        and the rest runs on one thread.

    Before it allocates, the run estimates the memory it needs: more than the machine has
    available is a MemoryError that says how much and what to change. A long kernel run
    can be interrupted (Ctrl-C: KeyboardInterrupt within a fraction of a second).
    """
    if not isinstance(plan, Plan):
        raise TypeError(f"plan must be a polyak.Plan (from polyak.plan); got {type(plan).__name__}")
    runner = _TABLE.get((plan.kind, implementation)) if isinstance(implementation, str) else None
    if runner is None:
        if not isinstance(implementation, str) or implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {', '.join(map(repr, IMPLEMENTATIONS))}; "
                             f"got {implementation!r}")
        available = [name for kind, name in _TABLE if kind == plan.kind]
        raise ValueError(f"a {plan.kind} plan runs with implementation {' or '.join(map(repr, available))}, "
                         f"not {implementation!r}")
    threads = min(resolve_threads(n_threads), len(plan))  # more threads than configurations would idle
    _require_memory(plan, implementation)
    start = time.perf_counter()
    out = runner(plan, threads)
    seconds = time.perf_counter() - start
    has_velocity = plan.has_velocity and (plan.buffer_at_start or plan.steps > 0)
    if has_velocity and plan.velocity_sign < 0:
        np.negative(out.u, out=out.u)
    diverged = out.diverged.view(bool) if out.diverged.dtype == np.uint8 else out.diverged
    result = Result(
        x=out.x, velocity=out.u if has_velocity else None, loss=out.loss, trajectory=out.trajectory,
        recorded_at=plan.recorded_at, diverged=diverged,
        steps_taken=out.steps_taken, steps=plan.steps, implementation=implementation, n_threads=out.n_threads,
        seconds=seconds, level=level() if implementation == "kernel" else None, unstable=stability(plan),
    )
    return result if plan.batched else result.unbatched()


def _work(plan):
    """Multiply-adds of a run, roughly: configurations × (steps × the cost of a step + records
    × the cost of a record)."""
    n = plan.dim
    if plan.kind == "least-squares":  # a step's minibatch; a record's whole data set
        per_step, per_record = n * plan.problem.minibatch_size, n * plan.problem.X.shape[0]
    else:
        per_step = per_record = n if plan.kind == "diagonal" else n * n
    return len(plan) * (max(plan.steps, 1) * per_step + plan.recorded_at.size * per_record)


def _nbytes(plan, implementation):
    """The memory a run allocates, roughly: outputs, records, the kernels' workspace or the
    NumPy implementations' temporaries."""
    B, n, K = len(plan), plan.dim, plan.recorded_at.size
    itemsize = np.dtype(plan.dtype).itemsize
    per_configuration = {"kernel": 2 * n + (3 * n if plan.kind.startswith("dense") else 0),
                         "reference": 8 * n, "closed-form": 24 * n}[implementation]
    records = K * (("loss" in plan.record) + n * ("trajectory" in plan.record))
    nbytes = float(B) * ((per_configuration + records) * itemsize + 16)
    if plan.kind.startswith("dense"):  # n × n matrices: converted, copied per configuration, rotations
        own = plan.problem.batch_size if plan.kind == "dense" else 1
        per_run = plan.kind == "dense"
        matrices = {"kernel": own, "reference": B if per_run else 1, "closed-form": 2 * (own + (B if per_run else 0))}
        nbytes += float(matrices[implementation]) * n * n * (8 if implementation == "closed-form" else itemsize)
    return nbytes


def _require_memory(plan, implementation):
    advice = ["record less often (every=)" if plan.record else None,
              "float32 (dtype=np.float32)" if np.dtype(plan.dtype).itemsize > 4 else None,
              "fewer configurations at a time (Plan.split)"]
    require_memory(_nbytes(plan, implementation), "this run", advice)


def _call_kernel(function, work, **arguments):
    """function(**arguments, stop=flag): a kernel, run where Ctrl-C can stop it.

    A kernel holds the thread that calls it until it returns, and Python handles signals on
    the main thread only between bytecodes. Long runs therefore go to a worker thread while
    the caller waits; on KeyboardInterrupt the caller raises the flag, which the kernel
    checks between pieces of work well under a second long, waits for it, and re-raises.
    """
    stop = np.zeros(1, np.intc)
    if work < _INTERRUPTIBLE_WORK or threading.current_thread() is not threading.main_thread():
        return function(**arguments, stop=stop)  # short, or not where signals arrive
    future = _worker().submit(function, **arguments, stop=stop)
    try:
        return future.result()
    except KeyboardInterrupt:
        stop[0] = 1
        concurrent.futures.wait([future])
        raise


_pool = {}  # the worker thread, made on first use: one thread, so that OpenMP keeps one team for it


def _worker():
    if "executor" not in _pool:
        _pool["executor"] = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="polyak-kernel")
    return _pool["executor"]


def _forget_worker():
    # a forked child has the executor's records but not its thread: it makes its own
    _pool.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_worker)


def _as(array, dtype):
    return np.ascontiguousarray(array, dtype=dtype)


def _kernel_dtype(plan):
    if plan.dtype not in FLOAT_DTYPES:
        raise ValueError(f"the compiled kernels compute in float32 or float64, not {plan.dtype}; "
                         f"run this plan with implementation='reference'")
    return plan.dtype


def _state(plan, dtype, *, table=True):
    """The kernels' keyword arguments shared by every run: configurations, start, outputs;
    `table`: with the plan's (B, 8) coefficient table (the diagonal kernel builds its rows)."""
    B, n, K = len(plan), plan.dim, plan.recorded_at.size
    rows = dict(coefficients=_as(plan.coefficients, dtype)) if table else dict(lr=plan.lr, beta=plan.beta,
                                                                                  forms=plan.forms)
    return dict(
        problem_index=_as(plan.problem_index, np.int64), **rows,
        schedule=_as(plan.schedule, dtype), x0=_as(plan.x0, dtype), u0=_as(plan.u0, dtype),
        x=np.empty((B, n), dtype), u=np.empty((B, n), dtype),
        loss=np.empty((B, K if "loss" in plan.record else 0), dtype),
        trajectory=np.empty((B, K if "trajectory" in plan.record else 0, n), dtype),
        steps_taken=np.empty(B, np.int64), diverged=np.empty(B, np.uint8),
        steps=plan.steps, bound=plan.divergence_bound,
    )


def _outputs(plan, state, n_threads):
    return _Outputs(state["x"], state["u"], state["loss"] if "loss" in plan.record else None,
                    state["trajectory"] if "trajectory" in plan.record else None, state["steps_taken"], state["diverged"], n_threads)


def _diagonal_kernel(plan, n_threads):
    dtype, problem = _kernel_dtype(plan), plan.problem
    state = _state(plan, dtype, table=False)
    _call_kernel(kernels("_diagonal").run_diagonal, _work(plan), lam=_as(problem.lam, dtype),
                 c=_as(problem.c, dtype), b=_as(problem.b, dtype), every=plan.every, n_threads=n_threads, **state)
    return _outputs(plan, state, n_threads)


def _dense_kernel(plan, n_threads):
    dtype, problem = _kernel_dtype(plan), plan.problem
    if max(len(plan), plan.dim) > _BLAS_LIMIT:
        raise ValueError(f"dense runs take fewer than 2**31 configurations and dimensions; got {len(plan)} and {plan.dim}")
    state = _state(plan, dtype)
    module = kernels("_dense")
    run = module.run_dense_shared if problem.shared else module.run_dense_batched
    n_threads = 1 if problem.shared else n_threads  # the BLAS threads the shared product
    _call_kernel(run, _work(plan), Q=_as(problem.Q, dtype), c=_as(problem.c, dtype), b=_as(problem.b, dtype),
                 g=np.empty((len(plan), plan.dim), dtype), saved=np.empty((len(plan), 2 * plan.dim), dtype),
                 every=plan.every, n_threads=n_threads, **state)
    return _outputs(plan, state, n_threads)


def _least_squares_kernel(plan, n_threads):
    dtype, problem = _kernel_dtype(plan), plan.problem
    state = _state(plan, dtype)
    del state["trajectory"], state["problem_index"]  # one problem, no trajectory
    _call_kernel(kernels("_train").train_linear, _work(plan), X=_as(problem.X, dtype), y=_as(problem.y, dtype),
                 order=problem.order, batch_size=problem.minibatch_size, record_every=problem.record_every,
                 n_threads=n_threads, **state)
    return _outputs(plan, state, n_threads)


def _run_reference(plan, gradient, value):
    x, u = plan.start(plan.dtype)
    loss, trajectory, steps_taken, diverged = reference.momentum(
        gradient, x, u, plan.coefficients.astype(plan.dtype), plan.schedule.astype(plan.dtype), plan.steps,
        value=value if "loss" in plan.record else None, recorded_at=plan.recorded_at,
        trajectory="trajectory" in plan.record, bound=plan.divergence_bound)
    return _Outputs(x, u, loss, trajectory, steps_taken, diverged, 1)


def _quadratic_reference(plan, n_threads):
    problems = plan.problem.take(plan.problem_index, plan.dtype)  # row p: configuration p's problem
    return _run_reference(plan, *reference.quadratic_gradient(problems.curvature, problems.c, problems.b))


def _least_squares_reference(plan, n_threads):
    problem, dtype = plan.problem, plan.dtype
    gradient, value = reference.minibatch_gradient(problem.X.astype(dtype), problem.y.astype(dtype),
                                                   problem.order, problem.minibatch_size)
    return _run_reference(plan, gradient, value)


def _quadratic_closed_form(plan, n_threads):
    x, u, loss, trajectory, steps_taken, diverged = _closed_form.run(plan)
    return _Outputs(x, u, loss, trajectory, steps_taken, diverged, 1)


_TABLE = {
    ("diagonal", "kernel"): _diagonal_kernel,
    ("diagonal", "reference"): _quadratic_reference,
    ("diagonal", "closed-form"): _quadratic_closed_form,
    ("dense", "kernel"): _dense_kernel,
    ("dense", "reference"): _quadratic_reference,
    ("dense", "closed-form"): _quadratic_closed_form,
    ("dense-shared", "kernel"): _dense_kernel,
    ("dense-shared", "reference"): _quadratic_reference,
    ("dense-shared", "closed-form"): _quadratic_closed_form,
    ("least-squares", "kernel"): _least_squares_kernel,
    ("least-squares", "reference"): _least_squares_reference,
}
