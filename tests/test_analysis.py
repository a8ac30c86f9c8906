"""Closed-form spectral radius against known values and against the 2×2 iteration matrices."""

import numpy as np
import pytest

from polyak.analysis import spectral_radius


def test_textbook_values():
    assert spectral_radius(0.6, 0.5, 4.0) == pytest.approx(np.sqrt(0.5), rel=1e-15)
    assert spectral_radius(0.6, 0.25, 4.0) == pytest.approx(0.8589454173, abs=1e-10)
    assert spectral_radius(0.6, 0.0, 4.0) == pytest.approx(1.4)  # GD: |1 - ηλ|
    assert spectral_radius(0.4, 0.0, 0.2) == pytest.approx(0.92)


def test_matches_eigenvalues_of_the_iteration_matrix():
    rng = np.random.default_rng(5)
    lr, beta, lam = rng.uniform(0, 1.5, 500), rng.uniform(0, 1, 500), rng.uniform(0, 4, 500)
    for nesterov in (False, True):
        if nesterov:  # PyTorch's form: v' = βv + λz, z' = z − η(λz + βv')
            matrices = np.array([[[b, l], [-e * b * b, 1 - e * l * (1 + b)]] for e, b, l in zip(lr, beta, lam)])
        else:  # d2l: v' = βv + λz, z' = z − ηv'
            matrices = np.array([[[b, l], [-e * b, 1 - e * l]] for e, b, l in zip(lr, beta, lam)])
        expected = np.max(np.abs(np.linalg.eigvals(matrices)), axis=1)
        np.testing.assert_allclose(spectral_radius(lr, beta, lam, nesterov=nesterov), expected, rtol=1e-6, atol=1e-7)


def test_broadcasts():
    assert spectral_radius(0.1, [0.0, 0.5], [[1.0], [2.0]]).shape == (2, 2)


from polyak import analysis  # noqa: E402

import polyak  # noqa: E402

RNG = np.random.default_rng(21)


def test_optimal_parameters_for_kappa_100():
    np.testing.assert_allclose(analysis.optimal_parameters(1.0, 100.0), (4 / 121, 81 / 121, 9 / 11), rtol=1e-15)
    np.testing.assert_allclose(analysis.optimal_parameters(1.0, 100.0, "gd"), (2 / 101, 0.0, 99 / 101), rtol=1e-15)
    np.testing.assert_allclose(analysis.optimal_parameters(1.0, 100.0, "nesterov"), (0.01, 9 / 11, 0.9), rtol=1e-15)
    lr, beta, rate = analysis.optimal_parameters(0.5, 50.0)
    # the optimum puts both ends of the spectrum on the critical circle |μ| = √β; at λ = μ the
    # root is double, where any radius is only √ε accurate (the discriminant's rounding)
    assert analysis.spectral_radius(lr, beta, [0.5, 50.0]) == pytest.approx([rate, rate], rel=1e-7)
    with pytest.raises(ValueError, match="0 < mu <= L"):
        analysis.optimal_parameters(2.0, 1.0)
    with pytest.raises(ValueError, match="method must be"):
        analysis.optimal_parameters(1.0, 2.0, "adam")


def test_dampening_and_nesterov_change_the_region_as_their_formulas_say():
    # torch's dampening τ scales the gradient: the heavy ball's region 0 < ηλ(1 − τ) < 2 + 2β
    assert analysis.converges(1.0, 0.5, 2.9, convention="torch", dampening=0.0)
    assert not analysis.converges(1.0, 0.5, 3.1, convention="torch", dampening=0.0)
    assert analysis.converges(1.0, 0.5, 5.9, convention="torch", dampening=0.5)
    assert not analysis.converges(1.0, 0.5, 6.1, convention="torch", dampening=0.5)
    # Nesterov: 0 < ηλ < (2 + 2β)/(1 + 2β) = 1.5 at β = 0.5
    assert analysis.converges(1.0, 0.5, 1.49, nesterov=True) and not analysis.converges(1.0, 0.5, 1.51, nesterov=True)
    rule = polyak.Momentum(1.0, 0.5, convention="torch", dampening=0.5)
    assert analysis.spectral_radius(rule, 2.0) == pytest.approx(analysis.spectral_radius(0.5, 0.5, 2.0), rel=1e-15)
    assert analysis.spectral_radius(0.6, 0.5, 4.0, convention="mxnet") == pytest.approx(np.sqrt(0.5), rel=1e-15)
    with pytest.raises(ValueError, match="dampening is PyTorch's parameter"):
        analysis.spectral_radius(0.1, 0.5, 1.0, dampening=0.2)
    with pytest.raises(ValueError, match="use\\s+convention='goodfellow'"):
        analysis.converges(0.1, 0.5, 1.0, convention="mxnet", nesterov=True)
    with pytest.raises(TypeError, match="with a rule, give the eigenvalues"):
        analysis.spectral_radius(rule, 0.5, 1.0)
    with pytest.raises(ValueError, match="constant learning rate"):
        analysis.rate(polyak.problems.ill_conditioned_2d(), polyak.GD(0.1, schedule=[1.0]))


def test_regimes():
    names = analysis.regime([0.1, 0.6, 0.25, 0.6, 0.45], [0.0, 0.5, 0.0, 0.0, 0.0], [1.0, 4.0, 4.0, 4.0, 4.0])
    assert names.tolist() == ["monotonic", "ripples", "one-step", "divergent", "oscillating"]
    assert set(analysis.REGIMES) >= set(names.tolist())


