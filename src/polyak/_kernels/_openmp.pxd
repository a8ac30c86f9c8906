# The one OpenMP shim (real OpenMP calls when the build has OpenMP, serial stand-ins
# otherwise), and what setup.py tells each module about its build.
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define POLYAK_HAVE_OPENMP 1
    #else
    #define POLYAK_HAVE_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    #endif
    #ifndef POLYAK_COMPILE_ARGS
    #define POLYAK_COMPILE_ARGS "unknown"
    #endif
    #ifndef POLYAK_CPU_LEVEL
    #define POLYAK_CPU_LEVEL "baseline"
    #endif
    #ifndef POLYAK_CPU_LEVELS
    #define POLYAK_CPU_LEVELS "baseline"
    #endif
    #ifndef POLYAK_CPU_LEVELS_ASKED
    #define POLYAK_CPU_LEVELS_ASKED ""
    #endif
    """
    const int POLYAK_HAVE_OPENMP
    const char* POLYAK_COMPILE_ARGS
    const char* POLYAK_CPU_LEVEL
    const char* POLYAK_CPU_LEVELS
    const char* POLYAK_CPU_LEVELS_ASKED
    int omp_get_max_threads() noexcept nogil
