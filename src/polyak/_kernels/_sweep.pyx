"""Sweeps: many configurations of the canonical update on one spectrum, configurations in lanes.

In the eigenbasis of Q, with the error e = x − x* of each eigen-coordinate, the canonical
update of ``_diagonal.pyx`` is

    g = λ e,   u ← β u + a_t g,   e ← e − k_t u − e_t g

and f(x) − f* = ½ Σᵢ λᵢ eᵢ². A chunk of LANES configurations of the same problem runs
together: coordinate i of all of them is one short vector (λᵢ is shared, the coefficients
differ per lane), so the vector units are full whatever n, and the state of a chunk, 2·n·LANES
numbers, stays in L1 for n up to about a hundred. Per configuration, the kernel computes the
metrics and keeps no step: the final loss ½ Σ λᵢ eᵢ² (from the error, not as a difference of
two values of f), the first step t (0..T) with f(x_t) − f* <= tol, the magnitude test of
divergence after every CHECK_EVERY-th step and the last (a diverged lane is zeroed and stops
counting), and optionally the loss every `every` steps. Lanes are independent and each runs
the same arithmetic wherever it sits, so results do not depend on the thread count or on
how the configurations are cut into calls. ``polyak.reference.sweep`` is its NumPy twin.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY, NAN
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

from polyak._kernels._common cimport (BETA, CHECK_EVERY, COLUMNS, Settings, settings,
                                      step_coefficients, stop_requested)

cdef extern from *:
    """
    /* Configurations advanced together: 16 doubles are two AVX-512 vectors, four AVX2 ones,
       eight SSE2 ones; the state of a lane block is 2n vectors of this length. */
    #ifndef POLYAK_SWEEP_LANES
    #define POLYAK_SWEEP_LANES 16
    #endif
    """
    enum: LANES "POLYAK_SWEEP_LANES"


cdef inline void _advance_lanes(floating* E, floating* U, const floating* lam, Py_ssize_t n,
                                const floating* beta, const floating* a, const floating* k,
                                const floating* e, floating* total, bint with_e,
                                bint with_loss) noexcept nogil:
    # one step of every coordinate of LANES configurations (E, U: n rows of LANES); with_loss:
    # total[j] = Σᵢ λᵢ E[i, j]² after the step (with_e, with_loss: constants at each call)
    cdef Py_ssize_t i, j
    cdef floating g, v, li
    cdef floating sums[LANES]
    for j in range(LANES):
        sums[j] = 0
    for i in range(n):
        li = lam[i]
        for j in range(LANES):
            g = li * E[i * LANES + j]
            v = beta[j] * U[i * LANES + j] + a[j] * g
            if with_e:
                E[i * LANES + j] = E[i * LANES + j] - k[j] * v - e[j] * g
            else:
                E[i * LANES + j] = E[i * LANES + j] - k[j] * v
            U[i * LANES + j] = v
            if with_loss:
                sums[j] = sums[j] + li * E[i * LANES + j] * E[i * LANES + j]
    if with_loss:
        for j in range(LANES):
            total[j] = sums[j]


cdef inline void _advance_cases(floating* E, floating* U, const floating* lam, Py_ssize_t n,
                                const floating* beta, const floating* a, const floating* k,
                                const floating* e, floating* total, bint with_e,
                                bint with_loss) noexcept nogil:
    if with_e:
        if with_loss:
            _advance_lanes(E, U, lam, n, beta, a, k, e, total, True, True)
        else:
            _advance_lanes(E, U, lam, n, beta, a, k, e, total, True, False)
    elif with_loss:
        _advance_lanes(E, U, lam, n, beta, a, k, e, total, False, True)
    else:
        _advance_lanes(E, U, lam, n, beta, a, k, e, total, False, False)


cdef inline void _loss_lanes(const floating* E, const floating* lam, Py_ssize_t n,
                             floating* total) noexcept nogil:
    # total[j] = Σᵢ λᵢ E[i, j]², summed as _advance_lanes sums
    cdef Py_ssize_t i, j
    cdef floating sums[LANES]
    for j in range(LANES):
        sums[j] = 0
    for i in range(n):
        for j in range(LANES):
            sums[j] = sums[j] + lam[i] * E[i * LANES + j] * E[i * LANES + j]
    for j in range(LANES):
        total[j] = sums[j]


cdef inline void _reach(const floating* total, int64_t t, floating twice_tol,
                        const int64_t* alive, int64_t* reached) noexcept nogil:
    # reached[j] = t where it is still −1, the lane runs (alive[j] = 1; a diverged lane is
    # zeroed, total 0) and total[j] = 2·(f − f*) <= 2·tol (halving is exact): branch-free over
    # all the lanes, a vector compare and blend
    cdef Py_ssize_t j
    for j in range(LANES):
        reached[j] = t if (reached[j] < 0) & (total[j] <= twice_tol) & (alive[j] != 0) else reached[j]


cdef inline void _record(const floating* total, Py_ssize_t t, Py_ssize_t count,
                         const bint* gone, floating* loss, const Settings* run) noexcept nogil:
    # the loss record of step t (a multiple of every), from total = 2·(f − f*)
    cdef Py_ssize_t j
    for j in range(count):
        if not gone[j]:
            loss[j * run.records + t // run.every] = <floating>0.5 * total[j]


cdef void _sweep_chunk(const floating* lam, const floating* e0, const floating* rows,
                       Py_ssize_t count, const floating* schedule, const Settings* run,
                       floating* E, floating* U, floating* final_loss, int64_t* steps_to_tol,
                       unsigned char* diverged, floating* loss, double tol) noexcept nogil:
    # `count` <= LANES configurations (coefficient rows `rows`, COLUMNS each) of the problem
    # (lam, e0), all the steps; E, U: workspace of n·LANES each; the outputs from this
    # chunk's first configuration (steps_to_tol, loss: NULL when not asked for)
    cdef Py_ssize_t i, j, t, r, n = run.n
    cdef floating beta[LANES]
    cdef floating a[LANES]
    cdef floating k[LANES]
    cdef floating e[LANES]
    cdef floating total[LANES]
    cdef bint gone[LANES]
    cdef bint with_e = False, with_loss, all_gone
    cdef bint tracking = steps_to_tol != NULL
    cdef int64_t reached[LANES]
    cdef int64_t alive[LANES]
    cdef floating twice_tol = <floating>(2 * tol)
    for j in range(LANES):
        reached[j] = -1
        alive[j] = j < count
        gone[j] = j >= count
        beta[j] = rows[j * COLUMNS + BETA] if j < count else 0
        a[j] = k[j] = e[j] = 0
    for i in range(n):
        for j in range(LANES):
            E[i * LANES + j] = e0[i] if j < count else 0
            U[i * LANES + j] = 0
    for j in range(count):
        diverged[j] = False
    if tracking or loss != NULL:
        _loss_lanes(E, lam, n, total)
        if tracking:
            _reach(total, 0, twice_tol, alive, reached)
        if loss != NULL:
            _record(total, 0, count, gone, loss, run)
    for t in range(run.steps):
        if t <= 1 or run.schedule_stride != 0:  # torch's first step differs; then constant
            with_e = False
            for j in range(count):
                if not gone[j]:
                    step_coefficients(rows + j * COLUMNS, schedule[t * run.schedule_stride], t == 0,
                                      &a[j], &k[j], &e[j])
                    with_e = with_e or e[j] != 0
        with_loss = tracking or (loss != NULL and (t + 1) % run.every == 0)
        _advance_cases(E, U, lam, n, beta, a, k, e, total, with_e, with_loss)
        if tracking:
            _reach(total, t + 1, twice_tol, alive, reached)
        if loss != NULL and (t + 1) % run.every == 0:
            _record(total, t + 1, count, gone, loss, run)
        if (t + 1) % CHECK_EVERY == 0 or t + 1 == run.steps:
            all_gone = True
            for j in range(count):
                if not gone[j]:
                    for i in range(n):
                        if not (E[i * LANES + j] <= run.bound and E[i * LANES + j] >= -run.bound):
                            gone[j] = True
                            break
                    if gone[j]:  # a diverged lane: zero, and counting no more
                        diverged[j] = True
                        alive[j] = 0
                        beta[j] = a[j] = k[j] = e[j] = 0
                        for i in range(n):
                            E[i * LANES + j] = U[i * LANES + j] = 0
                        if loss != NULL:
                            for r in range(t // run.every + 1, run.records):
                                loss[j * run.records + r] = NAN
                all_gone = all_gone and gone[j]
            if all_gone or stop_requested(run):
                break
    _loss_lanes(E, lam, n, total)
    for j in range(count):
        final_loss[j] = INFINITY if gone[j] else <floating>0.5 * total[j]
        if tracking:
            steps_to_tol[j] = reached[j]


def lanes():
    """Configurations this level's sweep kernel advances together."""
    return LANES


