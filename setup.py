"""Declares polyak's Cython extensions; all metadata lives in pyproject.toml.

Build switches (environment variables, read at build time):

- ``POLYAK_OPENMP=0``: build without OpenMP (the kernels then run on one thread).
- ``POLYAK_REQUIRE_OPENMP=1``: fail the build when the compiler cannot compile and link
  an OpenMP program (CI sets it), instead of building serially with a warning.
- ``POLYAK_PORTABLE=1``: do not compile for the building machine's own instruction set
  (``-march=native``); use this for wheels or for a build shared between machines.
"""

import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools._distutils.ccompiler import new_compiler
from setuptools._distutils.errors import CompileError, LinkError
from setuptools._distutils.sysconfig import customize_compiler

KERNELS = Path("src", "polyak", "_kernels")


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _compiles(source, compile_args, link_args=()):
    """True when `source` compiles and links with the given flags (a probe, output hidden)."""
    compiler = new_compiler()
    customize_compiler(compiler)
    tmp = tempfile.mkdtemp(prefix="polyak-probe-")
    try:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as handle:
            handle.write(source)
        devnull = os.open(os.devnull, os.O_WRONLY)
        saved = os.dup(2), os.dup(1)
        os.dup2(devnull, 2), os.dup2(devnull, 1)
        try:
            objects = compiler.compile([path], output_dir=tmp, extra_postargs=list(compile_args))
            compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=list(link_args))
        finally:
            os.dup2(saved[0], 2), os.dup2(saved[1], 1)
            os.close(devnull), os.close(saved[0]), os.close(saved[1])
        return True
    except (CompileError, LinkError):
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


OPENMP_PROBE = """
#include <omp.h>
int main(void) {
    int total = 0;
    #pragma omp parallel for reduction(+:total)
    for (int i = 0; i < 64; i++) total += i;
    return (total == 2016 && omp_get_max_threads() >= 1) ? 0 : 1;
}
"""
AVX512_PROBE = """
#ifndef __AVX512F__
#error "no AVX-512F"
#endif
int main(void) { return 0; }
"""


def openmp_flags():
    """(compile, link) flags for OpenMP, or empty ones when it is off or unavailable."""
    if os.environ.get("POLYAK_OPENMP", "1").strip().lower() in {"0", "false", "no", "off"}:
        if _env_flag("POLYAK_REQUIRE_OPENMP"):
            sys.exit("polyak: POLYAK_OPENMP=0 contradicts POLYAK_REQUIRE_OPENMP=1")
        return [], []
    candidates = [["-fopenmp"], ["-Xpreprocessor", "-fopenmp"]]
    if sys.platform == "win32":
        candidates = [["/openmp"]]
    for flags in candidates:
        link = [] if sys.platform == "win32" else ["-fopenmp"]
        if flags[0] == "-Xpreprocessor":
            link = ["-lomp"]
        if _compiles(OPENMP_PROBE, flags, link):
            return flags, link
    message = "polyak: the C compiler cannot build an OpenMP program; kernels will run on one thread"
    if _env_flag("POLYAK_REQUIRE_OPENMP"):
        sys.exit(message + " (POLYAK_REQUIRE_OPENMP=1 makes this an error)")
    warnings.warn(message)
    return [], []


def optimization_flags():
    """-O3, plus the native instruction set unless POLYAK_PORTABLE=1."""
    if sys.platform == "win32":
        return ["/O2"]
    flags = ["-O3"]
    if not _env_flag("POLYAK_PORTABLE") and _compiles("int main(void){return 0;}", ["-march=native"]):
        flags.append("-march=native")
        # GCC tunes some AVX-512 machines for 256-bit vectors; the kernels are compute-bound
        # and gain from the full width.
        if _compiles(AVX512_PROBE, flags + ["-mprefer-vector-width=512"]):
            flags.append("-mprefer-vector-width=512")
    return flags


def extensions():
    omp_compile, omp_link = openmp_flags()
    compile_args = optimization_flags() + omp_compile
    description = " ".join(compile_args).replace('"', "")
    common = dict(
        include_dirs=[numpy.get_include()],
        extra_compile_args=compile_args,
        extra_link_args=omp_link,
        define_macros=[
            ("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION"),
            ("POLYAK_COMPILE_ARGS", f'"{description}"'),
        ],
    )
    modules = sorted(KERNELS.glob("*.pyx"))
    return [
        Extension(f"polyak._kernels.{path.stem}", [str(path)], **common) for path in modules
    ]


setup(
    ext_modules=cythonize(
        extensions(),
        language_level=3,
        include_path=["src"],
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )
)
