"""How far the sweep kernel is from the multiply-add ceiling, quickly, at the level in use.

    [POLYAK_CPU_LEVEL=x86-64-v3] python benchmarks/machine/sweep_fraction.py [THREADS]

polyak.sweep on λ = (0.2, 4) (n = 2, a 1000 × 1000 grid) and on 64 λ geometric in [1e-3, 1]
(a 200 × 200 grid: benchmarks/test_bench_sweep.py runs the full 1000 × 1000), learning rates up
to 1.5 × 2/L, momenta in [0, 0.99], T = 1000, with and without a tolerance; each timing paired
with the probe of the same level; prints the median fraction of the 3-multiply-add ceiling
over 3 pairs.
"""
import sys
import time

import numpy as np

import polyak
from polyak._config import kernels

probe = kernels("_probe")
threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
print(f"level {polyak.show_config(print_out=False)['cpu_level']}, {threads} thread(s)")
for n, lam, G in [(2, np.array([0.2, 4.0]), 1000), (64, np.geomspace(1e-3, 1, 64), 200)]:
    problem = polyak.Quadratic.diagonal(lam)
    lrs, betas = np.linspace(0.01, 1.5 * 2 / lam.max(), G), np.linspace(0, 0.99, G)
    for tol in (1e-6, None):
        ratios = []
        for _ in range(3):
            peak = probe.multiply_add_rate(threads, 1_000_000)
            start = time.perf_counter()
            polyak.sweep(problem, 1000, lr=lrs, beta=betas, tol=tol, n_threads=threads)
            ratios.append(3 * G * G * 1000 * n / (time.perf_counter() - start) / peak)
        print(f"n={n} {G}x{G} tol={tol}: fraction of the 3-multiply-add ceiling, median {np.median(ratios):.3f}")
