"""What the build made (OpenMP or not, the instruction-set levels) and what this CPU runs.

Compiled once, for the baseline, so that it imports on any machine; the kernels themselves
are compiled once per level (see setup.py) and chosen by ``polyak._config``.
"""
from polyak._kernels cimport _openmp

cdef extern from *:
    """
    /* Which instruction-set levels the running CPU (and its operating system, which must
       save the wider registers) supports; GCC's and Clang's __builtin_cpu_supports check
       both. GCC 12 and later know the levels by name (x86-64-v3: AVX, AVX2, BMI1/2, F16C,
       FMA, LZCNT, MOVBE, XSAVE; x86-64-v4: and AVX-512 F/BW/CD/DQ/VL); other compilers are
       asked for the features the kernels can use. */
    #if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__)
    static int polyak_cpu_has_v3(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("x86-64-v3");
    }
    static int polyak_cpu_has_v4(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("x86-64-v4");
    }
    #elif (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    static int polyak_cpu_has_v3(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx") && __builtin_cpu_supports("avx2")
            && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi")
            && __builtin_cpu_supports("bmi2");
    }
    static int polyak_cpu_has_v4(void) {
        __builtin_cpu_init();
        return polyak_cpu_has_v3() && __builtin_cpu_supports("avx512f")
            && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512cd")
            && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    }
    #else
    static int polyak_cpu_has_v3(void) { return 0; }
    static int polyak_cpu_has_v4(void) { return 0; }
    #endif
    """
    int polyak_cpu_has_v3() noexcept nogil
    int polyak_cpu_has_v4() noexcept nogil


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(_openmp.POLYAK_HAVE_OPENMP)


def max_threads():
    """``omp_get_max_threads()``: the default thread count (honours OMP_NUM_THREADS); 1 without OpenMP."""
    return int(_openmp.omp_get_max_threads())


def built_levels():
    """The instruction-set levels the kernels were compiled for, lowest first."""
    cdef bytes levels = _openmp.POLYAK_CPU_LEVELS
    return tuple(levels.decode("ascii").split(","))


def asked_levels():
    """The build's POLYAK_CPU_LEVELS switch, split ("" when it was not set: every level)."""
    cdef bytes asked = _openmp.POLYAK_CPU_LEVELS_ASKED
    return tuple(name.strip() for name in asked.decode("ascii").split(",") if name.strip())


def cpu_supports(level):
    """Whether this CPU runs code of `level` ("baseline", "x86-64-v3", "x86-64-v4", "native").

    "native" (a build for the building machine) is assumed to run where it was built.
    """
    if level in ("baseline", "native"):
        return True
    if level == "x86-64-v3":
        return bool(polyak_cpu_has_v3())
    if level == "x86-64-v4":
        return bool(polyak_cpu_has_v4())
    raise ValueError(f"unknown instruction-set level {level!r}")
