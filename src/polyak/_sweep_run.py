"""Running a sweep: its configurations cut into pieces, each piece one call of the kernel, in
this process (Ctrl-C stops it between intervals of the kernel) or as tasks on a Dask cluster,
each piece handed to a sink (memory or a store) as it completes, with an optional progress bar.

A piece is a slab of whole rows along the first axis of the result (whole configurations of
the flattened grid, problem-major), so that a store can keep it as one chunk. Every
configuration is computed the same way whichever piece, thread or worker runs it: results
do not depend on how the work was cut or where it ran (on one kind of CPU: the kernels of
different instruction-set levels may round differently).
"""

import dataclasses
import sys
import time

import numpy as np

from polyak._config import kernels, resolve_threads
from polyak.execution import _call_kernel
from polyak.plans import DIVERGENCE_BOUND

#: Kernel work (coordinate-steps) per piece by default: about a tenth of a second on two cores.
PIECE_WORK = 2 * 10**9
#: Configurations per piece at most and at least, by default.
PIECE_MOST, PIECE_LEAST = 2**20, 2**12
#: Bytes of metrics per piece at most, by default.
PIECE_BYTES = 2**28


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """Everything a piece needs, small enough to send to workers: the problem's spectra and
    starting errors (P, n), the axes, and the run's settings."""

    lam: np.ndarray
    e0: np.ndarray
    dims: tuple
    shape: tuple
    coords: dict  # axis values; for a random search, each parameter's value per configuration
    constants: dict  # the parameters given as scalars
    grid: bool
    forms: np.ndarray
    multipliers: np.ndarray
    steps: int
    tol: float | None
    every: int | None
    n_threads: int | None
    level: str  # the kernels' instruction-set level (levels may round differently)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def rows(self):
        """Rows of the first axis (1 for a single configuration)."""
        return self.shape[0] if self.shape else 1

    @property
    def row(self):
        """Configurations per row of the first axis."""
        return int(np.prod(self.shape[1:], dtype=np.int64))

    @property
    def records(self):
        return self.steps // self.every + 1 if self.every else 0

    @property
    def extremes(self):
        """(μ, L): the smallest positive and the largest eigenvalue of the problems, or None."""
        positive = self.lam[self.lam > 0]
        return (float(positive.min()), float(positive.max())) if positive.size else None

    @property
    def constant_rate(self):
        return bool(np.all(self.multipliers == self.multipliers[0]))

    def configurations(self, lo, hi):
        """(problem index, lr, beta, nesterov) of configurations lo..hi−1 of the flattened grid
        (whole rows of its first axis, as every piece is)."""
        if self.grid:
            if lo % self.row or hi % self.row:
                raise ValueError(f"configurations {lo}..{hi - 1} are not whole rows of {self.row}")
            values = {name: self._axis_over_rows(name, lo // self.row, hi // self.row) for name in _PARAMETERS}
        else:
            values = {name: self.coords[name][lo:hi] if name in self.coords else None for name in _PARAMETERS}
        for name in ("lr", "beta", "nesterov"):
            if values[name] is None:
                values[name] = np.full(hi - lo, self.constants[name])
        problem = values["problem"]
        problem = np.broadcast_to(np.int64(0), (hi - lo,)) if problem is None else np.asarray(problem, np.int64)
        return problem, values["lr"], values["beta"], values["nesterov"]

    def _axis_over_rows(self, name, first, last):
        """Axis `name`'s value at each configuration of rows first..last−1 of the grid (None
        if it is not an axis): the axis broadcast over the rows' block of the grid, flattened."""
        if name not in self.dims:
            return None
        k = self.dims.index(name)
        values = self.coords[name][first:last] if k == 0 else self.coords[name]
        block = (last - first,) + self.shape[1:]
        shape = [1] * len(block)
        shape[k] = values.size
        return np.broadcast_to(values.reshape(shape), block).reshape(-1)


_PARAMETERS = ("problem", "lr", "beta", "nesterov")


def compute_piece(spec, lo, hi):
    """The metrics of configurations lo..hi−1: a dict of flat arrays (loss: (hi − lo, K))."""
    level = kernels("_probe").level()
    if level != spec.level:  # (a worker on another kind of CPU: its results would differ in rounding)
        raise RuntimeError(f"this process runs the {level} kernels, the sweep the {spec.level} ones: results "
                           f"would mix roundings; use workers whose CPUs run {spec.level}")
    index, lr, beta, nesterov = spec.configurations(lo, hi)
    count = hi - lo
    module = kernels("_sweep")
    chunk_problem, chunk_start = _chunks(index, module.lanes())
    out = dict(final_loss=np.empty(count), steps_to_tol=np.empty(count, np.int64),
               diverged=np.empty(count, np.uint8), loss=np.empty((count, spec.records)),
               rate=np.empty(count if spec.constant_rate else 0))
    if "nesterov" in spec.coords or spec.constants.get("nesterov"):
        accelerated = (np.asarray(nesterov, bool) & (beta > 0)).view(np.uint8)  # β = 0: it is GD
    else:
        accelerated = np.zeros(count, np.uint8)
    _call_kernel(module.sweep_diagonal, count * spec.lam.shape[1] * max(spec.steps, 1),
                 lam=spec.lam, e0=spec.e0, chunk_problem=chunk_problem, chunk_start=chunk_start,
                 lr=np.ascontiguousarray(lr, np.float64), beta=np.ascontiguousarray(beta, np.float64),
                 accelerated=np.ascontiguousarray(accelerated), forms=spec.forms, schedule=spec.multipliers,
                 steps=spec.steps, tol=-1.0 if spec.tol is None else spec.tol, every=spec.every or 0,
                 bound=DIVERGENCE_BOUND[np.dtype(np.float64)], n_threads=resolve_threads(spec.n_threads), **out)
    out["diverged"] = out["diverged"].view(bool)
    if spec.tol is None:
        del out["steps_to_tol"]
    if not spec.every:
        del out["loss"]
    if not spec.constant_rate:
        del out["rate"]
    return out


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


def rows_per_piece(spec, chunk_size=None):
    """Rows of the first axis per piece: about `chunk_size` configurations (by default, about
    PIECE_WORK coordinate-steps, within [PIECE_LEAST, PIECE_MOST] configurations), at least one."""
    if chunk_size is None:
        work = max(spec.lam.shape[1], 2) * max(spec.steps, 1)
        chunk_size = int(np.clip(PIECE_WORK // work, PIECE_LEAST, PIECE_MOST))
        chunk_size = min(chunk_size, max(1, PIECE_BYTES // (8 * (spec.records + 4))))  # the loss records too
    return int(min(spec.rows, max(1, chunk_size // spec.row)))


def pieces(spec, rows):
    """[(lo, hi)] of each piece's configurations, for `rows` rows per piece."""
    return [(start * spec.row, min(start + rows, spec.rows) * spec.row) for start in range(0, spec.rows, rows)]


def run_pieces(spec, layout, todo, sink, *, client=None, progress=None):
    """Compute pieces `todo` (indices into `layout`, a list of (lo, hi)) and hand each to
    sink(i, metrics) as it completes, in this process or on a Dask `client`. Returns the
    seconds spent."""
    start = time.perf_counter()
    bar = _progress_bar(spec, layout, todo, progress)
    try:
        if client is None:
            for i in todo:
                lo, hi = layout[i]
                sink(i, compute_piece(spec, lo, hi))
                _advance(bar, hi - lo)
        else:
            _run_on_client(client, spec, layout, todo, sink, bar)
    finally:
        if bar is not None:
            bar.close()
    return time.perf_counter() - start


def _run_on_client(client, spec, layout, todo, sink, bar):
    try:
        from distributed import as_completed  # noqa: PLC0415 -- optional
    except ImportError as error:
        raise ImportError("a sweep on a Dask client needs dask.distributed: pip install 'polyak[sweep]'") from error
    # one thread per task unless told otherwise: a worker runs as many tasks at once as it has
    # threads. (A key of its own: the same spec scattered again under its content's key could
    # meet the release of the previous sweep's copy and be lost.)
    spec = dataclasses.replace(spec, n_threads=spec.n_threads or 1)
    shared = client.scatter(spec, broadcast=True, hash=False)
    futures = [client.submit(compute_piece, shared, *layout[i], pure=False) for i in todo]
    piece_of = {future.key: i for future, i in zip(futures, todo)}
    try:
        for future in as_completed(futures):
            i = piece_of[future.key]
            sink(i, future.result())  # (raises a task's error, or its cancellation)
            future.release()
            _advance(bar, layout[i][1] - layout[i][0])
    except BaseException:
        client.cancel(futures)
        raise


def _advance(bar, configurations):
    # one more piece done
    if bar is not None:
        bar.pieces_done += 1
        bar.set_postfix_str(f"piece {bar.pieces_done}/{bar.pieces}", refresh=False)
        bar.update(configurations)


#: A sweep whose kernel work (coordinate-steps) is below this shows no bar by default.
_BAR_WORK = 2 * 10**10


def _progress_bar(spec, layout, todo, progress):
    """A tqdm bar on stderr over the configurations to compute, or None. progress=None: on
    when stderr is a terminal and the work is more than a moment's (and tqdm is installed)."""
    total = sum(layout[i][1] - layout[i][0] for i in todo)
    asked = progress is not None
    if not asked:
        progress = sys.stderr.isatty() and total * spec.lam.shape[1] * max(spec.steps, 1) > _BAR_WORK
    if not progress:
        return None
    try:
        from tqdm import tqdm  # noqa: PLC0415 -- optional
    except ImportError as error:
        if not asked:
            return None
        raise ImportError("progress=True needs tqdm: pip install 'polyak[sweep]'") from error
    bar = tqdm(total=total, unit="config", unit_scale=True, file=sys.stderr, desc="sweep", smoothing=0.1,
               postfix=f"piece 0/{len(todo)}")
    bar.pieces, bar.pieces_done = len(todo), 0
    return bar
