"""One fused optimizer step over flat parameter arrays: a single pass, no temporaries.

For every element, with the numbers of its chunk's row of the constants table (one row per
parameter group and first/later step), s = −1 when maximizing (else 1):

    g = s·grad + w·param                     (coupled weight decay w; 0 when decoupled)
    param ← param − w_d·param                (decoupled weight decay w_d = lr·wd, Keras)
    u = a g                        when the momentum buffer starts at this step
    u = β u + a g                  afterwards
    param ← param − k u − e g      (with momentum)   or   param − k g   (without)

with (a, k, e) of the canonical update, from ``polyak.rules.canonical_coefficients``; the
NumPy twin is ``polyak.reference.sgd_step``. Arrays are cut into fixed chunks that one
parallel loop runs (each element's arithmetic is independent, so results do not depend on
the thread count). The data addresses are read from the arrays at every call: the caller
keeps arrays, never addresses.
"""

cimport numpy as cnp
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t

cnp.import_array()

# The columns of a row of the constants table (polyak.optim builds it in this order).
cdef enum:
    SIGN        # −1 when maximizing, else 1
    DECAY       # coupled weight decay, added to the gradient
    DECOUPLED   # lr · weight decay, taken from the parameter first (Keras)
    BETA        # momentum
    A           # u = β u + a g
    K           # param −= k u + e g
    E
    MOMENTUM    # 1: a buffer exists (β ≠ 0), else 0
    FIRST       # 1: the buffer starts at this step (u = a g), else 0
    COLUMNS

cdef enum:
    GRAIN = 32768  # the fewest elements a thread takes: smaller steps run on fewer threads (torch's grain size)

#: The names of the columns, in order: the keyword arguments of polyak.reference.sgd_step.
COLUMN_NAMES = ("sign", "decay", "decoupled", "beta", "a", "k", "e", "momentum", "first")


cdef inline void _step(floating* param, const floating* grad, floating* buf, Py_ssize_t n,
                       floating sign, floating decay, floating decoupled, floating beta,
                       floating a, floating k, floating e, bint momentum, bint first,
                       bint with_e) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating g, p, u
    for i in range(n):
        p = param[i]
        g = sign * grad[i] + decay * p
        p = p - decoupled * p
        if momentum:
            u = a * g if first else beta * buf[i] + a * g
            buf[i] = u
            if with_e:
                p = p - k * u - e * g
            else:
                p = p - k * u
        else:
            p = p - k * g
        param[i] = p


cdef inline void _step_row(floating* param, const floating* grad, floating* buf, Py_ssize_t n,
                           const double* c) noexcept nogil:
    # _step with the row's flags made compile-time constants: a vectorized loop for each case
    cdef floating sign = <floating>c[SIGN], decay = <floating>c[DECAY], decoupled = <floating>c[DECOUPLED]
    cdef floating beta = <floating>c[BETA], a = <floating>c[A], k = <floating>c[K], e = <floating>c[E]
    if c[MOMENTUM] == 0:
        _step(param, grad, buf, n, sign, decay, decoupled, beta, a, k, e, False, False, False)
    elif c[FIRST] != 0:
        if e != 0:
            _step(param, grad, buf, n, sign, decay, decoupled, beta, a, k, e, True, True, True)
        else:
            _step(param, grad, buf, n, sign, decay, decoupled, beta, a, k, e, True, True, False)
    elif e != 0:
        _step(param, grad, buf, n, sign, decay, decoupled, beta, a, k, e, True, False, True)
    else:
        _step(param, grad, buf, n, sign, decay, decoupled, beta, a, k, e, True, False, False)


cdef void** _addresses(list arrays) except NULL:
    # the data address of each array (NumPy arrays of the caller's checked dtype and layout)
    cdef Py_ssize_t i, count = len(arrays)
    cdef void** out = <void**>PyMem_Malloc(max(count, 1) * sizeof(void*))
    if out == NULL:
        raise MemoryError()
    for i in range(count):
        out[i] = cnp.PyArray_DATA(<cnp.ndarray>arrays[i])
    return out


def sgd_step(floating[::1] dtype_tag, list params, list grads, list buffers,
             const int64_t[::1] chunk_array, const int64_t[::1] chunk_start,
             const int64_t[::1] chunk_length, const int64_t[::1] chunk_row,
             const double[:, ::1] constants, int n_threads):
    """One step on many flat arrays of one dtype (that of `dtype_tag`), in place.

    NumPy equivalent: ``polyak.reference.sgd_step(params[i][lo:lo+n], grads[i][lo:lo+n],
    buffers[i][lo:lo+n], **constants[r])`` for every chunk (i, lo, n, r) = (chunk_array[q],
    chunk_start[q], chunk_length[q], chunk_row[q]). `params`, `grads` and `buffers` are
    lists of contiguous 1-D arrays, one each per array (a buffer is read only by rows with
    momentum); `constants` has a column for each of COLUMN_NAMES, in that order. The
    caller validates them (chunks inside their arrays, rows inside the table).
    """
    cdef Py_ssize_t q, i, lo, chunks = chunk_array.shape[0], elements = 0
    cdef int threads
    cdef const double* row
    cdef void** param_data = NULL
    cdef void** grad_data = NULL
    cdef void** buffer_data = NULL
    if constants.shape[1] != COLUMNS:
        raise ValueError(f"constants must have {len(COLUMN_NAMES)} columns; got {constants.shape[1]}")
    for q in range(chunks):
        elements += chunk_length[q]
    # at least GRAIN elements per thread: a small step stays on this thread (waking another costs more)
    threads = <int>min(n_threads, max(1, elements // GRAIN))
    try:
        param_data = _addresses(params)
        grad_data = _addresses(grads)
        buffer_data = _addresses(buffers)
        with nogil:
            for q in prange(chunks, schedule="static", num_threads=threads):
                i = chunk_array[q]
                lo = chunk_start[q]
                row = &constants[chunk_row[q], 0]
                _step_row(<floating*>param_data[i] + lo, <const floating*>grad_data[i] + lo,
                          <floating*>buffer_data[i] + lo if row[MOMENTUM] != 0 else NULL,
                          chunk_length[q], row)
    finally:
        PyMem_Free(param_data)
        PyMem_Free(grad_data)
        PyMem_Free(buffer_data)


def data_addresses(list arrays, cnp.uintp_t[::1] out):
    """out[i] = the data address of arrays[i] (NumPy arrays), for the memory-overlap checks."""
    cdef Py_ssize_t i
    for i in range(len(arrays)):
        out[i] = <cnp.uintp_t>cnp.PyArray_DATA(<cnp.ndarray>arrays[i])