def sweep_diagonal(*, const floating[:, ::1] lam, const floating[:, ::1] e0,
                   const int64_t[::1] chunk_problem, const int64_t[::1] chunk_start,
                   const floating[:, ::1] coefficients, const floating[::1] schedule,
                   Py_ssize_t steps, double tol, Py_ssize_t every, double bound,
                   floating[::1] final_loss, int64_t[::1] steps_to_tol,
                   unsigned char[::1] diverged, floating[:, ::1] loss, int n_threads,
                   const int[::1] stop):
    """Metrics of C configurations (see the module docstring).

    lam, e0 (P, n): each problem's eigenvalues and starting error; coefficients (C, 8): each
    configuration's row of the plan table (polyak.plans.COLUMNS); schedule: T multipliers or
    one. The configurations are cut into chunks of at most LANES that share a problem: chunk q
    is configurations chunk_start[q]..chunk_start[q+1]-1 of problem chunk_problem[q]
    (chunk_start has one more entry). tol < 0: no tolerance (steps_to_tol not written);
    loss (C, T // every + 1) or (C, 0). Outputs, all written (for C configurations):
    final_loss (inf where diverged), steps_to_tol (−1: never), diverged. Keyword-only,
    validated by the caller (polyak.sweep).
    """
    cdef Py_ssize_t q, first, count, n = lam.shape[1], chunks = chunk_problem.shape[0]
    cdef Settings run = settings(coefficients.shape[0], n, steps, every if every > 0 else 1,
                                 loss.shape[1], schedule.shape[0], bound, &stop[0])
    cdef floating* workspace
    cdef int no_memory = 0
    cdef int* no_memory_flag = &no_memory
    with nogil, parallel(num_threads=n_threads):
        workspace = <floating*>malloc(2 * n * LANES * sizeof(floating))
        for q in prange(chunks, schedule="dynamic"):
            if workspace == NULL:
                no_memory_flag[0] = 1
                continue
            first = chunk_start[q]
            count = chunk_start[q + 1] - first
            _sweep_chunk(&lam[chunk_problem[q], 0], &e0[chunk_problem[q], 0],
                         &coefficients[first, 0], count, &schedule[0], &run, workspace,
                         workspace + n * LANES, &final_loss[first],
                         &steps_to_tol[first] if tol >= 0 else NULL, &diverged[first],
                         &loss[first, 0] if loss.shape[1] > 0 else NULL, tol)
        free(workspace)
    if no_memory:
        raise MemoryError(f"no memory for the sweep's workspace ({2 * n * LANES} numbers per thread)")
