"""Pickle and deepcopy round trips of every public object; copies of the optimizer.

Every object goes through pickle at protocol 2 and at the highest protocol, and through
``copy.deepcopy`` (ROUND_TRIPS). Afterwards:

- rules (GD, Momentum in every update form of conftest.UPDATE_VARIANTS, with arrays and a
  schedule), problems (``Quadratic.diagonal`` / ``dense``: single, batch, shared Q,
  per-problem Q; ``polyak.train.MinibatchLeastSquares``) and plans (every kind of
  conftest.example_plan) have equal contents, arrays as read-only as the original's, refuse
  to be changed, and still work: a copied rule or problem runs to the original's result, a
  copied plan executes to it, bit for bit;
- results (with records; a training result with extras) have equal contents;
- ``polyak.optim.SGD`` (the bug of this issue: ``copy.deepcopy(optimizer).step(grads)`` used
  to update the *original* arrays): a copy of an optimizer with momentum buffers, over
  float32 and float64 parameters in C and Fortran order, updates only its own arrays, leaves
  the original's parameters and buffers alone, and continues exactly as the original does;
  ``load_state_dict`` into an optimizer on other arrays updates only those.

``copy.copy(optimizer)`` (shallow) is a second optimizer over the *same* parameter arrays,
as a shallow copy of a list shares its items, with its own snapshot of the buffers, step
count and hyperparameters: a step of either moves the shared parameters and advances only
its own buffers. test_shallow_copy_shares_the_parameters pins that down.
"""

import copy
import pickle

import numpy as np
import pytest
from conftest import PLAN_EXAMPLES, UPDATE_VARIANTS, assert_same_result, example_plan, make_rule, plan_training

import polyak
from polyak.optim import SGD
from polyak.train import MinibatchLeastSquares

ROUND_TRIPS = {
    "pickle-2": lambda obj: pickle.loads(pickle.dumps(obj, protocol=2)),
    "pickle-highest": lambda obj: pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)),
    "deepcopy": copy.deepcopy,
}
#: The public attributes that make up a problem's contents.
QUADRATIC_FIELDS = ("kind", "lam", "Q", "c", "b", "batched", "batch_size", "dim", "dtype", "shared")
LEAST_SQUARES_FIELDS = ("kind", "X", "y", "order", "minibatch_size", "record_every", "epochs", "dim")


def quadratic(name):
    rng = np.random.default_rng(len(name))
    n, B = 4, 3
    M = rng.normal(size=(B, n, n))
    Q = M @ np.swapaxes(M, 1, 2) / n + np.eye(n)
    if name == "diagonal-single":
        return polyak.Quadratic.diagonal([0.2, 4.0, 1.5, 0.7], c=[1.0, -1.0, 0.5, 0.0], b=0.25)
    if name == "diagonal-batch-float32":
        lam = rng.uniform(0.1, 4.0, (B, n)).astype(np.float32)
        return polyak.Quadratic.diagonal(lam, rng.normal(size=(B, n)).astype(np.float32), b=[1.0, 2.0, 3.0])
    if name == "dense-single":
        return polyak.Quadratic.dense(Q[0], rng.normal(size=n), b=-1.0)
    if name == "dense-shared-batch":
        return polyak.Quadratic.dense(Q[0], rng.normal(size=(B, n)), b=rng.normal(size=B))
    if name == "dense-per-problem":
        return polyak.Quadratic.dense(Q, rng.normal(size=(B, n)))
    X = rng.normal(size=(40, 3))
    return MinibatchLeastSquares.shuffled(X, X @ [0.5, -1.0, 2.0], batch_size=8, epochs=2, record_every=8)


PROBLEMS = ("diagonal-single", "diagonal-batch-float32", "dense-single", "dense-shared-batch", "dense-per-problem",
            "least-squares")


def fields_of(problem):
    return LEAST_SQUARES_FIELDS if isinstance(problem, MinibatchLeastSquares) else QUADRATIC_FIELDS


def assert_same_fields(mine, theirs, names):
    """Equal attributes; arrays equal in shape, dtype and values."""
    for name in names:
        value, expected = getattr(mine, name), getattr(theirs, name)
        if isinstance(expected, np.ndarray):
            np.testing.assert_array_equal(value, expected, strict=True, err_msg=name)
        else:
            assert value == expected, name


