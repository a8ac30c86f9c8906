"""Minibatch SGD with momentum on linear regression, many configurations at once.

The model's parameters are θ = (w, b), d + 1 numbers, and example i's features (xᵢ, 1). For
each configuration in parallel, the textbook's training loop: step t takes the minibatch
that starts at (t mod M)·batch_size of epoch t div M's order (M minibatches per epoch, the
last one possibly shorter), the gradient of the mean squared loss ½(xᵀw + b − y)² over it,
and the canonical update of ``_diagonal.pyx`` on θ:

    u_t = β u_{t-1} + a_t g_t,   θ_t = θ_{t-1} − k_t u_t − e_t g_t

After every minibatch that brings the count of examples seen to a multiple of
``record_every``, the loss on the whole data set, mean ½(xᵀw + b − y)², is recorded. θ is
checked after every CHECK_EVERY-th step and the last: beyond the bound (or NaN), the check
interval is run again from its saved start, checked after every step, and the configuration
stops at the last step before the first beyond the bound, with that state; its later records
are NaN. Every configuration sees the same
minibatches; sums run in a fixed order, so results do not depend on the thread count.
``polyak.reference.momentum`` with ``polyak.reference.minibatch_gradient`` is the NumPy twin.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport NAN
from libc.stdint cimport int64_t

from polyak._kernels._common cimport (BETA, CHECK_EVERY, Settings, restore_state, save_state,
                                      settings, start, step_coefficients, stop_requested,
                                      within)

cdef enum:
    MAX_PARAMETERS = 65  # the gradient lives on the stack: d <= 64 features, and the bias


cdef struct Minibatches:
    Py_ssize_t examples      # N
    Py_ssize_t features      # d
    Py_ssize_t batch_size
    Py_ssize_t per_epoch     # M = ceil(N / batch_size)
    Py_ssize_t record_every  # examples between records


cdef inline floating _data_loss(const floating* X, const floating* y, const Minibatches* data,
                                const floating* theta) noexcept nogil:
    # mean over the data of 0.5 * (x·w + b − y)², summed in order
    cdef Py_ssize_t i, j, d = data.features
    cdef floating r, total = 0
    for i in range(data.examples):
        r = theta[d] - y[i]
        for j in range(d):
            r = r + X[i * d + j] * theta[j]
        total = total + r * r
    return <floating>0.5 * total / data.examples


cdef inline void _gradient(const floating* X, const floating* y, const int64_t* order,
                           Py_ssize_t first, Py_ssize_t stop, const Minibatches* data,
                           const floating* theta, floating* g) noexcept nogil:
    # g = mean over examples order[first:stop] of (x·w + b − y)·(x, 1)
    cdef Py_ssize_t t, i, j, d = data.features
    cdef floating r
    for j in range(d + 1):
        g[j] = 0
    for t in range(first, stop):
        i = order[t]
        r = theta[d] - y[i]
        for j in range(d):
            r = r + X[i * d + j] * theta[j]
        for j in range(d):
            g[j] = g[j] + r * X[i * d + j]
        g[d] = g[d] + r
    for j in range(d + 1):
        g[j] = g[j] / (stop - first)


cdef inline Py_ssize_t _train_step(const floating* X, const floating* y, const int64_t* order,
                                   const Minibatches* data, const floating* row,
                                   const floating* schedule, const Settings* run, Py_ssize_t t,
                                   floating* theta, floating* u) noexcept nogil:
    # minibatch step t of one configuration, in place; returns the examples it used
    cdef Py_ssize_t j, epoch = t // data.per_epoch, lo = (t % data.per_epoch) * data.batch_size
    cdef Py_ssize_t hi = min(lo + data.batch_size, data.examples)
    cdef floating g[MAX_PARAMETERS]
    cdef floating a, k, e, beta = row[BETA]
    _gradient(X, y, order + epoch * data.examples, lo, hi, data, theta, g)
    step_coefficients(row, schedule[t * run.schedule_stride], t == 0, &a, &k, &e)
    for j in range(run.n):
        u[j] = beta * u[j] + a * g[j]
        theta[j] = theta[j] - k * u[j] - e * g[j]
    return hi - lo


cdef int64_t _train_configuration(const floating* X, const floating* y, const int64_t* order,
                                  const Minibatches* data, const floating* row,
                                  const floating* schedule, const Settings* run,
                                  floating* theta, floating* u, floating* loss,
                                  unsigned char* diverged) noexcept nogil:
    # one configuration in place; returns the steps taken and sets diverged[0] on a stop.
    # When a check finds θ beyond the bound, the same loop takes the interval again from
    # its saved start, now saving the state before and checking after every step
    # (`searching`), and stops at the last step within the bound. One call site of the step
    # keeps the kernel as small (and as fast) as it was without the search.
    cdef Py_ssize_t t = 0, t_end, s, j, n = run.n
    cdef Py_ssize_t seen = 0, records = 0, seen_before = 0, records_before = 0
    cdef bint searching = False
    cdef floating saved[2 * MAX_PARAMETERS]
    diverged[0] = False
    while t < run.steps and not stop_requested(run):
        t_end = min((t // CHECK_EVERY + 1) * CHECK_EVERY, run.steps)
        save_state(saved, theta, u, n)
        seen_before, records_before = seen, records
        for s in range(t, t_end):
            if searching:
                save_state(saved, theta, u, n)
                records_before = records
            seen += _train_step(X, y, order, data, row, schedule, run, s, theta, u)
            if loss != NULL and seen % data.record_every == 0:
                loss[records] = _data_loss(X, y, data, theta)  # the same value when searching
                records += 1
            if searching and not within(theta, n, <floating>run.bound):
                break
        if searching:  # (found at step s: the replay repeats the run's arithmetic exactly)
            restore_state(saved, theta, u, n)
            if loss != NULL:
                for j in range(records_before, run.records):
                    loss[j] = NAN
            return s
        if not within(theta, n, <floating>run.bound):
            diverged[0] = True
            searching = True
            restore_state(saved, theta, u, n)
            seen, records = seen_before, records_before
            continue
        t = t_end
    return t


def train_linear(*, const floating[:, ::1] X, const floating[::1] y,
                 const int64_t[:, ::1] order, Py_ssize_t batch_size, Py_ssize_t record_every,
                 const floating[:, ::1] coefficients, const floating[::1] schedule,
                 const floating[:, ::1] x0, const floating[:, ::1] u0, floating[:, ::1] x,
                 floating[:, ::1] u, floating[:, ::1] loss, int64_t[::1] steps_taken,
                 unsigned char[::1] diverged, Py_ssize_t steps, double bound, int n_threads,
                 const int[::1] stop):
    """Train B configurations (see the module docstring).

    NumPy equivalent: ``polyak.reference.momentum`` (minibatch_gradient). X (N, d) with
    d <= 64, y (N,), order (epochs, N) (each row a permutation of the examples); x0, u0, x, u:
    θ = (w, b), of d + 1 entries, as in ``polyak._kernels._diagonal.run_diagonal``; loss
    (B, K) with K the number of records; `steps` minibatch steps, at most epochs · M.
    """
    cdef Py_ssize_t p
    cdef Settings run = settings(x.shape[0], x.shape[1], steps, 1, loss.shape[1],
                                 schedule.shape[0], bound, &stop[0])
    cdef Minibatches data
    data.examples, data.features = X.shape[0], X.shape[1]
    data.batch_size, data.record_every = batch_size, record_every
    data.per_epoch = (data.examples + batch_size - 1) // batch_size
    with nogil:
        for p in prange(run.configurations, schedule="static", num_threads=n_threads):
            start(x, u, x0, u0, p)
            steps_taken[p] = _train_configuration(
                &X[0, 0], &y[0], &order[0, 0], &data, &coefficients[p, 0], &schedule[0], &run,
                &x[p, 0], &u[p, 0], &loss[p, 0] if loss.shape[1] > 0 else NULL, &diverged[p])
