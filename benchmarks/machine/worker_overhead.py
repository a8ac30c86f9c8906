"""The cost of running a kernel on the worker thread that makes long runs interruptible.

    python benchmarks/machine/worker_overhead.py THREADS

polyak.execute of test_bench_diagonal's workload (B=4096, n=256, T=1000, float64), once on the
worker thread (execution._call_kernel's interruptible path, forced) and once on the calling
thread, order alternating, each timing paired with the multiply-add probe; prints the median
fraction of the 3-multiply-add ceiling of each and the median (quartiles) of the paired
ratios worker / caller over 24 rounds.
"""

import time, sys, numpy as np, polyak
from polyak import execution, _config
threads = int(sys.argv[1])
B, N, T = 4096, 256, 1000
rng = np.random.default_rng(0)
job = polyak.plan(polyak.Quadratic.diagonal(rng.uniform(0.01, 1, (B, N))), polyak.Momentum(0.3, 0.67), np.ones(N), T)
probe = _config.kernels("_probe")
r = {"worker": [], "caller": []}
for i in range(24):
    order = ["worker", "caller"] if i % 2 == 0 else ["caller", "worker"]
    for name in order:
        execution._INTERRUPTIBLE_WORK = 10**8 if name == "worker" else 10**30
        peak = probe.multiply_add_rate(threads, 1_000_000)
        t = time.perf_counter(); polyak.execute(job, n_threads=threads); r[name].append(3*B*N*T/(time.perf_counter()-t)/peak)
w, c = np.array(r["worker"]), np.array(r["caller"])
print(threads, "thread(s): worker", round(np.median(w), 3), "caller", round(np.median(c), 3), "paired ratio median", round(np.median(w / c), 3), np.round(np.percentile(w/c, [25, 75]), 3))