def writeable(obj, names):
    return {name: getattr(obj, name).flags.writeable for name in names if isinstance(getattr(obj, name), np.ndarray)}


def solve(problem):
    """The problem run with momentum: a Result of every configuration."""
    rule = polyak.Momentum(0.05, 0.9)
    if isinstance(problem, MinibatchLeastSquares):
        return polyak.execute(plan_training(problem, rule))
    return polyak.run(problem, rule, np.ones(problem.dim, problem.dtype), 25, record=("loss", "trajectory"), every=5)


def cases(names):
    """(name, trip) parameters: every object name with every round trip."""
    return [pytest.param(name, trip, id=f"{name}-{trip}") for name in names for trip in ROUND_TRIPS]


# --- rules -------------------------------------------------------------------------------


@pytest.mark.parametrize("variant, trip", cases(UPDATE_VARIANTS))
def test_rule_round_trip(variant, trip):
    rule = make_rule(variant, [0.05, 0.1, 0.2], [0.5, 0.7, 0.9], schedule=np.linspace(1.0, 0.1, 30))
    twin = ROUND_TRIPS[trip](rule)
    assert type(twin) is type(rule) and twin == rule and repr(twin) == repr(rule)
    assert_same_fields(twin, rule, ("lr", "beta", "schedule", "convention", "dampening", "nesterov"))
    assert writeable(twin, ("lr", "beta", "schedule")) == {"lr": False, "beta": False, "schedule": False}
    with pytest.raises(AttributeError, match="immutable"):
        twin.lr = 1.0
    with pytest.raises(AttributeError, match="immutable"):
        del twin.beta
    problem = polyak.Quadratic.diagonal(np.array([[0.5, 2.0], [1.0, 3.0], [0.1, 1.0]]))
    assert_same_result(polyak.run(problem, twin, [1.0, -1.0], 30), polyak.run(problem, rule, [1.0, -1.0], 30))


# --- problems ----------------------------------------------------------------------------


@pytest.mark.parametrize("name, trip", cases(PROBLEMS))
def test_problem_round_trip(name, trip):
    problem = quadratic(name)
    twin = ROUND_TRIPS[trip](problem)
    assert type(twin) is type(problem) and repr(twin) == repr(problem)
    assert_same_fields(twin, problem, fields_of(problem))
    with pytest.raises(AttributeError, match="immutable"):
        twin.batch_size = 1
    assert_same_result(solve(twin), solve(problem))


@pytest.mark.parametrize("name, trip", cases(PROBLEMS))
def test_problem_round_trip_keeps_arrays_read_only(name, trip):
    problem = quadratic(name)
    twin = ROUND_TRIPS[trip](problem)
    assert not any(writeable(problem, fields_of(problem)).values())
    assert writeable(twin, fields_of(problem)) == writeable(problem, fields_of(problem))


@pytest.mark.parametrize("name", PROBLEMS)
def test_problem_attributes_cannot_be_deleted(name):
    problem = quadratic(name)
    field = fields_of(problem)[1]  # lam, Q or X
    with pytest.raises(AttributeError, match="immutable"):
        delattr(problem, field)


# --- plans and results -------------------------------------------------------------------


@pytest.mark.parametrize("name, trip", cases(PLAN_EXAMPLES))
def test_plan_round_trip(name, trip):
    plan = example_plan(name)
    twin = ROUND_TRIPS[trip](plan)
    assert type(twin) is polyak.Plan and repr(twin) == repr(plan)
    assert_same_fields(twin, plan, [field for field in polyak.Plan.__slots__ if field != "problem"])
    assert_same_fields(twin.problem, plan.problem, fields_of(plan.problem))
    arrays = ("problem_index", "lr", "beta", "forms", "coefficients", "schedule", "x0", "u0", "recorded_at")
    assert writeable(twin, arrays) == dict.fromkeys(arrays, False)
    with pytest.raises(AttributeError, match="immutable"):
        twin.steps = 1
    with pytest.raises(AttributeError, match="immutable"):
        del twin.x0
    assert_same_result(polyak.execute(twin), polyak.execute(plan))


def training_result():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(48, 2))
    return polyak.train.linear_regression(X, X @ [1.0, -1.0] + 0.5, polyak.Momentum([0.01, 0.1], 0.9), batch_size=8,
                                          epochs=2, record_every=16)


