"""polyak.optim.SGD's parameter groups, maximize and torch's state layout, against torch.optim.SGD."""

import copy
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

import polyak
from polyak.optim import SGD

SHAPES = [(3, 4), (70_000,), (5,), (2, 3), (), (40_000,)]
#: Three groups over SHAPES' arrays (by index) and the hyperparameters each sets.
GROUPS = [((0, 1), dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
          ((2, 3), dict(momentum=0.5, dampening=0.3, maximize=True)),
          ((4, 5), dict(lr=0.2, momentum=0.0, weight_decay=0.001))]
DEFAULTS = dict(lr=0.1, momentum=0.0)
#: step -> edit of (group, key, value), made in both optimizers before that step
EDITS = {10: [(0, "lr", 0.02), (2, "momentum", 0.8)],         # group 2's buffers start at step 10
         20: [(1, "dampening", 0.0), (1, "nesterov", True), (0, "weight_decay", 0.0)],
         30: [(1, "maximize", False), (2, "momentum", 0.0), (0, "momentum", 0.95)],  # buffers kept, unused
         40: [(2, "momentum", 0.7), (1, "lr", 0.01)]}          # ... and used again
TORCH_ONLY = ("foreach", "differentiable", "fused")


def relative_error(actual, expected):
    scale = np.sqrt(np.mean(np.asarray(expected, float) ** 2)) + 1e-300
    return float(np.max(np.abs(np.asarray(actual, float) - np.asarray(expected, float)), initial=0.0)) / scale


def make_pair(torch, dtype, rng, shapes=SHAPES, groups=GROUPS):
    params = [rng.normal(size=shape).astype(dtype) for shape in shapes]
    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    ours = SGD([{"params": [params[i] for i in members], **settings} for members, settings in groups], **DEFAULTS)
    theirs = torch.optim.SGD([{"params": [tensors[i] for i in members], **settings} for members, settings in groups],
                             **DEFAULTS)
    order = [i for members, _ in groups for i in members]  # the optimizer's order of the parameters
    return [params[i] for i in order], [tensors[i] for i in order], ours, theirs


def step_both(torch, ours, theirs, params, tensors, rng, skip=()):
    grads = [None if i in skip else rng.normal(size=p.shape).astype(p.dtype) for i, p in enumerate(params)]
    for tensor, grad in zip(tensors, grads):
        tensor.grad = None if grad is None else torch.tensor(grad)
    ours.step(grads)
    theirs.step()


def assert_same(ours, theirs, params, tensors, tolerance):
    for param, tensor in zip(params, tensors):
        assert relative_error(param, tensor.detach().numpy()) <= tolerance
    saved, expected = ours.state_dict()["state"], theirs.state_dict()["state"]
    assert saved.keys() == expected.keys()
    for i in saved:
        assert relative_error(saved[i]["momentum_buffer"], expected[i]["momentum_buffer"].numpy()) <= tolerance


def as_torch_state(torch, state):
    """polyak's state_dict with its arrays as tensors: what torch.optim.SGD.load_state_dict reads."""
    return {"state": {i: {k: torch.from_numpy(np.array(v)) for k, v in entry.items()} for i, entry in state["state"].items()},
            "param_groups": copy.deepcopy(state["param_groups"])}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_groups_edited_between_steps_equal_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    params, tensors, ours, theirs = make_pair(torch, dtype, rng)
    extra = rng.normal(size=(7,)).astype(dtype)
    for step in range(50):
        for g, key, value in EDITS.get(step, []):
            ours.param_groups[g][key] = value
            theirs.param_groups[g][key] = value
        if step == 25:  # a group added midway, as for a layer unfrozen during training
            extra_tensor = torch.tensor(extra.copy(), requires_grad=True)
            ours.add_param_group({"params": [extra], "lr": 0.3, "momentum": 0.6})
            theirs.add_param_group({"params": [extra_tensor], "lr": 0.3, "momentum": 0.6})
            params, tensors = params + [extra], tensors + [extra_tensor]
        step_both(torch, ours, theirs, params, tensors, rng, skip={3} if step % 7 == 3 else ())  # grad None
    assert ours.steps == 50 and len(ours.state_dict()["state"]) == len(theirs.state_dict()["state"]) == 7
    assert_same(ours, theirs, params, tensors, 1e-12 if dtype == np.float64 else 2e-5)


def test_a_state_saved_by_polyak_continues_in_torch_and_back():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    params, tensors, ours, theirs = make_pair(torch, np.float64, rng)
    ours.param_groups[1]["initial_lr"] = 0.1  # a scheduler's key travels with its group
    for _ in range(5):
        step_both(torch, ours, theirs, params, tensors, rng)
    # polyak -> torch: a fresh torch optimizer over copies of the parameters
    copies = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    resumed = torch.optim.SGD([{"params": copies[0:2]}, {"params": copies[2:4]}, {"params": copies[4:6]}], lr=1.0)
    resumed.load_state_dict(as_torch_state(torch, ours.state_dict()))
    assert resumed.param_groups[1]["initial_lr"] == 0.1 and resumed.param_groups[0]["nesterov"]
    for _ in range(5):
        step_both(torch, ours, resumed, params, copies, rng)
    assert_same(ours, resumed, params, copies, 1e-12)
    # torch -> polyak: its state as it is (tensors, torch's own keys), into a fresh polyak optimizer
    again = [p.copy() for p in params]
    back = SGD([{"params": again[0:2]}, {"params": again[2:4]}, {"params": again[4:6]}], lr=1.0)
    back.load_state_dict(resumed.state_dict())
    assert back.param_groups[0]["lr"] == 0.05 and not set(TORCH_ONLY) & set(back.param_groups[0])
    for _ in range(5):
        step_both(torch, back, resumed, again, copies, rng)
    assert_same(back, resumed, again, copies, 1e-12)


def test_state_dict_has_torchs_layout():
    torch = pytest.importorskip("torch")
    params, tensors, ours, theirs = make_pair(torch, np.float64, np.random.default_rng(7))
    step_both(torch, ours, theirs, params, tensors, np.random.default_rng(8), skip={2})
    saved, expected = ours.state_dict(), theirs.state_dict()
    assert saved["state"].keys() == expected["state"].keys() == {0, 1, 3}  # momentum, and a gradient
    for mine, theirs_ in zip(saved["param_groups"], expected["param_groups"], strict=True):
        assert mine == {k: v for k, v in theirs_.items() if k not in TORCH_ONLY}
    assert (saved["convention"], saved["steps"]) == ("torch", 1) and "hyperparameters" not in saved
    assert [b is None for b in saved["momentum_buffers"]] == [False, False, True, False, True, True]
    assert saved["momentum_buffers"][3] is saved["state"][3]["momentum_buffer"]  # one array, two views


def test_one_fused_call_per_dtype_steps_every_group(monkeypatch):
    calls = []
    real = polyak._config.kernels("_sgd")

    class Counting:
        COLUMN_NAMES = real.COLUMN_NAMES

        @staticmethod
        def sgd_step(*args):
            calls.append(args[0].dtype)
            return real.sgd_step(*args)

    monkeypatch.setattr(polyak.optim, "kernels", lambda name: Counting)
    params = [np.ones(5), np.ones(3, np.float32), np.ones(4), np.ones(2, np.float32)]
    optimizer = SGD([{"params": params[:2], "lr": 0.5}, {"params": params[2:], "momentum": 0.9}], lr=0.1)
    for _ in range(3):
        optimizer.step([np.ones(5), np.ones(3, np.float32), np.ones(4), np.ones(2, np.float32)])
    assert sorted(map(str, calls)) == ["float32"] * 3 + ["float64"] * 3
    np.testing.assert_allclose(params[0], 1 - 3 * 0.5)
    np.testing.assert_allclose(params[2], 1 - 0.1 * (1 + 1.9 + 2.71))


def test_groups_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(9)
    start = [rng.normal(size=shape) for shape in SHAPES]
    grads = [[rng.normal(size=shape) for shape in SHAPES] for _ in range(4)]
    finals = []
    for threads in (1, 2):
        params = [p.copy() for p in start]
        optimizer = SGD([{"params": [params[i] for i in members], **settings} for members, settings in GROUPS],
                        **DEFAULTS, n_threads=threads)
        order = [i for members, _ in GROUPS for i in members]
        for step_grads in grads:
            optimizer.step([step_grads[i] for i in order])
        finals.append(params)
    for a, b in zip(*finals):
        np.testing.assert_array_equal(a, b)


def test_copies_keep_their_groups():
    params = [np.ones(3), np.ones(2)]
    optimizer = SGD([{"params": [params[0]], "lr": 0.5, "momentum": 0.9}, {"params": [params[1]]}], lr=0.1)
    optimizer.step([np.ones(3), np.ones(2)])
    for twin in (copy.deepcopy(optimizer), pickle.loads(pickle.dumps(optimizer))):
        assert [g["lr"] for g in twin.param_groups] == [0.5, 0.1] and twin.steps == 1
        twin.step([np.ones(3), np.ones(2)])
        np.testing.assert_allclose(twin.params[0], 1 - 0.5 - 0.5 * 1.9)
    np.testing.assert_allclose(params[0], 0.5)  # the original's arrays untouched by the twins


def test_hyperparameter_attributes_read_and_set_every_group():
    optimizer = SGD([{"params": [np.ones(3)], "lr": 0.5}, {"params": [np.ones(2)]}], lr=0.1, momentum=0.9)
    assert optimizer.momentum == 0.9
    with pytest.raises(ValueError, match=r"the parameter groups have different lr \(\[0.5, 0.1\]\)"):
        _ = optimizer.lr
    optimizer.lr = 0.01
    assert [g["lr"] for g in optimizer.param_groups] == [0.01, 0.01] and optimizer.lr == 0.01


def test_a_gradient_of_none_leaves_its_parameter_and_buffer():
    params = [np.ones(3), np.ones(2)]
    optimizer = SGD(params, lr=0.1, momentum=0.9)
    optimizer.step([np.ones(3), None])
    np.testing.assert_array_equal(params[1], 1.0)
    assert optimizer.state_dict()["momentum_buffers"][1] is None
    optimizer.step([np.ones(3), np.ones(2)])  # its buffer starts now, at its first gradient
    np.testing.assert_allclose(params[1], 0.9)
    np.testing.assert_allclose(params[0], 1 - 0.1 - 0.1 * 1.9)


@pytest.mark.parametrize("make, error, match", [
    (lambda a, b: SGD([{"params": [a]}, {"params": [a, b]}]), ValueError,
     r"param_groups\[1\]\['params'\]\[0\] is in param_groups\[1\] and in param_groups\[0\]: an array may be in one group"),
    (lambda a, b: SGD([{"params": [a]}, {"lr": 0.1}]), ValueError,
     r"param_groups\[1\]: a parameter group needs 'params' .* got keys \['lr'\]"),
    (lambda a, b: SGD([{"params": [a], "learning_rate": 0.1}]), ValueError,
     r"param_groups\[0\]: has unknown keys \['learning_rate'\]; a group holds 'params', the hyperparameters"),
    (lambda a, b: SGD([{"params": {a.tobytes()}}]), TypeError, r"params must be an ordered list"),
    (lambda a, b: SGD([{"params": [a]}, b]), TypeError, r"a list of arrays or a list of parameter groups"),
    (lambda a, b: SGD([{"params": [a], "lr": -1.0}]), ValueError, r"param_groups\[0\]: Invalid learning rate"),
    (lambda a, b: SGD([{"params": [a], "nesterov": True}]), ValueError,
     r"param_groups\[0\]: Nesterov momentum requires a momentum"),
    (lambda a, b: SGD([a[:2], a[1:]]), ValueError, r"two parameters share memory"),
])
def test_bad_groups_are_clear_errors(make, error, match):
    with pytest.raises(error, match=match):
        make(np.ones(3), np.ones(2))


def test_add_param_group_checks_and_a_bad_one_changes_nothing():
    a, b = np.ones(3), np.ones(2)
    optimizer = SGD([a], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['params'\]\[1\] is in param_groups\[1\] and in "
                                         r"param_groups\[0\]"):
        optimizer.add_param_group({"params": [b, a]})
    with pytest.raises(ValueError, match=r"unknown keys \['betas'\]"):
        optimizer.add_param_group({"params": [b], "betas": (0.9, 0.99)})
    assert len(optimizer.param_groups) == 1 and len(optimizer.params) == 1
    optimizer.add_param_group({"params": b, "lr": 0.5})  # one array is a list of one, as in torch
    assert optimizer.param_groups[1]["momentum"] == 0.9 and optimizer.params[1] is b


@pytest.mark.parametrize("edit, error, match", [
    (lambda g: g.update(lr=-0.5), ValueError, r"param_groups\[1\]: Invalid learning rate \(lr\): -0.5"),
    (lambda g: g.update(learning_rate=0.5), ValueError, r"param_groups\[1\]: has unknown keys \['learning_rate'\]"),
    (lambda g: g.pop("momentum"), ValueError, r"param_groups\[1\]: lacks \['momentum'\]"),
    (lambda g: g.update(lr=np.array([0.1, 0.2])), TypeError, r"param_groups\[1\]: lr must be a real number"),
    (lambda g: g["params"].append(np.ones(4)), ValueError, r"param_groups\[1\]\['params'\] changed after the group"),
    (lambda g: g.update(params=[np.ones(2)]), ValueError, r"add arrays with add_param_group"),
])
def test_a_bad_edit_of_a_group_is_refused_at_the_next_step_and_changes_nothing(edit, error, match):
    params = [np.ones(3), np.ones(2)]
    optimizer = SGD([{"params": [params[0]]}, {"params": [params[1]]}], lr=0.1, momentum=0.9)
    optimizer.step([np.ones(3), np.ones(2)])
    edit(optimizer.param_groups[1])
    with pytest.raises(error, match=match):
        optimizer.step([np.ones(3), np.ones(2)])
    np.testing.assert_allclose(params[0], 0.9)  # the good group did not step either
    assert optimizer.steps == 1


@pytest.mark.parametrize("change, error, match", [
    (lambda s: {**s, "param_groups": s["param_groups"][:1]}, ValueError, r"the state has 1 parameter groups; this "
                                                                          r"optimizer has 2"),
    (lambda s: {**s, "param_groups": [s["param_groups"][0], {**s["param_groups"][1], "params": [1, 2]}]}, ValueError,
     r"param_groups\[1\]: params must list the indices of its 1 parameters; got 2"),
    (lambda s: {**s, "param_groups": [s["param_groups"][0], {**s["param_groups"][1], "eps": 1e-8}]}, ValueError,
     r"the state's param_groups\[1\]: has unknown keys \['eps'\]"),
    (lambda s: {**s, "state": {**s["state"], 7: {"momentum_buffer": np.ones(2)}}}, ValueError,
     r"an entry for parameter 7, which no group of its param_groups lists"),
    (lambda s: {**s, "state": {0: {"momentum_buffer": np.ones(3), "step": 1}}}, ValueError,
     r"the state of parameter 0 must be a dict with \['momentum_buffer'\]"),
    (lambda s: {**s, "state": {0: {"momentum_buffer": np.ones(4)}}}, ValueError, r"buffer 0 has shape \(4,\)"),
    (lambda s: {**s, "state": {**s["state"], 0: {"momentum_buffer": np.full(3, 2.0)}}}, ValueError,
     r"'momentum_buffers' and its 'state' hold different buffers"),
    (lambda s: {**s, "convention": "d2l"}, ValueError, r"the state is for convention 'd2l'"),
])
def test_a_bad_torch_state_changes_nothing(change, error, match):
    params = [np.ones(3), np.ones(2)]
    optimizer = SGD([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.5}], lr=0.1, momentum=0.9)
    optimizer.step([np.ones(3), np.ones(2)])
    before = optimizer.state_dict()
    with pytest.raises(error, match=match):
        optimizer.load_state_dict(change(optimizer.state_dict()))
    after = optimizer.state_dict()
    assert after["param_groups"] == before["param_groups"] and after["steps"] == 1
    for i in before["state"]:
        np.testing.assert_array_equal(after["state"][i]["momentum_buffer"], before["state"][i]["momentum_buffer"])


def test_the_readme_training_loop_equals_the_torch_code_it_replaces():
    pytest.importorskip("torch")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### Training with parameter groups and a schedule"):]
    ours_code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    torch_code = re.search(r"```py\n(.*?)```", section, flags=re.S).group(1)
    namespace = {"np": np, "polyak": polyak}
    exec(compile(ours_code, "README.md", "exec"), namespace)
    w, b = namespace["w"].copy(), namespace["b"].copy()
    exec(compile(torch_code, "README.md", "exec"), namespace)
    assert relative_error(w, namespace["w"].detach().numpy()) <= 1e-12
    assert relative_error(b, namespace["b"].detach().numpy()) <= 1e-12
    assert namespace["scheduler"].get_last_lr()[0] < 1e-3  # the cosine ran its course
