"""What the extension modules were built with: OpenMP or not, and the compiler flags."""
from polyak._kernels cimport _openmp


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(_openmp.POLYAK_HAVE_OPENMP)


def max_threads():
    """``omp_get_max_threads()``: the default thread count (honours OMP_NUM_THREADS); 1 without OpenMP."""
    return int(_openmp.omp_get_max_threads())


def compile_args():
    """The compiler flags the kernels were built with, as one string."""
    cdef bytes flags = _openmp.POLYAK_COMPILE_ARGS
    return flags.decode("ascii")
