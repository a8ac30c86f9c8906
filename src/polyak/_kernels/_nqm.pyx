"""Monte Carlo of the noisy quadratic model: replicas of preconditioned heavy ball under noise.

Per direction d (effective curvature x_d = η h^(1−p), noise standard deviation s_d = σ_d with
σ_d² = η² h^(−2p) c / b, see ``polyak._nqm_model``), in the velocity form of the heavy ball
(v = θ_t − θ_{t−1}, v_0 = 0: θ_{−1} = θ_0):

    v_{t+1} = β v_t − x_d θ_t − s_d z_{t,d},   θ_{t+1} = θ_t + v_{t+1},   z_{t,d} ~ N(0, 1),

which is θ_{t+1} = θ_t − η P (H θ_t + ε_t) + β (θ_t − θ_{t−1}) with ε_t ~ N(0, c/b) (and more
accurate than the three-term form for tiny x_d: 1 + β − x_d is never rounded). Every run
starts at θ_0 = √s0 in every direction. A run's loss is ½ Σ_d h_d θ_d², summed in order of d.

The noise. z_{t,d} of configuration c, replica r is drawn from Philox4x32-10 (Salmon, Moraes,
Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011; Random123's
known-answer vectors hold) with key (seed mod 2³², seed div 2³²) and counter words
(b, r, q, c), b = t div 2, q = d div 2: one block of four 32-bit words w0..w3 gives four
normals, two by the Box–Muller transform of (w0, w1) for directions 2q and 2q + 1 at step 2b,
two of (w2, w3) for the same directions at step 2b + 1. Of a pair (R, A) of words, R makes the
radius: ρ = √(−2 ln u₁), u₁ = 1 − (R + ½)·2⁻³² ∈ [2⁻³³, 1 − 2⁻³³], the midpoints of 2³² equal
slices of (0, 1) (so ρ <= √(66 ln 2) = 6.76: the radius's tail beyond it, probability 2⁻³³ =
1.2e-10, is left out). A makes the angle: φ = (π/2)(F − ½) ∈ (−π/4, π/4) with
F = (⌊A/4⌋ + ½)·2⁻³⁰, and (z, z') = ρ·(±cos φ, sin φ), cos φ negated where bit 0 of A is set,
the two swapped where bit 1 is: the four images of the sector |φ| <= π/4 cover the circle, so
the angle is uniform and the two normals independent (an exact transform; only the rounding is
not). 32 bits per uniform, not 52: a Philox block then gives four normals, not two, which made
the simulation 1.2–1.3 times as fast at both vector widths; the price is the 2⁻³³ tail and a
discretization of each uniform at 2⁻³² in probability, far below what any Monte Carlo run can
resolve. Vectorized here: −2 ln u₁ by fdlibm's e_log.c reduction and minimax polynomial
(ln m = 2s + s·R(s²), s = (m − 1)/(m + 1)), sin φ by fdlibm's k_sin.c polynomial,
cos φ = √(1 − sin² φ) (>= 1/√2: well conditioned), √ and the reduction's division by the
hardware (correctly rounded). Each normal is within 2.2 units of 2⁻⁵² relative to max(1, |z|)
of the exact transform of its uniforms (measured on 4.8 million at each level: 2.10 with FMA,
2.14 without; the tests compare with the transform in NumPy's extended precision and require
4). Every (seed, configuration, replica, step, direction) has its own words (a counter serves
two steps of two directions), so a result does not depend on the thread count, on the order
of the work, or on the vector width; the rounding does depend on the instruction-set level
(FMA or not).

The work. A unit is LANES replicas of one configuration, in vector lanes (the key and all
counter words but the replica's are the same in every lane, so the first Philox rounds are
partly scalar). A unit runs CHUNK steps at a time, direction pair by direction pair, the pair's
state in registers, adding w_d θ_d² to the unit's losses of the chunk's records; after each
chunk it reduces its lanes to the mean and the sum of squared deviations (M2) of each record.
The units' (mean, M2) are then combined in the order of the units (Chan, Golub and LeVeque's
pairwise update), so the result is the same for any thread count. The kernel runs with
flush-to-zero and denormals-are-zero set in each of its threads, restored after: a direction
without noise (c = 0) decays geometrically towards the subnormals, where x86 arithmetic is
microcoded; here it reaches 0 instead (a loss below 2.2e-308 counts as 0). Nothing here
raises: a diverging configuration's θ overflows to ±inf and then NaN, and its curve says so.
"""

from cython.parallel cimport parallel, prange
from libc.math cimport sqrt
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free

from polyak._kernels._common cimport polyak_flush_subnormals, polyak_restore_subnormals

