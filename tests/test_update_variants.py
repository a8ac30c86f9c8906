"""Every form of the update (conftest.UPDATE_VARIANTS) through every layer: one list, one module.

For each variant: runs against the conventions' literal formulas, with and without a
schedule; the closed form against the kernel (diagonal and dense, with records); the theory
(iteration matrix, spectral radius, convergence region) against runs; minibatch training
against its NumPy twin; the optimizer step against the convention written out; results
across thread counts. The random searches of kernel against reference draw their variant
from the same list (test_kernel_vs_reference.py, test_dense.py).
"""

import numpy as np
import pytest
from conftest import UPDATE_VARIANTS, literal_run, make_rule

import polyak
from polyak import analysis
from polyak.optim import SGD

VARIANTS = list(UPDATE_VARIANTS)
RNG = np.random.default_rng(7)
LAM = RNG.uniform(0.1, 3.0, 12)
C = RNG.normal(size=12)
X0 = RNG.normal(size=12)


def form(variant):
    settings = dict(UPDATE_VARIANTS[variant])
    gd = settings.pop("gd", False)
    return settings, gd


def spd(n, rng):
    a = rng.normal(size=(n, n))
    return a @ a.T / n + 0.1 * np.eye(n)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("scheduled", [False, True])
def test_run_follows_the_literal_formula(variant, scheduled):
    steps, lr, beta = 40, 0.3, 0.7
    schedule = np.linspace(1.0, 0.2, steps) if scheduled else None
    rule = make_rule(variant, lr, beta, schedule)
    result = polyak.run(polyak.Quadratic.diagonal(LAM, C), rule, X0, steps)
    settings, gd = form(variant)
    lrs = lr * (schedule if scheduled else np.ones(steps))
    x, v = literal_run(settings["convention"], LAM, C, X0, lrs, 0.0 if gd else beta,
                       nesterov=settings.get("nesterov", False), dampening=settings.get("dampening", 0.0))
    np.testing.assert_allclose(result.x, x, rtol=1e-12, atol=1e-13)
    if gd:
        assert result.velocity is None
    else:
        np.testing.assert_allclose(result.velocity, v, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("variant", VARIANTS)
def test_continuing_with_the_velocity_equals_one_long_run(variant):
    schedule = np.linspace(1.0, 0.3, 60)
    problem = polyak.Quadratic.diagonal(LAM, C)
    whole = polyak.run(problem, make_rule(variant, 0.2, 0.7, schedule), X0, 60)
    first = polyak.run(problem, make_rule(variant, 0.2, 0.7, schedule[:25]), X0, 25)
    rest = polyak.run(problem, make_rule(variant, 0.2, 0.7, schedule[25:]), first.x, 35, v0=first.velocity)
    np.testing.assert_allclose(rest.x, whole.x, rtol=1e-12, atol=1e-14)
    assert (rest.velocity is None) == form(variant)[1]  # gradient descent has none
    if rest.velocity is not None:
        np.testing.assert_allclose(rest.velocity, whole.velocity, rtol=1e-12, atol=1e-14)


CRITICAL_LR, CRITICAL_LAM = 0.3, 1.7


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("lr, beta", [(0.5, 0.8), (0.05, 0.1), (1.0, 0.5)])
def test_closed_form_equals_the_kernel_on_a_diagonal_problem(variant, lr, beta):
    # complex roots for most λ, real roots, and a zero root at λ = 1 for gradient descent;
    # λ = 0 is a constant gradient. Every variant is stable on this spectrum.
    lam = np.concatenate([RNG.uniform(0.1, 1.4, 11), [1.0, 0.0]])
    problem = polyak.Quadratic.diagonal(lam, RNG.normal(size=13), b=0.5)
    rule = make_rule(variant, lr, beta)
    assert np.all(analysis.spectral_radius(rule, lam[:-1]) < 1)
    x0, steps = RNG.normal(size=13), 700
    options = dict(record=("loss", "trajectory"), every=70)
    ran = polyak.run(problem, rule, x0, steps, **options)
    exact = polyak.run(problem, rule, x0, steps, implementation="closed-form", **options)
    for name in ("x", "velocity", "loss", "trajectory"):
        expected, actual = getattr(ran, name), getattr(exact, name)
        if expected is None:
            assert actual is None
            continue
        np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-9 * max(1.0, np.max(np.abs(expected))))
    np.testing.assert_array_equal(exact.recorded_at, ran.recorded_at)