def test_effective_sample_size_weights_and_terminal_velocity():
    assert analysis.effective_sample_size(0.9) == pytest.approx(10.0)
    np.testing.assert_allclose(analysis.effective_weights(0.5, 4), [1.0, 0.5, 0.25, 0.125])
    assert analysis.terminal_velocity(0.1, 2.0, 0.9) == pytest.approx(2.0)
    # under a constant gradient the step length tends to η‖g‖/(1 − β)
    problem = polyak.Quadratic.diagonal([0.0, 0.0], c=[3.0, 4.0])
    before = polyak.run(problem, polyak.Momentum(0.1, 0.9), [0.0, 0.0], 999)
    after = polyak.run(problem, polyak.Momentum(0.1, 0.9), [0.0, 0.0], 1000)
    assert np.linalg.norm(after.x - before.x) == pytest.approx(analysis.terminal_velocity(0.1, 5.0, 0.9), rel=1e-12)
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\)"):
        analysis.effective_sample_size(1.0)


def test_exact_iterates_dense_and_continuing():
    Q = RNG.normal(size=(12, 12))
    problem = polyak.Quadratic.dense(Q @ Q.T / 12 + 0.1 * np.eye(12), RNG.normal(size=(2, 12)))
    rule = polyak.Momentum(np.array([0.3, 0.5]), np.array([0.7, 0.2]), convention="torch", dampening=0.1)
    ran = polyak.run(problem, rule, np.ones(12), 400)
    exact = analysis.exact_iterates(problem, rule, np.ones(12), 400)
    np.testing.assert_allclose(exact.x, ran.x, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(exact.velocity, ran.velocity, rtol=1e-9, atol=1e-12)
    half = analysis.exact_iterates(problem, rule, np.ones(12), 150)
    rest = analysis.exact_iterates(problem, rule, half.x, 250, v0=half.velocity)
    np.testing.assert_allclose(rest.x, ran.x, rtol=1e-9, atol=1e-12)


def test_exact_iterates_shared_q_batch_with_scalar_hyperparameters():
    Q = RNG.normal(size=(6, 6))
    problem = polyak.Quadratic.dense(Q @ Q.T / 6 + 0.2 * np.eye(6), RNG.normal(size=(4, 6)))
    rule = polyak.Momentum(0.3, 0.6)
    exact = analysis.exact_iterates(problem, rule, np.zeros(6), 300)
    assert exact.x.shape == (4, 6)
    np.testing.assert_allclose(exact.x, polyak.run(problem, rule, np.zeros(6), 300).x, rtol=1e-9, atol=1e-12)


def test_exact_iterates_on_a_singular_dense_problem():
    # eigh gives ±1e-16 for the zero eigenvalues: they must count as 0 (a constant gradient)
    a = np.array([1.0, 2.0, 3.0])
    problem = polyak.Quadratic.dense(np.outer(a, a) / 14, c=[1.0, 0.0, -1.0])
    rule = polyak.Momentum(0.1, 0.5)
    for steps in (1, 50):
        np.testing.assert_allclose(analysis.exact_iterates(problem, rule, np.zeros(3), steps).x,
                                   polyak.run(problem, rule, np.zeros(3), steps).x, rtol=1e-9, atol=1e-12)
    torch_rule = polyak.Momentum(0.1, 0.5, convention="torch")
    assert analysis.exact_iterates(problem, torch_rule, np.zeros(3), 0).velocity is None


def test_exact_iterates_needs_a_constant_learning_rate():
    with pytest.raises(ValueError, match="constant learning rate"):
        analysis.exact_iterates(polyak.problems.ill_conditioned_2d(), polyak.GD(0.1, schedule=[1.0, 0.5]), [1.0, 1.0], 2)


def test_eigendecompose():
    Q = RNG.normal(size=(5, 5))
    Q = Q @ Q.T
    lam, rotation = analysis.eigendecompose(polyak.Quadratic.dense(Q))
    np.testing.assert_allclose(rotation @ np.diag(lam) @ rotation.T, Q, atol=1e-12)
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(5), atol=1e-12)
    lam, rotation = analysis.eigendecompose(polyak.problems.ill_conditioned_2d())
    np.testing.assert_array_equal(lam, [0.2, 4.0])
    np.testing.assert_array_equal(rotation, np.eye(2))


def test_a_rule_carries_its_own_form():
    rule = polyak.Momentum(0.6, 0.5)
    for function in (analysis.spectral_radius, analysis.converges, analysis.regime):
        with pytest.raises(TypeError, match="a rule carries its own convention, nesterov and dampening"):
            function(rule, 4.0, nesterov=True)
        with pytest.raises(TypeError, match="a rule carries its own"):
            function(rule, 4.0, convention="torch", dampening=0.5)
    assert analysis.converges(rule, 4.0) and not analysis.converges(polyak.Momentum(0.6, 0.5, nesterov=True), 4.0)


def test_the_mapping_refuses_forms_that_do_not_exist():
    from polyak.rules import canonical_coefficients

    with pytest.raises(ValueError, match="no nesterov form"):
        canonical_coefficients("mxnet", 0.1, 0.5, nesterov=True)
    with pytest.raises(ValueError, match="dampening is PyTorch's parameter"):
        canonical_coefficients("d2l", 0.1, 0.5, dampening=0.3)
    with pytest.raises(ValueError, match="nesterov momentum requires zero dampening"):
        canonical_coefficients("torch", 0.1, 0.5, dampening=0.3, nesterov=True)
    a, k, e = canonical_coefficients("torch", 0.1, 0.5, dampening=0.3)
    assert all(isinstance(v, np.ndarray) for v in (a, k, e)) and (float(a), float(k), float(e)) == (0.7, 0.1, 0.0)
