"""What sets the conventions apart: equal iterates for a constant lr only, velocities scaled by η.

Every convention against its literal formula is in test_update_variants.py."""

import numpy as np
import pytest
from conftest import literal_run

import polyak

CONVENTIONS = ["d2l", "torch", "mxnet", "goodfellow"]
RNG = np.random.default_rng(7)
LAM = RNG.uniform(0.1, 3.0, 12)
C = RNG.normal(size=12)
X0 = RNG.normal(size=12)


def run_one(rule, steps, **kwargs):
    problem = polyak.Quadratic.diagonal(LAM, C)
    return polyak.run(problem, rule, X0, steps, **kwargs)


@pytest.mark.parametrize("dampening", [0.1, 0.5, 1.0])
def test_torch_dampening_starts_undamped(dampening):
    steps = 25
    rule = polyak.Momentum(0.2, 0.8, convention="torch", dampening=dampening)
    result = run_one(rule, steps)
    x, v = literal_run("torch", LAM, C, X0, np.full(steps, 0.2), 0.8, dampening=dampening)
    np.testing.assert_allclose(result.x, x, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(result.velocity, v, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("nesterov", [False, True])
def test_constant_lr_gives_the_same_iterates(nesterov):
    conventions = ["d2l", "torch", "goodfellow"] + ([] if nesterov else ["mxnet"])
    xs = [run_one(polyak.Momentum(0.3, 0.6, convention=c, nesterov=nesterov), 50).x for c in conventions]
    for x in xs[1:]:
        np.testing.assert_allclose(x, xs[0], rtol=1e-12, atol=1e-14)


def test_velocities_differ_by_lr_and_sign():
    lr = 0.3
    v = {c: run_one(polyak.Momentum(lr, 0.6, convention=c), 30).velocity for c in CONVENTIONS}
    np.testing.assert_allclose(v["torch"], v["d2l"], rtol=1e-12)
    np.testing.assert_allclose(v["mxnet"], lr * v["d2l"], rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(v["goodfellow"], -lr * v["d2l"], rtol=1e-11, atol=1e-15)


@pytest.mark.parametrize(
    "convention, expected", [("d2l", -0.119), ("torch", -0.119), ("mxnet", -0.200), ("goodfellow", -0.200)]
)
def test_schedule_documented_difference(convention, expected):
    # constant gradient 1 (f = θ), lr 0.1 then 0.01, β = 0.9, θ₀ = 0
    problem = polyak.Quadratic.diagonal([0.0], c=[1.0])
    rule = polyak.Momentum(0.1, 0.9, convention=convention, schedule=[1.0, 0.1])
    theta = polyak.run(problem, rule, [0.0], 2).x[0]
    assert theta == pytest.approx(expected, abs=1e-15)


def test_torch_before_its_first_step_has_no_buffer_to_continue_from():
    rule = polyak.Momentum(0.2, 0.7, convention="torch", dampening=0.5)
    empty = run_one(rule, 0)
    assert empty.velocity is None
    continued = polyak.run(polyak.Quadratic.diagonal(LAM, C), rule, empty.x, 3, v0=empty.velocity)
    np.testing.assert_array_equal(continued.x, run_one(rule, 3).x)


def test_per_problem_hyperparameters_equal_separate_runs():
    lrs, betas = np.array([0.1, 0.2, 0.3]), np.array([0.0, 0.5, 0.9])
    batch = run_one(polyak.Momentum(lrs, betas), 40)
    assert batch.x.shape == (3, 12)
    for p in range(3):
        single = run_one(polyak.Momentum(lrs[p], betas[p]), 40)
        np.testing.assert_array_equal(batch.x[p], single.x)
