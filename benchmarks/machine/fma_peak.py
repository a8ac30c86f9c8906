"""The machine's multiply-add ceiling at each instruction-set level polyak was built for.

    python benchmarks/machine/fma_peak.py

Runs the probe compiled with each level's kernels (``polyak._kernels._probe``: independent
chains of vector multiply-adds kept in registers, at that level's vector width) on one
thread and on all, and prints the best of several repeats: multiply-adds per second per
vector lane, and the matching ceiling of the diagonal kernel in coordinate-steps per second
(the heavy ball's update costs 3 multiply-adds per coordinate-step). The benchmarks measure
the same probe interleaved with the kernel (benchmarks/test_bench_diagonal.py), which is the
comparison to trust on a machine whose speed drifts.
"""

import polyak
from polyak._config import kernels, supported_levels, use_level


def main():
    threads = polyak.show_config(print_out=False)["max_threads"]
    print(f"CPU levels this machine runs: {', '.join(supported_levels())}")
    for level in supported_levels():
        with use_level(level):
            probe = kernels("_probe")
            for count in sorted({1, threads}):
                best = max(probe.multiply_add_rate(count) for _ in range(5))
                print(f"{level:>10} ({probe.vector_bytes() * 8}-bit vectors), {count} thread(s): "
                      f"{best / 1e9:7.1f} G multiply-adds/s = {2 * best / 1e9:7.1f} GFLOP/s float64 "
                      f"= {best / 3e9:5.1f} G coordinate-steps/s at 3 per step")


if __name__ == "__main__":
    main()
