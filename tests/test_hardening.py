"""Regression tests of issue 9: no hangs, no crashes, divergence with meaning, clear errors."""

import pickle
from fractions import Fraction
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from conftest import UPDATE_VARIANTS, interrupt, make_rule

import polyak
from polyak import _config, analysis
from polyak.cli import main

VARIANTS = sorted(UPDATE_VARIANTS)


def run_python(code, timeout=120, env=None):
    """Run `code` in a fresh interpreter; (returncode, stdout, stderr). A hang fails the test."""
    completed = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                               timeout=timeout, env=env)
    return completed.returncode, completed.stdout, completed.stderr


# --- 1. a run's cost is bounded by its work, not by the steps asked for ---------------------

@pytest.mark.parametrize("kind", ["diagonal", "dense", "dense-shared", "dense-shared-loss"])
def test_a_diverging_batch_asked_for_2_to_the_62_steps_returns(kind):
    # every configuration diverges within a few hundred steps; before, the dense shared
    # product went on for all 2**62 steps (a hang: the subprocess timeout would fail this)
    code = f"""
        import time, numpy as np, polyak
        kind = {kind!r}
        lam = np.array([1.0, 3.0])
        problem = (polyak.Quadratic.diagonal(lam) if kind == "diagonal" else
                   polyak.Quadratic.dense(np.stack([np.diag(lam)] * 3)) if kind == "dense" else
                   polyak.Quadratic.dense(np.diag(lam)))
        rule = polyak.GD([1.0, 2.0, 5.0])
        start = time.perf_counter()
        result = polyak.run(problem, rule, [1.0, 1.0], 2**62, record="loss" if kind.endswith("loss") else None,
                            every=2**40)
        print(time.perf_counter() - start, *result.diverged_at)
    """
    code_, out, err = run_python(code, timeout=60)
    assert code_ == 0, err
    seconds, *diverged_at = out.split()
    # |1 − 3η|^t passes 1e100 first at t = ⌈100 / log10|1 − 3η|⌉: 333, 144 and 88 steps
    assert [int(t) for t in diverged_at] == [333, 144, 88]


def test_steps_beyond_the_limit_are_refused():
    with pytest.raises(ValueError, match=r"steps must be <= 4611686018427387904"):
        polyak.run(polyak.problems.ill_conditioned_2d(), polyak.GD(0.1), [1.0, 1.0], 2**63)


# --- 2. threads -------------------------------------------------------------------------------

def test_thread_requests_are_reduced_to_the_cpus_available():
    problem = polyak.Quadratic.diagonal(np.ones((64, 3)))
    result = polyak.run(problem, polyak.GD(0.1), np.ones(3), 10, n_threads=1024)
    cpus = _config.available_cpus()
    assert result.n_threads == (min(cpus, 64) if polyak.show_config(False)["openmp"] else 1)
    with pytest.raises(ValueError, match="n_threads must be <= 1024"):
        polyak.run(problem, polyak.GD(0.1), np.ones(3), 10, n_threads=1025)


def test_a_huge_omp_num_threads_does_not_crash_the_process():
    code = """
        import numpy as np, polyak
        result = polyak.run(polyak.Quadratic.diagonal(np.ones((300, 4))), polyak.GD(0.5), np.ones(4), 1000)
        print(result.n_threads, float(np.max(np.abs(result.x))))
    """
    import os
    code_, out, err = run_python(code, env={**os.environ, "OMP_NUM_THREADS": "100000"})
    assert code_ == 0, err
    threads, largest = out.split()
    assert 1 <= int(threads) <= _config.available_cpus() and float(largest) == 0.5**1000


