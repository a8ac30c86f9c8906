"""Bad input gets a ValueError or TypeError that says what was wrong, and changes nothing."""

import numpy as np
import pytest

import polyak

LAM = np.array([[1.0, 2.0, 3.0], [0.5, 1.5, 2.5]])
X0 = np.array([1.0, -1.0, 0.5])


def problem():
    return polyak.Quadratic.diagonal(LAM)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: polyak.Quadratic.diagonal([[1.0, np.nan]]), ValueError, r"lam must be finite; got nan"),
        (lambda: polyak.Quadratic.diagonal([1.0, np.inf]), ValueError, r"lam must be finite; got inf"),
        (lambda: polyak.Quadratic.diagonal([1.0, 2.0], c=[np.nan, 0.0]), ValueError, r"c must be finite"),
        (lambda: polyak.Quadratic.diagonal([1.0, 2.0], c=[1.0]), ValueError, r"c \(the shape of lam\) must have shape \(2,\); got \(1,\)"),
        (lambda: polyak.Quadratic.diagonal(LAM, b=[1.0, 2.0, 3.0]), ValueError, r"b must have shape \(\) or \(2,\)"),
        (lambda: polyak.Quadratic.diagonal(np.ones((2, 2, 2))), ValueError, r"lam must have shape \(n,\) or \(B, n\)"),
        (lambda: polyak.Quadratic.diagonal([]), ValueError, r"n, B >= 1"),
        (lambda: polyak.Quadratic.diagonal(["a", "b"]), TypeError, r"lam must be an array of real numbers"),
        (lambda: polyak.Quadratic.diagonal([1 + 2j, 1.0]), TypeError, r"lam must be real; got a complex array"),
        (lambda: polyak.Quadratic.diagonal([True, False]), TypeError, r"got dtype bool"),
        (lambda: polyak.Quadratic.diagonal(np.array([1.0, None], dtype=object)), TypeError, r"got dtype object"),
        (lambda: polyak.GD(0.0), ValueError, r"lr must be > 0; got 0"),
        (lambda: polyak.GD(-0.1), ValueError, r"lr must be > 0; got -0.1"),
        (lambda: polyak.GD([0.1, -1.0]), ValueError, r"lr must be > 0; got -1"),
        (lambda: polyak.GD(np.nan), ValueError, r"lr must be finite"),
        (lambda: polyak.GD(1j), TypeError, r"lr must be real"),
        (lambda: polyak.GD("fast"), TypeError, r"lr must be an array of real numbers"),
        (lambda: polyak.GD(np.ones((2, 2))), ValueError, r"lr must be a scalar or a 1-D array"),
        (lambda: polyak.Momentum(0.1, np.inf), ValueError, r"beta must be finite; got inf"),
        (lambda: polyak.Momentum(0.1, 1.5), ValueError, r"beta must be in \[0, 1\]; got 1.5"),
        (lambda: polyak.Momentum(0.1, [0.5, -0.1]), ValueError, r"beta must be in \[0, 1\]; got -0.1"),
        (lambda: polyak.Momentum([0.1, 0.2], [0.5, 0.5, 0.5]), ValueError, r"same length .* got 2 and 3"),
        (lambda: polyak.Momentum(0.1, 0.9, convention="adam"), ValueError, r"convention must be one of \[.*'d2l'.*\]; got 'adam'"),
        (lambda: polyak.Momentum(0.1, 0.9, convention="torch", nesterov=True, dampening=0.1), ValueError, r"nesterov momentum requires zero dampening"),
        (lambda: polyak.Momentum(0.1, 0.0, nesterov=True), ValueError, r"nesterov momentum requires beta > 0"),
        (lambda: polyak.Momentum(0.1, 0.9, convention="mxnet", nesterov=True), ValueError, r"use\s+convention='goodfellow'"),
        (lambda: polyak.Momentum(0.1, 0.9, dampening=0.1), ValueError, r"dampening is PyTorch's parameter"),
        (lambda: polyak.Momentum(0.1, 0.9, convention="torch", dampening=1.5), ValueError, r"dampening must be a number in \[0, 1\]"),
        (lambda: polyak.Momentum(0.1, 0.9, convention="torch", dampening=[0.1]), ValueError, r"dampening must be a number in \[0, 1\]; got \[0.1\]"),
        (lambda: polyak.Momentum(0.1, 0.9, nesterov="yes"), TypeError, r"nesterov must be True or False"),
        (lambda: polyak.GD(0.1, schedule=[1.0, -0.5]), ValueError, r"schedule multipliers must be >= 0"),
        (lambda: polyak.GD(0.1, schedule=[[1.0]]), ValueError, r"schedule must be a 1-D array"),
        (lambda: polyak.GD(0.1, schedule=[1.0, np.nan]), ValueError, r"schedule must be finite"),
    ],
)
def test_bad_construction(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(x0=[1.0, 2.0]), ValueError, r"x0 must have shape \(3,\) or \(2, 3\); got \(2,\)"),
        (dict(x0=np.ones((3, 3))), ValueError, r"x0 must have shape \(3,\) or \(2, 3\); got \(3, 3\)"),
        (dict(x0=[1.0, np.nan, 0.0]), ValueError, r"x0 must be finite; got nan at index \(1,\)"),
        (dict(x0=["a", "b", "c"]), TypeError, r"x0 must be an array of real numbers"),
        (dict(x0=[1j, 0, 0]), TypeError, r"x0 must be real"),
        (dict(steps=-1), ValueError, r"steps must be >= 0; got -1"),
        (dict(steps=2.5), TypeError, r"steps must be an integer; got 2.5"),
        (dict(steps=10.0), TypeError, r"steps must be an integer; got 10.0"),
        (dict(steps=True), TypeError, r"steps must be an integer; got True"),
        (dict(every=0), ValueError, r"every must be >= 1; got 0"),
        (dict(every=-3), ValueError, r"every must be >= 1"),
        (dict(record="losses"), ValueError, r"record must be None, 'loss' or 'trajectory' or both as a tuple; got 'losses'"),
        (dict(record=("loss", "x")), ValueError, r"record must be None"),
        (dict(record=5), ValueError, r"record must be None"),
        (dict(rule=polyak.Momentum([0.1, 0.2, 0.3], 0.9)), ValueError, r"lr has 3 entries but the batch has 2 problems"),
        (dict(rule=polyak.Momentum(0.1, [0.9])), ValueError, r"beta has 1 entries but the batch has 2 problems"),
        (dict(rule=polyak.GD(0.1, schedule=[1.0, 1.0])), ValueError, r"schedule has 2 multipliers but steps=5 needs 5"),
        (dict(v0=[0.0, 0.0]), ValueError, r"v0 must have shape \(3,\) or \(2, 3\)"),
        (dict(v0=[0.0, np.inf, 0.0]), ValueError, r"v0 must be finite"),
        (dict(rule=polyak.GD(0.1), v0=np.zeros(3)), ValueError, r"v0 is not used by GD"),
        (dict(n_threads=0), ValueError, r"n_threads must be >= 1; got 0"),
        (dict(n_threads=5000), ValueError, r"n_threads must be <= 1024; got 5000"),
        (dict(steps=2**63), ValueError, r"steps must be <= 4611686018427387904"),
        (dict(every=2**64), ValueError, r"every must be <= 4611686018427387904"),
        (dict(record=["loss", ["trajectory"]]), ValueError, r"record must be None"),
        (dict(divergence_bound=[1.0, 2.0]), ValueError, r"divergence_bound must be a number > 0; got \[1.0, 2.0\]"),
        (dict(divergence_bound=1e39, dtype=np.float32), ValueError, r"below float32's largest value 3.40282e\+38; got 1e\+39"),
        (dict(x0=[1e300, 0.0, 0.0], dtype=np.float32), ValueError, r"x0 has values that float32 cannot represent \(e.g. 1e\+300\)"),
        (dict(rule=polyak.GD(1e-50), dtype=np.float32), ValueError, r"lr has values that float32 cannot represent \(e.g. 1e-50\)"),
        (dict(v0=[0.0, 1e-300, 0.0], dtype=np.float32), ValueError, r"v0 has values that float32 cannot represent"),
        (dict(n_threads=1.5), TypeError, r"n_threads must be an integer"),
        (dict(dtype=np.int32), TypeError, r"dtype must be float32 or float64; got int32"),
        (dict(dtype=np.float16), TypeError, r"dtype must be float32 or float64; got float16"),
        (dict(divergence_bound=-1.0), ValueError, r"divergence_bound must be > 0"),
        (dict(implementation="fortran"), ValueError, r"implementation must be one of 'kernel', 'reference', 'closed-form'; got 'fortran'"),
        (dict(dtype=np.longdouble), ValueError, r"the compiled kernels compute in float32 or float64.*implementation='reference'"),
        (dict(problem="f(x) = x^2"), TypeError, r"problem must be a polyak.Quadratic or a polyak.train.MinibatchLeastSquares; got str"),
        (dict(rule="momentum"), TypeError, r"rule must be polyak.GD or polyak.Momentum; got str"),
    ],
)
def test_bad_run_arguments_change_nothing(kwargs, error, match):
    arguments = dict(problem=problem(), rule=polyak.Momentum(0.1, 0.9), x0=X0.copy(), steps=5)
    arguments.update(kwargs)
    originals = {key: np.copy(value) for key, value in arguments.items() if isinstance(value, np.ndarray)}
    with pytest.raises(error, match=match):
        polyak.run(**arguments)
    for key, value in originals.items():
        np.testing.assert_array_equal(arguments[key], value)


