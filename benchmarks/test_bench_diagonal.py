"""Heavy-ball momentum on a batch of diagonal quadratics: kernel against NumPy, one workload.

B = 4096 problems of dimension n = 256 with spectra in [0.01, 1] (κ = 100), T = 1000 steps,
float64, the optimal heavy-ball parameters. Implementations: ``polyak.reference`` (the NumPy
specification, general: per-problem hyperparameters, divergence checks), the textbook's NumPy
loop at its best (in place, scalar hyperparameters, no linear term: what a user would write
for exactly this case), and the compiled kernel on one thread and on all (also recording the
loss every 10 steps, and in float32). Every
implementation's answer is checked against the reference before it is timed.

`test_fraction_of_ceiling` runs the kernel of every instruction-set level this machine
supports, on one thread and on all, each timing paired with the multiply-add probe compiled
for the same level (``polyak._kernels._probe``), and records the median over the pairs of
(kernel rate × 3 multiply-adds per coordinate-step) / (probe rate): the fraction of the
machine's ceiling at that level's vector width, which the machine's drift cannot bias.

    pytest benchmarks --benchmark-only --benchmark-json=bench.json
    python benchmarks/report.py bench.json
"""

import functools
import time

import numpy as np
import pytest

import polyak
from polyak._config import kernels, supported_levels, use_level

B, N, STEPS = 4096, 256, 1000
MU, L = 0.01, 1.0
LR = 4 / (np.sqrt(L) + np.sqrt(MU)) ** 2
BETA = ((np.sqrt(L / MU) - 1) / (np.sqrt(L / MU) + 1)) ** 2
COORDINATE_STEPS = B * N * STEPS


@functools.cache
def workload(linear_term):
    """(problem, x0, the reference's answer), built once per process."""
    rng = np.random.default_rng(0)
    lam = rng.uniform(MU, L, (B, N))
    c = rng.normal(size=(B, N)) if linear_term else None
    problem = polyak.Quadratic.diagonal(lam, c)
    x0 = np.ones(N)
    expected = polyak.run(problem, polyak.Momentum(LR, BETA), x0, STEPS, implementation="reference")
    assert not expected.diverged.any()  # a diverged problem stops early: it would flatter the rate
    return problem, x0, expected.x


def textbook_numpy_loop(lam, x0, steps, lr, beta):
    """d2l's momentum loop, vectorized over the batch, in place: the best plain NumPy for c = 0."""
    x = np.array(np.broadcast_to(x0, lam.shape), order="C")
    v, g = np.zeros_like(x), np.empty_like(x)
    for _ in range(steps):
        np.multiply(lam, x, out=g)
        v *= beta
        v += g
        np.multiply(v, lr, out=g)
        x -= g
    return x


def run_kernel(problem, x0, **options):
    return polyak.run(problem, polyak.Momentum(LR, BETA), x0, STEPS, **options).x


IMPLEMENTATIONS = {
    "reference": lambda problem, x0: run_kernel(problem, x0, implementation="reference"),
    "numpy-loop": lambda problem, x0: textbook_numpy_loop(problem.lam, x0, STEPS, LR, BETA),
    "kernel-1-thread": lambda problem, x0: run_kernel(problem, x0, n_threads=1),
    "kernel-all-threads": lambda problem, x0: run_kernel(problem, x0),
    "kernel-all-threads-loss-every-10": lambda problem, x0: run_kernel(problem, x0, record="loss", every=10),
    "kernel-all-threads-float32": lambda problem, x0: run_kernel(problem, x0, dtype=np.float32),
}
TOLERANCE = {"kernel-all-threads-float32": dict(rtol=1e-4, atol=1e-5)}  # float32 against float64


CASES = [(False, name) for name in IMPLEMENTATIONS] + [
    (True, name) for name in IMPLEMENTATIONS if name != "numpy-loop"  # the textbook loop has no c
]


@pytest.mark.parametrize("linear_term, implementation", CASES,
                         ids=[f"{'c!=0' if c else 'c=0'}-{name}" for c, name in CASES])
def test_momentum_diagonal(benchmark, linear_term, implementation):
    problem, x0, expected = workload(linear_term)
    function = IMPLEMENTATIONS[implementation]
    if implementation != "reference":
        tolerance = TOLERANCE.get(implementation, dict(rtol=1e-11, atol=1e-12))
        np.testing.assert_allclose(function(problem, x0), expected, **tolerance)
    benchmark.group = f"momentum, diagonal B={B} n={N} T={STEPS} float64, {'c!=0' if linear_term else 'c=0'}"
    benchmark.extra_info["coordinate_steps"] = COORDINATE_STEPS
    slow = implementation in ("reference", "numpy-loop")
    benchmark.pedantic(function, args=(problem, x0), rounds=3 if slow else 15, iterations=1,
                       warmup_rounds=0 if slow else 1)


# Nesterov diverges at the heavy ball's optimum (ηλ up to 3.3 > (2 + 2β)/(1 + 2β)): it runs
# with its own textbook parameters, η = 1/L and β = (√κ − 1)/(√κ + 1).
NESTEROV_LR, NESTEROV_BETA = 1 / L, (np.sqrt(L / MU) - 1) / (np.sqrt(L / MU) + 1)
FORMS = {
    "d2l": polyak.Momentum(LR, BETA),
    "d2l-nesterov": polyak.Momentum(NESTEROV_LR, NESTEROV_BETA, nesterov=True),
    "torch-dampening-0.1": polyak.Momentum(LR, BETA, convention="torch", dampening=0.1),
    "mxnet": polyak.Momentum(LR, BETA, convention="mxnet"),
    "goodfellow-nesterov": polyak.Momentum(NESTEROV_LR, NESTEROV_BETA, convention="goodfellow", nesterov=True),
}