def test_a_process_that_cannot_start_threads_gets_an_exception(monkeypatch):
    if not polyak.show_config(False)["openmp"] or _config.available_cpus() < 2:
        pytest.skip("needs OpenMP and 2 CPUs")

    def refuse(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setitem(_config._started, "most", 1)
    monkeypatch.setattr(threading.Thread, "start", refuse)
    with pytest.raises(RuntimeError, match=r"n_threads: this process cannot start 2 threads"):
        polyak.run(polyak.Quadratic.diagonal(np.ones((8, 2))), polyak.GD(0.1), np.ones(2), 5, n_threads=2)


# --- 3. divergence: diverged_at, the last iterate within the bound, unstable ------------------

def diverging_cases():
    """(name, problem, rule, x0, options): configurations that pass the bound at various steps,
    within check intervals and across them, for every kind of plan and kernel path."""
    rng = np.random.default_rng(9)
    lam = np.array([0.5, 1.0, 2.0])
    Q = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.1], [0.0, 0.1, 0.5]])
    lr = np.array([0.1, 1.7, 2.2, 2.6, 3.0, 30.0])
    cases = []
    for variant in ("d2l", "torch-nesterov", "goodfellow", "torch-dampening"):
        rule = make_rule(variant, lr, np.full(6, 0.5))
        cases += [
            (f"diagonal-{variant}", polyak.Quadratic.diagonal(lam), rule, rng.normal(size=3), {}),
            (f"diagonal-records-{variant}", polyak.Quadratic.diagonal(lam, [0.1, 0.0, -0.2]), rule, np.ones(3),
             dict(record=("loss", "trajectory"), every=7)),
            (f"dense-{variant}", polyak.Quadratic.dense(np.stack([Q] * 6)), rule, np.ones(3), dict(record="loss")),
            (f"dense-shared-fused-{variant}", polyak.Quadratic.dense(Q), rule, np.ones(3), dict(record="trajectory")),
            (f"dense-shared-{variant}", polyak.Quadratic.dense(Q, [0.1, 0.2, 0.3]), rule, np.ones(3),
             dict(record="loss", every=5)),
        ]
    # a block of 64 coordinates and a partial block: the first to pass the bound is in the second
    wide = np.concatenate([np.full(64, 0.5), np.full(6, 1.0)])
    cases.append(("diagonal-two-blocks", polyak.Quadratic.diagonal(wide), polyak.GD(lr), np.ones(70), {}))
    return cases


