"""Plan semantics: size, repr, immutability, splitting, the coefficient table, execute's errors.

Tested here:

- ``len``, ``dim`` and the repr of a plan; a plan cannot be changed (setattr, delattr, its
  arrays are read-only);
- ``Plan.split(k)`` for every k from 1 to len: the pieces, executed and joined with
  ``polyak.Result.concatenate``, give the execution of the whole bit for bit, for every kind
  of plan of ``conftest.example_plan``; a piece of a batch of problems holds only its rows,
  as views of the original arrays; pieces executed in spawned processes give what they give
  here; ``split(0)`` and ``split(len + 1)`` are errors;
- the coefficient table: ``canonical_coefficients`` is affine in η for every update form, a
  plan's table holds a(0), a(lr) − a(0), … in the order of ``polyak.plans.COLUMNS``, and that
  order is the kernels' (as compiled, at every level) and the reference's;
- the errors of ``polyak.execute``.
"""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from conftest import PLAN_EXAMPLES, UPDATE_VARIANTS, assert_same_result, example_plan, make_rule

import polyak
from polyak._config import kernels, supported_levels, use_level
from polyak.plans import COLUMNS
from polyak.rules import canonical_coefficients

#: Plans whose pieces agree with the whole within rounding only: the BLAS product X·Q of a
#: shared Q can round a row differently when it multiplies another number of rows (seen with
#: every OpenBLAS core type, n = 257); polyak's own loops do not depend on the count.
ROUNDING_ONLY = {"dense-shared"}


def split_and_join(plan, pieces):
    return polyak.Result.concatenate(polyak.execute(piece) for piece in plan.split(pieces))


def test_len_dim_and_repr():
    plan = example_plan("diagonal")
    assert (len(plan), plan.dim) == (6, 5)
    assert repr(plan) == ("Plan(diagonal, 6 configurations of dimension 5, steps=300, "
                          "record=['loss', 'trajectory'] every 25, dtype=float64)")
    bare = polyak.plan(polyak.problems.ill_conditioned_2d(), polyak.Momentum([0.1, 0.6], 0.5), [-5.0, -2.0], 20)
    assert (len(bare), bare.dim) == (2, 2)
    assert repr(bare) == "Plan(diagonal, 2 configurations of dimension 2, steps=20, dtype=float64)"
    training = example_plan("least-squares")
    assert (len(training), training.dim) == (4, 4)  # 4 learning rates; θ = (w, b) with d = 3
    assert repr(training).startswith("Plan(least-squares, 4 configurations of dimension 4, steps=24, record=['loss']")


@pytest.mark.parametrize("name", PLAN_EXAMPLES)
def test_plan_is_immutable(name):
    plan = example_plan(name)
    for field in ("steps", "problem", "coefficients", "dtype", "new_field"):
        with pytest.raises(AttributeError, match="immutable"):
            setattr(plan, field, None)
    with pytest.raises(AttributeError, match="immutable"):
        del plan.steps
    for field in ("problem_index", "lr", "beta", "forms", "coefficients", "schedule", "x0", "u0", "recorded_at"):
        array = getattr(plan, field)
        assert not array.flags.writeable, field
        with pytest.raises(ValueError, match="read-only"):
            array[...] = 0


@pytest.mark.parametrize("name", sorted(set(PLAN_EXAMPLES) - ROUNDING_ONLY))
def test_pieces_join_to_the_whole_bit_for_bit(name):
    plan = example_plan(name)
    whole = polyak.execute(plan)
    for pieces in range(1, len(plan) + 1):
        parts = plan.split(pieces)
        sizes = [len(part) for part in parts]
        assert len(parts) == pieces and sum(sizes) == len(plan) and max(sizes) - min(sizes) <= 1
        assert_same_result(polyak.Result.concatenate(polyak.execute(part) for part in parts), whole)


def test_dense_shared_pieces_join_to_the_whole_within_rounding():
    plan = example_plan("dense-shared")
    whole = polyak.execute(plan)
    for pieces in range(2, len(plan) + 1):
        joined = split_and_join(plan, pieces)
        for name in ("x", "velocity", "loss", "trajectory"):
            np.testing.assert_allclose(getattr(joined, name), getattr(whole, name), rtol=1e-13, atol=1e-14)
        np.testing.assert_array_equal(joined.steps_taken, whole.steps_taken)


