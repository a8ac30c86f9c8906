"""The build: compiled extensions, one set of kernels per instruction-set level, chosen at import.

Tested here:

- the kernels are compiled extensions inside the package, and ``show_config`` reports the
  build (``compile_args`` with -O3, OpenMP where the build requires it);
- the levels: ``baseline`` always, and on x86-64 with GCC or Clang ``x86-64-v3`` and
  ``x86-64-v4`` (or the levels a development build named in POLYAK_CPU_LEVELS); every kernel
  module exists for every built level (``_build`` once); each level's ``_probe`` reports its
  level, vector width and -march;
- the choice: by default the highest level this CPU supports; ``POLYAK_CPU_LEVEL=<level>``
  forces one (in subprocesses: the same answers to 1e-12); a bogus or unbuilt level fails
  the import with an ImportError naming the variable and the levels;
  ``polyak._config.use_level`` switches and restores; ``cpu_supports`` agrees with the CPU
  flags Linux reports;
- ``ctypedef int blas_int`` in _dense.pyx is the integer SciPy's cython_blas.pxd declares for
  dgemm's sizes.
"""

import importlib
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg

import polyak
from polyak import _config
from polyak._kernels import _build, _diagonal

KERNELS = Path(polyak.__file__).parent / "_kernels"
#: The modules compiled once per level.
PER_LEVEL = ("_diagonal", "_dense", "_train", "_sgd", "_probe", "_sweep", "_nqm")
X86_LEVELS = ("baseline", "x86-64-v3", "x86-64-v4")
#: Each level's vector width in bytes and the flag that targets it (or the fallback flag
#: setup.py uses with a compiler that does not know the level's name).
X86_TARGETS = {"baseline": (16, "-march=x86-64", None), "x86-64-v3": (32, "-march=x86-64-v3", "-mavx2"),
               "x86-64-v4": (64, "-march=x86-64-v4", "-mavx512f")}
BUILT = _build.built_levels()
SUPPORTED = _config.supported_levels()
GNU_X86 = (platform.machine().lower() in {"x86_64", "amd64"} and sys.platform != "win32"
           and re.search(r"gcc|clang", os.path.basename((sysconfig.get_config_var("CC") or "").split(" ")[0])))
needs_gnu_x86 = pytest.mark.skipif(not GNU_X86, reason="the x86-64 levels are built on x86-64 with GCC or Clang")

#: Run in a subprocess: the configuration and a few answers of every kernel module.
SCRIPT = """
import json, numpy as np, polyak
rng = np.random.default_rng(0)
diagonal = polyak.run(polyak.Quadratic.diagonal(rng.uniform(0.1, 4.0, (3, 37)), rng.normal(size=(3, 37))),
                      polyak.Momentum(0.1, 0.9, nesterov=True), np.ones(37), 200, record="loss")
M = rng.normal(size=(5, 5))
dense = polyak.run(polyak.Quadratic.dense(M @ M.T / 5 + np.eye(5), rng.normal(size=(4, 5))),
                   polyak.Momentum([0.1, 0.2, 0.3, 0.4], 0.5), np.ones(5), 200)
X = rng.normal(size=(50, 3))
training = polyak.train.linear_regression(X, X @ [1.0, 2.0, 3.0], polyak.Momentum(0.05, 0.9), record_every=10)
params = [np.linspace(-1.0, 1.0, 1000)]
optimizer = polyak.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True)
for _ in range(3):
    optimizer.step([params[0] ** 2])
answers = [diagonal.x, diagonal.loss, dense.x, training.x, training.loss, params[0]]
print(json.dumps({"config": polyak.show_config(print_out=False), "answers": [a.tolist() for a in answers]}))
"""


def run_polyak(level, script=SCRIPT):
    """`script` in a fresh interpreter with POLYAK_CPU_LEVEL=`level` (unset for None)."""
    env = {key: value for key, value in os.environ.items() if key != _config.LEVEL_VARIABLE}
    if level is not None:
        env[_config.LEVEL_VARIABLE] = level
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def default_run():
    completed = run_polyak(None)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def expected_levels():
    # the levels the build was asked for (its POLYAK_CPU_LEVELS switch), or every one
    return {"baseline", *(_build.asked_levels() or X86_LEVELS)}


def module_name(stem, level):
    return f"polyak._kernels.{stem}{_config.LEVEL_SUFFIX[level]}"


def test_kernels_are_compiled_extensions_inside_the_package():
    package = Path(polyak.__file__).parent
    for module in (_build, _diagonal):
        path = Path(module.__file__)
        assert path.suffix in {".so", ".pyd"}, path
        assert path.parent == package / "_kernels"


def test_show_config_reports_the_build(capsys):
    config = polyak.show_config()
    out = capsys.readouterr().out
    assert config["version"] == polyak.__version__
    assert isinstance(config["openmp"], bool) and config["max_threads"] >= 1
    assert "-O3" in config["compile_args"]
    assert "openmp" in out and "compile_args" in out
    assert polyak.show_config(print_out=False) == config
    assert capsys.readouterr().out == ""


def test_show_config_lists_the_levels():
    config = polyak.show_config(print_out=False)
    assert config["cpu_levels_built"] == list(BUILT) and BUILT[0] == "baseline"
    assert config["cpu_levels_supported"] == [level for level in BUILT if _build.cpu_supports(level)]
    assert config["cpu_level"] == _config.level() and config["cpu_level"] in config["cpu_levels_supported"]
    assert Path(config["extension"]).name.startswith("_probe" + _config.LEVEL_SUFFIX[config["cpu_level"]] + ".")
    # the vector width each level is compiled for
    assert config["simd_bits"] == {"baseline": 128, "x86-64-v3": 256, "x86-64-v4": 512}.get(config["cpu_level"],
                                                                                          config["simd_bits"])