@pytest.mark.parametrize("name, problem, rule, x0, options", diverging_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_diverged_configuration_keeps_its_last_iterate_within_the_bound(name, problem, rule, x0, options):
    steps = 700
    kernel = polyak.run(problem, rule, x0, steps, **options)
    reference = polyak.run(problem, rule, x0, steps, implementation="reference", **options)
    exact = polyak.run(problem, rule, x0, steps, implementation="closed-form", **options)
    assert kernel.diverged.sum() >= 2 and not kernel.diverged[0]
    for other in (reference, exact):
        np.testing.assert_array_equal(other.diverged_at, kernel.diverged_at)
        np.testing.assert_array_equal(other.steps_taken, kernel.steps_taken)
        np.testing.assert_allclose(other.x, kernel.x, rtol=1e-9, atol=1e-12)
        if kernel.velocity is not None:
            np.testing.assert_allclose(other.velocity, kernel.velocity, rtol=1e-9, atol=1e-12)
        for records in ("loss", "trajectory"):
            if getattr(kernel, records) is not None:
                np.testing.assert_array_equal(np.isnan(getattr(other, records)), np.isnan(getattr(kernel, records)))
    np.testing.assert_array_equal(kernel.diverged_at, np.where(kernel.diverged, kernel.steps_taken + 1, -1))
    assert np.all(np.abs(kernel.x) <= 1e100)
    # independently: without a stop, the iterate at diverged_at is the first beyond the bound
    for i in np.flatnonzero(kernel.diverged):
        before, at = (polyak.run(problem, rule, x0, int(t), implementation="closed-form", divergence_bound=1e300).x[i]
                      for t in (kernel.steps_taken[i], kernel.diverged_at[i]))
        assert np.max(np.abs(before)) <= 1e100 < np.max(np.abs(at))
        assert kernel.diverged_at[i] > 0


def test_training_keeps_the_last_state_within_the_bound():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 4))
    y = X @ [1.0, -1.0, 0.5, 2.0]
    rule = polyak.Momentum([0.01, 3.0, 6.0, 40.0], 0.9)
    kernel = polyak.train.linear_regression(X, y, rule, epochs=30, record_every=20)
    reference = polyak.train.linear_regression(X, y, rule, epochs=30, record_every=20, implementation="reference")
    assert kernel.diverged.tolist() == [False, True, True, True]
    np.testing.assert_array_equal(kernel.diverged_at, reference.diverged_at)
    np.testing.assert_allclose(kernel.x, reference.x, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(np.isnan(kernel.loss), np.isnan(reference.loss))
    assert np.all(np.abs(kernel.x) <= 1e100) and kernel.unstable is None


@pytest.mark.parametrize("variant", VARIANTS)
def test_unstable_is_the_spectral_radius_above_one_over_the_whole_spectrum(variant):
    # the flag looks at the extreme eigenvalues only (the radius is quasiconvex in λ);
    # analysis.rate takes the maximum over every eigenvalue
    rng = np.random.default_rng(VARIANTS.index(variant))
    lam = np.sort(rng.uniform(0.01, 3.0, (40, 9)), axis=1)
    rule = make_rule(variant, rng.uniform(0.01, 2.0, 40), rng.uniform(0.0, 0.99, 40))
    problem = polyak.Quadratic.diagonal(lam)
    result = polyak.run(problem, rule, np.ones(9), 3)
    expected = analysis.rate(problem, rule) > 1
    assert 5 <= expected.sum() <= 35
    np.testing.assert_array_equal(result.unstable, expected)
    M = rng.normal(size=(9, 9))
    dense = polyak.Quadratic.dense(M @ M.T / 9)
    np.testing.assert_array_equal(polyak.run(dense, rule, np.ones(9), 3).unstable, analysis.rate(dense, rule) > 1)


def test_slow_divergence_is_unstable_before_it_passes_the_bound():
    # GD at ηλ = 2.002: |x| grows by 1.002 per step, 1.22× in 100 steps, far from 1e100
    result = polyak.run(polyak.Quadratic.diagonal([1.0]), polyak.GD(2.002), [1.0], 100)
    assert not result.diverged and result.diverged_at == -1 and result.unstable
    np.testing.assert_allclose(result.x, [(-1.002) ** 100])
    assert not polyak.run(polyak.Quadratic.diagonal([1.0]), polyak.GD(2.0), [1.0], 100).unstable  # ρ = 1


def test_unstable_is_none_with_a_schedule_and_survives_pickling_and_splitting():
    problem = polyak.Quadratic.diagonal([1.0, 2.0])
    scheduled = polyak.run(problem, polyak.GD([0.1, 1.5], schedule=np.linspace(1, 0.5, 10)), [1.0, 1.0], 10)
    assert scheduled.unstable is None
    job = polyak.plan(problem, polyak.GD([0.1, 1.5, 0.2]), [1.0, 1.0], 10)
    whole = polyak.execute(job)
    joined = polyak.Result.concatenate([polyak.execute(piece) for piece in job.split(2)])
    np.testing.assert_array_equal(whole.unstable, [False, True, False])
    np.testing.assert_array_equal(joined.unstable, whole.unstable)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(whole)).unstable, whole.unstable)


# --- 4. numerical edge cases -------------------------------------------------------------------

def test_a_dense_q_near_the_largest_float_is_stored_without_overflow():
    Q = np.array([[1e308, 1.5e308], [1.5e308, 1.7e308]])
    np.testing.assert_array_equal(polyak.Quadratic.dense(Q).Q, Q)
    with pytest.raises(ValueError, match=r"Q must be symmetric: max \|Q - Qᵀ\| = 3.00E\+308, which is 2 of max"):
        polyak.Quadratic.dense(np.array([[1.0, 1.5e308], [-1.5e308, 1.0]]))


