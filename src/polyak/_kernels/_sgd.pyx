"""One fused optimizer step over a flat parameter array: a single pass, no temporaries.

For every element, with s = −1 when maximizing (else 1):

    g = s·grad + w·param                     (coupled weight decay w; 0 when decoupled)
    param ← param − lr·w_d·param             (decoupled weight decay w_d, Keras; 0 otherwise)
    u = g                          on a first step with an undamped buffer (torch's b₁ = g₁)
    u = β u + a g                  otherwise (momentum), with a = 1 − τ or lr (mxnet, keras)
    param ← param − k u − e g      (k, e as in the canonical update; u unused without momentum)

``polyak.optim`` resolves each convention into (a, k, e) and the flags; its NumPy twin is
``polyak.reference.sgd_step``. Large arrays are split over threads in fixed chunks (each
element's arithmetic is independent, so results do not depend on the thread count);
``sgd_step_many`` runs the chunks of many arrays in one parallel loop.
"""

cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uintptr_t

cnp.import_array()

cdef enum:
    CHUNK = 32768  # elements per parallel task; arrays of fewer than 2 chunks run serially


cdef inline void _step(floating* param, const floating* grad, floating* buf, Py_ssize_t n,
                       floating sign, floating decay, floating decoupled, floating beta,
                       floating a, floating k, floating e, bint momentum, bint first,
                       bint nesterov) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating g, p, u
    for i in range(n):
        p = param[i]
        g = sign * grad[i] + decay * p
        p = p - decoupled * p
        if momentum:
            u = g if first else beta * buf[i] + a * g
            buf[i] = u
            if nesterov:
                p = p - k * u - e * g
            else:
                p = p - k * u
        else:
            p = p - k * g
        param[i] = p


cdef inline void _step_flags(floating* param, const floating* grad, floating* buf, Py_ssize_t n,
                             floating sign, floating decay, floating decoupled, floating beta,
                             floating a, floating k, floating e, bint momentum, bint first,
                             bint nesterov) noexcept nogil:
    # _step with the flags made compile-time constants: a vectorized loop for each case
    if not momentum:
        _step(param, grad, buf, n, sign, decay, decoupled, beta, a, k, e, False, False, False)
    elif first:
        if nesterov:
            _step(param, grad, buf, n, sign, decay, decoupled, beta, a, k, e, True, True, True)
        else:
            _step(param, grad, buf, n, sign, decay, decoupled, beta, a, k, e, True, True, False)
    elif nesterov:
        _step(param, grad, buf, n, sign, decay, decoupled, beta, a, k, e, True, False, True)
    else:
        _step(param, grad, buf, n, sign, decay, decoupled, beta, a, k, e, True, False, False)


def sgd_step(floating[::1] param, const floating[::1] grad, floating[::1] buf,
             floating sign, floating decay, floating decoupled, floating beta, floating a,
             floating k, floating e, bint momentum, bint first, bint nesterov, int n_threads):
    """One step on one flat array, in place (see the module docstring).

    NumPy equivalent: ``polyak.reference.sgd_step`` with the same arguments. `buf` is the
    momentum buffer (any length when `momentum` is False); all inputs are validated by the
    caller.
    """
    cdef Py_ssize_t n = param.shape[0], chunks = (n + CHUNK - 1) // CHUNK, q, lo
    cdef floating* buffer = &buf[0] if momentum else NULL
    with nogil:
        if chunks < 2 or n_threads == 1:
            _step_flags(&param[0], &grad[0], buffer, n, sign, decay, decoupled, beta, a, k, e,
                        momentum, first, nesterov)
        else:
            for q in prange(chunks, schedule="static", num_threads=n_threads):
                lo = q * CHUNK
                _step_flags(&param[lo], &grad[lo], buffer + lo if momentum else NULL,
                            min(<Py_ssize_t>CHUNK, n - lo), sign, decay, decoupled, beta, a, k,
                            e, momentum, first, nesterov)


def sgd_step_many(floating[::1] dtype_tag, const uintptr_t[::1] params,
                  const uintptr_t[::1] grads, const uintptr_t[::1] buffers,
                  const int64_t[::1] chunk_array, const int64_t[::1] chunk_start,
                  const int64_t[::1] chunk_length, floating sign, floating decay,
                  floating decoupled, floating beta, floating a, floating k, floating e,
                  bint momentum, bint first, bint nesterov, int n_threads):
    """`sgd_step` on many arrays of one dtype, their chunks in one parallel loop.

    NumPy equivalent: ``polyak.reference.sgd_step`` on each array. `params`, `grads`,
    `buffers` hold the arrays' data addresses (contiguous, of `dtype_tag`'s dtype; buffers
    unused without momentum); chunk q covers elements chunk_start[q] to + chunk_length[q] of
    array chunk_array[q]. The caller keeps the arrays alive and validated.
    """
    cdef Py_ssize_t q, i, lo, chunks = chunk_array.shape[0]
    with nogil:
        for q in prange(chunks, schedule="static", num_threads=n_threads):
            i = chunk_array[q]
            lo = chunk_start[q]
            _step_flags(<floating*>params[i] + lo, <const floating*>grads[i] + lo,
                        <floating*>buffers[i] + lo if momentum else NULL, chunk_length[q], sign,
                        decay, decoupled, beta, a, k, e, momentum, first, nesterov)


def data_addresses(list arrays, uintptr_t[::1] out):
    """out[i] = the data address of arrays[i] (NumPy arrays): PyArray_DATA, without Python."""
    cdef Py_ssize_t i
    for i in range(len(arrays)):
        out[i] = <uintptr_t>cnp.PyArray_DATA(<cnp.ndarray>arrays[i])
