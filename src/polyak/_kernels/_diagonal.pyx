"""Momentum-family updates on batches of diagonal quadratics f(x) = ½ Σᵢ λᵢxᵢ² + cᵀx + b.

Every rule and convention reduces (``polyak.rules.canonical_coefficients``) to one canonical
update, whose coefficients each configuration's row of the plan's table holds (``_common.pxd``;
the kernel builds the rows from each configuration's lr and β and the convention's bilinear
forms, a configuration or a chunk of lanes at a time, so that no (B, 8) table is made):

    g_t = λ ⊙ x_{t-1} + c
    u_t = β u_{t-1} + a_t g_t
    x_t = x_{t-1} − k_t u_t − e_t g_t

``polyak.reference.momentum`` with ``polyak.reference.quadratic_gradient`` is the NumPy twin of
``run_diagonal``.

Loop order: configurations in parallel, taken by the threads as they finish the last (one
thread owns a configuration, so sums within it run in a fixed order whatever the thread
count); within a configuration, a block of BLOCK
coordinates is held in registers until the next divergence check (at most CHECK_EVERY
steps), then the next block; the last, partial block is padded with zeros. BLOCK is sized
per instruction-set level. Recorded losses and iterates are written from the registers, each
block adding its share of f(x) to the loss in block order. Problems of at most SMALL_N
coordinates, where a block would be mostly padding, run RUN_LANES configurations together
instead, one per vector lane (_run_lanes: the same update, a lane's coordinates in registers,
in the scaled velocity below where the coefficients allow); a lane that leaves the bound is
run again alone, as above, to find where.

Divergence: x is checked after every CHECK_EVERY-th step and the last. When a check finds
some |xᵢ| beyond the bound (or NaN), the steps since the previous check are taken again from
the state before them, checked after every step, and the configuration stops at the last
step within the bound, with that state (see _run_configuration). The kernel checks a stop
flag between check intervals, which the caller raises on Ctrl-C.

The arithmetic is regrouped where that saves work or shortens the chain of dependent
multiply-adds, so the kernel agrees with its twin to rounding, not bit for bit. Where a check
interval has no e term and constant a and k (a constant learning rate: the common case), it
runs in the scaled velocity U = k·u (``_advance_scaled``): U = βU + (kaλ)x + kac, x −= U, two
multiply-adds and an add per coordinate-step instead of three multiply-adds.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport NAN, fabs
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from polyak._kernels._common cimport (BETA, CHECK_EVERY, COLUMNS, Settings, form_row, form_rows, lane_coefficients,
                                      restore_state, save_state, settings, start,
                                      step_coefficients, stop_requested, within)

cdef extern from *:
    """
    /* Coordinates of one configuration kept in registers across steps, per level: chosen by
       measurement (benchmarks/test_bench_diagonal.py, AMD Zen 4): 64 for AVX-512 (32 vector
       registers of 8 doubles: x and u in 16) and for AVX2 (16 registers of 4: part of the
       state lives in L1, where the loads and stores run beside the multiply-adds), 24 for
       SSE2 (16 registers of 2: x, u and the constants in registers). POLYAK_BLOCK may be set
       at build time to try others; it must be a multiple of POLYAK_LANES. */
    #ifndef POLYAK_BLOCK
    #if defined(__AVX512F__)
      #define POLYAK_BLOCK 64
    #elif defined(__AVX2__)
      #define POLYAK_BLOCK 64
    #else
      #define POLYAK_BLOCK 24
    #endif
    #endif
    #define POLYAK_LANES 8
    /* Problems of at most POLYAK_SMALL_N coordinates (where a block would be mostly zero
       padding) run POLYAK_RUN_LANES configurations together instead, one per vector lane
       (_run_lanes): 16 at AVX-512 and AVX2 (two or four vectors of a coordinate, enough
       independent chains to hide the multiply-add latency; at AVX2 8 lanes, which keep the
       state in registers, measured the same: their steps are latency-bound), 4 at SSE2.
       POLYAK_RUN_LANES may be set at build time to try others (a multiple of the vector's
       lanes). */
    #ifndef POLYAK_RUN_LANES
    #if defined(__AVX512F__) || defined(__AVX2__)
      #define POLYAK_RUN_LANES 16
    #else
      #define POLYAK_RUN_LANES 4
    #endif
    #endif
    #define POLYAK_SMALL_N 4
    """
    enum: BLOCK "POLYAK_BLOCK"
    enum: LANES "POLYAK_LANES"
    enum: RUN_LANES "POLYAK_RUN_LANES"
    enum: SMALL_N "POLYAK_SMALL_N"


cdef extern from *:
    """
    /* The scaled steps of configurations in lanes (_lane_steps_scaled), written with GCC's
       vector types (one vector: at most POLYAK_VBYTES bytes of lanes, _common.pxd) rather than
       as loops over lanes left to the vectorizer, which at x86-64-v3 split them into a mix of 256-bit,
       128-bit and scalar operations. polyak_lane_scaled_T_W: `steps` steps of
       v = p x + (b u + q), x -= v, u = v on W coordinates (rows of POLYAK_RUN_LANES lanes) of
       X and U, in place, the lanes in groups (POLYAK_LANE_GROUPS below). Other compilers:
       the same loop over lanes, one at a time.
       A step's chain (u -> b u + q -> p x + that -> u) is two multiply-adds long. Without
       AVX-512 (16 vector registers: the lanes' state fills them, and the steps are
       latency-bound) POLYAK_LANE_PAIRS takes two steps at a time with chains of that length:
       u'' = c1 u + (c2 x + c3), x'' = (x - u') - u'', u' as above, with c1 = b (b - p),
       c2 = p r, c3 = r q, r = (1 + b) - p (u'' = b u' + p x' + q expanded: every product
       stays small where the step is small, so it is as accurate as two steps). Measured on
       Zen 4 (10^6 configurations, alternating builds): 1.2x at x86-64-v3 and at the SSE2
       baseline; at AVX-512, where the steps are bound by the multiply-adds' throughput
       instead, 3-6 % slower. (Targets other than x86 take the pairs untested for speed.) */
    #ifndef POLYAK_LANE_PAIRS
      #if defined(__AVX512F__)
        #define POLYAK_LANE_PAIRS 0
      #else
        #define POLYAK_LANE_PAIRS 1
      #endif
    #endif
    /* POLYAK_LANE_GROUPS: the lanes in groups, each through all the steps before the next,
       so that a group's state fits the registers better (at most so many that a group keeps
       two vectors of a coordinate). Measured on Zen 4 (10^6 configurations, T = 1000,
       alternating builds): at x86-64-v3 2 groups of 8 doubles 0.745 of the ceiling against
       0.655 in one, 4 groups (one vector each, latency-bound) 0.39. */
    #ifndef POLYAK_LANE_GROUPS
      #if defined(__AVX2__) && !defined(__AVX512F__)
        #define POLYAK_LANE_GROUPS 2
      #else
        #define POLYAK_LANE_GROUPS 1
      #endif
    #endif
    #include <stddef.h>
    #include <string.h>
    #if defined(__GNUC__) || defined(__clang__)
      /* a vector holds at most the lanes there are (AVX without AVX2 runs 4 lanes: 4 floats
         in 16 bytes, not 8 in 32) */
      #define POLYAK_LANE_BYTES(T) (POLYAK_VBYTES < POLYAK_RUN_LANES * (int)sizeof(T) \
                                    ? POLYAK_VBYTES : POLYAK_RUN_LANES * (int)sizeof(T))
      typedef double polyak_lane_vdouble __attribute__((vector_size(POLYAK_LANE_BYTES(double))));
      typedef float polyak_lane_vfloat __attribute__((vector_size(POLYAK_LANE_BYTES(float))));
      #define POLYAK_LANE_WIDTH(T) (POLYAK_LANE_BYTES(T) / (int)sizeof(T))
      #define POLYAK_LANE_VECTOR(T) polyak_lane_v##T
      _Static_assert(POLYAK_RUN_LANES % POLYAK_LANE_WIDTH(float) == 0
                     && POLYAK_RUN_LANES % POLYAK_LANE_WIDTH(double) == 0,
                     "POLYAK_RUN_LANES must be a multiple of the lanes of a vector");
    #else
      #define POLYAK_LANE_WIDTH(T) 1
      #define POLYAK_LANE_VECTOR(T) T
    #endif
    #define POLYAK_LANE_SCALED(T, W)                                                             \
    static inline void polyak_lane_scaled_##T##_##W(T* X, T* U, const T* P, const T* Q,         \
                                                    const T* beta, ptrdiff_t steps) {           \
        enum { V = POLYAK_LANE_WIDTH(T), H = POLYAK_RUN_LANES / V / 2,                          \
               G = POLYAK_LANE_GROUPS < H ? POLYAK_LANE_GROUPS : H > 1 ? H : 1,                 \
               N = POLYAK_RUN_LANES / V / G };                                                  \
        POLYAK_LANE_VECTOR(T) x[W][N], u[W][N], p[W][N], q[W][N], b[N], v, v2, r;               \
        POLYAK_LANE_VECTOR(T) c1[W][N], c2[W][N], c3[W][N];                                     \
        int i, j, g, o;                                                                         \
        ptrdiff_t s;                                                                            \
        for (g = 0, o = 0; g < G; g++, o += N * V) {                                            \
        for (j = 0; j < N; j++) memcpy(&b[j], beta + o + j * V, sizeof b[j]);                   \
        for (i = 0; i < W; i++)                                                                 \
            for (j = 0; j < N; j++) {                                                           \
                memcpy(&x[i][j], X + i * POLYAK_RUN_LANES + o + j * V, sizeof x[i][j]);             \
                memcpy(&u[i][j], U + i * POLYAK_RUN_LANES + o + j * V, sizeof u[i][j]);             \
                memcpy(&p[i][j], P + i * POLYAK_RUN_LANES + o + j * V, sizeof p[i][j]);             \
                memcpy(&q[i][j], Q + i * POLYAK_RUN_LANES + o + j * V, sizeof q[i][j]);             \
            }                                                                                   \
        for (i = 0; i < W; i++)                                                                 \
            for (j = 0; j < N; j++) {                                                           \
                r = (1 + b[j]) - p[i][j];                                                       \
                c1[i][j] = b[j] * (b[j] - p[i][j]);                                             \
                c2[i][j] = p[i][j] * r;                                                         \
                c3[i][j] = r * q[i][j];                                                         \
            }                                                                                   \
        for (s = 0; POLYAK_LANE_PAIRS && s + 1 < steps; s += 2)                                 \
            for (i = 0; i < W; i++)                                                             \
                for (j = 0; j < N; j++) {                                                       \
                    v = p[i][j] * x[i][j] + (b[j] * u[i][j] + q[i][j]);                         \
                    v2 = c1[i][j] * u[i][j] + (c2[i][j] * x[i][j] + c3[i][j]);                  \
                    x[i][j] = (x[i][j] - v) - v2;                                               \
                    u[i][j] = v2;                                                               \
                }                                                                               \
        for (; s < steps; s++)                                                                  \
            for (i = 0; i < W; i++)                                                             \
                for (j = 0; j < N; j++) {                                                       \
                    v = p[i][j] * x[i][j] + (b[j] * u[i][j] + q[i][j]);                         \
                    x[i][j] = x[i][j] - v;                                                      \
                    u[i][j] = v;                                                                \
                }                                                                               \
        for (i = 0; i < W; i++)                                                                 \
            for (j = 0; j < N; j++) {                                                           \
                memcpy(X + i * POLYAK_RUN_LANES + o + j * V, &x[i][j], sizeof x[i][j]);             \
                memcpy(U + i * POLYAK_RUN_LANES + o + j * V, &u[i][j], sizeof u[i][j]);             \
            }                                                                                   \
        }                                                                                       \
    }
    POLYAK_LANE_SCALED(double, 2)
    POLYAK_LANE_SCALED(double, 4)
    POLYAK_LANE_SCALED(float, 2)
    POLYAK_LANE_SCALED(float, 4)
    """
    void polyak_lane_scaled_double_2(double* X, double* U, const double* P, const double* Q,
                                     const double* beta, Py_ssize_t steps) noexcept nogil
    void polyak_lane_scaled_double_4(double* X, double* U, const double* P, const double* Q,
                                     const double* beta, Py_ssize_t steps) noexcept nogil
    void polyak_lane_scaled_float_2(float* X, float* U, const float* P, const float* Q,
                                    const float* beta, Py_ssize_t steps) noexcept nogil
    void polyak_lane_scaled_float_4(float* X, float* U, const float* P, const float* Q,
                                    const float* beta, Py_ssize_t steps) noexcept nogil


cdef enum:
    # the state is saved for the search after a divergence every this many steps (a multiple
    # of CHECK_EVERY): at most this many steps are taken again
    SNAPSHOT_EVERY = 8 * CHECK_EVERY


cdef enum Form:
    # how the steps of one check interval are taken, from its coefficients
    SCALED         # e = 0, a_t = a and k_t = k constant (k not tiny or huge): _advance_scaled
    PLAIN_UNIT     # e = 0, a_t = 1
    PLAIN          # e = 0
    NESTEROV_UNIT  # e != 0 (nesterov), a_t = 1
    NESTEROV       # e != 0


cdef struct Recorder:
    # where the _advance functions record, counted in steps from the start of their call
    Py_ssize_t countdown  # steps until the next record (more than the call's steps: none)
    Py_ssize_t every      # steps between records
    Py_ssize_t m          # coordinates of the block that are real (the rest is padding)
    Py_ssize_t n          # coordinates of the configuration: the trajectory's row length
    Py_ssize_t* watch     # NULL, or where to write the first step (1-based, in this call)
                          # after which some |x_i| of the block is beyond `bound`
    double bound


cdef inline void _step_done(const floating* xs, const floating* lam, const floating* c,
                            floating** loss, floating** trajectory, Py_ssize_t* countdown,
                            const Recorder* record, Py_ssize_t s, bint watching) noexcept nogil:
    # after step s of the call: when a record is due, take it from the registers: loss[0] +=
    # this block's share of f(x), the trajectory's row = x; both pointers move on to the next
    # one. `watching` (a compile-time constant at each call site): note the first step after
    # which the block is beyond the bound (the search for where a divergence began)
    cdef Py_ssize_t j
    if watching and record.watch[0] < 0 and not within(xs, BLOCK, <floating>record.bound):
        record.watch[0] = s + 1
    countdown[0] -= 1
    if countdown[0] != 0:
        return
    countdown[0] = record.every
    if loss[0] != NULL:
        loss[0][0] += _partial_value(xs, lam, c)
        loss[0] += 1
    if trajectory[0] != NULL:
        for j in range(record.m):
            trajectory[0][j] = xs[j]
        trajectory[0] += record.n


cdef inline void _advance(floating* x, floating* u, const floating* lam, const floating* c,
                          floating beta, const floating* a, const floating* k,
                          const floating* e, Py_ssize_t steps, bint unit_a, bint with_e,
                          floating* loss, floating* trajectory, Recorder record,
                          bint watching) noexcept nogil:
    # for s in range(steps):  g = lam*x + c;  u = beta*u + a[s]*g;  x -= k[s]*u + e[s]*g
    # on BLOCK coordinates (c == NULL: no linear term). The state is copied into local arrays
    # that the compiler keeps in registers for all the steps; unit_a (a == 1) and with_e
    # (e != 0: nesterov) are constants at each call site, so each inlined copy is a
    # specialized loop of three multiply-adds per coordinate. Recording, from registers too:
    # after step record.countdown and every record.every steps after it (_step_done).
    cdef floating xs[BLOCK]
    cdef floating us[BLOCK]
    cdef floating g, v, k_old, e_new
    cdef Py_ssize_t j, s
    cdef Py_ssize_t countdown = record.countdown
    for j in range(BLOCK):
        xs[j] = x[j]
        us[j] = u[j]
    for s in range(steps):
        # with e: x - k*(beta*u + a*g) - e*g = x - (k*beta)*u_old - (k*a + e)*g, two
        # multiply-adds that need not wait for the new u (as accurate: forming beta*u + a*g
        # rounds at the size of beta*u too)
        k_old = k[s] * beta
        e_new = k[s] * (1 if unit_a else a[s]) + e[s]
        for j in range(BLOCK):
            g = lam[j] * xs[j] + c[j] if c != NULL else lam[j] * xs[j]
            if unit_a and not with_e:
                # = beta*u + g, grouped so that beta*u (+ c) is computed off the critical
                # path x -> v -> x: two multiply-adds of latency per step instead of three
                v = lam[j] * xs[j] + (beta * us[j] + c[j] if c != NULL else beta * us[j])
            elif unit_a:
                v = beta * us[j] + g
            else:
                v = beta * us[j] + a[s] * g
            if with_e:
                xs[j] = xs[j] - k_old * us[j] - e_new * g
            else:
                xs[j] = xs[j] - k[s] * v
            us[j] = v
        _step_done(xs, lam, c, &loss, &trajectory, &countdown, &record, s, watching)
    for j in range(BLOCK):
        x[j] = xs[j]
        u[j] = us[j]


cdef inline void _advance_scaled(floating* x, floating* u, const floating* lam,
                                 const floating* c, floating beta, floating a, floating k,
                                 Py_ssize_t steps, floating* loss, floating* trajectory,
                                 Recorder record, bint watching) noexcept nogil:
    # The steps of _advance when e = 0 and a_t = a, k_t = k are constant, taken in the scaled
    # velocity U = k·u:
    #     U = beta*U + (k*a*lam)*x + k*a*c;   x -= U
    # two multiply-adds and an add per coordinate instead of three multiply-adds (CPUs whose
    # adders are not their multiply-add units take the add on the side), and k leaves the
    # loop, which frees a register. u = U / k on the way out: the same iterates to rounding.
    cdef floating xs[BLOCK]
    cdef floating us[BLOCK]
    cdef floating p[BLOCK]
    cdef floating q[BLOCK]
    cdef floating v, ka = k * a
    cdef Py_ssize_t j, s
    cdef Py_ssize_t countdown = record.countdown
    for j in range(BLOCK):
        xs[j] = x[j]
        us[j] = k * u[j]
        p[j] = ka * lam[j]
        q[j] = ka * c[j] if c != NULL else 0
    for s in range(steps):
        for j in range(BLOCK):
            # beta*U (+ k*a*c) is computed off the critical path x -> U -> x
            v = p[j] * xs[j] + (beta * us[j] + q[j] if c != NULL else beta * us[j])
            xs[j] = xs[j] - v
            us[j] = v
        _step_done(xs, lam, c, &loss, &trajectory, &countdown, &record, s, watching)
    for j in range(BLOCK):
        x[j] = xs[j]
        u[j] = us[j] / k


cdef inline void _advance_form(floating* x, floating* u, const floating* lam,
                               const floating* c, floating beta, const floating* a,
                               const floating* k, const floating* e, Py_ssize_t steps,
                               Form form, floating* loss, floating* trajectory,
                               Recorder record, bint watching) noexcept nogil:
    # the _advance function of `form`, its flags compile-time constants at each call
    if form == SCALED:
        _advance_scaled(x, u, lam, c, beta, a[0], k[0], steps, loss, trajectory, record, watching)
    elif form == PLAIN_UNIT:
        _advance(x, u, lam, c, beta, a, k, e, steps, True, False, loss, trajectory, record, watching)
    elif form == PLAIN:
        _advance(x, u, lam, c, beta, a, k, e, steps, False, False, loss, trajectory, record, watching)
    elif form == NESTEROV_UNIT:
        _advance(x, u, lam, c, beta, a, k, e, steps, True, True, loss, trajectory, record, watching)
    else:
        _advance(x, u, lam, c, beta, a, k, e, steps, False, True, loss, trajectory, record, watching)


cdef inline void _advance_cases(floating* x, floating* u, const floating* lam,
                                const floating* c, floating beta, const floating* a,
                                const floating* k, const floating* e, Py_ssize_t steps,
                                Form form, floating* loss, floating* trajectory,
                                Recorder record) noexcept nogil:
    # _advance_form with "no recording" (the record code compiled out) and, then, "no linear
    # term" (c == NULL: registers freed) made compile-time constants too; recording runs keep
    # c (zeros where there is no linear term), to keep the number of copies down. Watching
    # for the bound (record.watch) goes with the recording copies: it happens once per
    # divergence.
    if loss != NULL or trajectory != NULL or record.watch != NULL:
        _advance_form(x, u, lam, c, beta, a, k, e, steps, form, loss, trajectory, record,
                      record.watch != NULL)
    elif c == NULL:
        _advance_form(x, u, lam, NULL, beta, a, k, e, steps, form, NULL, NULL, record, False)
    else:
        _advance_form(x, u, lam, c, beta, a, k, e, steps, form, NULL, NULL, record, False)


cdef inline void _advance_block(floating* x, floating* u, const floating* lam,
                                const floating* c, floating beta, const floating* a,
                                const floating* k, const floating* e, Py_ssize_t steps,
                                Form form, floating* loss, floating* trajectory,
                                Recorder record, bint general) noexcept nogil:
    # _advance_cases on record.m <= BLOCK coordinates (general, a constant at each call
    # site: only the recording copies of _advance_form, which also watch the bound: for the
    # search after a divergence, which then adds 5 copies of the loop to the kernel, not 15).
    # A partial block is padded with zeros (x = u = lam = c = 0 stays 0 and adds 0 to f) to
    # run the same register-resident loop.
    cdef floating xt[BLOCK]
    cdef floating ut[BLOCK]
    cdef floating lt[BLOCK]
    cdef floating ct[BLOCK]
    cdef Py_ssize_t j, m = record.m
    if m == BLOCK:
        if general:
            _advance_form(x, u, lam, c, beta, a, k, e, steps, form, loss, trajectory, record,
                          record.watch != NULL)
        else:
            _advance_cases(x, u, lam, c, beta, a, k, e, steps, form, loss, trajectory, record)
        return
    for j in range(BLOCK):
        xt[j] = x[j] if j < m else 0
        ut[j] = u[j] if j < m else 0
        lt[j] = lam[j] if j < m else 0
        ct[j] = (c[j] if c != NULL else 0) if j < m else 0
    if general:
        _advance_form(xt, ut, lt, ct if c != NULL else NULL, beta, a, k, e, steps, form, loss,
                      trajectory, record, record.watch != NULL)
    else:
        _advance_cases(xt, ut, lt, ct if c != NULL else NULL, beta, a, k, e, steps, form, loss,
                       trajectory, record)
    for j in range(m):
        x[j] = xt[j]
        u[j] = ut[j]


cdef inline Form _form(const floating* a, const floating* k, const floating* e,
                       Py_ssize_t steps) noexcept nogil:
    # the Form of an interval whose steps have the coefficients a, k, e. The scaled form
    # needs 1e-6 <= |k| <= 1e6: k·u then neither underflows nor overflows where u does not
    cdef Py_ssize_t s
    cdef bint unit_a = True, with_e = False, uniform = True
    for s in range(steps):
        unit_a = unit_a and a[s] == 1
        with_e = with_e or e[s] != 0
        uniform = uniform and a[s] == a[0] and k[s] == k[0]
    if with_e:
        return NESTEROV_UNIT if unit_a else NESTEROV
    if uniform and 1e-6 <= fabs(k[0]) <= 1e6:
        return SCALED
    return PLAIN_UNIT if unit_a else PLAIN


cdef inline floating _partial_value(const floating* x, const floating* lam,
                                    const floating* c) noexcept nogil:
    # sum(x * (0.5*lam*x + c)) over BLOCK coordinates, in LANES interleaved partial sums
    # added in a fixed order
    cdef floating acc[LANES]
    cdef floating total = 0
    cdef Py_ssize_t i, j, q
    for j in range(LANES):
        acc[j] = 0
    for q in range(BLOCK // LANES):
        i = q * LANES
        for j in range(LANES):
            acc[j] += x[i + j] * (<floating>0.5 * lam[i + j] * x[i + j] + c[i + j])
    for j in range(LANES):
        total += acc[j]
    return total


cdef inline floating _block_value(const floating* x, const floating* lam, const floating* c,
                                  Py_ssize_t m) noexcept nogil:
    # the share of f(x) - b of a block of m <= BLOCK coordinates, summed exactly as _advance
    # sums it (zero-padded to BLOCK), so that every record of the loss adds in the same order
    cdef floating xt[BLOCK]
    cdef floating lt[BLOCK]
    cdef floating ct[BLOCK]
    cdef Py_ssize_t j
    if m == BLOCK:
        return _partial_value(x, lam, c)
    for j in range(BLOCK):
        xt[j] = x[j] if j < m else 0
        lt[j] = lam[j] if j < m else 0
        ct[j] = c[j] if j < m else 0
    return _partial_value(xt, lt, ct)


cdef inline void _advance_blocks(floating* x, floating* u, const floating* lam,
                                 const floating* linear, floating beta, const floating* a,
                                 const floating* k, const floating* e, Py_ssize_t steps,
                                 Form form, floating* loss, floating* trajectory,
                                 Recorder record) noexcept nogil:
    # `steps` steps of one configuration's n = record.n coordinates, block after block
    cdef Py_ssize_t q, lo, n = record.n
    for q in range((n + BLOCK - 1) // BLOCK):
        lo = q * BLOCK
        record.m = min(BLOCK, n - lo)
        _advance_block(x + lo, u + lo, lam + lo, linear + lo if linear != NULL else NULL,
                       beta, a, k, e, steps, form, loss,
                       trajectory + lo if trajectory != NULL else NULL, record, False)


cdef Py_ssize_t _last_within(floating* x, floating* u, const floating* saved,
                             const floating* lam, const floating* linear, floating beta,
                             const floating* a, const floating* k, const floating* e,
                             Py_ssize_t steps, Form form, Py_ssize_t n,
                             double bound) noexcept nogil:
    # A check found x beyond the bound after the `steps` steps of an interval that started
    # from `saved` (x, u). Runs the interval again from there, block by block, watching the
    # bound after every step (phase 0), then once more up to the last step before the first
    # that went beyond it (phase 1), and leaves x, u there; returns that step's count within
    # the interval (0: the saved state). One call site for both phases keeps the code small;
    # these loops are the recording copies, which agree with the others to rounding.
    cdef Py_ssize_t q, lo, phase, found, first = steps
    cdef Recorder record
    record.every, record.n, record.countdown, record.bound = 1, n, steps + 1, bound
    for phase in range(2):
        restore_state(saved, x, u, n)
        record.watch = &found if phase == 0 else NULL
        for q in range((n + BLOCK - 1) // BLOCK):
            lo = q * BLOCK
            record.m = min(BLOCK, n - lo)
            found = -1
            if phase == 1 and first == 1:
                break
            _advance_block(x + lo, u + lo, lam + lo, linear + lo if linear != NULL else NULL,
                           beta, a, k, e, first - phase, form, NULL, NULL, record, True)
            if 0 < found < first:
                first = found  # the blocks after this one need only be run this far
    return first - 1


cdef inline Form _interval_coefficients(const floating* row, const floating* schedule,
                                       const Settings* run, Py_ssize_t t, Py_ssize_t t_end,
                                       floating* a, floating* k, floating* e) noexcept nogil:
    # a, k, e of steps t..t_end-1 (from a[0]) and the Form of that interval
    cdef Py_ssize_t s
    for s in range(t, t_end):
        step_coefficients(row, schedule[s * run.schedule_stride], s == 0, &a[s - t], &k[s - t],
                          &e[s - t])
    return _form(a, k, e, t_end - t)


cdef inline void _advance_interval(floating* x, floating* u, const floating* lam,
                                   const floating* linear, floating beta, const floating* a,
                                   const floating* k, const floating* e, Form form,
                                   Py_ssize_t t, Py_ssize_t t_end, const Settings* run,
                                   floating* loss, floating* trajectory) noexcept nogil:
    # steps t..t_end-1 of one configuration, recording where records fall (loss and
    # trajectory: its records, or NULL)
    cdef Py_ssize_t first = t // run.every + 1  # the next record
    cdef Recorder record
    record.every, record.n, record.watch = run.every, run.n, NULL
    record.countdown = (first * run.every - t if loss != NULL or trajectory != NULL
                        else run.steps + 1)
    _advance_blocks(x, u, lam, linear, beta, a, k, e, t_end - t, form,
                    loss + first if loss != NULL else NULL,
                    trajectory + first * run.n if trajectory != NULL else NULL, record)


cdef int64_t _run_configuration(const floating* lam, const floating* c, floating b,
                                const floating* row, const floating* schedule,
                                const Settings* run, floating* x, floating* u, floating* loss,
                                floating* trajectory, unsigned char* diverged,
                                floating* saved) noexcept nogil:
    # Runs one configuration in place; returns the steps taken and sets diverged[0] when it
    # stopped. `row`: its coefficients; loss and trajectory: its records, or NULL; saved:
    # workspace of 2n. A check that finds x beyond the bound finds the step where it first
    # was (_last_within): the configuration stops at the step before, with that x and u.
    # The state is saved every SNAPSHOT_EVERY steps only (a copy per check interval cost
    # 2-3 % of the run at x86-64-v3); after a divergence the run goes again from the last
    # save to the failing interval, exactly as it went (its records rewritten with the same
    # values), to start the search from that interval's first state.
    cdef Py_ssize_t n = run.n, every = run.every, steps = run.steps
    cdef Py_ssize_t t = 0, t_end, t_saved = 0, t_again, q, lo, r, i
    cdef Form form
    cdef bint recording = loss != NULL or trajectory != NULL
    cdef const floating* linear = c if recording or not within(c, n, 0) else NULL
    cdef floating beta = row[BETA]
    cdef floating a[CHECK_EVERY]
    cdef floating k[CHECK_EVERY]
    cdef floating e[CHECK_EVERY]
    diverged[0] = False

    if loss != NULL:
        for r in range(run.records):
            loss[r] = b  # the blocks add their shares, in block order
        for q in range((n + BLOCK - 1) // BLOCK):
            lo = q * BLOCK
            loss[0] += _block_value(x + lo, lam + lo, c + lo, min(BLOCK, n - lo))
    if trajectory != NULL:
        memcpy(trajectory, x, n * sizeof(floating))

    while t < steps and not stop_requested(run):
        t_end = min((t // CHECK_EVERY + 1) * CHECK_EVERY, steps)
        # this interval's coefficients; with one multiplier for every step, those of the
        # previous interval still hold (unless it held torch's first step): scalar work that
        # would otherwise take a tenth of the vector units' time
        if t <= CHECK_EVERY or run.schedule_stride != 0:
            form = _interval_coefficients(row, schedule, run, t, t_end, a, k, e)
        if t % SNAPSHOT_EVERY == 0:
            save_state(saved, x, u, n)
            t_saved = t
        _advance_interval(x, u, lam, linear, beta, a, k, e, form, t, t_end, run, loss,
                          trajectory)
        if not within(x, n, <floating>run.bound):
            diverged[0] = True
            if t_saved < t:
                restore_state(saved, x, u, n)
                if loss != NULL:
                    for r in range(t_saved // every + 1, t // every + 1):
                        loss[r] = b  # taken again below, the same sums in the same order
                t_again = t_saved
                while t_again < t:
                    form = _interval_coefficients(row, schedule, run, t_again,
                                                  t_again + CHECK_EVERY, a, k, e)
                    _advance_interval(x, u, lam, linear, beta, a, k, e, form, t_again,
                                      t_again + CHECK_EVERY, run, loss, trajectory)
                    t_again += CHECK_EVERY
                form = _interval_coefficients(row, schedule, run, t, t_end, a, k, e)
                save_state(saved, x, u, n)
            t += _last_within(x, u, saved, lam, linear, beta, a, k, e, t_end - t, form, n,
                              run.bound)
            break
        t = t_end

    # records after the stop did not happen: NaN marks them
    for r in range(t // every + 1, run.records):
        if loss != NULL:
            loss[r] = NAN
        if trajectory != NULL:
            for i in range(n):
                trajectory[r * n + i] = NAN
    return t


# ---- small problems: configurations in vector lanes ----------------------------------------

cdef inline void _lane_steps(floating* X, floating* U, const floating* LAM, const floating* C,
                             const floating* beta, const floating* fixed,
                             const floating* scaled, const floating* multipliers,
                             Py_ssize_t steps, bint unit_a, bint with_e, bint varying,
                             Py_ssize_t width) noexcept nogil:
    # `steps` steps of the canonical update of RUN_LANES configurations, coordinate i of lane
    # j at [i * RUN_LANES + j] (X, U: the state; LAM, C: each lane's problem; g = λx + c is
    # one multiply-add whether c is zero or not), `width` coordinates, all in registers.
    # Coefficients: fixed[0..2] = the lanes' a, k, e, or, `varying`, a_t = fixed[0] +
    # scaled[0]·multipliers[s] and likewise k_t, e_t. unit_a: every a is 1 (d2l, torch
    # without dampening: three multiply-adds a coordinate-step). The flags and width are
    # constants at each call.
    cdef floating Xb[SMALL_N * RUN_LANES]
    cdef floating Ub[SMALL_N * RUN_LANES]
    cdef floating a[RUN_LANES]
    cdef floating k[RUN_LANES]
    cdef floating e[RUN_LANES]
    cdef floating g, v
    cdef Py_ssize_t i, j, s
    for j in range(width * RUN_LANES):
        Xb[j], Ub[j] = X[j], U[j]
    for j in range(RUN_LANES):
        a[j], k[j], e[j] = fixed[j], fixed[RUN_LANES + j], fixed[2 * RUN_LANES + j]
    for s in range(steps):
        if varying:
            for j in range(RUN_LANES):
                a[j] = fixed[j] + scaled[j] * multipliers[s]
                k[j] = fixed[RUN_LANES + j] + scaled[RUN_LANES + j] * multipliers[s]
                e[j] = fixed[2 * RUN_LANES + j] + scaled[2 * RUN_LANES + j] * multipliers[s]
        for i in range(width):
            for j in range(RUN_LANES):
                g = LAM[i * RUN_LANES + j] * Xb[i * RUN_LANES + j] + C[i * RUN_LANES + j]
                if unit_a:
                    v = beta[j] * Ub[i * RUN_LANES + j] + g
                else:
                    v = beta[j] * Ub[i * RUN_LANES + j] + a[j] * g
                if with_e:
                    Xb[i * RUN_LANES + j] = Xb[i * RUN_LANES + j] - k[j] * v - e[j] * g
                else:
                    Xb[i * RUN_LANES + j] = Xb[i * RUN_LANES + j] - k[j] * v
                Ub[i * RUN_LANES + j] = v
    for j in range(width * RUN_LANES):
        X[j], U[j] = Xb[j], Ub[j]


cdef inline void _lane_steps_scaled(floating* X, floating* U, const floating* LAM,
                                    const floating* C, const floating* beta,
                                    const floating* fixed, Py_ssize_t steps,
                                    Py_ssize_t width) noexcept nogil:
    # The steps of _lane_steps with constant coefficients and no e term, in each lane's scaled
    # velocity U' = k·u, the form of _advance_scaled: U' = βU' + (kaλ)x + kac, x −= U'
    # (polyak_lane_scaled: two multiply-adds and an add per coordinate-step instead of three
    # multiply-adds). u = U'/k on the way out (a lane with k = 0 is padding or stopped: all
    # zero, divided by 1).
    cdef floating Ub[SMALL_N * RUN_LANES]
    cdef floating P[SMALL_N * RUN_LANES]
    cdef floating Q[SMALL_N * RUN_LANES]
    cdef floating ka[RUN_LANES]
    cdef floating divisor[RUN_LANES]
    cdef Py_ssize_t i, j
    for j in range(RUN_LANES):
        ka[j] = fixed[RUN_LANES + j] * fixed[j]
        divisor[j] = fixed[RUN_LANES + j] if fixed[RUN_LANES + j] != 0 else 1
    for i in range(width):
        for j in range(RUN_LANES):
            Ub[i * RUN_LANES + j] = fixed[RUN_LANES + j] * U[i * RUN_LANES + j]
            P[i * RUN_LANES + j] = ka[j] * LAM[i * RUN_LANES + j]
            Q[i * RUN_LANES + j] = ka[j] * C[i * RUN_LANES + j]
    if floating is double:
        if width == 2:
            polyak_lane_scaled_double_2(X, Ub, P, Q, beta, steps)
        else:
            polyak_lane_scaled_double_4(X, Ub, P, Q, beta, steps)
    else:
        if width == 2:
            polyak_lane_scaled_float_2(X, Ub, P, Q, beta, steps)
        else:
            polyak_lane_scaled_float_4(X, Ub, P, Q, beta, steps)
    for i in range(width):
        for j in range(RUN_LANES):
            U[i * RUN_LANES + j] = Ub[i * RUN_LANES + j] / divisor[j]


cdef inline void _lane_flags(floating* X, floating* U, const floating* LAM, const floating* C,
                             const floating* beta, const floating* fixed,
                             const floating* scaled, const floating* multipliers,
                             Py_ssize_t steps, bint unit_a, bint with_e, bint varying,
                             bint scaled_form, Py_ssize_t width) noexcept nogil:
    # _lane_steps with its flags made constants (a varying schedule: one general loop);
    # scaled_form (constant coefficients, no e term, every lane's k fit for it):
    # _lane_steps_scaled
    if scaled_form:
        _lane_steps_scaled(X, U, LAM, C, beta, fixed, steps, width)
    elif varying:
        _lane_steps(X, U, LAM, C, beta, fixed, scaled, multipliers, steps, False, True, True, width)
    elif unit_a:
        if with_e:
            _lane_steps(X, U, LAM, C, beta, fixed, scaled, multipliers, steps, True, True, False, width)
        else:
            _lane_steps(X, U, LAM, C, beta, fixed, scaled, multipliers, steps, True, False, False, width)
    elif with_e:
        _lane_steps(X, U, LAM, C, beta, fixed, scaled, multipliers, steps, False, True, False, width)
    else:
        _lane_steps(X, U, LAM, C, beta, fixed, scaled, multipliers, steps, False, False, False, width)


cdef inline void _lane_cases(floating* X, floating* U, const floating* LAM, const floating* C,
                             const floating* beta, const floating* fixed,
                             const floating* scaled, const floating* multipliers,
                             Py_ssize_t steps, bint unit_a, bint with_e, bint varying,
                             bint scaled_form, Py_ssize_t width) noexcept nogil:
    # _lane_flags with the width made a constant: 2 or SMALL_N
    if width == 2:
        _lane_flags(X, U, LAM, C, beta, fixed, scaled, multipliers, steps, unit_a, with_e, varying,
                    scaled_form, 2)
    else:
        _lane_flags(X, U, LAM, C, beta, fixed, scaled, multipliers, steps, unit_a, with_e, varying,
                    scaled_form, SMALL_N)


cdef inline void _lane_record(const floating* X, const floating* LAM, const floating* C,
                              const floating* b, Py_ssize_t p0, Py_ssize_t count, Py_ssize_t n,
                              Py_ssize_t r, const Settings* run, floating* loss,
                              floating* trajectory) noexcept nogil:
    # record r of the lanes: f(x) = b + Σᵢ xᵢ (½ λᵢ xᵢ + cᵢ), and x
    cdef Py_ssize_t i, j
    cdef floating value
    for j in range(count):
        if loss != NULL:
            value = b[j]
            for i in range(n):
                value += X[i * RUN_LANES + j] * (<floating>0.5 * LAM[i * RUN_LANES + j] * X[i * RUN_LANES + j]
                                                 + C[i * RUN_LANES + j])
            loss[(p0 + j) * run.records + r] = value
        if trajectory != NULL:
            for i in range(n):
                trajectory[((p0 + j) * run.records + r) * n + i] = X[i * RUN_LANES + j]


cdef void _run_lanes(const floating* lam, const floating* c, const floating* b,
                     const int64_t* problem_index, const double* lr, const double* beta_of,
                     Py_ssize_t lr_stride, Py_ssize_t beta_stride, const double* forms,
                     const floating* schedule, const Settings* run, const floating* x0,
                     Py_ssize_t x0_stride, const floating* u0, Py_ssize_t u0_stride,
                     floating* x, floating* u,
                     floating* loss, floating* trajectory, Py_ssize_t p0, Py_ssize_t count,
                     floating* work, bint* gone) noexcept nogil:
    # configurations p0 .. p0 + count − 1 (count <= RUN_LANES) of n <= SMALL_N coordinates,
    # from x0 and u0 (row p at p·stride: a stride of 0 shares one row; u0 NULL: zero), one
    # per lane, x and u written at the end: the canonical update a check
    # interval at a time (records between), the magnitude test at each check. A lane found
    # beyond the bound stops (zeroed) and is marked in `gone`: the caller runs it again alone
    # (_run_configuration), which finds where it left the bound. `work`: 4 · SMALL_N ·
    # RUN_LANES numbers.
    cdef Py_ssize_t n = run.n, width = 2 if run.n <= 2 else SMALL_N
    cdef Py_ssize_t i, j, q, t = 0, t_end, s, s_end
    cdef floating* X = work
    cdef floating* U = X + SMALL_N * RUN_LANES
    cdef floating* LAM = U + SMALL_N * RUN_LANES
    cdef floating* C = LAM + SMALL_N * RUN_LANES
    cdef floating beta[RUN_LANES]
    cdef floating table[COLUMNS * RUN_LANES]  # the lanes' rows: column col of lane j at [col * RUN_LANES + j]
    cdef floating bs[RUN_LANES]
    cdef floating fixed[3 * RUN_LANES]
    cdef floating scaled[3 * RUN_LANES]
    cdef bint unit_a = False, with_e = False, scalable = False, all_gone
    cdef bint varying = run.schedule_stride != 0
    cdef bint recording = loss != NULL or trajectory != NULL
    cdef floating outside[RUN_LANES]
    cdef double lrs[RUN_LANES]
    cdef double betas[RUN_LANES]
    cdef Py_ssize_t rows[RUN_LANES]
    cdef Py_ssize_t problems[RUN_LANES]
    # (lanes past `count` are padding: they read the last configuration's inputs, are zero,
    # and are never written back)
    for j in range(RUN_LANES):
        rows[j] = p0 + min(j, count - 1)
        problems[j] = problem_index[rows[j]]
        gone[j] = j >= count
        lrs[j], betas[j] = lr[rows[j] * lr_stride], beta_of[rows[j] * beta_stride]
        bs[j] = b[problems[j]]
    form_rows(forms, lrs, betas, table, RUN_LANES)
    for j in range(RUN_LANES):
        beta[j] = table[BETA * RUN_LANES + j] if j < count else 0
    for i in range(width):
        for j in range(RUN_LANES):
            X[i * RUN_LANES + j] = x0[rows[j] * x0_stride + i] if j < count and i < n else 0
            U[i * RUN_LANES + j] = u0[rows[j] * u0_stride + i] if u0 != NULL and j < count and i < n else 0
            LAM[i * RUN_LANES + j] = lam[problems[j] * n + i] if j < count and i < n else 0
            C[i * RUN_LANES + j] = c[problems[j] * n + i] if j < count and i < n else 0
    if recording:
        _lane_record(X, LAM, C, bs, p0, count, n, 0, run, loss, trajectory)
    while t < run.steps and not stop_requested(run):
        # the first step alone (torch's differs), then check intervals
        t_end = 1 if t == 0 else min((t // CHECK_EVERY + 1) * CHECK_EVERY, run.steps)
        if t <= 1 or varying:
            # (varying, after the first step: the parts at multiplier 0, to which _lane_steps
            # adds the scaled parts times each step's multiplier)
            with_e = lane_coefficients(table, RUN_LANES, 1, RUN_LANES, count, gone,
                                       0 if varying and t > 0 else schedule[t * run.schedule_stride], t == 0,
                                       fixed, scaled)
            unit_a = True
            scalable = not with_e and not varying
            for j in range(RUN_LANES):
                unit_a = unit_a and (fixed[j] == 1 or (j >= count or gone[j]))
                # the scaled velocity k·u neither underflows nor overflows where u does not (and
                # is taken for runs of 4 steps or more between records: it costs a conversion
                # and a rounding of u each way)
                scalable = scalable and ((1e-6 <= fabs(fixed[RUN_LANES + j]) <= 1e6) or (j >= count or gone[j]))
        s = t
        while s < t_end:
            s_end = min(t_end, (s // run.every + 1) * run.every) if recording else t_end
            _lane_cases(X, U, LAM, C, beta, fixed, scaled, schedule + s if varying else schedule,
                        s_end - s, unit_a, with_e, varying and t > 0,
                        scalable and t > 0 and s_end - s >= 4, width)
            s = s_end
            if recording and s % run.every == 0:
                _lane_record(X, LAM, C, bs, p0, count, n, s // run.every, run, loss, trajectory)
        t = t_end
        if t % CHECK_EVERY == 0 or t == run.steps:
            # (the magnitude test without branches, all lanes at once: padding and stopped
            # lanes are zero and pass it)
            for j in range(RUN_LANES):
                outside[j] = 0
            for i in range(width):
                for j in range(RUN_LANES):
                    outside[j] += not ((X[i * RUN_LANES + j] <= run.bound) & (X[i * RUN_LANES + j] >= -run.bound))
            all_gone = True
            for j in range(count):
                if not gone[j] and outside[j] != 0:
                    gone[j] = True  # run again alone, later: zero, and out of the way
                    beta[j] = 0
                    for i in range(3):
                        fixed[i * RUN_LANES + j] = scaled[i * RUN_LANES + j] = 0
                    for i in range(width):
                        X[i * RUN_LANES + j] = U[i * RUN_LANES + j] = 0
                all_gone = all_gone and gone[j]
            if all_gone:
                break
    for j in range(count):
        if not gone[j]:
            for i in range(n):
                x[(p0 + j) * n + i] = X[i * RUN_LANES + j]
                u[(p0 + j) * n + i] = U[i * RUN_LANES + j]


def block_width():
    """Coordinates this level's kernel keeps in registers at once."""
    return BLOCK


