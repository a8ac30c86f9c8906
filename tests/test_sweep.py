"""polyak.sweep: metrics of grids of configurations, against independent simulations and theory."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from conftest import UPDATE_VARIANTS, literal_run

import polyak
from polyak import analysis

RNG = np.random.default_rng(10)
#: (variant, convention, nesterov, dampening) of every form a sweep takes (GD is β = 0)
FORMS = [(name, form.get("convention"), form.get("nesterov", False), form.get("dampening", 0.0))
         for name, form in UPDATE_VARIANTS.items() if not form.get("gd")]


def literal_metrics(lam, c, x0, lr, beta, steps, tol, *, convention, nesterov, dampening):
    """f(x_t) − f* for t = 0..T by each library's literal update on x, from the exact error."""
    x_star = -c / lam
    losses = [0.5 * np.sum(lam * (np.asarray(x0) - x_star) ** 2)]
    x, v = np.asarray(x0, float), None
    for t in range(steps):
        x, v = literal_run(convention, lam, c, x, [lr], beta, nesterov=nesterov, dampening=dampening, v0=v)
        losses.append(0.5 * np.sum(lam * (x - x_star) ** 2))
    losses = np.array(losses)
    reached = np.flatnonzero(losses <= tol)
    return losses, int(reached[0]) if reached.size else -1


def coefficient_table(convention, dampening, lr, beta, nesterov):
    """The (C, 8) plan table of fresh sweep configurations (nesterov with β = 0 is GD), for the twin."""
    nesterov = nesterov & (beta > 0)
    rows = [polyak.plans.coefficient_rows(convention, lr, beta, lr.size, nesterov=flag, dampening=dampening, fresh=True)
            for flag in sorted({False, *nesterov.tolist()})]
    return np.where(nesterov[:, None], rows[-1], rows[0])


@pytest.mark.parametrize("fresh", [True, False], ids=["fresh", "with-v0"])
@pytest.mark.parametrize("variant, convention, nesterov, dampening", FORMS, ids=[f[0] for f in FORMS])
def test_the_coefficient_forms_give_the_canonical_coefficients_exactly(variant, convention, nesterov, dampening, fresh):
    # plans and the sweep kernel build each row from the bilinear forms A + B lr + C β + D (lr β);
    # the definition is canonical_coefficients at η = 0 and η = lr (torch's first step apart)
    lr, beta = RNG.uniform(1e-4, 3.0, 500), RNG.uniform(1e-4, 0.999, 500)
    built = polyak.plans.coefficient_rows(convention, lr, beta, lr.size, nesterov=nesterov, dampening=dampening,
                                          fresh=fresh)

    def at(eta, first_step=False):
        return polyak.rules.canonical_coefficients(convention, eta, beta, nesterov=nesterov, dampening=dampening,
                                                   first_step=first_step)

    fixed, scaled, first = at(0 * lr), at(lr), at(0 * lr, first_step=fresh)
    expected = np.stack(np.broadcast_arrays(beta, fixed.a, scaled.a - fixed.a, first.a, fixed.k, scaled.k - fixed.k,
                                            fixed.e, scaled.e - fixed.e), axis=-1)
    np.testing.assert_array_equal(built, expected)
    shared = polyak.plans.coefficient_rows(convention, lr[7], beta[7], 3, nesterov=nesterov, dampening=dampening,
                                           fresh=fresh)  # scalars: one row for all
    np.testing.assert_array_equal(shared, np.broadcast_to(expected[7], (3, 8)))