@pytest.mark.parametrize("trip", ROUND_TRIPS)
@pytest.mark.parametrize("make", [lambda: polyak.execute(example_plan("diagonal")), training_result,
                                  lambda: polyak.run(polyak.problems.ill_conditioned_2d(), polyak.Momentum(0.6, 0.5),
                                                     [-5.0, -2.0], 20, record="loss")],
                         ids=["records", "training", "unbatched"])
def test_result_round_trip(make, trip):
    result = make()
    twin = ROUND_TRIPS[trip](result)
    assert_same_result(twin, result)
    assert repr(twin) == repr(result)
    for name in ("implementation", "n_threads", "seconds", "steps"):
        assert getattr(twin, name) == getattr(result, name), name
    assert twin.extras.keys() == result.extras.keys()
    for key, value in result.extras.items():
        np.testing.assert_array_equal(getattr(twin, key), value, strict=True)


def test_a_result_pickled_with_diverged_at_as_an_attribute_reads_it():
    # results pickled before diverged_at was computed when first read hold it in their state
    result = polyak.run(polyak.Quadratic.diagonal(np.ones((2, 2))), polyak.GD([0.5, 2.5]), np.ones(2), 1000)
    state = dict(result.__getstate__())
    state["diverged_at"] = np.array([-1, 7])  # (any value: it is what the old pickle held)
    del state["_diverged_at"]
    old = polyak.Result.__new__(polyak.Result)
    old.__setstate__(state)
    np.testing.assert_array_equal(old.diverged_at, [-1, 7])
    assert result.diverged.tolist() == [False, True] and result.diverged_at.tolist() == [-1, result.steps_taken[1] + 1]
    result.diverged_at = np.array([-1, 5])  # and it can still be set
    np.testing.assert_array_equal(result.diverged_at, [-1, 5])


def test_training_result_extras_survive_the_trip():
    twin = ROUND_TRIPS["pickle-2"](training_result())
    assert twin.w.shape == (2, 2) and twin.b.shape == (2,) and twin.epochs.shape == (6,)
    np.testing.assert_array_equal(twin.x[:, :2], twin.w)
    np.testing.assert_array_equal(twin.epochs, np.arange(1, 7) / 3)  # a record every 16 of 48 examples


# --- the optimizer -----------------------------------------------------------------------

SGD_SETTINGS = {
    "torch": dict(momentum=0.9, weight_decay=0.01),
    "torch-nesterov": dict(momentum=0.9, nesterov=True),
    "d2l": dict(momentum=0.8, convention="d2l"),
    "mxnet": dict(momentum=0.8, convention="mxnet"),
    "goodfellow": dict(momentum=0.9, convention="goodfellow", weight_decay=0.01),  # v = −u, decoupled decay
}


def gradients(params, seed):
    rng = np.random.default_rng(100 + seed)
    return [rng.normal(size=param.shape).astype(param.dtype) for param in params]


def trained(settings):
    """An SGD after 3 steps (buffers made) over float32/float64, C/Fortran-ordered parameters."""
    rng = np.random.default_rng(11)
    params = [rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=40_000),  # 2 chunks of the kernel
              np.asfortranarray(rng.normal(size=(5, 3))), np.asfortranarray(rng.normal(size=(6, 2)).astype(np.float32))]
    optimizer = SGD(params, lr=0.05, **settings)
    for seed in range(3):
        optimizer.step(gradients(params, seed))
    return optimizer


def snapshot(optimizer):
    return [param.copy(order="K") for param in optimizer.params], optimizer.state_dict()


def assert_state(optimizer, saved):
    """The optimizer's parameters and state are bit for bit those `snapshot` saved."""
    params, state = saved
    for param, expected in zip(optimizer.params, params, strict=True):
        np.testing.assert_array_equal(param, expected, strict=True)
    now = optimizer.state_dict()
    assert (now["steps"], now["hyperparameters"], now["convention"]) == (state["steps"], state["hyperparameters"],
                                                                         state["convention"])
    for buffer, expected in zip(now["momentum_buffers"], state["momentum_buffers"], strict=True):
        np.testing.assert_array_equal(buffer, expected, strict=True)


