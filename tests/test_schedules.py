"""polyak.schedules against torch.optim.lr_scheduler, over an optimizer and as a rule's schedule."""

import copy
import pickle
import warnings

import numpy as np
import pytest

import polyak
from polyak import schedules
from polyak.optim import SGD

#: Each scheduler with parameters whose interesting epochs (decays, zeros of the cosine, the
#: end of a ramp, phase changes) fall inside 300 steps, and the epochs to restart at.
CASES = {
    "StepLR": (dict(step_size=7, gamma=0.5), [6, 7, 100]),
    "MultiStepLR": (dict(milestones=[0, 10, 10, 50, 120], gamma=0.3), [9, 10, 50, 200]),
    "ExponentialLR": (dict(gamma=0.98), [1, 77, 150]),
    "LinearLR": (dict(start_factor=0.25, end_factor=0.0, total_iters=40), [5, 39, 40, 41]),
    "CosineAnnealingLR": (dict(T_max=37, eta_min=0.001), [36, 37, 110, 111, 200]),  # 37, 111: zeros of the cosine
    "OneCycleLR": (dict(max_lr=[0.5, 0.1], total_steps=310, three_phase=True), [1, 92, 185, 250]),
}
STEPS = 300


def both_optimizers(torch):
    """A polyak and a torch SGD with the same two groups (lr 0.1 and 0.02, momentum 0.9)."""
    ours = SGD([{"params": [np.zeros(3)], "lr": 0.1}, {"params": [np.zeros(2)], "lr": 0.02}], momentum=0.9)
    tensors = [torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)]
    theirs = torch.optim.SGD([{"params": tensors[:1], "lr": 0.1}, {"params": tensors[1:], "lr": 0.02}], momentum=0.9)
    return ours, theirs, tensors


def resumed(torch, ours, theirs):
    """Fresh optimizers that load the states of `ours` and `theirs` (a checkpoint restored)."""
    new_ours, new_theirs, tensors = both_optimizers(torch)
    new_ours.load_state_dict(ours.state_dict())
    new_theirs.load_state_dict(theirs.state_dict())
    return new_ours, new_theirs, tensors


@pytest.mark.parametrize("restart", [False, True], ids=["fresh", "restarts"])
@pytest.mark.parametrize("name", list(CASES))
def test_learning_rates_equal_torchs_over_300_steps(name, restart):
    torch = pytest.importorskip("torch")
    settings, restarts = CASES[name]
    ours, theirs, tensors = both_optimizers(torch)
    mine, torchs = getattr(schedules, name)(ours, **settings), getattr(torch.optim.lr_scheduler, name)(theirs, **settings)
    seen, expected = [], []
    for step in range(STEPS):
        if restart and step in restarts:  # a new scheduler on the restored optimizer, at the epoch reached
            ours, theirs, tensors = resumed(torch, ours, theirs)
            mine = getattr(schedules, name)(ours, **settings, last_epoch=mine.last_epoch)
            torchs = getattr(torch.optim.lr_scheduler, name)(theirs, **settings, last_epoch=torchs.last_epoch)
        seen.append([[g["lr"], g["momentum"]] for g in ours.param_groups] + [mine.get_last_lr()])
        expected.append([[g["lr"], g["momentum"]] for g in theirs.param_groups] + [torchs.get_last_lr()])
        ours.step([np.ones(3), np.ones(2)])
        for tensor in tensors:
            tensor.grad = torch.ones_like(tensor)
        theirs.step()
        mine.step()
        torchs.step()
    assert mine.last_epoch == torchs.last_epoch == STEPS + (len(restarts) if restart else 0)
    np.testing.assert_allclose(np.array(seen), np.array(expected), rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", list(CASES))
def test_a_rules_multipliers_are_a_fresh_torch_schedulers_lrs(name):
    torch = pytest.importorskip("torch")
    settings, _ = CASES[name]
    settings = {**settings, "max_lr": 0.3, "cycle_momentum": False} if name == "OneCycleLR" else settings
    for lr in (0.1, 0.7):
        tensor = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.SGD([tensor], lr=lr)
        scheduler = getattr(torch.optim.lr_scheduler, name)(optimizer, **settings)
        expected = []
        for _ in range(STEPS):
            expected.append(optimizer.param_groups[0]["lr"] / lr)
            optimizer.step()
            scheduler.step()
        multipliers = getattr(schedules, name)(**settings).multipliers(STEPS, lr)
        np.testing.assert_allclose(multipliers, expected, rtol=1e-12, atol=1e-300)


def test_a_schedule_studied_on_a_quadratic_is_the_one_torch_trains_with():
    # polyak.run with a rule's cosine schedule against torch's SGD + CosineAnnealingLR on the
    # same problem, gradients in NumPy: the same iterates to rounding over 120 steps
    torch = pytest.importorskip("torch")
    problem = polyak.Quadratic.diagonal(np.array([0.2, 1.0, 4.0]), c=np.array([0.5, -1.0, 0.3]))
    x0 = np.array([-5.0, -2.0, 3.0])
    rule = polyak.Momentum(0.3, 0.8, convention="torch", dampening=0.1,
                           schedule=schedules.CosineAnnealingLR(T_max=50, eta_min=0.01))
    ours = polyak.run(problem, rule, x0, 120, record="trajectory")
    x = torch.tensor(x0.copy(), requires_grad=True)
    optimizer = torch.optim.SGD([x], lr=0.3, momentum=0.8, dampening=0.1)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=50, eta_min=0.01)
    trajectory = [x0.copy()]
    for _ in range(120):
        x.grad = torch.from_numpy(problem.grad(x.detach().numpy().copy()))
        optimizer.step()
        scheduler.step()
        trajectory.append(x.detach().numpy().copy())
    np.testing.assert_allclose(ours.trajectory, np.array(trajectory), rtol=1e-12, atol=1e-14)