@pytest.mark.parametrize("name", ["diagonal", "dense", "dense-shared"])
def test_a_piece_of_a_batch_holds_its_rows_as_views(name):
    plan = example_plan(name)
    start = 0
    for piece in plan.split(4):
        stop = start + len(piece)
        assert piece.problem.batch_size == len(piece) and piece.problem.batched and piece.batched
        np.testing.assert_array_equal(piece.problem_index, np.arange(len(piece)))
        np.testing.assert_array_equal(piece.coefficients, plan.coefficients[start:stop])
        np.testing.assert_array_equal(piece.x0, plan.x0[start:stop] if len(plan.x0) > 1 else plan.x0)
        for field in ("lam", "Q", "c", "b"):
            original, part = getattr(plan.problem, field), getattr(piece.problem, field)
            if original is None:
                continue
            shared = plan.problem.shared and field == "Q"
            np.testing.assert_array_equal(part, original if shared else original[start:stop])
            assert np.shares_memory(part, original), field
        start = stop
    assert start == len(plan)


@pytest.mark.parametrize("name", ["diagonal-one-problem", "least-squares"])
def test_a_piece_of_one_problem_runs_that_problem(name):
    plan = example_plan(name)
    for piece in plan.split(2):
        np.testing.assert_array_equal(piece.problem_index, np.zeros(len(piece)))
        if name == "least-squares":
            assert piece.problem is plan.problem
        else:
            assert piece.problem.batch_size == 1 and np.shares_memory(piece.problem.lam, plan.problem.lam)


def test_split_counts_out_of_range_are_errors():
    plan = example_plan("diagonal")
    with pytest.raises(ValueError, match="pieces must be >= 1; got 0"):
        plan.split(0)
    with pytest.raises(ValueError, match="pieces must be <= 6; got 7"):
        plan.split(7)
    with pytest.raises(TypeError, match="pieces must be an integer"):
        plan.split(2.0)
    assert plan.split(1) == [plan]


def test_pieces_executed_in_spawned_processes_match_this_process():
    plans = {name: example_plan(name) for name in PLAN_EXAMPLES}
    pieces = [(name, piece) for name, plan in plans.items() for piece in plan.split(3)]
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        remote = list(pool.map(polyak.execute, [piece for _, piece in pieces]))
    assert len(remote) == len(pieces) == 3 * len(plans)
    for (_, piece), there in zip(pieces, remote):
        assert_same_result(there, polyak.execute(piece))
    diagonal = [there for (name, _), there in zip(pieces, remote) if name == "diagonal"]
    assert_same_result(polyak.Result.concatenate(diagonal), polyak.execute(plans["diagonal"]))


# --- the coefficient table ---------------------------------------------------------------


def form(rule):
    return dict(nesterov=rule.nesterov, dampening=rule.dampening)


@pytest.mark.parametrize("variant", UPDATE_VARIANTS)
@pytest.mark.parametrize("first_step", [False, True])
def test_canonical_coefficients_are_affine_in_eta(variant, first_step):
    rule = make_rule(variant, 0.3, np.array([0.2, 0.6, 0.95]))

    def at(eta):
        return canonical_coefficients(rule.convention, eta, rule.beta, first_step=first_step, **form(rule))

    zero, one = at(0.0), at(1.0)
    for eta in (1e-3, 0.1, 0.37, 1.0, 2.5, 40.0):
        for name, value in at(eta)._asdict().items():
            slope = getattr(one, name) - getattr(zero, name)
            np.testing.assert_allclose(value, getattr(zero, name) + eta * slope, rtol=4e-16, atol=1e-16, err_msg=name)


@pytest.mark.parametrize("variant, fresh", [(variant, fresh) for variant in UPDATE_VARIANTS
                                             for fresh in (True, False) if fresh or variant != "gd"])  # GD: no v0