@pytest.mark.parametrize("variant, convention, nesterov, dampening", FORMS, ids=[f[0] for f in FORMS])
def test_sweep_equals_an_independent_simulation_of_every_configuration(variant, convention, nesterov, dampening):
    lam = np.array([0.05, 0.3, 1.0, 2.5])
    c = RNG.normal(size=4)
    x0 = RNG.normal(size=4)
    lrs, betas = np.array([0.05, 0.2, 0.45]), np.array([0.0, 0.5, 0.85])
    steps, tol = 60, 1e-3
    result = polyak.sweep(polyak.Quadratic.diagonal(lam, c), steps, lr=lrs, beta=betas, nesterov=nesterov,
                          convention=convention, dampening=dampening, x0=x0, tol=tol, every=10)
    assert result.dims == ("lr", "beta") and result.final_loss.shape == (3, 3)
    for i, lr in enumerate(lrs):
        for j, beta in enumerate(betas):
            losses, reached = literal_metrics(lam, c, x0, lr, beta, steps, tol, convention=convention,
                                              nesterov=nesterov and beta > 0, dampening=dampening)
            np.testing.assert_allclose(result.final_loss[i, j], losses[-1], rtol=1e-10, atol=1e-14 * losses[0])
            np.testing.assert_allclose(result.loss[i, j], losses[::10], rtol=1e-10, atol=1e-14 * losses[0])
            near = np.abs(losses - tol) <= 1e-9 * tol
            if not near.any():
                assert result.steps_to_tol[i, j] == reached


def test_the_kernel_equals_its_numpy_twin_with_divergence_and_a_schedule():
    lam = np.geomspace(1e-3, 1.0, 70)
    problem = polyak.Quadratic.diagonal(lam)
    schedule = np.linspace(1.0, 0.3, 300)
    lrs, betas = np.array([0.5, 2.0, 4.5, 30.0]), np.linspace(0.0, 0.95, 5)
    result = polyak.sweep(problem, 300, lr=lrs, beta=betas, tol=1e-4, every=7, schedule=schedule)
    lr, beta = (v.ravel() for v in np.meshgrid(lrs, betas, indexing="ij"))
    table = coefficient_table("d2l", 0.0, lr, beta, np.zeros(lr.size, bool))
    final, reached, diverged, loss = polyak.reference.sweep(np.tile(lam, (lr.size, 1)), np.ones((lr.size, 70)), table,
                                                            schedule, 300, tol=1e-4, every=7, bound=1e100)
    assert 0 < diverged.sum() < lr.size and result.rate is None
    np.testing.assert_array_equal(result.diverged.ravel(), diverged)
    np.testing.assert_array_equal(result.steps_to_tol.ravel(), reached)
    np.testing.assert_allclose(result.final_loss.ravel(), final, rtol=1e-10)
    np.testing.assert_array_equal(np.isnan(result.loss.reshape(lr.size, -1)), np.isnan(loss))
    np.testing.assert_allclose(result.loss.reshape(lr.size, -1), loss, rtol=1e-10)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 9), steps=st.integers(1, 300), form=st.sampled_from(FORMS), tol=st.sampled_from([None, 1e-3]),
       every=st.sampled_from([None, 7]), seed=st.integers(0, 2**32 - 1))
def test_the_kernel_equals_its_twin_on_random_constant_rate_sweeps(n, steps, form, tol, every, seed):
    # the recurrence path (a constant learning rate), every form, records and tolerance on and off
    _, convention, nesterov, dampening = form
    rng = np.random.default_rng(seed)
    lam, x0 = rng.uniform(0.01, 3.0, n), rng.normal(size=n)
    lrs, betas = rng.uniform(0.01, 0.8, 5), rng.uniform(0.0, 0.99, 4)
    result = polyak.sweep(polyak.Quadratic.diagonal(lam), steps, lr=lrs, beta=betas, nesterov=nesterov,
                          convention=convention, dampening=dampening, x0=x0, tol=tol, every=every)
    lr, beta = (v.ravel() for v in np.meshgrid(lrs, betas, indexing="ij"))
    table = coefficient_table(convention, dampening, lr, beta, np.full(lr.size, nesterov))
    final, reached, diverged, loss = polyak.reference.sweep(np.tile(lam, (lr.size, 1)), np.tile(x0, (lr.size, 1)),
                                                            table, np.ones(1), steps, tol=tol, every=every, bound=1e100)
    np.testing.assert_array_equal(result.diverged.ravel(), diverged)
    np.testing.assert_allclose(result.final_loss.ravel(), final, rtol=1e-9, atol=1e-300)  # (the kernel flushes subnormals)
    if tol is not None:
        np.testing.assert_array_equal(result.steps_to_tol.ravel(), reached)
    if every is not None:
        np.testing.assert_allclose(result.loss.reshape(lr.size, -1), loss, rtol=1e-9, atol=1e-300)  # (the kernel flushes subnormals)


