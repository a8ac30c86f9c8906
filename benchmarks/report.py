"""Turn a pytest-benchmark JSON file into the Markdown tables of BENCHMARKS.md.

    python benchmarks/report.py bench.json

For each group: the median time of each implementation, its speedup over the first
implementation of the group (the NumPy reference) and, where the benchmark says how many
coordinate-steps it does, the rate in G coordinate-steps/s. All figures come from one run.
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
        print("| implementation | median (s) | speedup vs first row | G coordinate-steps/s |")
        print("|---|---:|---:|---:|")
        for bench in benches:
            median = bench["stats"]["median"]
            steps = bench.get("extra_info", {}).get("coordinate_steps")
            rate = f"{steps / median / 1e9:.2f}" if steps else ""
            name = bench["param"] if bench.get("param") else bench["name"]
            print(f"| {name} | {median:.4f} | {baseline / median:.1f}× | {rate} |")
        print()


if __name__ == "__main__":
    main(sys.argv[1])