@pytest.mark.parametrize("method", ["heavy_ball", "gd", "nesterov"])
@pytest.mark.parametrize("scale", [1e-300, 1e-150, 1e150, 1e290])
def test_optimal_parameters_scale_with_the_spectrum_over_the_whole_float_range(method, scale):
    # μ, L → sμ, sL: the learning rate scales by 1/s, β and the rate do not change
    lr, beta, rate = analysis.optimal_parameters(1.0, 100.0, method)
    lr_s, beta_s, rate_s = analysis.optimal_parameters(scale, 100.0 * scale, method)
    np.testing.assert_allclose([lr_s * scale, beta_s, rate_s], [lr, beta, rate], rtol=1e-14)


def test_optimal_parameters_at_the_extremes_of_the_float_range():
    lr, beta, rate = analysis.optimal_parameters(1e-300, 1e300)
    assert (lr, beta, rate) == (4e-300, 1.0, 1.0)  # √κ = 1e300: β = (1 − 2e-300)² rounds to 1
    lr, beta, rate = analysis.optimal_parameters(1e308, 1.7e308, "gd")  # μ + L overflows
    exact = Fraction(2) / (Fraction(1e308) + Fraction(1.7e308))
    np.testing.assert_allclose([lr, rate], [float(exact), 0.7 / 2.7], rtol=1e-13)  # lr is subnormal


def test_minimizer_refuses_a_matrix_that_is_not_symmetric_and_a_constant_that_is_not_finite():
    with pytest.raises(ValueError, match="Q must be symmetric"):
        analysis.minimizer(np.array([[2.0, 1.0], [0.0, 3.0]]), [1.0, 1.0])
    with pytest.raises(ValueError, match="b must be finite"):
        analysis.minimizer(np.eye(2), b=np.nan)
    x, value = analysis.minimizer(np.array([[2.0, 1.0], [1.0, 3.0]]), [1.0, 1.0], b=1.0)
    np.testing.assert_allclose(x, -np.linalg.solve([[2.0, 1.0], [1.0, 3.0]], [1.0, 1.0]))
    assert value == pytest.approx(1.0 + 0.5 * np.dot([1.0, 1.0], x))


