"""Sweeps: many configurations of the canonical update on one spectrum, configurations in lanes.

In the eigenbasis of Q, with the error e = x − x* of each eigen-coordinate, the canonical
update of ``_diagonal.pyx`` is

    g = λ e,   u ← β u + a_t g,   e ← e − k_t u − e_t g

and f(x) − f* = ½ Σᵢ λᵢ eᵢ². A chunk of LANES configurations of the same problem runs
together: coordinate i of all of them is one short vector (λᵢ is shared, the coefficients
differ per lane), so the vector units are full whatever n. A check interval at a time, each
block of COORDS coordinates of the chunk runs all the interval's steps in registers and adds
its share of each step's loss to a buffer of the interval's losses, from which the tolerance
and the records are read. Per configuration, the kernel computes the
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

from polyak._kernels._common cimport (A_SCALED, BETA, CHECK_EVERY, COLUMNS, E_SCALED, K_SCALED,
                                      Settings, settings, step_coefficients, stop_requested)

cdef extern from *:
    """
    /* LANES configurations advance together, COORDS coordinates of them at a time in
       registers: AVX-512 (32 registers of 8 doubles): 16 lanes, 4 coordinates (E and U in 16
       registers); AVX2 (16 of 4): 8 lanes, 2 coordinates; SSE2 (16 of 2): 4 and 2. */
    #ifndef POLYAK_SWEEP_LANES
    #if defined(__AVX512F__)
      #define POLYAK_SWEEP_LANES 16
      #define POLYAK_SWEEP_COORDS 4
    #elif defined(__AVX2__)
      #define POLYAK_SWEEP_LANES 8
      #define POLYAK_SWEEP_COORDS 2
    #else
      #define POLYAK_SWEEP_LANES 4
      #define POLYAK_SWEEP_COORDS 2
    #endif
    #endif
    """
    enum: LANES "POLYAK_SWEEP_LANES"
    enum: COORDS "POLYAK_SWEEP_COORDS"


cdef inline void _block_steps(floating* E, floating* U, const floating* lam,
                              const floating* beta, const floating* fixed,
                              const floating* scaled, const floating* multipliers,
                              Py_ssize_t steps, floating* losses, bint with_e, bint with_loss,
                              bint varying, Py_ssize_t coords) noexcept nogil:
    # `steps` steps of `coords` <= COORDS coordinates (E, U: coords rows of LANES) of LANES
    # configurations,
    # held in registers for all of them. Coefficients: fixed[0..2] = the lanes' a, k, e, or,
    # `varying`, a_t = fixed[0] + scaled[0]·multipliers[s] and likewise k_t, e_t. with_loss:
    # losses[s, j] += Σ_c λ_c E[c, j]² after step s. The flags are constants at each call.
    cdef floating Eb[COORDS * LANES]
    cdef floating Ub[COORDS * LANES]
    cdef floating a[LANES]
    cdef floating k[LANES]
    cdef floating e[LANES]
    cdef floating acc[LANES]
    cdef floating g, v
    cdef Py_ssize_t c, j, s
    for j in range(coords * LANES):
        Eb[j] = E[j]
        Ub[j] = U[j]
    for j in range(LANES):
        a[j], k[j], e[j] = fixed[j], fixed[LANES + j], fixed[2 * LANES + j]
    for s in range(steps):
        if varying:
            for j in range(LANES):
                a[j] = fixed[j] + scaled[j] * multipliers[s]
                k[j] = fixed[LANES + j] + scaled[LANES + j] * multipliers[s]
                e[j] = fixed[2 * LANES + j] + scaled[2 * LANES + j] * multipliers[s]
        if with_loss:
            for j in range(LANES):
                acc[j] = 0
        for c in range(coords):
            for j in range(LANES):
                g = lam[c] * Eb[c * LANES + j]
                v = beta[j] * Ub[c * LANES + j] + a[j] * g
                if with_e:
                    Eb[c * LANES + j] = Eb[c * LANES + j] - k[j] * v - e[j] * g
                else:
                    Eb[c * LANES + j] = Eb[c * LANES + j] - k[j] * v
                Ub[c * LANES + j] = v
                if with_loss:
                    acc[j] = acc[j] + lam[c] * Eb[c * LANES + j] * Eb[c * LANES + j]
        if with_loss:
            for j in range(LANES):
                losses[s * LANES + j] += acc[j]
    for j in range(coords * LANES):
        E[j] = Eb[j]
        U[j] = Ub[j]


cdef inline void _block_flags(floating* E, floating* U, const floating* lam,
                              const floating* beta, const floating* fixed,
                              const floating* scaled, const floating* multipliers,
                              Py_ssize_t steps, floating* losses, bint with_e,
                              bint varying, Py_ssize_t coords) noexcept nogil:
    # _block_steps with its three flags made constants (losses NULL: no loss)
    if varying:
        if losses != NULL:
            _block_steps(E, U, lam, beta, fixed, scaled, multipliers, steps, losses, True, True, True, coords)
        else:
            _block_steps(E, U, lam, beta, fixed, scaled, multipliers, steps, losses, True, False, True, coords)
    elif with_e:
        if losses != NULL:
            _block_steps(E, U, lam, beta, fixed, scaled, multipliers, steps, losses, True, True, False, coords)
        else:
            _block_steps(E, U, lam, beta, fixed, scaled, multipliers, steps, losses, True, False, False, coords)
    elif losses != NULL:
        _block_steps(E, U, lam, beta, fixed, scaled, multipliers, steps, losses, False, True, False, coords)
    else:
        _block_steps(E, U, lam, beta, fixed, scaled, multipliers, steps, losses, False, False, False, coords)


cdef inline void _block_cases(floating* E, floating* U, const floating* lam,
                              const floating* beta, const floating* fixed,
                              const floating* scaled, const floating* multipliers,
                              Py_ssize_t steps, floating* losses, bint with_e,
                              bint varying, Py_ssize_t coords) noexcept nogil:
    # _block_flags for blocks of COORDS coordinates, or of 2 (n = 2 would be half padding)
    if coords == COORDS:
        _block_flags(E, U, lam, beta, fixed, scaled, multipliers, steps, losses, with_e, varying, COORDS)
    else:
        _block_flags(E, U, lam, beta, fixed, scaled, multipliers, steps, losses, with_e, varying, 2)


cdef inline void _loss_lanes(const floating* E, const floating* lam, Py_ssize_t blocks,
                             Py_ssize_t width, floating* total) noexcept nogil:
    # total[j] = Σᵢ λᵢ E[i, j]², summed as _block_steps sums (per block of `width`
    # coordinates, blocks in order)
    cdef Py_ssize_t q, c, j, i
    cdef floating acc[LANES]
    for j in range(LANES):
        total[j] = 0
    for q in range(blocks):
        for j in range(LANES):
            acc[j] = 0
        for c in range(width):
            i = q * width + c
            for j in range(LANES):
                acc[j] = acc[j] + lam[i] * E[i * LANES + j] * E[i * LANES + j]
        for j in range(LANES):
            total[j] += acc[j]


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


cdef inline void _lane_coefficients(const floating* rows, Py_ssize_t count, const bint* gone,
                                    floating multiplier, bint first, floating* fixed,
                                    floating* scaled) noexcept nogil:
    # fixed[0..2] = the lanes' (a, k, e) at `multiplier` (first: a fresh run's first step);
    # scaled = their parts proportional to the multiplier (for a varying schedule); a lane
    # that is padding or diverged has all zero
    cdef Py_ssize_t j
    cdef const floating* row
    for j in range(LANES):
        fixed[j] = fixed[LANES + j] = fixed[2 * LANES + j] = 0
        scaled[j] = scaled[LANES + j] = scaled[2 * LANES + j] = 0
        if j < count and not gone[j]:
            row = rows + j * COLUMNS
            step_coefficients(row, multiplier, first, &fixed[j], &fixed[LANES + j], &fixed[2 * LANES + j])
            scaled[j], scaled[LANES + j], scaled[2 * LANES + j] = row[A_SCALED], row[K_SCALED], row[E_SCALED]


cdef void _sweep_chunk(const floating* lam, const floating* e0, const floating* rows,
                       Py_ssize_t count, const floating* schedule, const Settings* run,
                       floating* E, floating* U, floating* lam_padded, floating* losses,
                       floating* final_loss, int64_t* steps_to_tol, unsigned char* diverged,
                       floating* loss, double tol) noexcept nogil:
    # `count` <= LANES configurations (coefficient rows `rows`, COLUMNS each) of the problem
    # (lam, e0), all the steps, a check interval at a time: each block of COORDS coordinates
    # runs the interval in registers, adding its share of each step's loss to `losses`
    # (CHECK_EVERY rows of LANES), then the tolerance and the records are read from there.
    # E, U, lam_padded: workspace for n rounded up to COORDS (padding: λ = 0, e = 0); n <= 2
    # runs in blocks of 2, not half padding; the
    # outputs from this chunk's first configuration (steps_to_tol, loss: NULL if not asked)
    cdef Py_ssize_t i, j, q, t = 0, t_end, s, r, n = run.n
    cdef Py_ssize_t width = 2 if n <= 2 else COORDS  # coordinates per register block
    cdef Py_ssize_t blocks = (n + width - 1) // width, padded = blocks * width
    cdef floating beta[LANES]
    cdef floating fixed[3 * LANES]
    cdef floating scaled[3 * LANES]
    cdef floating total[LANES]
    cdef bint gone[LANES]
    cdef bint with_e, all_gone, any_loss
    cdef bint tracking = steps_to_tol != NULL
    cdef bint varying = run.schedule_stride != 0
    cdef int64_t reached[LANES]
    cdef int64_t alive[LANES]
    cdef floating twice_tol = <floating>(2 * tol)
    for j in range(LANES):
        reached[j] = -1
        alive[j] = j < count
        gone[j] = j >= count
        beta[j] = rows[j * COLUMNS + BETA] if j < count else 0
    for i in range(padded):
        lam_padded[i] = lam[i] if i < n else 0
        for j in range(LANES):
            E[i * LANES + j] = e0[i] if i < n and j < count else 0
            U[i * LANES + j] = 0
    for j in range(count):
        diverged[j] = False
    if tracking or loss != NULL:
        _loss_lanes(E, lam_padded, blocks, width, total)
        if tracking:
            _reach(total, 0, twice_tol, alive, reached)
        if loss != NULL:
            _record(total, 0, count, gone, loss, run)
    while t < run.steps and not stop_requested(run):
        # the first step alone (torch's differs), then check intervals
        t_end = 1 if t == 0 else min((t // CHECK_EVERY + 1) * CHECK_EVERY, run.steps)
        if t <= 1 or varying:
            # (with a varying schedule, after the first step: the parts at multiplier 0, to
            # which _block_steps adds the scaled parts times each step's multiplier)
            _lane_coefficients(rows, count, gone, 0 if varying and t > 0 else schedule[t * run.schedule_stride],
                               t == 0, fixed, scaled)
            with_e = False
            for j in range(2 * LANES, 3 * LANES):
                with_e = with_e or fixed[j] != 0 or scaled[j] != 0
        any_loss = tracking or (loss != NULL and t_end // run.every > t // run.every)
        if any_loss:
            for j in range((t_end - t) * LANES):
                losses[j] = 0
        for q in range(blocks):
            _block_cases(E + q * width * LANES, U + q * width * LANES, lam_padded + q * width,
                         beta, fixed, scaled, schedule + t if varying else schedule, t_end - t,
                         losses if any_loss else NULL, with_e, varying and t > 0, width)
        for s in range(t, t_end):
            if tracking:
                _reach(losses + (s - t) * LANES, s + 1, twice_tol, alive, reached)
            if loss != NULL and (s + 1) % run.every == 0:
                _record(losses + (s - t) * LANES, s + 1, count, gone, loss, run)
        t = t_end
        if t % CHECK_EVERY == 0 or t == run.steps:
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
                        beta[j] = 0
                        for i in range(3):
                            fixed[i * LANES + j] = scaled[i * LANES + j] = 0
                        for i in range(n):
                            E[i * LANES + j] = U[i * LANES + j] = 0
                        if loss != NULL:
                            for r in range(t // run.every + 1, run.records):
                                loss[j * run.records + r] = NAN
                all_gone = all_gone and gone[j]
            if all_gone:
                break
    _loss_lanes(E, lam_padded, blocks, width, total)
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
    cdef Py_ssize_t padded = (n + COORDS - 1) // COORDS * COORDS
    cdef Py_ssize_t size = 2 * padded * LANES + padded + CHECK_EVERY * LANES
    cdef Settings run = settings(coefficients.shape[0], n, steps, every if every > 0 else 1,
                                 loss.shape[1], schedule.shape[0], bound, &stop[0])
    cdef floating* workspace
    cdef int no_memory = 0
    cdef int* no_memory_flag = &no_memory
    with nogil, parallel(num_threads=n_threads):
        workspace = <floating*>malloc(size * sizeof(floating))
        for q in prange(chunks, schedule="dynamic"):
            if workspace == NULL:
                no_memory_flag[0] = 1
                continue
            first = chunk_start[q]
            count = chunk_start[q + 1] - first
            _sweep_chunk(&lam[chunk_problem[q], 0], &e0[chunk_problem[q], 0],
                         &coefficients[first, 0], count, &schedule[0], &run, workspace,
                         workspace + padded * LANES, workspace + 2 * padded * LANES,
                         workspace + 2 * padded * LANES + padded, &final_loss[first],
                         &steps_to_tol[first] if tol >= 0 else NULL, &diverged[first],
                         &loss[first, 0] if loss.shape[1] > 0 else NULL, tol)
        free(workspace)
    if no_memory:
        raise MemoryError(f"no memory for the sweep's workspace ({size} numbers per thread)")
