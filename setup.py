"""Declares polyak's Cython extensions; all metadata lives in pyproject.toml.

Every kernel module is compiled once per instruction-set level, and polyak picks the best
level the running CPU supports when it is imported (``polyak.show_config()`` names it), as
NumPy does for its own loops. On x86-64 with GCC or Clang the levels are:

- ``baseline``: x86-64 (SSE2), runs anywhere;
- ``x86-64-v3``: AVX2 + FMA (Haswell, Zen and later);
- ``x86-64-v4``: AVX-512 F/BW/CD/DQ/VL (Skylake-SP, Zen 4 and later), 512-bit vectors.

Elsewhere only the baseline is built (with the compiler's default target). One wheel thus
runs on every x86-64 machine at the speed of its own vector width.

Build switches (environment variables, read at build time):

- ``POLYAK_OPENMP=0``: build without OpenMP (the kernels then run on one thread).
- ``POLYAK_REQUIRE_OPENMP=1``: fail the build when the compiler cannot compile and link
  an OpenMP program (CI sets it), instead of building serially with a warning.
- ``POLYAK_CPU_LEVELS=baseline,x86-64-v3``: build only these levels (the baseline always);
  a faster build for development.
- ``POLYAK_NATIVE=1``: also build a ``native`` level for the building machine's own
  instruction set (``-march=native``), preferred at import. Such a build can crash with an
  illegal instruction on another machine: use it only where it is built.

Each level's module is compiled from a two-line stub that setup.py writes beside the kernel's
.pyx (``_diagonal_x86_64_v3.pyx`` includes ``_diagonal.pyx``); the stubs are git-ignored and
left out of the wheel.
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
from setuptools.command.build_ext import build_ext

KERNELS = Path("src", "polyak", "_kernels")
#: Modules compiled once, for the baseline: what the build is and which CPU runs it (_build),
#: and the fill of a plan's coefficient table (_tables: it moves memory, it computes little).
SINGLE_LEVEL = {"_build", "_tables"}
# Flags of one kernel module (GCC and Clang). _sweep: its per-chunk rates and coefficients
# choose between values computed on both sides; under the default -ftrapping-math GCC keeps
# those choices as branches (a comparison may raise a floating-point exception), and the
# lanes' loops stay scalar: 9 of a 38 ms fixed cost per 10⁶-configuration sweep at
# x86-64-v3. The kernel reads no floating-point exception flags.
MODULE_FLAGS = {"_sweep": ["-fno-trapping-math"]}
#: The x86-64 levels: name -> (module suffix, compiler flags, fallback flags for compilers
#: that do not know the level's name).
X86_LEVELS = {
    "baseline": ("", ["-march=x86-64"], []),
    "x86-64-v3": ("_x86_64_v3", ["-march=x86-64-v3"],
                  ["-mavx2", "-mfma", "-mbmi", "-mbmi2", "-mf16c", "-mlzcnt", "-mmovbe"]),
    "x86-64-v4": ("_x86_64_v4", ["-march=x86-64-v4", "-mprefer-vector-width=512"],
                  ["-mavx2", "-mfma", "-mbmi", "-mbmi2", "-mf16c", "-mlzcnt", "-mmovbe", "-mavx512f",
                   "-mavx512bw", "-mavx512cd", "-mavx512dq", "-mavx512vl", "-mprefer-vector-width=512"]),
}
NATIVE_LEVEL = ("_native", ["-march=native"], [])


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
X86_GNU_PROBE = """
#if !(defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)))
#error "not x86-64 with a GNU-compatible compiler"
#endif
int main(void) { return 0; }
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


#: GCC's inlining limits, raised: the kernels reach their specialized loops through chains of
#: small inline functions whose flags are constants at each call site (see _diagonal.pyx);
#: GCC's default limits leave some of them out of line, with the flags tested at run time.
INLINING = ["--param", "max-inline-insns-single=10000", "--param", "large-function-growth=10000",
            "--param", "inline-unit-growth=1000", "--param", "large-stack-frame-growth=10000"]


def inlining_flags():
    """INLINING where the compiler takes it without a warning (GCC), else nothing."""
    return INLINING if _compiles("int main(void){return 0;}", INLINING + ["-Werror"]) else []


