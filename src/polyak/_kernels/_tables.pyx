"""A plan's coefficient table, filled from the bilinear forms of its update.

Compiled once, for the baseline: filling the table moves memory, it computes almost nothing.
"""
from cython.parallel cimport prange

from polyak._kernels._common cimport COLUMNS


def fill_coefficient_rows(*, const double[::1] lr, const double[::1] beta, const double[:, ::1] forms,
                          double[:, ::1] table, int n_threads):
    """table[p, col] = A + B·lr[p] + C·β[p] + D·(lr[p]·β[p]) with (A, B, C, D) = forms[col].

    NumPy equivalent: ``forms[:, 0] + forms[:, 1] * lr[:, None] + forms[:, 2] * beta[:, None]
    + forms[:, 3] * (lr * beta)[:, None]``. lr and beta have B entries, or one shared by all
    rows; forms is (COLUMNS, 4), table (B, COLUMNS). Rows are filled in parallel, so that the
    pages of a fresh table are first touched (and zeroed by the system) by several threads.
    Arguments are keyword-only and validated by the caller (polyak.plans).
    """
    cdef Py_ssize_t p, col, rows = table.shape[0]
    cdef Py_ssize_t lr_stride = 0 if lr.shape[0] == 1 else 1, beta_stride = 0 if beta.shape[0] == 1 else 1
    cdef double x, y
    for p in prange(rows, nogil=True, schedule="static", num_threads=n_threads):
        x = lr[p * lr_stride]
        y = beta[p * beta_stride]
        for col in range(COLUMNS):
            table[p, col] = forms[col, 0] + forms[col, 1] * x + forms[col, 2] * y + forms[col, 3] * (x * y)
