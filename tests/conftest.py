import os

import numpy as np
from hypothesis import HealthCheck, settings

import polyak

#: Every form of the update, once: the tests of every layer are parametrized over this list.
UPDATE_VARIANTS = {
    "gd": dict(convention="d2l", gd=True),
    "d2l": dict(convention="d2l"),
    "d2l-nesterov": dict(convention="d2l", nesterov=True),
    "torch": dict(convention="torch"),
    "torch-nesterov": dict(convention="torch", nesterov=True),
    "torch-dampening": dict(convention="torch", dampening=0.3),
    "mxnet": dict(convention="mxnet"),
    "goodfellow": dict(convention="goodfellow"),
    "goodfellow-nesterov": dict(convention="goodfellow", nesterov=True),
}


def make_rule(variant, lr, beta, schedule=None):
    """The rule of an UPDATE_VARIANTS entry with these hyperparameters."""
    form = dict(UPDATE_VARIANTS[variant])
    if form.pop("gd", False):
        return polyak.GD(lr, schedule=schedule)
    return polyak.Momentum(lr, beta, schedule=schedule, **form)


settings.register_profile(
    "default", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("ci", parent=settings.get_profile("default"), max_examples=150)
settings.register_profile("stress", parent=settings.get_profile("default"), max_examples=3000, print_blob=True)
# HYPOTHESIS_PROFILE=stress for a long search; CI (which sets CI=true) searches more than a quick local run
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default"))


def literal_run(convention, lam, c, x0, lrs, beta, *, nesterov=False, dampening=0.0, v0=None):
    """polyak.reference.momentum_in_convention on the diagonal quadratic (lam, c): the
    conventions' own formulas, independent of polyak's canonical form."""
    return polyak.reference.momentum_in_convention(convention, lambda x: lam * x + c, x0, lrs, beta,
                                                   nesterov=nesterov, dampening=dampening, v0=v0)


def assert_close(actual, expected, growing, exact=None, scale=None):
    """The kernel's `actual` against the reference's `expected`, relative to the problem's scale.

    The scale is the largest magnitude in `expected`, at least 1 (inputs are O(1)), or the
    given elementwise `scale`: an iterate passing near zero, or a loss that sums terms of
    both signs, has a large relative error in any two orders of rounding.

    `exact` is the reference run in higher precision (float64 for float32, long double for
    float64). The kernel must be within 1e-12 (float64) or 5e-5 (float32) of the scale of
    its twin, or else no further from `exact` than that plus four times its twin's own
    error: over hundreds of steps near critical damping both drift from exact arithmetic by
    more than that (seen: 8e-11 in float64, 6e-5 in float32), and what matters is that the
    kernel is as accurate as its twin. (float32's 5e-5 is some 400 roundings: one order of
    summation can lose that much more than another on a short, badly conditioned run; seen:
    3.9e-5 against the twin's 5e-6, a dense problem with n = 7 and 128 Nesterov steps.)

    A growing problem (it diverged, its iterates end 10× beyond where they started, or it is
    unstable: see `unstable`) amplifies each rounding like its iterates; its relative error against exact arithmetic is
    then itself large (seen: 1e-5 in float64 for kernel and reference alike, against long
    double), so only float64 values are compared, to 1e-3 of the scale where both are finite
    (one may overflow a step before the other).
    """
    if expected is None:
        assert actual is None
        return
    assert actual.shape == expected.shape
    if growing:
        if actual.dtype == np.float32:
            return
        rtol, finite = 1e-3, np.isfinite(actual) & np.isfinite(expected)
    else:
        np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
        np.testing.assert_array_equal(np.isinf(actual), np.isinf(expected))
        finite = np.isfinite(expected)
        rtol = 1e-12 if actual.dtype == np.float64 else 5e-5
    if scale is None:
        scale = np.max(np.abs(np.where(finite, expected, 0)), initial=1.0)
    scale = np.maximum(np.broadcast_to(scale, actual.shape)[finite], 1.0)
    actual, expected = actual[finite].astype(np.longdouble), expected[finite].astype(np.longdouble)
    error = np.max(np.abs(actual - expected) / scale, initial=0.0)
    if error <= rtol or growing:
        assert error <= rtol, f"error {error:.3g} of the scale, allowed {rtol:g}"
        return
    exact = exact[finite].astype(np.longdouble)
    own_error = np.max(np.abs(actual - exact) / scale, initial=0.0)
    twin_error = np.max(np.abs(expected - exact) / scale, initial=0.0)
    assert own_error <= rtol + 4 * twin_error, f"error {own_error:.3g} of the scale; the reference's {twin_error:.3g}"


def loss_scale(problem, trajectory):
    """|b| + Σᵢ |½xᵢ(Qx)ᵢ| + |cᵢxᵢ| at each recorded step: the magnitude the loss sums up, (B, K)."""
    x = trajectory.astype(float)  # (B, K, n)
    B, K, n = x.shape
    rows = problem.take(np.repeat(np.arange(problem.batch_size), K), np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        curvature = rows.curvature(x.reshape(B * K, n)).reshape(B, K, n)
        c = problem.c[:, None, :]
        return np.abs(problem.b)[:, None] + np.sum(np.abs(0.5 * x * curvature) + np.abs(c * x), axis=2)


def assert_records_stop_with_the_problem(result):
    """Records after a problem's last step are NaN, and only those (records before it may be inf)."""
    for p in range(result.x.shape[0]):
        missing = result.recorded_at > result.steps_taken[p]
        for records in (result.loss, result.trajectory):
            if records is not None:
                assert np.all(np.isnan(records[p, missing]))
                if not result.diverged[p]:
                    assert np.all(np.isfinite(records[p]))


def unstable(problem, rule, steps):
    """Per problem: does some step's iteration matrix have spectral radius > 1 for some eigenvalue?

    Such a problem amplifies every rounding, even while it sits at its fixed point (where
    the gradient rounds to exactly 0 in one order of evaluation and to 1e-8 in another).
    """
    lam = problem.eigenbasis()[0].astype(float) * np.ones((problem.batch_size, 1))
    schedule = np.ones(1) if steps == 0 else rule.multipliers(steps)
    lr = np.broadcast_to(rule.lr, (problem.batch_size,))[:, None, None] * schedule[None, :, None]
    beta = np.broadcast_to(rule.beta, (problem.batch_size,))[:, None, None]
    radius = polyak.analysis.spectral_radius(lr, beta, lam[:, None, :], convention=rule.convention,
                                             nesterov=rule.nesterov, dampening=rule.dampening)
    return np.max(radius, axis=(1, 2)) > 1


def check_against_reference(problem, rule, x0, steps, options):
    """polyak.run's kernel against its NumPy twin on one case, with assert_close's criteria."""
    kernel = polyak.run(problem, rule, x0, steps, **options)
    reference = polyak.run(problem, rule, x0, steps, implementation="reference", **options)
    with np.errstate(invalid="ignore"):
        end = np.max(np.abs(reference.x), axis=1)
    growing = reference.diverged | ~(end <= 10 * np.max(np.abs(x0), axis=1, initial=1.0))
    growing |= unstable(problem, rule, steps)
    # a float32 problem that grows may cross the divergence bound one check apart
    settled = ~growing if options["dtype"] == np.float32 else slice(None)
    np.testing.assert_array_equal(kernel.steps_taken[settled], reference.steps_taken[settled])
    np.testing.assert_array_equal(kernel.diverged[settled], reference.diverged[settled])
    assert_records_stop_with_the_problem(kernel)
    states = polyak.run(problem, rule, x0, steps, implementation="reference", record="trajectory",
                        every=options["every"], dtype=options["dtype"]).trajectory
    scale = loss_scale(problem, states)
    precise = np.float64 if options["dtype"] == np.float32 else np.longdouble
    exact = polyak.run(problem, rule, x0, steps, implementation="reference", **{**options, "dtype": precise})

    def pick(result, name, p):
        if result is None or getattr(result, name) is None:
            return None
        return getattr(result, name)[p]

    for p in range(problem.batch_size):
        for name in ("x", "velocity", "loss", "trajectory"):
            assert_close(pick(kernel, name, p), pick(reference, name, p), growing[p],
                         exact=pick(exact, name, p), scale=scale[p] if name == "loss" else None)


#: The kinds of plan the plan and pickling tests build (example_plan), each with records.
PLAN_EXAMPLES = ("diagonal", "diagonal-one-problem", "dense", "dense-shared", "least-squares")


def example_plan(name):
    """A small plan of each PLAN_EXAMPLES entry, the same at every call.

    - "diagonal": a batch of 6 problems, per-problem lr and β, per-configuration x0 and v0;
      configuration 2 diverges at the step-128 check (its later records are NaN);
    - "diagonal-one-problem": one problem, 5 learning rates (mxnet convention, a schedule);
    - "dense": 5 problems with their own Q, in float32 (goodfellow convention, v0 given);
    - "dense-shared": one Q of n = 257 for 8 problems (torch's nesterov);
    - "least-squares": 4 learning rates training on 60 examples (torch, dampening).
    """
    rng = np.random.default_rng(PLAN_EXAMPLES.index(name))
    records = dict(record=("loss", "trajectory"), every=25)
    if name == "diagonal":
        problem = polyak.Quadratic.diagonal(rng.uniform(0.1, 4.0, (6, 5)), rng.normal(size=(6, 5)), rng.normal(size=6))
        rule = polyak.Momentum([0.1, 0.2, 5.0, 0.3, 0.05, 0.4], rng.uniform(0.1, 0.9, 6))
        return polyak.plan(problem, rule, rng.normal(size=(6, 5)), 300, v0=rng.normal(size=(6, 5)), **records)
    if name == "diagonal-one-problem":
        rule = polyak.Momentum([0.05, 0.1, 0.2, 0.3, 0.4], 0.8, convention="mxnet", schedule=np.linspace(1.0, 0.2, 60))
        return polyak.plan(polyak.Quadratic.diagonal(rng.uniform(0.1, 4.0, 7)), rule, rng.normal(size=7), 60, **records)
    if name in ("dense", "dense-shared"):
        n, B = (6, 5) if name == "dense" else (257, 8)
        M = rng.normal(size=(B, n, n) if name == "dense" else (n, n))
        Q = M @ np.swapaxes(M, -1, -2) / n + np.eye(n)
        if name == "dense":
            problem = polyak.Quadratic.dense(Q.astype(np.float32), rng.normal(size=(B, n)).astype(np.float32))
            rule = polyak.Momentum(rng.uniform(0.05, 0.3, B), 0.7, convention="goodfellow")
            return polyak.plan(problem, rule, rng.normal(size=(B, n)), 60, v0=rng.normal(size=(B, n)),
                               dtype=np.float32, **records)
        rule = polyak.Momentum(rng.uniform(0.05, 0.3, B), 0.7, convention="torch", nesterov=True)
        return polyak.plan(polyak.Quadratic.dense(Q, rng.normal(size=(B, n))), rule, rng.normal(size=n), 60, **records)
    if name == "least-squares":
        X = rng.normal(size=(60, 3))
        problem = polyak.train.MinibatchLeastSquares.shuffled(X, X @ [1.0, -2.0, 0.5] + 0.3, batch_size=8, epochs=3,
                                                              record_every=16)
        rule = polyak.Momentum([0.01, 0.05, 0.1, 0.3], 0.9, convention="torch", dampening=0.1)
        return plan_training(problem, rule)
    raise ValueError(name)


def plan_training(problem, rule):
    """The plan of training `problem` for all its epochs from the textbook's θ₀, as linear_regression does."""
    theta0 = polyak.train.MinibatchLeastSquares.initial_weights(problem.X.shape[1])
    return polyak.plan(problem, rule, theta0, problem.max_steps, record="loss", dtype=problem.dtype)


#: The per-configuration arrays of a Result, compared bit for bit (NaN equal to NaN).
RESULT_ARRAYS = ("x", "velocity", "loss", "trajectory", "steps_taken", "diverged")


def assert_same_result(actual, expected):
    """Two results with bit-identical arrays (same dtypes; None where the other is None)."""
    for name in (*RESULT_ARRAYS, "recorded_at"):
        mine, theirs = getattr(actual, name), getattr(expected, name)
        assert (mine is None) == (theirs is None), name
        if theirs is not None:
            np.testing.assert_array_equal(mine, theirs, err_msg=name, strict=True)
            assert mine.tobytes() == theirs.tobytes(), f"{name}: equal values in other bits (signed zeros, NaNs)"
    assert actual.steps == expected.steps


def interrupt(process, timeout=30):
    """SIGINT to a running subprocess; (stdout, stderr, seconds until it ended). Kills it in any case."""
    import signal  # noqa: PLC0415
    import time  # noqa: PLC0415
    try:
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=timeout)
        return out, err, time.monotonic() - sent
    finally:
        process.kill()
