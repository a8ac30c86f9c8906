"""Sweeps past memory and past one process: streaming to a Zarr store, its cost, Dask's.

The textbook's problem (λ = 0.2, 4, from ones), d2l heavy ball, T = 1000, tol = 1e-6 tracked,
learning rates 0.01 to 1.5 × 2/L, momenta 0 to 0.99, 2 threads.

- `test_hundred_million_configurations_to_zarr`: a 10⁴ × 10⁴ grid (10⁸ configurations, 2.5 GB
  of metrics) streamed to a Zarr store by a fresh process: its time, configurations/s and
  peak resident memory (``ru_maxrss``), which must stay below 1 GB.
- `test_storing_against_the_in_memory_sweep`: 1000 × 10⁴ (10⁷ configurations), the same sweep
  in memory and into a Zarr store, interleaved; the median of the paired ratios.
- `test_dask_against_the_local_sweep`: the 10⁷ sweep on a `LocalCluster` of 2 worker processes
  (1 thread each) against the local sweep on 2 threads, interleaved.

With ``--benchmark-disable`` (as in CI) each runs once on a grid a hundred times smaller.

    pytest benchmarks/test_bench_sweep_store.py --benchmark-only --benchmark-json=store.json
"""

import json
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import polyak

pytest.importorskip("zarr")
STEPS, TOL = 1000, 1e-6
PROBLEM = polyak.problems.ill_conditioned_2d()


def axes(lr_count, beta_count):
    return dict(lr=np.linspace(0.01, 1.5 * 2 / 4.0, lr_count), beta=np.linspace(0.0, 0.99, beta_count))


def shrink(benchmark, lr_count, beta_count):
    """The grid's axes, a hundred times fewer configurations when not timing."""
    return (lr_count // 10, beta_count // 10) if benchmark.disabled else (lr_count, beta_count)


CHILD = """
import json, resource, sys, time, numpy as np, polyak
lr_count, beta_count, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
start = time.perf_counter()
result = polyak.sweep(polyak.problems.ill_conditioned_2d(), {steps}, lr=np.linspace(0.01, 0.75, lr_count),
                      beta=np.linspace(0.0, 0.99, beta_count), tol={tol}, store=path, progress=False)
wall = time.perf_counter() - start
try:  # this process's own high-water mark (ru_maxrss keeps the parent's across fork and exec)
    with open("/proc/self/status") as status:
        peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except OSError:
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(wall=wall, kernel_seconds=result.seconds, peak_kb=peak_kb,
                      diverged=float(np.mean(result.diverged[::97, ::89])))))
"""


def test_hundred_million_configurations_to_zarr(benchmark, tmp_path):
    lr_count, beta_count = shrink(benchmark, 10**4, 10**4)
    path = tmp_path / "sweep.zarr"
    report = {}

    def stream():
        shutil.rmtree(path, ignore_errors=True)
        code = textwrap.dedent(CHILD.format(steps=STEPS, tol=TOL))
        completed = subprocess.run([sys.executable, "-c", code, str(lr_count), str(beta_count), str(path)],
                                   capture_output=True, text=True, check=True)
        report.update(json.loads(completed.stdout))

    benchmark.pedantic(stream, rounds=1, iterations=1)
    configurations = lr_count * beta_count
    peak = report["peak_kb"] * 1024
    benchmark.extra_info.update(configurations=configurations, wall_seconds=report["wall"],
                                configurations_per_second=configurations / report["wall"], peak_bytes=peak,
                                store_bytes=sum(f.stat().st_size for f in path.rglob("*") if f.is_file()))
    benchmark.group = "sweep into a Zarr store"
    assert peak < 1e9, f"peak resident memory {peak / 1e6:.0f} MB"
    assert polyak.load_sweep(path).shape == (lr_count, beta_count)


def paired(first, second, pairs):
    """Median of second/first over interleaved timings (the order alternating)."""
    ratios = []
    for i in range(pairs):
        times = {}
        for name, call in ((("first", first), ("second", second)) if i % 2 == 0 else
                           (("second", second), ("first", first))):
            start = time.perf_counter()
            call()
            times[name] = time.perf_counter() - start
        ratios.append(times["second"] / times["first"])
    return float(np.median(ratios)), ratios


def test_storing_against_the_in_memory_sweep(benchmark, tmp_path):
    grid = axes(*shrink(benchmark, 1000, 10**4))
    path = tmp_path / "sweep.zarr"

    def in_memory():
        return polyak.sweep(PROBLEM, STEPS, tol=TOL, **grid)

    def stored():
        shutil.rmtree(path, ignore_errors=True)
        return polyak.sweep(PROBLEM, STEPS, tol=TOL, store=path, **grid)

    if not benchmark.disabled:
        in_memory(), stored()  # (warm)
        ratio, ratios = paired(in_memory, stored, pairs=8)
        benchmark.extra_info.update(store_over_memory=ratio, ratios=ratios)
    benchmark.group = "sweep into a Zarr store"
    benchmark.pedantic(stored, rounds=1, iterations=1)
    np.testing.assert_array_equal(polyak.load_sweep(path).steps_to_tol, in_memory().steps_to_tol)


def test_dask_against_the_local_sweep(benchmark):
    distributed = pytest.importorskip("distributed")
    grid = axes(*shrink(benchmark, 1000, 10**4))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:

        def local():
            return polyak.sweep(PROBLEM, STEPS, tol=TOL, n_threads=2, **grid)

        def on_dask():
            return polyak.sweep(PROBLEM, STEPS, tol=TOL, client=client, n_threads=1, **grid)

        if not benchmark.disabled:
            local(), on_dask()  # (warm: the workers import polyak)
            ratio, ratios = paired(local, on_dask, pairs=6)
            benchmark.extra_info.update(dask_over_local=ratio, ratios=ratios)
        benchmark.group = "sweep on Dask (LocalCluster, 2 processes)"
        result = benchmark.pedantic(on_dask, rounds=1, iterations=1)
        np.testing.assert_array_equal(result.final_loss, local().final_loss)