cdef extern from *:
    """
    #include <stdint.h>
    #include <stdlib.h>
    #include <string.h>
    #include <math.h>

    /* ---- vectors: NQM_V doubles (or 64-bit integers), NQM_U vectors of replicas per unit ----
       GCC and Clang: their vector extensions, with SSE2/AVX2/AVX-512 intrinsics for the 32-bit
       products and the square roots on x86 (NQM_GENERIC_VECTORS: without, as elsewhere); other
       compilers (or NQM_SCALAR): one lane per "vector". The same numbers on every path, up to
       rounding (FMA). */
    #if (defined(__GNUC__) || defined(__clang__)) && !defined(NQM_SCALAR)
      #if defined(__AVX512F__)
        #define NQM_V 8
      #elif defined(__AVX2__)
        #define NQM_V 4
      #else
        #define NQM_V 2
      #endif
      typedef uint64_t nqm_u __attribute__((vector_size(8 * NQM_V)));
      typedef double nqm_d __attribute__((vector_size(8 * NQM_V)));
      #define NQM_AS_D(x) ((nqm_d)(x))
      #define NQM_AS_U(x) ((nqm_u)(x))
      #define NQM_SPLAT_U(x) ((nqm_u){0} + (uint64_t)(x))
      #define NQM_SPLAT_D(x) ((nqm_d){0} + (double)(x))
      #define NQM_PRAGMA(text) _Pragma(#text)
      #define NQM_UNROLL(n) NQM_PRAGMA(GCC unroll n)
      #if (defined(__x86_64__) || defined(__i386__)) && !defined(NQM_GENERIC_VECTORS)
        #include <immintrin.h>
        /* the products of the low 32-bit halves of the 64-bit lanes (PMULUDQ) */
        /* NQM_PICK(Y, a, b): b in the lanes where bit 1 of Y is set, else a */
        #if defined(__AVX512F__)
          #define NQM_MUL32(a, b) ((nqm_u)_mm512_mul_epu32((__m512i)(a), (__m512i)(b)))
          #define NQM_SQRT(a) ((nqm_d)_mm512_sqrt_pd((__m512d)(a)))
          #define NQM_PICK(Y, a, b) ((nqm_d)_mm512_mask_blend_pd( \
              _mm512_test_epi64_mask((__m512i)(Y), _mm512_set1_epi64(2)), (__m512d)(a), (__m512d)(b)))
        #elif defined(__AVX2__)
          #define NQM_MUL32(a, b) ((nqm_u)_mm256_mul_epu32((__m256i)(a), (__m256i)(b)))
          #define NQM_SQRT(a) ((nqm_d)_mm256_sqrt_pd((__m256d)(a)))
          #define NQM_PICK(Y, a, b) ((nqm_d)_mm256_blendv_pd((__m256d)(a), (__m256d)(b), (__m256d)((Y) << 62)))
        #else
          #define NQM_MUL32(a, b) ((nqm_u)_mm_mul_epu32((__m128i)(a), (__m128i)(b)))
          #define NQM_SQRT(a) ((nqm_d)_mm_sqrt_pd((__m128d)(a)))
        #endif
      #else
        #define NQM_MUL32(a, b) (((a) & 0xffffffffull) * ((b) & 0xffffffffull))
        static inline nqm_d nqm_sqrt_lanes(nqm_d a) {
            for (int j = 0; j < NQM_V; j++) a[j] = sqrt(a[j]);
            return a;
        }
        #define NQM_SQRT(a) nqm_sqrt_lanes(a)
      #endif
      /* NQM_U vectors of replicas, NQM_SB Philox blocks (2 steps each) drawn together: NQM_G
         independent Philox chains in flight, 2 NQM_G transforms in one pipeline. Chosen by
         measurement (Zen 4, one thread, the benchmark's workload, M direction-steps/s, with
         the pipelined transforms): AVX-512 U=2 SB=2 764-922 (U=4 SB=2 880-907, U=2 SB=4
         885-897, U=3 SB=2 835-843); AVX2 U=4 SB=2 532-657 (U=8 SB=1 504-575, U=4 SB=1
         528-606, U=2 SB=4 529-571, U=2 SB=2 472-542); SSE2 U=4 SB=2 254-256 (before the
         pipeline: U=4 SB=1 169-186, U=8 SB=1 169-191, against 193-195). -DNQM_U=.. -DNQM_SB=..
         override them (NQM_CHUNK must stay a multiple of 2 NQM_SB). */
      #ifndef NQM_U
      #if defined(__AVX512F__)
        #define NQM_U 2
      #else
        #define NQM_U 4
      #endif
      #endif
      #ifndef NQM_SB
        #define NQM_SB 2
      #endif
    #else  /* other compilers: one lane per "vector" */
      #define NQM_V 1
      typedef uint64_t nqm_u;
      typedef double nqm_d;
      static inline nqm_d NQM_AS_D(nqm_u x) { nqm_d d; memcpy(&d, &x, 8); return d; }
      static inline nqm_u NQM_AS_U(nqm_d x) { nqm_u u; memcpy(&u, &x, 8); return u; }
      #define NQM_SPLAT_U(x) ((uint64_t)(x))
      #define NQM_SPLAT_D(x) ((double)(x))
      #define NQM_UNROLL(n)
      #define NQM_MUL32(a, b) (((a) & 0xffffffffull) * ((b) & 0xffffffffull))
      #define NQM_SQRT(a) sqrt(a)
      #define NQM_U 4
      #define NQM_SB 1
    #endif
    #ifndef NQM_PICK
      static inline nqm_d nqm_pick(nqm_u Y, nqm_d a, nqm_d b) {
          nqm_u swap = 0 - ((Y >> 1) & 1);
          return NQM_AS_D((NQM_AS_U(a) & ~swap) | (NQM_AS_U(b) & swap));
      }
      #define NQM_PICK(Y, a, b) nqm_pick(Y, a, b)
    #endif
    #define NQM_LANES (NQM_V * NQM_U)   /* replicas per unit */
    #define NQM_G (NQM_SB * NQM_U)      /* Philox chains drawn together */
    #define NQM_SG (2 * NQM_SB)         /* steps drawn together */
    #define NQM_CHUNK 128               /* steps per chunk (the losses of a chunk stay in L1) */
    _Static_assert(NQM_CHUNK % NQM_SG == 0, "a chunk starts at an even step: a whole Philox block");
    #define NQM_ALIGN 64

    /* ---- Philox4x32-10 ---- */
    #define NQM_M0 0xD2511F53ull
    #define NQM_M1 0xCD9E8D57ull
    #define NQM_W0 0x9E3779B9u
    #define NQM_W1 0xBB67AE85u
    #define NQM_LOW 0xffffffffull

    /* keys[2r], keys[2r + 1]: the key of round r + 1 */
    static void nqm_round_keys(uint64_t seed, uint64_t* keys) {
        uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
        for (int r = 0; r < 10; r++) {
            keys[2 * r] = k0;
            keys[2 * r + 1] = k1;
            k0 += NQM_W0;
            k1 += NQM_W1;
        }
    }

    /* Philox4x32-10 of the counters (block0 + i, replica lanes, pair, config) for i < NQM_SB,
       chain g = i * NQM_U + u with replica[u]: word j of chain g in the low halves of the
       64-bit lanes of w[j * NQM_G + g] (the high halves hold garbage). The replica is the one
       word that differs between lanes: round 1 multiplies only scalars, rounds 2 and 3 one
       vector each, round 4 takes one scalar word. */
    static inline void nqm_philox(uint64_t block0, const nqm_u* replica, uint64_t pair,
                                  uint64_t config, const uint64_t* keys, nqm_u* w) {
        const nqm_u m0 = NQM_SPLAT_U(NQM_M0), m1 = NQM_SPLAT_U(NQM_M1);
        nqm_u *c0 = w, *c1 = w + NQM_G, *c2 = w + 2 * NQM_G, *c3 = w + 3 * NQM_G;
        uint64_t s3[NQM_SB];
        const uint64_t Q1 = NQM_M1 * pair, a0 = (Q1 >> 32) ^ keys[0];
        for (int i = 0; i < NQM_SB; i++) {
            /* round 1: (block, pair) scalar products; words 1 (replica lanes ^ ...) and 3 */
            uint64_t P0 = NQM_M0 * (block0 + (uint64_t)i);
            uint64_t w2 = (P0 >> 32) ^ config ^ keys[1], w3 = P0 & NQM_LOW;
            /* round 2: word 0 a vector, word 2 a scalar */
            uint64_t P1 = NQM_M1 * w2;
            uint64_t w0 = (P1 >> 32) ^ (Q1 & NQM_LOW) ^ keys[2], w1 = P1 & NQM_LOW;
            for (int u = 0; u < NQM_U; u++) {
                int g = i * NQM_U + u;
                nqm_u p0 = NQM_MUL32(replica[u] ^ a0, m0);
                c2[g] = (p0 >> 32) ^ (w3 ^ keys[3]);
                c3[g] = p0;
            }
            /* round 3: word 0 a scalar, word 2 a vector */
            P0 = NQM_M0 * w0;
            s3[i] = P0 & NQM_LOW;
            const uint64_t x0 = w1 ^ keys[4], x2 = (P0 >> 32) ^ keys[5];
            for (int u = 0; u < NQM_U; u++) {
                int g = i * NQM_U + u;
                nqm_u p1 = NQM_MUL32(c2[g], m1);
                c0[g] = (p1 >> 32) ^ x0;
                c1[g] = p1;
                c2[g] = c3[g] ^ x2;
            }
        }
        for (int i = 0; i < NQM_SB; i++)  /* round 4: word 3 a scalar */
            for (int u = 0; u < NQM_U; u++) {
                int g = i * NQM_U + u;
                nqm_u p0 = NQM_MUL32(c0[g], m0), p1 = NQM_MUL32(c2[g], m1);
                c0[g] = (p1 >> 32) ^ c1[g] ^ keys[6];
                c1[g] = p1;
                c2[g] = (p0 >> 32) ^ (s3[i] ^ keys[7]);
                c3[g] = p0;
            }
        NQM_UNROLL(6)
        for (int r = 4; r < 10; r++) {
            const uint64_t k0 = keys[2 * r], k1 = keys[2 * r + 1];
            for (int g = 0; g < NQM_G; g++) {
                nqm_u p0 = NQM_MUL32(c0[g], m0), p1 = NQM_MUL32(c2[g], m1);
                nqm_u n0 = (p1 >> 32) ^ c1[g] ^ k0;
                nqm_u n2 = (p0 >> 32) ^ c3[g] ^ k1;
                c1[g] = p1; c3[g] = p0; c0[g] = n0; c2[g] = n2;
            }
        }
    }

    /* ---- Box-Muller ----
       The two normals of one radius word R and one angle word A (32 bits each, in the low
       halves of the lanes). Radius rho = sqrt(-2 ln u1) with u1 = 1 - (R + 1/2) 2^-32 in
       [2^-33, 1 - 2^-33]. Angle: phi = (pi/2)(F - 1/2) in (-pi/4, pi/4) with
       F = ((A >> 2) + 1/2) 2^-30; bit 0 of A negates cos phi, bit 1 swaps the two: the angle
       is uniform on the circle (the four images of the sector |phi| <= pi/4). Both uniforms
       are made exactly, as 1 + F in the mantissa of a double.
       -2 ln u1 by fdlibm's e_log.c reduction u1 = 2^k m, m in [sqrt(1/2), sqrt(2)), f = m - 1,
       s = f / (2 + f), and its minimax polynomial (|error| < 2^-58.45) in
       ln m = 2 atanh(s) = 2 s + s^3 P(s^2), times -2 (the constants carry the factor), summed
       as k (-2 ln 2) + s (s^2 P - 4), with one rounding each where the multiply-adds are fused
       (FMA; within 2 ulp either way), without the special cases (zero, negative, subnormal,
       inf). sin phi by fdlibm's k_sin.c polynomial (|error| < 2^-58),
       cos phi = sqrt(1 - sin^2 phi) (>= 1/sqrt 2: well conditioned).
       In three stages, so that the transforms of a draw can be software-pipelined: the
       division, the square roots and the polynomials' chains of several transforms in flight
       at once (their latency, not the count of instructions, bounds one transform at a time:
       at AVX2 9.1 ns per vector one after another, 7.8 pipelined, 7.4 with the shorter sum
       above, in a loop of the transforms alone). */
    typedef struct { nqm_d s, dk, phi, z; nqm_u A; } nqm_bm_first;
    typedef struct { nqm_d r2, sn, omc; nqm_u A; } nqm_bm_second;

    static inline nqm_bm_first nqm_bm_stage1(nqm_u R, nqm_u A) {
        /* 1 + (R + 1/2) 2^-32: R in mantissa bits 20..51, the half in bit 19 */
        const uint64_t RADIUS_BITS = 0x000ffffffff00000ull, RADIUS_ONE = 0x3ff0000000080000ull;
        /* 1 + (A >> 2 + 1/2) 2^-30: A >> 2 in mantissa bits 22..51, the half in bit 21 */
        const uint64_t ANGLE_BITS = 0x000fffffffc00000ull, ANGLE_ONE = 0x3ff0000000200000ull;
        const uint64_t MANT = 0x000fffffffffffffull;
        nqm_bm_first o;
        nqm_d u1 = 2.0 - NQM_AS_D(((R << 20) & RADIUS_BITS) | RADIUS_ONE);
        nqm_u ix = NQM_AS_U(u1);
        nqm_u mant = ix & MANT;
        /* i: 2^52 where the mantissa is >= sqrt(2) (then m = mantissa / 2 and k + 1) */
        nqm_u i = (mant + 0x00095f6400000000ull) & 0x0010000000000000ull;
        nqm_u kexp = (ix + i) >> 52;
        o.dk = NQM_AS_D(kexp | 0x4330000000000000ull) - (4503599627370496.0 + 1023.0);
        nqm_d f = NQM_AS_D(mant | (i ^ 0x3ff0000000000000ull)) - 1.0;
        o.s = f / (2.0 + f);
        o.phi = (NQM_AS_D(((A << 20) & ANGLE_BITS) | ANGLE_ONE) - 1.5) * 1.57079632679489661923;
        o.z = o.phi * o.phi;
        o.A = A;
        return o;
    }

    static inline nqm_bm_second nqm_bm_stage2(nqm_bm_first a) {
        const double L1 = -2 * 6.666666666666735130e-01, L2 = -2 * 3.999999999940941908e-01,
            L3 = -2 * 2.857142874366239149e-01, L4 = -2 * 2.222219843214978396e-01,
            L5 = -2 * 1.818357216161805012e-01, L6 = -2 * 1.531383769920937332e-01,
            L7 = -2 * 1.479819860511658591e-01, MINUS_2_LN2 = -1.38629436111989057245;
        const double S1 = -1.66666666666666324348e-01, S2 = 8.33333333332248946124e-03,
            S3 = -1.98412698298579493134e-04, S4 = 2.75573137070700676789e-06,
            S5 = -2.50507602534068634195e-08, S6 = 1.58969099521155010221e-10;
        nqm_bm_second o;
        nqm_d s = a.s, z = s * s;
        nqm_d P = L1 + z * (L2 + z * (L3 + z * (L4 + z * (L5 + z * (L6 + z * L7)))));
        o.r2 = a.dk * MINUS_2_LN2 + s * (z * P + -4.0);
        nqm_d phi = a.phi, w = a.z;
        o.sn = phi + (w * phi) * (S1 + w * (S2 + w * (S3 + w * (S4 + w * (S5 + w * S6)))));
        o.omc = 1.0 - o.sn * o.sn;
        o.A = a.A;
        return o;
    }

    static inline void nqm_bm_stage3(nqm_bm_second b, nqm_d* z0, nqm_d* z1) {
        nqm_d rho = NQM_SQRT(b.r2), cs = NQM_SQRT(b.omc);
        nqm_d c = NQM_AS_D(NQM_AS_U(cs) ^ (b.A << 63));
        *z0 = rho * NQM_PICK(b.A, c, b.sn);
        *z1 = rho * NQM_PICK(b.A, b.sn, c);
    }

    static inline void nqm_box_muller(nqm_u R, nqm_u A, nqm_d* z0, nqm_d* z1) {
        nqm_bm_stage3(nqm_bm_stage2(nqm_bm_stage1(R, A)), z0, z1);
    }

    /* z0[j * NQM_U + u], z1[...]: the normals of directions 2 pair and 2 pair + 1 at step
       2 block0 + j (j < NQM_SG) of the replicas in the lanes of replica[u]. Block b gives steps
       2b (words 0, 1) and 2b + 1 (words 2, 3). The 2 NQM_G transforms k = 2 g + h (chain g,
       words 2h and 2h + 1) software-pipelined: stage 1 of k + 2, stage 2 of k + 1 and stage 3
       of k together. */
    #define NQM_TRANSFORMS (2 * NQM_G)
    _Static_assert(NQM_TRANSFORMS >= 2, "the pipeline's prologue takes two transforms");
    static inline void nqm_normals(uint64_t block0, const nqm_u* replica, uint64_t pair,
                                   uint64_t config, const uint64_t* keys, nqm_d* z0, nqm_d* z1) {
        nqm_u w[4 * NQM_G];
        nqm_philox(block0, replica, pair, config, keys, w);
        #define NQM_RADIUS(k) w[2 * ((k) % 2) * NQM_G + (k) / 2]
        #define NQM_ANGLE(k) w[(2 * ((k) % 2) + 1) * NQM_G + (k) / 2]
        /* the output of transform k: step 2 (g / NQM_U) + k % 2, vector g % NQM_U */
        #define NQM_OUT(k) ((2 * (((k) / 2) / NQM_U) + (k) % 2) * NQM_U + ((k) / 2) % NQM_U)
        nqm_bm_second b = nqm_bm_stage2(nqm_bm_stage1(NQM_RADIUS(0), NQM_ANGLE(0)));
        nqm_bm_first a = nqm_bm_stage1(NQM_RADIUS(1), NQM_ANGLE(1));
        NQM_UNROLL(1)
        for (int k = 0; k < NQM_TRANSFORMS - 2; k++) {
            nqm_bm_first a_next = nqm_bm_stage1(NQM_RADIUS(k + 2), NQM_ANGLE(k + 2));
            nqm_bm_second b_next = nqm_bm_stage2(a);
            nqm_bm_stage3(b, &z0[NQM_OUT(k)], &z1[NQM_OUT(k)]);
            a = a_next;
            b = b_next;
        }
        nqm_bm_second b_last = nqm_bm_stage2(a);
        nqm_bm_stage3(b, &z0[NQM_OUT(NQM_TRANSFORMS - 2)], &z1[NQM_OUT(NQM_TRANSFORMS - 2)]);
        nqm_bm_stage3(b_last, &z0[NQM_OUT(NQM_TRANSFORMS - 1)], &z1[NQM_OUT(NQM_TRANSFORMS - 1)]);
        #undef NQM_RADIUS
        #undef NQM_ANGLE
        #undef NQM_OUT
    }

    static inline void nqm_replica_lanes(uint64_t first, nqm_u* replica) {
        uint64_t lanes[NQM_LANES];
        for (int j = 0; j < NQM_LANES; j++) lanes[j] = first + (uint64_t)j;
        memcpy(replica, lanes, sizeof(lanes));
    }

    /* ---- the simulation ---- */
    static inline int nqm_stopped(const int* stop) {
    #if defined(__GNUC__) || defined(__clang__)
        return __atomic_load_n(stop, __ATOMIC_RELAXED) != 0;
    #else
        return *(volatile const int*)stop != 0;
    #endif
    }

    /* Per-thread workspace for `pairs` direction pairs: the pairs' x, s, w, theta0 (2 pairs
       each), their states (4 NQM_LANES each: theta and v of both directions), the losses of a
       chunk's records ((NQM_CHUNK + 1) NQM_LANES); aligned to NQM_ALIGN. */
    static size_t nqm_workspace_doubles(int64_t pairs) {
        return (size_t)(8 * pairs + 4 * NQM_LANES * pairs + (NQM_CHUNK + 1) * NQM_LANES) + NQM_ALIGN / 8;
    }
    static double* nqm_aligned(double* raw) {
        return (double*)(((uintptr_t)raw + NQM_ALIGN - 1) & ~(uintptr_t)(NQM_ALIGN - 1));
    }

    /* One unit: the NQM_LANES replicas first_replica... of configuration `config`, all `steps`
       steps, recorded every `every` steps. Directions 2q and 2q + 1 (q < pairs) have
       x, s (noise standard deviation), w (loss weight) and th0 (start) at [2q] and [2q + 1] of
       ws; the states and losses follow. Writes the mean and M2 over the first `valid` lanes of
       records 0..steps / every to mean[] and m2[]. Returns 1 if stopped (outputs incomplete). */
    static int nqm_unit(uint64_t config, uint64_t first_replica, int64_t steps, int64_t every,
                        int64_t pairs, double beta, const uint64_t* keys, double* ws, int valid,
                        double* mean, double* m2, const int* stop) {
        const double *x = ws, *s = ws + 2 * pairs, *w = ws + 4 * pairs, *th0 = ws + 6 * pairs;
        double* state = ws + 8 * pairs;              /* aligned: 8 pairs doubles are 64 pairs bytes */
        double* window = state + 4 * NQM_LANES * pairs;
        nqm_u replica[NQM_U];
        nqm_replica_lanes(first_replica, replica);
        double loss0 = 0;
        for (int64_t d = 0; d < 2 * pairs; d++) loss0 += w[d] * th0[d] * th0[d];
        mean[0] = loss0;
        m2[0] = 0;
        for (int64_t q = 0; q < pairs; q++) {
            nqm_d* st = (nqm_d*)(state + 4 * NQM_LANES * q);
            for (int u = 0; u < NQM_U; u++) {
                st[u] = NQM_SPLAT_D(th0[2 * q]);
                st[NQM_U + u] = NQM_SPLAT_D(0.0);
                st[2 * NQM_U + u] = NQM_SPLAT_D(th0[2 * q + 1]);
                st[3 * NQM_U + u] = NQM_SPLAT_D(0.0);
            }
        }
        for (int64_t t0 = 0; t0 < steps; t0 += NQM_CHUNK) {
            if (nqm_stopped(stop)) return 1;
            const int64_t t1 = steps - t0 > NQM_CHUNK ? t0 + NQM_CHUNK : steps;
            const int64_t k0 = t0 / every + 1, records = t1 / every - k0 + 1;  /* t0 < k every <= t1 */
            if (records > 0) memset(window, 0, (size_t)records * NQM_LANES * sizeof(double));
            for (int64_t q = 0; q < pairs; q++) {
                nqm_d* st = (nqm_d*)(state + 4 * NQM_LANES * q);
                nqm_d th_a[NQM_U], v_a[NQM_U], th_b[NQM_U], v_b[NQM_U];
                for (int u = 0; u < NQM_U; u++) {
                    th_a[u] = st[u]; v_a[u] = st[NQM_U + u];
                    th_b[u] = st[2 * NQM_U + u]; v_b[u] = st[3 * NQM_U + u];
                }
                const double xa = x[2 * q], xb = x[2 * q + 1], sa = s[2 * q], sb = s[2 * q + 1];
                const double wa = w[2 * q], wb = w[2 * q + 1];
                int64_t next = k0 * every;
                nqm_d* rec = (nqm_d*)window;
                for (int64_t tb = t0; tb < t1; tb += NQM_SG) {  /* (t0 is even) */
                    nqm_d za[NQM_SG * NQM_U], zb[NQM_SG * NQM_U];
                    nqm_normals((uint64_t)tb / 2, replica, (uint64_t)q, config, keys, za, zb);
                    for (int i = 0; i < NQM_SG && tb + i < t1; i++) {
                        for (int u = 0; u < NQM_U; u++) {
                            v_a[u] = beta * v_a[u] - xa * th_a[u] - sa * za[i * NQM_U + u];
                            th_a[u] = th_a[u] + v_a[u];
                            v_b[u] = beta * v_b[u] - xb * th_b[u] - sb * zb[i * NQM_U + u];
                            th_b[u] = th_b[u] + v_b[u];
                        }
                        if (tb + i + 1 == next) {
                            for (int u = 0; u < NQM_U; u++) {
                                nqm_d acc = rec[u];
                                acc = acc + wa * th_a[u] * th_a[u];
                                acc = acc + wb * th_b[u] * th_b[u];
                                rec[u] = acc;
                            }
                            rec += NQM_U;
                            next += every;
                        }
                    }
                }
                for (int u = 0; u < NQM_U; u++) {
                    st[u] = th_a[u]; st[NQM_U + u] = v_a[u];
                    st[2 * NQM_U + u] = th_b[u]; st[3 * NQM_U + u] = v_b[u];
                }
            }
            for (int64_t k = 0; k < records; k++) {
                const double* lanes = window + k * NQM_LANES;
                double sum = 0, squares = 0, mu;
                for (int j = 0; j < valid; j++) sum += lanes[j];
                mu = sum / valid;
                for (int j = 0; j < valid; j++) squares += (lanes[j] - mu) * (lanes[j] - mu);
                mean[k0 + k] = mu;
                m2[k0 + k] = squares;
            }
        }
        return 0;
    }

    /* out[(t * 2 + j) * count + r] = the normal of direction 2 pair + j at step t of replica
       first + r (r < count), t < steps: the draws of nqm_unit, for the tests */
    static void nqm_draw(uint64_t seed, uint64_t config, uint64_t pair, uint64_t first,
                         int64_t count, int64_t steps, double* out) {
        uint64_t keys[20];
        nqm_round_keys(seed, keys);
        for (int64_t r0 = 0; r0 < count; r0 += NQM_LANES) {
            nqm_u replica[NQM_U];
            nqm_replica_lanes(first + (uint64_t)r0, replica);
            for (int64_t tb = 0; tb < steps; tb += NQM_SG) {
                nqm_d za[NQM_SG * NQM_U], zb[NQM_SG * NQM_U];
                double a[NQM_SG * NQM_LANES], b[NQM_SG * NQM_LANES];
                nqm_normals((uint64_t)tb / 2, replica, pair, config, keys, za, zb);
                memcpy(a, za, sizeof(a));
                memcpy(b, zb, sizeof(b));
                for (int i = 0; i < NQM_SG && tb + i < steps; i++)
                    for (int j = 0; j < NQM_LANES && r0 + j < count; j++) {
                        out[((tb + i) * 2) * count + r0 + j] = a[i * NQM_LANES + j];
                        out[((tb + i) * 2 + 1) * count + r0 + j] = b[i * NQM_LANES + j];
                    }
            }
        }
    }

    /* (z0[i], z1[i]) = the Box-Muller normals of radius word R[i] and angle word A[i], through
       the kernel's vector code, for the tests */
    static void nqm_box_muller_words(const uint32_t* R, const uint32_t* A, int64_t count, double* z) {
        for (int64_t i0 = 0; i0 < count; i0 += NQM_V) {
            uint64_t r[NQM_V], a[NQM_V];
            double z0[NQM_V], z1[NQM_V];
            nqm_u rv, av;
            nqm_d z0v, z1v;
            for (int j = 0; j < NQM_V; j++) {
                r[j] = i0 + j < count ? R[i0 + j] : 0;
                a[j] = i0 + j < count ? A[i0 + j] : 0;
            }
            memcpy(&rv, r, sizeof(r));
            memcpy(&av, a, sizeof(a));
            nqm_box_muller(rv, av, &z0v, &z1v);
            memcpy(z0, &z0v, sizeof(z0));
            memcpy(z1, &z1v, sizeof(z1));
            for (int j = 0; j < NQM_V && i0 + j < count; j++) {
                z[2 * (i0 + j)] = z0[j];
                z[2 * (i0 + j) + 1] = z1[j];
            }
        }
    }

    /* words[4 i ...] = Philox4x32-10 of key (seed) and counter (c0[i], c1[i], c2[i], c3[i]),
       through the kernel's vector code (c1 in the lanes), for the tests */
    static void nqm_philox_words(uint64_t seed, const uint32_t* c0, const uint32_t* c1,
                                 const uint32_t* c2, const uint32_t* c3, int64_t count,
                                 uint32_t* words) {
        uint64_t keys[20];
        nqm_round_keys(seed, keys);
        for (int64_t i = 0; i < count; i++) {
            nqm_u replica[NQM_U], w[4 * NQM_G];
            for (int u = 0; u < NQM_U; u++) replica[u] = NQM_SPLAT_U(c1[i]);
            nqm_philox(c0[i], replica, c2[i], c3[i], keys, w);
            for (int j = 0; j < 4; j++) {
                uint64_t lanes[NQM_V];
                memcpy(lanes, &w[j * NQM_G], sizeof(lanes));
                words[4 * i + j] = (uint32_t)lanes[0];
            }
        }
    }

    """
    enum: LANES "NQM_LANES"
    enum: CHUNK "NQM_CHUNK"
    void nqm_round_keys(uint64_t seed, uint64_t* keys) noexcept nogil
    size_t nqm_workspace_doubles(int64_t pairs) noexcept nogil
    double* nqm_aligned(double* raw) noexcept nogil
    int nqm_unit(uint64_t config, uint64_t first_replica, int64_t steps, int64_t every,
                 int64_t pairs, double beta, const uint64_t* keys, double* ws, int valid,
                 double* mean, double* m2, const int* stop) noexcept nogil
    void nqm_draw(uint64_t seed, uint64_t config, uint64_t pair, uint64_t first, int64_t count,
                  int64_t steps, double* out) noexcept nogil
    void nqm_box_muller_words(const uint32_t* R, const uint32_t* A, int64_t count, double* z) noexcept nogil
    void nqm_philox_words(uint64_t seed, const uint32_t* c0, const uint32_t* c1, const uint32_t* c2,
                          const uint32_t* c3, int64_t count, uint32_t* words) noexcept nogil


