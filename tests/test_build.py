"""The compiled extension is the one in use, and (where the build requires it) OpenMP is on."""

import os
from pathlib import Path

import pytest

import polyak
from polyak._kernels import _build, _diagonal


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


@pytest.mark.skipif(os.environ.get("POLYAK_REQUIRE_OPENMP") != "1", reason="the build does not require OpenMP")
def test_openmp_is_on():
    config = polyak.show_config(print_out=False)
    assert config["openmp"], "built without OpenMP although POLYAK_REQUIRE_OPENMP=1"
    assert "openmp" in config["compile_args"]
    assert config["max_threads"] >= 1
    result = polyak.run(polyak.Quadratic.diagonal([[1.0]] * 4), polyak.GD(0.1), [1.0], 1, n_threads=2)
    assert result.n_threads == 2
