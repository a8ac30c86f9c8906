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
from polyak._config import kernels
from polyak._lr_scheduler import check_schedule, schedule_multipliers
from polyak._memory import require_memory
from polyak._sweep_result import METRICS, SweepResult
from polyak._sweep_run import SweepSpec, pieces, rows_per_piece, run_pieces
from polyak._sweep_store import MemorySink, identity, kind_of, load_sweep, open_store
from polyak._validation import as_int, finite_real_array, require_shape
from polyak.plans import MAX_STEPS
from polyak.problems import Quadratic
from polyak.rules import as_dampening, check_form, resolve_convention

__all__ = ["sweep", "load_sweep", "SweepResult", "METRICS"]

#: The axes a sweep may have, in the order of the result's dimensions.
AXES = ("problem", "lr", "beta", "nesterov")


def sweep(problem, steps, *, lr, beta=0.0, nesterov=False, convention="d2l", dampening=0.0, schedule=None, x0=None,
          tol=None, every=None, grid=True, n_threads=None, chunk_size=None, client=None, store=None, progress=None):
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
        As for :class:`polyak.Momentum` (the schedule: one multiplier per step, shared, or a
        :mod:`polyak.schedules` schedule).
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
        As for :func:`polyak.run`; on a Dask client, the threads of each task (by default 1:
        a worker runs as many tasks at once as it has threads). Results do not depend on it,
        nor on `chunk_size`, nor on where the pieces ran.
    chunk_size : int, optional
        About this many configurations per piece: one kernel call, one task on a cluster, one
        chunk of a store (whole rows of the first axis; by default about a tenth of a second
        of kernel work on two cores, at most 2²⁰ configurations).
    client : dask.distributed.Client, optional
        Run the pieces as tasks on its workers (each runs the compiled kernel with its own
        threads); the results are gathered here, bit for bit those of a local run. Without
        one, everything runs in this process and Dask is not imported.
    store : str or path, optional
        Write the results to a store: ``.zarr`` (each piece as it completes), ``.nc`` or
        ``.npz`` (at the end). The store records what produced it; the same sweep called
        again with the same store resumes it (computing only the pieces missing), a
        different sweep is refused. The result then reads its metrics from the store.
    progress : bool, optional
        A progress bar (tqdm) on stderr; by default when stderr is a terminal and the sweep
        is more than a moment's work.

    Returns
    -------
    SweepResult

    Ctrl-C stops a local sweep within about a second (KeyboardInterrupt); the pieces already
    done stay in a Zarr store.
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
    multipliers = schedule_multipliers(check_schedule(schedule), steps, axes["lr"])
    lam, e0 = _error_coordinates(problem, x0)
    if not isinstance(grid, (bool, np.bool_)):
        raise TypeError(f"grid must be True or False; got {grid!r}")
    dims, coords, shape = _configurations(axes, problem, bool(grid))
    chunk_size = None if chunk_size is None else as_int(chunk_size, "chunk_size", minimum=1)
    if n_threads is not None:
        n_threads = as_int(n_threads, "n_threads", minimum=1)
    constants = {name: values.item() for name, values in axes.items() if values.ndim == 0}
    spec = SweepSpec(lam=lam, e0=e0, dims=dims, shape=shape, coords=coords, constants=constants, grid=bool(grid),
                     forms=_both_forms(convention, dampening, nesterov=bool(np.any(axes["nesterov"]))),
                     multipliers=multipliers, steps=steps, tol=tol, every=every, n_threads=n_threads,
                     level=kernels("_probe").level())
    rows = rows_per_piece(spec, chunk_size)
    if store is None or kind_of(store) != ".zarr":  # (all of it in memory)
        require_memory(spec.size * 8.0 * (4 + spec.records), "this sweep's results",
                       ["fewer configurations", "a larger `every`, or none", "a .zarr store (store=)"])
    if store is None:
        layout = pieces(spec, rows)
        sink = MemorySink(spec, layout)
        seconds = run_pieces(spec, layout, range(len(layout)), sink, client=client, progress=progress)
        return sink.result(seconds)
    target = open_store(store, spec, identity(spec, convention, dampening), rows)
    todo = [i for i in range(len(target.layout)) if i not in target.done]
    start, interrupted = time.perf_counter(), True
    try:
        run_pieces(spec, target.layout, todo, target, client=client, progress=progress)
        interrupted = False
    finally:  # (an interrupted call's time counts too: its pieces are kept)
        target.finish(time.perf_counter() - start, interrupted=interrupted)
    return target.result()


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
    """(dims, coords, shape): the result's axes (problem-major) and their values; for a random
    search (one axis "config"), each array-valued parameter's value per configuration."""
    arrays = {name: values for name, values in axes.items() if values.ndim == 1}
    if problem.batched:
        arrays = {"problem": np.arange(problem.batch_size), **arrays}
    if grid:
        dims = tuple(name for name in AXES if name in arrays)
        return dims, {d: arrays[d] for d in dims}, tuple(arrays[d].size for d in dims)
    lengths = {name: values.size for name, values in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"grid=False pairs the arrays entry by entry: they must have one length; got {lengths}")
    size = next(iter(lengths.values()), 1)
    return ("config",), dict(arrays), (size,)


def _both_forms(convention, dampening, nesterov):
    """(2, 8, 4): :func:`polyak.plans.coefficient_forms` without (0) and with (1) nesterov
    (NaN where `nesterov` is False: not asked for, maybe not defined); the sweep kernel builds
    each configuration's row from these instead of reading a (C, 8) table."""
    forms = np.full((2, len(plans.COLUMNS), 4), np.nan)
    for accelerated in (0, 1) if nesterov else (0,):
        forms[accelerated] = plans.coefficient_forms(convention, dampening, nesterov=bool(accelerated))
    return forms