@pytest.mark.parametrize("call, message", [
    (lambda: analysis.spectral_radius(np.ones(3), np.ones(2), 1.0), r"must broadcast .* lr \(3,\), beta \(2,\), lam \(\)"),
    (lambda: analysis.spectral_radius(0.1, 0.5, np.inf), "lam must be finite"),
    (lambda: analysis.terminal_velocity(0.1, np.nan, 0.5), "grad_norm must be finite"),
    (lambda: analysis.effective_sample_size("0.5"), "beta must be an array of real numbers"),
    (lambda: analysis.optimal_parameters(np.nan, 1.0), "mu must be finite"),
    (lambda: analysis.optimal_parameters(1.0, [1.0, 2.0]), r"L must have shape \(\)"),
])
def test_analysis_errors_name_the_argument(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_effective_weights_too_large_for_memory_is_a_memory_error_that_says_so():
    with pytest.raises(MemoryError, match=r"effective_weights with t=1000000000000 would need about 7.28 TiB"):
        analysis.effective_weights(0.5, 10**12)
    np.testing.assert_allclose(analysis.effective_weights(0.5, 4), [1.0, 0.5, 0.25, 0.125])


# --- 5. memory ------------------------------------------------------------------------------

def test_a_run_too_large_for_memory_is_refused_before_it_allocates():
    problem = polyak.Quadratic.diagonal(np.ones(10**4))
    with pytest.raises(MemoryError, match=r"would need about 1.46 TiB .*float32.*fewer configurations"):
        polyak.run(problem, polyak.GD(np.full(10**7, 0.1)), np.ones(10**4), 1)


# --- 6. messages and the command line -------------------------------------------------------

def test_the_cli_says_where_a_diverged_run_stopped(capsys):
    assert main(["--steps", "1000"]) == 0
    line = [row for row in capsys.readouterr().out.splitlines() if row.startswith("gradient descent, lr 0.6")][0]
    # x₂ = (−1.4)ᵗ·(−2) passes 1e100 at t = 683
    assert "stopped at step 682 (step 683 passed the divergence bound)" in line
    assert "x2: -9.127468e+99" in line and "epoch" not in line


def test_cli_errors_are_one_line_and_exit_2(monkeypatch, capsys):
    def fail(args):
        raise ValueError("steps must be <= 4611686018427387904; got 99")

    monkeypatch.setattr(polyak.cli, "_textbook", fail)
    with pytest.raises(SystemExit) as exit_:
        main(["textbook"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "polyak: error: steps must be <= 4611686018427387904; got 99\n"


def test_load_state_dict_refuses_a_malformed_state_and_changes_nothing():
    params = [np.ones(3)]
    optimizer = polyak.optim.SGD(params, lr=0.1, momentum=0.9)
    optimizer.step([np.ones(3)])
    good = optimizer.state_dict()
    for bad, error, message in [
        ({**good, "momentum_buffers": 5}, TypeError, "momentum_buffers must be a list"),
        ({**good, "momentum_buffers": [np.full(3, np.nan)]}, ValueError, "buffer 0 must be finite"),
        ({**good, "steps": -1}, ValueError, "steps must be an integer >= 0"),
    ]:
        with pytest.raises(error, match=message):
            optimizer.load_state_dict(bad)
        after = optimizer.state_dict()
        np.testing.assert_array_equal(after["momentum_buffers"][0], good["momentum_buffers"][0])
        assert after["steps"] == good["steps"]


# --- 7. Ctrl-C ------------------------------------------------------------------------------

@pytest.mark.parametrize("workload", ["run", "dense-shared", "train", "train-records", "exact_iterates"])
def test_sigint_stops_a_long_run_with_keyboard_interrupt(workload):
    # each would take minutes; SIGINT once it is under way must end it promptly
    code = f"""
        import sys, numpy as np, polyak
        workload = {workload!r}
        print("ready", flush=True)
        try:
            if workload == "run":
                polyak.run(polyak.Quadratic.diagonal(np.full((64, 256), 1e-9)), polyak.Momentum(0.1, 0.5),
                           np.ones(256), 10**7)
            elif workload == "exact_iterates":
                polyak.analysis.exact_iterates(polyak.Quadratic.diagonal(np.linspace(0.01, 1, 64)),
                                               polyak.Momentum(np.full(20000, 0.1), 0.5), np.ones(64), 10**6,
                                               record="loss", every=1000)
            elif workload == "dense-shared":
                polyak.run(polyak.Quadratic.dense(np.eye(64) * 1e-9), polyak.Momentum(0.1, 0.5), np.ones(64), 10**7)
            elif workload == "train-records":  # little work per step, a loss over all the data per step
                X, y = polyak.data.airfoil()
                polyak.train.linear_regression(X, y, polyak.Momentum(np.geomspace(1e-4, 1e-2, 400), 0.9),
                                               batch_size=1, epochs=20, record_every=1)
            else:
                X, y = polyak.data.airfoil()
                polyak.train.linear_regression(X, y, polyak.Momentum(np.full(64, 1e-3), 0.5), epochs=10**4)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(3)
    """
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # into the kernel
    finally:
        out, _, waited = interrupt(process)
    assert process.returncode == 3 and out.strip() == "interrupted"
    assert waited < 2.0


# --- 8. rough edges ------------------------------------------------------------------------

def test_x0_rows_with_one_problem_run_one_start_each():
    problem = polyak.problems.ill_conditioned_2d()
    starts = np.array([[-5.0, -2.0], [1.0, 1.0], [0.0, 3.0]])
    together = polyak.run(problem, polyak.Momentum(0.6, 0.5), starts, 20, record="loss")
    assert together.x.shape == (3, 2) and together.loss.shape == (3, 21)
    for row, start in zip(together.x, starts):
        alone = polyak.run(problem, polyak.Momentum(0.6, 0.5), start, 20, record="loss")
        np.testing.assert_array_equal(row, alone.x)
    with pytest.raises(ValueError, match=r"x0 must have shape \(2,\) or \(2, 2\); got \(3, 2\)"):
        polyak.run(problem, polyak.Momentum([0.1, 0.2], 0.5), starts, 20)


@pytest.mark.parametrize("record", [None, "loss", ("loss", "trajectory")])
def test_a_late_divergence_is_found_from_the_last_saved_state(record):
    # x = (1 − ηλ)^t with |1 − ηλ| = 1.1 passes 1e100 first at t = 2416 (1.1^2415 = 9.6e99):
    # the kernel saves its state every 1024 steps, so it takes steps 2048..2303 again, with
    # their records, before it searches the interval 2304..2431
    problem = polyak.Quadratic.diagonal(np.ones((3, 70)))
    rule = polyak.GD([2.1, 0.5, 1.9])
    options = dict(record=record, every=7) if record else {}
    kernel = polyak.run(problem, rule, np.ones(70), 3000, **options)
    reference = polyak.run(problem, rule, np.ones(70), 3000, implementation="reference", **options)
    assert kernel.diverged_at.tolist() == [2416, -1, -1]
    np.testing.assert_allclose(kernel.x[0], np.full(70, (-1.1) ** 2415), rtol=1e-10)
    for name in ("x", "loss", "trajectory"):
        if getattr(kernel, name) is not None:
            np.testing.assert_array_equal(np.isnan(getattr(kernel, name)), np.isnan(getattr(reference, name)))
            np.testing.assert_allclose(getattr(kernel, name), getattr(reference, name), rtol=1e-10, atol=1e-300)
    if record:  # the records taken again are the same numbers, bit for bit, as a run that stops before
        shorter = polyak.run(problem, rule, np.ones(70), 2303, **options)
        for name in ("loss", "trajectory"):
            if getattr(kernel, name) is not None:
                np.testing.assert_array_equal(getattr(kernel, name)[:, :330], getattr(shorter, name))


def test_concurrent_callers_get_the_results_of_sequential_calls():
    # 8 threads at once, each with its own plans, some long enough for the main thread's
    # interruptible path (which only the main thread takes): the same numbers as one at a time
    import concurrent.futures

    rng = np.random.default_rng(8)
    jobs = [(polyak.Quadratic.diagonal(rng.uniform(0.1, 2.0, (50, 300))), polyak.Momentum(rng.uniform(0.1, 1.5, 50), 0.6))
            for _ in range(8)]

    def solve(job):
        problem, rule = job
        return polyak.run(problem, rule, np.ones(300), 400 if job is jobs[0] else 2000, record="loss", every=50)

    sequential = [solve(job) for job in jobs]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(solve, job) for job in jobs[1:]]
        here = solve(jobs[0])  # the main thread meanwhile
        concurrent_results = [here] + [future.result() for future in futures]
    for a, b in zip(sequential, concurrent_results):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.loss, b.loss)
        np.testing.assert_array_equal(a.diverged_at, b.diverged_at)


def test_a_start_beyond_the_divergence_bound_is_refused():
    problem = polyak.problems.ill_conditioned_2d()
    with pytest.raises(ValueError, match=r"x0 has entries beyond the divergence bound 10 \(max \|x0\| = 11\)"):
        polyak.run(problem, polyak.GD(0.1), [11.0, 0.0], 5, divergence_bound=10.0)
    job = polyak.plan(problem, polyak.GD(0.1), [1.0, 0.0], 5, divergence_bound=10.0)
    with pytest.raises(ValueError, match="the plan's x0 must lie within its divergence bound"):
        polyak.Plan(**{**job._fields(), "x0": np.array([[11.0, 0.0]])})


def test_a_forked_child_runs_long_kernels_after_the_parent_did():
    # the parent's interruptible path must not leave a forked child waiting on a thread it
    # did not inherit
    code = """
        import multiprocessing, numpy as np, polyak
        problem = polyak.Quadratic.diagonal(np.full((4, 200), 0.5))
        def long_run(_=None):  # 2.4e9 multiply-adds: the interruptible path
            return int(polyak.run(problem, polyak.Momentum(0.1, 0.5), np.ones(200), 3_000_000).steps_taken[0])
        long_run()
        with multiprocessing.get_context("fork").Pool(1) as pool:
            print(pool.apply_async(long_run).get(timeout=60))
    """
    code_, out, err = run_python(code, timeout=120)
    assert code_ == 0, err
    assert out.split() == ["3000000"]


def test_an_iterate_that_leaves_the_bound_and_comes_back_is_diverged_in_every_implementation():
    # |x| passes 10 at step 2 and is back within it at the check after step 128 and at the
    # end: the check after step 256 finds it beyond; the closed form evaluates every check too
    problem = polyak.Quadratic.diagonal([1.0])
    runs = [polyak.run(problem, polyak.Momentum(0.01, 0.99), [0.0], 2000, v0=[750.0], divergence_bound=10.0,
                       implementation=implementation, record="trajectory", every=100)
            for implementation in ("kernel", "reference", "closed-form")]
    for result in runs:
        assert result.diverged and result.diverged_at == runs[0].diverged_at > 128
        np.testing.assert_allclose(result.x, runs[0].x, rtol=1e-9)
        np.testing.assert_array_equal(np.isnan(result.trajectory), np.isnan(runs[0].trajectory))
    assert abs(runs[0].x[0]) <= 10


def test_the_reference_also_ends_once_every_configuration_has_stopped():
    code = """
        import numpy as np, polyak
        result = polyak.run(polyak.Quadratic.diagonal([1.0, 3.0]), polyak.GD([1.0, 2.0, 5.0]), [1.0, 1.0], 2**62,
                            implementation="reference")
        print(*result.diverged_at)
    """
    code_, out, err = run_python(code, timeout=60)
    assert code_ == 0, err
    assert out.split() == ["333", "144", "88"]


def test_unstable_is_computed_when_first_read_not_by_the_run(monkeypatch):
    calls = []
    original = polyak.problems.DenseQuadratic.spectrum_bounds
    monkeypatch.setattr(polyak.problems.DenseQuadratic, "spectrum_bounds",
                        lambda self: calls.append(1) or original(self))
    problem = polyak.Quadratic.dense(np.array([[2.0, 0.5], [0.5, 1.0]]))
    single = polyak.run(problem, polyak.GD(1.5), [1.0, 1.0], 3)
    job = polyak.plan(problem, polyak.GD([0.1, 1.5, 0.2]), [1.0, 1.0], 3)
    joined = polyak.Result.concatenate([polyak.execute(piece) for piece in job.split(3)])
    assert calls == []
    assert single.unstable and calls == [1]  # ηλ_max = 1.5 · 2.207 > 2
    np.testing.assert_array_equal(joined.unstable, [False, True, False])


def test_optimal_parameters_refuses_a_learning_rate_beyond_the_float_range():
    with pytest.raises(ValueError, match="L = 1e-310 is too small"):
        analysis.optimal_parameters(1e-310, 1e-310)


def test_argument_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--steps", "x"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("polyak: error: argument --steps")
