# Pieces every kernel shares: the layout of a plan's coefficient table, the per-step
# coefficients it gives, the run's scalar settings, the divergence test, the stop request.
from cython cimport floating
from libc.string cimport memcpy

cdef extern from *:
    """
    /* The stop request is written by the Python thread that waits for the kernel
       (polyak.execute, on Ctrl-C) while the kernel's threads read it: an atomic load. */
    #if defined(__GNUC__) || defined(__clang__)
    #define POLYAK_LOAD_RELAXED(p) __atomic_load_n((p), __ATOMIC_RELAXED)
    #else
    #define POLYAK_LOAD_RELAXED(p) (*(volatile const int*)(p))
    #endif
    """
    int POLYAK_LOAD_RELAXED(const int* flag) noexcept nogil

cdef extern from *:
    """
    /* A converging configuration's error keeps shrinking past the smallest normal number,
       and arithmetic on subnormals is microcoded (4-10x slower): kernels that let it run
       (the sweep, the NQM's Monte Carlo) set flush-to-zero and denormals-are-zero in each
       of their threads, restored after. */
    #if defined(__SSE2__)
    #include <xmmintrin.h>
    static inline unsigned int polyak_flush_subnormals(void) {
        unsigned int saved = _mm_getcsr();
        _mm_setcsr(saved | 0x8040u);  /* FTZ (bit 15) and DAZ (bit 6) */
        return saved;
    }
    static inline void polyak_restore_subnormals(unsigned int saved) { _mm_setcsr(saved); }
    #else
    static inline unsigned int polyak_flush_subnormals(void) { return 0; }
    static inline void polyak_restore_subnormals(unsigned int saved) { (void)saved; }
    #endif
    """
    unsigned int polyak_flush_subnormals() noexcept nogil
    void polyak_restore_subnormals(unsigned int saved) noexcept nogil


cdef extern from *:
    """
    /* Bytes of the widest vector of the instruction set compiled for: the size of the GCC
       vector types in which the kernels write loops the vectorizer handles badly. */
    #if defined(__AVX512F__)
      #define POLYAK_VBYTES 64
    #elif defined(__AVX__)
      #define POLYAK_VBYTES 32
    #else
      #define POLYAK_VBYTES 16
    #endif
    """


cdef enum:
    CHECK_EVERY = 128  # divergence is checked after every multiple of this step and the last

# The columns of a plan's coefficient table, one row per configuration (polyak.plans.COLUMNS):
# β, and a_t = (A_FIRST on a fresh run's first step, else A_FIXED) + A_SCALED·schedule[t],
# k_t = K_FIXED + K_SCALED·schedule[t], e_t = E_FIXED + E_SCALED·schedule[t].
cdef enum:
    BETA = 0
    A_FIXED = 1
    A_SCALED = 2
    A_FIRST = 3
    K_FIXED = 4
    K_SCALED = 5
    E_FIXED = 6
    E_SCALED = 7
    COLUMNS = 8


cdef struct Settings:
    # what a run's kernel needs besides arrays (the same for every configuration)
    Py_ssize_t configurations  # B
    Py_ssize_t steps           # T
    Py_ssize_t every           # record every this many steps (t = 0, every, ...)
    Py_ssize_t records         # T // every + 1 when recording, else 0
    Py_ssize_t n               # coordinates of a configuration
    Py_ssize_t schedule_stride # 1: schedule[t] per step; 0: one constant multiplier
    double bound               # |x_i| beyond this (or NaN) is divergence
    const int* stop            # nonzero: stop as soon as possible (the caller was interrupted)


cdef inline void step_coefficients(const floating* row, floating multiplier, bint first,
                                   floating* a, floating* k, floating* e) noexcept nogil:
    # a_t, k_t, e_t of the configuration whose coefficient row is `row`, for a step whose
    # learning-rate multiplier is `multiplier`; `first`: a fresh run's first step
    a[0] = (row[A_FIRST] if first else row[A_FIXED]) + row[A_SCALED] * multiplier
    k[0] = row[K_FIXED] + row[K_SCALED] * multiplier
    e[0] = row[E_FIXED] + row[E_SCALED] * multiplier


cdef inline void form_row(const double* forms, double lr, double beta, floating* row,
                          Py_ssize_t stride) noexcept nogil:
    # row[col * stride] = A + B·lr + C·β + D·(lr·β) with (A, B, C, D) = forms[4 col .. 4 col + 3]:
    # a configuration's row of the coefficient table from its convention's bilinear forms
    # (polyak.plans.coefficient_forms), in float64 and rounded once, as the plan's table is
    cdef Py_ssize_t col
    for col in range(COLUMNS):
        row[col * stride] = <floating>(forms[4 * col] + forms[4 * col + 1] * lr + forms[4 * col + 2] * beta
                                       + forms[4 * col + 3] * (lr * beta))


