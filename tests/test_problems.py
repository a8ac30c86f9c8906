"""Quadratic problems: values, gradients and minimizers against their closed forms."""

import numpy as np
import pytest

import polyak


def test_ill_conditioned_2d_is_the_textbooks_function():
    problem = polyak.problems.ill_conditioned_2d()
    x = np.array([-5.0, -2.0])
    assert problem.value(x) == pytest.approx(0.1 * 25 + 2 * 4)
    np.testing.assert_allclose(problem.grad(x), [0.2 * -5, 4.0 * -2])
    assert (problem.batch_size, problem.dim, problem.batched) == (1, 2, False)
    np.testing.assert_array_equal(problem.minimizer(), [0.0, 0.0])
    assert problem.min_value() == 0.0


def test_batch_value_grad_minimizer():
    rng = np.random.default_rng(0)
    lam, c, b = rng.uniform(0.5, 2, (4, 5)), rng.normal(size=(4, 5)), rng.normal(size=4)
    problem = polyak.Quadratic.diagonal(lam, c, b)
    x = rng.normal(size=(4, 5))
    Q = [np.diag(row) for row in lam]
    expected = [0.5 * x[p] @ Q[p] @ x[p] + c[p] @ x[p] + b[p] for p in range(4)]
    np.testing.assert_allclose(problem.value(x), expected, rtol=1e-13)
    np.testing.assert_allclose(problem.grad(x), lam * x + c, rtol=1e-15)
    x_star = problem.minimizer()
    np.testing.assert_allclose(x_star, [-np.linalg.solve(Q[p], c[p]) for p in range(4)], rtol=1e-13)
    np.testing.assert_allclose(problem.grad(x_star), 0, atol=1e-14)
    np.testing.assert_allclose(problem.min_value(), problem.value(x_star), rtol=1e-13)
    np.testing.assert_allclose(problem.min_value(), b - 0.5 * np.sum(c**2 / lam, axis=1), rtol=1e-13)
    # a shared point broadcasts over the batch
    np.testing.assert_allclose(problem.value(x[0]), [problem.value(np.tile(x[0], (4, 1)))[p] for p in range(4)])


def test_single_problem_evaluates_a_stack_of_points():
    problem = polyak.Quadratic.diagonal([1.0, 3.0], c=[1.0, 0.0], b=2.0)
    points = np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 2.0]])
    np.testing.assert_allclose(problem.value(points), [2.0, 0.5 + 1.5 + 1 + 2, 0.5 + 6 - 1 + 2])


def test_minimizer_needs_positive_eigenvalues():
    with pytest.raises(ValueError, match=r"needs every eigenvalue λ > 0 .* got λ = 0.0 at problem 1, coordinate 2"):
        polyak.Quadratic.diagonal([[1.0, 2.0, 3.0], [1.0, 2.0, 0.0]]).minimizer()
    with pytest.raises(ValueError, match="λ > 0"):
        polyak.Quadratic.diagonal([1.0, -2.0]).min_value()


def test_x_of_the_wrong_dimension():
    with pytest.raises(ValueError, match=r"x must have last dimension n = 2; got shape \(3,\)"):
        polyak.problems.ill_conditioned_2d().value([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"x \(for a batch\) must have shape"):
        polyak.Quadratic.diagonal(np.ones((3, 2))).grad(np.ones((2, 2)))


def test_run_reaches_the_minimizer_and_records_the_loss():
    rng = np.random.default_rng(1)
    problem = polyak.Quadratic.diagonal(rng.uniform(1, 2, (3, 8)), rng.normal(size=(3, 8)), b=[1.0, 2.0, 3.0])
    result = polyak.run(problem, polyak.Momentum(0.3, 0.3), np.zeros(8), 400, record=("loss", "trajectory"), every=50)
    np.testing.assert_allclose(result.x, problem.minimizer(), rtol=1e-12)
    assert result.loss.shape == (3, 9) and result.trajectory.shape == (3, 9, 8)
    np.testing.assert_allclose(result.loss[:, 0], problem.b)
    np.testing.assert_allclose(result.loss[:, -1], problem.min_value(), rtol=1e-12)
    for k in range(9):
        np.testing.assert_allclose(result.loss[:, k], problem.value(result.trajectory[:, k]), rtol=1e-12, atol=1e-14)


def test_unbatched_results_for_a_single_problem():
    problem = polyak.problems.ill_conditioned_2d()
    result = polyak.run(problem, polyak.Momentum(0.6, 0.5), [-5.0, -2.0], 20, record=("loss", "trajectory"), every=5)
    assert result.x.shape == (2,) and result.velocity.shape == (2,)
    assert result.loss.shape == (5,) and result.trajectory.shape == (5, 2)
    assert result.diverged.shape == () and not result.diverged and result.steps_taken == 20
    np.testing.assert_array_equal(result.trajectory[0], [-5.0, -2.0])
    assert "diverged=0 of 1" in repr(result)


def test_single_problem_with_many_learning_rates_runs_as_a_batch():
    problem = polyak.problems.ill_conditioned_2d()
    result = polyak.run(problem, polyak.GD([0.4, 0.6]), [-5.0, -2.0], 20)
    assert result.x.shape == (2, 2)
    np.testing.assert_allclose(result.x[:, 1], [-2.0 * (1 - 0.4 * 4) ** 20, -2.0 * (1 - 0.6 * 4) ** 20], rtol=1e-12)


def test_zero_steps_returns_the_start():
    result = polyak.run(polyak.problems.ill_conditioned_2d(), polyak.Momentum(0.1, 0.5), [1.0, 2.0], 0, record="loss")
    np.testing.assert_array_equal(result.x, [1.0, 2.0])
    np.testing.assert_array_equal(result.velocity, [0.0, 0.0])
    np.testing.assert_allclose(result.loss, [0.1 + 8.0])
