"""Minibatch SGD with momentum on linear regression, many configurations at once.

For each configuration (learning rate, momentum) in parallel, the textbook's training loop:
per epoch, per minibatch of the epoch's order, the gradient of the mean squared loss
½(xᵀw + b − y)² over the batch, then the canonical update of ``_diagonal.pyx`` on (w, b):
u = β u + a g, p ← p − k u − e g. After every minibatch that brings the count of examples
seen to a multiple of ``record_every``, the loss on the whole data set, mean ½(xᵀw + b − y)²,
is recorded. Every configuration sees the same minibatches; the sums run in a fixed order,
so results do not depend on the thread count. ``polyak.reference.train_linear`` is the
NumPy twin.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t

from polyak._kernels._common cimport step_constants

cdef enum:
    MAX_FEATURES = 64  # gradient and velocity of w live on the stack


cdef inline floating _data_loss(const floating* X, const floating* y, Py_ssize_t N,
                                Py_ssize_t d, const floating* w, floating b) noexcept nogil:
    # mean over the data of 0.5 * (x·w + b − y)², summed in order
    cdef Py_ssize_t i, j
    cdef floating r, total = 0
    for i in range(N):
        r = b - y[i]
        for j in range(d):
            r = r + X[i * d + j] * w[j]
        total = total + r * r
    return <floating>0.5 * total / N


cdef void _train_one(const floating* X, const floating* y, const int64_t* order, Py_ssize_t N,
                     Py_ssize_t d, Py_ssize_t epochs, floating* w, floating* b, floating* uw,
                     floating* ub, floating lr, floating beta, bint lr_inside, bint nesterov,
                     Py_ssize_t batch_size, Py_ssize_t record_every,
                     floating* loss) noexcept nogil:
    cdef Py_ssize_t epoch, start, stop, t, i, j, seen = 0, records = 0, step = 0
    cdef floating gw[MAX_FEATURES]
    cdef floating gb, r, a, k, e, m
    for epoch in range(epochs):
        start = 0
        while start < N:
            stop = min(start + batch_size, N)
            m = stop - start
            for j in range(d):
                gw[j] = 0
            gb = 0
            for t in range(start, stop):
                i = order[epoch * N + t]
                r = b[0] - y[i]
                for j in range(d):
                    r = r + X[i * d + j] * w[j]
                for j in range(d):
                    gw[j] = gw[j] + r * X[i * d + j]
                gb = gb + r
            step_constants(lr, beta, 1, step == 0, lr_inside, nesterov, 0, False, &a, &k, &e)
            for j in range(d):
                gw[j] = gw[j] / m
                uw[j] = beta * uw[j] + a * gw[j]
                w[j] = w[j] - k * uw[j] - (e * gw[j] if nesterov else 0)
            gb = gb / m
            ub[0] = beta * ub[0] + a * gb
            b[0] = b[0] - k * ub[0] - (e * gb if nesterov else 0)
            step += 1
            seen += stop - start
            start = stop
            if loss != NULL and seen % record_every == 0:
                loss[records] = _data_loss(X, y, N, d, w, b[0])
                records += 1


def train_linear(const floating[:, ::1] X, const floating[::1] y, const int64_t[:, ::1] order,
                 floating[:, ::1] w, floating[::1] b, floating[:, ::1] uw, floating[::1] ub,
                 const floating[::1] lr, const floating[::1] beta, bint lr_inside,
                 bint nesterov, Py_ssize_t batch_size, Py_ssize_t record_every,
                 floating[:, ::1] loss, int n_threads):
    """Train C configurations in place (see the module docstring).

    NumPy equivalent: ``polyak.reference.train_linear`` with the same arguments. Shapes:
    X (N, d) with d <= 64, y (N,), order (epochs, N) (each row a permutation of the examples),
    w and uw (C, d), b, ub, lr, beta (C,), loss (C, K) with K the number of records. w and b
    hold the initial weights on entry, uw and ub the initial velocities (zeros).
    """
    cdef Py_ssize_t c, C = w.shape[0], N = X.shape[0], d = X.shape[1]
    cdef Py_ssize_t epochs = order.shape[0]
    cdef bint record = loss.shape[1] > 0
    with nogil:
        for c in prange(C, schedule="static", num_threads=n_threads):
            _train_one(&X[0, 0], &y[0], &order[0, 0], N, d, epochs, &w[c, 0], &b[c], &uw[c, 0],
                       &ub[c], lr[c], beta[c], lr_inside, nesterov, batch_size, record_every,
                       &loss[c, 0] if record else NULL)