def lanes():
    """Replicas this level's kernel runs together (a unit)."""
    return LANES


def chunk_steps():
    """Steps a unit runs between its checks of the stop flag."""
    return CHUNK


def workspace_bytes(Py_ssize_t directions):
    """Bytes of workspace each thread allocates for a model of `directions` directions."""
    return nqm_workspace_doubles((directions + 1) // 2) * sizeof(double)


cdef inline void _load_unit(double* ws, Py_ssize_t pairs, const double* x, const double* s,
                            const int64_t* bins, const double* weights, const double* theta0,
                            Py_ssize_t directions) noexcept nogil:
    # the unit's per-direction x, s, w, θ0 (2·pairs each, zero past the last direction)
    cdef Py_ssize_t d, b
    for d in range(2 * pairs):
        if d < directions:
            b = bins[d]
            ws[d], ws[2 * pairs + d] = x[b], s[b]
            ws[4 * pairs + d], ws[6 * pairs + d] = weights[d], theta0[d]
        else:
            ws[d] = ws[2 * pairs + d] = ws[4 * pairs + d] = ws[6 * pairs + d] = 0


def simulate(*, const double[:, ::1] x, const double[:, ::1] noise_std, const double[::1] beta,
             const int64_t[::1] bins, const double[::1] weights, const double[::1] theta0,
             Py_ssize_t first_configuration, Py_ssize_t steps, Py_ssize_t every,
             Py_ssize_t replicas, uint64_t seed, double[:, ::1] unit_mean, double[:, ::1] unit_m2, double[:, ::1] mean,
             double[:, ::1] stderr, int n_threads, const int[::1] stop):
    """Monte Carlo of C configurations of the noisy quadratic model (see the module docstring).

    x, noise_std (C, n): per configuration and curvature bin, the effective curvature and the
    noise's standard deviation per step; beta (C,). Row c is configuration first_configuration + c
    (its counter word: a run cut into calls gives the results of one call). bins (D,): the bin of each direction;
    weights, theta0 (D,): its loss weight ½h and start √s0. `replicas` runs per configuration,
    recorded every `every` steps: K = steps // every + 1 records. Workspace: unit_mean,
    unit_m2 (C·U, K) with U = ceil(replicas / lanes()). Outputs, all written unless stopped:
    mean and stderr (C, K), the standard error std(ddof=1)/√replicas. Keyword-only, validated
    by the caller (polyak.nqm.simulate): counters must fit 32 bits (steps, replicas,
    configurations, directions/2).
    """
    cdef Py_ssize_t C = x.shape[0], D = bins.shape[0], K = mean.shape[1]
    cdef Py_ssize_t pairs = (D + 1) // 2
    cdef Py_ssize_t per_config = (replicas + LANES - 1) // LANES
    cdef Py_ssize_t units = C * per_config
    cdef Py_ssize_t unit, c, b, k, first
    cdef int valid
    cdef size_t size = nqm_workspace_doubles(pairs)
    cdef uint64_t keys[20]
    cdef double* raw
    cdef double* ws
    cdef unsigned int control
    cdef int no_memory = 0
    cdef int stopped = 0
    cdef int* no_memory_flag = &no_memory  # (flags set through pointers: a variable assigned
    cdef int* stopped_flag = &stopped      # in a prange loop would be lastprivate)
    cdef double count, other, delta, total_n, mu, m2
    nqm_round_keys(seed, keys)
    with nogil, parallel(num_threads=n_threads):
        control = polyak_flush_subnormals()
        raw = <double*>calloc(size, sizeof(double))
        ws = nqm_aligned(raw)
        for unit in prange(units, schedule="dynamic"):
            if raw == NULL:
                no_memory_flag[0] = 1
                continue
            c = unit // per_config
            b = unit % per_config
            first = b * LANES
            valid = <int>(LANES if replicas - first >= LANES else replicas - first)
            _load_unit(ws, pairs, &x[c, 0], &noise_std[c, 0], &bins[0], &weights[0], &theta0[0], D)
            if nqm_unit(<uint64_t>(first_configuration + c), <uint64_t>first, steps, every, pairs, beta[c],
                        keys, ws, valid, &unit_mean[unit, 0], &unit_m2[unit, 0], &stop[0]):
                stopped_flag[0] = 1
        free(raw)
        polyak_restore_subnormals(control)
    if no_memory:
        raise MemoryError(f"no memory for the simulation's workspace ({size * sizeof(double)} bytes per thread)")
    if stopped:
        return
    with nogil:
        for c in prange(C, num_threads=n_threads, schedule="static"):
            for k in range(K):
                # Chan et al.'s pairwise combination of the units' (mean, M2), in unit order
                count, mu, m2 = 0, 0, 0
                for b in range(per_config):
                    other = <double>(LANES if replicas - b * LANES >= LANES else replicas - b * LANES)
                    delta = unit_mean[c * per_config + b, k] - mu
                    total_n = count + other
                    mu = mu + delta * (other / total_n)
                    m2 = m2 + unit_m2[c * per_config + b, k] + delta * delta * (count * other / total_n)
                    count = total_n
                mean[c, k] = mu
                stderr[c, k] = sqrt(m2 / (count - 1) / count)


def draw_normals(*, uint64_t seed, uint64_t configuration, uint64_t pair, uint64_t first_replica,
                 double[:, :, ::1] out):
    """out[t, j, r]: the normal that `simulate` gives direction 2·pair + j at step t of replica
    first_replica + r of configuration `configuration` (out of shape (T, 2, R)). For the tests."""
    nqm_draw(seed, configuration, pair, first_replica, out.shape[2], out.shape[0], &out[0, 0, 0])


def philox(*, uint64_t seed, const uint32_t[::1] c0, const uint32_t[::1] c1, const uint32_t[::1] c2,
           const uint32_t[::1] c3, uint32_t[:, ::1] out):
    """out[i] = Philox4x32-10 (key = seed's low and high 32 bits) of counter (c0[i], c1[i], c2[i],
    c3[i]), computed by the kernel's vector code. For the tests."""
    nqm_philox_words(seed, &c0[0], &c1[0], &c2[0], &c3[0], c0.shape[0], &out[0, 0])


def box_muller(*, const uint32_t[::1] radius_words, const uint32_t[::1] angle_words, double[:, ::1] out):
    """out[i] = the two normals that the kernel's Box–Muller transform makes of radius word
    radius_words[i] and angle word angle_words[i] (out of shape (N, 2)). For the tests."""
    if angle_words.shape[0] != radius_words.shape[0] or out.shape[0] != radius_words.shape[0] or out.shape[1] != 2:
        raise ValueError("box_muller takes radius_words and angle_words of one length N and out of shape (N, 2)")
    nqm_box_muller_words(&radius_words[0], &angle_words[0], radius_words.shape[0], &out[0, 0])