def test_linear_regression_with_a_schedule_equals_a_torch_training_loop():
    torch = pytest.importorskip("torch")
    X, y = (a.astype(np.float64) for a in polyak.data.airfoil())  # float64: the two agree to its rounding
    rule = polyak.Momentum(0.02, 0.9, convention="torch", schedule=schedules.StepLR(step_size=50, gamma=0.5))
    trained = polyak.train.linear_regression(X, y, rule)
    problem = polyak.train.MinibatchLeastSquares.shuffled(X, y)
    theta0 = polyak.train.MinibatchLeastSquares.initial_weights(X.shape[1], 0)  # (w₀, b₀)
    w = torch.tensor(theta0[:-1], requires_grad=True)
    b = torch.tensor(theta0[-1:], requires_grad=True)
    optimizer = torch.optim.SGD([w, b], lr=0.02, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=50, gamma=0.5)
    for order in problem.order:
        for start in range(0, len(order), 10):
            batch = order[start:start + 10]
            residual = X[batch] @ w.detach().numpy() + b.detach().numpy()[0] - y[batch]
            w.grad = torch.from_numpy(X[batch].T @ residual / len(batch))
            b.grad = torch.tensor([residual.mean()])
            optimizer.step()
            scheduler.step()
    np.testing.assert_allclose(trained.w, w.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(trained.b, b.detach().numpy()[0], rtol=1e-10)


def test_a_schedule_and_its_multipliers_run_the_same_everywhere():
    problem = polyak.problems.ill_conditioned_2d()
    lr = np.array([0.1, 0.3, 0.5])
    for schedule in (schedules.StepLR(step_size=30, gamma=0.5), schedules.LinearLR(start_factor=0.1, total_iters=20),
                     schedules.OneCycleLR(total_steps=100, cycle_momentum=False)):
        as_array = schedule.multipliers(100)
        with_object = polyak.run(problem, polyak.Momentum(lr, 0.9, schedule=schedule), [-5.0, -2.0], 100)
        with_array = polyak.run(problem, polyak.Momentum(lr, 0.9, schedule=as_array), [-5.0, -2.0], 100)
        np.testing.assert_array_equal(with_object.x, with_array.x)
        swept = polyak.sweep(problem, 100, lr=lr, beta=[0.5, 0.9], schedule=schedule)
        np.testing.assert_array_equal(swept.final_loss, polyak.sweep(problem, 100, lr=lr, beta=[0.5, 0.9],
                                                                     schedule=as_array).final_loss)
    X, y = polyak.data.airfoil()
    schedule = schedules.ExponentialLR(gamma=0.99)
    trained = polyak.train.linear_regression(X, y, polyak.Momentum([0.01, 0.02], 0.9, schedule=schedule))
    again = polyak.train.linear_regression(X, y, polyak.Momentum([0.01, 0.02], 0.9, schedule=0.99 ** np.arange(300)))
    np.testing.assert_allclose(trained.x, again.x, rtol=1e-13)


def test_a_rules_schedule_is_a_frozen_copy_compared_by_its_parameters():
    schedule = schedules.CosineAnnealingLR(T_max=100)
    rule = polyak.Momentum(0.1, 0.9, schedule=schedule)
    assert rule.schedule == schedule and rule.schedule is not schedule
    assert rule == polyak.Momentum(0.1, 0.9, schedule=schedules.CosineAnnealingLR(T_max=100))
    assert rule != polyak.Momentum(0.1, 0.9, schedule=schedules.CosineAnnealingLR(T_max=99))
    assert rule != polyak.Momentum(0.1, 0.9, schedule=schedule.multipliers(100))
    assert pickle.loads(pickle.dumps(rule)) == rule and copy.deepcopy(rule) == rule
    assert repr(rule).endswith("schedule=CosineAnnealingLR(T_max=100, eta_min=0.0))")
    with pytest.raises(AttributeError, match="T_max is fixed at construction"):
        rule.schedule.T_max = 5
    optimizer = SGD([np.zeros(2)], lr=0.5)  # a scheduler over an optimizer gives a rule its parameters only
    assert polyak.GD(0.5, schedule=schedules.StepLR(optimizer, step_size=3)).schedule == schedules.StepLR(step_size=3)


@pytest.mark.parametrize("make, error, match", [
    (lambda: polyak.run(polyak.problems.ill_conditioned_2d(), polyak.GD(0.1, schedule=np.ones(10)), [1.0, 1.0], 20),
     ValueError, r"schedule has 10 multipliers but steps=20 needs 20 \(the schedule is shorter than the run\)"),
    (lambda: polyak.run(polyak.problems.ill_conditioned_2d(),
                        polyak.GD(0.1, schedule=schedules.OneCycleLR(total_steps=10, cycle_momentum=False)),
                        [1.0, 1.0], 20), ValueError, r"OneCycleLR\(total_steps=10\) is shorter than the run of 20 steps"),
    (lambda: polyak.GD(0.1, schedule=[1.0, -0.5]), ValueError, r"schedule multipliers must be >= 0; got -0.5"),
    (lambda: schedules.ExponentialLR(gamma=-0.9), ValueError, r"gamma must be >= 0; got -0.9"),
    (lambda: schedules.StepLR(step_size=0), ValueError, r"step_size must be >= 1; got 0"),
    (lambda: schedules.StepLR(gamma=0.5), TypeError, r"StepLR needs step_size"),
    (lambda: schedules.MultiStepLR(milestones=[3, -1]), ValueError, r"milestones must be >= 0; got -1"),
    (lambda: schedules.LinearLR(start_factor=0.0), ValueError, r"start_factor must be > 0; got 0"),
    (lambda: schedules.CosineAnnealingLR(T_max=10, eta_min=-1e-3), ValueError, r"eta_min must be >= 0"),
    (lambda: schedules.OneCycleLR(max_lr=0.1), ValueError, r"needs total_steps, or epochs and steps_per_epoch"),
    (lambda: schedules.OneCycleLR(max_lr=0.1, total_steps=10, anneal_strategy="exp"), ValueError,
     r"anneal_strategy must be 'cos' or 'linear'; got 'exp'"),
    (lambda: schedules.OneCycleLR(total_steps=10, pct_start=0.1), ValueError, r"has a phase of no steps"),
    (lambda: polyak.Momentum(0.1, 0.9, schedule=schedules.OneCycleLR(total_steps=100)).multipliers(10), ValueError,
     r"OneCycleLR cycles momentum .* pass cycle_momentum=False"),
    (lambda: polyak.run(polyak.problems.ill_conditioned_2d(),
                        polyak.GD([0.1, 0.2], schedule=schedules.CosineAnnealingLR(T_max=10, eta_min=0.01)),
                        [1.0, 1.0], 5), ValueError, r"holds absolute learning rates, so each of the 2 learning rates"),
    (lambda: schedules.StepLR(step_size=3).step(), TypeError, r"has no optimizer: it is a rule's schedule"),
    (lambda: schedules.StepLR(np.zeros(3), step_size=3), TypeError, r"optimizer must be a polyak.optim.SGD"),
    (lambda: schedules.StepLR(step_size=3, last_epoch=5), ValueError, r"last_epoch=5 resumes a scheduler over an "
                                                                      r"optimizer"),
    (lambda: schedules.StepLR(SGD([np.zeros(2)]), step_size=3, last_epoch=5), ValueError,
     r"param_groups\[0\] has no 'initial_lr': resuming with last_epoch=5"),
    (lambda: schedules.OneCycleLR(SGD([np.zeros(2)]), total_steps=10), TypeError, r"OneCycleLR over an optimizer "
                                                                                   r"needs max_lr"),
    (lambda: schedules.OneCycleLR(SGD([np.zeros(2)]), max_lr=[0.1, 0.2], total_steps=10), ValueError,
     r"max_lr has 2 values; the optimizer has 1 parameter groups"),
])
def test_bad_schedules_are_clear_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_stepping_past_one_cycle_is_an_error_as_in_torch():
    optimizer = SGD([np.zeros(2)], lr=0.1, momentum=0.9)
    scheduler = schedules.OneCycleLR(optimizer, max_lr=0.1, total_steps=3)
    for _ in range(3):
        optimizer.step([np.ones(2)])
        scheduler.step()
    with pytest.raises(ValueError, match="Tried to step 4 times. The specified number of total steps is 3"):
        scheduler.step()


def test_scheduler_step_before_optimizer_step_warns_as_torch():
    optimizer = SGD([np.zeros(2)], lr=0.1)
    scheduler = schedules.ExponentialLR(optimizer, gamma=0.5)
    with pytest.warns(UserWarning, match=r"scheduler.step\(\) was called before optimizer.step\(\)"):
        scheduler.step()
    optimizer = SGD([np.zeros(2)], lr=0.1)
    scheduler = schedules.ExponentialLR(optimizer, gamma=0.5)
    optimizer.step([np.ones(2)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scheduler.step()
    assert scheduler.get_last_lr() == [0.05]


def test_the_closed_form_replaces_an_lr_set_by_hand_and_a_state_round_trips():
    optimizer = SGD([{"params": [np.zeros(2)]}, {"params": [np.zeros(1)], "lr": 0.5}], lr=0.1)
    scheduler = schedules.StepLR(optimizer, step_size=2, gamma=0.1)
    optimizer.param_groups[0]["lr"] = 7.0  # torch's recursion would carry this on; the closed form does not
    for _ in range(3):
        optimizer.step([np.ones(2), np.ones(1)])
        scheduler.step()
    np.testing.assert_allclose(scheduler.get_last_lr(), [0.01, 0.05], rtol=1e-15)
    saved = scheduler.state_dict()
    twin_optimizer = copy.deepcopy(optimizer)
    twin = schedules.StepLR(twin_optimizer, step_size=2, gamma=0.1)
    twin.load_state_dict(saved)
    for _ in range(2):
        for opt, sched in ((optimizer, scheduler), (twin_optimizer, twin)):
            opt.step([np.ones(2), np.ones(1)])
            sched.step()
    assert twin.get_last_lr() == scheduler.get_last_lr() and twin.last_epoch == scheduler.last_epoch == 5
    with pytest.raises(ValueError, match=r"the state is of a StepLR with \{'step_size': 2, 'gamma': 0.1\}"):
        schedules.StepLR(SGD([np.zeros(1)]), step_size=3).load_state_dict({**saved, "anchors": [(0.1, -1)]})
