"""Momentum-family updates on batches of dense quadratics f(x) = ½ xᵀQx + cᵀx + b.

The canonical update of ``_diagonal.pyx`` with the gradient g = Qx + c:

    u_t = β u_{t-1} + a_t g_t,   x_t = x_{t-1} − k_t u_t − e_t g_t

- ``run_dense_shared``: one Q for the whole batch. Each step is one matrix product for all
  configurations, G = X Q (BLAS ?gemm through scipy.linalg.cython_blas, threaded by the
  BLAS), then one pass over the configurations that adds c, updates u and x, records and
  checks, while G, X and U are still in cache.
- ``run_dense_batched``: one Q per problem; configurations in parallel, each with its time
  loop and its own matrix-vector product, g = Σⱼ xⱼ Q[j, :], summed in a fixed order.

Both record f(x_t) = b + Σᵢ xᵢ(½(Qx)ᵢ + cᵢ) from the product they compute anyway and check
divergence after every CHECK_EVERY-th step and the last. Each configuration's state is saved
at the start of every check interval; when a check finds it beyond the bound, its interval is
run again from there, checked after every step (``_last_within``), and the configuration
stops at the last step before the first beyond the bound, with that state (its later records
are NaN). Once every configuration has stopped, the run ends. ``polyak.reference.momentum`` with
``polyak.reference.quadratic_gradient`` is their NumPy twin.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport NAN
from libc.stdint cimport int64_t
from scipy.linalg.cython_blas cimport dgemm, sgemm

from polyak._kernels._common cimport (A_FIRST, A_FIXED, A_SCALED, BETA, CHECK_EVERY, E_FIXED,
                                      E_SCALED, Settings, restore_state, save_state, settings,
                                      start, step_coefficients, stop_requested, within)

# The integer type of scipy.linalg.cython_blas's sizes (``int`` in every SciPy this package
# supports: tests/test_build.py reads it from SciPy's declarations). Cython checks the
# pointers passed below against those declarations, so a SciPy with 64-bit BLAS integers
# fails to compile here instead of receiving the wrong size. polyak.execute keeps B and n
# below 2**31.
ctypedef int blas_int


cdef inline void _product(const floating* Q, const floating* x, floating* g, blas_int n,
                          blas_int rows, floating scale, floating keep) noexcept nogil:
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


cdef inline void _update_flags(floating* x, floating* u, const floating* qx,
                               const floating* c, Py_ssize_t n, floating beta, floating a,
                               floating k, floating e, bint with_e) noexcept nogil:
    # g = qx + c;  u = beta*u + a*g;  x -= k*u + e*g   (c == NULL: no linear term)
    cdef Py_ssize_t i
    cdef floating g, v
    for i in range(n):
        g = qx[i] + c[i] if c != NULL else qx[i]
        v = beta * u[i] + a * g
        u[i] = v
        if with_e:
            x[i] = x[i] - k * v - e * g
        else:
            x[i] = x[i] - k * v


cdef inline void _update(floating* x, floating* u, const floating* qx, const floating* c,
                         Py_ssize_t n, floating beta, floating a, floating k,
                         floating e) noexcept nogil:
    # _update_flags with "e != 0" (nesterov) and "no linear term" made compile-time constants
    if e != 0:
        if c == NULL:
            _update_flags(x, u, qx, NULL, n, beta, a, k, e, True)
        else:
            _update_flags(x, u, qx, c, n, beta, a, k, e, True)
    elif c == NULL:
        _update_flags(x, u, qx, NULL, n, beta, a, k, e, False)
    else:
        _update_flags(x, u, qx, c, n, beta, a, k, e, False)


cdef inline void _record(floating* loss, floating* trajectory, Py_ssize_t r, const floating* x,
                         const floating* qx, const floating* c, floating b,
                         Py_ssize_t n) noexcept nogil:
    # loss[r] = f(x) = b + sum(x * (0.5*qx + c)) given qx = Q x;  trajectory[r*n : +n] = x
    # (each when asked for)
    cdef Py_ssize_t i
    cdef floating total = 0
    if loss != NULL:
        for i in range(n):
            total += x[i] * (<floating>0.5 * qx[i] + c[i])
        loss[r] = b + total
    if trajectory != NULL:
        for i in range(n):
            trajectory[r * n + i] = x[i]


cdef inline void _mark_unrecorded(floating* loss, floating* trajectory, Py_ssize_t first,
                                  Py_ssize_t records, Py_ssize_t n) noexcept nogil:
    # records first..records-1 did not happen (the configuration stopped): NaN marks them
    cdef Py_ssize_t r, i
    for r in range(first, records):
        if loss != NULL:
            loss[r] = NAN
        if trajectory != NULL:
            for i in range(n):
                trajectory[r * n + i] = NAN


cdef Py_ssize_t _last_within(const floating* Q, const floating* c, const floating* row,
                             const floating* schedule, Py_ssize_t t0, Py_ssize_t t_end,
                             const Settings* run, floating* x, floating* u, floating* g,
                             floating* saved, bint shared) noexcept nogil:
    # A check after step t_end found x beyond the bound; `saved` holds (x, u) after step t0.
    # Runs steps t0..t_end-1 again from there, checking after each, and leaves x, u at the
    # last step before the first that went beyond; returns that step. The product is the
    # kernel's own (a one-row BLAS product when Q is shared: it may round unlike the
    # product over the batch, so the replay agrees with the run to rounding).
    cdef Py_ssize_t t, n = run.n
    cdef floating a, k, e
    restore_state(saved, x, u, n)
    for t in range(t0, t_end):
        save_state(saved, x, u, n)
        if shared:
            _product(Q, x, g, <blas_int>n, 1, 1, 0)
        else:
            _matvec(Q, x, g, n)
        step_coefficients(row, schedule[t * run.schedule_stride], t == 0, &a, &k, &e)
        _update(x, u, g, c, n, row[BETA], a, k, e)
        if not within(x, n, <floating>run.bound):
            restore_state(saved, x, u, n)
            return t
    restore_state(saved, x, u, n)
    return t_end - 1


cdef inline bint _step(floating* x, floating* u, const floating* qx, const floating* c,
                       const floating* row, const floating* schedule, Py_ssize_t t,
                       const Settings* run) noexcept nogil:
    # step t -> t + 1 of one configuration (c == NULL: no linear term); returns True when it
    # is found diverged after it
    cdef floating a, k, e
    step_coefficients(row, schedule[t * run.schedule_stride], t == 0, &a, &k, &e)
    _update(x, u, qx, c, run.n, row[BETA], a, k, e)
    if (t + 1) % CHECK_EVERY == 0 or t + 1 == run.steps:
        return not within(x, run.n, <floating>run.bound)
    return False


cdef inline floating* _row(floating* records, Py_ssize_t p, Py_ssize_t size) noexcept nogil:
    # configuration p's records (each `size` long), or NULL when nothing is recorded
    return NULL if records == NULL else records + p * size


cdef void _run_shared(const floating* Q, const floating[:, ::1] c, const floating[::1] b,
                      const int64_t[::1] problem_index, const floating[:, ::1] coefficients,
                      const floating* schedule, const Settings* run, floating* x, floating* u,
                      floating* g, floating* saved, floating* loss, floating* trajectory,
                      int64_t* steps_taken, unsigned char* diverged) noexcept nogil:
    # every configuration, sharing Q, for all the steps: per step one product g = x @ Q for
    # the batch, then each configuration's update while the batch is in cache
    cdef Py_ssize_t p, t, n = run.n, rows = run.configurations, running = rows
    cdef const floating* linear
    cdef bint record_now
    cdef floating* loss_row
    cdef floating* trajectory_row
    cdef bint has_c = not within(&c[0, 0], c.shape[0] * n, 0)
    cdef bint recording = loss != NULL or trajectory != NULL
    for p in range(rows):
        steps_taken[p] = run.steps
        diverged[p] = False
    for t in range(run.steps + 1):
        record_now = recording and t % run.every == 0
        if (t == run.steps and not record_now) or running == 0 or stop_requested(run):
            break
        if t < run.steps or loss != NULL:
            _product(Q, x, g, <blas_int>n, <blas_int>rows, 1, 0)
        for p in range(rows):
            if steps_taken[p] < t:  # stopped before this step
                continue
            if record_now:
                _record(_row(loss, p, run.records), _row(trajectory, p, run.records * n),
                        t // run.every, x + p * n, g + p * n, &c[problem_index[p], 0],
                        b[problem_index[p]], n)
            if t < run.steps and not diverged[p]:
                linear = &c[problem_index[p], 0] if has_c else NULL
                if t % CHECK_EVERY == 0:
                    save_state(saved + 2 * p * n, x + p * n, u + p * n, n)
                if _step(x + p * n, u + p * n, g + p * n, linear, &coefficients[p, 0],
                         schedule, t, run):
                    diverged[p] = True
                    running -= 1
                    steps_taken[p] = _last_within(
                        Q, linear, &coefficients[p, 0], schedule, t - t % CHECK_EVERY, t + 1,
                        run, x + p * n, u + p * n, g + p * n, saved + 2 * p * n, True)
    for p in range(rows):
        if diverged[p]:
            _mark_unrecorded(_row(loss, p, run.records), _row(trajectory, p, run.records * n),
                             steps_taken[p] // run.every + 1, run.records, n)


cdef bint _same_a(const floating[:, ::1] coefficients) noexcept nogil:
    # whether a_t is the same for every configuration at every step
    cdef Py_ssize_t p
    for p in range(coefficients.shape[0]):
        if (coefficients[p, A_FIXED] != coefficients[0, A_FIXED]
                or coefficients[p, A_SCALED] != coefficients[0, A_SCALED]
                or coefficients[p, A_FIRST] != coefficients[0, A_FIRST]):
            return False
    return True


cdef bint _any_e(const floating[:, ::1] coefficients) noexcept nogil:
    # whether some configuration has an e_t g_t term (nesterov)
    cdef Py_ssize_t p
    for p in range(coefficients.shape[0]):
        if coefficients[p, E_FIXED] != 0 or coefficients[p, E_SCALED] != 0:
            return True
    return False


cdef void _run_shared_fused(const floating* Q, const floating[:, ::1] c,
                            const int64_t[::1] problem_index,
                            const floating[:, ::1] coefficients, const floating* schedule,
                            const Settings* run, floating* x, floating* u, floating* w,
                            floating* saved, floating* trajectory, int64_t* steps_taken,
                            unsigned char* diverged) noexcept nogil:
    # _run_shared without an e term or a loss to record, when a_t is the same for every
    # configuration: the BLAS product also makes the new velocity,
    #     w = a_t x @ Q + w   with   w = beta*u_t + a_t*c   (so w = u_{t+1}),
    # which saves the pass that zeroes the product and one array of the update's traffic.
    cdef Py_ssize_t p, i, t, n = run.n, rows = run.configurations, running = rows
    cdef floating a, k, e, a_next, k_unused, e_unused, beta
    cdef floating* row
    cdef const floating* linear
    cdef bint has_c = not within(&c[0, 0], c.shape[0] * n, 0)
    for p in range(rows):
        steps_taken[p] = run.steps
        diverged[p] = False
        save_state(saved + 2 * p * n, x + p * n, u + p * n, n)
        if trajectory != NULL:
            for i in range(n):
                trajectory[p * run.records * n + i] = x[p * n + i]
    if run.steps == 0:
        return
    step_coefficients(&coefficients[0, 0], schedule[0], True, &a, &k, &e)
    for p in range(rows):
        linear = &c[problem_index[p], 0]
        for i in range(n):
            w[p * n + i] = coefficients[p, BETA] * u[p * n + i] + (a * linear[i] if has_c else 0)
    a_next = a
    for t in range(run.steps):
        if running == 0 or stop_requested(run):
            break
        _product(Q, x, w, <blas_int>n, <blas_int>rows, a, 1)
        if t + 1 < run.steps:
            step_coefficients(&coefficients[0, 0], schedule[(t + 1) * run.schedule_stride],
                              False, &a_next, &k_unused, &e_unused)
        for p in range(rows):
            if diverged[p]:
                continue
            row = w + p * n
            step_coefficients(&coefficients[p, 0], schedule[t * run.schedule_stride], t == 0,
                              &a, &k, &e)
            for i in range(n):
                x[p * n + i] = x[p * n + i] - k * row[i]
            if trajectory != NULL and (t + 1) % run.every == 0:
                for i in range(n):
                    trajectory[(p * run.records + (t + 1) // run.every) * n + i] = x[p * n + i]
            if (t + 1) % CHECK_EVERY == 0 or t + 1 == run.steps:
                linear = &c[problem_index[p], 0] if has_c else NULL
                if not within(x + p * n, n, <floating>run.bound):
                    diverged[p] = True
                    running -= 1
                    steps_taken[p] = _last_within(
                        Q, linear, &coefficients[p, 0], schedule, t - t % CHECK_EVERY, t + 1,
                        run, x + p * n, u + p * n, row, saved + 2 * p * n, True)
                    continue
                save_state(saved + 2 * p * n, x + p * n, row, n)  # the next interval's start
            if t + 1 == run.steps:
                for i in range(n):
                    u[p * n + i] = row[i]
            else:
                beta = coefficients[p, BETA]
                linear = &c[problem_index[p], 0]
                for i in range(n):
                    row[i] = beta * row[i] + (a_next * linear[i] if has_c else 0)
        a = a_next
    for p in range(rows):
        if diverged[p]:
            _mark_unrecorded(<floating*>NULL, _row(trajectory, p, run.records * n),
                             steps_taken[p] // run.every + 1, run.records, n)


def run_dense_shared(*, const floating[:, ::1] Q, const floating[:, ::1] c,
                     const floating[::1] b, const int64_t[::1] problem_index,
                     const floating[:, ::1] coefficients, const floating[::1] schedule,
                     const floating[:, ::1] x0, const floating[:, ::1] u0, floating[:, ::1] x,
                     floating[:, ::1] u, floating[:, ::1] g, floating[:, ::1] saved,
                     floating[:, ::1] loss, floating[:, :, ::1] trajectory,
                     int64_t[::1] steps_taken, unsigned char[::1] diverged, Py_ssize_t steps,
                     Py_ssize_t every, double bound, int n_threads, const int[::1] stop):
    """The canonical update for B configurations sharing Q (n, n); g (B, n) and saved
    (B, 2n) are workspace.

    NumPy equivalent: ``polyak.reference.momentum`` (quadratic_gradient). Other arguments as
    ``polyak._kernels._diagonal.run_diagonal``. The BLAS threads the product and the update
    runs on the calling thread; `n_threads` is not used. (Measured on 2 cores, B = n = 512:
    cutting the batch into one block per OpenMP thread, each calling the BLAS, ran at 55–73 %
    of the rate of the BLAS product alone; one block, 83–99 %.)
    """
    cdef Py_ssize_t p
    cdef Settings run = settings(x.shape[0], x.shape[1], steps, every,
                                 max(loss.shape[1], trajectory.shape[1]), schedule.shape[0], bound,
                                 &stop[0])
    cdef floating* trajectory_data = &trajectory[0, 0, 0] if trajectory.shape[1] > 0 else NULL
    with nogil:
        for p in range(run.configurations):
            start(x, u, x0, u0, p)
        if _same_a(coefficients) and not _any_e(coefficients) and loss.shape[1] == 0:
            _run_shared_fused(&Q[0, 0], c, problem_index, coefficients, &schedule[0], &run,
                              &x[0, 0], &u[0, 0], &g[0, 0], &saved[0, 0], trajectory_data,
                              &steps_taken[0], &diverged[0])
        else:
            _run_shared(&Q[0, 0], c, b, problem_index, coefficients, &schedule[0], &run,
                        &x[0, 0], &u[0, 0], &g[0, 0], &saved[0, 0],
                        &loss[0, 0] if loss.shape[1] > 0 else NULL, trajectory_data,
                        &steps_taken[0], &diverged[0])


cdef int64_t _run_configuration(const floating* Q, const floating* c, floating b,
                                const floating* row, const floating* schedule,
                                const Settings* run, floating* x, floating* u, floating* g,
                                floating* saved, floating* loss, floating* trajectory,
                                unsigned char* diverged) noexcept nogil:
    # one configuration with its own Q, in place; returns the steps taken, sets diverged[0]
    cdef Py_ssize_t t, n = run.n
    cdef bint recording = loss != NULL or trajectory != NULL
    cdef bint has_c = not within(c, n, 0)
    cdef Py_ssize_t stop = run.steps
    diverged[0] = False
    for t in range(run.steps + 1):
        if t < run.steps or (recording and t % run.every == 0):
            _matvec(Q, x, g, n)
        if recording and t % run.every == 0:
            _record(loss, trajectory, t // run.every, x, g, c, b, n)
        if t == stop:
            break
        if t % CHECK_EVERY == 0:
            if stop_requested(run):
                return t
            save_state(saved, x, u, n)
        if _step(x, u, g, c if has_c else NULL, row, schedule, t, run):
            diverged[0] = True
            stop = _last_within(Q, c if has_c else NULL, row, schedule, t - t % CHECK_EVERY,
                                t + 1, run, x, u, g, saved, False)
            break  # (the records up to the kept step were taken on the way)
    if diverged[0]:
        _mark_unrecorded(loss, trajectory, stop // run.every + 1, run.records, n)
    return stop


def run_dense_batched(*, const floating[:, :, ::1] Q, const floating[:, ::1] c,
                      const floating[::1] b, const int64_t[::1] problem_index,
                      const floating[:, ::1] coefficients, const floating[::1] schedule,
                      const floating[:, ::1] x0, const floating[:, ::1] u0,
                      floating[:, ::1] x, floating[:, ::1] u, floating[:, ::1] g,
                      floating[:, ::1] saved, floating[:, ::1] loss,
                      floating[:, :, ::1] trajectory, int64_t[::1] steps_taken,
                      unsigned char[::1] diverged, Py_ssize_t steps, Py_ssize_t every,
                      double bound, int n_threads, const int[::1] stop):
    """The canonical update for B configurations whose problems have their own Q (P, n, n).

    NumPy equivalent: ``polyak.reference.momentum`` (quadratic_gradient); g (B, n) and saved
    (B, 2n) are workspace. Other arguments as ``polyak._kernels._diagonal.run_diagonal``.
    """
    cdef Py_ssize_t p, q
    cdef Settings run = settings(x.shape[0], x.shape[1], steps, every,
                                 max(loss.shape[1], trajectory.shape[1]), schedule.shape[0], bound,
                                 &stop[0])
    with nogil:
        for p in prange(run.configurations, schedule="static", num_threads=n_threads):
            q = problem_index[p]
            start(x, u, x0, u0, p)
            steps_taken[p] = _run_configuration(
                &Q[q, 0, 0], &c[q, 0], b[q], &coefficients[p, 0], &schedule[0], &run,
                &x[p, 0], &u[p, 0], &g[p, 0], &saved[p, 0],
                &loss[p, 0] if loss.shape[1] > 0 else NULL,
                &trajectory[p, 0, 0] if trajectory.shape[1] > 0 else NULL, &diverged[p])