def test_closed_form_at_a_double_root():
    beta = (1 - np.sqrt(CRITICAL_LR * CRITICAL_LAM)) ** 2  # μ² − (1 + β − ηλ)μ + β has a double root
    problem = polyak.Quadratic.diagonal([CRITICAL_LAM, 0.5], c=[1.0, -1.0])
    rule = polyak.Momentum(CRITICAL_LR, beta)
    ran, exact = (polyak.run(problem, rule, [1.0, 2.0], 500, implementation=i) for i in ("kernel", "closed-form"))
    np.testing.assert_allclose(exact.x, ran.x, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("shared", [True, False])
def test_closed_form_equals_the_kernel_on_a_dense_problem(variant, shared):
    rng = np.random.default_rng(3)
    Q = spd(9, rng) if shared else np.stack([spd(9, rng) for _ in range(3)])
    problem = polyak.Quadratic.dense(Q, rng.normal(size=(3, 9)))
    rule = make_rule(variant, np.array([0.3, 0.5, 0.2]), np.array([0.7, 0.2, 0.5]))
    ran = polyak.run(problem, rule, np.ones(9), 300, record="loss", every=30)
    exact = polyak.run(problem, rule, np.ones(9), 300, record="loss", every=30, implementation="closed-form")
    np.testing.assert_allclose(exact.x, ran.x, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(exact.loss, ran.loss, rtol=1e-9, atol=1e-12)
    if not form(variant)[1]:
        np.testing.assert_allclose(exact.velocity, ran.velocity, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
def test_iteration_matrix_is_one_step_of_run(variant):
    lam, c = np.array([0.5, 1.5, 3.0]), np.array([1.0, -2.0, 0.5])
    x_star = -c / lam
    rule = make_rule(variant, 0.4, 0.6)
    problem = polyak.Quadratic.diagonal(lam, c)
    first = polyak.run(problem, rule, np.ones(3), 3)
    second = polyak.run(problem, rule, first.x, 1, v0=first.velocity)
    velocity = first.velocity if first.velocity is not None else np.zeros(3)
    state = np.stack([velocity, first.x - x_star], axis=-1)
    expected = np.einsum("nij,nj->ni", analysis.iteration_matrix(rule, lam), state)
    np.testing.assert_allclose(second.x - x_star, expected[:, 1], rtol=1e-12, atol=1e-14)
    if second.velocity is not None:
        np.testing.assert_allclose(second.velocity, expected[:, 0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("variant", VARIANTS)
def test_spectral_radius_is_that_of_the_iteration_matrix(variant):
    lr, beta, lam = RNG.uniform(0.01, 1.5, 300), RNG.uniform(0.01, 0.99, 300), RNG.uniform(0, 4, 300)
    rule = make_rule(variant, lr, beta)
    matrices = analysis.iteration_matrix(rule, lam[:, None])[:, 0]
    expected = np.max(np.abs(np.linalg.eigvals(matrices)), axis=1)
    np.testing.assert_allclose(analysis.spectral_radius(rule, lam), expected, rtol=1e-6, atol=1e-7)
    settings, gd = form(variant)
    by_numbers = analysis.spectral_radius(lr, 0.0 if gd else beta, lam, **settings)
    np.testing.assert_array_equal(by_numbers, analysis.spectral_radius(rule, lam))


@pytest.mark.parametrize("variant", VARIANTS)
def test_region_and_regimes_against_simulation(variant):
    # random (η, β, λ) clearly inside the region converge under run, clearly outside diverge
    lr, beta, lam = RNG.uniform(0.01, 2.0, 300), RNG.uniform(0.0, 0.95, 300), RNG.uniform(0.05, 3.0, 300)
    beta = np.maximum(beta, 0.01) if UPDATE_VARIANTS[variant].get("nesterov") else beta
    rule = make_rule(variant, lr, beta)
    radius = analysis.spectral_radius(rule, lam)
    inside = analysis.converges(rule, lam)
    np.testing.assert_array_equal(inside, radius < 1)
    np.testing.assert_array_equal(analysis.regime(rule, lam) == "divergent", radius >= 1)
    clear = np.abs(radius - 1) > 0.02
    problem = polyak.Quadratic.diagonal(lam[clear, None])
    result = polyak.run(problem, make_rule(variant, lr[clear], beta[clear]), [1.0], 20000)
    np.testing.assert_array_equal(result.diverged, ~inside[clear])
    assert np.all(np.abs(result.x[inside[clear], 0]) < 1e-6)


@pytest.mark.parametrize("variant", VARIANTS)
def test_rate_is_the_worst_radius_over_the_spectrum(variant):
    rotation, _ = np.linalg.qr(RNG.normal(size=(3, 3)))
    problem = polyak.Quadratic.dense(rotation @ np.diag([0.5, 2.0, 4.0]) @ rotation.T)
    rule = make_rule(variant, 0.3, 0.5)
    assert analysis.rate(problem, rule) == pytest.approx(max(analysis.spectral_radius(rule, [0.5, 2.0, 4.0])), rel=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
def test_training_kernel_equals_its_twin_and_threads(variant):
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(300, 4)), rng.normal(size=300)
    rule = make_rule(variant, rng.uniform(0.001, 0.05, 17), rng.uniform(0.05, 0.95, 17),
                     schedule=np.linspace(1.0, 0.5, 3 * 19))
    options = dict(batch_size=16, record_every=160, epochs=3, seed=5)
    runs = [polyak.train.linear_regression(X, y, rule, n_threads=t, **options) for t in (1, 2)]
    np.testing.assert_array_equal(runs[0].loss, runs[1].loss)
    np.testing.assert_array_equal(runs[0].x, runs[1].x)
    reference = polyak.train.linear_regression(X, y, rule, implementation="reference", **options)
    np.testing.assert_allclose(runs[0].loss, reference.loss, rtol=1e-10)
    np.testing.assert_allclose(runs[0].x, reference.x, rtol=1e-9, atol=1e-12)
    seen = np.cumsum(np.tile([16] * 18 + [12], 3))  # 300 examples: 18 full minibatches and one of 12
    np.testing.assert_array_equal(runs[0].recorded_at, np.flatnonzero(seen % 160 == 0) + 1)
    assert runs[0].loss.shape == (17, runs[0].recorded_at.size)


def literal_sgd(convention, param, grads, lr, mu, wd, *, nesterov=False, dampening=0.0):
    """The optimizer step of each convention written out, with weight decay."""
    v = None
    for g in grads:
        if convention == "goodfellow":
            param = param - lr * wd * param  # decoupled weight decay first
            v = mu * (0 if v is None else v) - lr * g
            param = param + (mu * v - lr * g if nesterov else v)
            continue
        g = g + wd * param
        if convention == "mxnet":
            v = mu * (0 if v is None else v) + lr * g
            param = param - v
        elif convention == "torch":
            v = g if v is None else mu * v + (1 - dampening) * g
            param = param - lr * (g + mu * v if nesterov else v)
        else:  # d2l
            v = mu * (0 if v is None else v) + g
            param = param - lr * (g + mu * v if nesterov else v)
    return param


@pytest.mark.parametrize("variant", VARIANTS)
def test_optimizer_follows_the_convention_written_out(variant):
    settings, gd = form(variant)
    shapes = [(3, 4), (70_000,), (5,), ()]
    params = [RNG.normal(size=s) for s in shapes]
    mirror = [p.copy() for p in params]
    momentum = 0.0 if gd else 0.8
    optimizer = SGD(params, lr=0.05, momentum=momentum, weight_decay=0.02, **settings)
    steps = [[RNG.normal(size=s) for s in shapes] for _ in range(20)]
    for grads in steps:
        optimizer.step(grads)
    for i, (param, start) in enumerate(zip(params, mirror)):
        expected = literal_sgd(settings["convention"], start, [grads[i] for grads in steps], 0.05, momentum, 0.02,
                               nesterov=settings.get("nesterov", False), dampening=settings.get("dampening", 0.0))
        np.testing.assert_allclose(param, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("variant", VARIANTS)
def test_results_do_not_depend_on_the_thread_count(variant):
    rng = np.random.default_rng(3)
    rule = make_rule(variant, rng.uniform(0.1, 1.0, 37), rng.uniform(0.05, 0.99, 37))
    problems = [polyak.Quadratic.diagonal(rng.uniform(0, 2, (37, 131)), rng.normal(size=(37, 131))),
                polyak.Quadratic.dense(np.stack([spd(20, rng) for _ in range(37)]), rng.normal(size=(37, 20)))]
    for problem in problems:
        runs = [polyak.run(problem, rule, np.ones(problem.dim), 300, record=("loss", "trajectory"), every=7,
                           n_threads=t) for t in (1, 2, 3)]
        for other in runs[1:]:
            for name in ("x", "velocity", "loss", "trajectory", "steps_taken", "diverged"):
                a, b = getattr(runs[0], name), getattr(other, name)
                assert (a is None) == (b is None)
                if a is not None:
                    np.testing.assert_array_equal(a, b)  # bit for bit, NaN where NaN


@pytest.mark.parametrize("variant", VARIANTS)
def test_closed_form_stops_where_the_kernel_stops(variant):
    # lr 4 diverges on λ up to 1.4 in every form; lr 0.1 converges: the closed form checks
    # after every 128th step, as the kernel does, and stops the diverging configurations there
    lam = np.linspace(0.2, 1.4, 6)
    problem = polyak.Quadratic.dense(np.diag(lam) + 0.01 * (1 - np.eye(6)), RNG.normal(size=(3, 6)))
    rule = make_rule(variant, np.array([0.1, 4.0, 5.0]), np.array([0.5, 0.5, 0.9]))
    options = dict(record=("loss", "trajectory"), every=50)
    ran = polyak.run(problem, rule, np.ones(6), 2000, **options)
    exact = polyak.run(problem, rule, np.ones(6), 2000, implementation="closed-form", **options)
    np.testing.assert_array_equal(ran.diverged, [False, True, True])
    np.testing.assert_array_equal(exact.diverged, ran.diverged)
    np.testing.assert_array_equal(exact.steps_taken, ran.steps_taken)
    assert ran.steps_taken[0] == 2000 and ran.diverged_at[0] == -1
    for i in (1, 2):  # the iterate at diverged_at is the first beyond the bound, in closed form
        before, at = (polyak.run(problem, rule, np.ones(6), int(t), implementation="closed-form",
                                 divergence_bound=1e300).x[i] for t in (ran.steps_taken[i], ran.diverged_at[i]))
        assert np.max(np.abs(before)) <= 1e100 < np.max(np.abs(at))
    for name in ("loss", "trajectory"):
        np.testing.assert_array_equal(np.isnan(getattr(exact, name)), np.isnan(getattr(ran, name)))
    np.testing.assert_allclose(exact.x, ran.x, rtol=1e-6)  # diverged ones grow every rounding error