@pytest.mark.skipif(os.environ.get("POLYAK_REQUIRE_OPENMP") != "1", reason="the build does not require OpenMP")
def test_openmp_is_on():
    config = polyak.show_config(print_out=False)
    assert config["openmp"], "built without OpenMP although POLYAK_REQUIRE_OPENMP=1"
    assert "openmp" in config["compile_args"]
    assert config["max_threads"] >= 1
    result = polyak.run(polyak.Quadratic.diagonal([[1.0]] * 4), polyak.GD(0.1), [1.0], 1, n_threads=2)
    assert result.n_threads == 2


@needs_gnu_x86
def test_the_x86_levels_are_built():
    assert set(BUILT) >= expected_levels(), f"built {BUILT}; asked for {_build.asked_levels()}"
    assert list(BUILT) == [level for level in (*X86_LEVELS, "native") if level in BUILT]  # lowest first


@pytest.mark.parametrize("level", BUILT)
@pytest.mark.parametrize("stem", PER_LEVEL)
def test_every_kernel_module_exists_for_every_level(stem, level):
    path = Path(importlib.import_module(module_name(stem, level)).__file__)
    assert path.suffix in {".so", ".pyd"} and path.parent == KERNELS, path
    assert path.name.startswith(f"{stem}{_config.LEVEL_SUFFIX[level]}.")


def test_build_module_is_compiled_once():
    for level in BUILT:
        if level != "baseline":
            assert importlib.util.find_spec(module_name("_build", level)) is None, level


@pytest.mark.parametrize("level", BUILT)
def test_each_probe_reports_its_level(level):
    probe = importlib.import_module(module_name("_probe", level))
    assert probe.level() == level
    assert "-O3" in probe.compile_args().split()
    if level in X86_TARGETS and GNU_X86:
        width, march, fallback = X86_TARGETS[level]
        assert probe.vector_bytes() == width
        flags = probe.compile_args().split()
        assert march in flags or fallback in flags, flags


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists() or not GNU_X86, reason="reads Linux's x86 CPU flags")
def test_cpu_supports_agrees_with_the_cpu_flags():
    flags = set(re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(), re.M).group(1).split())
    v3 = {"avx", "avx2", "fma", "bmi1", "bmi2"} <= flags
    v4 = v3 and {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= flags
    assert (_build.cpu_supports("x86-64-v3"), _build.cpu_supports("x86-64-v4")) == (v3, v4)
    assert _build.cpu_supports("baseline")
    with pytest.raises(ValueError, match="unknown instruction-set level"):
        _build.cpu_supports("x86-64-v9")


def test_default_level_is_the_highest_supported(default_run):
    config = default_run["config"]
    assert config["cpu_level"] == config["cpu_levels_supported"][-1] == SUPPORTED[-1]
    assert config["cpu_levels_built"] == list(BUILT) and config["cpu_levels_supported"] == list(SUPPORTED)


@pytest.mark.parametrize("level", SUPPORTED)
def test_forced_level_gives_the_same_answers(level, default_run):
    completed = run_polyak(level)
    assert completed.returncode == 0, completed.stderr
    forced = json.loads(completed.stdout)
    assert forced["config"]["cpu_level"] == level
    assert Path(forced["config"]["extension"]).name.startswith(f"_probe{_config.LEVEL_SUFFIX[level]}.")
    for answer, expected in zip(forced["answers"], default_run["answers"], strict=True):
        np.testing.assert_allclose(answer, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("level", ["bogus", *(level for level in _config.LEVEL_SUFFIX if level not in BUILT)])
def test_unknown_or_unbuilt_level_fails_the_import(level):
    completed = run_polyak(level, "import polyak")
    assert completed.returncode != 0
    last = completed.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError:") and f"POLYAK_CPU_LEVEL={level!r}" in last, last
    assert all(built in last for built in BUILT), last


def test_use_level_switches_and_restores():
    before = _config.level()
    problem, rule = polyak.Quadratic.diagonal(np.linspace(0.1, 4.0, 37)), polyak.Momentum(0.3, 0.8)
    expected = polyak.run(problem, rule, np.ones(37), 100).x
    for level in SUPPORTED:
        with _config.use_level(level):
            assert _config.level() == level and polyak.show_config(print_out=False)["cpu_level"] == level
            assert _config.kernels("_diagonal").__name__ == module_name("_diagonal", level)
            np.testing.assert_allclose(polyak.run(problem, rule, np.ones(37), 100).x, expected, rtol=1e-12, atol=1e-15)
        assert _config.level() == before
    with pytest.raises(RuntimeError), _config.use_level("baseline"):
        raise RuntimeError
    assert _config.level() == before
    with pytest.raises(ValueError, match="not built or not supported"), _config.use_level("bogus"):
        pass


def test_blas_int_is_the_integer_scipy_declares_for_dgemm():
    ours = re.search(r"^ctypedef (\w+) blas_int\s*$", (KERNELS / "_dense.pyx").read_text(), re.M).group(1)
    pxd = (Path(scipy.linalg.__file__).parent / "cython_blas.pxd").read_text()
    typedefs = dict((alias, kind) for kind, alias in re.findall(r"^ctypedef (.+) (\w+)\s*$", pxd, re.M))
    arguments = re.search(r"^cdef void dgemm\(([^)]*)\)", pxd, re.M).group(1).split(",")
    pairs = (re.fullmatch(r"(.+)\*(\w+)", argument.strip()).groups() for argument in arguments)  # "int *m"
    declared = {name: kind.strip() for kind, name in pairs}
    sizes = {name: typedefs.get(declared[name], declared[name]) for name in ("m", "n", "k", "lda", "ldb", "ldc")}
    assert ours == "int" and set(sizes.values()) == {ours}, sizes
