"""The machine's memory bandwidth as NumPy sees it: copy and triad over arrays far larger than L3.

    python benchmarks/machine/bandwidth.py

Counts the bytes each operation must move (copy: read + write; triad a = b + s·c: two reads
and a write) and prints the best of several repeats in GB/s (one thread: NumPy's loops).
"""

import time

import numpy as np

N = 2**25  # 256 MiB per float64 array


def best_seconds(function, repeats=7):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    a, b, c = np.ones(N), np.ones(N), np.ones(N)
    copy = best_seconds(lambda: np.copyto(a, b))
    scratch = np.empty(N)

    def triad():
        np.multiply(c, 3.0, out=scratch)
        np.add(b, scratch, out=a)

    triad_seconds = best_seconds(triad)
    print(f"copy : {2 * a.nbytes / copy / 1e9:6.1f} GB/s")
    print(f"triad: {5 * a.nbytes / triad_seconds / 1e9:6.1f} GB/s (NumPy needs two passes: 5 arrays' worth of traffic)")


if __name__ == "__main__":
    main()