@pytest.mark.parametrize("settings", SGD_SETTINGS.values(), ids=SGD_SETTINGS)
@pytest.mark.parametrize("trip", ROUND_TRIPS)
def test_a_copied_optimizer_updates_only_its_own_arrays(settings, trip):
    original = trained(settings)
    saved = snapshot(original)
    twin = ROUND_TRIPS[trip](original)
    assert not any(np.shares_memory(mine, theirs) for mine in twin.params for theirs in original.params)
    for mine, theirs in zip(twin.params, original.params):
        assert mine.dtype == theirs.dtype and mine.flags.f_contiguous == theirs.flags.f_contiguous
        assert mine.flags.c_contiguous == theirs.flags.c_contiguous and mine.flags.writeable
    twin.step(gradients(twin.params, 3))
    assert_state(original, saved)
    assert all(not np.array_equal(mine, before) for mine, before in zip(twin.params, saved[0]))


@pytest.mark.parametrize("settings", SGD_SETTINGS.values(), ids=SGD_SETTINGS)
@pytest.mark.parametrize("trip", ROUND_TRIPS)
def test_a_copied_optimizer_continues_as_the_original(settings, trip):
    original = trained(settings)
    twin = ROUND_TRIPS[trip](original)
    assert_state(twin, snapshot(original))
    for seed in (3, 4, 5):
        grads = gradients(original.params, seed)
        twin.step(grads)
        original.step(grads)
    assert twin.steps == original.steps == 6
    assert_state(twin, snapshot(original))
    twin.lr = 0.01
    assert original.lr == 0.05


@pytest.mark.parametrize("trip", ROUND_TRIPS)
def test_copying_parameters_and_optimizer_together_keeps_them_linked(trip):
    original = trained(SGD_SETTINGS["torch"])
    saved = snapshot(original)
    params, optimizer = ROUND_TRIPS[trip]((list(original.params), original))
    assert all(mine is theirs for mine, theirs in zip(optimizer.params, params))
    before = [param.copy() for param in params]
    optimizer.step(gradients(params, 3))
    assert all(not np.array_equal(param, old) for param, old in zip(params, before))
    assert_state(original, saved)


@pytest.mark.parametrize("settings", SGD_SETTINGS.values(), ids=SGD_SETTINGS)
def test_load_state_dict_into_another_optimizer_updates_only_its_arrays(settings):
    source = trained(settings)
    saved = snapshot(source)
    others = [param.copy(order="K") for param in source.params]
    target = SGD(others, lr=0.05, **settings)
    state = source.state_dict()
    target.load_state_dict(state)
    for buffer in state["momentum_buffers"]:
        buffer[...] = 0  # the target holds its own copy of the buffers
    grads = gradients(others, 3)
    target.step(grads)
    assert all(mine is theirs for mine, theirs in zip(target.params, others))
    assert_state(source, saved)
    source.step(grads)
    assert_state(target, snapshot(source))


def test_shallow_copy_shares_the_parameters():
    original = trained(SGD_SETTINGS["torch"])
    saved = snapshot(original)
    deep = copy.deepcopy(original)
    shallow = copy.copy(original)
    assert all(mine is theirs for mine, theirs in zip(shallow.params, original.params))
    grads = gradients(original.params, 3)
    shallow.step(grads)
    deep.step(grads)
    for shared, own in zip(original.params, deep.params):  # the shared arrays took the step
        np.testing.assert_array_equal(shared, own, strict=True)
    state = original.state_dict()  # but the original's buffers and count did not
    assert state["steps"] == 3 and shallow.steps == 4
    for buffer, expected in zip(state["momentum_buffers"], saved[1]["momentum_buffers"]):
        np.testing.assert_array_equal(buffer, expected)
    shallow.lr = 0.01
    assert original.lr == 0.05


def test_a_restored_problem_is_checked():
    from polyak import least_squares, problems

    with pytest.raises(ValueError, match=r"arrays do not fit together: lam \(1, 1\)"):
        problems._restore(problems.DiagonalQuadratic, dict(lam=np.ones((1, 1)), c=np.zeros((1, 4)), b=np.zeros(1),
                                                           batched=False))
    with pytest.raises(ValueError, match=r"a MinibatchLeastSquares needs X \(N, d <= 64\)"):
        least_squares._restore(dict(X=np.ones((5, 100)), y=np.ones(5), order=np.zeros((1, 5), np.int64),
                                    minibatch_size=2, record_every=2))
    with pytest.raises(ValueError, match=r"order \(epochs, N\) of indices below N"):
        least_squares._restore(dict(X=np.ones((5, 2)), y=np.ones(5), order=np.full((1, 5), 7, np.int64),
                                    minibatch_size=2, record_every=2))