cdef inline void form_rows(const double* forms, const double* lr, const double* beta,
                           floating* table, Py_ssize_t lanes) noexcept nogil:
    # form_row for `lanes` configurations at once, column col of lane j at table[col * lanes + j]
    # (a loop over the lanes per column, which vectorizes)
    cdef Py_ssize_t col, j
    for col in range(COLUMNS):
        for j in range(lanes):
            table[col * lanes + j] = <floating>(forms[4 * col] + forms[4 * col + 1] * lr[j]
                                                + forms[4 * col + 2] * beta[j]
                                                + forms[4 * col + 3] * (lr[j] * beta[j]))


cdef inline bint lane_coefficients(const floating* table, Py_ssize_t column_stride,
                                   Py_ssize_t lane_stride, Py_ssize_t lanes, Py_ssize_t count,
                                   const bint* gone, floating multiplier, bint first,
                                   floating* fixed, floating* scaled) noexcept nogil:
    # for kernels that run configurations in vector lanes: fixed = the lanes' a, k and e at
    # `multiplier` (first: a fresh run's first step), three rows of `lanes`; scaled = their
    # parts proportional to the multiplier (A_SCALED, K_SCALED, E_SCALED); all zero for a lane
    # that is padding (j >= count) or stopped (gone[j]). Column col of lane j's coefficients
    # is table[col * column_stride + j * lane_stride]. Returns whether any lane has an e term.
    # (Each lane written once, in one branch: zeroing the rows first became a `rep stos`, and
    # reading back the rows just written, a stalled load, costing a tenth of a short sweep.)
    cdef Py_ssize_t j, col
    cdef floating row[COLUMNS]
    cdef bint with_e = False
    for j in range(lanes):
        if j < count and not gone[j]:
            for col in range(COLUMNS):
                row[col] = table[col * column_stride + j * lane_stride]
            step_coefficients(row, multiplier, first, &fixed[j], &fixed[lanes + j], &fixed[2 * lanes + j])
            scaled[j], scaled[lanes + j], scaled[2 * lanes + j] = row[A_SCALED], row[K_SCALED], row[E_SCALED]
            with_e = with_e | (fixed[2 * lanes + j] != 0) | (row[E_SCALED] != 0)
        else:
            fixed[j] = fixed[lanes + j] = fixed[2 * lanes + j] = 0
            scaled[j] = scaled[lanes + j] = scaled[2 * lanes + j] = 0
    return with_e


cdef inline bint within(const floating* x, Py_ssize_t n, floating bound) noexcept nogil:
    # all(abs(x) <= bound); False for NaN
    cdef Py_ssize_t i
    cdef int outside = 0
    for i in range(n):
        outside |= not ((x[i] <= bound) & (x[i] >= -bound))
    return outside == 0


cdef inline Settings settings(Py_ssize_t configurations, Py_ssize_t n, Py_ssize_t steps,
                              Py_ssize_t every, Py_ssize_t records,
                              Py_ssize_t schedule_length, double bound,
                              const int* stop) noexcept nogil:
    # a run's Settings from the kernels' keyword arguments and array shapes
    cdef Settings run
    run.configurations, run.n, run.steps, run.every, run.records = configurations, n, steps, every, records
    run.schedule_stride = 0 if schedule_length == 1 else 1
    run.bound = bound
    run.stop = stop
    return run


cdef inline bint stop_requested(const Settings* run) noexcept nogil:
    # whether the caller asked the kernel to stop (checked between pieces of work that take
    # well under a second: a check interval of a configuration, a step of a shared product)
    return POLYAK_LOAD_RELAXED(run.stop) != 0


cdef inline void save_state(floating* saved, const floating* x, const floating* u,
                            Py_ssize_t n) noexcept nogil:
    # saved[:n] = x; saved[n:2n] = u
    memcpy(saved, x, n * sizeof(floating))
    memcpy(saved + n, u, n * sizeof(floating))


cdef inline void restore_state(const floating* saved, floating* x, floating* u,
                               Py_ssize_t n) noexcept nogil:
    # x = saved[:n]; u = saved[n:2n]
    memcpy(x, saved, n * sizeof(floating))
    memcpy(u, saved + n, n * sizeof(floating))


cdef inline void start(floating[:, ::1] x, floating[:, ::1] u, const floating[:, ::1] x0,
                       const floating[:, ::1] u0, Py_ssize_t p) noexcept nogil:
    # x[p] = x0[p]; u[p] = u0[p] (a single row of x0 or u0 is shared; u0 of no rows: zero).
    # Called by the thread that runs configuration p, so that the pages of the fresh outputs
    # are first touched in parallel.
    cdef Py_ssize_t i, n = x.shape[1]
    cdef Py_ssize_t rx = 0 if x0.shape[0] == 1 else p, ru = 0 if u0.shape[0] <= 1 else p
    for i in range(n):
        x[p, i] = x0[rx, i]
        u[p, i] = u0[ru, i] if u0.shape[0] > 0 else 0