def test_plan_table_holds_the_coefficients_at_zero_and_at_lr(variant, fresh):
    lr, beta = np.array([0.05, 0.2, 0.7]), np.array([0.3, 0.6, 0.9])
    rule = make_rule(variant, lr, beta)
    plan = polyak.plan(polyak.Quadratic.diagonal(np.ones((3, 2))), rule, [1.0, 2.0], 5,
                       v0=None if fresh else [0.5, -0.5])
    zero = canonical_coefficients(rule.convention, 0.0, rule.beta, **form(rule))
    at_lr = canonical_coefficients(rule.convention, lr, rule.beta, **form(rule))
    first = canonical_coefficients(rule.convention, 0.0, rule.beta, first_step=fresh, **form(rule))
    expected = dict(beta=rule.beta, a_fixed=zero.a, a_scaled=at_lr.a - zero.a, a_first=first.a, k_fixed=zero.k,
                    k_scaled=at_lr.k - zero.k, e_fixed=zero.e, e_scaled=at_lr.e - zero.e)
    assert plan.coefficients.shape == (3, len(COLUMNS))
    for j, name in enumerate(COLUMNS):
        np.testing.assert_array_equal(plan.coefficients[:, j], np.broadcast_to(expected[name], 3), err_msg=name)


@pytest.mark.parametrize("rule, row", [
    # β, a_fixed, a_scaled, a_first, k_fixed, k_scaled, e_fixed, e_scaled
    (polyak.Momentum(0.2, 0.5, convention="torch", dampening=0.3), [0.5, 0.7, 0.0, 1.0, 0.0, 0.2, 0.0, 0.0]),
    (polyak.Momentum(0.2, 0.5, convention="goodfellow", nesterov=True), [0.5, 0.0, 0.2, 0.0, 0.5, 0.0, 0.0, 0.2]),
    (polyak.Momentum(0.2, 0.5, convention="d2l", nesterov=True), [0.5, 1.0, 0.0, 1.0, 0.0, 0.1, 0.0, 0.2]),
    (polyak.GD(0.2), [0.0, 1.0, 0.0, 1.0, 0.0, 0.2, 0.0, 0.0]),
])
def test_plan_table_values(rule, row):
    plan = polyak.plan(polyak.problems.ill_conditioned_2d(), rule, [1.0, 1.0], 3)
    np.testing.assert_allclose(plan.coefficients, [row], rtol=1e-15, atol=0)


@pytest.mark.parametrize("level", supported_levels())
def test_kernels_read_the_columns_where_the_plan_puts_them(level):
    with use_level(level):
        compiled = kernels("_probe").coefficient_columns()
    assert compiled.pop("columns") == len(COLUMNS)
    assert compiled == {name: j for j, name in enumerate(COLUMNS)}


def test_reference_reads_the_columns_by_name():
    table = np.arange(1.0, len(COLUMNS) + 1)[None] * 10.0 ** np.arange(len(COLUMNS))  # one row, distinct entries
    column = dict(zip(COLUMNS, table[0]))
    for first_step in (False, True):
        beta, a, k, e = polyak.reference.step_coefficients(table, 0.5, first_step)
        a_start = column["a_first" if first_step else "a_fixed"]
        assert (beta[0, 0], a[0, 0]) == (column["beta"], a_start + 0.5 * column["a_scaled"])
        assert k[0, 0] == column["k_fixed"] + 0.5 * column["k_scaled"]
        assert e[0, 0] == column["e_fixed"] + 0.5 * column["e_scaled"]


# --- execute's errors --------------------------------------------------------------------


def test_execute_takes_only_plans():
    with pytest.raises(TypeError, match="plan must be a polyak.Plan"):
        polyak.execute(polyak.problems.ill_conditioned_2d())


def test_unknown_implementation_lists_them():
    with pytest.raises(ValueError, match="one of 'kernel', 'reference', 'closed-form'; got 'fast'"):
        polyak.execute(example_plan("diagonal"), "fast")


def test_least_squares_has_no_closed_form():
    with pytest.raises(ValueError, match="least-squares plan runs with implementation 'kernel' or 'reference'"):
        polyak.execute(example_plan("least-squares"), "closed-form")


@pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="long double is double here")
def test_long_double_runs_only_in_the_reference():
    plan = polyak.plan(polyak.problems.ill_conditioned_2d(), polyak.Momentum(0.6, 0.5), [-5.0, -2.0], 20,
                       dtype=np.longdouble)
    with pytest.raises(ValueError, match="implementation='reference'"):
        polyak.execute(plan, "kernel")
    result = polyak.execute(plan, "reference")
    assert result.x.dtype == np.longdouble
    np.testing.assert_allclose(result.x.astype(float), [0.007188, 0.002553], atol=5e-7)


def test_closed_form_needs_a_constant_learning_rate():
    problem, start = polyak.problems.ill_conditioned_2d(), [-5.0, -2.0]
    varying = polyak.plan(problem, polyak.Momentum(0.6, 0.5, schedule=np.linspace(1.0, 0.5, 20)), start, 20)
    with pytest.raises(ValueError, match="constant learning rate"):
        polyak.execute(varying, "closed-form")
    constant = polyak.plan(problem, polyak.Momentum(0.6, 0.5, schedule=np.ones(20)), start, 20)
    np.testing.assert_allclose(polyak.execute(constant, "closed-form").x, polyak.execute(constant).x, rtol=1e-12)


@pytest.mark.parametrize("change, match", [
    (dict(problem_index=np.array([0, 5])), r"problem_index must hold integers in \[0, 2\)"),
    (dict(problem_index=np.array([0.0, 1.0])), r"problem_index must hold integers"),
    (dict(forms=np.zeros((8, 3))), r"the plan's arrays do not fit together"),
    (dict(lr=np.ones(3)), r"the plan's arrays do not fit together"),
    (dict(beta=np.ones((2, 1))), r"the plan's arrays do not fit together"),
    (dict(lr=np.ones(2, np.float32)), r"the plan's lr must be float64"),
    (dict(lr=np.array([1.5e308, 1.0]), forms=np.ones((8, 4))), r"the plan's coefficients must be finite"),
    (dict(x0=np.zeros((2, 3))), r"the plan's arrays do not fit together"),
    (dict(u0=np.zeros((3, 2))), r"the plan's arrays do not fit together"),
    (dict(schedule=np.ones(7)), r"the plan's arrays do not fit together"),
    (dict(beta=np.full(2, np.nan)), r"the plan's beta must be finite"),
    (dict(forms=np.full((8, 4), np.inf)), r"the plan's forms must be finite"),
    (dict(x0=np.array([[np.inf, 0.0]])), r"the plan's x0 must be finite"),
])
def test_a_hand_made_plan_is_checked_before_any_kernel_sees_it(change, match):
    job = polyak.plan(polyak.Quadratic.diagonal(np.ones((2, 2))), polyak.Momentum(0.1, 0.5), [1.0, 1.0], 10)
    fields = {name: getattr(job, name) for name in polyak.Plan.__slots__}
    with pytest.raises(ValueError, match=match):
        polyak.Plan(**{**fields, **change})
    assert np.array_equal(polyak.execute(polyak.Plan(**fields)).x, polyak.execute(job).x)


@pytest.mark.parametrize("dtype", [np.uint64, np.int8, np.bool_])
def test_a_hand_made_plan_with_integer_starts_is_checked_without_wrapping(dtype):
    job = polyak.plan(polyak.Quadratic.diagonal(np.ones((2, 2))), polyak.Momentum(0.1, 0.5), [1.0, 1.0], 10)
    fields = {name: getattr(job, name) for name in polyak.Plan.__slots__}
    polyak.Plan(**{**fields, "x0": np.ones((1, 2), dtype)})  # (NumPy refuses −True; −uint64 wraps)
    with pytest.raises(ValueError, match="within its divergence bound"):
        polyak.Plan(**{**fields, "x0": np.array([[1e101, 0.0]])})


def test_results_name_the_level_that_ran_them():
    job = example_plan("diagonal")
    assert polyak.execute(job).level == polyak.show_config(print_out=False)["cpu_level"]
    assert polyak.execute(job, "reference").level is None
    levels = supported_levels()
    with use_level(levels[0]):
        low = polyak.execute(job.split(2)[0])
    with use_level(levels[-1]):
        high = polyak.execute(job.split(2)[1])
    assert polyak.Result.concatenate([low, high]).level == (levels[0] if len(levels) == 1 else "mixed")
    assert f"kernel ({levels[0]})" in repr(low)