def test_a_dense_problem_sweeps_like_run_on_it():
    M = RNG.normal(size=(5, 5))
    Q = M @ M.T / 5 + 0.1 * np.eye(5)
    c = RNG.normal(size=5)
    problem = polyak.Quadratic.dense(Q, c)
    x0 = RNG.normal(size=5)
    lrs = np.array([0.1, 0.3])
    result = polyak.sweep(problem, 50, lr=lrs, beta=0.7, x0=x0)
    ran = polyak.run(problem, polyak.Momentum(lrs, 0.7), x0, 50)
    x_star, _ = analysis.minimizer(Q, c)
    error = ran.x - x_star
    expected = 0.5 * np.einsum("bi,ij,bj->b", error, Q, error)
    np.testing.assert_allclose(result.final_loss, expected, rtol=1e-8)


def test_the_rate_is_the_worst_spectral_radius_over_the_spectrum():
    lam = RNG.uniform(0.01, 3.0, 9)
    lrs, betas = np.linspace(0.05, 1.5, 7), np.linspace(0.0, 0.95, 6)
    for nesterov in (False, True):
        result = polyak.sweep(polyak.Quadratic.diagonal(lam), 1, lr=lrs, beta=betas, nesterov=nesterov)
        expected = np.max(analysis.spectral_radius(lrs[:, None, None], betas[None, :, None], lam,
                                                   nesterov=nesterov), axis=-1) if nesterov is False else None
        if nesterov:
            expected = np.array([[analysis.rate(polyak.Quadratic.diagonal(lam), polyak.Momentum(lr, beta, nesterov=True))
                                  if beta > 0 else analysis.rate(polyak.Quadratic.diagonal(lam), polyak.GD(lr))
                                  for beta in betas] for lr in lrs])
        np.testing.assert_allclose(result.rate, expected, rtol=1e-12)


def test_results_do_not_depend_on_threads_or_chunks():
    problem = polyak.Quadratic.diagonal(np.geomspace(1e-2, 1.0, 19))
    options = dict(lr=np.linspace(0.1, 3.0, 37), beta=np.linspace(0.0, 0.9, 11), nesterov=np.array([False, True]),
                   tol=1e-6, every=25)
    runs = [polyak.sweep(problem, 200, n_threads=1, **options), polyak.sweep(problem, 200, n_threads=2, **options),
            polyak.sweep(problem, 200, chunk_size=5, **options), polyak.sweep(problem, 200, chunk_size=333, **options)]
    for other in runs[1:]:
        for name in ("final_loss", "steps_to_tol", "diverged", "rate", "loss"):
            np.testing.assert_array_equal(getattr(other, name), getattr(runs[0], name))


