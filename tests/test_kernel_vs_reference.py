"""The compiled kernel against its NumPy twin (polyak.reference), and across thread counts."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import polyak
from conftest import UPDATE_VARIANTS, check_against_reference, make_rule
from polyak._config import kernels


@st.composite
def runs(draw):
    """A random batch, rule and run configuration; some problems diverge."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    B = draw(st.sampled_from([1, 2, 5, 17, 40]))  # 17, 40: more than one chunk of lanes (n <= 4)
    n = draw(st.sampled_from([1, 2, 3, 4, 5, 63, 64, 65, 130, 200]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    variant = draw(st.sampled_from(list(UPDATE_VARIANTS)))
    steps = draw(st.sampled_from([0, 1, 7, 127, 128, 129, 300]))
    every = draw(st.integers(1, 40))
    record = draw(st.sampled_from([None, "loss", "trajectory", ("loss", "trajectory")]))
    lam = rng.uniform(-0.05, 3.0, (B, n))
    c = rng.normal(size=(B, n)) * draw(st.sampled_from([0.0, 1.0]))
    lr = rng.uniform(0.05, 1.2, B) if draw(st.booleans()) else float(rng.uniform(0.05, 1.2))
    beta = rng.uniform(0.05, 0.99, B) if draw(st.booleans()) else float(rng.uniform(0.05, 0.99))
    schedule = rng.uniform(0.2, 1.0, steps) if draw(st.booleans()) else None
    rule = make_rule(variant, lr, beta, schedule)
    problem = polyak.Quadratic.diagonal(lam.astype(dtype), c.astype(dtype), b=rng.normal(size=B))
    x0 = rng.normal(size=(B, n)).astype(dtype)
    return problem, rule, x0, steps, dict(record=record, every=every, dtype=dtype)


@given(runs())
def test_kernel_equals_reference(case):
    check_against_reference(*case)


@given(runs())
def test_results_do_not_depend_on_thread_count(case):
    problem, rule, x0, steps, options = case
    one = polyak.run(problem, rule, x0, steps, n_threads=1, **options)
    two = polyak.run(problem, rule, x0, steps, n_threads=2, **options)
    for name in ("x", "velocity", "loss", "trajectory", "steps_taken"):
        a, b = getattr(one, name), getattr(two, name)
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a, b)  # bit for bit, NaN where NaN


def test_thread_counts_used():
    problem = polyak.Quadratic.diagonal(np.ones((97, 5)))
    runs = [polyak.run(problem, polyak.GD(0.1), np.ones(5), 5, n_threads=t) for t in (1, 2, 3)]
    cpus = polyak._config.available_cpus()
    expected = {min(t, cpus) for t in (1, 2, 3)} if polyak.show_config(print_out=False)["openmp"] else {1}
    assert {r.n_threads for r in runs} == expected


def test_reference_check_interval_matches_kernel():
    assert polyak.reference.CHECK_EVERY == kernels("_diagonal").check_every()


def test_divergence_is_flagged_per_problem_and_the_others_go_on():
    # GD on λ = 1: lr 0.5 converges, lr 2.5 multiplies x by -1.5 per step and diverges
    problem = polyak.Quadratic.diagonal(np.ones((3, 4)))
    rule = polyak.GD([0.5, 2.5, 1.0])
    result = polyak.run(problem, rule, np.ones(4), 1000, record="loss", every=10)
    np.testing.assert_array_equal(result.diverged, [False, True, False])
    # x = (-1.5)^t passes 1e100 at t = 568 (1.5^567 = 6.9e99); the check after step 640
    # finds it, and the run stops at step 567 with the last x within the bound
    assert result.diverged_at.tolist() == [-1, 568, -1]
    assert result.steps_taken.tolist() == [1000, 567, 1000]
    np.testing.assert_allclose(result.x[1], (-1.5) ** 567, rtol=1e-9)
    assert np.all(np.isfinite(result.loss[1, :57])) and np.all(np.isnan(result.loss[1, 57:]))  # 560 kept, 570 not
    np.testing.assert_allclose(result.x[0], 0.5**1000, atol=0)
    np.testing.assert_array_equal(result.x[2], 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_divergence_and_records_after_it_match_the_reference(dtype):
    # clear-cut cases, far from the bound at every check and from overflow: GD on λ = 1
    # multiplies x by 1 - lr
    lr = np.array([0.5, 2.5, 2.1, 3.0 if dtype == np.float64 else 2.6, 1.0])
    expected = [False, True, True, True, False] if dtype == np.float32 else [False, False, False, True, False]
    problem = polyak.Quadratic.diagonal(np.ones((5, 70), dtype), np.zeros((5, 70), dtype))
    x0 = np.linspace(-1, 1, 70).astype(dtype)
    options = dict(record=("loss", "trajectory"), every=9, dtype=dtype)
    kernel = polyak.run(problem, polyak.GD(lr), x0, 400, **options)
    reference = polyak.run(problem, polyak.GD(lr), x0, 400, implementation="reference", **options)
    np.testing.assert_array_equal(kernel.diverged, expected)
    np.testing.assert_array_equal(kernel.diverged, reference.diverged)
    np.testing.assert_array_equal(kernel.steps_taken, reference.steps_taken)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for name in ("x", "velocity", "loss", "trajectory"):
        k, r = getattr(kernel, name), getattr(reference, name)
        if k is None:
            assert r is None
            continue
        np.testing.assert_array_equal(np.isnan(k), np.isnan(r))
        np.testing.assert_allclose(k, r, rtol=rtol, atol=rtol)


def test_the_first_loss_record_adds_up_like_the_others():
    # a zero learning rate leaves x unchanged: every record must be the same number, bit for bit
    rng = np.random.default_rng(1)
    problem = polyak.Quadratic.diagonal(rng.uniform(0, 2, (3, 62)), rng.normal(size=(3, 62)))
    result = polyak.run(problem, polyak.GD(0.1, schedule=np.zeros(5)), rng.normal(size=62), 5, record="loss")
    np.testing.assert_array_equal(result.loss, np.repeat(result.loss[:, :1], 6, axis=1))


def test_overflow_to_nan_is_a_result_not_a_crash():
    problem = polyak.Quadratic.diagonal([1e200, 1.0])
    result = polyak.run(problem, polyak.Momentum(1.0, 0.9), [1.0, 1.0], 50, record="trajectory")
    # the first step takes x₁ to -1e200 (beyond the bound), later ones to inf and NaN: the
    # run keeps the start, the last iterate within the bound
    assert result.diverged and result.diverged_at == 1 and result.steps_taken == 0
    np.testing.assert_array_equal(result.x, [1.0, 1.0])
    np.testing.assert_array_equal(result.velocity, [0.0, 0.0])
    assert np.all(np.isfinite(result.trajectory[0])) and np.all(np.isnan(result.trajectory[1:]))


def test_custom_divergence_bound():
    problem = polyak.Quadratic.diagonal([1.0])
    result = polyak.run(problem, polyak.GD(3.0), [1.0], 300, divergence_bound=10.0)
    # x = (-2)^t: |x| = 16 > 10 first at t = 4
    assert result.diverged and result.diverged_at == 4 and result.steps_taken == 3
    np.testing.assert_array_equal(result.x, [-8.0])


@pytest.mark.parametrize("variant", sorted(UPDATE_VARIANTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_problems_with_extreme_step_sizes(variant, dtype):
    # n = 2 runs configurations in lanes, which take the steps in the scaled velocity k·u
    # only where every lane's k lies in [1e-6, 1e6]: chunks of lanes with tiny and huge
    # learning rates among ordinary ones (and lanes that diverge) against the twin
    rng = np.random.default_rng(7)
    B, n = 48, 2
    lr = rng.uniform(0.05, 1.0, B)
    lr[[3, 20]], lr[[17, 40]] = 1e-8, 3e7  # one in each of three chunks of 16
    lam = rng.uniform(0.1, 3.0, (B, n))
    lam[[17, 40]] = 1e-9  # stable at lr 3e7
    problem = polyak.Quadratic.diagonal(lam.astype(dtype), rng.normal(size=(B, n)).astype(dtype))
    rule = make_rule(variant, lr, rng.uniform(0.0, 0.95, B), None)
    x0 = rng.normal(size=(B, n)).astype(dtype)
    check_against_reference(problem, rule, x0, 300, dict(record="loss", every=7, dtype=dtype))