def cpu_levels():
    """{level: (module suffix, flags)} for the levels this build makes, baseline first."""
    if not _compiles(X86_GNU_PROBE, []):
        if _env_flag("POLYAK_NATIVE") or os.environ.get("POLYAK_CPU_LEVELS", "").strip():
            warnings.warn("polyak: POLYAK_NATIVE and POLYAK_CPU_LEVELS apply to x86-64 with GCC or Clang; "
                          "this build makes the baseline only")
        return {"baseline": ("", [])}  # other architectures and compilers: their default target
    wanted = os.environ.get("POLYAK_CPU_LEVELS", "").strip()
    names = [name.strip() for name in wanted.split(",") if name.strip()] if wanted else list(X86_LEVELS)
    unknown = set(names) - set(X86_LEVELS)
    if unknown:
        sys.exit(f"polyak: POLYAK_CPU_LEVELS names unknown levels {sorted(unknown)}; known: {list(X86_LEVELS)}")
    levels = {}
    for name in X86_LEVELS:
        if name != "baseline" and name not in names:
            continue
        suffix, flags, fallback = X86_LEVELS[name]
        if not _compiles("int main(void){return 0;}", flags):
            if not (fallback and _compiles("int main(void){return 0;}", fallback)):
                warnings.warn(f"polyak: the compiler cannot target {name}; that level is not built")
                continue
            flags = fallback
        levels[name] = (suffix, flags)
    if _env_flag("POLYAK_NATIVE"):
        suffix, flags, _ = NATIVE_LEVEL
        if _compiles(AVX512_PROBE, flags):
            flags = flags + ["-mprefer-vector-width=512"]
        levels["native"] = (suffix, flags)
    return levels


def level_source(stem, level, suffix):
    """The Cython source of module `stem` for one level: a generated stub that includes it."""
    if not suffix:
        return KERNELS / f"{stem}.pyx"
    path = KERNELS / f"{stem}{suffix}.pyx"
    text = (f"# Generated by setup.py (not committed): {stem}.pyx compiled for the {level} level.\n"
            f'include "{stem}.pyx"\n')
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def extensions():
    omp_compile, omp_link = openmp_flags()
    # -g0: no debug information (Python's own flags ask for it): the wheel carries every
    # kernel three times, and 4× smaller without it
    optimize = ["/O2"] if sys.platform == "win32" else ["-O3", "-g0", "-fno-math-errno"] + inlining_flags()
    levels = cpu_levels()
    generated = tuple(suffix for suffix, _, _ in [*X86_LEVELS.values(), NATIVE_LEVEL] if suffix)
    stems = sorted(path.stem for path in KERNELS.glob("*.pyx") if not path.stem.endswith(generated))
    modules = []
    for stem in stems:
        for level, (suffix, flags) in levels.items():
            if stem in SINGLE_LEVEL and suffix:
                continue
            compile_args = optimize + flags + omp_compile
            if sys.platform != "win32":
                compile_args = compile_args + MODULE_FLAGS.get(stem, [])
            description = " ".join(compile_args).replace('"', "")
            modules.append(Extension(
                f"polyak._kernels.{stem}{suffix}",
                [str(level_source(stem, level, suffix))],
                include_dirs=[numpy.get_include(), str(KERNELS)],
                extra_compile_args=compile_args,
                extra_link_args=omp_link,
                define_macros=[
                    ("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION"),
                    ("POLYAK_COMPILE_ARGS", f'"{description}"'),
                    ("POLYAK_CPU_LEVEL", f'"{level}"'),
                    ("POLYAK_CPU_LEVELS", '"' + ",".join(levels) + '"'),
                    ("POLYAK_CPU_LEVELS_ASKED", '"' + os.environ.get("POLYAK_CPU_LEVELS", "").strip() + '"'),
                ],
            ))
    return modules


class ParallelBuildExt(build_ext):
    """build_ext compiling the extensions in parallel (one per core) unless told otherwise."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1


setup(
    cmdclass={"build_ext": ParallelBuildExt},
    ext_modules=cythonize(
        extensions(),
        language_level=3,
        include_path=["src"],
        nthreads=os.cpu_count() or 1,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
)