def test_axes_dims_and_a_random_search():
    problem = polyak.Quadratic.diagonal(np.ones((3, 2)) * [[1.0], [2.0], [3.0]])
    result = polyak.sweep(problem, 10, lr=[0.1, 0.2], beta=0.5, nesterov=np.array([False, True]))
    assert result.dims == ("problem", "lr", "nesterov") and result.final_loss.shape == (3, 2, 2)
    np.testing.assert_array_equal(result.coords["lr"], [0.1, 0.2])
    # problem p, lr 0.2, nesterov: the run of that one configuration
    alone = polyak.sweep(polyak.Quadratic.diagonal([3.0, 3.0]), 10, lr=0.2, beta=0.5, nesterov=True)
    assert alone.dims == () and alone.final_loss == result.final_loss[2, 1, 1]
    search = polyak.sweep(polyak.problems.ill_conditioned_2d(), 30, lr=[0.1, 0.5, 0.3], beta=[0.0, 0.5, 0.9],
                          grid=False)
    assert search.dims == ("config",) and search.final_loss.shape == (3,)
    grid = polyak.sweep(polyak.problems.ill_conditioned_2d(), 30, lr=[0.1, 0.5, 0.3], beta=[0.0, 0.5, 0.9])
    np.testing.assert_array_equal(search.final_loss, np.diagonal(grid.final_loss))
    # nesterov paired too: each configuration as its own grid of one
    flags = np.array([True, False, True])
    search = polyak.sweep(polyak.problems.ill_conditioned_2d(), 30, lr=[0.1, 0.5, 0.3], beta=[0.5, 0.5, 0.9],
                          nesterov=flags, grid=False)
    alone = [polyak.sweep(polyak.problems.ill_conditioned_2d(), 30, lr=lr, beta=beta, nesterov=flag).final_loss
             for lr, beta, flag in zip([0.1, 0.5, 0.3], [0.5, 0.5, 0.9], flags)]
    np.testing.assert_array_equal(search.final_loss, alone)
    assert search.final_loss[0] != polyak.sweep(polyak.problems.ill_conditioned_2d(), 30, lr=0.1, beta=0.5).final_loss
    best = search.best("final_loss")
    assert best["lr"] == 0.5 and best["beta"] == 0.5


def test_best_finds_the_theorys_optimum_on_the_textbook_problem():
    lr_star, beta_star, rate_star = analysis.optimal_parameters(0.2, 4.0)
    result = polyak.sweep(polyak.problems.ill_conditioned_2d(), 200, lr=np.linspace(0.05, 1.0, 96),
                          beta=np.linspace(0.0, 0.95, 96), tol=1e-10)
    best = result.best("rate")
    # no configuration beats the theory's optimum, and the grid's best comes within its spacing
    assert rate_star - 1e-12 <= best["rate"] <= rate_star + 0.01
    assert abs(best["beta"] - beta_star) < 0.02
    assert result.best()["steps_to_tol"] == result.steps_to_tol[result.steps_to_tol >= 0].min()


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(lr=[]), ValueError, r"lr must be a scalar or a non-empty 1-D array; got shape \(0,\)"),
    (dict(lr=[[0.1, 0.2]]), ValueError, r"lr must be a scalar or a non-empty 1-D array; got shape \(1, 2\)"),
    (dict(lr=[0.1, np.nan]), ValueError, "lr must be finite"),
    (dict(lr=[0.1, 0.0]), ValueError, "lr must be > 0; got 0.0"),
    (dict(beta=1.5), ValueError, r"beta must be in \[0, 1\]; got 1.5"),
    (dict(tol=0.0), ValueError, "tol must be > 0"),
    (dict(steps=-1), ValueError, "steps must be >= 0"),
    (dict(x0=[1.0, 2.0, 3.0]), ValueError, r"x0 must have shape \(2,\)"),
    (dict(grid=False, lr=[0.1, 0.2], beta=[0.1, 0.2, 0.3]), ValueError, "must have one length"),
    (dict(nesterov=1), TypeError, "nesterov must be True, False"),
    (dict(convention="mxnet", nesterov=True), ValueError, "mxnet"),
])
def test_bad_input_is_a_clear_error(kwargs, error, message):
    arguments = dict(steps=10, lr=0.1)
    arguments.update(kwargs)
    steps = arguments.pop("steps")
    with pytest.raises(error, match=message):
        polyak.sweep(polyak.problems.ill_conditioned_2d(), steps, **arguments)


