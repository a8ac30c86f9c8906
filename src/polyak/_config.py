"""The build's configuration, the choice of kernels for this CPU, and the thread count helper.

Every kernel module is compiled once per instruction-set level (see setup.py). At import,
polyak takes the highest level that was built and that this CPU supports, or the level named
by the environment variable ``POLYAK_CPU_LEVEL`` (``baseline``, ``x86-64-v3``, ``x86-64-v4``,
``native``): a way to test or compare the lower levels on a capable machine.
"""

import contextlib
import importlib
import os
import platform
import threading

import numpy as np
import scipy

from polyak._validation import as_int
from polyak._version import __version__

#: The most threads a kernel may be asked for. A request is then reduced to the CPUs this
#: process may run on (:func:`available_cpus`): more would only take turns on them.
MAX_THREADS = 1024
#: The environment variable that forces an instruction-set level.
LEVEL_VARIABLE = "POLYAK_CPU_LEVEL"
#: The module-name suffix of each level's kernels.
LEVEL_SUFFIX = {"baseline": "", "x86-64-v3": "_x86_64_v3", "x86-64-v4": "_x86_64_v4", "native": "_native"}


def _build():
    from polyak._kernels import _build  # noqa: PLC0415 -- a clear error if the extension is missing

    return _build


def supported_levels():
    """The levels this build has and this CPU runs, lowest first."""
    build = _build()
    return tuple(level for level in build.built_levels() if build.cpu_supports(level))


def _chosen_level():
    build = _build()
    forced = os.environ.get(LEVEL_VARIABLE, "").strip()
    if not forced:
        return supported_levels()[-1]
    if forced not in build.built_levels():
        raise ImportError(f"{LEVEL_VARIABLE}={forced!r}: this build of polyak has the levels "
                          f"{', '.join(build.built_levels())}")
    if not build.cpu_supports(forced):
        raise ImportError(f"{LEVEL_VARIABLE}={forced!r}: this CPU does not support it; it supports "
                          f"{', '.join(supported_levels())}")
    return forced


_level = _chosen_level()


def level():
    """The instruction-set level whose kernels are in use."""
    return _level


@contextlib.contextmanager
def use_level(name):
    """Run the kernels of level `name` inside the block (benchmarks and tests compare levels
    with it). It switches the level for the whole process: not for use from several threads."""
    global _level
    if name not in supported_levels():
        raise ValueError(f"level {name!r} is not built or not supported here; available: {supported_levels()}")
    saved, _level = _level, name
    try:
        yield
    finally:
        _level = saved


def kernels(name):
    """The compiled module `name` (e.g. "_diagonal") of the level in use."""
    return importlib.import_module(f"polyak._kernels.{name}{LEVEL_SUFFIX[_level]}")


def show_config(print_out=True):
    """The build's configuration as a dict (and printed readably unless `print_out` is False).

    Keys: ``version``, ``python``, ``numpy``, ``scipy``, ``openmp`` (whether the kernels were
    compiled with OpenMP), ``max_threads`` (the default thread count: OMP_NUM_THREADS or the
    number of cores, at most ``cpus_available``; 1 without OpenMP), ``cpus_available`` (the
    CPUs this process may run on), ``simd_bits`` (the vector width the kernels in use were
    compiled for), ``cpu_level`` (the instruction-set level whose
    kernels are in use), ``cpu_levels_built``, ``cpu_levels_supported`` (by this CPU),
    ``compile_args`` (the compiler flags of the kernels in use), ``extension`` (the path of
    a compiled module in use).
    """
    build, probe = _build(), kernels("_probe")
    config = {
        "version": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "openmp": build.openmp_enabled(),
        "max_threads": min(build.max_threads(), available_cpus()) if build.openmp_enabled() else 1,
        "cpus_available": available_cpus(),
        "simd_bits": probe.vector_bytes() * 8,
        "cpu_level": probe.level(),
        "cpu_levels_built": list(build.built_levels()),
        "cpu_levels_supported": list(supported_levels()),
        "compile_args": probe.compile_args(),
        "extension": probe.__file__,
    }
    if print_out:
        width = max(map(len, config))
        print("\n".join(f"{key:>{width}}: {value}" for key, value in config.items()))
    return config


def available_cpus():
    """The CPUs this process may run on (its affinity mask; os.cpu_count() where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def resolve_threads(n_threads):
    """The thread count for a parallel kernel.

    `n_threads` (an integer from 1 to MAX_THREADS), or for None the OpenMP default
    (OMP_NUM_THREADS, else the number of cores), reduced to :func:`available_cpus`: more
    threads than CPUs would only take turns, and a request the system cannot honour would
    abort the process inside the OpenMP runtime. Without OpenMP every kernel runs on one
    thread. Before a count is used for the first time, the process checks that it can start
    that many threads: a RuntimeError if it cannot (e.g. under a limit on processes).
    """
    build = _build()
    if n_threads is not None:
        n_threads = as_int(n_threads, "n_threads", minimum=1, maximum=MAX_THREADS)
    if not build.openmp_enabled():
        return 1
    requested = build.max_threads() if n_threads is None else n_threads
    threads = max(1, min(requested, available_cpus()))
    _require_threads(threads)
    return threads


_started = {"most": 1}  # the most threads this process has shown it can start
_started_lock = threading.Lock()


def _require_threads(count):
    """RuntimeError unless `count` − 1 more threads can be started now (checked once per count)."""
    with _started_lock:
        if count <= _started["most"]:
            return
        release = threading.Event()
        started = []
        try:
            for _ in range(count - 1):
                thread = threading.Thread(target=release.wait, daemon=True)
                thread.start()
                started.append(thread)
        except RuntimeError as error:
            raise RuntimeError(f"n_threads: this process cannot start {count} threads ({error}); ask for "
                               f"fewer with n_threads= or OMP_NUM_THREADS") from None
        finally:
            release.set()
            for thread in started:
                thread.join()
        _started["most"] = count
