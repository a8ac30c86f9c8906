"""The build's configuration and the one helper that turns `n_threads` into a thread count."""

import platform

import numpy as np
import scipy

from polyak._validation import as_int
from polyak._version import __version__

#: The most threads a kernel may be asked for (OpenMP fails hard when it cannot create them).
MAX_THREADS = 1024


def _build():
    from polyak._kernels import _build  # noqa: PLC0415 -- a clear error if the extension is missing

    return _build


def show_config(print_out=True):
    """The build's configuration as a dict (and printed readably unless `print_out` is False).

    Keys: ``version``, ``python``, ``numpy``, ``scipy``, ``openmp`` (whether the kernels were
    compiled with OpenMP), ``max_threads`` (the default thread count: OMP_NUM_THREADS or the
    number of cores; 1 without OpenMP), ``compile_args`` (the compiler flags of the kernels),
    ``extension`` (the path of the compiled module in use).
    """
    build = _build()
    config = {
        "version": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "openmp": build.openmp_enabled(),
        "max_threads": build.max_threads(),
        "compile_args": build.compile_args(),
        "extension": build.__file__,
    }
    if print_out:
        width = max(map(len, config))
        print("\n".join(f"{key:>{width}}: {value}" for key, value in config.items()))
    return config


def resolve_threads(n_threads):
    """The thread count for a parallel kernel: `n_threads` (>= 1), or the OpenMP default for None.

    Without OpenMP every kernel runs on one thread, whatever is asked.
    """
    build = _build()
    if n_threads is None:
        return build.max_threads()
    n_threads = as_int(n_threads, "n_threads", minimum=1, maximum=MAX_THREADS)
    return n_threads if build.openmp_enabled() else 1
