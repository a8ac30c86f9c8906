"""Compare builds of the diagonal kernel, round robin, each timing paired with the probe.

    CFLAGS=-DPOLYAK_BLOCK=32 pip install -e . --no-build-isolation   # a build to compare
    cp src/polyak/_kernels/_diagonal_x86_64_v3*.so /tmp/block32.so  # (repeat per variant)
    python benchmarks/machine/compare_builds.py x86-64-v3 1 /tmp/block32.so /tmp/block64.so

Each argument after the level and the thread count is a compiled `_diagonal` module of that
level (the file name of a build, copied away). The workload is test_bench_diagonal.py's
(B=4096, n=256, T=1000, float64, c=0); each timing of a variant is paired with a timing of
the level's multiply-add probe, and the median over 11 rounds of 3 × rate / probe is printed
with its quartiles, so the variants see the same drift of the machine.
"""

import importlib.util
import sys
import time

import numpy as np

import polyak
from polyak import _config, execution

B, N, T = 4096, 256, 1000
MU, L = 0.01, 1.0
LR = 4 / (np.sqrt(L) + np.sqrt(MU)) ** 2
BETA = ((np.sqrt(L / MU) - 1) / (np.sqrt(L / MU) + 1)) ** 2
ROUNDS = 11


def load(path, level):
    spec = importlib.util.spec_from_file_location(f"polyak._kernels._diagonal{_config.LEVEL_SUFFIX[level]}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(level, threads, paths):
    modules = [load(path, level) for path in paths]
    rng = np.random.default_rng(0)
    job = polyak.plan(polyak.Quadratic.diagonal(rng.uniform(MU, L, (B, N))), polyak.Momentum(LR, BETA),
                      np.ones(N), T)
    ratios = [[] for _ in modules]
    original = execution.kernels
    with _config.use_level(level):
        probe = original("_probe")
        try:
            for _ in range(ROUNDS):
                for i, module in enumerate(modules):
                    execution.kernels = lambda name, m=module: m if name == "_diagonal" else original(name)
                    peak = probe.multiply_add_rate(threads, 1_000_000)
                    start = time.perf_counter()
                    polyak.execute(job, n_threads=threads)
                    ratios[i].append(3 * B * N * T / (time.perf_counter() - start) / peak)
        finally:
            execution.kernels = original
    for path, values in zip(paths, ratios):
        print(f"{path}: block {load(path, level).block_width()}, fraction median {np.median(values):.3f} "
              f"(quartiles {np.percentile(values, 25):.3f}-{np.percentile(values, 75):.3f})")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