@pytest.mark.parametrize("form", list(FORMS))
def test_momentum_forms(benchmark, form):
    """The kernel on all threads, c = 0, in each form: the canonical update's four loop variants."""
    problem, x0, _ = workload(False)
    rule = FORMS[form]
    expected = polyak.run(problem, rule, x0, STEPS, implementation="reference")
    assert not expected.diverged.any()  # a diverged problem stops early: it would flatter the rate
    np.testing.assert_allclose(polyak.run(problem, rule, x0, STEPS).x, expected.x, rtol=1e-11, atol=1e-12)
    benchmark.group = f"momentum forms, kernel on all threads, B={B} n={N} T={STEPS} float64, c=0"
    benchmark.extra_info["coordinate_steps"] = COORDINATE_STEPS
    benchmark.pedantic(lambda: polyak.run(problem, rule, x0, STEPS), rounds=10, iterations=1, warmup_rounds=1)


THREADS = sorted({1, polyak.show_config(print_out=False)["max_threads"]})
LEVEL_CASES = [(level, threads) for level in supported_levels() for threads in THREADS]


def fraction_of_ceiling(run, threads, pairs=15, coordinate_steps=COORDINATE_STEPS):
    """Median over alternating timings of 3·(coordinate-steps/s of `run`) / (probe multiply-adds/s).

    After one untimed call (as pytest-benchmark's warm-up round): the first calls of a process
    also pay for the operating system's first touch of the memory they allocate.
    """
    probe = kernels("_probe")
    run()
    ratios = []
    for _ in range(pairs):
        peak = probe.multiply_add_rate(threads, 1_000_000)
        start = time.perf_counter()
        run()
        ratios.append(3 * coordinate_steps / (time.perf_counter() - start) / peak)
    return float(np.median(ratios)), float(probe.multiply_add_rate(threads) / 3)


@pytest.mark.parametrize("level, threads", LEVEL_CASES, ids=[f"{level}-{t}-thread" for level, t in LEVEL_CASES])
def test_fraction_of_ceiling(benchmark, level, threads):
    """The kernel at each instruction-set level against that level's multiply-add ceiling."""
    problem, x0, expected = workload(False)
    job = polyak.plan(problem, polyak.Momentum(LR, BETA), x0, STEPS)
    with use_level(level):
        np.testing.assert_allclose(polyak.execute(job, n_threads=threads).x, expected, rtol=1e-11, atol=1e-12)
        fraction, ceiling = fraction_of_ceiling(lambda: polyak.execute(job, n_threads=threads), threads)
        benchmark.extra_info.update(fraction_of_ceiling=fraction, ceiling_coordinate_steps=ceiling,
                                    coordinate_steps=COORDINATE_STEPS, block=kernels("_diagonal").block_width())
        benchmark.group = f"heavy ball against the multiply-add ceiling, B={B} n={N} T={STEPS} float64, c=0"
        benchmark.pedantic(lambda: polyak.execute(job, n_threads=threads), rounds=7, iterations=1, warmup_rounds=1)


SMALL_B, SMALL_N = 10**6, 2
SMALL_CASES = [(steps, whole) for steps in (200, 1000) for whole in ("run", "execute")]


@functools.cache
def small_problems():
    """The textbook's problem (λ = 0.2, 4) under 10⁶ (lr, β) pairs: one configuration per lane."""
    rng = np.random.default_rng(1)
    rule = polyak.Momentum(rng.uniform(0.05, 0.4, SMALL_B), rng.uniform(0.0, 0.9, SMALL_B))
    return polyak.problems.ill_conditioned_2d(), rule, np.array([-5.0, -2.0])


@pytest.mark.parametrize("steps, whole", SMALL_CASES, ids=[f"T={t}-{w}" for t, w in SMALL_CASES])
def test_small_problems_fraction_of_ceiling(benchmark, steps, whole):
    """polyak.run (plan and kernel) and execute (the kernel) on B = 10⁶ problems of n = 2."""
    problem, rule, x0 = small_problems()
    threads = polyak.show_config(print_out=False)["max_threads"]
    job = polyak.plan(problem, rule, x0, steps)
    ran = polyak.execute(job, n_threads=threads)
    sample = slice(0, SMALL_B, 50_000)  # the reference on a sample of the batch
    expected = polyak.run(problem, polyak.Momentum(rule.lr[sample], rule.beta[sample]), x0, steps,
                          implementation="reference")
    np.testing.assert_allclose(ran.x[sample], expected.x, rtol=1e-10, atol=1e-12)
    if whole == "run":
        call = functools.partial(polyak.run, problem, rule, x0, steps, n_threads=threads)
    else:
        call = functools.partial(polyak.execute, job, n_threads=threads)
    work = SMALL_B * SMALL_N * steps
    if not benchmark.disabled:
        fraction, ceiling = fraction_of_ceiling(call, threads, pairs=9, coordinate_steps=work)
        benchmark.extra_info.update(fraction_of_ceiling=fraction, ceiling_coordinate_steps=ceiling)
    benchmark.extra_info["coordinate_steps"] = work
    benchmark.group = f"momentum, B={SMALL_B} problems of n={SMALL_N} (configurations in lanes), float64"
    benchmark.pedantic(call, rounds=5, iterations=1, warmup_rounds=1)
