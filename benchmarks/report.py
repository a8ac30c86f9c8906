"""Turn a pytest-benchmark JSON file into the Markdown tables of BENCHMARKS.md.

    python benchmarks/report.py bench.json

For each group: the median time of each implementation, its speedup over the first
implementation of the group and, where the benchmark says how much work it does, the rate
(G coordinate-steps/s, or GFLOP/s of matrix products). All figures come from one run.
"""

import json
import sys
from collections import defaultdict


def main(path):
    with open(path) as handle:
        data = json.load(handle)
    groups = defaultdict(list)
    for bench in data["benchmarks"]:
        groups[bench["group"]].append(bench)
    machine = data["machine_info"]
    print(f"Machine: {machine.get('cpu', {}).get('brand_raw', '?')}, {machine.get('cpu', {}).get('count', '?')} CPUs; "
          f"Python {machine.get('python_version')}; run {data.get('datetime', '?')}\n")
    for group, benches in groups.items():
        baseline = benches[0]["stats"]["median"]
        print(f"### {group}\n")
        print("| implementation | median | speedup vs first row | rate |")
        print("|---|---:|---:|---:|")
        for bench in benches:
            median = bench["stats"]["median"]
            info = bench.get("extra_info", {})
            if "coordinate_steps" in info:
                rate = f"{info['coordinate_steps'] / median / 1e9:.2f} G coordinate-steps/s"
            elif "flops" in info:
                rate = f"{info['flops'] / median / 1e9:.1f} GFLOP/s"
            elif "bytes" in info:
                rate = f"{info['bytes'] / median / 1e9:.1f} GB/s effective"
            else:
                rate = ""
            if "time_vs_torch_fused_interleaved" in info:
                rate += f"; {info['time_vs_torch_fused_interleaved']:.2f}× torch's time, interleaved"
            if "fraction_of_ceiling" in info:
                rate += (f"; {info['fraction_of_ceiling']:.3f} of the ceiling "
                         f"({info['ceiling_coordinate_steps'] / 1e9:.1f} G/s), interleaved")
            if "fraction_of_blas_rate" in info:
                rate += f"; {info['fraction_of_blas_rate']:.2f} of the BLAS rate, interleaved"
            name = bench["param"] if bench.get("param") else bench["name"]
            print(f"| {name} | {_seconds(median)} | {baseline / median:.2f}× | {rate} |")
        print()


def _seconds(value):
    return f"{value:.3f} s" if value >= 1 else f"{value * 1e3:.3g} ms"


if __name__ == "__main__":
    main(sys.argv[1])
