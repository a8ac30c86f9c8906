"""polyak.plot draws polyak's own numbers: the artists' data against run, the closed forms,
sweeps and training (Agg backend, no display)."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

import polyak  # noqa: E402
import polyak.plot  # noqa: E402
from polyak import analysis  # noqa: E402
from polyak.cli import TEXTBOOK_RUNS, TEXTBOOK_START  # noqa: E402


def new_ax():
    return Figure(layout="constrained").subplots()


def lines(ax, gid):
    return [line for line in ax.get_lines() if line.get_gid() == gid]


def mesh(ax, gid):
    (found,) = [m for m in ax.collections if m.get_gid() == gid]
    return found


@pytest.mark.parametrize("index", range(len(TEXTBOOK_RUNS)))
def test_trace_2d_draws_the_runs_trajectory(index):
    problem = polyak.problems.ill_conditioned_2d()
    result = polyak.run(problem, TEXTBOOK_RUNS[index][1], TEXTBOOK_START, 20, record="trajectory")
    ax = new_ax()
    assert polyak.plot.trace_2d(problem, result, ax=ax) is ax
    (path,) = lines(ax, "path")
    np.testing.assert_array_equal(path.get_xydata(), result.trajectory)
    (star,) = lines(ax, "minimizer")
    np.testing.assert_array_equal(star.get_xydata()[0], [0.0, 0.0])
    low, high = ax.get_ylim()   # the window holds the whole path (x₂ grows when it diverges)
    assert low <= result.trajectory[:, 1].min() and high >= result.trajectory[:, 1].max()
    assert ax.get_xlim()[0] <= -5.5 and ax.get_xlim()[1] >= 1.0


def test_trace_2d_grows_x2_for_the_diverging_run_only():
    problem = polyak.problems.ill_conditioned_2d()
    diverging = polyak.run(problem, polyak.GD(0.6), TEXTBOOK_START, 20, record="trajectory")
    converging = polyak.run(problem, polyak.GD(0.2), TEXTBOOK_START, 20, record="trajectory")  # within the window
    assert abs(diverging.trajectory[-1, 1]) > 1000
    assert polyak.plot.trace_2d(problem, diverging, ax=new_ax()).get_ylim()[0] < -1600
    assert polyak.plot.trace_2d(problem, converging, ax=new_ax()).get_ylim() == (-3.0, 1.0)


def test_trace_2d_contours_are_evenly_spaced_in_the_root_of_f():
    problem = polyak.problems.ill_conditioned_2d()
    result = polyak.run(problem, polyak.GD(0.4), TEXTBOOK_START, 20, record="trajectory")
    ax = polyak.plot.trace_2d(problem, result, ax=new_ax(), levels=8)
    (contours,) = [c for c in ax.collections if c.get_gid() == "contours"]
    roots = np.sqrt(contours.levels)
    assert len(roots) == 8
    np.testing.assert_allclose(np.diff(roots), roots[0], rtol=1e-9)
    assert contours.levels[-1] == pytest.approx(problem.value(np.array([-5.5, -3.0])), rel=1e-3)


def test_trace_2d_several_paths_with_labels():
    problem = polyak.problems.ill_conditioned_2d()
    results = [polyak.run(problem, rule, TEXTBOOK_START, 20, record="trajectory") for _, rule in TEXTBOOK_RUNS[2:]]
    ax = polyak.plot.trace_2d(problem, results, [name for name, _ in TEXTBOOK_RUNS[2:]], ax=new_ax())
    drawn = lines(ax, "path")
    for line, result in zip(drawn, results):
        np.testing.assert_array_equal(line.get_xydata(), result.trajectory)
    assert len({line.get_color() for line in drawn}) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [name for name, _ in TEXTBOOK_RUNS[2:]]


def test_trace_2d_refuses_what_it_cannot_draw():
    result = polyak.run(polyak.problems.ill_conditioned_2d(), polyak.GD(0.4), TEXTBOOK_START, 5)
    with pytest.raises(ValueError, match="record='trajectory'"):
        polyak.plot.trace_2d(polyak.problems.ill_conditioned_2d(), result, ax=new_ax())
    with pytest.raises(ValueError, match="dimension 2"):
        polyak.plot.trace_2d(polyak.Quadratic.diagonal([1.0, 2.0, 3.0]), result, ax=new_ax())
    traced = polyak.run(polyak.problems.ill_conditioned_2d(), polyak.GD(0.4), TEXTBOOK_START, 5, record="trajectory")
    with pytest.raises(ValueError, match="one entry per curve"):
        polyak.plot.trace_2d(polyak.problems.ill_conditioned_2d(), traced, ["a", "b"], ax=new_ax())


def test_coordinates_are_the_scalar_gradient_descent_iterates():
    lam = np.array([0.1, 1.0, 10.0, 19.0])
    result = polyak.run(polyak.Quadratic.diagonal(lam[:, None]), polyak.GD(0.1), [1.0], 20, record="trajectory")
    ax = polyak.plot.coordinates(result, [f"λ = {v:g}" for v in lam], ax=new_ax())
    drawn = lines(ax, "coordinate")
    assert len(drawn) == 4
    for line, v, path in zip(drawn, lam, result.trajectory):
        np.testing.assert_array_equal(line.get_xdata(), np.arange(21))
        np.testing.assert_array_equal(line.get_ydata(), path[:, 0])
        np.testing.assert_allclose(line.get_ydata(), (1 - 0.1 * v) ** np.arange(21), atol=1e-15)


def test_coordinates_magnitude_is_the_absolute_value_on_a_log_axis():
    lam = 2.0 ** -np.arange(1, 5)
    result = polyak.run(polyak.Quadratic.diagonal(lam), polyak.Momentum(3.0, 0.5), np.ones(4), 30, record="trajectory")
    ax = polyak.plot.coordinates(result, ax=new_ax(), magnitude=True, cmap="viridis")
    assert ax.get_yscale() == "log"
    for i, line in enumerate(lines(ax, "coordinate")):
        np.testing.assert_array_equal(line.get_ydata(), np.abs(result.trajectory[:, i]))


def test_loss_curves_on_airfoil_are_the_trainings_losses_against_epochs():
    X, y = polyak.data.airfoil()
    rule = polyak.Momentum(np.array([0.02, 0.01, 0.005]), np.array([0.5, 0.9, 0.9]))
    result = polyak.train.linear_regression(X, y, rule)
    ax = polyak.plot.loss_curves(result, ["a", "b", "c"], ax=new_ax(), x="epochs", ylim=(0.22, 0.36))
    drawn = lines(ax, "loss")
    assert len(drawn) == 3
    for line, loss in zip(drawn, result.loss):
        np.testing.assert_array_equal(line.get_xdata(), result.epochs)
        np.testing.assert_array_equal(line.get_ydata(), loss)
    np.testing.assert_allclose(drawn[0].get_xdata()[[0, -1]], [200 / 1500, 2.0])
    # the book's from-scratch loop on the same minibatches gives the same curve
    scratch, _, _ = polyak.train.train_from_scratch(X.astype(np.float64), y.astype(np.float64), 0.02, 0.5)
    np.testing.assert_allclose(drawn[0].get_ydata(), scratch, rtol=1e-4)
    assert ax.get_ylim() == (0.22, 0.36) and ax.get_xlabel() == "epoch"


def test_loss_curves_subtract_the_minimum_and_leave_out_a_stopped_runs_tail():
    problem = polyak.Quadratic.diagonal([1.0], b=2.0)
    result = polyak.run(problem, polyak.GD(np.array([0.5, 2.5])), [1.0], 400, record="loss",
                        divergence_bound=1e6)
    ax = polyak.plot.loss_curves(result, ax=new_ax(), minimum=2.0, log=True)
    kept, stopped = lines(ax, "loss")
    np.testing.assert_array_equal(kept.get_ydata(), result.loss[0] - 2.0)
    np.testing.assert_allclose(kept.get_ydata(), 0.5 * 0.25 ** np.arange(401), atol=1e-15)
    assert result.diverged[1] and np.all(np.isfinite(stopped.get_ydata()))
    assert len(stopped.get_ydata()) == np.count_nonzero(np.isfinite(result.loss[1]))
    with pytest.raises(ValueError, match="'steps' or 'epochs'"):
        polyak.plot.loss_curves(result, ax=new_ax(), x="time")


def test_effective_weights_are_beta_to_the_tau():
    betas = [0.95, 0.9, 0.6, 0.0]
    ax = polyak.plot.effective_weights(betas, 40, ax=new_ax())
    for line, beta in zip(lines(ax, "weights"), betas):
        np.testing.assert_array_equal(line.get_ydata(), analysis.effective_weights(beta, 40))
        assert line.get_ydata()[1] == beta
    assert "1/(1 − β) = 20" in ax.get_legend().get_texts()[0].get_text()


def test_terminal_velocity_steps_are_the_runs_and_tend_to_one_over_one_minus_alpha():
    alphas = np.array([0.5, 0.9, 0.99])
    ax = polyak.plot.terminal_velocity(alphas, lr=0.1, steps=700, ax=new_ax())
    run = polyak.run(polyak.Quadratic.diagonal([0.0], c=[1.0]),
                     polyak.Momentum(0.1, alphas, convention="goodfellow"), [0.0], 700, record="trajectory")
    steps, bounds = lines(ax, "step"), lines(ax, "terminal")
    for line, bound, alpha, path in zip(steps, bounds, alphas, run.trajectory[..., 0]):
        np.testing.assert_allclose(line.get_ydata(), np.abs(np.diff(path)) / 0.1, rtol=1e-12)
        np.testing.assert_allclose(line.get_ydata(), (1 - alpha ** np.arange(1, 701)) / (1 - alpha), rtol=1e-9)
        assert bound.get_ydata()[0] == pytest.approx(analysis.terminal_velocity(0.1, 1.0, alpha) / 0.1)
    np.testing.assert_allclose([b.get_ydata()[0] for b in bounds], [2, 10, 100])


def test_step_lengths_under_a_schedule_tell_the_conventions_apart():
    problem = polyak.Quadratic.diagonal([0.0], c=[1.0])
    results = [polyak.run(problem, polyak.Momentum(0.1, 0.9, convention=c, schedule=[1.0, 0.1]), [0.0], 2,
                          record="trajectory") for c in ("d2l", "mxnet")]
    ax = polyak.plot.step_lengths(results, ["d2l", "mxnet"], ax=new_ax(), log=False)
    d2l, mxnet = lines(ax, "step")
    np.testing.assert_allclose(d2l.get_ydata(), [0.1, 0.019], rtol=1e-12)
    np.testing.assert_allclose(mxnet.get_ydata(), [0.1, 0.1], rtol=1e-12)


def test_friction_viscous_is_heavy_ball_and_only_it_settles():
    ax = polyak.plot.friction(ax=new_ax(), dt=0.1, duration=40.0)
    (viscous,), (turbulent,), (dry,) = lines(ax, "viscous"), lines(ax, "turbulent"), lines(ax, "dry")
    rule = polyak.Momentum(0.1 * 0.1, 1 - 0.5 * 0.1, convention="goodfellow")   # ε = dt², α = 1 − k·dt
    heavy_ball = polyak.run(polyak.Quadratic.diagonal([1.0]), rule, [1.0], 400, record="trajectory")
    np.testing.assert_array_equal(viscous.get_ydata(), heavy_ball.trajectory[:, 0])
    np.testing.assert_allclose(polyak.plot.particle("viscous", 0.5, dt=0.1, steps=400), viscous.get_ydata(),
                               rtol=1e-10, atol=1e-12)
    assert abs(viscous.get_ydata()[-1]) < 1e-3                       # settles at the minimum
    assert np.abs(turbulent.get_ydata()[-70:]).max() > 0.05           # still swinging
    assert dry.get_ydata()[-1] == dry.get_ydata()[-100] != 0          # stopped, short of the minimum
    assert abs(dry.get_ydata()[-1]) <= 0.3
    with pytest.raises(ValueError, match="drag must be"):
        polyak.plot.particle("sticky", 1.0)


def _grid():
    return np.linspace(0.02, 4.0, 50), np.linspace(0.0, 0.99, 40)


@pytest.mark.parametrize("nesterov", [False, True])
def test_rate_map_is_the_spectral_radius_on_the_grid_with_the_optimum(nesterov):
    lr, beta = _grid()
    ax = polyak.plot.rate_map([0.01, 0.3, 1.0], lr=lr, beta=beta, ax=new_ax(), nesterov=nesterov)
    expected = np.maximum(analysis.spectral_radius(lr[None, :], beta[:, None], 0.01, nesterov=nesterov),
                          analysis.spectral_radius(lr[None, :], beta[:, None], 1.0, nesterov=nesterov))
    np.testing.assert_array_equal(np.asarray(mesh(ax, "rate").get_array()).reshape(40, 50), expected)
    (optimum,) = lines(ax, "optimum")
    best = analysis.optimal_parameters(0.01, 1.0, "nesterov" if nesterov else "heavy_ball")
    np.testing.assert_array_equal(optimum.get_xydata()[0], best[:2])
    (edge,) = lines(ax, "stability")
    scale = (1 + 2 * beta) if nesterov else 1
    np.testing.assert_allclose(edge.get_xdata(), (2 + 2 * beta) / scale)
    # on the edge the rate is 1: just inside below, just outside at or above
    inside = analysis.spectral_radius(edge.get_xdata() * 0.999, beta, 1.0, nesterov=nesterov)
    assert np.all(inside < 1)


def test_rate_map_of_one_eigenvalue_reads_lr_times_lambda():
    ax = polyak.plot.rate_map(ax=new_ax())
    assert ax.get_xlabel() == "ηλ"
    (optimum,) = lines(ax, "optimum")
    np.testing.assert_allclose(optimum.get_xydata()[0], [1.0, 0.0])   # one step: ηλ = 1, β = 0
    values = np.asarray(mesh(ax, "rate").get_array())
    assert values.shape == (200, 300)


def test_regime_map_is_the_regime_on_the_grid():
    x, beta = _grid()
    ax = polyak.plot.regime_map(lr_lam=x, beta=beta, ax=new_ax())
    names = analysis.regime(x[None, :], beta[:, None], 1.0)
    indices = np.asarray(mesh(ax, "regime").get_array()).reshape(40, 50)
    assert np.all(np.array(analysis.REGIMES)[indices] == names)
    assert set(np.unique(names)) == {"monotonic", "ripples", "oscillating", "divergent"}
    (critical,) = lines(ax, "critical")
    np.testing.assert_allclose(critical.get_ydata(), (1 - np.sqrt(critical.get_xdata())) ** 2)
    # critical damping separates real from complex roots
    for point_x in (0.1, 0.5, 2.0):
        b = (1 - np.sqrt(point_x)) ** 2
        assert analysis.regime(point_x, b + 0.01, 1.0) == "ripples"
        assert analysis.regime(point_x, max(b - 0.01, 0.0), 1.0) in ("monotonic", "oscillating")


def test_rate_curves_are_the_optimal_rates():
    kappa = np.geomspace(1.0, 1e6, 25)
    ax = polyak.plot.rate_curves(kappa, ax=new_ax())
    for method in ("gd", "heavy_ball", "nesterov"):
        (line,) = lines(ax, method)
        np.testing.assert_array_equal(line.get_xdata(), kappa)
        rates = np.array([analysis.optimal_parameters(1 / k, 1.0, method)[2] for k in kappa])
        np.testing.assert_allclose(1 - line.get_ydata(), rates, rtol=1e-7, atol=1e-7)
    assert ax.get_xscale() == ax.get_yscale() == "log"


@pytest.fixture(scope="module")
def swept():
    spectrum = np.geomspace(0.01, 1.0, 16)
    return polyak.sweep(polyak.Quadratic.diagonal(spectrum), 300, lr=np.geomspace(0.1, 4.0, 24),
                        beta=np.linspace(0.0, 0.95, 20), tol=1e-6, progress=False)


def test_sweep_map_is_the_metric_with_the_best_and_the_theory(swept):
    ax = polyak.plot.sweep_map(swept, ax=new_ax())
    drawn = mesh(ax, "steps_to_tol").get_array()
    expected = swept.steps_to_tol.T
    undefined = (expected < 0) | swept.diverged.T | (swept.rate.T >= 1)
    np.testing.assert_array_equal(np.ma.getmaskarray(drawn).reshape(expected.shape), undefined)
    np.testing.assert_array_equal(np.ma.getdata(drawn).reshape(expected.shape)[~undefined], expected[~undefined])
    assert undefined.any() and (~undefined).any()
    unstable = mesh(ax, "unstable").get_array()
    np.testing.assert_array_equal(~np.ma.getmaskarray(unstable).reshape(expected.shape),
                                  swept.diverged.T | (swept.rate.T >= 1))
    best = swept.best()
    (marked,) = lines(ax, "best")
    np.testing.assert_array_equal(marked.get_xydata()[0], [best["lr"], best["beta"]])
    (theory,) = lines(ax, "theory")
    np.testing.assert_array_equal(theory.get_xydata()[0], analysis.optimal_parameters(0.01, 1.0)[:2])
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "linear")    # lr geometric, beta linear


def test_sweep_map_of_the_rate(swept):
    ax = polyak.plot.sweep_map(swept, "rate", ax=new_ax())
    drawn = mesh(ax, "rate").get_array()
    stable = swept.rate.T < 1
    np.testing.assert_array_equal(np.ma.getdata(drawn).reshape(stable.shape)[stable], swept.rate.T[stable])
    (marked,) = lines(ax, "best")
    best = swept.best("rate")
    np.testing.assert_array_equal(marked.get_xydata()[0], [best["lr"], best["beta"]])


def test_sweep_map_refuses_what_it_cannot_draw(swept):
    line = polyak.sweep(polyak.Quadratic.diagonal([0.5, 1.0]), 50, lr=np.linspace(0.1, 1, 5), progress=False)
    with pytest.raises(ValueError, match="two axes"):
        polyak.plot.sweep_map(line, "final_loss", ax=new_ax())
    with pytest.raises(ValueError, match="tol="):
        polyak.plot.sweep_map(line, ax=new_ax())
    with pytest.raises(ValueError, match="metric must be"):
        polyak.plot.sweep_map(swept, "speed", ax=new_ax())


def test_without_ax_a_pyplot_figure_and_never_show(monkeypatch):
    import matplotlib.pyplot as plt

    def refuse():
        raise AssertionError("plt.show() called")

    monkeypatch.setattr(plt, "show", refuse)
    ax = polyak.plot.effective_weights([0.9], 10)
    try:
        assert ax.figure in map(plt.figure, plt.get_fignums())
    finally:
        plt.close("all")


@pytest.fixture(scope="module")
def nqm():
    return pytest.importorskip("polyak.nqm")


def test_nqm_steps_are_optimal_steps_with_the_critical_batch_size(nqm):
    model = nqm.NoisyQuadratic(1 / np.arange(1, 21))
    sizes = 2 ** np.arange(0, 12)
    lr = np.logspace(-3, 0.3, 20)
    curves = [nqm.optimal_steps(model, 0.05, batch_size=sizes, lr=lr),
              nqm.optimal_steps(model, 0.05, batch_size=sizes, lr=lr, beta=np.array([0.0, 0.5, 0.9, 0.99]))]
    critical = [curve.critical_batch_size() for curve in curves]
    ax = polyak.plot.nqm_steps(curves, ["SGD", "momentum"], ax=new_ax(), critical=critical)
    drawn = lines(ax, "steps")
    for line, curve in zip(drawn, curves):
        np.testing.assert_array_equal(line.get_xdata(), sizes)
        np.testing.assert_array_equal(line.get_ydata(), np.where(curve.steps < 0, np.nan, curve.steps))
    assert [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == ":" and
            line.get_gid() is None] == critical
    (ideal,) = lines(ax, "ideal")
    products = ideal.get_xdata() * ideal.get_ydata()
    np.testing.assert_allclose(products, curves[0].steps[0] * sizes[0])
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert critical[1] >= critical[0]                         # momentum raises the critical batch size


def test_nqm_loss_is_the_exact_loss_against_the_simulation(nqm):
    from polyak.nqm import simulate

    model = nqm.NoisyQuadratic(1 / np.arange(1, 11))
    sim = simulate(model, 40, lr=np.array([1.0, 0.1]), beta=np.array([0.0, 0.9]), batch_size=2, replicas=50,
                   seed=3, every=4)
    ax = polyak.plot.nqm_loss(model, sim, ["SGD", "momentum"], ax=new_ax(), band=2.0)
    for i, (exact, dots, floor) in enumerate(zip(lines(ax, "exact"), lines(ax, "simulated"), lines(ax, "steady"))):
        expected = nqm.expected_loss(model, sim.t, lr=sim.lr[i], beta=sim.beta[i], batch_size=2)
        np.testing.assert_allclose(exact.get_ydata(), expected, rtol=1e-14)
        np.testing.assert_array_equal(dots.get_xdata(), sim.t)
        np.testing.assert_array_equal(dots.get_ydata(), sim.mean[i])
        assert floor.get_ydata()[0] == pytest.approx(nqm.steady_state_loss(model, lr=sim.lr[i], beta=sim.beta[i],
                                                                           batch_size=2), rel=1e-14)
        band = ax.collections[i].get_paths()[0].vertices[:, 1]
        assert band.min() == pytest.approx(np.min(sim.mean[i] - 2 * sim.stderr[i]))
        assert band.max() == pytest.approx(np.max(sim.mean[i] + 2 * sim.stderr[i]))
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["SGD", "momentum"]
