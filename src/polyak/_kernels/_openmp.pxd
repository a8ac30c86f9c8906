# The one OpenMP shim: real OpenMP calls when the build has OpenMP, serial stand-ins otherwise.
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
    """
    const int POLYAK_HAVE_OPENMP
    const char* POLYAK_COMPILE_ARGS
    int omp_get_max_threads() noexcept nogil