def check_every():
    """Divergence is checked after each step that is a multiple of this, and after the last."""
    return CHECK_EVERY


def run_diagonal(*, const floating[:, ::1] lam, const floating[:, ::1] c, const floating[::1] b,
                 const int64_t[::1] problem_index, const double[::1] lr, const double[::1] beta,
                 const double[:, ::1] forms,
                 const floating[::1] schedule, const floating[:, ::1] x0,
                 const floating[:, ::1] u0, floating[:, ::1] x, floating[:, ::1] u,
                 floating[:, ::1] loss, floating[:, :, ::1] trajectory,
                 int64_t[::1] steps_taken, unsigned char[::1] diverged, Py_ssize_t steps,
                 Py_ssize_t every, double bound, int n_threads, const int[::1] stop):
    """Runs the canonical update for B configurations (see the module docstring).

    NumPy equivalent: ``polyak.reference.momentum`` (quadratic_gradient). Configuration p runs problem
    q = problem_index[p] (lam[q], c[q], b[q]: (P, n), (P, n), (P,)) with the row of
    coefficients (see _common.pxd) that the bilinear forms `forms` (COLUMNS, 4) give at lr[p]
    and beta[p] (B entries, or one for all) and the per-step multipliers `schedule`
    (T of them, or one for all steps), from x0[p] and u0[p] (one row: shared; u0 of no rows:
    zero). Outputs, all written: x and u (B, n), the final state; loss (B, T // every + 1) and
    trajectory (B, T // every + 1, n), or (B, 0) and (B, 0, n) to skip them; steps_taken,
    diverged (B,). A diverged configuration stops at the last step before the first one, in
    the check interval whose check found it, that took some |xᵢ| beyond `bound` (or NaN):
    steps_taken is that step, x and u its state. stop[0] set nonzero by another thread
    makes the kernel return early (outputs incomplete). Arguments are keyword-only and
    validated by the caller (polyak.execute).
    """
    cdef Py_ssize_t p, q, j, chunk, count
    cdef Py_ssize_t lr_stride = 0 if lr.shape[0] == 1 else 1, beta_stride = 0 if beta.shape[0] == 1 else 1
    cdef floating* row
    cdef Settings run = settings(x.shape[0], x.shape[1], steps, every,
                                 max(loss.shape[1], trajectory.shape[1]), schedule.shape[0], bound,
                                 &stop[0])
    cdef bint lanes = run.n <= SMALL_N
    cdef Py_ssize_t size = 2 * run.n + COLUMNS + (4 * SMALL_N * RUN_LANES if lanes else 0)
    cdef Py_ssize_t chunks = (run.configurations + RUN_LANES - 1) // RUN_LANES
    # the threads take GRAB configurations (or chunks of lanes) at a time, as they finish the
    # last (a core that another process slows down takes fewer): about 10⁵ coordinate-steps
    cdef Py_ssize_t grab = max(1, 100_000 // (min(max(run.steps, 1), 100_000)
                                              * (RUN_LANES * SMALL_N if lanes else run.n)))
    cdef floating* saved
    cdef bint* gone
    cdef int no_memory = 0
    cdef int* no_memory_flag = &no_memory
    with nogil, parallel(num_threads=n_threads):
        saved = <floating*>malloc(size * sizeof(floating))
        gone = <bint*>malloc(RUN_LANES * sizeof(bint))
        row = saved + 2 * run.n  # a configuration's coefficients, after its 2n of saved state
        if lanes:
            for chunk in prange(chunks, schedule="dynamic", chunksize=grab):
                if saved == NULL or gone == NULL:
                    no_memory_flag[0] = 1
                    continue
                p = chunk * RUN_LANES
                count = min(RUN_LANES, run.configurations - p)
                for j in range(count):
                    diverged[p + j] = False
                _run_lanes(&lam[0, 0], &c[0, 0], &b[0], &problem_index[0], &lr[0], &beta[0], lr_stride,
                           beta_stride, &forms[0, 0], &schedule[0], &run, &x0[0, 0], 0 if x0.shape[0] == 1 else run.n,
                           &u0[0, 0] if u0.shape[0] > 0 else NULL, 0 if u0.shape[0] == 1 else run.n,
                           &x[0, 0], &u[0, 0], &loss[0, 0] if loss.shape[1] > 0 else NULL,
                           &trajectory[0, 0, 0] if trajectory.shape[1] > 0 else NULL, p, count,
                           saved + 2 * run.n + COLUMNS, gone)
                for j in range(count):
                    if gone[j]:  # left the bound: alone again, to find where
                        start(x, u, x0, u0, p + j)
                        q = problem_index[p + j]
                        form_row(&forms[0, 0], lr[(p + j) * lr_stride], beta[(p + j) * beta_stride], row, 1)
                        steps_taken[p + j] = _run_configuration(
                            &lam[q, 0], &c[q, 0], b[q], row, &schedule[0], &run,
                            &x[p + j, 0], &u[p + j, 0], &loss[p + j, 0] if loss.shape[1] > 0 else NULL,
                            &trajectory[p + j, 0, 0] if trajectory.shape[1] > 0 else NULL, &diverged[p + j],
                            saved)
                    else:
                        steps_taken[p + j] = run.steps
        else:
            for p in prange(run.configurations, schedule="dynamic", chunksize=grab):
                if saved == NULL:
                    no_memory_flag[0] = 1
                    continue
                q = problem_index[p]
                start(x, u, x0, u0, p)
                form_row(&forms[0, 0], lr[p * lr_stride], beta[p * beta_stride], row, 1)
                steps_taken[p] = _run_configuration(
                    &lam[q, 0], &c[q, 0], b[q], row, &schedule[0], &run,
                    &x[p, 0], &u[p, 0], &loss[p, 0] if loss.shape[1] > 0 else NULL,
                    &trajectory[p, 0, 0] if trajectory.shape[1] > 0 else NULL, &diverged[p], saved)
        free(saved)
        free(gone)
    if no_memory:
        raise MemoryError(f"no memory for the kernel's workspace ({size} numbers per thread)")
