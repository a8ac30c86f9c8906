"""Training on the Airfoil data: 1000 configurations in one kernel against a NumPy loop for one.

2 epochs, batch size 10, loss recorded every 200 examples, float32 (the textbook's setup).
"numpy-loop" is the textbook's per-minibatch loop (polyak.train.train_from_scratch, with
sgd_momentum) for ONE configuration; "kernel-1000" trains 1000 (lr, momentum) configurations. The speedup per
configuration is 1000 × t(numpy-loop) / t(kernel-1000).

    pytest benchmarks/test_bench_train.py --benchmark-only --benchmark-json=train.json
    python benchmarks/report.py train.json
"""

import numpy as np
import pytest

import polyak
from polyak.train import linear_regression, train_from_scratch

CONFIGURATIONS = 1000


@pytest.mark.parametrize("implementation", ["numpy-loop", "kernel-1000"])
def test_train_airfoil(benchmark, implementation):
    X, y = polyak.data.airfoil()
    rng = np.random.default_rng(0)
    lr, momentum = rng.uniform(0.001, 0.03, CONFIGURATIONS), rng.uniform(0.0, 0.9, CONFIGURATIONS)
    lr[0], momentum[0] = 0.01, 0.9
    one = polyak.Momentum(0.01, 0.9)
    if implementation == "numpy-loop":
        losses, _, _ = train_from_scratch(X, y, 0.01, 0.9)
        np.testing.assert_allclose(losses, linear_regression(X, y, one).loss, rtol=1e-4)

        def function():
            return train_from_scratch(X, y, 0.01, 0.9)
    else:
        rule = polyak.Momentum(lr, momentum)

        def function():
            return linear_regression(X, y, rule)

        np.testing.assert_allclose(function().loss[0], linear_regression(X, y, one).loss, rtol=1e-6)
    benchmark.group = f"linear regression on Airfoil, 2 epochs, float32 (configurations: 1 vs {CONFIGURATIONS})"
    benchmark.pedantic(function, rounds=5, iterations=1, warmup_rounds=1)