def test_a_successful_run_leaves_its_inputs_unchanged():
    lam, c, x0, v0 = LAM.copy(), -LAM.copy(), np.tile(X0, (2, 1)), np.ones((2, 3))
    lr, beta, schedule = np.array([0.1, 0.2]), np.array([0.5, 0.9]), np.linspace(1, 0.1, 50)
    saved = [a.copy() for a in (lam, c, x0, v0, lr, beta, schedule)]
    rule = polyak.Momentum(lr, beta, convention="goodfellow", schedule=schedule)
    polyak.run(polyak.Quadratic.diagonal(lam, c), rule, x0, 50, v0=v0, record=("loss", "trajectory"))
    for after, before in zip((lam, c, x0, v0, lr, beta, schedule), saved):
        np.testing.assert_array_equal(after, before)


def test_rules_and_problems_are_immutable():
    rule = polyak.Momentum(np.array([0.1, 0.2]), 0.9)
    with pytest.raises(AttributeError, match="immutable"):
        rule.beta = 0.5
    with pytest.raises(ValueError, match="read-only"):
        rule.lr[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        problem().lam[0, 0] = 5.0


def test_integer_float32_and_strided_inputs_are_accepted():
    lam = np.arange(1, 13, dtype=np.int64).reshape(2, 6)[:, ::2] / 10  # non-contiguous
    x0 = np.array([3, -2, 1])  # integers
    reference = polyak.run(polyak.Quadratic.diagonal(np.ascontiguousarray(lam)), polyak.GD(0.5), x0.astype(float), 30)
    strided = polyak.run(polyak.Quadratic.diagonal(lam), polyak.GD(0.5), x0, 30)
    np.testing.assert_array_equal(strided.x, reference.x)
    as32 = polyak.run(polyak.Quadratic.diagonal(lam.astype(np.float32)), polyak.GD(0.5), x0.astype(np.float32), 30)
    assert as32.x.dtype == np.float32
    np.testing.assert_allclose(as32.x, reference.x, rtol=1e-5, atol=1e-7)
    mixed = polyak.run(polyak.Quadratic.diagonal(lam.astype(np.float32)), polyak.GD(0.5), x0, 30)
    assert mixed.x.dtype == np.float64  # integer x0 is float64: the wider type wins
    forced = polyak.run(polyak.Quadratic.diagonal(lam), polyak.GD(0.5), x0, 30, dtype="float32")
    assert forced.x.dtype == np.float32


def test_a_recording_too_large_for_memory_is_refused_up_front():
    huge = polyak.Quadratic.diagonal(np.ones((4096, 4096)))
    with pytest.raises(MemoryError, match=r"would need about 1 TiB but this machine has .* available.*every=k"):
        polyak.run(huge, polyak.GD(0.1), np.ones(4096), 8191, record="trajectory")


def test_float32_runs_refuse_a_problem_float32_cannot_hold():
    big = polyak.Quadratic.diagonal([1e39, 1.0])
    with pytest.raises(ValueError, match="lam has values that float32 cannot represent"):
        polyak.run(big, polyak.GD(0.1), [1.0, 1.0], 1, dtype=np.float32)


def test_more_threads_than_problems_uses_one_per_problem():
    result = polyak.run(problem(), polyak.GD(0.1), X0, 5, n_threads=64)
    assert result.n_threads <= 2


def test_every_beyond_steps_records_only_the_start():
    result = polyak.run(problem(), polyak.GD(0.1), X0, 5, record="loss", every=10**18)
    assert result.loss.shape == (2, 1) and result.recorded_at.tolist() == [0]
    np.testing.assert_allclose(result.loss[:, 0], problem().value(X0))


def test_numpy_integer_steps_are_accepted():
    result = polyak.run(problem(), polyak.GD(0.1), X0, np.int64(7), every=np.int32(7), record="loss")
    assert result.steps == 7 and result.loss.shape == (2, 2)
