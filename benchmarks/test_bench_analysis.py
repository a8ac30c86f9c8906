"""Closed-form iterates (polyak.analysis.exact_iterates) against running the steps.

n = 1000, T = 10,000, heavy ball at the optimal parameters, one problem: diagonal (the closed
form is O(n)) and dense (the closed form pays one eigendecomposition, O(n³), then O(n)).

    pytest benchmarks/test_bench_analysis.py --benchmark-only --benchmark-json=exact.json
    python benchmarks/report.py exact.json
"""

import functools

import numpy as np
import pytest

import polyak
from polyak import analysis

N, STEPS = 1000, 10_000
MU, L = 0.01, 1.0


@functools.cache
def workload(kind):
    rng = np.random.default_rng(0)
    lam = np.linspace(MU, L, N)
    c = rng.normal(size=N)
    if kind == "diagonal":
        problem = polyak.Quadratic.diagonal(lam, c)
    else:
        rotation, _ = np.linalg.qr(rng.normal(size=(N, N)))
        problem = polyak.Quadratic.dense(rotation @ np.diag(lam) @ rotation.T, c)
    lr, beta, _ = analysis.optimal_parameters(MU, L)
    return problem, polyak.Momentum(lr, beta), rng.normal(size=N)


@pytest.mark.parametrize("kind", ["diagonal", "dense"])
@pytest.mark.parametrize("implementation", ["run", "exact_iterates"])
def test_exact_iterates_against_run(benchmark, kind, implementation):
    problem, rule, x0 = workload(kind)
    ran = polyak.run(problem, rule, x0, STEPS).x
    if implementation == "run":
        def function():
            return polyak.run(problem, rule, x0, STEPS).x
    else:
        def function():
            return analysis.exact_iterates(problem, rule, x0, STEPS).x
    np.testing.assert_allclose(function(), ran, rtol=1e-9, atol=1e-9 * np.max(np.abs(ran)))
    benchmark.group = f"x after T={STEPS} steps, n={N}, {kind}"
    benchmark.pedantic(function, rounds=5, iterations=1, warmup_rounds=1)
