"""One fused optimizer step over flat parameter arrays: a single pass, no temporaries.

For every element, with s = −1 when maximizing (else 1):

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


cdef struct StepConstants:
    # one step's numbers, the same for every element of the arrays of a call
    double sign       # −1 when maximizing, else 1
    double decay      # coupled weight decay, added to the gradient
    double decoupled  # lr · weight decay, taken from the parameter first (Keras)
    double beta       # momentum
    double a          # u = β u + a g
    double k          # param −= k u + e g
    double e
    bint momentum     # a buffer exists (β ≠ 0)
    bint first        # the buffer starts at this step: u = a g


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


cdef inline void _step_flags(floating* param, const floating* grad, floating* buf, Py_ssize_t n,
                             const StepConstants* c) noexcept nogil:
    # _step with the flags made compile-time constants: a vectorized loop for each case
    cdef floating sign = c.sign, decay = c.decay, decoupled = c.decoupled
    cdef floating beta = c.beta, a = c.a, k = c.k, e = c.e
    if not c.momentum:
        _step(param, grad, buf, n, sign, decay, decoupled, beta, a, k, e, False, False, False)
    elif c.first:
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
             const int64_t[::1] chunk_length, StepConstants constants, int n_threads):
    """One step on many flat arrays of one dtype (that of `dtype_tag`), in place.

    NumPy equivalent: ``polyak.reference.sgd_step`` on each array. `params`, `grads` and
    `buffers` are lists of contiguous 1-D arrays (buffers: unused without momentum); chunk q
    covers elements chunk_start[q] to + chunk_length[q] of array chunk_array[q]. The caller
    validates them.
    """
    cdef Py_ssize_t q, i, lo, chunks = chunk_array.shape[0]
    cdef void** param_data = _addresses(params)
    cdef void** grad_data = NULL
    cdef void** buffer_data = NULL
    try:
        grad_data = _addresses(grads)
        buffer_data = _addresses(buffers if constants.momentum else [])
        with nogil:
            for q in prange(chunks, schedule="static", num_threads=n_threads):
                i = chunk_array[q]
                lo = chunk_start[q]
                _step_flags(<floating*>param_data[i] + lo, <const floating*>grad_data[i] + lo,
                            <floating*>buffer_data[i] + lo if constants.momentum else NULL,
                            chunk_length[q], &constants)
    finally:
        PyMem_Free(param_data)
        PyMem_Free(grad_data)
        PyMem_Free(buffer_data)


def data_addresses(list arrays, cnp.uintp_t[::1] out):
    """out[i] = the data address of arrays[i] (NumPy arrays), for the memory-overlap checks."""
    cdef Py_ssize_t i
    for i in range(len(arrays)):
        out[i] = <cnp.uintp_t>cnp.PyArray_DATA(<cnp.ndarray>arrays[i])