def test_an_unbounded_problem_is_refused():
    with pytest.raises(ValueError, match="unbounded below: an eigenvalue is 0 where the linear term is not"):
        polyak.sweep(polyak.Quadratic.diagonal([0.0, 1.0], [1.0, 0.0]), 10, lr=0.1)
    with pytest.raises(ValueError, match="unbounded below: an eigenvalue is -1 < 0"):
        polyak.sweep(polyak.Quadratic.diagonal([-1.0, 1.0]), 10, lr=0.1)
    flat = polyak.sweep(polyak.Quadratic.diagonal([0.0, 1.0]), 10, lr=0.5, tol=1e-12)  # λ = 0, c = 0: no loss there
    assert flat.final_loss == pytest.approx(0.5 * 0.5**20)


def test_to_xarray_names_the_dims_and_coordinates():
    xarray = pytest.importorskip("xarray")
    result = polyak.sweep(polyak.problems.ill_conditioned_2d(), 20, lr=[0.1, 0.2], beta=[0.0, 0.5, 0.9], tol=1e-3,
                          every=5)
    data = result.to_xarray()
    assert isinstance(data, xarray.Dataset) and dict(data.sizes) == {"lr": 2, "beta": 3, "t": 5}
    np.testing.assert_array_equal(data["final_loss"].values, result.final_loss)
    np.testing.assert_array_equal(data["beta"].values, [0.0, 0.5, 0.9])
    assert len(result.to_dataframe()) == 6


def test_best_names_every_hyperparameter_scalar_or_axis():
    result = polyak.sweep(polyak.problems.ill_conditioned_2d(), 50, lr=[0.3, 0.6], beta=0.5, tol=1e-6)
    best = result.best()
    assert best["beta"] == 0.5 and best["nesterov"] is False and best["lr"] in (0.3, 0.6)
    assert result.constants == {"beta": 0.5, "nesterov": False}


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 9])
def test_the_float32_kernel_follows_the_float64_one(monkeypatch, n):
    # polyak.sweep runs float64; the kernel's float32 instantiation (its own vector widths and
    # lane groups) is called directly with the same arguments in float32
    import polyak._sweep_run as sweep_run
    calls = []
    real = sweep_run._call_kernel
    monkeypatch.setattr(sweep_run, "_call_kernel", lambda f, work, **kw: calls.append(kw) or real(f, work, **kw))
    lam = np.linspace(0.1, 1.0, n)
    result = polyak.sweep(polyak.Quadratic.diagonal(lam), 300, lr=np.linspace(0.1, 2.5, 9), beta=[0.0, 0.5, 0.9],
                          tol=1e-4, every=50)
    arguments = dict(calls[0])
    for name, value in arguments.items():
        if isinstance(value, np.ndarray) and value.dtype == np.float64:  # (outputs: fresh)
            outputs = name in ("final_loss", "loss", "rate")
            arguments[name] = np.empty(value.shape, np.float32) if outputs else value.astype(np.float32)
    polyak._config.kernels("_sweep").sweep_diagonal(**arguments, stop=np.zeros(1, np.intc))
    final = arguments["final_loss"].reshape(result.final_loss.shape)
    np.testing.assert_array_equal(arguments["diverged"].view(bool).reshape(result.diverged.shape), result.diverged)
    finite = (result.final_loss > 1e-30) & (result.final_loss < 1e30)  # (within float32's range)
    assert finite.sum() > 5
    np.testing.assert_allclose(final[finite], result.final_loss[finite], rtol=2e-2)  # (300 float32 steps)
    np.testing.assert_allclose(arguments["loss"].reshape(result.loss.shape)[..., 1], result.loss[..., 1], rtol=1e-4)


def test_a_million_configuration_sweep_at_n_64_stays_below_600_mb():
    # memory does not grow with the steps: no (configurations × n) arrays beyond a chunk in flight
    import tracemalloc

    problem = polyak.Quadratic.diagonal(np.geomspace(1e-3, 1.0, 64))
    tracemalloc.start()
    try:
        result = polyak.sweep(problem, 3, lr=np.linspace(0.01, 3.0, 1000), beta=np.linspace(0.0, 0.99, 1000), tol=1e-6)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.final_loss.size == 10**6 and peak < 600e6
