"""Momentum-family updates on batches of dense quadratics f(x) = ½ xᵀQx + cᵀx + b.

The canonical update of ``_diagonal.pyx`` with the gradient g = Qx + c:

    u_t = β u_{t-1} + a_t g_t,   x_t = x_{t-1} − k_t u_t − e_t g_t

- ``run_dense_shared``: one Q for the whole batch. Each step is one matrix product for all
  problems, G = X Q (BLAS ?gemm through scipy.linalg.cython_blas, threaded by the BLAS), then
  one pass over the problems that adds c, updates u and x, records and checks, while G, X
  and U are still in cache.
- ``run_dense_batched``: one Q per problem; problems in parallel, each with its time loop
  and its own matrix-vector product, g = Σⱼ xⱼ Q[j, :], summed in a fixed order.

Both record f(x_t) = b + Σᵢ xᵢ(½(Qx)ᵢ + cᵢ) from the product they compute anyway, check
divergence after every CHECK_EVERY-th step and the last, and stop a diverged problem there
(its later records are NaN). ``polyak.reference.run_dense`` is their NumPy twin.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport NAN
from libc.stdint cimport int64_t
from scipy.linalg.cython_blas cimport dgemm, sgemm

from polyak._kernels._common cimport CHECK_EVERY, step_constants, within


cdef inline void _product(const floating* Q, const floating* x, floating* g, int n, int rows,
                          floating scale, floating keep) noexcept nogil:
    # g[:rows] = scale * x[:rows] @ Q + keep * g[:rows]   (row-major, Q symmetric; in BLAS's
    # column-major terms gᵀ = scale Q xᵀ + keep gᵀ)
    cdef char no_transpose = b"N"
    if floating is double:
        dgemm(&no_transpose, &no_transpose, &n, &rows, &n, &scale, <double*>Q, &n, <double*>x,
              &n, &keep, g, &n)
    else:
        sgemm(&no_transpose, &no_transpose, &n, &rows, &n, &scale, <float*>Q, &n, <float*>x,
              &n, &keep, g, &n)


cdef inline void _matvec(const floating* Q, const floating* x, floating* g,
                         Py_ssize_t n) noexcept nogil:
    # g = Q @ x = sum_j x[j] * Q[j, :]   (Q symmetric: row j is column j), in the order of j
    cdef Py_ssize_t i, j
    cdef floating xj
    for i in range(n):
        g[i] = 0
    for j in range(n):
        xj = x[j]
        for i in range(n):
            g[i] += xj * Q[j * n + i]


cdef inline floating _value(const floating* x, const floating* qx, const floating* c,
                            floating b, Py_ssize_t n) noexcept nogil:
    # b + sum(x * (0.5*qx + c)) = f(x) given qx = Q x
    cdef Py_ssize_t i
    cdef floating total = 0
    for i in range(n):
        total += x[i] * (<floating>0.5 * qx[i] + c[i])
    return b + total


cdef inline void _update_flags(floating* x, floating* u, const floating* qx,
                               const floating* c, Py_ssize_t n, floating beta, floating a,
                               floating k, floating e, bint nesterov) noexcept nogil:
    # g = qx + c;  u = beta*u + a*g;  x -= k*u + e*g   (c == NULL: no linear term)
    cdef Py_ssize_t i
    cdef floating g, v
    for i in range(n):
        g = qx[i] + c[i] if c != NULL else qx[i]
        v = beta * u[i] + a * g
        u[i] = v
        if nesterov:
            x[i] = x[i] - k * v - e * g
        else:
            x[i] = x[i] - k * v


cdef inline void _update(floating* x, floating* u, const floating* qx, const floating* c,
                         Py_ssize_t n, floating beta, floating a, floating k, floating e,
                         bint nesterov) noexcept nogil:
    # _update_flags with nesterov and "no linear term" made compile-time constants
    if nesterov:
        if c == NULL:
            _update_flags(x, u, qx, NULL, n, beta, a, k, e, True)
        else:
            _update_flags(x, u, qx, c, n, beta, a, k, e, True)
    elif c == NULL:
        _update_flags(x, u, qx, NULL, n, beta, a, k, e, False)
    else:
        _update_flags(x, u, qx, c, n, beta, a, k, e, False)


cdef inline void _record(floating* loss, floating* trajectory, Py_ssize_t r, Py_ssize_t stride,
                         const floating* x, const floating* qx, const floating* c, floating b,
                         Py_ssize_t n) noexcept nogil:
    # loss[r] = f(x);  trajectory[r * stride : + n] = x   (each when asked for)
    cdef Py_ssize_t i
    if loss != NULL:
        loss[r] = _value(x, qx, c, b, n)
    if trajectory != NULL:
        for i in range(n):
            trajectory[r * stride + i] = x[i]


cdef inline void _mark_unrecorded(floating* loss, floating* trajectory, Py_ssize_t first,
                                  Py_ssize_t records, Py_ssize_t stride,
                                  Py_ssize_t n) noexcept nogil:
    # records first..records-1 did not happen (the problem stopped): NaN marks them
    cdef Py_ssize_t r, i
    for r in range(first, records):
        if loss != NULL:
            loss[r] = NAN
        if trajectory != NULL:
            for i in range(n):
                trajectory[r * stride + i] = NAN


cdef inline bint _step_row(floating* x, floating* u, const floating* qx, const floating* c,
                           Py_ssize_t n, floating lr, floating beta, floating multiplier,
                           Py_ssize_t t, Py_ssize_t steps, bint lr_inside, bint nesterov,
                           floating dampening, bint first_step_undamped, floating bound,
                           bint has_c) noexcept nogil:
    # step t -> t + 1 of one problem; returns True when it is found diverged after it
    cdef floating a, k, e
    step_constants(lr, beta, multiplier, t == 0, lr_inside, nesterov, dampening,
                   first_step_undamped, &a, &k, &e)
    _update(x, u, qx, c if has_c else NULL, n, beta, a, k, e, nesterov)
    if (t + 1) % CHECK_EVERY == 0 or t + 1 == steps:
        return not within(x, n, bound)
    return False


cdef void _run_block(const floating* Q, const floating* c, const floating* b, floating* x,
                     floating* u, floating* g, Py_ssize_t rows, Py_ssize_t n,
                     const floating* lr, const floating* beta, const floating* schedule,
                     Py_ssize_t schedule_stride, Py_ssize_t steps, bint lr_inside,
                     bint nesterov, floating dampening, bint first_step_undamped,
                     Py_ssize_t every, floating bound, floating* loss, Py_ssize_t records,
                     floating* trajectory, Py_ssize_t stride, int64_t* steps_taken,
                     unsigned char* diverged, bint has_c) noexcept nogil:
    # `rows` consecutive problems sharing Q, for all the steps: per step one product
    # g = x @ Q for the block, then each row's update while the block is in cache
    cdef Py_ssize_t p, t
    cdef bint record_now
    cdef bint recording = loss != NULL or trajectory != NULL
    for p in range(rows):
        steps_taken[p] = steps
        diverged[p] = False
    for t in range(steps + 1):
        record_now = recording and t % every == 0
        if t == steps and not record_now:
            break
        if t < steps or loss != NULL:
            _product(Q, x, g, <int>n, <int>rows, 1, 0)
        for p in range(rows):
            if steps_taken[p] < t:  # stopped before this step
                continue
            if record_now:
                _record(loss + p * records if loss != NULL else NULL,
                        trajectory + p * n if trajectory != NULL else NULL,
                        t // every, stride, x + p * n, g + p * n, c + p * n, b[p], n)
            if t < steps and not diverged[p]:
                if _step_row(x + p * n, u + p * n, g + p * n, c + p * n, n, lr[p], beta[p],
                             schedule[t * schedule_stride], t, steps, lr_inside, nesterov,
                             dampening, first_step_undamped, bound, has_c):
                    diverged[p] = True
                    steps_taken[p] = t + 1
    for p in range(rows):
        if diverged[p]:
            _mark_unrecorded(loss + p * records if loss != NULL else NULL,
                             trajectory + p * n if trajectory != NULL else NULL,
                             steps_taken[p] // every + 1, records, stride, n)


cdef void _run_block_fused(const floating* Q, const floating* c, floating* x, floating* u,
                           floating* w, Py_ssize_t rows, Py_ssize_t n, floating lr,
                           const floating* lr_rows, const floating* beta,
                           const floating* schedule, Py_ssize_t schedule_stride,
                           Py_ssize_t steps, bint lr_inside, floating dampening,
                           bint first_step_undamped, Py_ssize_t every, floating bound,
                           floating* trajectory, Py_ssize_t stride, int64_t* steps_taken,
                           unsigned char* diverged, bint has_c) noexcept nogil:
    # _run_block without nesterov or a loss to record, when a_t is the same for every
    # problem: the BLAS product also makes the new velocity,
    #     w = a_t x @ Q + w   with   w = beta*u_t + a_t*c   (so w = u_{t+1}),
    # which saves the pass that zeroes the product and one array of the update's traffic.
    # `lr` is the learning rate of every problem when it sits inside the velocity.
    cdef Py_ssize_t p, i, t
    cdef floating a, k, e, k_next, e_next
    cdef floating a_next = 0
    cdef floating* row
    for p in range(rows):
        steps_taken[p] = steps
        diverged[p] = False
        if trajectory != NULL:
            for i in range(n):
                trajectory[p * n + i] = x[p * n + i]
    if steps == 0:
        return
    step_constants(lr, beta[0], schedule[0], True, lr_inside, False, dampening,
                   first_step_undamped, &a, &k, &e)
    for p in range(rows):
        for i in range(n):
            w[p * n + i] = beta[p] * u[p * n + i] + (a * c[p * n + i] if has_c else 0)
    for t in range(steps):
        _product(Q, x, w, <int>n, <int>rows, a, 1)
        if t + 1 < steps:
            step_constants(lr, beta[0], schedule[(t + 1) * schedule_stride], False, lr_inside,
                           False, dampening, first_step_undamped, &a_next, &k_next, &e_next)
        for p in range(rows):
            if diverged[p]:
                continue
            row = w + p * n
            if not lr_inside:  # k = eta_t of this problem
                step_constants(lr_rows[p], beta[p], schedule[t * schedule_stride], t == 0,
                               False, False, dampening, first_step_undamped, &a, &k, &e)
            for i in range(n):
                x[p * n + i] = x[p * n + i] - k * row[i]
            if trajectory != NULL and (t + 1) % every == 0:
                for i in range(n):
                    trajectory[((t + 1) // every) * stride + p * n + i] = x[p * n + i]
            if ((t + 1) % CHECK_EVERY == 0 or t + 1 == steps) and not within(x + p * n, n, bound):
                diverged[p] = True
                steps_taken[p] = t + 1
            if diverged[p] or t + 1 == steps:
                for i in range(n):
                    u[p * n + i] = row[i]
            else:
                for i in range(n):
                    row[i] = beta[p] * row[i] + (a_next * c[p * n + i] if has_c else 0)
        a = a_next
    for p in range(rows):
        if diverged[p]:
            _mark_unrecorded(<floating*>NULL, trajectory + p * n if trajectory != NULL else NULL,
                             steps_taken[p] // every + 1, steps // every + 1, stride, n)


def run_dense_shared(const floating[:, ::1] Q, const floating[:, ::1] c, const floating[::1] b,
                     floating[:, ::1] x, floating[:, ::1] u, floating[:, ::1] g,
                     const floating[::1] lr, const floating[::1] beta,
                     const floating[::1] schedule, Py_ssize_t steps, bint lr_inside,
                     bint nesterov, floating dampening, bint first_step_undamped,
                     Py_ssize_t every, floating bound,
                     floating[:, ::1] loss, floating[:, :, ::1] trajectory,
                     int64_t[::1] steps_taken, unsigned char[::1] diverged, int n_threads):
    """The canonical update on B problems sharing Q (n, n), in place; g (B, n) is workspace.

    NumPy equivalent: ``polyak.reference.run_dense`` with the same arguments. Other
    arguments and shapes as ``polyak._kernels._diagonal.run_diagonal``. The BLAS threads the
    product and the update runs on the calling thread; `n_threads` is not used. (Measured on
    2 cores, B = n = 512: cutting the batch into one block per OpenMP thread, each calling
    the BLAS, ran at 55–73 % of the rate of the BLAS product alone; one block, 83–99 %.)
    """
    cdef Py_ssize_t p, B = x.shape[0], n = x.shape[1]
    cdef Py_ssize_t schedule_stride = 0 if schedule.shape[0] == 1 else 1
    cdef bint has_c = not within(&c[0, 0], B * n, 0)
    cdef bint same_a = True  # a_t is the same for every problem (it holds lr only inside)
    if lr_inside:
        for p in range(B):
            same_a = same_a and lr[p] == lr[0]
    with nogil:
        if same_a and not nesterov and loss.shape[1] == 0:
            _run_block_fused(&Q[0, 0], &c[0, 0], &x[0, 0], &u[0, 0], &g[0, 0], B, n, lr[0],
                             &lr[0], &beta[0], &schedule[0], schedule_stride, steps, lr_inside,
                             dampening, first_step_undamped, every, bound,
                             &trajectory[0, 0, 0] if trajectory.shape[0] > 0 else NULL, B * n,
                             &steps_taken[0], &diverged[0], has_c)
        else:
            _run_block(&Q[0, 0], &c[0, 0], &b[0], &x[0, 0], &u[0, 0], &g[0, 0], B, n, &lr[0],
                       &beta[0], &schedule[0], schedule_stride, steps, lr_inside, nesterov,
                       dampening, first_step_undamped, every, bound,
                       &loss[0, 0] if loss.shape[1] > 0 else NULL, steps // every + 1,
                       &trajectory[0, 0, 0] if trajectory.shape[0] > 0 else NULL, B * n,
                       &steps_taken[0], &diverged[0], has_c)


cdef int64_t _run_dense_problem(const floating* Q, const floating* c, floating b,
                                floating* x, floating* u, floating* g, Py_ssize_t n,
                                floating lr, floating beta, const floating* schedule,
                                Py_ssize_t schedule_stride, Py_ssize_t steps, bint lr_inside,
                                bint nesterov, floating dampening, bint first_step_undamped,
                                Py_ssize_t every, floating bound, floating* loss,
                                floating* trajectory, Py_ssize_t stride,
                                unsigned char* diverged) noexcept nogil:
    # one problem with its own Q, in place; returns the steps taken, sets diverged[0]
    cdef Py_ssize_t t, records = steps // every + 1
    cdef bint recording = loss != NULL or trajectory != NULL
    cdef bint has_c = not within(c, n, 0)
    diverged[0] = False
    cdef Py_ssize_t stop = steps
    for t in range(steps + 1):
        if t < steps or (recording and t % every == 0):
            _matvec(Q, x, g, n)
        if recording and t % every == 0:
            _record(loss, trajectory, t // every, stride, x, g, c, b, n)
        if t == stop:
            break
        if _step_row(x, u, g, c, n, lr, beta, schedule[t * schedule_stride], t, steps,
                     lr_inside, nesterov, dampening, first_step_undamped, bound, has_c):
            diverged[0] = True
            stop = t + 1  # the loop goes once more, to record step t + 1 if that is a record
    if diverged[0]:
        _mark_unrecorded(loss, trajectory, stop // every + 1, records, stride, n)
    return stop


def run_dense_batched(const floating[:, :, ::1] Q, const floating[:, ::1] c,
                      const floating[::1] b, floating[:, ::1] x, floating[:, ::1] u,
                      floating[:, ::1] g, const floating[::1] lr, const floating[::1] beta,
                      const floating[::1] schedule, Py_ssize_t steps, bint lr_inside,
                      bint nesterov, floating dampening, bint first_step_undamped,
                      Py_ssize_t every, floating bound,
                      floating[:, ::1] loss, floating[:, :, ::1] trajectory,
                      int64_t[::1] steps_taken, unsigned char[::1] diverged, int n_threads):
    """The canonical update on B problems with their own Q (B, n, n), in place.

    NumPy equivalent: ``polyak.reference.run_dense`` with the same arguments; g (B, n) is
    workspace. Other arguments and shapes as ``polyak._kernels._diagonal.run_diagonal``.
    """
    cdef Py_ssize_t p, B = x.shape[0], n = x.shape[1]
    cdef Py_ssize_t stride = B * n
    cdef Py_ssize_t schedule_stride = 0 if schedule.shape[0] == 1 else 1
    cdef bint record_loss = loss.shape[1] > 0
    cdef bint record_trajectory = trajectory.shape[0] > 0
    with nogil:
        for p in prange(B, schedule="static", num_threads=n_threads):
            steps_taken[p] = _run_dense_problem(
                &Q[p, 0, 0], &c[p, 0], b[p], &x[p, 0], &u[p, 0], &g[p, 0], n, lr[p], beta[p],
                &schedule[0], schedule_stride, steps, lr_inside, nesterov, dampening,
                first_step_undamped, every, bound, &loss[p, 0] if record_loss else NULL,
                &trajectory[0, p, 0] if record_trajectory else NULL, stride, &diverged[p])
