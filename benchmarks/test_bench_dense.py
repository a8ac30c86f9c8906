"""Dense quadratics with one Q shared by the batch: the whole run against the BLAS product alone.

B = 512 problems, n = 512, T = 200 steps, float64, heavy ball with η = 1/L, β = 0.9. Each
step of a run is one matrix product G = X Q for the batch plus the update; "blas-product"
times just the 200 products, through the same BLAS (scipy.linalg.blas.dgemm, the library
scipy.linalg.cython_blas calls), on the same shapes, in the same run. The target is a run at
>= 90 % of the product's rate; the kernel's row also records that fraction measured on
alternating timings (extra_info "fraction_of_blas_rate"), which the machine's drift cannot
bias.

    pytest benchmarks/test_bench_dense.py --benchmark-only --benchmark-json=dense.json
    python benchmarks/report.py dense.json
"""

import functools
import time

import numpy as np
import pytest
from scipy.linalg import blas

import polyak

B, N, STEPS = 512, 512, 200
FLOPS = 2 * B * N * N * STEPS


@functools.cache
def workload():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(N, N))
    Q = a @ a.T / N
    problem = polyak.Quadratic.dense(Q, c=np.zeros((B, N)))
    rule = polyak.Momentum(1.0 / np.linalg.eigvalsh(Q)[-1], 0.9)
    x0 = rng.normal(size=(B, N))
    expected = polyak.run(problem, rule, x0, STEPS, implementation="reference")
    assert not expected.diverged.any()
    return problem, rule, x0, expected.x


def blas_products(problem, x0):
    """The run's matrix products alone: G = X Q, STEPS times (column-major: Gᵀ = Q Xᵀ)."""
    q, xt = np.asfortranarray(problem.Q), np.asfortranarray(x0.T)
    g = np.zeros((N, B), order="F")
    for _ in range(STEPS):
        g = blas.dgemm(1.0, q, xt, beta=0.0, c=g, overwrite_c=True)
    return g.T


def interleaved_fraction(problem, x0, run, pairs=7):
    """Median over alternating timings of (products alone) / (whole run): the machine's
    drift (other tenants, BLAS threads left spinning) hits both sides alike."""
    ratios = []
    for _ in range(pairs):
        start = time.perf_counter()
        blas_products(problem, x0)
        middle = time.perf_counter()
        run()
        ratios.append((middle - start) / (time.perf_counter() - middle))
    return float(np.median(ratios))


@pytest.mark.parametrize("implementation", ["blas-product", "kernel", "reference"])
def test_dense_shared(benchmark, implementation):
    problem, rule, x0, expected = workload()
    if implementation == "blas-product":
        np.testing.assert_allclose(blas_products(problem, x0), x0 @ problem.Q, rtol=1e-12, atol=1e-12)

        def function():
            return blas_products(problem, x0)
    else:
        def function():
            return polyak.run(problem, rule, x0, STEPS, implementation=implementation).x

        if implementation == "kernel":
            np.testing.assert_allclose(function(), expected, rtol=1e-11, atol=1e-12)
            benchmark.extra_info["fraction_of_blas_rate"] = interleaved_fraction(problem, x0, function)
    benchmark.group = f"dense shared Q, B={B} n={N} T={STEPS} float64 (GFLOP/s of the products)"
    time.sleep(0.5)  # let BLAS threads left spinning by the checks above go idle first
    benchmark.extra_info["flops"] = FLOPS
    benchmark.pedantic(function, rounds=3 if implementation == "reference" else 7, iterations=1, warmup_rounds=1)
