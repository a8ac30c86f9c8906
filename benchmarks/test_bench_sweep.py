"""Sweeps: a 1000 × 1000 grid of (lr, β), T = 1000, the tolerance tracked, against the ceiling and Numba.

Two spectra: the textbook's n = 2 (λ = 0.2, 4) and n = 64 eigenvalues geometric in [1e-3, 1].
The learning rates run up to 1.5 × the stability limit 2/L of gradient descent (so part of the
grid diverges, as in a real sweep), the momenta over [0, 0.99], d2l convention, tol = 1e-6.

- `test_sweep_fraction_of_ceiling`: ``polyak.sweep`` on the whole grid, each timing paired with
  the multiply-add probe of the same level (``polyak._kernels._probe``); the median over the
  pairs of 3 × (coordinate-steps/s) / (probe multiply-adds/s) is the fraction of the machine's
  ceiling (the heavy ball costs 3 multiply-adds per coordinate-step written the usual way). The
  timing includes everything a user waits for: building the coefficients, the kernel, the rates.
- `test_sweep_against_numba`: the same metrics by a plain Numba ``prange`` loop over the
  configurations, written the obvious way (Numba is the optional peer ``polyak[peers]``:
  skipped when missing), against ``polyak.sweep``, on a 250 × 250 corner-to-corner subgrid so
  that the peer finishes in seconds. Both answers are checked against each other first.

    pytest benchmarks/test_bench_sweep.py --benchmark-only --benchmark-json=sweep.json
    python benchmarks/report.py sweep.json
"""

import functools
import time

import numpy as np
import pytest

import polyak
from polyak._config import kernels

STEPS, TOL, GRID, SUBGRID = 1000, 1e-6, 1000, 250
SPECTRA = {"n=2": np.array([0.2, 4.0]), "n=64": np.geomspace(1e-3, 1.0, 64)}


def axes(name, size):
    lam = SPECTRA[name]
    return np.linspace(0.01, 1.5 * 2 / lam.max(), size), np.linspace(0.0, 0.99, size)


def run_sweep(name, size, **options):
    lrs, betas = axes(name, size)
    return polyak.sweep(polyak.Quadratic.diagonal(SPECTRA[name]), STEPS, lr=lrs, beta=betas, tol=TOL, **options)


@functools.cache
def numba_sweep():
    """The obvious Numba loop: one configuration per prange iteration, x and v per coordinate."""
    numba = pytest.importorskip("numba", reason="Numba is the optional peer: pip install 'polyak[peers]'")

    @numba.njit(parallel=True, cache=False)
    def sweep(lam, lrs, betas, steps, tol, bound):
        G, H, n = lrs.size, betas.size, lam.size
        final_loss = np.empty((G, H))
        steps_to_tol = np.full((G, H), -1, np.int64)
        diverged = np.zeros((G, H), np.bool_)
        for flat in numba.prange(G * H):
            i, j = flat // H, flat % H
            lr, beta = lrs[i], betas[j]
            x, v = np.ones(n), np.zeros(n)
            loss = 0.5 * np.sum(lam * x * x)
            if loss <= tol:
                steps_to_tol[i, j] = 0
            for t in range(steps):
                loss = 0.0
                for k in range(n):
                    v[k] = beta * v[k] + lam[k] * x[k]
                    x[k] -= lr * v[k]
                    loss += 0.5 * lam[k] * x[k] * x[k]
                if steps_to_tol[i, j] < 0 and loss <= tol:
                    steps_to_tol[i, j] = t + 1
                if (t + 1) % 128 == 0 or t + 1 == steps:
                    if not np.all(np.abs(x) <= bound):
                        diverged[i, j] = True
                        break
            final_loss[i, j] = np.inf if diverged[i, j] else loss
        return final_loss, steps_to_tol, diverged

    return sweep


def coordinate_steps(name, size):
    return size * size * STEPS * SPECTRA[name].size


@pytest.mark.parametrize("name", list(SPECTRA))
def test_sweep_fraction_of_ceiling(benchmark, name):
    threads = polyak.show_config(print_out=False)["max_threads"]
    work = coordinate_steps(name, GRID)
    result = run_sweep(name, GRID)
    assert 0 < result.diverged.mean() < 0.5 and (result.steps_to_tol >= 0).any()
    if not benchmark.disabled:  # (the pairs take a while: only when timing)
        probe = kernels("_probe")
        ratios = []
        for _ in range(5):
            peak = probe.multiply_add_rate(threads, 1_000_000)
            start = time.perf_counter()
            run_sweep(name, GRID)
            ratios.append(3 * work / (time.perf_counter() - start) / peak)
        benchmark.extra_info.update(fraction_of_ceiling=float(np.median(ratios)), pairs=len(ratios),
                                    ceiling_coordinate_steps=float(probe.multiply_add_rate(threads) / 3))
    benchmark.extra_info.update(coordinate_steps=work, simd_bits=polyak.show_config(print_out=False)["simd_bits"])
    benchmark.group = f"sweep {GRID}x{GRID} (lr, beta), T={STEPS}, tol={TOL:g}, {name}: against the ceiling"
    benchmark.pedantic(run_sweep, args=(name, GRID), rounds=3, iterations=1, warmup_rounds=0)


SUBGRID_CASES = [(name, implementation) for name in SPECTRA for implementation in ("numba-prange", "polyak.sweep")]


@pytest.mark.parametrize("name, implementation", SUBGRID_CASES, ids=[f"{n}-{i}" for n, i in SUBGRID_CASES])
def test_sweep_against_numba(benchmark, name, implementation):
    peer = numba_sweep()
    lam, (lrs, betas) = SPECTRA[name], axes(name, SUBGRID)
    bound = polyak.plans.DIVERGENCE_BOUND[np.dtype(np.float64)]
    ours = run_sweep(name, SUBGRID)
    final_loss, steps_to_tol, diverged = peer(lam, lrs, betas, STEPS, TOL, bound)
    np.testing.assert_array_equal(diverged, ours.diverged)
    np.testing.assert_allclose(final_loss, ours.final_loss, rtol=1e-7, atol=1e-300)
    near = np.abs(final_loss - TOL) < 1e-6 * TOL  # only where a loss sits within rounding of tol
    assert np.mean(steps_to_tol == ours.steps_to_tol) > 0.999 or near.any()
    benchmark.group = f"sweep {SUBGRID}x{SUBGRID} (lr, beta), T={STEPS}, tol={TOL:g}, {name}: against Numba"
    benchmark.extra_info["coordinate_steps"] = coordinate_steps(name, SUBGRID)
    if implementation == "numba-prange":
        benchmark.pedantic(peer, args=(lam, lrs, betas, STEPS, TOL, bound), rounds=3, iterations=1)
    else:
        benchmark.pedantic(run_sweep, args=(name, SUBGRID), rounds=5, iterations=1, warmup_rounds=1)
