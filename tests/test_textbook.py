"""The textbook's numbers (Dive into Deep Learning, "Momentum"), reproduced by the kernel; the CLI.

The command line is argparse subcommands: ``polyak`` (the textbook's table), ``polyak
textbook --steps N`` and ``polyak config``; bad arguments exit with status 2 and a message.
"""

import re

import numpy as np
import pytest

import polyak
from polyak.cli import main, textbook_table

START = (-5.0, -2.0)


@pytest.mark.parametrize(
    "rule, expected",
    [
        (polyak.Momentum(0.6, 0.5), (0.007188, 0.002553)),
        (polyak.Momentum(0.6, 0.25), (-0.126340, -0.186632)),
        (polyak.GD(0.4), (-0.943467, -0.000073)),
        (polyak.Momentum(0.4, 0.5, convention="mxnet"), (-0.062843, 0.001202)),
    ],
)
def test_textbook_end_points(rule, expected):
    result = polyak.run(polyak.problems.ill_conditioned_2d(), rule, START, 20)
    np.testing.assert_allclose(result.x, expected, atol=5e-7)
    assert not result.diverged


def test_gd_lr_06_grows_like_1_4_to_the_t():
    result = polyak.run(polyak.problems.ill_conditioned_2d(), polyak.GD(0.6), START, 20)
    assert result.x[1] == pytest.approx(-1673.37, abs=0.005)
    # x2 is multiplied by 1 - 0.6*4 = -1.4 at every step
    assert result.x[1] == pytest.approx(-2.0 * (-1.4) ** 20, rel=1e-12)
    assert not result.diverged  # finite and below the bound after 20 steps


def test_textbook_table_marks_only_gd_06_as_diverging():
    lines = textbook_table()
    runs = [line for line in lines if "epoch 20" in line]
    assert len(runs) == 5
    diverging = [line for line in runs if "diverges" in line]
    assert len(diverging) == 1 and "lr 0.6" in diverging[0] and "gradient descent" in diverging[0]
    assert any("epoch 20, x1: 0.007188, x2: 0.002553" in line for line in runs)
    assert any("epoch 20, x1: -0.126340, x2: -0.186632" in line for line in runs)


def test_main_prints_the_table(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "epoch 20, x1: -0.943467, x2: -0.000073" in out
    assert "x2: -1673.365109" in out


def test_main_config(capsys):
    assert main(["config"]) == 0
    assert "openmp" in capsys.readouterr().out


def test_main_textbook_steps(capsys):
    assert main(["textbook", "--steps", "5"]) == 0
    out = capsys.readouterr().out
    assert "5 steps" in out and "epoch 20" not in out
    assert len([line for line in out.splitlines() if "epoch 5," in line]) == 5
    # gradient descent multiplies xᵢ by 1 − lr·λᵢ per step, λ = (0.2, 4)
    assert f"epoch 5, x1: {-5 * 0.92 ** 5:f}, x2: {-2 * (-0.6) ** 5:f}" in out  # lr 0.4
    assert f"epoch 5, x1: {-5 * 0.88 ** 5:f}, x2: {-2 * (-1.4) ** 5:f}" in out  # lr 0.6


def test_main_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: polyak" in out and re.search(r"^\s+textbook\s", out, re.M) and re.search(r"^\s+config\s", out, re.M)


@pytest.mark.parametrize("argv, message", [
    (["textbook", "--steps", "-1"], "argument --steps: must be an integer from 0 to 4611686018427387904 (2**62); got -1"),
    (["textbook", "--steps", str(10**30)], f"must be an integer from 0 to 4611686018427387904 (2**62); got {10**30}"),
    (["textbook", "--steps", "many"], "argument --steps: must be an integer from 0 to 4611686018427387904 (2**62); got 'many'"),
    (["fly"], "invalid choice: 'fly'"),
])
def test_main_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_steps_without_the_command_name(capsys):
    assert main(["--steps", "3"]) == 0
    assert "3 steps" in capsys.readouterr().out
