"""How :class:`polyak.optim.SGD` lays its arrays out for the fused kernel, and its memory checks.

The parameters of one dtype are cut into chunks of at most CHUNK elements; a chunk table
says, for chunk q, which array (``array[q]``, an index into the dtype's list), which
elements (``start[q]``, ``length[q]``), which parameter of the optimizer (``param[q]``) and
which row of the constants table (``row[q]``: two rows per parameter group, its later steps
and a buffer's first). One kernel call per dtype then steps every group.
"""

from typing import NamedTuple

import numpy as np

from polyak._config import kernels

CHUNK = 32768  # elements per parallel task
#: An empty array of each dtype the optimizer takes: picks the kernel's specialization, and
#: stands in for a buffer or gradient the kernel will not read.
TAGS = {np.dtype(np.float32): np.empty(0, np.float32), np.dtype(np.float64): np.empty(0, np.float64)}


class Chunks(NamedTuple):
    """A chunk table (int64 arrays, one entry per chunk); see the module docstring."""

    array: np.ndarray
    start: np.ndarray
    length: np.ndarray
    param: np.ndarray
    row: np.ndarray

    def where(self, keep):
        """The chunks for which `keep` (a bool per chunk) holds."""
        return Chunks(*(column[keep] for column in self))


class Layout(NamedTuple):
    """The parameters of one dtype: their indices in the optimizer, flat views and chunks."""

    tag: np.ndarray
    members: list
    flat: list
    chunks: Chunks


def chunk_table(flat_params, members=None, rows=None):
    """The chunks of `flat_params` (1-D arrays); `members` and `rows`: each array's parameter
    index and constants row (default: its position, row 0)."""
    members = range(len(flat_params)) if members is None else members
    rows = [0] * len(flat_params) if rows is None else rows
    table = [(j, lo, min(CHUNK, param.size - lo), member, row)
             for j, (param, member, row) in enumerate(zip(flat_params, members, rows))
             for lo in range(0, param.size, CHUNK)]
    columns = zip(*table) if table else [()] * len(Chunks._fields)
    return Chunks(*(np.array(column, dtype=np.int64) for column in columns))


def layouts(flat_params, group_of):
    """One Layout per dtype present, its chunks' rows those of later steps (2·group)."""
    found = []
    for dtype, tag in TAGS.items():
        members = [i for i, p in enumerate(flat_params) if p.dtype == dtype and p.size]
        if members:
            flat = [flat_params[i] for i in members]
            found.append(Layout(tag, members, flat, chunk_table(flat, members, [2 * group_of[i] for i in members])))
    return found


def check_param(param, where):
    """TypeError/ValueError unless `param` is a writeable contiguous float32/float64 array."""
    if not isinstance(param, np.ndarray):
        raise TypeError(f"{where} must be a NumPy array; got {type(param).__name__}")
    if param.dtype not in TAGS:
        raise TypeError(f"{where} has dtype {param.dtype}; float32 and float64 are allowed")
    if not param.flags.writeable:
        raise ValueError(f"{where} is read-only; the optimizer updates parameters in place")
    if not (param.flags.c_contiguous or param.flags.f_contiguous):
        raise ValueError(f"{where} is not contiguous; the optimizer updates in place and needs C or Fortran order")


def order(param):
    """The memory order of a contiguous parameter: its flat view, gradient and buffer follow it."""
    return "F" if param.flags.f_contiguous and not param.flags.c_contiguous else "C"


def flat(param):
    """A 1-D view of a contiguous array, in its memory order (writes go to the parameter)."""
    return param.reshape(-1, order=order(param))


def _spans(arrays):
    # byte intervals [start, end) of contiguous arrays, read from the arrays now
    starts = np.empty(len(arrays), np.uintp)
    kernels("_sgd").data_addresses(list(arrays), starts)
    starts = starts.astype(np.uint64)
    return starts, starts + np.array([a.nbytes for a in arrays], dtype=np.uint64)


def params_overlap(params):
    """True when two of the (contiguous, non-empty) parameters share memory."""
    starts, ends = _spans(params)
    ordered = np.argsort(starts, kind="stable")
    starts, ends = starts[ordered], ends[ordered]
    return bool(np.any(starts[1:] < np.maximum.accumulate(ends)[:-1]))


class SortedSpans:
    """The parameters' byte intervals sorted by start, re-derived when their addresses change.

    The non-empty parameters do not overlap, so sorted by start their ends increase too and
    those a gradient meets are a run [lo, hi). The addresses are read from the arrays at
    every step (a copy of the optimizer holds other arrays); the sorting is kept while they
    stay the same.
    """

    def __init__(self, sized):
        self.sized = sized  # the indices of the non-empty parameters
        self.addresses = None

    def _refresh(self, params):
        starts, ends = _spans(params)
        if self.addresses is None or not np.array_equal(starts, self.addresses):
            ordered = np.argsort(starts, kind="stable")
            self.addresses, self.order = starts, ordered
            self.starts, self.ends = starts[ordered], ends[ordered]

    def gradient_aliases_another_param(self, params, grads):
        """True when some gradient shares memory with a parameter other than its own.

        A gradient may be its own parameter's memory, exactly (each element is then read and
        written in one place), not a shifted view. `grads` entries may be None (not stepped).
        """
        present = [(j, i) for j, i in enumerate(self.sized) if grads[i] is not None]
        if not present:
            return False
        self._refresh([params[i] for i in self.sized])
        g_starts, g_ends = _spans([grads[i] for _, i in present])
        hi = np.searchsorted(self.starts, g_ends, side="left")
        lo = np.searchsorted(self.ends, g_starts, side="right")
        met = hi - lo
        for g in np.flatnonzero(met > 0):
            own = (self.order[lo[g]] == present[g][0] and self.starts[lo[g]] == g_starts[g]
                   and self.ends[lo[g]] == g_ends[g])
            if met[g] > 1 or not own:  # only the parameter's own memory, exactly, is allowed
                return True
        return False
