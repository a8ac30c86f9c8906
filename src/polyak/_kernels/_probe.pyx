"""This level's build (its flags and vector width) and the machine's arithmetic ceiling.

Compiled once per instruction-set level like every kernel, so the probe runs with the
vector width and instructions of the kernels it is compared with: independent chains of
vector multiply-adds, ``acc = acc * a + b``, kept in registers (16 chains on AVX-512's 32
registers, 12 on the 16 of AVX2 and SSE2: more than the latency × throughput of any FMA unit
in use). With FMA (x86-64-v3 and up) each is one FMA; at the baseline (SSE2) a multiply and
an add. The rate it reports, multiply-adds per second counted per vector lane, is the
ceiling of a kernel whose work is counted in the same multiply-adds.
"""
import time

from cython.parallel cimport prange

from polyak._kernels cimport _openmp
from polyak._kernels._common cimport (A_FIRST, A_FIXED, A_SCALED, BETA, COLUMNS, E_FIXED,
                                      E_SCALED, K_FIXED, K_SCALED)

cdef extern from *:
    """
    #if defined(__AVX512F__)
      #define POLYAK_VECTOR_BYTES 64
      #define POLYAK_PROBE_CHAINS 16
    #elif defined(__AVX__)
      #define POLYAK_VECTOR_BYTES 32
      #define POLYAK_PROBE_CHAINS 12
    #else
      #define POLYAK_VECTOR_BYTES 16
      #define POLYAK_PROBE_CHAINS 12
    #endif
    #define POLYAK_LANES (POLYAK_VECTOR_BYTES / 8)

    #if defined(__GNUC__) || defined(__clang__)
    typedef double polyak_vector __attribute__((vector_size(POLYAK_VECTOR_BYTES)));
    /* `iterations` rounds of one multiply-add on each of the chains; returns their sum so
       that the work is not optimized away. */
    static double polyak_multiply_add_chains(long iterations, double a_value) {
        polyak_vector acc[POLYAK_PROBE_CHAINS], a, b;
        double sum = 0;
        int c, j;
        long i;
        for (j = 0; j < POLYAK_LANES; j++) { a[j] = a_value; b[j] = 1e-9; }
        for (c = 0; c < POLYAK_PROBE_CHAINS; c++) acc[c] = a;
        for (i = 0; i < iterations; i++)
            for (c = 0; c < POLYAK_PROBE_CHAINS; c++) acc[c] = acc[c] * a + b;
        for (c = 0; c < POLYAK_PROBE_CHAINS; c++)
            for (j = 0; j < POLYAK_LANES; j++) sum += acc[c][j];
        return sum;
    }
    #else
    static double polyak_multiply_add_chains(long iterations, double a_value) {
        double acc[POLYAK_PROBE_CHAINS], sum = 0;
        int c;
        long i;
        for (c = 0; c < POLYAK_PROBE_CHAINS; c++) acc[c] = a_value;
        for (i = 0; i < iterations; i++)
            for (c = 0; c < POLYAK_PROBE_CHAINS; c++) acc[c] = acc[c] * a_value + 1e-9;
        for (c = 0; c < POLYAK_PROBE_CHAINS; c++) sum += acc[c];
        return sum;
    }
    #undef POLYAK_LANES
    #define POLYAK_LANES 1
    #endif
    """
    const int POLYAK_VECTOR_BYTES
    const int POLYAK_PROBE_CHAINS
    const int POLYAK_LANES
    double polyak_multiply_add_chains(long iterations, double a_value) noexcept nogil


def level():
    """The instruction-set level this module was compiled for."""
    cdef bytes name = _openmp.POLYAK_CPU_LEVEL
    return name.decode("ascii")


def compile_args():
    """The compiler flags of this level's kernels, as one string."""
    cdef bytes flags = _openmp.POLYAK_COMPILE_ARGS
    return flags.decode("ascii")


def vector_bytes():
    """The width of this level's vectors in bytes (16 SSE2, 32 AVX2, 64 AVX-512)."""
    return POLYAK_VECTOR_BYTES


def multiply_add_rate(int n_threads, long iterations=2_000_000):
    """Multiply-adds per second (per lane, on all `n_threads` together), measured now.

    Each thread runs `iterations` rounds of the chains; about 0.1 s at the default on one
    thread of a 2026 server core. Without OpenMP it runs on one thread.
    """
    cdef double sink = 0
    cdef int t, threads = n_threads if _openmp.POLYAK_HAVE_OPENMP else 1
    cdef double a_value = 0.999999
    start = time.perf_counter()
    with nogil:
        for t in prange(threads, num_threads=threads, schedule="static"):
            sink += polyak_multiply_add_chains(iterations, a_value)
    seconds = time.perf_counter() - start
    if sink != sink:  # NaN never happens; the test keeps the sum alive
        raise RuntimeError("the probe's arithmetic went wrong")
    return <double>iterations * POLYAK_PROBE_CHAINS * POLYAK_LANES * threads / seconds


def coefficient_columns():
    """The column of each coefficient in the kernels' table, as compiled (see _common.pxd)."""
    return {"beta": BETA, "a_fixed": A_FIXED, "a_scaled": A_SCALED, "a_first": A_FIRST,
            "k_fixed": K_FIXED, "k_scaled": K_SCALED, "e_fixed": E_FIXED, "e_scaled": E_SCALED,
            "columns": COLUMNS}
