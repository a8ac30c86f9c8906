"""The Airfoil data and minibatch SGD with momentum on it, against the textbook."""

import numpy as np
import pytest

import polyak
from polyak.train import linear_regression, sgd_momentum, train_from_scratch


def test_airfoil_is_prepared_like_the_textbook():
    X, y = polyak.data.airfoil()
    assert X.shape == (1500, 5) and y.shape == (1500,) and X.dtype == y.dtype == np.float32
    from importlib import resources

    path = resources.files("polyak").joinpath("_data/airfoil_self_noise.dat")
    # the book's own lines (d2l get_data_ch11), with NumPy's other text parser
    data = np.genfromtxt(path, dtype=np.float32, delimiter="\t")
    assert data.shape == (1503, 6)
    data = (data - data.mean(axis=0)) / data.std(axis=0)
    np.testing.assert_array_equal(X, data[:1500, :-1])
    np.testing.assert_array_equal(y, data[:1500, -1])
    # and what the float32 arithmetic approximates: mean 0, population std 1 over all 1503 rows
    raw = np.loadtxt(path)
    standardized = (raw - raw.mean(axis=0)) / raw.std(axis=0)
    np.testing.assert_allclose(X, standardized[:1500, :5], atol=5e-5)
    np.testing.assert_allclose(y, standardized[:1500, 5], atol=5e-5)
    assert "CC BY 4.0" in polyak.data.AIRFOIL_ATTRIBUTION


@pytest.fixture(scope="module")
def airfoil64():
    X, y = polyak.data.airfoil()
    return X.astype(np.float64), y.astype(np.float64)


def test_sgd_momentum_is_the_books_update():
    param, grad, velocity = np.array([1.0, 2.0]), np.array([0.5, -1.0]), np.array([0.2, 0.0])
    sgd_momentum([(param, grad)], [velocity], {"lr": 0.1, "momentum": 0.9})
    np.testing.assert_allclose(velocity, [0.9 * 0.2 + 0.5, -1.0])
    np.testing.assert_allclose(param, [1.0 - 0.1 * 0.68, 2.0 + 0.1])
    np.testing.assert_array_equal(grad, 0.0)


def test_same_minibatches_same_trajectory_as_the_textbook_loop(airfoil64):
    X, y = airfoil64
    result = linear_regression(X, y, polyak.Momentum([0.02, 0.01], [0.5, 0.9]))
    for c, (lr, momentum) in enumerate([(0.02, 0.5), (0.01, 0.9)]):
        losses, w, b = train_from_scratch(X, y, lr, momentum)
        np.testing.assert_allclose(result.loss[c], losses, rtol=1e-10)
        np.testing.assert_allclose(result.w[c], w, rtol=1e-10, atol=1e-12)
        assert result.b[c] == pytest.approx(b, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("lr, momentum", [(0.02, 0.5), (0.01, 0.9), (0.005, 0.9)])
def test_the_textbooks_three_runs_end_where_the_textbooks_do(lr, momentum):
    X, y = polyak.data.airfoil()
    result = linear_regression(X, y, polyak.Momentum(lr, momentum))
    assert result.loss.shape == (15,)
    np.testing.assert_allclose(result.epochs, np.arange(1, 16) * 200 / 1500)
    assert 0.24 <= result.loss[-1] <= 0.25
    assert result.loss[-1] < result.loss[0]


def test_divergence_stops_a_configuration_and_the_others_go_on(airfoil64):
    X, y = airfoil64
    result = linear_regression(X, y, polyak.Momentum([0.01, 5.0], 0.9), epochs=3)
    np.testing.assert_array_equal(result.diverged, [False, True])
    assert result.steps_taken[0] == 450 and result.steps_taken[1] < 450
    assert result.diverged_at.tolist() == [-1, result.steps_taken[1] + 1]
    assert np.all(np.abs(result.x[1]) <= 1e100)  # the last state within the bound
    reference = linear_regression(X, y, polyak.Momentum([0.01, 5.0], 0.9), epochs=3, implementation="reference")
    np.testing.assert_array_equal(reference.steps_taken, result.steps_taken)
    np.testing.assert_allclose(reference.x, result.x, rtol=1e-3)
    stopped = result.recorded_at > result.steps_taken[1]
    assert np.all(np.isnan(result.loss[1, stopped])) and np.all(np.isfinite(result.loss[1, ~stopped]))
    assert np.all(np.isfinite(result.loss[0]))


def test_a_schedule_is_one_multiplier_per_minibatch(airfoil64):
    X, y = airfoil64
    halved = linear_regression(X, y, polyak.Momentum(0.02, 0.5, schedule=np.full(300, 0.5)))
    plain = linear_regression(X, y, polyak.Momentum(0.01, 0.5))
    np.testing.assert_allclose(halved.loss, plain.loss, rtol=1e-12)
    with pytest.raises(ValueError, match="schedule has 10 multipliers but steps=300 needs 300"):
        linear_regression(X, y, polyak.GD(0.01, schedule=np.ones(10)))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(rule=0.01), TypeError, r"rule must be polyak.GD or polyak.Momentum; got float"),
        (dict(batch_size=0), ValueError, r"batch_size must be >= 1"),
        (dict(epochs=-1), ValueError, r"epochs must be >= 0"),
        (dict(record_every=1.5), TypeError, r"record_every must be an integer"),
        (dict(implementation="closed-form"), ValueError, r"a least-squares plan runs with implementation 'kernel' or 'reference'"),
        (dict(divergence_bound=-1.0), ValueError, r"divergence_bound must be > 0"),
    ],
)
def test_bad_training_arguments(kwargs, error, match):
    X, y = polyak.data.airfoil()
    arguments = dict(rule=polyak.Momentum(0.01, 0.9))
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        linear_regression(X, y, **arguments)


def test_one_float64_configuration():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3
    result = linear_regression(X, y, polyak.Momentum(0.1, 0.5), epochs=30, record_every=40)
    assert result.w.shape == (3,) and result.loss.shape == (30,) and result.x.shape == (4,)
    np.testing.assert_allclose(result.w, [1.0, -2.0, 0.5], atol=1e-3)
    assert result.b == pytest.approx(0.3, abs=1e-3)
    losses, w, b = train_from_scratch(X, y, 0.1, 0.5, epochs=30, record_every=40)
    np.testing.assert_allclose(result.loss, losses, rtol=1e-10, atol=1e-15)
    with pytest.raises(ValueError, match="lr must be a scalar or a 1-D array with one entry per problem"):
        linear_regression(X, y, polyak.Momentum([], []))


def test_bad_data():
    rule = polyak.Momentum(0.1, 0.5)
    with pytest.raises(ValueError, match=r"y must have shape \(3,\)"):
        linear_regression(np.ones((3, 2)), np.ones(4), rule)
    with pytest.raises(ValueError, match=r"X must have shape \(N, d\)"):
        linear_regression(np.ones(3), np.ones(3), rule)
    with pytest.raises(ValueError, match=r"1 <= d <= 64"):
        linear_regression(np.ones((3, 65)), np.ones(3), rule)
