"""How far the sweep kernel is from the multiply-add ceiling (issue 10's workloads, smaller grids).

    python benchmarks/machine/sweep_fraction.py THREADS

polyak.sweep on λ = (0.2, 4) (n = 2, a 300 × 300 grid) and on 64 λ geometric in [1e-3, 1]
(a 120 × 120 grid), T = 1000, with and without a tolerance; each timing paired with the
probe; prints coordinate-steps per second and the median fraction of the 3-multiply-add
ceiling (probe / 3) over 5 rounds.
"""
import time, numpy as np, polyak, sys
from polyak._config import kernels
probe = kernels("_probe")
threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
for n, lam in [(2, np.array([0.2, 4.0])), (64, np.geomspace(1e-3, 1, 64))]:
    G = 300 if n == 2 else 120
    problem = polyak.Quadratic.diagonal(lam)
    lrs = np.linspace(0.01, 2 / lam.max() * 1.5, G); betas = np.linspace(0, 0.99, G)
    for tol in (1e-6, None):
        ratios = []
        for _ in range(5):
            peak = probe.multiply_add_rate(threads, 1_000_000)
            t = time.perf_counter(); r = polyak.sweep(problem, 1000, lr=lrs, beta=betas, tol=tol, n_threads=threads); s = time.perf_counter() - t
            ratios.append(G * G * 1000 * n / s / (peak / 3))
        print(f"n={n} tol={tol}: {G*G*1000*n/s/1e9:.2f} G coord-steps/s, fraction of 3-op ceiling median {np.median(ratios):.3f}, diverged {r.diverged.mean():.2f}")
