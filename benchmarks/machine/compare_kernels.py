"""Compare the run kernels of this build with those of another (e.g. before a change), round robin.

    mkdir /tmp/before && cp src/polyak/_kernels/_{diagonal,dense,train}*.so /tmp/before/  # then change, rebuild
    OPENBLAS_NUM_THREADS=1 python benchmarks/machine/compare_kernels.py /tmp/before x86-64-v4 2 [train]

For each workload, the kernel module of each build is called directly (the same inputs, the
outputs preallocated), every timing paired with the level's multiply-add probe; printed: the
median over the rounds of each build's rate / probe, and the median of the paired ratios
this build / other build. Keyword arguments that the other build's kernels do not take
(the stop flag and the saved-state workspace, new in issue 9) are left out for it.
Workloads (heavy ball; float64 but Airfoil's float32): diagonal B=4096, n=256, T=1000 (test_bench_diagonal's);
dense shared Q, B=n=512, T=50; dense Q per problem, B=64, n=64, T=500; training on Airfoil,
64 configurations, 20 epochs. A last argument keeps the workloads whose name contains it.
"""

import glob
import importlib.util
import sys
import time

import numpy as np

import polyak
from polyak import _config, execution

ROUNDS = int(__import__("os").environ.get("ROUNDS", "9"))


def _load(directory, name, level):
    module = f"polyak._kernels.{name}{_config.LEVEL_SUFFIX[level]}"
    path = glob.glob(f"{directory}/{name}{_config.LEVEL_SUFFIX[level]}.cpython*.so")[0]
    spec = importlib.util.spec_from_file_location(module, path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def _workloads(threads):
    """(name, module name, function name, keyword arguments, multiply-adds per run)."""
    rng = np.random.default_rng(0)
    runs = []

    def state(job):
        arguments = execution._state(job, job.dtype)
        arguments["stop"] = np.zeros(1, np.intc)
        return arguments

    job = polyak.plan(polyak.Quadratic.diagonal(rng.uniform(0.01, 1.0, (4096, 256))), polyak.Momentum(3.3, 0.67),
                      np.ones(256), 1000)
    runs.append(("diagonal B=4096 n=256 T=1000", "_diagonal", "run_diagonal",
                 dict(lam=job.problem.lam, c=job.problem.c, b=job.problem.b, every=1, n_threads=threads, **state(job)),
                 3 * 4096 * 256 * 1000))
    for name, B, n, T, shared in (("dense shared B=n=512 T=50", 512, 512, 50, True),
                                  ("dense batched B=64 n=64 T=500", 64, 64, 500, False)):
        M = rng.normal(size=(n, n) if shared else (B, n, n))
        Q = M @ np.swapaxes(M, -1, -2) / n + 0.01 * np.eye(n)
        job = polyak.plan(polyak.Quadratic.dense(Q, np.zeros((B, n)) if shared else None),
                          polyak.Momentum(0.5 / np.max(np.linalg.eigvalsh(Q)), 0.9), np.ones(n), T)
        runs.append((name, "_dense", "run_dense_shared" if shared else "run_dense_batched",
                     dict(Q=job.problem.Q, c=job.problem.c, b=job.problem.b, g=np.empty((B, n)),
                          saved=np.empty((B, 2 * n)), every=1, n_threads=1 if shared else threads, **state(job)),
                     B * n * n * T))
    X, y = polyak.data.airfoil()
    problem = polyak.train.MinibatchLeastSquares.shuffled(X, y, batch_size=10, epochs=20, seed=0, record_every=200)
    job = polyak.plan(problem, polyak.Momentum(np.linspace(0.001, 0.02, 64), 0.9),
                      polyak.train.MinibatchLeastSquares.initial_weights(X.shape[1], 0), problem.max_steps,
                      dtype=problem.dtype)
    arguments = state(job)
    del arguments["trajectory"], arguments["problem_index"]
    runs.append(("train Airfoil 64 configurations 20 epochs", "_train", "train_linear",
                 dict(X=problem.X, y=problem.y, order=problem.order, batch_size=10, record_every=200,
                      n_threads=threads, **arguments), 64 * job.steps * 10 * X.shape[1] * 2))
    return runs


def _call(function, arguments):
    try:
        function(**arguments)
    except TypeError as error:
        if "unexpected keyword argument" not in str(error):
            raise
        function(**{k: v for k, v in arguments.items() if k not in ("stop", "saved")})


def main(other, level, threads, only=""):
    with _config.use_level(level):
        probe = _config.kernels("_probe")
        workloads = _workloads(threads)
        for name, module, function, arguments, work in workloads:
            if only not in name:
                continue
            this = getattr(_config.kernels(module), function)
            that = getattr(_load(other, module, level), function)
            rates = {"this": [], "other": []}
            for round_ in range(ROUNDS):
                order = (("this", this), ("other", that))
                for build, kernel in order if round_ % 2 == 0 else order[::-1]:  # no first-mover bias
                    peak = probe.multiply_add_rate(threads, 1_000_000)
                    start = time.perf_counter()
                    _call(kernel, arguments)
                    rates[build].append(work / (time.perf_counter() - start) / peak)
            ratio = np.array(rates["this"]) / np.array(rates["other"])
            print(f"{level}, {threads} thread(s), {name}: fraction of the probe this build "
                  f"{np.median(rates['this']):.3f}, other {np.median(rates['other']):.3f}; paired ratio "
                  f"this/other median {np.median(ratio):.3f} (quartiles {np.percentile(ratio, 25):.3f}-"
                  f"{np.percentile(ratio, 75):.3f})")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:5])
