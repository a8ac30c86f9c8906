# Pieces every kernel shares: the canonical update's per-step constants, the divergence test.
from cython cimport floating

cdef enum:
    CHECK_EVERY = 128  # divergence is checked after every multiple of this step and the last


cdef inline void step_constants(floating lr, floating beta, floating multiplier, bint first_step,
                                bint lr_inside, bint nesterov, floating dampening,
                                bint first_step_undamped, floating* a, floating* k,
                                floating* e) noexcept nogil:
    # a, k, e of  u = beta*u + a*g;  x -= k*u + e*g  for one step with eta = lr*multiplier:
    # lr outside the velocity: a = 1 on an undamped first step, else 1 - dampening; k = eta
    # (beta*eta with nesterov). lr inside: a = eta; k = 1 (beta). e = eta, used with nesterov.
    cdef floating eta = lr * multiplier
    e[0] = eta
    if lr_inside:
        a[0] = eta
        k[0] = beta if nesterov else 1
    else:
        a[0] = 1 if (first_step and first_step_undamped) else 1 - dampening
        k[0] = beta * eta if nesterov else eta


cdef inline bint within(const floating* x, Py_ssize_t n, floating bound) noexcept nogil:
    # all(abs(x) <= bound); False for NaN
    cdef Py_ssize_t i
    cdef int outside = 0
    for i in range(n):
        outside |= not ((x[i] <= bound) & (x[i] >= -bound))
    return outside == 0
