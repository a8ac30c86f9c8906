"""Dense quadratics: construction, closed forms, the kernels against their NumPy twin."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import polyak
from conftest import UPDATE_VARIANTS, check_against_reference, make_rule

RNG = np.random.default_rng(11)


def spd(n, rng=RNG, shift=0.1):
    a = rng.normal(size=(n, n))
    return a @ a.T / n + shift * np.eye(n)


def test_value_grad_minimizer_against_numpy():
    Q, c, b = spd(6), RNG.normal(size=(3, 6)), RNG.normal(size=3)
    problem = polyak.Quadratic.dense(Q, c, b)
    assert (problem.kind, problem.batch_size, problem.dim, problem.shared) == ("dense", 3, 6, True)
    x = RNG.normal(size=(3, 6))
    np.testing.assert_allclose(problem.value(x), [0.5 * x[p] @ Q @ x[p] + c[p] @ x[p] + b[p] for p in range(3)])
    np.testing.assert_allclose(problem.grad(x), x @ Q + c)
    x_star = problem.minimizer()
    np.testing.assert_allclose(x_star, -np.linalg.solve(Q, c.T).T, rtol=1e-12)
    np.testing.assert_allclose(problem.min_value(), b - 0.5 * np.einsum("bi,bi->b", c, np.linalg.solve(Q, c.T).T))
    x_star2, f_star = polyak.analysis.minimizer(Q, c[1], b[1])
    np.testing.assert_allclose(x_star2, x_star[1], rtol=1e-12)
    assert f_star == pytest.approx(problem.min_value()[1], rel=1e-12)


def test_per_problem_matrices():
    Qs = np.stack([spd(4) for _ in range(5)])
    problem = polyak.Quadratic.dense(Qs, c=np.ones(4))
    assert (problem.batch_size, problem.shared, problem.batched) == (5, False, True)
    np.testing.assert_allclose(problem.minimizer(), [-np.linalg.solve(Q, np.ones(4)) for Q in Qs], rtol=1e-12)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: polyak.Quadratic.dense(np.ones((2, 3))), r"Q must be square"),
        (lambda: polyak.Quadratic.dense(np.ones(3)), r"Q must be square"),
        (lambda: polyak.Quadratic.dense([[1.0, 2.0], [2.001, 1.0]]), r"Q must be symmetric: max \|Q - Qᵀ\| = 0.001, which is 0.0005 of max \|Q\|; allowed: 1e-10"),
        (lambda: polyak.Quadratic.dense([[1.0, np.nan], [np.nan, 1.0]]), r"Q must be finite"),
        (lambda: polyak.Quadratic.dense(np.eye(3), c=np.ones(4)), r"c must have shape \(3,\)"),
        (lambda: polyak.Quadratic.dense(np.eye(3), c=[0.0, np.inf, 0.0]), r"c must be finite"),
        (lambda: polyak.Quadratic.dense(np.stack([np.eye(3)] * 2), c=np.ones((3, 3))), r"c must have shape \(3,\) or \(2, 3\)"),
        (lambda: polyak.Quadratic.dense([[1.0, 0.0], [0.0, -1.0]]).minimizer(), r"needs Q positive definite; Q of problem 0 is not \(its smallest eigenvalue is -1\)"),
        (lambda: polyak.analysis.minimizer([[0.0, 1.0], [1.0, 0.0]]), r"Q must be positive definite .* smallest eigenvalue is -1"),
    ],
)
def test_bad_dense_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_symmetric_within_tolerance_is_accepted_and_symmetrized():
    Q = spd(5)
    nudged = Q.copy()
    nudged[0, 1] += 1e-13
    problem = polyak.Quadratic.dense(nudged)
    np.testing.assert_array_equal(problem.Q, problem.Q.T)


@pytest.mark.parametrize("shared", [True, False])
def test_rotated_dense_run_equals_the_diagonal_run(shared):
    # the textbook's theorem: in the eigenbasis, the dense problem is the diagonal one
    Q = spd(8) if shared else np.stack([spd(8) for _ in range(3)])
    problem = polyak.Quadratic.dense(Q, RNG.normal(size=(3, 8)))
    diagonal, rotation = problem.diagonalize()
    x0 = RNG.normal(size=8)
    for rule in (polyak.Momentum(0.4, 0.7), polyak.Momentum(0.3, 0.6, convention="goodfellow", nesterov=True)):
        dense = polyak.run(problem, rule, x0, 150)
        z0 = x0 @ rotation if shared else np.einsum("i,bij->bj", x0, rotation)
        eigen = polyak.run(diagonal, rule, z0, 150)
        back = eigen.x @ rotation.T if shared else np.einsum("bj,bij->bi", eigen.x, rotation)
        np.testing.assert_allclose(back, dense.x, rtol=1e-10, atol=1e-12)


def test_indefinite_q_runs_and_reports_divergence():
    problem = polyak.Quadratic.dense(np.array([[1.0, 0.0], [0.0, -0.5]]), c=np.zeros((2, 2)))
    result = polyak.run(problem, polyak.Momentum(0.5, 0.5), [1.0, 1.0], 2000)
    assert result.diverged.all() and (result.steps_taken < 2000).all()


@st.composite
def dense_runs(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    B, n = draw(st.integers(1, 5)), draw(st.sampled_from([1, 2, 7, 33]))
    shared = draw(st.booleans())
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    Q = spd(n, rng, shift=0.05) if shared else np.stack([spd(n, rng, shift=0.05) for _ in range(B)])
    Q = Q * draw(st.sampled_from([0.5, 1.0, 3.0]))  # some diverge
    c = rng.normal(size=(B, n)) * draw(st.sampled_from([0.0, 1.0]))
    variant = draw(st.sampled_from(list(UPDATE_VARIANTS)))
    steps = draw(st.sampled_from([0, 1, 5, 128, 200]))
    schedule = rng.uniform(0.3, 1.0, steps) if draw(st.booleans()) else None
    rule = make_rule(variant, rng.uniform(0.1, 1.0, B), rng.uniform(0.1, 0.9, B), schedule)
    problem = polyak.Quadratic.dense(Q.astype(dtype), c.astype(dtype), b=rng.normal(size=B))
    options = dict(record=draw(st.sampled_from([None, "loss", ("loss", "trajectory")])), every=draw(st.integers(1, 30)), dtype=dtype)
    return problem, rule, rng.normal(size=(B, n)).astype(dtype), steps, options


@given(dense_runs())
def test_dense_kernels_equal_the_reference(case):
    check_against_reference(*case)
