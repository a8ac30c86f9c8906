"""Sweeps: many configurations of the canonical update on one spectrum, configurations in lanes.

In the eigenbasis of Q, on the scaled error w = √λ ⊙ (x − x*) of each eigen-coordinate (so
that f(x) − f* = ½ Σᵢ wᵢ²), the canonical update of ``_diagonal.pyx`` reads the same as on the
error itself:

    g = λ w,   u ← β u + a_t g,   w ← w − k_t u − e_t g.

With constant coefficients (a constant learning rate) two consecutive steps are one 2 × 2
linear map M on (u, w) of each coordinate, and by Cayley–Hamilton every coordinate follows
the two-term recurrence

    w_{t+1} = τ w_t − δ w_{t−1},   τ = trace M = 1 + β − k a λ − e λ,   δ = det M = β (1 − e λ),

two multiply-adds a step instead of four, without the velocity. The kernel takes the first two
steps with the update (the first step of a fresh run may have its own coefficients) and the
rest with the recurrence; with a varying schedule, every step with the update.

A chunk of LANES configurations of the same problem runs together: coordinate i of all of
them is one short vector (λᵢ is shared, the coefficients differ per lane), so the vector units
are full whatever n. A check interval at a time, each block of COORDS coordinates of the
chunk (its lanes in groups, one after the other) runs all the interval's steps in registers
and adds its share of each step's loss to a buffer of the interval's losses, from which the
tolerance and the records are read. Per
configuration, the kernel computes the metrics and keeps no step: the final loss ½ Σ wᵢ² (from
the error, not as a difference of two values of f), the first step t (0..T) with
f(x_t) − f* <= tol, the magnitude test of divergence |eᵢ| = |wᵢ| / √λᵢ <= bound after every
CHECK_EVERY-th step and the last (a diverged lane is zeroed and stops counting), and
optionally the loss every `every` steps. Lanes are independent and each runs the same
arithmetic wherever it sits, so results do not depend on the thread count or on how the
configurations are cut into calls. ``polyak.reference.sweep`` is its NumPy twin. The kernel
runs with flush-to-zero (results and inputs below the smallest normal number count as 0):
an error, or a loss, below about 2.2e-308 is 0 here where the twin keeps a subnormal.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.float cimport DBL_MAX
from libc.math cimport INFINITY, NAN, fabs, sqrt
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

from polyak._kernels._common cimport (A_FIXED, A_SCALED, BETA, CHECK_EVERY, COLUMNS, E_FIXED,
                                      E_SCALED, K_FIXED, K_SCALED, Settings, lane_coefficients,
                                      polyak_flush_subnormals, polyak_restore_subnormals,
                                      settings, stop_requested)

cdef extern from *:
    """
    /* LANES configurations advance together, a block of COORDS of their coordinates at a
       time in registers (NARROW where n <= 2: a wider block would be padding), and a block's
       lanes in GROUPS (WIDE_GROUPS for blocks of COORDS) groups, one after the other through
       all the interval's steps: enough independent recurrences (coordinates × lanes of a
       group / vector width) to hide the multiply-add latency without spilling, and the loss
       of as many coordinates as possible summed in registers (each further block reads and
       writes the interval's losses). Chosen by measurement (Zen 4, alternating builds,
       2 threads, fraction of the ceiling of the 1000 × 1000 benchmark's kernel):
       AVX-512 (32 registers of 8 doubles): 16 lanes, 4 coordinates in 2 groups of 8 lanes
       (n = 64: 0.95 against 0.93 in one group), n <= 2 by blocks of 2 in one group (0.72
       against 0.64 in two); AVX2 (16 registers of 4): 16 lanes, 2 coordinates in 2 groups
       of 8 lanes, where the whole block in registers spilled (n = 64: 0.93 against 0.70 for
       1 coordinate of 16 lanes, 0.87 for 4 coordinates in 4 groups; n = 2: 0.73 against
       0.60); SSE2 (16 of 2): 4 lanes × 2 coordinates; AVX without AVX2 (a native build,
       untested for speed): 8 lanes × 2 coordinates, so that a vector of floats has its 8
       lanes. A group keeps at least one whole vector of a coordinate (float32 at AVX-512: one
       group of 16). */
    #ifndef POLYAK_SWEEP_LANES
    #if defined(__AVX512F__)
      #define POLYAK_SWEEP_LANES 16
      #define POLYAK_SWEEP_COORDS 4
      #define POLYAK_SWEEP_WIDE_GROUPS 2
      #define POLYAK_SWEEP_NARROW 2
    #elif defined(__AVX2__)
      #define POLYAK_SWEEP_LANES 16
      #define POLYAK_SWEEP_COORDS 2
      #define POLYAK_SWEEP_WIDE_GROUPS 2
      #define POLYAK_SWEEP_NARROW 2
      #define POLYAK_SWEEP_GROUPS 2
    #elif defined(__AVX__)
      #define POLYAK_SWEEP_LANES 8
      #define POLYAK_SWEEP_COORDS 2
      #define POLYAK_SWEEP_NARROW 2
    #else
      #define POLYAK_SWEEP_LANES 4
      #define POLYAK_SWEEP_COORDS 2
      #define POLYAK_SWEEP_NARROW 2
    #endif
    #endif
    #ifndef POLYAK_SWEEP_GROUPS
      #define POLYAK_SWEEP_GROUPS 1
    #endif
    #ifndef POLYAK_SWEEP_WIDE_GROUPS
      #define POLYAK_SWEEP_WIDE_GROUPS 1
    #endif
    #define POLYAK_SWEEP_WIDEST (POLYAK_SWEEP_COORDS > POLYAK_SWEEP_NARROW ? POLYAK_SWEEP_COORDS : POLYAK_SWEEP_NARROW)
    """
    enum: LANES "POLYAK_SWEEP_LANES"
    enum: COORDS "POLYAK_SWEEP_COORDS"
    enum: NARROW "POLYAK_SWEEP_NARROW"
    enum: WIDEST "POLYAK_SWEEP_WIDEST"

cdef extern from *:
    """
    /* lowest[j] = min(lowest[j], x[j]) over the LANES lanes, a NaN x leaving lowest as it
       is (MINPD's rule). GCC vectorizes a conditional minimum of floats only in loops it has
       not unrolled, and the lanes' loops are unrolled to keep the lanes in registers: so
       this one is the instruction itself. AVX-512 uses its full width, AVX2 the 128-bit
       form: with the 256-bit one, GCC 12 miscompiled the nesterov recurrence around it at
       x86-64-v3 (wrong iterates; tests/test_sweep.py's random comparison with the twin). */
    #include <immintrin.h>
    /* one function per type: T, its intrinsics' suffix S (pd, ps), its lanes per 512 and
       per 128 bits */
    #if defined(__AVX512F__)
    #define POLYAK_LOWEST_WIDE(T, S, W512, W128)                                            \
        for (; j + W512 <= POLYAK_SWEEP_LANES; j += W512)                                  \
            _mm512_storeu_##S(lowest + j, _mm512_min_##S(_mm512_loadu_##S(x + j), _mm512_loadu_##S(lowest + j)));
    #elif defined(__SSE2__)
    #define POLYAK_LOWEST_WIDE(T, S, W512, W128)                                            \
        for (; j + W128 <= POLYAK_SWEEP_LANES; j += W128)                                  \
            _mm_storeu_##S(lowest + j, _mm_min_##S(_mm_loadu_##S(x + j), _mm_loadu_##S(lowest + j)));
    #else
    #define POLYAK_LOWEST_WIDE(T, S, W512, W128)
    #endif
    #define POLYAK_LOWEST(T, S, W512, W128)                                                 \
    static inline void polyak_lowest_##T(T* lowest, const T* x) {                          \
        int j = 0;                                                                          \
        POLYAK_LOWEST_WIDE(T, S, W512, W128)                                                \
        for (; j < POLYAK_SWEEP_LANES; j++) lowest[j] = x[j] < lowest[j] ? x[j] : lowest[j]; \
    }
    POLYAK_LOWEST(double, pd, 8, 2)
    POLYAK_LOWEST(float, ps, 16, 4)
    """
    void polyak_lowest_double(double* lowest, const double* x) noexcept nogil
    void polyak_lowest_float(float* lowest, const float* x) noexcept nogil

cdef extern from *:
    """
    /* bit j set where x[j] <= threshold[j], over the LANES lanes (at most 32): one vector
       comparison per register of lanes, where a lane-by-lane scan of the check interval's
       losses cost a tenth of the sweep at n = 2 */
    #if defined(__AVX512F__)
    #define POLYAK_HITS_WIDE(T, S, W512, W256, W128)                                          \
        for (; j + W512 <= POLYAK_SWEEP_LANES; j += W512)                                  \
            bits |= (unsigned int)_mm512_cmp_##S##_mask(_mm512_loadu_##S(x + j), _mm512_loadu_##S(threshold + j), _CMP_LE_OQ) << j;
    #elif defined(__AVX__)
    #define POLYAK_HITS_WIDE(T, S, W512, W256, W128)                                          \
        for (; j + W256 <= POLYAK_SWEEP_LANES; j += W256)                                  \
            bits |= (unsigned int)_mm256_movemask_##S(_mm256_cmp_##S(_mm256_loadu_##S(x + j), _mm256_loadu_##S(threshold + j), _CMP_LE_OQ)) << j;
    #elif defined(__SSE2__)
    #define POLYAK_HITS_WIDE(T, S, W512, W256, W128)                                          \
        for (; j + W128 <= POLYAK_SWEEP_LANES; j += W128)                                  \
            bits |= (unsigned int)_mm_movemask_##S(_mm_cmple_##S(_mm_loadu_##S(x + j), _mm_loadu_##S(threshold + j))) << j;
    #else
    #define POLYAK_HITS_WIDE(T, S, W512, W256, W128)
    #endif
    #define POLYAK_HITS(T, S, W512, W256, W128)                                              \
    static inline unsigned int polyak_hits_##T(const T* x, const T* threshold) {           \
        unsigned int bits = 0;                                                              \
        int j = 0;                                                                          \
        POLYAK_HITS_WIDE(T, S, W512, W256, W128)                                            \
        for (; j < POLYAK_SWEEP_LANES; j++) bits |= (unsigned int)(x[j] <= threshold[j]) << j; \
        return bits;                                                                        \
    }
    POLYAK_HITS(double, pd, 8, 4, 2)
    POLYAK_HITS(float, ps, 16, 8, 4)
    """
    unsigned int polyak_hits_double(const double* x, const double* threshold) noexcept nogil
    unsigned int polyak_hits_float(const float* x, const float* threshold) noexcept nogil


cdef inline unsigned int _hits(const floating* x, const floating* threshold) noexcept nogil:
    if floating is double:
        return polyak_hits_double(x, threshold)
    else:
        return polyak_hits_float(x, threshold)

cdef extern from *:
    """
    /* The recurrence's hot loop, written with GCC's vector types (one vector: POLYAK_VBYTES
       bytes of lanes, _common.pxd) rather than as loops over lanes left to the vectorizer: at AVX2, GCC 12
       turned the lanes' loops of a one-coordinate block into scalar code (0.08 of the
       ceiling) and spilled the registers of a two-coordinate one in one group. polyak_recurrence_T_CN_E_M:
       `steps` steps of w <- tau w - delta w_prev on C coordinates of the LANES lanes (P: w_prev,
       W: w, tau, delta: C rows of LANES; E = 0: delta's first row serves every coordinate),
       and with M >= 1 each step's losses[s] = sums[s * sums_stride] + sum_c w_c^2 (the sums of
       the earlier blocks, or a row of zeros with stride 0), with M = 2 also their running
       minimum `lowest` (a NaN loss leaving it as it is); the lanes in G groups, each through
       all the steps before the next (polyak_recurrence_T_CN_E_M: CN names (C, G)). */
    #include <string.h>
    typedef double polyak_vdouble __attribute__((vector_size(POLYAK_VBYTES)));
    typedef float polyak_vfloat __attribute__((vector_size(POLYAK_VBYTES)));
    typedef long long polyak_vmask_double __attribute__((vector_size(POLYAK_VBYTES)));
    typedef int polyak_vmask_float __attribute__((vector_size(POLYAK_VBYTES)));
    /* the minimum: the instruction where there is one (a compare and a blend otherwise) */
    #if defined(__AVX512F__)
      #define POLYAK_VMIN(T, S, x, m) (polyak_v##T)_mm512_min_##S((__m512##S##_)(x), (__m512##S##_)(m))
    #elif defined(__AVX__)
      #define POLYAK_VMIN(T, S, x, m) (polyak_v##T)_mm256_min_##S((__m256##S##_)(x), (__m256##S##_)(m))
    #elif defined(__SSE2__)
      #define POLYAK_VMIN(T, S, x, m) (polyak_v##T)_mm_min_##S((__m128##S##_)(x), (__m128##S##_)(m))
    #endif
    #define __m512pd_ __m512d
    #define __m512ps_ __m512
    #define __m256pd_ __m256d
    #define __m256ps_ __m256
    #define __m128pd_ __m128d
    #define __m128ps_ __m128
    #define POLYAK_VECTOR_IO(T, S)                                                              \
    static inline polyak_v##T polyak_load_##T(const T* p) { polyak_v##T v; memcpy(&v, p, sizeof v); return v; } \
    static inline void polyak_store_##T(T* p, polyak_v##T v) { memcpy(p, &v, sizeof v); }  \
    static inline polyak_v##T polyak_vmin_##T(polyak_v##T x, polyak_v##T m) {                 \
        POLYAK_VMIN_BODY(T, S)                                                                  \
    }
    #ifdef POLYAK_VMIN
      #define POLYAK_VMIN_BODY(T, S) return POLYAK_VMIN(T, S, x, m);
    #else
      #define POLYAK_VMIN_BODY(T, S)                                                            \
        polyak_vmask_##T below = x < m;                                                         \
        return (polyak_v##T)(((polyak_vmask_##T)x & below) | ((polyak_vmask_##T)m & ~below));
    #endif
    POLYAK_VECTOR_IO(double, pd)
    POLYAK_VECTOR_IO(float, ps)

    #define POLYAK_HALF_STEP(T, C, E, M, DST, SRC, STEP)                                              \
        if (M) for (v = 0; v < N; v++) acc[v] = polyak_load_##T(sums + (STEP) * sums_stride + o + v * V); \
        for (c = 0; c < C; c++)                                                                 \
            for (v = 0; v < N; v++) {                                                           \
                DST[c][v] = tt[c][v] * SRC[c][v] - dd[E ? c : 0][v] * DST[c][v];                \
                if (M) acc[v] += DST[c][v] * DST[c][v];                                         \
            }                                                                                   \
        if (M) for (v = 0; v < N; v++) {                                                        \
            polyak_store_##T(losses + (STEP) * POLYAK_SWEEP_LANES + o + v * V, acc[v]);         \
            if (M == 2) lo[v] = polyak_vmin_##T(acc[v], lo[v]);                                 \
        }

    #define POLYAK_RECURRENCE(T, CN, C, G, E, M)                                                \
    static inline void polyak_recurrence_##T##_##CN##_##E##_##M(                              \
            T* P, T* W, const T* tau, const T* delta, ptrdiff_t steps, const T* sums,           \
            ptrdiff_t sums_stride, T* losses, T* lowest) {                                      \
        enum { V = POLYAK_VBYTES / sizeof(T), GV = G < POLYAK_SWEEP_LANES / V ? G : POLYAK_SWEEP_LANES / V, \
               N = POLYAK_SWEEP_LANES / V / GV };                                               \
        _Static_assert(N >= 1 && POLYAK_SWEEP_LANES % (V * GV) == 0,                            \
                       "the sweep's lanes must fill whole vectors in every group");            \
        polyak_v##T p[C][N], w[C][N], tt[C][N], dd[E ? C : 1][N], acc[N], lo[N], x;            \
        int c, v, g, o;                                                                         \
        ptrdiff_t s;                                                                            \
        for (g = 0, o = 0; g < GV; g++, o += N * V) {                                           \
        for (c = 0; c < C; c++)                                                                 \
            for (v = 0; v < N; v++) {                                                           \
                p[c][v] = polyak_load_##T(P + c * POLYAK_SWEEP_LANES + o + v * V);                  \
                w[c][v] = polyak_load_##T(W + c * POLYAK_SWEEP_LANES + o + v * V);                  \
                tt[c][v] = polyak_load_##T(tau + c * POLYAK_SWEEP_LANES + o + v * V);               \
                if (E || c == 0) dd[c][v] = polyak_load_##T(delta + c * POLYAK_SWEEP_LANES + o + v * V); \
            }                                                                                   \
        for (v = 0; v < N; v++) lo[v] = M == 2 ? polyak_load_##T(lowest + o + v * V) : w[0][v];   \
        for (s = 0; s + 1 < steps; s += 2) {  /* w_prev and w swap roles, not copied */        \
            POLYAK_HALF_STEP(T, C, E, M, p, w, s)                                                    \
            POLYAK_HALF_STEP(T, C, E, M, w, p, s + 1)                                                \
        }                                                                                       \
        if (steps & 1) {                                                                        \
            s = steps - 1;                                                                      \
            if (M) for (v = 0; v < N; v++) acc[v] = polyak_load_##T(sums + s * sums_stride + o + v * V); \
            for (c = 0; c < C; c++)                                                             \
                for (v = 0; v < N; v++) {                                                       \
                    x = tt[c][v] * w[c][v] - dd[E ? c : 0][v] * p[c][v];                        \
                    p[c][v] = w[c][v];                                                          \
                    w[c][v] = x;                                                                \
                    if (M) acc[v] += x * x;                                                     \
                }                                                                               \
            if (M) for (v = 0; v < N; v++) {                                                    \
                polyak_store_##T(losses + s * POLYAK_SWEEP_LANES + o + v * V, acc[v]);         \
                if (M == 2) lo[v] = polyak_vmin_##T(acc[v], lo[v]);                             \
            }                                                                                   \
        }                                                                                       \
        for (c = 0; c < C; c++)                                                                 \
            for (v = 0; v < N; v++) {                                                           \
                polyak_store_##T(P + c * POLYAK_SWEEP_LANES + o + v * V, p[c][v]);                  \
                polyak_store_##T(W + c * POLYAK_SWEEP_LANES + o + v * V, w[c][v]);                  \
            }                                                                                   \
        if (M == 2) for (v = 0; v < N; v++) polyak_store_##T(lowest + o + v * V, lo[v]);      \
        }                                                                                       \
    }
    #define POLYAK_RECURRENCES(T, CN, C, G)                                                     \
        POLYAK_RECURRENCE(T, CN, C, G, 0, 0) POLYAK_RECURRENCE(T, CN, C, G, 0, 1)               \
        POLYAK_RECURRENCE(T, CN, C, G, 0, 2) POLYAK_RECURRENCE(T, CN, C, G, 1, 0)               \
        POLYAK_RECURRENCE(T, CN, C, G, 1, 1) POLYAK_RECURRENCE(T, CN, C, G, 1, 2)
    #define POLYAK_DISPATCH(T, CN, E, M)                                                        \
        if (E) { if (M == 2) polyak_recurrence_##T##_##CN##_1_2(P, W, tau, delta, steps, sums, sums_stride, losses, lowest); \
                 else if (M == 1) polyak_recurrence_##T##_##CN##_1_1(P, W, tau, delta, steps, sums, sums_stride, losses, lowest); \
                 else polyak_recurrence_##T##_##CN##_1_0(P, W, tau, delta, steps, sums, sums_stride, losses, lowest); } \
        else { if (M == 2) polyak_recurrence_##T##_##CN##_0_2(P, W, tau, delta, steps, sums, sums_stride, losses, lowest); \
               else if (M == 1) polyak_recurrence_##T##_##CN##_0_1(P, W, tau, delta, steps, sums, sums_stride, losses, lowest); \
               else polyak_recurrence_##T##_##CN##_0_0(P, W, tau, delta, steps, sums, sums_stride, losses, lowest); }
    /* the entry point: a block of COORDS coordinates or, `narrow`, of NARROW; losses NULL: no loss;
       lowest NULL: no minimum */
    #define POLYAK_RECURRENCE_ENTRY(T)                                                          \
        POLYAK_RECURRENCES(T, wide, POLYAK_SWEEP_COORDS, POLYAK_SWEEP_WIDE_GROUPS)              \
        POLYAK_RECURRENCES(T, narrow, POLYAK_SWEEP_NARROW, POLYAK_SWEEP_GROUPS)                 \
        static inline void polyak_recurrence_##T(T* P, T* W, const T* tau, const T* delta,     \
                ptrdiff_t steps, const T* sums, ptrdiff_t sums_stride, T* losses, T* lowest,    \
                int with_e, int narrow) {                                                       \
            int mode = lowest ? 2 : losses ? 1 : 0;                                             \
            if (narrow) { POLYAK_DISPATCH(T, narrow, with_e, mode) }                            \
            else { POLYAK_DISPATCH(T, wide, with_e, mode) }                                     \
        }
    POLYAK_RECURRENCE_ENTRY(double)
    POLYAK_RECURRENCE_ENTRY(float)
    """
    void polyak_recurrence_double(double* P, double* W, const double* tau, const double* delta,
                                  Py_ssize_t steps, const double* sums, Py_ssize_t sums_stride,
                                  double* losses, double* lowest, bint with_e,
                                  bint narrow) noexcept nogil
    void polyak_recurrence_float(float* P, float* W, const float* tau, const float* delta,
                                 Py_ssize_t steps, const float* sums, Py_ssize_t sums_stride,
                                 float* losses, float* lowest, bint with_e,
                                 bint narrow) noexcept nogil


cdef inline void _add_loss(const floating* acc, floating* losses, floating* lowest,
                           bint with_lowest) noexcept nogil:
    # one step's losses of the lanes (so far) to the buffer, and, with_lowest (the block that
    # completes the sum), to the lanes' smallest loss of the interval
    cdef Py_ssize_t j
    for j in range(LANES):
        losses[j] = acc[j]
    if with_lowest:
        if floating is double:
            polyak_lowest_double(lowest, acc)
        else:
            polyak_lowest_float(lowest, acc)


cdef inline void _block_steps(floating* W, floating* U, const floating* lam,
                              const floating* beta, const floating* fixed,
                              const floating* scaled, const floating* multipliers,
                              Py_ssize_t steps, const floating* sums, Py_ssize_t sums_stride,
                              floating* losses, floating* lowest, bint with_e,
                              bint with_loss, bint with_lowest, bint varying,
                              Py_ssize_t coords) noexcept nogil:
    # `steps` steps of the update on `coords` (COORDS or NARROW) coordinates (W, U: coords rows of
    # LANES) of LANES configurations, held in registers. Coefficients: fixed[0..2] = the
    # lanes' a, k, e, or, `varying`, a_t = fixed[0] + scaled[0]·multipliers[s] and likewise
    # k_t, e_t. with_loss: losses[s, j] = sums[s · sums_stride + j] + Σ_c W[c, j]² after step s, added
    # coordinate by coordinate (and _add_loss's lowest); sums: the earlier blocks' losses, or
    # zeros (sums_stride 0). The flags are constants at each call.
    cdef floating Wb[WIDEST * LANES]
    cdef floating Ub[WIDEST * LANES]
    cdef floating a[LANES]
    cdef floating k[LANES]
    cdef floating e[LANES]
    cdef floating acc[LANES]
    cdef floating g, v
    cdef Py_ssize_t c, j, s
    for j in range(coords * LANES):
        Wb[j] = W[j]
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
                acc[j] = sums[s * sums_stride + j]
        for c in range(coords):
            for j in range(LANES):
                g = lam[c] * Wb[c * LANES + j]
                v = beta[j] * Ub[c * LANES + j] + a[j] * g
                if with_e:
                    Wb[c * LANES + j] = Wb[c * LANES + j] - k[j] * v - e[j] * g
                else:
                    Wb[c * LANES + j] = Wb[c * LANES + j] - k[j] * v
                Ub[c * LANES + j] = v
                if with_loss:
                    acc[j] = acc[j] + Wb[c * LANES + j] * Wb[c * LANES + j]
        if with_loss:
            _add_loss(acc, losses + s * LANES, lowest, with_lowest)
    for j in range(coords * LANES):
        W[j] = Wb[j]
        U[j] = Ub[j]


cdef inline void _block_flags(floating* W, floating* U, const floating* lam,
                              const floating* beta, const floating* fixed,
                              const floating* scaled, const floating* multipliers,
                              Py_ssize_t steps, const floating* sums, Py_ssize_t sums_stride,
                              floating* losses, floating* lowest, bint with_e, bint varying,
                              Py_ssize_t coords) noexcept nogil:
    # _block_steps with its flags made constants (losses NULL: no loss; lowest NULL: none)
    if varying:  # (rare enough to keep with the e term and the loss, lowest at run time)
        _block_steps(W, U, lam, beta, fixed, scaled, multipliers, steps, sums, sums_stride, losses, lowest, True, losses != NULL,
                     lowest != NULL, True, coords)
    elif with_e:
        _block_steps(W, U, lam, beta, fixed, scaled, multipliers, steps, sums, sums_stride, losses, lowest, True, losses != NULL,
                     lowest != NULL, False, coords)
    else:
        _block_steps(W, U, lam, beta, fixed, scaled, multipliers, steps, sums, sums_stride, losses, lowest, False, losses != NULL,
                     lowest != NULL, False, coords)


cdef inline void _block_cases(floating* W, floating* U, floating* P, const floating* lam,
                              const floating* beta, const floating* fixed,
                              const floating* scaled, const floating* tau,
                              const floating* delta, const floating* multipliers,
                              Py_ssize_t steps, const floating* sums, Py_ssize_t sums_stride,
                              floating* losses, floating* lowest, bint with_e, bint varying,
                              bint recurrence, bint narrow) noexcept nogil:
    # one block's steps, by the recurrence (polyak_recurrence_T) or the update, in blocks of
    # COORDS coordinates or, `narrow` (n <= 2), of NARROW
    if recurrence:
        if floating is double:
            polyak_recurrence_double(P, W, tau, delta, steps, sums, sums_stride, losses, lowest, with_e, narrow)
        else:
            polyak_recurrence_float(P, W, tau, delta, steps, sums, sums_stride, losses, lowest, with_e, narrow)
    elif not narrow:
        _block_flags(W, U, lam, beta, fixed, scaled, multipliers, steps, sums, sums_stride, losses, lowest, with_e, varying,
                     COORDS)
    else:
        _block_flags(W, U, lam, beta, fixed, scaled, multipliers, steps, sums, sums_stride, losses, lowest, with_e, varying,
                     NARROW)


cdef inline Py_ssize_t _block_width(Py_ssize_t n) noexcept nogil:
    # coordinates per register block: NARROW where n <= 2 (a wider block would be padding)
    return NARROW if n <= 2 else COORDS


cdef inline Py_ssize_t _padded(Py_ssize_t n) noexcept nogil:
    # the coordinates of the chunk's arrays: n rounded up to whole blocks
    cdef Py_ssize_t width = _block_width(n)
    return (n + width - 1) // width * width


cdef inline void _loss_lanes(const floating* W, Py_ssize_t padded, floating* total) noexcept nogil:
    # total[j] = Σᵢ W[i, j]², added coordinate by coordinate as the blocks add them
    cdef Py_ssize_t i, j
    for j in range(LANES):
        total[j] = 0
    for i in range(padded):
        for j in range(LANES):
            total[j] = total[j] + W[i * LANES + j] * W[i * LANES + j]


cdef inline void _reach(const floating* losses, const floating* lowest, Py_ssize_t steps,
                        int64_t t, floating* threshold, int64_t* reached) noexcept nogil:
    # for each lane j whose smallest loss of these steps (`lowest`) is at most threshold[j]
    # (= 2·tol while the lane runs and has not reached it, else −1: never, as losses >= 0 or
    # NaN), the first s < steps with losses[s, j] <= threshold[j] gives reached[j] = t + s
    cdef unsigned int pending = _hits(lowest, threshold), found
    cdef Py_ssize_t j, s = 0
    while pending and s < steps:
        found = _hits(losses + s * LANES, threshold)
        if found:
            for j in range(LANES):
                if found >> j & 1:
                    reached[j] = t + s
                    threshold[j] = -1
            pending &= ~found
        s += 1


cdef inline void _record(const floating* total, Py_ssize_t t, Py_ssize_t count,
                         const bint* gone, floating* loss, const Settings* run) noexcept nogil:
    # the loss record of step t (a multiple of every), from total = 2·(f − f*)
    cdef Py_ssize_t j
    for j in range(count):
        if not gone[j]:
            loss[j * run.records + t // run.every] = <floating>0.5 * total[j]


cdef inline void _recurrence_coefficients(const floating* lam, Py_ssize_t padded,
                                          const floating* beta, const floating* fixed,
                                          floating* tau, floating* delta) noexcept nogil:
    # τ = 1 + β − (k a + e) λ and δ = β (1 − e λ) of each coordinate and lane, from the lanes'
    # constant coefficients fixed = (a, k, e) (a lane that is padding or diverged is zero: w stays 0)
    cdef Py_ssize_t i, j
    for i in range(padded):
        for j in range(LANES):
            tau[i * LANES + j] = 1 + beta[j] - (fixed[LANES + j] * fixed[j] + fixed[2 * LANES + j]) * lam[i]
            delta[i * LANES + j] = beta[j] * (1 - fixed[2 * LANES + j] * lam[i])


cdef inline double _spectral_radius(double trace, double det) noexcept nogil:
    # max |μ| over the roots of μ² − trace·μ + det, computed for the polynomial scaled by
    # s = max(|trace|, √|det|) so that nothing overflows (polyak._closed_form.spectral_radius_of);
    # 0 where s = 0, inf where s = inf. Without branches, so that a loop over lanes vectorizes.
    cdef double scale = max(fabs(trace), sqrt(fabs(det)))
    cdef bint finite = (scale > 0) & (scale < INFINITY)
    cdef double safe = scale if finite else 1
    cdef double t = trace / safe, d = det / safe / safe
    cdef double discriminant = t * t - 4 * d
    cdef double root = sqrt(discriminant if discriminant >= 0 else fabs(d))  # (one square root for both cases)
    cdef double radius = safe * (0.5 * (fabs(t) + root) if discriminant >= 0 else root)
    return radius if finite else scale


cdef inline void _worst_rates(const floating* lam, Py_ssize_t n, const floating* table,
                              Py_ssize_t count, floating multiplier, floating* rate) noexcept nogil:
    # each configuration's largest spectral radius over the spectrum: at its smallest and its
    # largest eigenvalue, where the radius, quasiconvex in λ, is largest (polyak._stability);
    # table: the chunk's coefficients, column col of lane j at table[col * LANES + j]
    cdef Py_ssize_t i, j
    cdef floating smallest = lam[0], largest = lam[0], a, k, e, beta
    cdef double radius[LANES]
    for i in range(n):
        smallest = min(smallest, lam[i])
        largest = max(largest, lam[i])
    for j in range(LANES):
        beta = table[BETA * LANES + j]
        a = table[A_FIXED * LANES + j] + table[A_SCALED * LANES + j] * multiplier
        k = table[K_FIXED * LANES + j] + table[K_SCALED * LANES + j] * multiplier
        e = table[E_FIXED * LANES + j] + table[E_SCALED * LANES + j] * multiplier
        radius[j] = max(max(<double>0, _spectral_radius(beta + 1 - (k * a + e) * smallest, beta * (1 - e * smallest))),
                        _spectral_radius(beta + 1 - (k * a + e) * largest, beta * (1 - e * largest)))
    for j in range(count):
        rate[j] = <floating>radius[j]


cdef void _sweep_chunk(const floating* lam, const floating* e0, const floating* columns,
                       Py_ssize_t stride, Py_ssize_t count, const floating* schedule,
                       const Settings* run, floating* work, floating* final_loss,
                       int64_t* steps_to_tol,
                       unsigned char* diverged, floating* loss, double tol) noexcept nogil:
    # `count` <= LANES configurations (their coefficients: `columns`, `stride` apart) of the problem
    # (lam, e0), all the steps, a check interval at a time: each block of coordinates runs
    # the interval in registers, writing each step's loss so far to `losses` (CHECK_EVERY
    # rows of LANES), then the tolerance and the records are read from there. `work`: room
    # for W, U, P, tau, delta (_padded(n) coordinates, by LANES; padding: λ = 0, w = 0), λ
    # padded and the losses. The outputs from this chunk's first configuration
    # (steps_to_tol, loss: NULL if not asked).
    cdef Py_ssize_t i, j, q, t = 0, t_end, s, r, n = run.n
    cdef Py_ssize_t width = _block_width(n)
    cdef Py_ssize_t blocks = (n + width - 1) // width, padded = _padded(n)
    cdef floating* W = work
    cdef floating* U = W + padded * LANES
    cdef floating* P = U + padded * LANES
    cdef floating* tau = P + padded * LANES
    cdef floating* delta = tau + padded * LANES
    cdef floating* lam_padded = delta + padded * LANES
    cdef floating* losses = lam_padded + padded
    cdef floating beta[LANES]
    cdef floating fixed[3 * LANES]
    cdef floating scaled[3 * LANES]
    cdef floating total[LANES]
    cdef floating threshold[LANES]
    cdef floating lowest[LANES]
    cdef floating zeros[LANES]
    cdef bint gone[LANES]
    cdef bint with_e = False, all_gone, any_loss, recurrence
    cdef bint tracking = steps_to_tol != NULL
    cdef bint varying = run.schedule_stride != 0
    cdef int64_t reached[LANES]
    cdef double limit
    cdef floating w0
    for j in range(LANES):
        reached[j] = -1
        zeros[j] = 0
        gone[j] = j >= count
        threshold[j] = <floating>(2 * tol) if j < count else -1
        beta[j] = columns[BETA * stride + j] if j < count else 0
    for i in range(padded):
        lam_padded[i] = lam[i] if i < n else 0
        w0 = sqrt(lam[i]) * e0[i] if i < n else 0
        for j in range(LANES):
            W[i * LANES + j] = w0 if j < count else 0
            U[i * LANES + j] = P[i * LANES + j] = 0
    for j in range(count):
        diverged[j] = False
    if tracking or loss != NULL:
        _loss_lanes(W, padded, total)
        if tracking:
            _reach(total, total, 1, 0, threshold, reached)
        if loss != NULL:
            _record(total, 0, count, gone, loss, run)
    while t < run.steps and not stop_requested(run):
        # the first two steps alone (a fresh run's first differs; the recurrence starts from
        # w_1 and w_2), then check intervals
        t_end = t + 1 if t <= 1 else min((t // CHECK_EVERY + 1) * CHECK_EVERY, run.steps)
        recurrence = t >= 2 and not varying
        if t <= 1 or varying:
            # (with a varying schedule, after the first step: the parts at multiplier 0, to
            # which _block_steps adds the scaled parts times each step's multiplier)
            with_e = lane_coefficients(columns, stride, 1, LANES, count, gone,
                                       0 if varying and t > 0 else schedule[t * run.schedule_stride], t == 0,
                                       fixed, scaled)
        if t == 1 and not varying:
            for i in range(padded * LANES):
                P[i] = W[i]
        if t == 2 and not varying:
            _recurrence_coefficients(lam_padded, padded, beta, fixed, tau, delta)
        any_loss = tracking or (loss != NULL and t_end // run.every > t // run.every)
        if any_loss:
            for j in range(LANES):
                lowest[j] = INFINITY
        for q in range(blocks):
            # (the first block's sums start from a row of zeros, not from a zeroed buffer)
            _block_cases(W + q * width * LANES, U + q * width * LANES, P + q * width * LANES,
                         lam_padded + q * width, beta, fixed, scaled, tau + q * width * LANES,
                         delta + q * width * LANES, schedule + t if varying else schedule, t_end - t,
                         <const floating*>zeros if q == 0 else losses, 0 if q == 0 else LANES, losses if any_loss else NULL, lowest if tracking and q == blocks - 1 else NULL,
                         with_e, varying and t > 0, recurrence, n <= 2)
        if tracking:
            _reach(losses, lowest, t_end - t, t + 1, threshold, reached)
        if loss != NULL:
            for s in range(t, t_end):
                if (s + 1) % run.every == 0:
                    _record(losses + (s - t) * LANES, s + 1, count, gone, loss, run)
        t = t_end
        if t % CHECK_EVERY == 0 or t == run.steps:
            # the magnitude test |eᵢ| <= bound, as |wᵢ| <= √λᵢ·bound (at most the largest
            # double, so that an infinite w fails it)
            for i in range(n):
                limit = min(sqrt(<double>lam_padded[i]) * run.bound, DBL_MAX)
                for j in range(LANES):  # (padding lanes are gone already)
                    gone[j] = gone[j] | (not ((W[i * LANES + j] <= limit) & (W[i * LANES + j] >= -limit)))
            all_gone = True
            for j in range(count):
                if gone[j] and not diverged[j]:  # a diverged lane: zero, and counting no more
                    diverged[j] = True
                    threshold[j] = -1
                    beta[j] = 0
                    for i in range(3):
                        fixed[i * LANES + j] = scaled[i * LANES + j] = 0
                    for i in range(padded):
                        W[i * LANES + j] = U[i * LANES + j] = P[i * LANES + j] = 0
                        tau[i * LANES + j] = delta[i * LANES + j] = 0
                    if loss != NULL:
                        for r in range(t // run.every + 1, run.records):
                            loss[j * run.records + r] = NAN
                all_gone = all_gone and gone[j]
            if all_gone:
                break
    _loss_lanes(W, padded, total)
    for j in range(count):
        final_loss[j] = INFINITY if gone[j] else <floating>0.5 * total[j]
        if tracking:
            steps_to_tol[j] = reached[j]


def lanes():
    """Configurations this level's sweep kernel advances together."""
    return LANES


cdef inline void _chunk_table(const floating* lr, const floating* beta,
                              const unsigned char* accelerated, const floating* forms,
                              Py_ssize_t count, floating* table) noexcept nogil:
    # the coefficient table of `count` configurations, column col of lane j at
    # table[col * LANES + j] (lanes j >= count: as for lr = β = 0, never read): each column is
    # bilinear in (lr, β) in every convention, column col of form f (f = 1: nesterov)
    # A + B lr + C β + D lr β with (A, B, C, D) at forms[(f * COLUMNS + col) * 4]. Both forms
    # are evaluated and one kept, so that the lanes' loop vectorizes.
    cdef Py_ssize_t j, col
    cdef const floating* plain
    cdef const floating* nesterov
    cdef floating x[LANES]
    cdef floating y[LANES]
    cdef floating xy[LANES]
    cdef floating chosen[LANES]
    cdef floating p, q
    for j in range(LANES):
        x[j] = lr[j] if j < count else 0
        y[j] = beta[j] if j < count else 0
        chosen[j] = accelerated[j] if j < count else 0
        xy[j] = x[j] * y[j]
    for col in range(COLUMNS):
        plain, nesterov = forms + col * 4, forms + (COLUMNS + col) * 4
        for j in range(LANES):
            p = plain[0] + plain[1] * x[j] + plain[2] * y[j] + plain[3] * xy[j]
            q = nesterov[0] + nesterov[1] * x[j] + nesterov[2] * y[j] + nesterov[3] * xy[j]
            table[col * LANES + j] = q if chosen[j] != 0 else p


def sweep_diagonal(*, const floating[:, ::1] lam, const floating[:, ::1] e0,
                   const int64_t[::1] chunk_problem, const int64_t[::1] chunk_start,
                   const floating[::1] lr, const floating[::1] beta,
                   const unsigned char[::1] accelerated, const floating[:, :, ::1] forms,
                   const floating[::1] schedule, Py_ssize_t steps, double tol, Py_ssize_t every,
                   double bound, floating[::1] final_loss, int64_t[::1] steps_to_tol,
                   unsigned char[::1] diverged, floating[:, ::1] loss, floating[::1] rate,
                   int n_threads, const int[::1] stop):
    """Metrics of C configurations (see the module docstring).

    lam, e0 (P, n): each problem's eigenvalues and starting error. Configuration p: learning
    rate lr[p], momentum beta[p], and accelerated[p] (1: nesterov, with β > 0); its row of the
    plan table (polyak.plans.COLUMNS) is, column by column, the bilinear form
    forms[accelerated[p], col] = (A, B, C, D) at (lr, β): A + B lr + C β + D lr β, built per
    chunk in the kernel instead of a (C, 8) table in memory. schedule: T multipliers or one.
    The configurations are cut into chunks of at most LANES that share a problem: chunk q is
    configurations chunk_start[q]..chunk_start[q+1]-1 of problem chunk_problem[q]
    (chunk_start has one more entry). tol < 0: no tolerance (steps_to_tol not written);
    loss (C, T // every + 1) or (C, 0). Outputs, all written (for C configurations):
    final_loss (inf where diverged), steps_to_tol (−1: never), diverged, and with one
    multiplier (a constant learning rate) the worst spectral radius `rate` (else rate is
    empty and not written). Keyword-only, validated by the caller (polyak.sweep).
    """
    cdef Py_ssize_t q, first, count, n = lam.shape[1], chunks = chunk_problem.shape[0]
    cdef Py_ssize_t padded = _padded(n)
    cdef Py_ssize_t size = 5 * padded * LANES + padded + CHECK_EVERY * LANES + COLUMNS * LANES
    cdef Settings run = settings(lr.shape[0], n, steps, every if every > 0 else 1,
                                 loss.shape[1], schedule.shape[0], bound, &stop[0])
    cdef floating* workspace
    cdef floating* table
    cdef unsigned int control
    cdef int no_memory = 0
    cdef int* no_memory_flag = &no_memory
    with nogil, parallel(num_threads=n_threads):
        control = polyak_flush_subnormals()
        workspace = <floating*>malloc(size * sizeof(floating))
        table = workspace + size - COLUMNS * LANES
        for q in prange(chunks, schedule="dynamic"):
            if workspace == NULL:
                no_memory_flag[0] = 1
                continue
            first = chunk_start[q]
            count = chunk_start[q + 1] - first
            _chunk_table(&lr[first], &beta[first], &accelerated[first], &forms[0, 0, 0], count, table)
            if rate.shape[0] > 0:
                _worst_rates(&lam[chunk_problem[q], 0], n, table, count, schedule[0], &rate[first])
            _sweep_chunk(&lam[chunk_problem[q], 0], &e0[chunk_problem[q], 0], table, LANES, count,
                         &schedule[0], &run, workspace, &final_loss[first],
                         &steps_to_tol[first] if tol >= 0 else NULL, &diverged[first],
                         &loss[first, 0] if loss.shape[1] > 0 else NULL, tol)
        free(workspace)
        polyak_restore_subnormals(control)
    if no_memory:
        raise MemoryError(f"no memory for the sweep's workspace ({size} numbers per thread)")
